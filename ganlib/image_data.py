"""`ImageData`, the type every dataset loader returns: images (or 2-D points), their labels,
and where they came from.

Its own module so that `ganlib.data` (MNIST and friends, image folders, the loader by
name) and `ganlib.mixtures` (the 2-D Gaussian mixtures) both build on it without importing
each other. Introduced in chapter 3 (a first GAN on MNIST).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import Dataset


@dataclass
class ImageData:
    """A dataset: `x` images `(N, C, H, W)` in [-1, 1] (or points `(N, 2)`), optional labels.

    `x` is a Tensor, except for image folders too large to preload, where it is a
    `torch.utils.data.Dataset` of `(C, H, W)` tensors. `source` says where it came from.
    """
    x: torch.Tensor | Dataset
    y: torch.Tensor | None
    name: str
    source: str

    def __len__(self) -> int:
        return len(self.x)
