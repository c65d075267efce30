"""Drawing samples from a generator: `generate` (one batch) and `generate_many` (n, in batches).

Both run G in eval mode (BatchNorm's running statistics), without gradients, in float32,
and leave G in the mode it was in. Introduced in chapter 3 (a first GAN on MNIST);
`generate_many` in chapter 7 (evaluating GANs).
"""
from __future__ import annotations

import torch


@torch.no_grad()
def generate(G, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """Samples `G(z)` (or `G(z, y)` for a conditional G and labels `y (B,)`) in eval mode
    (BatchNorm running statistics), float32, no gradients.

    `z (B, latent_dim) -> (B, C, H, W)` (or `(B, 2)` points); G's train/eval mode is restored.
    Introduced in chapter 3 (a first GAN on MNIST).
    """
    was_training = G.training
    G.eval()
    try:
        return (G(z) if y is None else G(z, y)).float()
    finally:
        G.train(was_training)


def generate_many(G, n: int, batch_size: int = 500, seed: int | None = 0) -> torch.Tensor:
    """`n` samples from `G` in batches (eval mode, no gradients), on G's device.

    With a `seed`, the noise is the same at every call (so successive evaluations during
    training differ only through G) and the global RNG is left as it was.
    Introduced in chapter 7 (evaluating GANs).
    """
    device = next(G.parameters()).device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        if seed is not None:
            torch.manual_seed(seed)
        return torch.cat([generate(G, G.sample_z(min(batch_size, n - i)))
                          for i in range(0, n, batch_size)])
