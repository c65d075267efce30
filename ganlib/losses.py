"""GAN objectives as pure functions of the discriminator's logits.

Every discriminator returns a raw score (a logit) per sample; D(x) = sigmoid(logit) is the
probability of "real" for the BCE objectives. Each objective is a pair
`d_loss(real_logits, fake_logits)` and `g_loss(fake_logits)`, both scalars to minimise.
Introduced in chapter 2 (the minimax game) and chapter 5 (BCE vs least squares).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F


def bce_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor,
               real_label: float = 1.0) -> torch.Tensor:
    """Discriminator loss -E[log D(x)] - E[log(1 - D(G(z)))], from logits.

    log D = -softplus(-logit) and log(1 - D) = -softplus(logit), computed stably.
    `real_label` < 1 is one-sided label smoothing (Salimans et al. 2016): real samples get
    the target `real_label` (e.g. 0.9) instead of 1, fakes keep 0 (chapter 10).
    """
    real = F.softplus(-real_logits).mean()
    if real_label != 1.0:  # BCE with target t: t softplus(-l) + (1 - t) softplus(l)
        real = real_label * real + (1 - real_label) * F.softplus(real_logits).mean()
    return real + F.softplus(fake_logits).mean()


def minimax_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The saturating generator loss of the original minimax game: E[log(1 - D(G(z)))].

    Its gradient with respect to the logit is -D(G(z)), which vanishes when D confidently
    rejects the fakes (D(G(z)) -> 0), exactly when G most needs a signal.
    """
    return -F.softplus(fake_logits).mean()


def bce_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss -E[log D(G(z))] (Goodfellow et al. 2014, sec. 3).

    Its gradient with respect to the logit is -(1 - D(G(z))), close to -1 when D rejects.
    """
    return F.softplus(-fake_logits).mean()


def lsgan_d_loss(real_logits, fake_logits, a: float = 0.0, b: float = 1.0):
    """LSGAN discriminator loss 1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2] (Mao et al. 2017),
    on raw scores (no sigmoid): fakes are pushed to `a`, reals to `b`."""
    return 0.5 * ((real_logits - b) ** 2).mean() + 0.5 * ((fake_logits - a) ** 2).mean()


def lsgan_g_loss(fake_logits, c: float = 1.0):
    """LSGAN generator loss 1/2 E[(D(G(z)) - c)^2]: G wants D to score its samples `c`,
    the value D uses for real data (with 0/1/1 coding, c = 1, not 0)."""
    return 0.5 * ((fake_logits - c) ** 2).mean()


def hinge_d_loss(real_logits, fake_logits):
    """Hinge discriminator loss E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def hinge_g_loss(fake_logits):
    """Hinge generator loss -E[D(G(z))]."""
    return -fake_logits.mean()


def wgan_d_loss(real_logits, fake_logits):
    """Wasserstein critic loss E[D(G(z))] - E[D(x)] (add `gradient_penalty` for WGAN-GP)."""
    return fake_logits.mean() - real_logits.mean()


def wgan_g_loss(fake_logits):
    """Wasserstein generator loss -E[D(G(z))]."""
    return -fake_logits.mean()


def gradient_penalty(D: torch.nn.Module, x_real: torch.Tensor, x_fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP's penalty E[(||grad_x D(x_hat)||_2 - 1)^2] at random interpolates x_hat
    between real and fake samples (Gulrajani et al. 2017). Not a pure function of logits:
    it needs D itself. Multiply by the penalty weight (10 in the paper)."""
    eps = torch.rand(x_real.shape[0], *([1] * (x_real.dim() - 1)), device=x_real.device)
    x_hat = (eps * x_real + (1 - eps) * x_fake.detach()).requires_grad_(True)
    scores = D(x_hat)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def r1_penalty(D: torch.nn.Module, x_real: torch.Tensor) -> torch.Tensor:
    """R1 regulariser E[||grad_x D(x)||_2^2] on real samples (Mescheder et al. 2018).

    The gradient of D's logit with respect to its input, squared and averaged over the real
    batch `(B, ...)`; differentiable in D's parameters. The paper adds (gamma / 2) times it
    to D's loss (`TrainConfig.r1_weight` is gamma). Introduced in chapter 10.
    """
    x = x_real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)  # (B, ...) like x
    return grad.flatten(1).pow(2).sum(1).mean()


@dataclass(frozen=True)
class GANLoss:
    """A named objective: `d_loss(real_logits, fake_logits)`, `g_loss(fake_logits)`,
    whether the discriminator step adds `gradient_penalty`, and whether it clips D's
    weights after each step (`weight_clipping`, WGAN; chapter 8)."""
    name: str
    d_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    g_loss: Callable[[torch.Tensor], torch.Tensor]
    gradient_penalty: bool = False
    weight_clipping: bool = False  # wgan: clip D's weights into [-c, c] after each D step


LOSSES = ("minimax", "bce", "lsgan", "hinge", "wgan", "wgan-gp")


def get_loss(name: str, a: float = 0.0, b: float = 1.0, c: float = 1.0,
             real_label: float = 1.0) -> GANLoss:
    """Look up an objective by name: "minimax" (saturating), "bce" (non-saturating),
    "lsgan" (targets a/b/c, default 0/1/1), "hinge", "wgan" (Wasserstein losses with
    weight clipping, `TrainConfig.clip_value`) or "wgan-gp" (with the gradient penalty).
    `real_label` < 1 gives the two BCE objectives one-sided label smoothing (chapter 10)."""
    if real_label != 1.0:  # one-sided label smoothing, for the BCE objectives only
        if name not in ("minimax", "bce", "ns"):
            raise ValueError(f"label smoothing applies to the BCE losses, not {name!r}; "
                             "use loss='bce' or leave label_smoothing at 0")
        d_loss = lambda r, f: bce_d_loss(r, f, real_label)  # noqa: E731
        g_loss = minimax_g_loss if name == "minimax" else bce_g_loss
        return GANLoss("minimax" if name == "minimax" else "bce", d_loss, g_loss)
    if name == "minimax":
        return GANLoss(name, bce_d_loss, minimax_g_loss)
    if name in ("bce", "ns"):
        return GANLoss("bce", bce_d_loss, bce_g_loss)
    if name == "lsgan":
        return GANLoss(name, lambda r, f: lsgan_d_loss(r, f, a, b), lambda f: lsgan_g_loss(f, c))
    if name == "hinge":
        return GANLoss(name, hinge_d_loss, hinge_g_loss)
    if name == "wgan":  # chapter 8: Arjovsky et al. 2017, the critic's weights clipped
        return GANLoss(name, wgan_d_loss, wgan_g_loss, weight_clipping=True)
    if name == "wgan-gp":
        return GANLoss(name, wgan_d_loss, wgan_g_loss, gradient_penalty=True)
    raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
