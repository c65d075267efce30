"""Time to quality on the CPU: which recipe gives the best digits per second of training.

    python benchmarks/time_to_quality.py                         # every candidate, 120 s each
    python benchmarks/time_to_quality.py --only dcgan-ema fast-mnist --budget 600
    python benchmarks/time_to_quality.py --clock cpu             # on a machine shared with other jobs
    python benchmarks/time_to_quality.py --smoke                 # seconds: checks the script runs

Each candidate (a model, a `TrainConfig`, optionally an EMA of G's weights and a thread
count) trains on MNIST with `ganlib.train` for a fixed budget of seconds. At each of the
checkpoints (`--at`, by default 15, 30, 60 and 120 s, up to `--budget`) the clock stops and
the generator (its EMA where the candidate keeps one) is measured: FID-MNIST of 10,000
samples against the 10,000 test digits (`ganlib.metrics`). The time counted is training
time only, never evaluation time. `--clock wall` (the default) counts wall-clock seconds,
the user's experience on an otherwise idle machine; `--clock cpu` counts the process's CPU
seconds (all its threads), which the other jobs of a shared machine do not move. Prints a
table of FID-MNIST against seconds, writes a plot and JSON (machine, torch, load average),
and names the converged DCGAN's FID (`ganlib.pretrained("dcgan_mnist")`, the issue's
target) beside it. Results: benchmarks/README.md ("Time to quality").
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

import ganlib
from ganlib.book import cpu_name
from ganlib.dcgan import DCGANDiscriminator, DCGANGenerator
from ganlib.ema import ema_model
from ganlib.metrics import embed, frechet_distance
from ganlib.sampling import generate_many

HERE = Path(__file__).resolve().parent


def dcgan(width: int, d_width: int | None = None, channels_last: bool = False):
    def make():
        G = DCGANGenerator(100, channels=1, image_size=28, width=width)
        D = DCGANDiscriminator(channels=1, image_size=28, width=d_width or width)
        if channels_last:  # NHWC weights: oneDNN's faster convolution layout on CPUs
            G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
        return G, D
    return make


mlp_bn = lambda: ganlib.build_models("mlp-bn")  # noqa: E731
B128 = dict(batch_size=128, lr_g=4e-4, lr_d=4e-4)  # a batch of 128 at twice the usual lr


# name: what it is, how to build (G, D), the TrainConfig fields, the EMA of G's weights it
# samples from (None; "plain": decay 0.999; "warm": decay 0.999 with the warm-up of
# `ganlib.ema.warmup_ema`; "warm0.995": the warm-up with decay 0.995), torch threads.
# The first is the README's job before this benchmark, the DCGANs chapter 4's network.
CANDIDATES = {
    "readme-mlp-bn": ("002's MLP + BatchNorm, BCE, batch 64, lr 2e-4", mlp_bn, {}, None, 1),
    "mlp-bn-ema": ("readme-mlp-bn sampled from a plain EMA of G", mlp_bn, {}, "plain", 1),
    "mlp-bn-ema-warm": ("readme-mlp-bn sampled from a warm-up EMA", mlp_bn, {}, "warm", 1),
    "mlp-bn-ema-lr5e-4": ("mlp-bn-ema-warm at lr 5e-4", mlp_bn, dict(lr_g=5e-4, lr_d=5e-4), "warm", 1),
    "mlp-bn-b128": ("readme-mlp-bn at batch 128, lr 4e-4, no EMA", mlp_bn, B128, None, 1),
    "mlp-bn-ema-b128": ("the fast-mnist recipe: batch 128, lr 4e-4, warm-up EMA", mlp_bn, B128, "warm", 1),
    "mlp-bn-ema995-b128": ("mlp-bn-ema-b128 with an EMA decay of 0.995", mlp_bn, B128, "warm0.995", 1),
    "mlp-bn-ema995-b256": ("mlp-bn-ema-b256 with an EMA decay of 0.995", mlp_bn,
                           dict(batch_size=256, lr_g=4e-4, lr_d=4e-4), "warm0.995", 1),
    "mlp-bn-ema-b128-lr3e-4": ("mlp-bn-ema-b128 at lr 3e-4", mlp_bn,
                               dict(batch_size=128, lr_g=3e-4, lr_d=3e-4), "warm", 1),
    "mlp-bn-ema-b256": ("mlp-bn-ema-b128 at batch 256 (lr 4e-4)", mlp_bn,
                        dict(batch_size=256, lr_g=4e-4, lr_d=4e-4), "warm", 1),
    "mlp-bn-ema-b128-ttur": ("mlp-bn-ema-b128 with TTUR: lr_d 4e-4, lr_g 1e-4", mlp_bn,
                             dict(batch_size=128, lr_g=1e-4, lr_d=4e-4), "warm", 1),
    "mlp-bn-ema-b128-lsgan": ("mlp-bn-ema-b128 with the LSGAN loss", mlp_bn,
                              {**B128, "loss": "lsgan"}, "warm", 1),
    "mlp-bn-ema-b128-hinge": ("mlp-bn-ema-b128 with the hinge loss", mlp_bn,
                              {**B128, "loss": "hinge"}, "warm", 1),
    "mlp-bn-ema-b128-2threads": ("mlp-bn-ema-b128 on 2 intra-op threads", mlp_bn, B128, "warm", 2),
    "dcgan32": ("chapter 4's DCGAN, width 32, BCE, batch 64", dcgan(32), {}, None, 1),
    "dcgan32-ema": ("dcgan32 sampled from a warm-up EMA", dcgan(32), {}, "warm", 1),
    "dcgan32-ema-cl": ("dcgan32-ema in channels-last layout", dcgan(32, channels_last=True), {},
                       "warm", 1),
    "dcgan32-d16-ema": ("G width 32, D width 16, warm-up EMA", dcgan(32, 16), {}, "warm", 1),
    "dcgan16-ema": ("width 16 (a quarter of the cost), warm-up EMA", dcgan(16), {}, "warm", 1),
}
BASE = dict(loss="bce", batch_size=64, lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999), seed=0, device="cpu",
            progress=False, log_every=1000)


class Clock:
    """Seconds of training: wall or CPU time, stopped while the generator is measured."""

    def __init__(self, kind: str):
        self.read = time.perf_counter if kind == "wall" else time.process_time
        self.start, self.paused = self.read(), 0.0

    def seconds(self) -> float:
        return self.read() - self.start - self.paused

    def pause(self):
        t0 = self.read()
        return lambda: setattr(self, "paused", self.paused + self.read() - t0)


class Done(Exception):
    """Raised by the callback when the budget is spent."""


def run(name: str, args, data, ref) -> dict:
    what, make, fields, ema, threads = CANDIDATES[name]
    torch.set_num_threads(threads)
    ganlib.seed_everything(0)
    G, D = make()
    # "plain": decay 0.999; "warm": 0.999 with the warm-up; "warm0.995": another decay
    G_ema = ema_model(G, float(ema.removeprefix("warm").removeprefix("plain") or 0.999),
                      warmup=ema.startswith("warm")) if ema else None
    cfg = ganlib.TrainConfig(**{**BASE, **fields, "num_steps": 10_000_000, "model": "custom"})
    at = [t for t in args.at if t <= args.budget] or [args.budget]
    points, clock = [], Clock(args.clock)

    def measure(step, G, D, history):
        if clock.seconds() < at[len(points)]:
            return
        resume = clock.pause()
        seconds = clock.seconds()
        sampler = G_ema.module if G_ema is not None else G
        x = generate_many(sampler, args.n, seed=1).cpu()
        points.append({"seconds": round(seconds, 2), "step": step,
                       "fid": frechet_distance(ref.features, embed(x).features)})
        print(f"{name:22s} {seconds:7.1f} s  step {step:6,}  FID-MNIST {points[-1]['fid']:.2f}", flush=True)
        resume()
        if len(points) == len(at):
            raise Done

    try:
        ganlib.train(G, D, data, cfg, callback=measure, G_ema=G_ema)
    except Done:
        pass
    return {"what": what, "threads": threads, "ema": ema, "train_config": {**BASE, **fields},
            "params": sum(p.numel() for p in (*G.parameters(), *D.parameters())), "points": points}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="*", help=f"candidates: {', '.join(CANDIDATES)}")
    p.add_argument("--budget", type=float, default=120.0, help="training seconds per candidate")
    p.add_argument("--at", type=float, nargs="*", default=[15, 30, 60, 120, 300, 600],
                   help="seconds at which to measure (those up to --budget)")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    p.add_argument("--n", type=int, default=10_000, help="samples per measurement")
    p.add_argument("--json", type=Path, default=HERE / "results" / "time_to_quality.json",
                   help="merge the results into this file (each candidate and budget its own entry)")
    p.add_argument("--plot", type=Path, default=HERE / "results" / "time_to_quality.png")
    p.add_argument("--smoke", action="store_true", help="2 s, two candidates, 500 samples")
    args = p.parse_args(argv)
    names = args.only or list(CANDIDATES)
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown:
        p.error(f"unknown candidate {unknown[0]!r}; choose from {', '.join(CANDIDATES)}")
    if args.smoke:
        names, args.budget, args.at, args.n = names[:2] if args.only else ["readme-mlp-bn", "dcgan16-ema"], 2.0, [1, 2], 500
    data = ganlib.load_dataset("mnist")
    test = ganlib.load_dataset("mnist", train=False)
    ref = embed(test.x[:args.n] if args.smoke else test.x)
    results = {name: run(name, args, data, ref) for name in names}
    target = None
    try:
        target = ganlib.pretrained("dcgan_mnist").record["metrics"]["fid"]
    except ganlib.PretrainedError:
        pass
    rows = ["| candidate | " + " | ".join(f"{t:g} s" for t in args.at if t <= args.budget) + " |",
            "|---|" + "---:|" * len([t for t in args.at if t <= args.budget])]
    for name, r in results.items():
        rows.append(f"| `{name}` | " + " | ".join(f"{pt['fid']:.2f} ({pt['step']:,})" for pt in r["points"]) + " |")
    print("\nFID-MNIST (steps) against seconds of training, " + args.clock + " clock:\n" + "\n".join(rows))
    if target is not None:
        print(f"converged DCGAN (dcgan_mnist, 30,000 steps): {target:.2f}; 2x: {2 * target:.2f}")
    if args.smoke:
        return results
    record = {"machine": {"cpu": cpu_name(),
                          "platform": platform.platform(), "load_average": os.getloadavg()},
              "torch": torch.__version__, "clock": args.clock, "n_samples": args.n,
              "date": time.strftime("%Y-%m-%d"), "target_converged_fid": target,
              "command": "python benchmarks/time_to_quality.py " + " ".join(sys.argv[1:])}
    old = json.loads(args.json.read_text()) if args.json.exists() else {"runs": {}}
    for name, r in results.items():
        old["runs"][f"{name}@{args.budget:g}s"] = {**r, **record}
    args.json.write_text(json.dumps(old, indent=1) + "\n")
    plot(old, args.plot, target)
    return results


def plot(record: dict, path: Path, target):
    """FID-MNIST against seconds for every recorded run, best (lowest last value) first, the
    best drawn thick; the converged DCGAN and twice it as lines."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(9, 4.8))
    order = sorted(record["runs"].items(), key=lambda kv: kv[1]["points"][-1]["fid"])
    for i, (key, r) in enumerate(order):
        pts = r["points"]
        ax.plot([p["seconds"] for p in pts], [p["fid"] for p in pts], marker="o", ms=3,
                lw=2.5 if i == 0 else 1, label=f"{key}: {pts[-1]['fid']:.2f}")
    if target:
        ax.axhline(target, color="gray", ls="--", label=f"converged DCGAN: {target:.2f}")
        ax.axhline(2 * target, color="gray", ls=":", label="2x converged")
    ax.set(xscale="log", yscale="log", xlabel="seconds of training",
           ylabel="FID-MNIST (10,000 samples)")
    ticks = sorted({p["seconds"] for r in record["runs"].values() for p in r["points"]})
    ticks = sorted({round(t) for t in ticks})
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()
    ax.legend(fontsize="x-small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
