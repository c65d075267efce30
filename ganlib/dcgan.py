"""DCGAN (Radford et al. 2016): the all-convolutional generator and discriminator.

Strided 4x4 (transposed) convolutions, BatchNorm, ReLU in G and LeakyReLU(0.2) in D, the
N(0, 0.02) initialisation, for square images of size 28, 32 or 64. D returns logits.
`ganlib.models.build_models("dcgan", ...)` makes a pair. Introduced in chapter 4 (DCGAN).
"""
from __future__ import annotations

import math

from torch import nn

from .generator import Generator


def dcgan_init(m: nn.Module) -> None:
    """DCGAN's initialisation: conv weights N(0, 0.02), BatchNorm scale N(1, 0.02), bias 0."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def _dcgan_plan(image_size):
    if image_size not in (28, 32, 64):
        raise ValueError(f"DCGAN supports image sizes 28, 32 and 64, got {image_size}")
    base = 7 if image_size == 28 else 4
    return base, int(math.log2(image_size // base))  # start size, number of x2 stages


class DCGANGenerator(Generator):
    """DCGAN generator (Radford et al. 2016): transposed convs 4x4 stride 2, BatchNorm, ReLU,
    tanh; z (B, latent_dim) -> (B, C, S, S) for S in 28, 32, 64."""

    def __init__(self, latent_dim=100, channels=1, image_size=64, width=64):
        super().__init__(latent_dim)
        base, n_up = _dcgan_plan(image_size)
        ch = width * 2 ** (n_up - 1)
        layers = [nn.ConvTranspose2d(latent_dim, ch, base, 1, 0, bias=False),
                  nn.BatchNorm2d(ch), nn.ReLU(True)]  # (B, nz, 1, 1) -> (B, ch, base, base)
        for _ in range(n_up - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, z):
        return self.net(z.view(z.shape[0], -1, 1, 1))


class DCGANDiscriminator(nn.Module):
    """DCGAN discriminator: strided 4x4 convs, BatchNorm (not on the first layer),
    LeakyReLU(0.2), a final conv to one logit: (B, C, S, S) -> (B, 1)."""

    def __init__(self, channels=1, image_size=64, width=64):
        super().__init__()
        base, n_up = _dcgan_plan(image_size)
        layers, ch = [nn.Conv2d(channels, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)], width
        for _ in range(n_up - 1):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch * 2),
                       nn.LeakyReLU(0.2, True)]
            ch *= 2
        layers += [nn.Conv2d(ch, 1, base, 1, 0, bias=False), nn.Flatten()]  # -> (B, 1)
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, x):
        return self.net(x)
