"""Mode collapse on the 2-D ring and grid (chapter 6): PacGAN's Table 1 and its remedies.

    python experiments/mode_collapse.py ring [--trials 5] [--steps 800] [--lr 3e-4] [--only GAN PacGAN2]
    python experiments/mode_collapse.py grid
    python experiments/mode_collapse.py ring --quick --out /tmp/smoke.json   # a smoke test
    python experiments/mode_collapse.py ring --protocol pacgan --only GAN PacGAN2 \
        --checkpoints ckpt/ --max-minutes 9 --out experiments/results/mode_collapse_pacgan.json

`--protocol pacgan` is PacGAN's released code (simultaneous updates, its BatchNorm per
packing slot, fixed real tuples, lr 1e-4, 400,000 steps, 10 trials, measured every 20,000
steps). With `--checkpoints DIR` a run can stop at any step (`--max-minutes`,
`--stop-at`) and go on later, on another machine of the same kind, with the same final
numbers: run the same command again.

For one mixture, trains every configuration of `CONFIGS` (a GAN; PacGAN with 2, 3, 4
points per discriminator input; a discriminator with a minibatch-stddev feature; LSGAN)
as `--trials` independent trials, with PacGAN's networks and initialisation, 100
discriminator inputs per step (100 m points for packing m, as PacGAN's code) and Adam
(beta1 0.8),
through `ganlib.ensemble.train_toy_ensemble`. Each configuration's trials are measured on
2,500 samples with `ganlib.mode_metrics.mixture_metrics` (modes captured, % high quality,
reverse KL) and `ganlib.mode_metrics.point_recall`. Writes one section ("ring" or "grid") of
`experiments/results/mode_collapse.json`, leaving the other as it is, with the settings,
the machine, versions, wall times, every trial's numbers, the published numbers, a few
samples per configuration and snapshots of the GAN through training, so chapter 6 draws
its tables and figures from the file alone.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from ganlib.ensemble import METRICS, train_toy_ensemble
from ganlib.mode_metrics import summarize
from record import stamp, write_section  # this folder: one record for every result file

RESULTS = Path(__file__).resolve().parent / "results" / "mode_collapse.json"

# name: keyword arguments of train_toy_ensemble that differ from a plain GAN
CONFIGS = {
    "GAN": dict(loss="bce", pack=1),
    "PacGAN2": dict(loss="bce", pack=2),
    "PacGAN3": dict(loss="bce", pack=3),
    "PacGAN4": dict(loss="bce", pack=4),
    "minibatch std": dict(loss="bce", pack=1, minibatch_std=4),  # groups of 4, as ProGAN
    "LSGAN": dict(loss="lsgan", pack=1),
}

# PacGAN (Lin et al. 2018), Table 1: mean ± standard error over 10 trials, 2,500 samples
# (checked against synthetic_data_experiments/results/Table1.png of its released code).
# Same mixtures as ours (ring: 8 modes, radius 1, std 0.01; grid: 25 modes, std 0.05).
PUBLISHED_PACGAN = {
    "ring": {"GAN": ((6.3, 0.5), (98.2, 0.2), (0.45, 0.09)),
             "PacGAN2": ((7.9, 0.1), (95.6, 2.0), (0.07, 0.03)),
             "PacGAN3": ((7.8, 0.1), (97.7, 0.3), (0.10, 0.02)),
             "PacGAN4": ((7.8, 0.1), (95.9, 1.4), (0.07, 0.02))},
    "grid": {"GAN": ((17.3, 0.8), (94.8, 0.7), (0.70, 0.07)),
             "PacGAN2": ((23.8, 0.7), (91.3, 0.8), (0.13, 0.04)),
             "PacGAN3": ((24.6, 0.4), (94.2, 0.4), (0.06, 0.02)),
             "PacGAN4": ((24.8, 0.2), (93.6, 0.6), (0.04, 0.01))},
}
# VEEGAN (Srivastava et al. 2017), Table 1: modes captured only here. Its mixtures differ
# from PacGAN's (ring: radius 2, std 0.02... see the chapter) and so do its networks.
PUBLISHED_VEEGAN = {"ring": {"GAN": 1.0, "Unrolled GAN": 7.6, "VEEGAN": 8.0},
                    "grid": {"GAN": 3.3, "Unrolled GAN": 23.6, "VEEGAN": 24.6}}

# The budget that fits a shared 2-core CPU (see the chapter and experiments/README.md):
# PacGAN trains 400 epochs of 100,000 points at batch 100 (400,000 steps) at lr 1e-4.
DEFAULTS = dict(trials=5, steps=800, lr=3e-4, betas=(0.8, 0.999), batch_size=100)
QUICK = dict(trials=2, steps=30)
SNAPSHOT_TRIALS, SNAPSHOT_POINTS = 3, 300  # GAN rows: points of 3 trials through training
KEEP_TRIALS, KEEP_POINTS = 1, 500  # every row: final points of its first trial


# PacGAN's released code (synthetic_data_experiments/*/config.py, pacgan_task.py)
PACGAN_PROTOCOL = dict(updates="simultaneous", batchnorm="pacgan", real_tuples=True)
PACGAN_BUDGET = dict(trials=10, steps=400_000, lr=1e-4, eval_every=20_000)


def run(kind: str, trials: int, steps: int, lr: float, betas, batch_size: int,
        configs=CONFIGS, seed: int = 0, progress: bool = True, rows=None, save=None,
        protocol: dict | None = None, eval_every: int = 0, checkpoints: Path | None = None,
        stop_at: int | None = None, time_limit: float | None = None, fast: bool = True) -> dict:
    """Train and measure every configuration on one mixture; returns the file's section.

    `rows` holds rows already measured with the same settings (they are kept); `save`, if
    given, is called with the section after each configuration, so an interrupted run
    keeps what it finished. `protocol`: extra `train_toy_ensemble` options for every row
    (e.g. `PACGAN_PROTOCOL`); `eval_every`: measure every this many steps (default: at each
    tenth of the budget). `fast`: `train_toy_ensemble`'s flag (on CUDA, each step replays one
    CUDA graph; the same results). With `checkpoints` (a folder), each row resumes from its own file
    there and stops after `stop_at` steps or `time_limit` seconds in all; the section then
    lists the unfinished rows under "in_progress" ({name: step}).
    """
    snap_steps = sorted({max(1, steps * f // 100) for f in (2, 5, 10, 25, 50, 100)})
    eval_steps = () if eval_every else sorted({max(1, steps * f // 10) for f in range(1, 11)})
    rows, started, in_progress = dict(rows or {}), time.perf_counter(), {}
    for name, extra in configs.items():
        if name in rows and checkpoints is not None:
            continue  # finished in an earlier chunk
        left = None if time_limit is None else time_limit - (time.perf_counter() - started)
        if left is not None and left <= 0:
            break
        ckpt = None if checkpoints is None else Path(checkpoints) / f"{kind}-{name}.pt"
        r = train_toy_ensemble(kind=kind, trials=trials, steps=steps, batch_size=batch_size,
                               lr=lr, betas=betas, seed=seed, device="auto", progress=progress,
                               num_samples=2500, log_every=max(1, steps // 25),
                               snapshot_steps=snap_steps if name == "GAN" else (),
                               snapshot_samples=SNAPSHOT_POINTS, eval_steps=eval_steps,
                               eval_every=eval_every, checkpoint=ckpt, stop_at=stop_at,
                               time_limit=left, fast=fast, **(protocol or {}), **extra)
        if not r["finished"]:
            in_progress[name] = r["step"]
            print(f"{kind} {name}: stopped at step {r['step']:,} of {steps:,}; "
                  f"{ckpt} holds it", flush=True)
            break
        rows[name] = {
            "settings": r["settings"], "device": r["device"], "seconds": round(r["seconds"], 1),
            "summary": r["summary"], "metrics": r["metrics"],
            "samples": [[[round(v, 3) for v in p] for p in x[:KEEP_POINTS].tolist()]
                        for x in r["samples"][:KEEP_TRIALS]],  # (1, 500, 2)
            "history": {k: v if k == "step" else [[round(x, 4) for x in row] for row in v]
                        for k, v in r["history"].items()},  # per-trial losses
            # the same measurements part-way through: what a shorter budget would have given
            "by_step": {str(k): summarize(v, METRICS) for k, v in r["evals"].items()}}
        if r["snapshots"]:
            rows[name]["snapshots"] = {
                str(s): [[[round(v, 3) for v in p] for p in x.tolist()]
                         for x in snap[:SNAPSHOT_TRIALS]] for s, snap in r["snapshots"].items()}
        s = r["summary"]
        print(f"{kind} {name:14s} modes {s['modes']['mean']:.1f}±{s['modes']['se']:.1f}  "
              f"hq {s['high_quality_pct']['mean']:.1f}±{s['high_quality_pct']['se']:.1f}  "
              f"kl {s['reverse_kl']['mean']:.2f}±{s['reverse_kl']['se']:.2f}  "
              f"({r['seconds']:.0f} s)", flush=True)
        if save:
            save(_section(kind, trials, steps, lr, betas, batch_size, seed, rows, started))
    section = _section(kind, trials, steps, lr, betas, batch_size, seed, rows, started)
    section.update(in_progress=in_progress, protocol=protocol or {}, eval_every=eval_every)
    if save:
        save(section)
    return section


def _section(kind, trials, steps, lr, betas, batch_size, seed, rows, started) -> dict:
    published = {name: dict(zip(("modes", "high_quality_pct", "reverse_kl"),
                                ({"mean": m, "se": se} for m, se in vals)))
                 for name, vals in PUBLISHED_PACGAN[kind].items()}
    return {"kind": kind, "trials": trials, "steps": steps, "lr": lr, "betas": list(betas),
            "batch_size": batch_size, "seed": seed, "num_samples": 2500,
            "init": "PacGAN's: weights N(0, 0.02), biases 0 (ganlib.toy_models.pacgan_init)",
            "paper_budget": {"steps": 400_000, "lr": 1e-4, "betas": [0.8, 0.999],
                             "batch_size": 100, "dataset_size": 100_000,
                             "source": "PacGAN's released code, synthetic_data_experiments "
                                       "config.py: 400 epochs of 100,000 points"},
            **stamp(started),
            # training time of the rows, summed over every chunk that trained them
            "wall_seconds": round(sum(row["seconds"] for row in rows.values()), 1),
            "budget": "quick" if steps < 100 else "full",
            "rows": {n: rows[n] for n in CONFIGS if n in rows},  # in CONFIGS' order
            "published_pacgan": published,
            "published_veegan_modes": PUBLISHED_VEEGAN[kind]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("kind", choices=("ring", "grid"))
    p.add_argument("--protocol", choices=("ganlib", "pacgan"), default="ganlib",
                   help="pacgan: PacGAN's released code and budget (see the docstring)")
    p.add_argument("--trials", type=int, help=f"default {DEFAULTS['trials']} "
                   f"(pacgan: {PACGAN_BUDGET['trials']})")
    p.add_argument("--steps", type=int, help=f"default {DEFAULTS['steps']} "
                   f"(pacgan: {PACGAN_BUDGET['steps']})")
    p.add_argument("--lr", type=float, help=f"default {DEFAULTS['lr']} (pacgan: {PACGAN_BUDGET['lr']})")
    p.add_argument("--beta1", type=float, default=DEFAULTS["betas"][0])
    p.add_argument("--eval-every", type=int, help="measure every this many steps (default: at "
                   f"each tenth of the budget; pacgan: {PACGAN_BUDGET['eval_every']:,})")
    p.add_argument("--only", nargs="*", choices=list(CONFIGS), help="a subset of CONFIGS")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--quick", action="store_true", help="a smoke test: 2 trials, 30 steps")
    p.add_argument("--out", type=Path, default=RESULTS, help="JSON file to update")
    p.add_argument("--checkpoints", type=Path, help="folder for each row's checkpoint: makes "
                   "the run resumable (run the same command again to go on)")
    p.add_argument("--max-minutes", type=float, help="stop after this much training (needs "
                   "--checkpoints)")
    p.add_argument("--stop-at", type=int, help="stop each row after this step (needs --checkpoints)")
    p.add_argument("--no-fast", dest="fast", action="store_false", help="on CUDA, run the "
                   "plain step instead of replaying it as one CUDA graph (same results)")
    args = p.parse_args(argv)
    if (args.max_minutes or args.stop_at) and not args.checkpoints:
        p.error("--max-minutes and --stop-at need --checkpoints DIR, where the run is kept")
    torch.set_num_threads(args.threads)
    budget = {**DEFAULTS, "eval_every": 0, **(PACGAN_BUDGET if args.protocol == "pacgan" else {})}
    for key in ("trials", "steps", "lr", "eval_every"):
        budget[key] = getattr(args, key) if getattr(args, key) is not None else budget[key]
    if args.quick:
        budget.update(QUICK, eval_every=min(budget["eval_every"], 10))
    protocol = PACGAN_PROTOCOL if args.protocol == "pacgan" else {}
    configs = {k: CONFIGS[k] for k in args.only} if args.only else CONFIGS
    betas = (args.beta1, 0.999)
    if args.checkpoints:
        args.checkpoints.mkdir(parents=True, exist_ok=True)
    # rows measured earlier with the same settings are kept (e.g. a run split with --only)
    old = json.loads(args.out.read_text()).get(args.kind) if args.out.exists() else None
    same = old and all(old.get(k) == v for k, v in dict(
        trials=budget["trials"], steps=budget["steps"], lr=budget["lr"], betas=list(betas),
        protocol=protocol, eval_every=budget["eval_every"]).items())
    section = run(args.kind, budget["trials"], budget["steps"], budget["lr"], betas,
                  DEFAULTS["batch_size"], configs, rows=old["rows"] if same else None,
                  save=lambda sec: write_section(args.out, args.kind, sec), protocol=protocol,
                  eval_every=budget["eval_every"], checkpoints=args.checkpoints,
                  stop_at=args.stop_at, fast=args.fast,
                  time_limit=args.max_minutes * 60 if args.max_minutes else None)
    left = f"; unfinished: {section['in_progress']}" if section["in_progress"] else ""
    print(f"wrote section {args.kind!r} of {args.out} ({section['wall_seconds']:.0f} s "
          f"of training in all{left})")


if __name__ == "__main__":
    main()
