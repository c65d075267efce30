"""One seed for every random draw: `seed_everything`.

Introduced in chapter 1 (how to use this book).
"""
from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) from one integer.

    Same seed, same CPU result: every random draw in ganlib goes through these generators.
    Introduced in chapter 1 (how to use this book).
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
