"""Keeping a Wasserstein critic Lipschitz: weight clipping, spectral normalisation, and the
check that a gradient penalty never meets a BatchNorm critic.

The Kantorovich-Rubinstein dual of the earth mover's distance is a supremum over
1-Lipschitz functions, so a WGAN's critic D must be kept (roughly) 1-Lipschitz. There are
three classic ways: clip every weight into [-c, c] after each critic step (WGAN, Arjovsky
et al. 2017), penalise gradient norms away from 1 (WGAN-GP, Gulrajani et al. 2017:
`ganlib.losses.gradient_penalty`), or divide each layer's weight by its largest singular
value (spectral normalisation, Miyato et al. 2018, through PyTorch's own
`torch.nn.utils.parametrizations.spectral_norm`). Introduced in chapter 8.
"""
from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.nn.utils import parametrizations

# The layers spectral_norm normalises: every layer that multiplies by a weight matrix.
_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d,
             nn.ConvTranspose2d, nn.ConvTranspose3d)
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


@torch.no_grad()
def clip_weights(D: nn.Module, c: float) -> nn.Module:
    """Clamp every parameter of the critic `D` into `[-c, c]`, in place (WGAN's weight
    clipping, applied after each critic step; the paper uses c = 0.01). Returns `D`.

    A crude bound on the Lipschitz constant: with every weight in [-c, c], a layer of
    width n can stretch its input by at most c n. Chapter 8 measures what it costs.
    """
    if c <= 0:
        raise ValueError(f"the clipping bound c must be positive, got {c}; WGAN uses 0.01")
    for p in D.parameters():
        p.clamp_(-c, c)
    return D


def spectral_norm(D: nn.Module, n_power_iterations: int = 1) -> nn.Module:
    """Spectrally normalise every Linear and Conv layer of `D`, in place; returns `D`.

    Each layer's weight W is replaced (through PyTorch's
    `torch.nn.utils.parametrizations.spectral_norm`) by W / sigma(W), sigma being W's
    largest singular value (for a convolution, that of the weight reshaped to
    `(out_channels, in_channels * kH * kW)`), estimated by `n_power_iterations` steps of
    power iteration per forward pass in training mode (Miyato et al. 2018). A network of
    such layers and 1-Lipschitz activations (ReLU, LeakyReLU, maxout) is at most
    1-Lipschitz in that sense. Layers already normalised are left alone. Introduced in
    chapter 8.
    """
    if n_power_iterations < 1:
        raise ValueError(f"n_power_iterations must be >= 1, got {n_power_iterations}")
    layers = [m for m in D.modules() if isinstance(m, _WEIGHTED)
              and not parametrizations.parametrize.is_parametrized(m, "weight")]
    for m in layers:
        dim = 1 if isinstance(m, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)) else 0
        parametrizations.spectral_norm(m, n_power_iterations=n_power_iterations, dim=dim)
    return D


def largest_singular_values(D: nn.Module) -> list[float]:
    """The largest singular value of each Linear/Conv layer's (effective) weight, reshaped
    to a matrix `(out, rest)`, exactly (`torch.linalg.svdvals`); for checking
    `spectral_norm` and weight clipping. Introduced in chapter 8."""
    out = []
    with torch.no_grad():
        for m in D.modules():
            if isinstance(m, _WEIGHTED):
                W = m.weight  # the parametrized (normalised) weight when there is one
                if isinstance(m, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
                    W = W.transpose(0, 1)
                out.append(torch.linalg.svdvals(W.flatten(1).double())[0].item())
    return out


def has_batch_norm(D: nn.Module) -> bool:
    """True when any module of `D` is a BatchNorm layer."""
    return any(isinstance(m, _BATCH_NORMS) for m in D.modules())


def check_critic(D: nn.Module, loss) -> None:
    """Warn when a gradient penalty meets a critic with BatchNorm.

    The penalty asks each sample's gradient `grad_x D(x)` to have norm 1, but BatchNorm
    makes every score depend on the whole batch, so that per-sample gradient is not the
    one penalised and the constraint is not the one the theory needs. Gulrajani et al.
    (2017, sec. 4) drop BatchNorm from the critic (use none, or LayerNorm). `loss` is a
    `ganlib.losses.GANLoss`; `ganlib.train` calls this once before training.
    Introduced in chapter 8.
    """
    if getattr(loss, "gradient_penalty", False) and has_batch_norm(D):
        warnings.warn(f"the critic {type(D).__name__} has BatchNorm, and loss {loss.name!r} "
                      "adds a gradient penalty: BatchNorm mixes the samples of a batch, so "
                      "the per-sample gradient norms the penalty constrains are not D's. "
                      "Build the critic without BatchNorm (WGAN-GP uses none, or LayerNorm), "
                      "e.g. ganlib.lipschitz.without_batch_norm(D).", UserWarning, stacklevel=2)


def without_batch_norm(D: nn.Module) -> nn.Module:
    """Replace every BatchNorm layer of `D` by `nn.Identity`, in place; returns `D`.

    For building a WGAN-GP critic from a discriminator that has BatchNorm (DCGAN's):
    the same layers otherwise. Introduced in chapter 8.
    """
    for name, child in list(D.named_children()):
        if isinstance(child, _BATCH_NORMS):
            setattr(D, name, nn.Identity())
        else:
            without_batch_norm(child)
    return D


def input_gradient_norms(D: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`||grad_x D(x)||_2` for each sample of `x` `(N, ...)`, returned as `(N,)`: the local
    slope of the critic, which a 1-Lipschitz critic keeps at most 1 (WGAN-GP asks for 1
    exactly between the data and the samples). D's own gradients are left untouched.
    Introduced in chapter 8."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x).sum(), x)
    return grad.flatten(1).norm(dim=1).detach()
