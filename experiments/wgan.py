"""Wasserstein GANs (chapter 8): three ways to keep the critic Lipschitz beside a plain GAN, several seeds each.

    python experiments/wgan.py ring  [--seeds 3] [--steps 4000]
    python experiments/wgan.py grid  [--seeds 3] [--steps 4000]
    python experiments/wgan.py mnist [--seeds 3] [--steps 1000] [--root DATA]
    python experiments/wgan.py ring grid mnist                      # all three, one after the other
    python experiments/wgan.py ring --quick --out /tmp/smoke.json   # a 1-minute smoke test

Each command trains three critics, each with its paper's settings and 5 critic steps per
generator step, and the non-saturating baseline, once per seed, measures the final generators and writes one section
("ring", "grid" or "mnist") of `experiments/results/wgan.json`, leaving the others:

- "wgan": weight clipping (Arjovsky et al. 2017): `loss="wgan"`, c = 0.01, lr 5e-5, and
  Adam with beta1 = 0, beta2 = 0.99, which is RMSprop (the paper's optimiser, decay 0.99)
  with bias correction;
- "wgan-gp": the gradient penalty (Gulrajani et al. 2017): `loss="wgan-gp"`, weight 10,
  Adam lr 1e-4, betas (0, 0.9);
- "sngan": spectral normalisation (Miyato et al. 2018) of every critic layer through
  `ganlib.lipschitz.spectral_norm` (PyTorch's parametrization) with the hinge loss and
  that paper's setting A (Adam lr 1e-4, betas (0.5, 0.9));
- "gan": the baseline, chapter 5's non-saturating GAN (BCE on logits) with chapter 5's
  optimiser for the data (Adam 1e-3 on the mixtures, 2e-4 on MNIST, betas (0.5, 0.999))
  and one D step per G step, on the same BatchNorm-free D.

After training, every run's critic is also measured where the WGAN-GP paper looks
(Gulrajani et al. 2017, section 3 and Figure 1): the norm of its input gradient at 1,000
points on lines between real and generated samples (a 1-Lipschitz critic that is optimal
has norm 1 there; clipping's is far below it, the capacity it cannot use) and, for
clipping, the fraction of its weights at the bounds +-c.

The networks are chapter 5's (`experiments/losses.py`), so its BCE and LSGAN rows can be
read beside these: on the ring and grid PacGAN's 2-D networks at 128 units (batch 100); on
MNIST its quarter-width DCGAN (batch 64) whose critic here has no BatchNorm (WGAN-GP's
rule; `ganlib.lipschitz.without_batch_norm`) for all three methods. The MNIST runs are also
evaluated during training (FID-MNIST of 1,000 fixed-noise samples against 5,000 training
digits, 10 times per run) to test the WGAN paper's claim that the critic's estimate of the
distance, E[D(x)] - E[D(G(z))], tracks sample quality: the file keeps both series and
their correlation per run.
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
from ganlib.lipschitz import spectral_norm, without_batch_norm
from ganlib.metrics import embed, fid_evaluator, image_metrics
from ganlib.mode_metrics import N_MIXTURE
from ganlib.sampling import generate_many

sys.path.insert(0, str(Path(__file__).resolve().parent))
from losses import (MIXTURE_METRICS, MNIST_METRICS, MNIST_WIDTH, N_POINTS,  # noqa: E402
                    TOY_HIDDEN, final_state, mixture_run, mnist_models, mnist_reference,
                    summarise_by_loss, toy_models)
from record import add_common_arguments, stamp, write_section  # noqa: E402  (one record for every result file)

RESULTS = Path(__file__).resolve().parent / "results" / "wgan.json"
DEFAULT_STEPS = {"ring": 4000, "grid": 4000, "mnist": 1000}
DEFAULT_SEEDS = {"ring": 3, "grid": 3, "mnist": 3}  # each run of 5 critic steps a G step takes minutes on a CPU

# method: the TrainConfig fields it sets, and whether D is spectrally normalised
METHODS = {
    "gan": (dict(loss="bce", n_critic=1), False),  # optimiser: chapter 5's, BASELINE_OPT
    "wgan": (dict(loss="wgan", clip_value=0.01, lr_g=5e-5, lr_d=5e-5, betas=(0.0, 0.99)), False),
    "wgan-gp": (dict(loss="wgan-gp", gp_weight=10.0, lr_g=1e-4, lr_d=1e-4, betas=(0.0, 0.9)), False),
    "sngan": (dict(loss="hinge", lr_g=1e-4, lr_d=1e-4, betas=(0.5, 0.9)), True),
}
N_CRITIC = 5
# the baseline's optimiser, chapter 5's for the data (experiments/losses.py)
BASELINE_OPT = {"mnist": dict(lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999)),
                "ring": dict(lr_g=1e-3, lr_d=1e-3, betas=(0.5, 0.999)),
                "grid": dict(lr_g=1e-3, lr_d=1e-3, betas=(0.5, 0.999))}
N_PROBE = 1000  # real/generated pairs for the critic's gradient norm


def config(kind: str, method: str, seed: int, steps: int) -> ganlib.TrainConfig:
    """One method's TrainConfig; the batch size is chapter 5's for the data."""
    fields = {"n_critic": N_CRITIC, **(BASELINE_OPT[kind] if method == "gan" else {}),
              **METHODS[method][0]}
    return ganlib.TrainConfig(data=kind, model="dcgan" if kind == "mnist" else "toy",
                              batch_size=64 if kind == "mnist" else 100, num_steps=steps,
                              seed=seed, device="cpu", progress=False, **fields)


def critic_probe(D, G, x_real: torch.Tensor, clip_value: float | None, seed: int = 0) -> dict:
    """Where the trained critic stands: the mean and spread of ||grad_x D(x)|| at points
    drawn uniformly on lines between `x_real` and as many generated samples (WGAN-GP's
    sampling), and, for a clipped critic (`clip_value` not None), the fraction of its
    parameters within 1% of the bound (all of them are inside it after a clipping step)."""
    g = torch.Generator().manual_seed(seed)
    x_fake = generate_many(G, len(x_real), seed=seed)
    t = torch.rand(len(x_real), *([1] * (x_real.dim() - 1)), generator=g)
    x_hat = (t * x_real + (1 - t) * x_fake).requires_grad_(True)
    was_training = D.training
    D.eval()
    try:
        grad, = torch.autograd.grad(D(x_hat).sum(), x_hat)
    finally:
        D.train(was_training)
    norms = grad.flatten(1).norm(dim=1)
    weights = torch.cat([p.detach().flatten() for p in D.parameters()])
    return {"grad_norm_mean": norms.mean().item(), "grad_norm_std": norms.std().item(),
            "at_clip_bound": None if clip_value is None
            else (weights.abs() >= 0.99 * clip_value).float().mean().item()}


def models(kind: str, method: str, seed: int):
    """Chapter 5's networks for `kind`, initialised from `seed`; the critic without
    BatchNorm (MNIST) and spectrally normalised for "sngan"."""
    ganlib.seed_everything(seed)
    if kind == "mnist":
        G, D = mnist_models()
        without_batch_norm(D)
    else:
        G, D = toy_models()
    if METHODS[method][1]:
        spectral_norm(D)
    return G, D


def clipped(cfg: ganlib.TrainConfig) -> float | None:
    """The clipping bound c of a weight-clipped critic, else None."""
    return cfg.clip_value if cfg.loss == "wgan" else None


def critic_gap(history: dict) -> list[float]:
    """Per step, the critic's estimate of the distance: mean D(x) - mean D(G(z)) (raw
    scores; for the Wasserstein losses minus the critic loss without the penalty)."""
    return [r - f for r, f in zip(history["d_real"], history["d_fake"])]


def gap_at_evals(history: dict) -> list[float]:
    """The critic gap averaged over the steps since the previous evaluation, one value per
    evaluation (what one would plot next to FID)."""
    gap, out, prev = critic_gap(history), [], 0
    for step in history["eval"]["step"]:
        window = gap[prev:step]
        out.append(sum(window) / len(window))
        prev = step
    return out


def seeds(args) -> range:
    return range(args.first_seed, args.first_seed + args.seeds)


def pearson(xs, ys) -> float:
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    sxx, syy = sum((x - mx) ** 2 for x in xs), sum((y - my) ** 2 for y in ys)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else float("nan")


def spearman(xs, ys) -> float:
    """Pearson correlation of the ranks (no ties expected in these real-valued series)."""
    rank = lambda v: [sorted(v).index(x) for x in v]
    return pearson(rank(xs), rank(ys))


# ----------------------------------------------------------------------------- experiments

def run_mixture(args, kind: str) -> dict:
    data = ganlib.load_dataset(kind)  # 100,000 points, PacGAN's settings
    probe_real = data.x[torch.randperm(len(data.x), generator=torch.Generator().manual_seed(2))[:N_PROBE]]
    runs = []
    for seed in seeds(args):
        for method in METHODS:
            t0 = time.perf_counter()
            G, D = models(kind, method, seed)
            cfg = config(kind, method, seed, args.steps)
            history = ganlib.train(G, D, data, cfg)
            runs.append({"method": method, "seed": seed,
                         **mixture_run(G, history, kind, args.noise_seed, t0),
                         "critic": critic_probe(D, G, probe_real, clipped(cfg))})
            metrics = runs[-1]["metrics"]
            print(f"{kind} {method:7s} seed {seed}: " + ", ".join(
                f"{k} {metrics[k]:.3f}" for k in MIXTURE_METRICS) + f" ({runs[-1]['seconds']:.0f} s)",
                flush=True)
    return section(args, kind, runs, MIXTURE_METRICS, data, {
        "models": f"ToyGenerator(hidden={TOY_HIDDEN}, depth=3), "
                  f"ToyDiscriminator(hidden={TOY_HIDDEN}, depth=2, pieces=5)",
        "eval": {"n_fake": N_MIXTURE, "noise_seed": args.noise_seed,
                 "metrics": "ganlib.mode_metrics.mixture_metrics (3 std, PacGAN's)",
                 "points": f"the first {N_POINTS} evaluation samples of each run"}})


def run_mnist(args) -> dict:
    data = ganlib.load_dataset("mnist", root=args.root)
    test = ganlib.load_dataset("mnist", root=args.root, train=False)
    n_real = min(args.n_eval, len(test))
    ref = embed(mnist_reference(test, n_real))  # held-out digits, embedded once
    g = torch.Generator().manual_seed(1)
    x_track = data.x[torch.randperm(len(data.x), generator=g)[:args.n_track_real]]
    evaluate = fid_evaluator(x_track, n=args.n_track)  # FID during training (train digits)
    runs = []
    for seed in seeds(args):
        for method in METHODS:
            t0 = time.perf_counter()
            G, D = models("mnist", method, seed)
            cfg = config("mnist", method, seed, args.steps)
            cfg.eval_every = max(1, args.steps // 10)
            history = ganlib.train(G, D, data, cfg, evaluate=evaluate)
            x_fake = generate_many(G, args.n_eval, seed=args.noise_seed)
            metrics = {k: float(v) for k, v in image_metrics(ref, x_fake).items()}
            ev = history["eval"]
            gaps = gap_at_evals(history)
            track = {"step": ev["step"], "fid": ev["fid"], "critic_gap": gaps,
                     "pearson": pearson(gaps, ev["fid"]), "spearman": spearman(gaps, ev["fid"])}
            runs.append({"method": method, "seed": seed, "metrics": metrics,
                         "final": final_state(history), "tracking": track,
                         "critic": critic_probe(D, G, x_track[:N_PROBE], clipped(cfg)),
                         "seconds": time.perf_counter() - t0})
            print(f"mnist {method:7s} seed {seed}: " + ", ".join(
                f"{k} {metrics[k]:.3f}" for k in MNIST_METRICS)
                + f"; corr(gap, FID) {track['pearson']:.2f} ({runs[-1]['seconds']:.0f} s)",
                flush=True)
    return section(args, "mnist", runs, MNIST_METRICS, data, {
        "models": f"DCGANGenerator/DCGANDiscriminator(image_size=28, width={MNIST_WIDTH}), "
                  "the critic without BatchNorm",
        "width": MNIST_WIDTH,
        "eval": {"n_fake": args.n_eval, "n_real": n_real,
                 "real": f"{n_real} {test.source} test digits drawn with seed 0",
                 "noise_seed": args.noise_seed,
                 "metrics": "ganlib.image_metrics (FID-MNIST, k=3 precision/recall, "
                            "classes covered at >= 1%)",
                 "tracking": f"ganlib.fid_evaluator: {args.n_track} samples (noise seed 0) vs "
                             f"{len(x_track)} training digits (drawn with seed 1), every "
                             f"{max(1, args.steps // 10)} steps"}})


def section(args, kind, runs, metrics, data, settings) -> dict:
    full = args.steps == DEFAULT_STEPS[kind] and args.seeds >= DEFAULT_SEEDS[kind] and not args.quick
    return {
        "what": f"WGAN (clipping), WGAN-GP and SN-GAN critics beside a non-saturating GAN on {kind}, "
                "final generators",
        "command": "python experiments/wgan.py " + " ".join(sys.argv[1:]),
        "budget": {"name": "quick" if args.quick else "full" if full else "reduced",
                   "steps": args.steps, "seeds": args.seeds, "n_critic": N_CRITIC,
                   "default_steps": DEFAULT_STEPS[kind], "default_seeds": DEFAULT_SEEDS[kind]},
        "settings": {"train_config": {m: {**asdict(config(kind, m, 0, args.steps)), "seed": "<seed>"}
                                      for m in METHODS},
                     "spectral_norm": [m for m in METHODS if METHODS[m][1]],
                     "critic_probe": f"{N_PROBE} points on lines between training samples (seed 2"
                                     " on the mixtures; the tracking digits on MNIST) and as many "
                                     "generated ones (critic_probe)",
                     "methods": list(METHODS), "seeds": list(seeds(args)),
                     "hidden": TOY_HIDDEN, "data": data.source, "n_train": len(data),
                     **settings},
        **stamp(args.start),  # machine, versions, date and this section's wall time
        "runs": runs,
        "summary": summarise_by_loss([{**r, "loss": r["method"]} for r in runs], metrics),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("command", nargs="+", choices=("ring", "grid", "mnist"),
                   help="the sections to run, one after the other")
    add_common_arguments(p, RESULTS, seeds=None)
    p.add_argument("--steps", type=int, default=None,
                   help="generator steps per run (default 4000 ring/grid, 1000 MNIST)")
    p.add_argument("--n-eval", type=int, default=5000, help="MNIST: generated and real "
                   "images for the final measurement")
    p.add_argument("--n-track", type=int, default=1000, help="MNIST: samples per FID "
                   "evaluation during training")
    p.add_argument("--n-track-real", type=int, default=5000, help="MNIST: training digits "
                   "the FID during training compares with")
    p.add_argument("--first-seed", type=int, default=0, help="seeds first-seed, first-seed + 1, "
                   "...: to split one section's runs over processes (merge the sections' runs)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quick:
        args.seeds, args.n_eval, args.n_track, args.n_track_real = min(args.seeds or 2, 2), 500, 200, 500
        args.steps = args.steps or 20
    steps, n_seeds = args.steps, args.seeds
    for kind in args.command:
        args.steps = steps or DEFAULT_STEPS[kind]
        args.seeds = n_seeds or DEFAULT_SEEDS[kind]
        args.start = time.perf_counter()
        sec = run_mnist(args) if kind == "mnist" else run_mixture(args, kind)
        write_section(args.out, kind, sec)
        print(f"wrote section {kind!r} of {args.out} ({sec['wall_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
