"""Optimizers: Adam as every ganlib training loop builds it.

Introduced in chapter 3 (a first GAN on MNIST).
"""
from __future__ import annotations

import torch
from torch.torch_version import TorchVersion


def fused_adam_supported(device: torch.device | str, version: str | None = None) -> bool:
    """True when torch `version` (default: this one) has a fused Adam kernel for `device`:
    CUDA from torch 2.0, the CPU from torch 2.4 (older versions refuse `fused=True` there)."""
    device = torch.device(device)
    version = TorchVersion(version or torch.__version__)
    if device.type == "cuda":
        return version >= "2.0"
    if device.type == "cpu":
        return version >= "2.4"
    return False


def make_adam(model, lr: float, betas) -> torch.optim.Adam:
    """Adam over `model`'s parameters, with the fused kernel where this torch has one for
    their device (`fused_adam_supported`): one pass over all parameters, the same update
    as the default implementation, several times faster for small models. Elsewhere it is
    torch's default Adam. Introduced in chapter 3.
    """
    params = list(model.parameters())
    fused = bool(params) and fused_adam_supported(params[0].device)
    return torch.optim.Adam(params, lr=lr, betas=tuple(betas), fused=fused or None)
