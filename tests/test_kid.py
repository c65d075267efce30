"""ganlib.kid: KID against a direct double-loop reference, its unbiasedness, and the
nearest-neighbour distances of the memorisation check."""
from __future__ import annotations

import itertools

import pytest
import torch

from ganlib.kid import kid, mmd2_unbiased, nearest_neighbour_distances, polynomial_kernel
from ganlib.metrics import Embedding


def mmd2_by_loops(a, b):
    """The unbiased MMD^2 with k(x, y) = (x . y / F + 1)^3, written from the definition."""
    f = a.shape[1]
    k = lambda x, y: (float(x @ y) / f + 1) ** 3  # noqa: E731
    n, m = len(a), len(b)
    aa = sum(k(a[i], a[j]) for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
    bb = sum(k(b[i], b[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    ab = sum(k(a[i], b[j]) for i in range(n) for j in range(m)) / (n * m)
    return aa + bb - 2 * ab


def test_mmd2_matches_the_definition_computed_by_loops():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(7, 3, generator=g, dtype=torch.float64)
    b = torch.randn(5, 3, generator=g, dtype=torch.float64) + 0.5
    assert mmd2_unbiased(a, b) == pytest.approx(mmd2_by_loops(a, b), rel=1e-10)
    assert polynomial_kernel(a, b).shape == (7, 5)


def test_kid_is_unbiased_for_two_samples_of_one_distribution():
    # Unbiased: over many small pairs the mean is 0 up to its standard error; a biased
    # estimate (the diagonal kept in) would sit clearly above 0 at this size.
    g = torch.Generator().manual_seed(1)
    values = [mmd2_unbiased(torch.randn(20, 4, generator=g), torch.randn(20, 4, generator=g))
              for _ in range(400)]
    mean = sum(values) / len(values)
    sem = (sum((v - mean) ** 2 for v in values) / (len(values) - 1) / len(values)) ** 0.5
    assert abs(mean) < 3 * sem
    assert min(values) < 0 < max(values)  # single estimates fall on both sides of 0


def test_kid_grows_with_the_shift_and_accepts_embeddings():
    g = torch.Generator().manual_seed(2)
    real = torch.randn(600, 8, generator=g)
    shifts = [0.0, 0.3, 1.0]
    kids = [kid(real, torch.randn(600, 8, generator=g) + s, subset_size=200, n_subsets=10)[0]
            for s in shifts]
    assert abs(kids[0]) < kids[1] / 4 and kids[1] < kids[2]
    emb = Embedding(real, torch.zeros(600, 10))
    assert kid(emb, real[:300], subset_size=100, n_subsets=3) == kid(real, real[:300], subset_size=100, n_subsets=3)


def test_kid_refuses_sets_too_small_to_estimate():
    with pytest.raises(ValueError, match="at least 2"):
        mmd2_unbiased(torch.randn(1, 3), torch.randn(5, 3))


def test_nearest_neighbour_distances_find_copies():
    g = torch.Generator().manual_seed(3)
    train = torch.randn(50, 6, generator=g)
    copies = train[[3, 7, 7]]
    fresh = torch.randn(3, 6, generator=g)
    d = nearest_neighbour_distances(torch.cat([copies, fresh]), train, batch_size=2)
    assert d.shape == (6,)
    assert torch.all(d[:3] < 1e-5) and torch.all(d[3:] > 0.1)
    brute = torch.tensor([min(float((q - t).norm()) for t in train) for q in fresh])
    assert torch.allclose(d[3:], brute, atol=1e-5)
