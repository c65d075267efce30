"""Kernel inception distance (KID) on any feature space, and a memorisation check.

KID (Bińkowski et al. 2018, "Demystifying MMD GANs") is the squared maximum mean
discrepancy between two feature sets under the cubic polynomial kernel
`k(x, y) = (x . y / F + 1) ** 3`, estimated without bias: unlike FID, its expectation does
not depend on the number of images, and it is 0 on average for two samples of one
distribution (so a single estimate can be slightly negative). As in the paper and in
torchmetrics, the estimate is averaged over random subsets. Introduced in chapter 7.
"""
from __future__ import annotations

import torch

from .metrics import Embedding


def _features(x) -> torch.Tensor:
    return x.features if isinstance(x, Embedding) else x


def polynomial_kernel(a: torch.Tensor, b: torch.Tensor, degree: int = 3) -> torch.Tensor:
    """`(a_i . b_j / F + 1) ** degree` for features `a (N, F)`, `b (M, F)` -> `(N, M)`."""
    return (a @ b.T / a.shape[1] + 1) ** degree


def mmd2_unbiased(a: torch.Tensor, b: torch.Tensor, degree: int = 3) -> float:
    """The unbiased estimate of MMD^2 between feature sets `a (N, F)` and `b (M, F)`:
    the mean kernel within each set (diagonal left out) minus twice the mean across."""
    a, b = a.double(), b.to(a.device).double()
    n, m = len(a), len(b)
    if n < 2 or m < 2:
        raise ValueError(f"KID needs at least 2 samples a side; got {n} and {m}")
    k_aa, k_bb, k_ab = (polynomial_kernel(a, a, degree), polynomial_kernel(b, b, degree),
                        polynomial_kernel(a, b, degree))
    within_a = (k_aa.sum() - k_aa.diagonal().sum()) / (n * (n - 1))
    within_b = (k_bb.sum() - k_bb.diagonal().sum()) / (m * (m - 1))
    return (within_a + within_b - 2 * k_ab.mean()).item()


def kid(features_a, features_b, subset_size: int = 1000, n_subsets: int = 50,
        seed: int = 0) -> tuple[float, float]:
    """KID between two feature sets (tensors `(N, F)`, `(M, F)` or `Embedding`s, e.g. from
    `ganlib.metrics.embed`): the mean and standard deviation of the unbiased MMD^2 over
    `n_subsets` random subsets of `subset_size` images a side (capped at the smaller set).
    Lower is better; about 0 for two samples of the same distribution. Chapter 7."""
    a, b = _features(features_a), _features(features_b)
    size = min(subset_size, len(a), len(b))
    g = torch.Generator().manual_seed(seed)
    values = torch.tensor([
        mmd2_unbiased(a[torch.randperm(len(a), generator=g)[:size].to(a.device)],
                      b[torch.randperm(len(b), generator=g)[:size].to(b.device)])
        for _ in range(n_subsets)], dtype=torch.float64)
    return values.mean().item(), (values.std().item() if n_subsets > 1 else 0.0)


@torch.no_grad()
def nearest_neighbour_distances(query, reference, batch_size: int = 1000) -> torch.Tensor:
    """For each row of `query (N, F)`, the Euclidean distance to its nearest row of
    `reference (M, F)` -> `(N,)`. With `query` generated features and `reference` the
    training set's, small distances flag copies of training images (chapter 7)."""
    q, r = _features(query).float(), _features(reference).float().to(_features(query).device)
    return torch.cat([torch.cdist(q[i:i + batch_size], r,
                                  compute_mode="donot_use_mm_for_euclid_dist").min(1).values
                      for i in range(0, len(q), batch_size)])
