"""ganlib.latent: lerp and slerp against closed forms, and the mean norm of Gaussian noise."""
from __future__ import annotations

import math

import pytest
import torch

from ganlib.latent import chi_mean, lerp, slerp

T = torch.linspace(0, 1, 11)


def test_lerp_is_the_straight_line_with_a_leading_path_dimension():
    z0, z1 = torch.tensor([1.0, -2.0, 3.0]), torch.tensor([5.0, 2.0, -1.0])
    path = lerp(z0, z1, T)
    assert path.shape == (11, 3)
    for i, t in enumerate(T.tolist()):
        assert torch.allclose(path[i], torch.tensor([1 + 4 * t, -2 + 4 * t, 3 - 4 * t]), atol=1e-6)
    assert lerp(z0, z1, 0.5).shape == (1, 3)
    batch = lerp(torch.zeros(4, 2), torch.ones(4, 2), [0.0, 0.25])  # a batch of 4 pairs
    assert batch.shape == (2, 4, 2) and torch.all(batch[1] == 0.25)


def test_slerp_between_orthogonal_unit_vectors_is_the_quarter_circle():
    e0, e1 = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    path = slerp(e0, e1, T)
    angle = T * math.pi / 2
    want = torch.stack([angle.cos(), angle.sin(), torch.zeros(11)], dim=1)  # cos, sin of t pi/2
    assert torch.allclose(path, want, atol=1e-6)


def test_slerp_keeps_the_norm_and_turns_at_constant_speed():
    g = torch.Generator().manual_seed(0)
    z0 = torch.randn(64, generator=g, dtype=torch.float64)
    z1 = torch.randn(64, generator=g, dtype=torch.float64)
    z1 = z1 * z0.norm() / z1.norm()  # equal norms
    path = slerp(z0, z1, T.double())
    assert torch.allclose(path.norm(dim=1), z0.norm().expand(11), rtol=1e-10)
    w = torch.arccos(torch.dot(z0, z1) / z0.norm() ** 2)
    angle_from_z0 = torch.arccos((path @ z0 / (path.norm(dim=1) * z0.norm())).clamp(-1, 1))
    assert torch.allclose(angle_from_z0, T.double() * w, atol=1e-6)
    assert torch.allclose(path[0], z0) and torch.allclose(path[-1], z1)
    # lerp's midpoint is shorter by cos(w / 2): the chord against the arc
    assert math.isclose(lerp(z0, z1, 0.5).norm().item(), (z0.norm() * torch.cos(w / 2)).item(),
                        rel_tol=1e-10)


def test_slerp_of_a_batch_takes_each_pairs_own_angle():
    g = torch.Generator().manual_seed(1)
    z0, z1 = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g)
    path = slerp(z0, z1, [0.3, 0.7])
    assert path.shape == (2, 5, 8)
    for i in range(5):
        assert torch.allclose(path[:, i], slerp(z0[i], z1[i], [0.3, 0.7]), atol=1e-6)
    # Shoemake's formula written out for the first pair at t = 0.3:
    w = torch.arccos(torch.dot(z0[0], z1[0]) / (z0[0].norm() * z1[0].norm()))
    want = (torch.sin(0.7 * w) * z0[0] + torch.sin(0.3 * w) * z1[0]) / torch.sin(w)
    assert torch.allclose(path[0, 0], want, atol=1e-5)


def test_slerp_of_parallel_vectors_falls_back_to_lerp_without_nans():
    z0 = torch.tensor([1.0, 2.0])
    path = slerp(z0, 3 * z0, T)  # angle 0: the formula is 0 / 0
    assert torch.isfinite(path).all()
    assert torch.allclose(path, lerp(z0, 3 * z0, T), atol=1e-6)


@pytest.mark.parametrize("d, want", [(1, math.sqrt(2 / math.pi)), (2, math.sqrt(math.pi / 2)),
                                     (3, 2 * math.sqrt(2 / math.pi))])
def test_chi_mean_matches_the_closed_forms_in_low_dimensions(d, want):
    assert math.isclose(chi_mean(d), want, rel_tol=1e-12)


def test_gaussian_norms_concentrate_at_chi_mean_and_the_lerp_midpoint_falls_short():
    d, n = 100, 20_000
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)
    norms = z0.norm(dim=1)
    assert math.isclose(norms.mean().item(), chi_mean(d), rel_tol=2e-3)
    assert math.isclose(norms.std().item(), math.sqrt(0.5), rel_tol=0.05)  # ~1/sqrt(2) for any d
    mid_lerp = lerp(z0, z1, 0.5)[0].norm(dim=1)
    mid_slerp = slerp(z0, z1, 0.5)[0].norm(dim=1)
    assert math.isclose(mid_lerp.mean().item(), math.sqrt(d / 2), rel_tol=0.01)
    shorter = (mid_lerp[:2000, None] < norms[None, :]).float().mean()  # P(midpoint < |z|)
    assert shorter > 0.99  # a lerp midpoint is shorter than almost every z
    assert math.isclose(mid_slerp.mean().item(), chi_mean(d), rel_tol=0.01)


def test_chi_mean_refuses_a_dimension_below_one():
    with pytest.raises(ValueError, match="at least 1"):
        chi_mean(0)
