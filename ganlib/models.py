"""Generators and discriminators: the source articles' networks, DCGAN, and 2-D toys.

Every discriminator returns logits `(B, 1)`, never probabilities. Every generator has
`latent_dim` and `sample_z(n, device)` for its noise. `build_models(name, ...)` makes a pair.
Introduced in chapter 3 (MLP), chapter 4 (convolutional) and chapter 6 (toys, packing).
"""
from __future__ import annotations

import math

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


def pack(x: torch.Tensor, m: int) -> torch.Tensor:
    """PacGAN packing: `(B, C, ...) -> (B/m, m*C, ...)`, m consecutive samples side by side."""
    if x.shape[0] % m:
        raise ValueError(f"batch size {x.shape[0]} is not a multiple of the packing degree "
                         f"{m}; use a batch size divisible by {m}")
    return x.reshape(x.shape[0] // m, m * x.shape[1], *x.shape[2:])


class Packed(nn.Module):
    """Wrap any discriminator built for `m` times the channels so it judges m samples at once
    (Lin et al. 2018, PacGAN). Returns logits `(B/m, 1)`."""

    def __init__(self, D: nn.Module, m: int):
        super().__init__()
        self.D, self.m = D, m

    def forward(self, x):
        return self.D(pack(x, self.m))


# ----------------------------------------------------------------------------- MLPs (001, 002)

class MLPGenerator(Generator):
    """001's generator: z(100) -> 256 -> 512 -> 1024 -> C*H*W, ReLU, tanh output."""

    def __init__(self, latent_dim=100, image_shape=(1, 28, 28)):
        super().__init__(latent_dim)
        self.image_shape = tuple(image_shape)
        self.net = nn.Sequential(
            nn.Linear(latent_dim, 256), nn.ReLU(),
            nn.Linear(256, 512), nn.ReLU(),
            nn.Linear(512, 1024), nn.ReLU(),
            nn.Linear(1024, math.prod(image_shape)), nn.Tanh())

    def forward(self, z):
        return self.net(z).view(-1, *self.image_shape)  # (B, latent_dim) -> (B, C, H, W)


class MLPDiscriminator(nn.Module):
    """001's discriminator: C*H*W -> 512 -> 256 -> 1, LeakyReLU(0.2), logits (no Sigmoid)."""

    def __init__(self, image_shape=(1, 28, 28)):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),  # (B, C, H, W) -> (B, C*H*W)
            nn.Linear(math.prod(image_shape), 512), nn.LeakyReLU(0.2),
            nn.Linear(512, 256), nn.LeakyReLU(0.2),
            nn.Linear(256, 1))

    def forward(self, x):
        return self.net(x)


class MLPBNGenerator(Generator):
    """002's generator: z -> 256 -> 512 -> C*H*W with BatchNorm and LeakyReLU, tanh output.

    002 adds a BatchNorm *after* the tanh, which undoes the [-1, 1] range; we leave it out.
    """

    def __init__(self, latent_dim=100, image_shape=(1, 28, 28)):
        super().__init__(latent_dim)
        self.image_shape = tuple(image_shape)
        self.net = nn.Sequential(
            nn.Linear(latent_dim, 256, bias=False), nn.BatchNorm1d(256), nn.LeakyReLU(0.3),
            nn.Linear(256, 512, bias=False), nn.BatchNorm1d(512), nn.LeakyReLU(0.3),
            nn.Linear(512, math.prod(image_shape), bias=False), nn.Tanh())

    def forward(self, z):
        return self.net(z).view(-1, *self.image_shape)


class MLPBNDiscriminator(nn.Module):
    """002's discriminator: C*H*W -> 512 -> 256 -> 1 with LeakyReLU(0.3) (Keras' default
    slope), logits, and BatchNorm on the second layer.

    002 also puts a BatchNorm right after the first layer. With real and generated images
    in separate batches, that layer subtracts each batch's own mean from every feature, so
    D cannot see how the *average* generated image differs from the average real one
    (chapter 3 shows it: the generated backgrounds stay grey speckle). As DCGAN does, we
    leave BatchNorm out of D's input layer.
    """

    def __init__(self, image_shape=(1, 28, 28)):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(math.prod(image_shape), 512), nn.LeakyReLU(0.3),
            nn.Linear(512, 256, bias=False), nn.BatchNorm1d(256), nn.LeakyReLU(0.3),
            nn.Linear(256, 1))

    def forward(self, x):
        return self.net(x)


# ----------------------------------------------------------------------------- conv (000, 003)

def _up(c_in, c_out, stride):
    """A 5x5 'same' transposed conv (x`stride`), BatchNorm, LeakyReLU(0.3) as in 000."""
    return [nn.ConvTranspose2d(c_in, c_out, 5, stride, padding=2, output_padding=stride - 1,
                               bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.3)]


class Conv32Generator(Generator):
    """000's generator: z -> dense 8x8x256 -> 5x5 transposed convs 128 (x1), 64 (x2),
    C (x2) with BatchNorm and LeakyReLU, tanh: 32x32 images."""

    def __init__(self, latent_dim=100, channels=3):
        super().__init__(latent_dim)
        self.fc = nn.Sequential(nn.Linear(latent_dim, 8 * 8 * 256, bias=False),
                                nn.BatchNorm1d(8 * 8 * 256), nn.LeakyReLU(0.3))
        self.net = nn.Sequential(
            *_up(256, 128, 1), *_up(128, 64, 2),  # (B, 256, 8, 8) -> (B, 64, 16, 16)
            nn.ConvTranspose2d(64, channels, 5, 2, padding=2, output_padding=1, bias=False),
            nn.Tanh())  # -> (B, C, 32, 32)

    def forward(self, z):
        return self.net(self.fc(z).view(-1, 256, 8, 8))


class Conv32Discriminator(nn.Module):
    """000's discriminator: 5x5 stride-2 convs 64 -> 128, LeakyReLU, dropout 0.3, dense to 1."""

    def __init__(self, channels=3):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, 64, 5, 2, padding=2), nn.LeakyReLU(0.3), nn.Dropout(0.3),
            nn.Conv2d(64, 128, 5, 2, padding=2), nn.LeakyReLU(0.3), nn.Dropout(0.3),
            nn.Flatten(), nn.Linear(128 * 8 * 8, 1))  # (B, 128, 8, 8) -> (B, 1)

    def forward(self, x):
        return self.net(x)


class Upsample64Generator(Generator):
    """003's generator: z ~ U(-1, 1)^1000 -> dense 1024 -> dense 8x8x128 (BatchNorm) ->
    upsample x4 -> 5x5 conv 64 -> upsample x2 -> 5x5 conv C, tanh throughout: 64x64."""
    latent_dist = "uniform"

    def __init__(self, latent_dim=1000, channels=3):
        super().__init__(latent_dim)
        self.fc = nn.Sequential(nn.Linear(latent_dim, 1024), nn.Tanh(),
                                nn.Linear(1024, 128 * 8 * 8), nn.BatchNorm1d(128 * 8 * 8),
                                nn.Tanh())
        self.net = nn.Sequential(
            nn.Upsample(scale_factor=4), nn.Conv2d(128, 64, 5, padding=2), nn.Tanh(),  # 32x32
            nn.Upsample(scale_factor=2), nn.Conv2d(64, channels, 5, padding=2), nn.Tanh())

    def forward(self, z):
        return self.net(self.fc(z).view(-1, 128, 8, 8))  # (B, 128, 8, 8) -> (B, C, 64, 64)


class Pool64Discriminator(nn.Module):
    """003's discriminator: 5x5 conv 64 + max-pool, 5x5 conv 128 (valid) + max-pool,
    dense 1024, dense 1; tanh activations; logits."""

    def __init__(self, channels=3):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, 64, 5, padding=2), nn.Tanh(), nn.MaxPool2d(2),  # -> 32x32
            nn.Conv2d(64, 128, 5), nn.Tanh(), nn.MaxPool2d(2),  # -> 28x28 -> 14x14
            nn.Flatten(), nn.Linear(128 * 14 * 14, 1024), nn.Tanh(), nn.Linear(1024, 1))

    def forward(self, x):
        return self.net(x)


# ----------------------------------------------------------------------------- DCGAN

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


# ----------------------------------------------------------------------------- 2-D toys

class ToyGenerator(Generator):
    """PacGAN's 2-D generator: z (2-D Gaussian) -> 4 hidden layers of 400 ReLU units with
    BatchNorm -> a point (B, 2)."""

    def __init__(self, latent_dim=2, hidden=400, depth=4, out_dim=2):
        super().__init__(latent_dim)
        layers, d = [], latent_dim
        for _ in range(depth):
            layers += [nn.Linear(d, hidden), nn.BatchNorm1d(hidden), nn.ReLU()]
            d = hidden
        self.net = nn.Sequential(*layers, nn.Linear(d, out_dim))

    def forward(self, z):
        return self.net(z)


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


# ----------------------------------------------------------------------------- by name

MODELS = {  # name: (supported image sizes, default latent_dim)
    "mlp": ((28, 32, 64), 100), "mlp-bn": ((28, 32, 64), 100), "conv32": ((32,), 100),
    "upsample64": ((64,), 1000), "dcgan": ((28, 32, 64), 100), "toy": ((None,), 2),
    "cgan-mlp": ((28,), 100)}  # [cond] chapter 9: ganlib.conditional, 10 classes


def build_models(name: str, image_shape=(1, 28, 28), latent_dim: int | None = None,
                 pack_m: int = 1):
    """Make `(G, D)` by model name for images `(C, H, W)` (or `(2,)` points for "toy").

    `pack_m > 1` wraps D in `Packed` so it judges `pack_m` samples at once (PacGAN).
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    sizes, default_latent = MODELS[name]
    latent_dim = latent_dim or default_latent
    if pack_m < 1:
        raise ValueError(f"pack_m must be >= 1, got {pack_m}")
    if name == "toy":
        if len(image_shape) != 1:
            raise ValueError(f"model 'toy' is for 2-D points, not images {tuple(image_shape)}")
        G, D = ToyGenerator(latent_dim, out_dim=image_shape[0]), ToyDiscriminator(image_shape[0] * pack_m)
        return G, (Packed(D, pack_m) if pack_m > 1 else D)
    if len(image_shape) != 3:
        raise ValueError(f"model {name!r} is for images (C, H, W), got shape {tuple(image_shape)}; "
                         "use --model toy for 2-D points")
    c, h, w = image_shape
    if h != w or h not in sizes:
        raise ValueError(f"model {name!r} supports image sizes {sizes}, got {h}x{w}; "
                         f"resize the data (image_size=...) or pick another model")
    cm = c * pack_m  # a packed D sees m samples stacked along the channels
    if name == "cgan-mlp":  # [cond] conditional: G(z, y), D(x, y); imported here (no cycle)
        if pack_m > 1:
            raise ValueError("packing (pack_m > 1) is not supported for conditional models")
        from .conditional import ConditionalGenerator, ProjectionDiscriminator
        return ConditionalGenerator(latent_dim, image_shape), ProjectionDiscriminator(image_shape)
    if name == "mlp":
        G, D = MLPGenerator(latent_dim, image_shape), MLPDiscriminator((cm, h, w))
    elif name == "mlp-bn":
        G, D = MLPBNGenerator(latent_dim, image_shape), MLPBNDiscriminator((cm, h, w))
    elif name == "conv32":
        G, D = Conv32Generator(latent_dim, c), Conv32Discriminator(cm)
    elif name == "upsample64":
        G, D = Upsample64Generator(latent_dim, c), Pool64Discriminator(cm)
    else:
        G, D = DCGANGenerator(latent_dim, c, h), DCGANDiscriminator(cm, h)
    return G, (Packed(D, pack_m) if pack_m > 1 else D)
