"""Milliseconds per training step of PacGAN's 2-D GAN: a plain single-trial loop
(`ganlib.training.d_step` / `g_step` on `ToyGenerator` / `ToyDiscriminator`) against
`ganlib.ensemble`, which trains T trials as one batched model (`torch.func.vmap` over the
stacked parameters of the same networks).

    python benchmarks/ensemble_speed.py [--trials 10] [--steps 50] [--threads 1] [--device cpu]
                                        [--json out.json]

Each configuration runs `--warmup` steps, then `--steps` timed steps: 100 discriminator
inputs per step (100 m points with packing m, as PacGAN), bce loss, Adam (fused). On CUDA
a last column times the ensemble's fast step (`ganlib.fast.graph_step`: the whole step
replayed as one CUDA graph, as `train_toy_ensemble(fast=True)` runs it); on the CPU there
is no graph to replay and the column says n/a. Prints a Markdown table; `--json` also
writes the numbers.
"""
from __future__ import annotations

import argparse
import functools
import json
import time

import torch

from ganlib.ensemble import ensemble_step
from ganlib.trials import build_ensemble
from ganlib.fast import graph_step
from ganlib.losses import get_loss
from ganlib.models import Packed
from ganlib.toy_models import ToyDiscriminator, ToyGenerator
from ganlib.optim import make_adam
from ganlib.training import d_step, g_step
from ganlib.book import cpu_name


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def ms_per_call(step, steps: int, warmup: int, device="cpu") -> float:
    """Milliseconds per call of `step()`, after `warmup` untimed calls."""
    for _ in range(warmup):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return 1000 * (time.perf_counter() - start) / steps


def plain_loop(steps: int, warmup: int, pack: int, batch_size: int = 100,
               device="cpu") -> float:
    """ms per step of one trial trained with ganlib's own step functions."""
    torch.manual_seed(0)
    G, D = ToyGenerator().to(device), ToyDiscriminator(2 * pack).to(device)
    D = Packed(D, pack) if pack > 1 else D
    opt_G, opt_D = make_adam(G, 1e-4, (0.8, 0.999)), make_adam(D, 1e-4, (0.8, 0.999))
    loss = get_loss("bce")
    x_real = torch.randn(batch_size * pack, 2, device=device)

    def step():
        x_fake = G(torch.randn(batch_size * pack, 2, device=device))
        d_step(D, opt_D, loss, x_real, x_fake.detach())
        g_step(D, opt_G, loss, x_fake)

    return ms_per_call(step, steps, warmup, device)


def ensemble_loop(trials: int, steps: int, warmup: int, pack: int, batch_size: int = 100,
                  device="cpu", fast: bool = False) -> float:
    """ms per step (all trials together) of `ganlib.ensemble.ensemble_step`; with `fast`
    (CUDA only), of the same step replayed as one CUDA graph (`graph_step`)."""
    G, D = build_ensemble(trials, pack, seed=0)
    G.to(device), D.to(device)
    opt_G, opt_D = make_adam(G, 1e-4, (0.8, 0.999)), make_adam(D, 1e-4, (0.8, 0.999))
    loss = get_loss("bce")
    x_real = torch.randn(trials, batch_size * pack, 2, device=device)
    z = torch.randn(trials, batch_size * pack, 2, device=device)
    run = functools.partial(ensemble_step, G, D, opt_G, opt_D, loss)
    if fast:
        for group in (*opt_G.param_groups, *opt_D.param_groups):
            group["capturable"] = True
        run = graph_step(run, (x_real, z), (G, D), (opt_G, opt_D))

    def step():  # fresh noise each step, drawn outside the step as train_toy_ensemble does
        run(x_real, torch.randn(trials, batch_size * pack, 2, device=device))

    return ms_per_call(step, steps, warmup, device)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=10)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    dev, rows = torch.device(args.device), []
    for pack in (1, 4):
        plain = plain_loop(args.steps, args.warmup, pack, device=dev)
        one = ensemble_loop(1, args.steps, args.warmup, pack, device=dev)
        many = ensemble_loop(args.trials, max(5, args.steps // 5), args.warmup, pack, device=dev)
        fast = (ensemble_loop(args.trials, args.steps, args.warmup, pack, device=dev, fast=True)
                if dev.type == "cuda" else None)
        rows.append({"pack": pack, "plain_ms": plain, "ensemble1_ms": one,
                     "ensemble_ms": many, "ensemble_ms_per_trial": many / args.trials,
                     "speedup": plain * args.trials / many, "ensemble_graph_ms": fast})
    T = args.trials
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else cpu_name()
    print(f"torch {torch.__version__}, {args.threads} thread(s), {name}")
    print(f"| pack | plain loop, 1 trial (ms/step) | ensemble, 1 trial | ensemble, {T} trials "
          f"| ensemble per trial | {T} plain trials / ensemble | ensemble, {T} trials, "
          "one CUDA graph |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        graph = "n/a" if r["ensemble_graph_ms"] is None else f"{r['ensemble_graph_ms']:.2f}"
        print(f"| {r['pack']} | {r['plain_ms']:.1f} | {r['ensemble1_ms']:.1f} | {r['ensemble_ms']:.1f} "
              f"| {r['ensemble_ms_per_trial']:.1f} | {r['speedup']:.2f}x | {graph} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"torch": torch.__version__, "threads": args.threads, "trials": T,
                       "machine": name, "device": dev.type,
                       "steps": args.steps, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
