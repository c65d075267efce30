"""Where training runs: `get_device("auto")` picks CUDA when a GPU is present.

Introduced in chapter 1 (how to use this book).
"""
from __future__ import annotations

import torch


def get_device(device: str | torch.device = "auto") -> torch.device:
    """Return a `torch.device`; "auto" picks CUDA when a GPU is present, else the CPU."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but CUDA is not available; "
                         "use device='auto' or 'cpu'")
    return dev
