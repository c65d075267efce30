"""Generators and discriminators: the source articles' networks, PacGAN packing, and each
pair by name (DCGAN's are in `ganlib.dcgan`, PacGAN's 2-D toys in `ganlib.toy_models`,
chapter 9's conditional pair in `ganlib.conditional`).

Every discriminator returns logits `(B, 1)`, never probabilities. Every generator has
`latent_dim` and `sample_z(n, device)` for its noise (`ganlib.generator.Generator`).
`build_models(name, ...)` makes a pair by its name in `MODELS`; `describe_models` says
which named pair (or "custom") a `(G, D)` is, so that a checkpoint can be rebuilt.
Introduced in chapter 3 (MLP), chapter 4 (convolutional) and chapter 6 (toys, packing).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .conditional import ConditionalGenerator, ProjectionDiscriminator
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .generator import Generator
from .toy_models import ToyDiscriminator, ToyGenerator


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


# ----------------------------------------------------------------------------- by name

# name: (supported image sizes, default latent_dim, build). `build(latent_dim, (C, H, W),
# D's input (C * pack_m, H, W))` makes `(G, D)`, G first (the seed decides both).
_REGISTRY = {
    "mlp": ((28, 32, 64), 100, lambda nz, x, d: (MLPGenerator(nz, x), MLPDiscriminator(d))),
    "mlp-bn": ((28, 32, 64), 100,
               lambda nz, x, d: (MLPBNGenerator(nz, x), MLPBNDiscriminator(d))),
    "conv32": ((32,), 100, lambda nz, x, d: (Conv32Generator(nz, x[0]), Conv32Discriminator(d[0]))),
    "upsample64": ((64,), 1000,
                   lambda nz, x, d: (Upsample64Generator(nz, x[0]), Pool64Discriminator(d[0]))),
    "dcgan": ((28, 32, 64), 100,
              lambda nz, x, d: (DCGANGenerator(nz, x[0], x[1]), DCGANDiscriminator(d[0], x[1]))),
    "toy": ((None,), 2, lambda nz, x, d: (ToyGenerator(nz, out_dim=x[0]), ToyDiscriminator(d[0]))),
    "cgan-mlp": ((28,), 100,  # chapter 9: G(z, y), D(x, y), 10 classes
                 lambda nz, x, d: (ConditionalGenerator(nz, x), ProjectionDiscriminator(x))),
}
MODELS = {name: (sizes, latent) for name, (sizes, latent, _) in _REGISTRY.items()}


def build_models(name: str, image_shape=(1, 28, 28), latent_dim: int | None = None,
                 pack_m: int = 1):
    """Make `(G, D)` by model name (a key of `MODELS`) for images `(C, H, W)` (or `(2,)`
    points for "toy").

    `pack_m > 1` wraps D in `Packed` so it judges `pack_m` samples at once (PacGAN).
    Introduced in chapter 3 (a first GAN on MNIST).
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    sizes, default_latent, build = _REGISTRY[name]
    if pack_m < 1:
        raise ValueError(f"pack_m must be >= 1, got {pack_m}")
    image_shape = tuple(image_shape)
    if name == "toy" and len(image_shape) != 1:
        raise ValueError(f"model 'toy' is for 2-D points, not images {image_shape}")
    if name != "toy":
        if len(image_shape) != 3:
            raise ValueError(f"model {name!r} is for images (C, H, W), got shape {image_shape}; "
                             "use --model toy for 2-D points")
        _, h, w = image_shape
        if h != w or h not in sizes:
            raise ValueError(f"model {name!r} supports image sizes {sizes}, got {h}x{w}; "
                             f"resize the data (image_size=...) or pick another model")
    if name == "cgan-mlp" and pack_m > 1:
        raise ValueError("packing (pack_m > 1) is not supported for conditional models")
    d_shape = (image_shape[0] * pack_m, *image_shape[1:])  # a packed D sees m samples stacked
    G, D = build(latent_dim or default_latent, image_shape, d_shape)
    return _named(name, G, Packed(D, pack_m) if pack_m > 1 else D)


def describe_models(G, D, image_shape) -> dict:
    """What `build_models` needs to rebuild `(G, D)`: `{"name", "image_shape", "latent_dim",
    "pack_m"}`, with `name="custom"` unless `build_models(name, ...)` made this pair and it
    is unchanged since (same classes, layers, settings and parameter shapes).

    Training records it in every checkpoint, so `python -m ganlib sample` rebuilds the right
    networks, or says that they are custom ones. Introduced in chapter 3 (a first GAN).
    """
    pack_m = D.m if isinstance(D, Packed) else 1
    built = getattr(G, "_built_by_name", None)
    same = built is not None and built["G"] == _fingerprint(G) and built["D"] == _fingerprint(D)
    return {"name": built["name"] if same else "custom",
            "image_shape": [int(s) for s in image_shape],
            "latent_dim": int(getattr(G, "latent_dim", 0)), "pack_m": int(pack_m)}


def _fingerprint(m: nn.Module):
    """Classes, printed settings (layer sizes, slopes, dropout, BatchNorm) and shapes."""
    return ([type(x) for x in m.modules()], repr(m),
            [(k, tuple(v.shape)) for k, v in m.state_dict().items()])


def _named(name: str, G: nn.Module, D: nn.Module):
    """Mark a pair as made by `build_models(name)`, for `describe_models`."""
    G._built_by_name = {"name": name, "G": _fingerprint(G), "D": _fingerprint(D)}
    return G, D
