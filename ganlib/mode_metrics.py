"""Counting modes: the 2-D mixtures and stacked MNIST of the mode-collapse literature.

- 2-D ring (8 modes) and grid (25 modes), as in VEEGAN (Srivastava et al. 2017) and PacGAN
  (Lin et al. 2018): each sample goes to its nearest mode; it is *high quality* if it lies
  within 3 standard deviations of that mode; a mode is *captured* if at least one
  high-quality sample is assigned to it; the *reverse KL* is KL(q || uniform) for the
  histogram q of high-quality samples over modes. These follow PacGAN's released code
  (`MetricLogger` in synthetic_data_experiments/PacGAN/pacgan/extensions.py), which uses
  2,500 samples.
- Stacked MNIST (Metz et al. 2017; VEEGAN; PacGAN): three digits as colour channels, 1,000
  modes; each channel is classified by ganlib's MNIST classifier; a mode is captured if at
  least one of 26,000 samples falls in it; KL(q || uniform) over the 1,000 modes.

Introduced in chapter 6 (mode collapse) and chapter 7 (evaluating GANs).
"""
from __future__ import annotations

import torch

from .metrics import _classifier, _inside, _knn_radii, embed, kl_to_uniform
from .mixtures import MIXTURES, mixture as _mixture
from .sampling import generate_many

N_MIXTURE = 2_500    # samples per 2-D evaluation (VEEGAN, PacGAN)
N_STACKED = 26_000   # samples per stacked-MNIST evaluation (Metz et al. 2017, PacGAN)


def mixture_metrics(x: torch.Tensor, kind: str = "ring", means: torch.Tensor | None = None,
                    std: float | None = None, threshold: float = 3.0) -> dict:
    """Modes captured, % high-quality samples and reverse KL for 2-D points.

    Args:
        x: generated points `(N, 2)`; 2,500 in the papers.
        kind: "ring" (8 modes, std 0.01) or "grid" (25 modes, std 0.05), the settings of
            `ganlib.mixtures.ring_of_gaussians` / `grid_of_gaussians`.
        means, std: the mixture's `(K, 2)` means and standard deviation, if not the defaults
            (e.g. `ring_means(8, radius=2.0)` and 0.02 for VEEGAN's ring).
        threshold: how many standard deviations from its mode a high-quality sample may be.
    Returns:
        a dict with keys "modes" (modes captured, int), "num_modes" (K),
        "high_quality_pct" (% of samples, in [0, 100]) and "reverse_kl" (KL(q, uniform)
        in nats, inf when no sample is high quality).
    Introduced in chapter 6 (mode collapse).
    """
    if means is None:
        means, default_std = _mixture(kind)
        std = default_std if std is None else std
    elif std is None:
        raise ValueError("pass the mixture's std along with its means")
    if x.dim() != 2 or x.shape[1] != means.shape[1]:
        raise ValueError(f"expected points (N, {means.shape[1]}), got {tuple(x.shape)}")
    dist = torch.cdist(x.double().cpu(), means.double()) / std  # (N, K), in standard deviations
    nearest_dist, nearest = dist.min(1)  # (N,), (N,)
    high_quality = nearest_dist < threshold
    counts = torch.bincount(nearest[high_quality], minlength=len(means))  # (K,)
    return {"modes": int((counts > 0).sum()), "num_modes": len(means),
            "high_quality_pct": 100.0 * high_quality.double().mean().item(),
            "reverse_kl": kl_to_uniform(counts) if counts.sum() > 0 else float("inf")}


def point_recall(x_real: torch.Tensor, x_fake: torch.Tensor, k: int = 3) -> float:
    """Recall of 2-D points (Kynkäänniemi et al. 2019): the fraction of real points inside
    the union of balls around the generated points, each reaching its k-th neighbour.
    A generator that misses modes leaves their real points uncovered.
    Introduced in chapter 6 (mode collapse)."""
    return _inside(x_real, x_fake, _knn_radii(x_fake, k, 2500), 2500).double().mean().item()


def summarize(values: list[dict], keys=None) -> dict:
    """Mean, sample standard deviation, standard error and count over runs (trials, seeds)
    of each metric: `{name: {"mean", "std", "se", "n"}}`.

    `values` holds one dict of numbers per run; `keys` picks the metrics (default: every
    key of the first run). std uses n - 1 and se = std / sqrt(n), as PacGAN reports; both
    are nan for a single run. Introduced in chapter 5 (BCE vs least squares) and chapter 6.
    """
    out = {}
    for key in keys or list(values[0]):
        v = torch.tensor([float(m[key]) for m in values], dtype=torch.float64)
        std = v.std().item() if len(v) > 1 else float("nan")
        out[key] = {"mean": v.mean().item(), "std": std, "se": std / len(v) ** 0.5,
                    "n": len(v)}
    return out


def compare(a: list[dict], b: list[dict], keys=None, z: float = 2.0) -> dict:
    """Which differences between two sets of runs stand out from the seed-to-seed noise.

    For each metric: the two means, their difference `a - b`, its standard error
    `sqrt(se_a^2 + se_b^2)` (independent runs) and `"clear"`: True when the difference is
    more than `z` standard errors (default 2) from 0. With five runs a side this is a rough
    guide, not a test at a stated level. Returns `{name: {"mean_a", "mean_b", "diff", "se",
    "clear"}}`. Introduced in chapter 5 (BCE vs least squares).
    """
    sa, sb = summarize(a, keys), summarize(b, keys)
    out = {}
    for key in sa:
        diff = sa[key]["mean"] - sb[key]["mean"]
        se = (sa[key]["se"] ** 2 + sb[key]["se"] ** 2) ** 0.5
        out[key] = {"mean_a": sa[key]["mean"], "mean_b": sb[key]["mean"], "diff": diff,
                    "se": se, "clear": bool(abs(diff) > z * se) if se == se else False}
    return out


@torch.no_grad()
def stacked_mnist_modes(x: torch.Tensor, classifier="mnist", batch_size: int = 500) -> torch.Tensor:
    """The mode of each stacked-MNIST image: 100 * digit(R) + 10 * digit(G) + digit(B).

    Args:
        x: images `(N, 3, 28, 28)` in [-1, 1].
    Returns:
        `(N,)` long tensor of modes in 0..999, on the CPU (same labels as
        `ganlib.data.stacked_mnist`).
    Introduced in chapter 6 (mode collapse).
    """
    if x.dim() != 4 or tuple(x.shape[1:]) != (3, 28, 28):
        raise ValueError(f"stacked MNIST images are (N, 3, 28, 28); got {tuple(x.shape)}")
    channels = x.reshape(-1, 1, 28, 28)  # (N, 3, 28, 28) -> (3N, 1, 28, 28), R, G, B in turn
    digits = embed(channels, classifier, batch_size, check=False).logits.argmax(1).cpu()
    digits = digits.view(-1, 3)  # (N, 3)
    return digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]


def mode_coverage(modes: torch.Tensor, num_modes: int) -> dict:
    """Modes captured (at least one sample) and KL(q || uniform) for mode labels `(N,)`.

    Returns `{"modes": int, "num_modes": num_modes, "kl_to_uniform": nats}`.
    Introduced in chapter 6 (mode collapse).
    """
    counts = torch.bincount(modes.cpu().long(), minlength=num_modes)
    if len(counts) > num_modes:
        raise ValueError(f"mode labels go up to {len(counts) - 1} but num_modes={num_modes}")
    return {"modes": int((counts > 0).sum()), "num_modes": num_modes,
            "kl_to_uniform": kl_to_uniform(counts)}


def stacked_mnist_metrics(x: torch.Tensor, classifier="mnist", batch_size: int = 500) -> dict:
    """Modes captured (of 1,000) and KL to uniform for stacked-MNIST images `(N, 3, 28, 28)`.

    The papers use N = 26,000. Returns `{"modes", "num_modes", "kl_to_uniform"}`.
    Introduced in chapter 6 (mode collapse).
    """
    return mode_coverage(stacked_mnist_modes(x, classifier, batch_size), 1000)


def mode_evaluator(kind: str = "ring", n: int | None = None, batch_size: int = 2_500,
                   seed: int | None = 0, **mixture):
    """Make `evaluate(G)` for `ganlib.train(..., evaluate=...)` that counts modes.

    Args:
        kind: "ring", "grid" (2-D points) or "stacked-mnist" (images `(N, 3, 28, 28)`).
        n: samples per evaluation; default 2,500 for 2-D, 26,000 for stacked MNIST.
        seed: fixed noise for every evaluation (None: fresh noise each time).
        mixture: `means=`, `std=` for a 2-D mixture other than the defaults.
    Returns:
        `evaluate(G) -> dict` of `mixture_metrics` (2-D) or `stacked_mnist_metrics`; use
        `TrainConfig(eval_every=..., best_metric="reverse_kl")` ("kl_to_uniform" for
        stacked MNIST) to keep the best generator.
    Introduced in chapter 6 (mode collapse).
    """
    if kind not in (*MIXTURES, "stacked-mnist") and "means" not in mixture:
        raise ValueError(f"unknown kind {kind!r}; choose ring, grid or stacked-mnist")
    n = n or (N_STACKED if kind == "stacked-mnist" else N_MIXTURE)
    clf = _classifier("mnist", "cpu") if kind == "stacked-mnist" else None

    def evaluate(G) -> dict:
        x = generate_many(G, n, batch_size, seed)
        if clf is not None:
            values = stacked_mnist_metrics(x, clf.to(x.device), batch_size)
        else:
            values = mixture_metrics(x, kind, **mixture)
        return {k: float(v) for k, v in values.items()}
    return evaluate
