"""PacGAN's 2-D networks: the toy generator and the maxout discriminator of the
mode-collapse experiments (VEEGAN, PacGAN), their BatchNorm and their initialisation.

`ToyGenerator` and `ToyDiscriminator` are ordinary modules: `ganlib.train` trains one pair,
`ganlib.ensemble` trains many as one batched model through `torch.func`. Both default to
ganlib's version (PyTorch's BatchNorm); `ToyGenerator(batchnorm="pacgan", slots=m)` is the
generator of PacGAN's released code (`PacGANBatchNorm`, no hidden biases).
Introduced in chapter 2 (a 1-D toy) and chapter 6 (mode collapse).
"""
from __future__ import annotations

import torch
from torch import nn

from .generator import Generator


class PacGANBatchNorm(nn.Module):
    """BatchNorm as in PacGAN's released code (Blocks' `BatchNormalization`).

    Training: each packing slot's batch is normalised by its own *biased* statistics,
    `(x - mean) / sqrt(var + eps)`, with eps 1e-4. With `slots = m` the batch `(B m, F)`
    holds m slots interleaved (row `i m + s` is slot s of packed input i), as PacGAN calls
    G m times on B noise vectors each. The population mean and standard deviation (the
    batch's `sqrt(var + eps)`) move by `momentum` (0.05) towards the average over the slots
    of each batch's statistics; evaluation uses them: `(x - mean) / std`.
    Introduced in chapter 6 (mode collapse).
    """

    def __init__(self, features: int, eps: float = 1e-4, momentum: float = 0.05,
                 slots: int = 1):
        super().__init__()
        self.eps, self.momentum, self.slots = eps, momentum, slots
        self.weight = nn.Parameter(torch.ones(features))
        self.bias = nn.Parameter(torch.zeros(features))
        self.register_buffer("population_mean", torch.zeros(features))
        self.register_buffer("population_std", torch.ones(features))

    def forward(self, x):
        if not self.training:
            return (x - self.population_mean) / self.population_std * self.weight + self.bias
        h = x.view(-1, self.slots, x.shape[1])  # (B, m, F): slot s is h[:, s]
        mean = h.mean(0)  # (m, F)
        std = (h.var(0, unbiased=False) + self.eps).sqrt()  # (m, F)
        with torch.no_grad():  # in place, so it also works on stacked buffers under vmap
            self.population_mean.mul_(1 - self.momentum).add_(self.momentum * mean.mean(0))
            self.population_std.mul_(1 - self.momentum).add_(self.momentum * std.mean(0))
        return ((h - mean) / std).view_as(x) * self.weight + self.bias


class ToyGenerator(Generator):
    """PacGAN's 2-D generator: z (2-D Gaussian) -> 4 hidden layers of 400 ReLU units with
    BatchNorm -> a point `(B, 2)`.

    `batchnorm="torch"` (the default): `nn.Linear` with biases and `nn.BatchNorm1d`.
    `batchnorm="pacgan"`: PacGAN's code, hidden layers without biases and
    `PacGANBatchNorm` over `slots` packing slots (give `slots=m` for packing m).
    Introduced in chapter 2 and chapter 6.
    """

    def __init__(self, latent_dim=2, hidden=400, depth=4, out_dim=2, batchnorm: str = "torch",
                 slots: int = 1):
        super().__init__(latent_dim)
        if batchnorm not in ("torch", "pacgan"):
            raise ValueError(f"batchnorm must be 'torch' or 'pacgan', got {batchnorm!r}")
        if slots > 1 and batchnorm != "pacgan":
            raise ValueError("BatchNorm per packing slot needs batchnorm='pacgan'")
        paper = batchnorm == "pacgan"
        layers, d = [], latent_dim
        for _ in range(depth):
            norm = PacGANBatchNorm(hidden, slots=slots) if paper else nn.BatchNorm1d(hidden)
            layers += [nn.Linear(d, hidden, bias=not paper), norm, nn.ReLU()]
            d = hidden
        self.net = nn.Sequential(*layers, nn.Linear(d, out_dim))

    def forward(self, z):
        return self.net(z)  # (B, latent_dim) -> (B, out_dim)


class Maxout(nn.Module):
    """A linear layer with `pieces` outputs per unit, keeping the largest (Goodfellow 2013)."""

    def __init__(self, d_in, d_out, pieces=5):
        super().__init__()
        self.pieces = pieces
        self.linear = nn.Linear(d_in, d_out * pieces)

    def forward(self, x):
        # max(...).values, not amax: the same forward, and a backward that routes the
        # gradient by index, several times faster on a CPU than amax's tie-sharing mask
        return self.linear(x).view(x.shape[0], -1, self.pieces).max(-1).values


class MinibatchStdDev(nn.Module):
    """Minibatch standard deviation (Karras et al. 2018, ProGAN): append one feature, the
    standard deviation of each feature over a group of samples, averaged over features.

    `(B, F) -> (B, F + 1)`; the batch is split into consecutive groups of `group_size`
    (0: the whole batch is one group) and every sample gets its own group's value. A
    collapsed generator makes near-identical samples, so the feature is near 0 on fakes and
    D can use it to reject them. Introduced in chapter 6 (mode collapse).
    """

    def __init__(self, group_size: int = 4):
        super().__init__()
        self.group_size = group_size

    def forward(self, x):
        g = self.group_size or x.shape[0]
        if x.shape[0] % g:
            raise ValueError(f"batch size {x.shape[0]} is not a multiple of the minibatch-std "
                             f"group size {g}; use a batch size divisible by {g}")
        groups = x.view(-1, g, x.shape[1])  # (B/g, g, F)
        std = (groups.var(1, unbiased=False) + 1e-8).sqrt().mean(1, keepdim=True)  # (B/g, 1)
        return torch.cat([x, std.repeat_interleave(g, dim=0)], dim=1)  # (B, F + 1)


class ToyDiscriminator(nn.Module):
    """PacGAN's 2-D discriminator: 3 hidden layers of 200 maxout units (5 pieces), no
    BatchNorm, one logit. `in_dim` is 2 * m when packing m points. `minibatch_std > 0`
    adds a `MinibatchStdDev` layer with that group size before the last linear layer
    (chapter 6); 0, the default, is PacGAN's network."""

    def __init__(self, in_dim=2, hidden=200, depth=3, pieces=5, minibatch_std: int = 0):
        super().__init__()
        layers, d = [], in_dim
        for _ in range(depth):
            layers.append(Maxout(d, hidden, pieces))
            d = hidden
        if minibatch_std:
            layers.append(MinibatchStdDev(minibatch_std))
            d += 1
        self.net = nn.Sequential(*layers, nn.Linear(d, 1))

    def forward(self, x):
        return self.net(x)


def pacgan_init(module: nn.Module, std: float = 0.02) -> nn.Module:
    """PacGAN's initialisation of the 2-D networks, in place: every linear (and maxout)
    weight from N(0, std), every bias 0; BatchNorm keeps scale 1 and shift 0.

    PacGAN's released code uses std 0.02; PyTorch's default (uniform, scaled by the fan-in)
    starts the maxout discriminator with much larger weights. Returns the module.
    Introduced in chapter 6 (mode collapse).
    """
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


__all__ = ["PacGANBatchNorm", "ToyGenerator", "Maxout", "MinibatchStdDev", "ToyDiscriminator",
           "pacgan_init"]
