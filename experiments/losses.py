"""BCE vs least squares (chapter 5): the same networks and budget, several seeds per loss.

    python experiments/losses.py mnist [--seeds 5] [--steps 1000] [--root DATA]
    python experiments/losses.py ring  [--seeds 5] [--steps 4000]
    python experiments/losses.py grid  [--seeds 5] [--steps 4000]
    python experiments/losses.py mnist --quick --out /tmp/smoke.json   # a 1-minute smoke test

Each command trains the non-saturating BCE loss and LSGAN (targets a, b, c = 0, 1, 1) with
identical networks, optimiser, batch size and number of steps, once per seed, measures the
final generators and writes one section ("mnist", "ring" or "grid") of
`experiments/results/losses.json`, leaving the other sections as they are. Each section
records the settings, the machine, the library versions, the wall time and every run's
numbers, so chapter 5 can draw its table and figures from the file alone.

- MNIST: DCGAN for 28x28 digits at a quarter of its usual width (16 base channels, so that
  ten runs fit in minutes on one CPU thread), batch 64, Adam 2e-4
  (beta1 = 0.5), 1,000 steps, measured with `ganlib.image_metrics` on 5,000 generated
  digits against 5,000 held-out test digits (FID-MNIST, precision/recall, classes covered).
- ring / grid: PacGAN's 2-D networks (`ganlib.toy_models.ToyGenerator`, `ToyDiscriminator`)
  at a third of their width (128 units; G 3 hidden layers, D 2), batch 100, Adam 1e-3
  (beta1 = 0.5), 4,000 steps: PacGAN's own budget (full-width networks, 20,000 steps, ten
  trials) takes hours on one CPU thread. Measured with
  `ganlib.mode_metrics.mixture_metrics` on 2,500 samples (modes captured, % high quality,
  reverse KL); the first 150 points of each run are kept for plots.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

import ganlib
from ganlib.metrics import embed, generate_many, image_metrics
from ganlib.mode_metrics import N_MIXTURE, mixture_metrics, summarize
from ganlib.models import DCGANDiscriminator, DCGANGenerator
from ganlib.toy_models import ToyDiscriminator, ToyGenerator
from record import add_common_arguments, stamp, write_section  # this folder: one record for every result file

RESULTS = Path(__file__).resolve().parent / "results" / "losses.json"
LOSSES = ("bce", "lsgan")
MNIST_METRICS = ("fid", "precision", "recall", "classes_covered", "classifier_score",
                 "kl_to_uniform")
MIXTURE_METRICS = ("modes", "high_quality_pct", "reverse_kl")


# ----------------------------------------------------------------------------- settings

MNIST_WIDTH = 16  # DCGAN's base channel count (64 in the paper): a quarter, for CPU budgets


def mnist_models(width: int = MNIST_WIDTH):
    """DCGAN's generator and discriminator for 28x28 digits with `width` base channels."""
    return (DCGANGenerator(latent_dim=100, channels=1, image_size=28, width=width),
            DCGANDiscriminator(channels=1, image_size=28, width=width))


def mnist_config(loss: str, seed: int, steps: int) -> ganlib.TrainConfig:
    """The one MNIST configuration both losses share; only `loss` and `seed` vary."""
    return ganlib.TrainConfig(data="mnist", model="dcgan", loss=loss, batch_size=64,
                              num_steps=steps, lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999),
                              lsgan_abc=(0.0, 1.0, 1.0), seed=seed, device="cpu",
                              progress=False)


def mnist_reference(test: ganlib.ImageData, n: int, seed: int = 0) -> torch.Tensor:
    """The held-out digits every generator is compared with: `n` test images drawn at
    random (fixed `seed`), `(n, 1, 28, 28)`."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(test.x), generator=g)[:n]
    return test.x[idx]


def train_mnist(loss: str, seed: int, steps: int, data):
    """Train the narrow DCGAN on MNIST with `loss` from seed `seed`; returns `(G, history)`."""
    cfg = mnist_config(loss, seed, steps)
    ganlib.seed_everything(seed)  # the weights' initialisation, before train() reseeds
    G, D = mnist_models()
    history = ganlib.train(G, D, data, cfg)
    return G, history


def final_state(history: dict, frac: float = 0.1) -> dict:
    """Means of the losses and of D's outputs over the last `frac` of the steps."""
    tail = max(1, int(len(history["step"]) * frac))
    return {k: sum(history[k][-tail:]) / tail for k in ("d_loss", "g_loss", "d_real", "d_fake")}


def mixture_run(G, history: dict, kind: str, noise_seed: int, t0: float) -> dict:
    """One finished run on a 2-D mixture, as the result files keep it: the mode metrics of
    `N_MIXTURE` samples (fixed noise), the final losses, the seconds since `t0` and the
    first `N_POINTS` samples for the scatter plots."""
    x = generate_many(G, N_MIXTURE, seed=noise_seed)  # (2500, 2)
    m = mixture_metrics(x, kind)
    return {"metrics": {k: float(m[k]) for k in (*MIXTURE_METRICS, "num_modes")},
            "final": final_state(history), "seconds": time.perf_counter() - t0,
            "points": [[round(v, 3) for v in p] for p in x[:N_POINTS].tolist()]}


def measure_mnist(G, x_ref, n_fake: int, noise_seed: int) -> dict:
    """`ganlib.image_metrics` of `n_fake` samples (fixed noise) against `x_ref`."""
    x_fake = generate_many(G, n_fake, seed=noise_seed)  # (n_fake, 1, 28, 28)
    return {k: float(v) for k, v in image_metrics(x_ref, x_fake).items()}


# ----------------------------------------------------------------------------- bookkeeping

def summarise_by_loss(runs: list[dict], metrics) -> dict:
    """`ganlib.mode_metrics.summarize` of each loss's runs: `{loss: {metric: {"mean", "std",
    "se", "n"}}}`."""
    return {loss: summarize([r["metrics"] for r in runs if r["loss"] == loss], metrics)
            for loss in sorted({r["loss"] for r in runs})}


# ----------------------------------------------------------------------------- experiments

def run_mnist(args) -> dict:
    data = ganlib.load_dataset("mnist", root=args.root)
    test = ganlib.load_dataset("mnist", root=args.root, train=False)
    n_real = min(args.n_eval, len(test))
    x_ref = mnist_reference(test, n_real)
    ref = embed(x_ref)  # embedded once, compared with every run
    runs, start = [], time.perf_counter()
    for seed in range(args.seeds):
        for loss in LOSSES:
            t0 = time.perf_counter()
            G, history = train_mnist(loss, seed, args.steps, data)
            metrics = measure_mnist(G, ref, args.n_eval, args.noise_seed)
            runs.append({"loss": loss, "seed": seed, "metrics": metrics,
                         "final": final_state(history), "seconds": time.perf_counter() - t0})
            print(f"mnist {loss:5s} seed {seed}: " + ", ".join(
                f"{k} {metrics[k]:.3f}" for k in MNIST_METRICS) + f" ({runs[-1]['seconds']:.0f} s)",
                flush=True)
    cfg = {**asdict(mnist_config("bce", 0, args.steps)), "loss": "<loss>", "seed": "<seed>"}
    return {
        "what": "BCE (non-saturating) vs LSGAN (0/1/1) on MNIST, final generators",
        "command": "python experiments/losses.py " + " ".join(sys.argv[1:]),
        "budget": {"name": "quick" if args.quick else "full", "steps": args.steps,
                   "seeds": args.seeds},
        "settings": {"train_config": cfg, "models": f"DCGANGenerator/DCGANDiscriminator(image_size=28, "
                                                    f"width={MNIST_WIDTH})",
                     "width": MNIST_WIDTH, "losses": list(LOSSES), "seeds": list(range(args.seeds)),
                     "data": data.source, "n_train": len(data),
                     "eval": {"n_fake": args.n_eval, "n_real": n_real,
                              "real": f"{n_real} {test.source} test digits drawn with seed 0",
                              "noise_seed": args.noise_seed,
                              "metrics": "ganlib.image_metrics (FID-MNIST, k=3 precision/recall, "
                                         "classes covered at >= 1%)"}},
        **stamp(start),
        "runs": runs, "summary": summarise_by_loss(runs, MNIST_METRICS),
    }


TOY_HIDDEN = 128  # PacGAN's networks at a third of their width (400 and 200 units)
N_POINTS = 150    # samples per run kept in the result file, for plots


def toy_models():
    """PacGAN's 2-D networks, narrowed so that 20 runs fit in CPU minutes: G with 3 hidden
    layers of 128 ReLU units (BatchNorm), D with 2 hidden layers of 128 maxout units."""
    return (ToyGenerator(latent_dim=2, hidden=TOY_HIDDEN, depth=3),
            ToyDiscriminator(in_dim=2, hidden=TOY_HIDDEN, depth=2, pieces=5))


def toy_config(kind: str, loss: str, seed: int, steps: int) -> ganlib.TrainConfig:
    """The one 2-D configuration both losses share; only `loss` and `seed` vary."""
    return ganlib.TrainConfig(data=kind, model="toy", loss=loss, batch_size=100,
                              num_steps=steps, lr_g=1e-3, lr_d=1e-3, betas=(0.5, 0.999),
                              lsgan_abc=(0.0, 1.0, 1.0), seed=seed, device="cpu",
                              progress=False)


def run_mixture(args) -> dict:
    kind = args.command
    data = ganlib.load_dataset(kind)  # 100,000 points, PacGAN's settings
    runs, start = [], time.perf_counter()
    for seed in range(args.seeds):
        for loss in LOSSES:
            t0 = time.perf_counter()
            cfg = toy_config(kind, loss, seed, args.steps)
            ganlib.seed_everything(seed)
            G, D = toy_models()
            history = ganlib.train(G, D, data, cfg)
            runs.append({"loss": loss, "seed": seed,
                         **mixture_run(G, history, kind, args.noise_seed, t0)})
            metrics = runs[-1]["metrics"]
            print(f"{kind} {loss:5s} seed {seed}: " + ", ".join(
                f"{k} {metrics[k]:.3f}" for k in MIXTURE_METRICS) + f" ({runs[-1]['seconds']:.0f} s)",
                flush=True)
    return {
        "what": f"BCE (non-saturating) vs LSGAN (0/1/1) on the {kind} of Gaussians, final generators",
        "command": "python experiments/losses.py " + " ".join(sys.argv[1:]),
        "budget": {"name": "quick" if args.quick else "full", "steps": args.steps,
                   "seeds": args.seeds},
        "settings": {"train_config": {**asdict(toy_config(kind, "bce", 0, args.steps)),
                                      "loss": "<loss>", "seed": "<seed>"},
                     "models": f"ToyGenerator(hidden={TOY_HIDDEN}, depth=3), "
                               f"ToyDiscriminator(hidden={TOY_HIDDEN}, depth=2, pieces=5)",
                     "hidden": TOY_HIDDEN, "losses": list(LOSSES), "seeds": list(range(args.seeds)),
                     "data": data.source, "n_train": len(data),
                     "eval": {"n_fake": N_MIXTURE, "noise_seed": args.noise_seed,
                              "metrics": "ganlib.mode_metrics.mixture_metrics (3 std, PacGAN's)",
                              "points": f"the first {N_POINTS} evaluation samples of each run"}},
        **stamp(start),
        "runs": runs, "summary": summarise_by_loss(runs, MIXTURE_METRICS),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("command", choices=("mnist", "ring", "grid"))
    add_common_arguments(p, RESULTS, seeds=5)
    p.add_argument("--steps", type=int, default=None,
                   help="generator steps per run (default 1000 MNIST, 4000 ring/grid)")
    p.add_argument("--n-eval", type=int, default=5000, help="MNIST: generated and real "
                   "images per measurement")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quick:
        args.seeds, args.n_eval = min(args.seeds, 2), 500
        args.steps = args.steps or 20
    args.steps = args.steps or (1000 if args.command == "mnist" else 4000)
    section = run_mnist(args) if args.command == "mnist" else run_mixture(args)
    write_section(args.out, args.command, section)
    print(f"wrote section {args.command!r} of {args.out} ({section['wall_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
