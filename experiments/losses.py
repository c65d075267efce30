"""BCE vs least squares (chapter 5): the same networks and budget, several seeds per loss.

    python experiments/losses.py mnist [--seeds 5] [--steps 12000] [--width 16] [--root DATA]
    python experiments/losses.py ring  [--seeds 5] [--steps 4000]
    python experiments/losses.py grid  [--seeds 5] [--steps 4000]
    python experiments/losses.py mnist --quick --out /tmp/smoke.json   # a 1-minute smoke test
    python experiments/losses.py mnist --store runs/losses   # resumable; run it twice at once
                                                             # to share the seeds between cores

Each command trains the non-saturating BCE loss and LSGAN (targets a, b, c = 0, 1, 1) with
identical networks, optimiser, batch size and number of steps, once per seed, measures the
final generators and writes one section ("mnist", "ring" or "grid") of
`experiments/results/losses.json`, leaving the other sections as they are. Each section
records the settings, the machine, the library versions, the wall time and every run's
numbers, so chapter 5 can draw its table and figures from the file alone.

- MNIST: DCGAN for 28x28 digits at a quarter of PyTorch's example's width (16 base
  channels; `--width 32` for twice that, written to section "mnist-w32"), batch 64, Adam
  2e-4 (beta1 = 0.5), 12,000 steps at width 16 and 6,000 at width 32, measured with
  `ganlib.image_metrics` on 5,000 generated digits against 5,000 held-out test digits
  (FID-MNIST, precision/recall, classes covered). Every run is also evaluated during training (FID-MNIST of 1,000 fixed-noise
  samples, every steps / 12), with G's gradient norm and D's mean logits at the same steps,
  so the file shows where each run stopped improving and, for a collapsed run, why.
  The section's "verdict" is BCE minus LSGAN per metric, with its standard error
  (`ganlib.mode_metrics.compare`).
- ring / grid: PacGAN's 2-D networks (`ganlib.toy_models.ToyGenerator`, `ToyDiscriminator`)
  at a third of their width (128 units; G 3 hidden layers, D 2), batch 100, Adam 1e-3
  (beta1 = 0.5), 4,000 steps: PacGAN's own budget (full-width networks, 20,000 steps, ten
  trials) takes hours on one CPU thread. Measured with
  `ganlib.mode_metrics.mixture_metrics` on 2,500 samples (modes captured, % high quality,
  reverse KL); the first 150 points of each run are kept for plots.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

import ganlib
from ganlib.dcgan import DCGANDiscriminator, DCGANGenerator
from ganlib.metrics import embed, fid_evaluator, image_metrics
from ganlib.mode_metrics import N_MIXTURE, compare, mixture_metrics, summarize
from ganlib.sampling import generate_many
from ganlib.toy_models import ToyDiscriminator, ToyGenerator
from record import RunStore, add_common_arguments, stamp, write_section  # this folder: one record for every result file

RESULTS = Path(__file__).resolve().parent / "results" / "losses.json"
LOSSES = ("bce", "lsgan")
MNIST_METRICS = ("fid", "precision", "recall", "classes_covered", "classifier_score",
                 "kl_to_uniform")
MIXTURE_METRICS = ("modes", "high_quality_pct", "reverse_kl")


# ----------------------------------------------------------------------------- settings

MNIST_WIDTH = 16  # DCGAN's base channel count (64 in PyTorch's example): a quarter, for CPU budgets
# Generator steps by width, where both losses' FID curves have flattened (the file's curves
# show it): at width 16 BCE first stalls in one blob for 1,000-2,500 steps and was still
# improving at 6,000 (measured), so it gets 12,000; width 32 has no such stall (chapter 4).
DEFAULT_MNIST_STEPS = {16: 12_000, 32: 6_000}


def mnist_models(width: int = MNIST_WIDTH):
    """DCGAN's generator and discriminator for 28x28 digits with `width` base channels."""
    return (DCGANGenerator(latent_dim=100, channels=1, image_size=28, width=width),
            DCGANDiscriminator(channels=1, image_size=28, width=width))


def mnist_config(loss: str, seed: int, steps: int, eval_every: int = 0) -> ganlib.TrainConfig:
    """The one MNIST configuration both losses share; only `loss` and `seed` vary."""
    return ganlib.TrainConfig(data="mnist", model="dcgan", loss=loss, batch_size=64,
                              num_steps=steps, lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999),
                              lsgan_abc=(0.0, 1.0, 1.0), seed=seed, device="cpu",
                              eval_every=eval_every, progress=False)


def mnist_reference(test: ganlib.ImageData, n: int, seed: int = 0) -> torch.Tensor:
    """The held-out digits every generator is compared with: `n` test images drawn at
    random (fixed `seed`), `(n, 1, 28, 28)`."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(test.x), generator=g)[:n]
    return test.x[idx]


def train_mnist(loss: str, seed: int, steps: int, data, width: int = MNIST_WIDTH,
                evaluate=None, eval_every: int = 0):
    """Train the narrow DCGAN on MNIST with `loss` from seed `seed`; returns `(G, history,
    diagnostics)`. With `evaluate`, FID-MNIST is measured every `eval_every` steps (in
    `history["eval"]`), and `diagnostics` holds, at the same steps, the norm of G's gradient
    in its last step and D's mean logits on real and generated images since the last
    evaluation: what shows why a run collapses (chapter 5)."""
    cfg = mnist_config(loss, seed, steps, eval_every if evaluate else 0)
    ganlib.seed_everything(seed)  # the weights' initialisation, before train() reseeds
    G, D = mnist_models(width)
    diag = {"step": [], "g_grad_norm": [], "d_real_logit": [], "d_fake_logit": []}
    # BCE's history keeps D's mean probabilities; LSGAN's its raw outputs (already "logits")
    to_logit = (lambda p: math.log(max(p, 1e-7) / max(1 - p, 1e-7))) if loss == "bce" else float

    def watch(step, G, D, history):
        if step % eval_every:
            return
        since = diag["step"][-1] if diag["step"] else 0  # the steps since the last evaluation
        grads = torch.stack([p.grad.norm() for p in G.parameters() if p.grad is not None])
        diag["step"].append(step)
        diag["g_grad_norm"].append(grads.norm().item())  # G's whole gradient, its last step
        for key in ("real", "fake"):
            window = history[f"d_{key}"][since:step]
            diag[f"d_{key}_logit"].append(to_logit(sum(window) / len(window)))

    history = ganlib.train(G, D, data, cfg, evaluate=evaluate, callback=watch if evaluate else None)
    return G, history, diag


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


def verdict(runs: list[dict], metrics) -> dict:
    """BCE minus LSGAN for each metric, with the standard error of the difference and
    whether it exceeds two of them (`ganlib.mode_metrics.compare`)."""
    by = {loss: [r["metrics"] for r in runs if r["loss"] == loss] for loss in LOSSES}
    return compare(by["bce"], by["lsgan"], metrics)


# ----------------------------------------------------------------------------- experiments

def run_mnist(args) -> dict:
    data = ganlib.load_dataset("mnist", root=args.root)
    test = ganlib.load_dataset("mnist", root=args.root, train=False)
    n_real = min(args.n_eval, len(test))
    x_ref = mnist_reference(test, n_real)
    ref = embed(x_ref)  # embedded once, compared with every run
    evaluate = fid_evaluator(x_ref, n=args.n_curve, seed=args.noise_seed)  # the FID curves
    start = time.perf_counter()
    # finished runs kept one file each (resume, and several processes sharing the seeds)
    store = RunStore(args.store, f"mnist-w{args.width}-{args.steps}-e{args.eval_every}-"
                     f"n{args.n_eval}-c{args.n_curve}") if args.store else None
    names = {(seed, loss): f"{loss}-seed{seed}" for seed in range(args.seeds) for loss in LOSSES}
    runs = []
    for (seed, loss), name in names.items():
        if store is not None and not store.claim(name):
            continue  # stored already, or another process trains it
        t0 = time.perf_counter()
        G, history, diag = train_mnist(loss, seed, args.steps, data, args.width,
                                       evaluate, args.eval_every)
        metrics = measure_mnist(G, ref, args.n_eval, args.noise_seed)
        ev = history["eval"]
        runs.append({"loss": loss, "seed": seed, "metrics": metrics,
                     "final": final_state(history), "seconds": time.perf_counter() - t0,
                     "curve": {"step": ev["step"], "fid": [round(v, 3) for v in ev["fid"]],
                               "classes_covered": ev["classes_covered"]},
                     "diagnostics": {k: [round(v, 5) for v in vals] if k != "step" else vals
                                     for k, vals in diag.items()}})
        if store is not None:
            store.put(name, runs[-1])
        print(f"mnist {loss:5s} seed {seed}: " + ", ".join(
            f"{k} {metrics[k]:.3f}" for k in MNIST_METRICS) + f" ({runs[-1]['seconds']:.0f} s)",
            flush=True)
    if store is not None:
        runs = store.wait(list(names.values()))
    timing = stamp(start)
    timing["run_seconds"] = round(sum(r["seconds"] for r in runs), 1)
    if store is not None:  # runs from earlier or parallel processes: their time, summed
        timing["wall_seconds"] = timing["run_seconds"]
    cfg = {**asdict(mnist_config("bce", 0, args.steps)), "loss": "<loss>", "seed": "<seed>"}
    return {
        "what": f"BCE (non-saturating) vs LSGAN (0/1/1) on MNIST at width {args.width}, final "
                "generators, with FID-MNIST during training",
        "command": "python experiments/losses.py " + " ".join(sys.argv[1:]),
        "budget": {"name": "quick" if args.quick else "full", "steps": args.steps,
                   "seeds": args.seeds, "eval_every": args.eval_every},
        "settings": {"train_config": cfg, "models": f"DCGANGenerator/DCGANDiscriminator(image_size=28, "
                                                    f"width={args.width})",
                     "width": args.width, "curve": {"n_fake": args.n_curve, "n_real": n_real,
                                                   "every": args.eval_every}, "losses": list(LOSSES), "seeds": list(range(args.seeds)),
                     "data": data.source, "n_train": len(data),
                     "eval": {"n_fake": args.n_eval, "n_real": n_real,
                              "real": f"{n_real} {test.source} test digits drawn with seed 0",
                              "noise_seed": args.noise_seed,
                              "metrics": "ganlib.image_metrics (FID-MNIST, k=3 precision/recall, "
                                         "classes covered at >= 1%)"}},
        **timing,
        "runs": runs, "summary": summarise_by_loss(runs, MNIST_METRICS),
        "verdict": verdict(runs, MNIST_METRICS),
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
        "verdict": verdict(runs, MIXTURE_METRICS),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("command", choices=("mnist", "ring", "grid"))
    add_common_arguments(p, RESULTS, seeds=5)
    p.add_argument("--steps", type=int, default=None,
                   help="generator steps per run (default 12000 MNIST at width 16, 6000 at "
                   "width 32, 4000 ring/grid)")
    p.add_argument("--n-eval", type=int, default=5000, help="MNIST: generated and real "
                   "images per measurement")
    p.add_argument("--width", type=int, default=MNIST_WIDTH, help="MNIST: DCGAN's base "
                   "channels (section 'mnist' at 16, 'mnist-w32' at 32, ...)")
    p.add_argument("--eval-every", type=int, default=None, help="MNIST: steps between the "
                   "FID-MNIST evaluations of the curves (default steps / 12)")
    p.add_argument("--n-curve", type=int, default=1000, help="MNIST: generated images per "
                   "evaluation of the curves")
    p.add_argument("--store", type=Path, default=None, help="MNIST: folder keeping each "
                   "finished run, to resume after an interruption and to share the runs "
                   "between processes started with the same command (e.g. ../runs/losses)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quick:
        args.seeds, args.n_eval, args.n_curve = min(args.seeds, 2), 500, 200
        args.steps = args.steps or 20
    args.steps = args.steps or (DEFAULT_MNIST_STEPS.get(args.width, 6000) if args.command == "mnist"
                                else 4000)
    args.eval_every = args.eval_every or max(1, args.steps // 12)
    section = run_mnist(args) if args.command == "mnist" else run_mixture(args)
    name = args.command if args.command != "mnist" or args.width == MNIST_WIDTH else f"mnist-w{args.width}"
    write_section(args.out, name, section)
    print(f"wrote section {name!r} of {args.out} ({section['wall_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
