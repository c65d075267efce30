"""Paths through the latent space: linear and spherical interpolation, and the typical norm
of Gaussian noise.

A standard Gaussian z in d dimensions has norm ‖z‖ close to sqrt(d) (the chi distribution:
mean `chi_mean(d)`, standard deviation about 1/sqrt(2), whatever d). The straight line
between two such vectors passes much closer to the origin (about sqrt(d/2) at the
midpoint of two independent ones), where the generator saw no noise in training;
the spherical path keeps the norm. Introduced in chapter 9 (conditional GANs and the
latent space).
"""
from __future__ import annotations

import math

import torch


def _path_t(t, z0: torch.Tensor) -> torch.Tensor:
    """`t` as a tensor `(T, 1, ..., 1)` that broadcasts against `z0 (..., d)`."""
    t = torch.as_tensor(t, dtype=z0.dtype, device=z0.device)
    return t.reshape(-1, *([1] * z0.dim()))


def lerp(z0: torch.Tensor, z1: torch.Tensor, t) -> torch.Tensor:
    """Linear interpolation `(1 - t) z0 + t z1`.

    Args:
        z0, z1: end points `(..., d)` of the same shape (one pair, or a batch of pairs).
        t: a number or a sequence of `T` numbers in [0, 1].
    Returns:
        `(T, ..., d)`: the path at each t (T = 1 for a single number).
    Introduced in chapter 9.
    """
    t = _path_t(t, z0)
    return (1 - t) * z0 + t * z1


def slerp(z0: torch.Tensor, z1: torch.Tensor, t, eps: float = 1e-7) -> torch.Tensor:
    """Spherical linear interpolation (Shoemake 1985), used for GAN latents by White (2016)::

        slerp(z0, z1; t) = sin((1 - t) w) / sin(w) z0 + sin(t w) / sin(w) z1,

    where w is the angle between z0 and z1. The path turns at a constant angular speed
    in the plane of z0 and z1; between two vectors of equal norm it keeps that norm. Where
    w is nearly 0 or pi (parallel or opposite end points) the formula is 0/0 and the result
    is `lerp`.

    Args:
        z0, z1: end points `(..., d)` of the same shape; the angle is taken over the last
            dimension, separately for each pair of a batch.
        t: a number or a sequence of `T` numbers in [0, 1].
    Returns:
        `(T, ..., d)`, like `lerp`.
    Introduced in chapter 9.
    """
    t = _path_t(t, z0)
    cos_w = (z0 * z1).sum(-1, keepdim=True) / (z0.norm(dim=-1, keepdim=True)
                                              * z1.norm(dim=-1, keepdim=True))
    w = torch.arccos(cos_w.clamp(-1.0, 1.0))  # (..., 1)
    sin_w = torch.sin(w)
    ok = sin_w.abs() > eps
    safe = torch.where(ok, sin_w, torch.ones_like(sin_w))  # no 0/0 where we fall back
    spherical = (torch.sin((1 - t) * w) * z0 + torch.sin(t * w) * z1) / safe
    return torch.where(ok, spherical, lerp(z0, z1, t))


def chi_mean(d: int) -> float:
    """The mean norm of a standard Gaussian vector in d dimensions (the chi distribution)::

        E‖z‖ = sqrt(2) Gamma((d + 1) / 2) / Gamma(d / 2),

    just below sqrt(d) (about sqrt(d - 1/2)). Introduced in chapter 9.
    """
    if d < 1:
        raise ValueError(f"the dimension must be at least 1, got {d}")
    return math.sqrt(2) * math.exp(math.lgamma((d + 1) / 2) - math.lgamma(d / 2))
