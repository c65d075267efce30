"""The 2-D Gaussian mixtures of the mode-collapse literature: PacGAN's ring of 8 and grid
of 25, their means, sampling, and each trial's fixed training set.

Ring: 8 modes on the unit circle, std 0.01; grid: 25 modes at {-4, -2, 0, 2, 4}^2, std 0.05
(VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al. 2018). Introduced in chapter 6 (mode
collapse); chapters 5 and 7 use them too.
"""
from __future__ import annotations

import math

import torch

from .image_data import ImageData


def ring_means(k: int = 8, radius: float = 1.0) -> torch.Tensor:
    """Means of the ring mixture, `(k, 2)`, at angles 2*pi*i/k for i = 0..k-1.

    Not `linspace(0, 2*pi, k)`, which puts the last mean on top of the first.
    """
    angles = 2 * math.pi * torch.arange(k, dtype=torch.float64) / k
    return torch.stack([radius * angles.cos(), radius * angles.sin()], dim=1).float()


def grid_means(side: int = 5, spacing: float = 2.0) -> torch.Tensor:
    """Means of the grid mixture, `(side**2, 2)`: {-4, -2, 0, 2, 4}^2 by default."""
    ticks = (torch.arange(side, dtype=torch.float32) - (side - 1) / 2) * spacing
    gx, gy = torch.meshgrid(ticks, ticks, indexing="ij")
    return torch.stack([gx.flatten(), gy.flatten()], dim=1)


# kind: (means, std) with PacGAN's settings
MIXTURES = {"ring": (ring_means, 0.01), "grid": (grid_means, 0.05)}


def mixture(kind: str) -> tuple[torch.Tensor, float]:
    """`(means (K, 2), std)` of the mixture named `kind` ("ring" or "grid")."""
    if kind not in MIXTURES:
        raise ValueError(f"unknown mixture {kind!r}; choose one of {', '.join(MIXTURES)}")
    make_means, std = MIXTURES[kind]
    return make_means(), std


def sample_mixture(means: torch.Tensor, n: int, std: float,
                   generator: torch.Generator | None = None):
    """`n` points from an equal-weight Gaussian mixture; returns `(points (n, 2), modes (n,))`."""
    modes = torch.randint(len(means), (n,), generator=generator)
    points = means[modes] + std * torch.randn(n, means.shape[1], generator=generator)
    return points, modes


def ring_of_gaussians(n: int = 100_000, k: int = 8, radius: float = 1.0, std: float = 0.01,
                      seed: int = 0) -> ImageData:
    """A ring of `k` Gaussians (VEEGAN/PacGAN's 2-D benchmark), `(n, 2)` points."""
    g = torch.Generator().manual_seed(seed)
    x, modes = sample_mixture(ring_means(k, radius), n, std, g)
    return ImageData(x, modes, "ring", f"ring of {k} Gaussians, radius {radius}, std {std}")


def grid_of_gaussians(n: int = 100_000, side: int = 5, spacing: float = 2.0,
                      std: float = 0.05, seed: int = 0) -> ImageData:
    """A grid of `side**2` Gaussians, means {-4, -2, 0, 2, 4}^2 by default, `(n, 2)` points."""
    g = torch.Generator().manual_seed(seed)
    x, modes = sample_mixture(grid_means(side, spacing), n, std, g)
    return ImageData(x, modes, "grid", f"grid of {side * side} Gaussians, std {std}")


def trial_data(kind: str, seeds: list[int], n: int, pack: int = 1) -> torch.Tensor:
    """Each trial's fixed training set: `(T, n, pack, 2)`, n tuples of `pack` points.

    Trial t draws n points as `ring_of_gaussians(n, seed=seeds[t])` (grid:
    `grid_of_gaussians`) does; with `pack > 1` each tuple's slot s is a resample (with
    replacement) of those points, fixed for the whole run, as PacGAN's
    `GaussianPackingMixture` builds its data set. Introduced in chapter 6.
    """
    means, std = mixture(kind)
    out = []
    for s in seeds:
        g = torch.Generator().manual_seed(s)
        x, _ = sample_mixture(means, n, std, g)  # (n, 2)
        if pack > 1:
            x = torch.stack([x[torch.randint(n, (n,), generator=g)] for _ in range(pack)], 1)
        out.append(x.view(n, pack, 2))
    return torch.stack(out)


def reference_points(kind: str, n: int, seed: int = 12345) -> torch.Tensor:
    """A fixed real sample `(n, 2)` of the mixture, e.g. for recall."""
    means, std = mixture(kind)
    return sample_mixture(means, n, std, torch.Generator().manual_seed(seed))[0]


__all__ = ["ring_means", "grid_means", "MIXTURES", "mixture", "sample_mixture",
           "ring_of_gaussians", "grid_of_gaussians", "trial_data", "reference_points"]
