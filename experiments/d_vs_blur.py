"""How fast the VEEGAN/GDPP protocol's discriminator learns to tell the grid from a blur
(chapter 6).

    python experiments/d_vs_blur.py                       # 3 seeds at D's rate and at G's
    python experiments/d_vs_blur.py --quick --out /tmp/smoke.json

On the grid our unrolled GAN scores as points spread evenly over the grid's square do (a
"blur"), and its D's loss stays at log 4, chance. This asks whether the protocol's D could
have told them apart at all: D alone (`veegan.py`'s network, orthogonal init and Adam),
trained to separate the 25-mode grid (standard deviation 0.05) from a fixed blur, points
uniform over [-5, 5]^2, for the protocol's 25,000 iterations of batch 512, at the protocol's
D rate (1e-4) and at G's (1e-3). Every `--every` steps it records D's loss on 5,000 fresh
points of each (log 4 = 1.386 at chance) and D's mean logit on the blur's points within
3 standard deviations of a centre minus that on its points farther than 10: how far D has
learnt where the modes are. Writes `experiments/results/d_vs_blur.json`.
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

from ganlib.losses import bce_d_loss
from ganlib.mixtures import sample_mixture
from record import stamp, write_section  # this folder: one record for every result file
from veegan import PROTOCOL, STD, VeeganDiscriminator, mixture_means, orthogonal_init

RESULTS = Path(__file__).resolve().parent / "results" / "d_vs_blur.json"
HALF_WIDTH = 5.0  # the blur covers [-5, 5]^2: the 25 cells of side 2 around the grid's centres


def blur(n: int) -> torch.Tensor:
    """n points uniform over the grid's square, (n, 2)."""
    return (torch.rand(n, 2) * 2 - 1) * HALF_WIDTH


def train(lr: float, seed: int, steps: int, every: int, n_eval: int = 5_000) -> dict:
    """Train D against the fixed blur; its loss and logit gap every `every` steps."""
    torch.manual_seed(seed)
    means, std = mixture_means("grid").float(), STD["grid"]
    D = orthogonal_init(VeeganDiscriminator(2, PROTOCOL["hidden"]), PROTOCOL["init_gain"])
    opt = torch.optim.Adam(D.parameters(), lr=lr, betas=PROTOCOL["betas"], eps=PROTOCOL["eps"])
    curve, start = {}, time.perf_counter()
    for step in range(1, steps + 1):
        x_real, x_fake = sample_mixture(means, PROTOCOL["batch_size"], std)[0], blur(PROTOCOL["batch_size"])
        loss = bce_d_loss(D(x_real), D(x_fake))  # (batch, 1) logits each: the protocol's D loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % every == 0 or step == steps:
            with torch.no_grad():
                x_real, x_fake = sample_mixture(means, n_eval, std)[0], blur(n_eval)  # (n_eval, 2) each
                sigmas = torch.cdist(x_fake, means).min(1).values / std  # (n_eval,) to the nearest centre
                fake_logits = D(x_fake)  # (n_eval, 1)
                logits = fake_logits.squeeze(1)
                gap = logits[sigmas <= 3].mean() - logits[sigmas > 10].mean()
                curve[str(step)] = {"loss": round(bce_d_loss(D(x_real), fake_logits).item(), 4),
                                    "logit_gap": round(gap.item(), 3)}
    return {"lr": lr, "seed": seed, "curve": curve, "seconds": round(time.perf_counter() - start, 1)}


def first_below(curve: dict, level: float) -> int | None:
    """The first recorded step whose loss is below `level`, or None."""
    return next((int(s) for s, v in curve.items() if v["loss"] < level), None)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lrs", type=float, nargs="+", default=[PROTOCOL["lr_d"], PROTOCOL["lr_g"]])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, default=PROTOCOL["iterations"])
    p.add_argument("--every", type=int, default=2_500)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--quick", action="store_true", help="a smoke test: 1 seed of 40 steps")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.steps, args.every = 1, 40, 20
    if args.seeds < 1 or args.steps < 1 or args.every < 1:
        p.error("--seeds, --steps and --every must be at least 1")
    torch.set_num_threads(args.threads)
    started, runs = time.perf_counter(), []
    chance = 2 * math.log(2)
    for lr in args.lrs:
        for seed in range(args.seeds):
            r = train(lr, seed, args.steps, args.every)
            runs.append(r)
            last = r["curve"][str(args.steps)]
            print(f"D lr {lr:g} seed {seed}: loss {last['loss']:.3f} (chance {chance:.3f}), logit gap "
                  f"{last['logit_gap']:.2f}, first 5% below chance at {first_below(r['curve'], 0.95 * chance)} "
                  f"({r['seconds']:.0f} s)", flush=True)
    write_section(args.out, None, {
        "what": "the protocol's D alone against a fixed blur of the grid's square",
        "protocol": {"mixture": "grid", "std": STD["grid"], "blur": [-HALF_WIDTH, HALF_WIDTH],
                     "batch_size": PROTOCOL["batch_size"], "betas": PROTOCOL["betas"],
                     "init_gain": PROTOCOL["init_gain"], "hidden": PROTOCOL["hidden"]},
        "budget": {"steps": args.steps, "every": args.every, "seeds": args.seeds, "lrs": args.lrs},
        "quick": args.quick, "chance_loss": chance, "runs": runs, **stamp(started)})
    return runs


if __name__ == "__main__":
    main()
