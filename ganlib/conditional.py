"""Conditional GANs: a generator told which class to draw, a projection discriminator, and
measures of whether the generator draws the class it was asked for.

- `ConditionalGenerator`: z and a learned embedding of the label y, concatenated, through
  002's BatchNorm MLP: `G(z, y)`, (B, latent_dim), (B,) -> (B, C, H, W).
- `ProjectionDiscriminator` (Miyato and Koyama 2018): features phi(x), then
  `logit = psi(phi(x)) + embed(y) . phi(x)`: an unconditional score plus the inner product
  of the features with the label's embedding. `D(x, y)` returns logits (B, 1).
- `conditional_accuracy`, `per_class_fid`: the shipped classifier's verdict on samples drawn
  for each class, and the Fréchet distance within each class, in the same feature space as
  `ganlib.metrics.fid`.

`ganlib.train` trains these when `G.num_classes > 0`: real batches come with their labels,
fake labels are drawn uniformly. Introduced in chapter 9 (conditional GANs and the latent
space).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .metrics import embed, frechet_distance
from .generator import Generator
from .sampling import generate


class ConditionalGenerator(Generator):
    """z (latent_dim) and a label embedding (embed_dim), concatenated, through 002's MLP with
    BatchNorm: 256 -> 512 -> C*H*W, LeakyReLU(0.3), tanh output.

    `G(z, y)`: z `(B, latent_dim)`, y `(B,)` int labels in [0, num_classes) -> `(B, C, H, W)`.
    `G(z)` without labels draws the classes in turn, 0, 1, ..., K-1, 0, ... (so a grid of
    fixed noise, as `ganlib.train` writes it, shows every class). Introduced in chapter 9.
    """

    def __init__(self, latent_dim=100, image_shape=(1, 28, 28), num_classes=10, embed_dim=32):
        super().__init__(latent_dim)
        self.image_shape, self.num_classes = tuple(image_shape), num_classes
        self.embed = nn.Embedding(num_classes, embed_dim)
        self.net = nn.Sequential(
            nn.Linear(latent_dim + embed_dim, 256, bias=False), nn.BatchNorm1d(256),
            nn.LeakyReLU(0.3),
            nn.Linear(256, 512, bias=False), nn.BatchNorm1d(512), nn.LeakyReLU(0.3),
            nn.Linear(512, math.prod(image_shape)), nn.Tanh())

    def forward(self, z, y=None):
        if y is None:
            y = torch.arange(len(z), device=z.device) % self.num_classes
        h = torch.cat([z, self.embed(y)], dim=1)  # (B, latent_dim + embed_dim)
        return self.net(h).view(-1, *self.image_shape)  # -> (B, C, H, W)

    def sample_y(self, n: int, device=None) -> torch.Tensor:
        """Draw `n` labels uniformly from the classes, `(n,)` int64."""
        device = device or next(self.parameters()).device
        return torch.randint(self.num_classes, (n,), device=device)


class ProjectionDiscriminator(nn.Module):
    """The projection discriminator of Miyato and Koyama (2018) on an MLP body.

    phi: C*H*W -> 512 -> 256 with LeakyReLU(0.2) (001's discriminator without its last
    layer); psi: a linear layer 256 -> 1; embed: one learned 256-vector per class.
    `D(x, y) = psi(phi(x)) + embed(y) . phi(x)`, x `(B, C, H, W)`, y `(B,)` -> logits
    `(B, 1)`. No BatchNorm: each sample is scored on its own. The class embeddings start
    small (N(0, 0.02^2)), so D starts close to an unconditional one; with nn.Embedding's
    N(0, 1) the projection term dominates the first logits. Introduced in chapter 9.
    """

    def __init__(self, image_shape=(1, 28, 28), num_classes=10, feature_dim=256):
        super().__init__()
        self.num_classes = num_classes
        self.phi = nn.Sequential(
            nn.Flatten(),  # (B, C, H, W) -> (B, C*H*W)
            nn.Linear(math.prod(image_shape), 512), nn.LeakyReLU(0.2),
            nn.Linear(512, feature_dim), nn.LeakyReLU(0.2))
        self.psi = nn.Linear(feature_dim, 1)
        self.embed = nn.Embedding(num_classes, feature_dim)
        nn.init.normal_(self.embed.weight, 0.0, 0.02)  # start near an unconditional D

    def forward(self, x, y):
        h = self.phi(x)  # (B, feature_dim)
        return self.psi(h) + (self.embed(y) * h).sum(1, keepdim=True)  # (B, 1)


# ----------------------------------------------------------------------------- measures

@torch.no_grad()
def conditional_samples(G, n_per_class: int, seed: int | None = 0, batch_size: int = 500):
    """`n_per_class` samples of every class from a conditional `G`, in eval mode.

    Returns `(x (K * n, C, H, W), y (K * n,))`, labels in order 0, ..., 0, 1, ..., on G's
    device. With a `seed` the noise is the same at every call and the global RNG is left as
    it was. Introduced in chapter 9.
    """
    device = next(G.parameters()).device
    y = torch.arange(G.num_classes, device=device).repeat_interleave(n_per_class)  # (K * n,)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        if seed is not None:
            torch.manual_seed(seed)
        z = G.sample_z(len(y), device)  # (K * n, latent_dim)
        x = torch.cat([generate(G, z[i:i + batch_size], y[i:i + batch_size])
                       for i in range(0, len(y), batch_size)])
    return x, y


def conditional_accuracy(x, y, classifier="mnist", batch_size: int = 500):
    """How often the classifier sees the class each sample was drawn for.

    Args:
        x: images `(N, 1, 28, 28)` in [-1, 1] (or their `ganlib.metrics.Embedding`).
        y: `(N,)` the labels they were generated for (or, for real images, their labels).
        classifier: "mnist", "fashion-mnist", a weight file or a loaded classifier.
    Returns:
        `(accuracy, per_class)`: the fraction of all N that the classifier assigns to their
        label (a float), and the same per class, `(K,)` float64 on the CPU (NaN for a class
        with no sample). Chance is 1/K. Introduced in chapter 9.
    """
    logits = embed(x, classifier, batch_size).logits  # (N, K)
    y = torch.as_tensor(y, device=logits.device).long()
    if y.shape != logits.shape[:1]:
        raise ValueError(f"got {len(logits)} images but labels of shape {tuple(y.shape)}; "
                         "pass one label per image")
    hit = (logits.argmax(1) == y).double().cpu()  # (N,)
    k = logits.shape[1]
    counts = torch.bincount(y.cpu(), minlength=k).double()
    per_class = torch.bincount(y.cpu(), weights=hit, minlength=k) / counts  # NaN where empty
    return hit.mean().item(), per_class


def per_class_fid(x_real, y_real, x_fake, y_fake, classifier="mnist",
                  batch_size: int = 500) -> torch.Tensor:
    """FID-MNIST within each class: real images of class k against samples drawn for k.

    Args:
        x_real, y_real: real images `(N, 1, 28, 28)` (or their `Embedding`) and labels `(N,)`.
        x_fake, y_fake: generated images `(M, 1, 28, 28)` (or their `Embedding`) and the
            labels they were drawn for `(M,)`.
    Returns:
        `(K,)` float64 on the CPU: the squared Fréchet distance of each class in the
        classifier's features (`ganlib.metrics.frechet_distance`). Biased upwards for small
        sets, like FID: compare at equal sizes. A class needs at least 2 images on each
        side. Introduced in chapter 9.
    """
    real = embed(x_real, classifier, batch_size).features
    fake = embed(x_fake, classifier, batch_size, check=False).features
    y_real, y_fake = (torch.as_tensor(t).long().cpu() for t in (y_real, y_fake))
    k = int(max(y_real.max(), y_fake.max())) + 1
    out = torch.empty(k, dtype=torch.float64)
    for c in range(k):
        a, b = real[(y_real == c).to(real.device)], fake[(y_fake == c).to(fake.device)]
        if len(a) < 2 or len(b) < 2:
            raise ValueError(f"class {c} has {len(a)} real and {len(b)} generated images; "
                             "per-class FID needs at least 2 of each (use a few hundred)")
        out[c] = frechet_distance(a, b)
    return out
