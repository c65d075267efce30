"""Conditional GANs and the latent space (chapter 9): the chapter's run, several seeds.

    python experiments/conditional.py [--seeds 3] [--steps 5000] [--data mnist fashion-mnist]
    python experiments/conditional.py --quick --out /tmp/smoke.json   # a smoke test

For each data set and seed, trains chapter 9's conditional pair (`build_models("cgan-mlp")`:
a conditional BatchNorm MLP generator and a projection discriminator, BCE, batch 64, Adam
1e-3, betas (0.5, 0.999)) and measures the final generator with the data set's shipped
classifier:

- conditional accuracy, overall and per class, on `--n-per-class` samples of each class
  drawn from fixed noise (`ganlib.conditional.conditional_accuracy`);
- per-class FID against as many test images of each class, and the floor (as many
  training images of each class against the same test images);
- interpolation smoothness, for lerp and slerp (`ganlib.latent`) between random pairs
  of noise vectors with a fixed class: along 11 points of each path, the classifier's
  probability of the requested class (its mean and its lowest point, the midpoint dip),
  and the path's length in the classifier's features divided by the straight distance
  between its ends (1 for a path that moves the features in a straight line, larger for
  one that detours).

Writes one section per data set of `experiments/results/conditional.json`, with the
per-seed numbers, their summary, and the lerp-minus-slerp comparison
(`ganlib.mode_metrics.compare`).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import ganlib
from ganlib.classifier import load_classifier
from ganlib.conditional import conditional_accuracy, conditional_samples, per_class_fid
from ganlib.latent import lerp, slerp
from ganlib.metrics import embed
from ganlib.mode_metrics import compare, summarize
from ganlib.sampling import generate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record import add_common_arguments, stamp, write_section  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "conditional.json"
PATHS = {"lerp": lerp, "slerp": slerp}
N_T = 11  # points along each interpolation path, ends included


def config(data: str, seed: int, steps: int) -> ganlib.TrainConfig:
    """Chapter 9's settings for the conditional pair."""
    return ganlib.TrainConfig(data=data, model="cgan-mlp", loss="bce", batch_size=64,
                              num_steps=steps, lr_g=1e-3, lr_d=1e-3, betas=(0.5, 0.999),
                              seed=seed, device="cpu", progress=False)


def per_class_indices(labels: torch.Tensor, n: int) -> torch.Tensor:
    """The first `n` indices of each class 0..9, class by class."""
    return torch.cat([(labels == k).nonzero()[:n, 0] for k in range(10)])


@torch.no_grad()
def smoothness(G, clf, n_pairs: int, seed: int) -> dict:
    """For lerp and slerp: mean and lowest class probability along the paths, and the
    feature-space path length over the straight distance (see the module docstring)."""
    g = torch.Generator().manual_seed(seed)
    z0, z1 = torch.randn(2, n_pairs, G.latent_dim, generator=g)  # (n_pairs, d) each
    y = torch.arange(n_pairs) % 10                                  # every class in turn
    t = torch.linspace(0, 1, N_T)
    out = {}
    for name, path in PATHS.items():
        feats, probs = [], []
        for z_t in path(z0, z1, t):                                 # (n_pairs, d) per t
            e = embed(generate(G, z_t, y), clf, check=False)
            feats.append(e.features)
            probs.append(F.softmax(e.logits, 1)[torch.arange(n_pairs), y])
        feats, probs = torch.stack(feats), torch.stack(probs)       # (T, n, F), (T, n)
        steps = (feats[1:] - feats[:-1]).norm(dim=-1).sum(0)        # (n,) path length
        straight = (feats[-1] - feats[0]).norm(dim=-1).clamp(min=1e-8)
        along = probs.mean(1)                                       # (T,) mean over pairs
        out[name] = {"p_mean": probs.mean().item(), "p_min": along.min().item(),
                     "detour": (steps / straight).median().item(), "p_along": along.tolist()}
    return out


def run(args, name: str) -> dict:
    data = ganlib.load_dataset(name, root=args.root)
    test = ganlib.load_dataset(name, root=args.root, train=False)
    clf = load_classifier(name)
    i_test, i_train = per_class_indices(test.y, args.n_per_class), per_class_indices(data.y, args.n_per_class)
    x_test, y_test = test.x[i_test], test.y[i_test]
    floor = per_class_fid(x_test, y_test, data.x[i_train], data.y[i_train], clf)
    runs, start = [], time.perf_counter()
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        t0 = time.perf_counter()
        ganlib.seed_everything(seed)
        G, D = ganlib.build_models("cgan-mlp")
        ganlib.train(G, D, data, config(name, seed, args.steps))
        G.eval()
        x, y = conditional_samples(G, args.n_per_class, seed=args.noise_seed)
        acc, per_class = conditional_accuracy(x, y, clf)
        fid = per_class_fid(x_test, y_test, x, y, clf)
        smooth = smoothness(G, clf, args.n_pairs, args.noise_seed)
        runs.append({"seed": seed, "seconds": time.perf_counter() - t0,
                     "metrics": {"accuracy": acc, "fid_mean": fid.mean().item(),
                                 **{f"{p}_{k}": smooth[p][k] for p in PATHS for k in ("p_mean", "p_min", "detour")}},
                     "per_class_accuracy": per_class.tolist(), "per_class_fid": fid.tolist(),
                     "p_along": {p: smooth[p]["p_along"] for p in PATHS}})
        m = runs[-1]["metrics"]
        print(f"{name} seed {seed}: accuracy {acc:.3f}, per-class FID {m['fid_mean']:.2f}, "
              f"p_min lerp {m['lerp_p_min']:.3f} slerp {m['slerp_p_min']:.3f}, detour lerp "
              f"{m['lerp_detour']:.3f} slerp {m['slerp_detour']:.3f} ({runs[-1]['seconds']:.0f} s)", flush=True)
    metrics = [r["metrics"] for r in runs]
    as_path = lambda p: [{k: m[f"{p}_{k}"] for k in ("p_mean", "p_min", "detour")} for m in metrics]
    return {
        "what": f"chapter 9's conditional GAN on {name}: conditional accuracy, per-class FID, "
                "interpolation smoothness (lerp vs slerp)",
        "command": "python experiments/conditional.py " + " ".join(sys.argv[1:]),
        "budget": {"name": "quick" if args.quick else "full", "steps": args.steps, "seeds": args.seeds},
        "settings": {"train_config": {**config(name, 0, args.steps).__dict__, "seed": "<seed>"},
                     "n_per_class": args.n_per_class, "n_pairs": args.n_pairs, "n_t": N_T,
                     "noise_seed": args.noise_seed, "n_train": len(data),
                     "classifier": f"ganlib's shipped {name} classifier"},
        "floor_per_class_fid": floor.tolist(), "floor_fid_mean": floor.mean().item(),
        **stamp(start),
        "runs": runs, "summary": summarize(metrics),
        "lerp_vs_slerp": compare(as_path("lerp"), as_path("slerp")),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_arguments(p, RESULTS, seeds=3)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=5000, help="generator steps (chapter 9's full budget)")
    p.add_argument("--data", nargs="+", default=["mnist", "fashion-mnist"])
    p.add_argument("--n-per-class", type=int, default=500)
    p.add_argument("--n-pairs", type=int, default=1000, help="interpolation paths per run")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quick:
        args.seeds, args.steps, args.n_per_class, args.n_pairs = min(args.seeds, 2), 20, 20, 50
    for name in args.data:
        section = run(args, name)
        write_section(args.out, name, section)
        print(f"wrote section {name!r} of {args.out} ({section['wall_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
