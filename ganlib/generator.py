"""The base class of every generator: its noise size `latent_dim` and `sample_z`.

Introduced in chapter 3 (a first GAN on MNIST).
"""
from __future__ import annotations

import torch
from torch import nn


class Generator(nn.Module):
    """Base class: holds `latent_dim` and the noise distribution ("normal" or "uniform")."""
    latent_dist = "normal"

    def __init__(self, latent_dim: int):
        super().__init__()
        self.latent_dim = latent_dim

    def sample_z(self, n: int, device=None) -> torch.Tensor:
        """Draw `n` noise vectors `(n, latent_dim)`: N(0, I), or U(-1, 1) for "uniform"."""
        device = device or next(self.parameters()).device
        if self.latent_dist == "uniform":
            return torch.rand(n, self.latent_dim, device=device) * 2 - 1
        return torch.randn(n, self.latent_dim, device=device)
