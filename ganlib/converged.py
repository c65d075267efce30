"""Trained generators shipped inside ganlib: `pretrained(name)`, in the spirit of
torchvision's weights API.

`scripts/train_converged.py NAME` trains each one on the CPU (the chapter's network and
settings, for many more steps), measures it, and writes its weights in float16 beside a
record: `ganlib/assets/converged/NAME.pt` and `converged.json`. `pretrained(name)` rebuilds
the network, checks the file's sha256 against the record, loads the weights into float32
and returns the generator in eval mode, with the record as `G.record` (network, data,
steps, batch, seconds, device, torch version, the measured metrics and the exact command
that made it). Introduced in chapter 3 (a first GAN on MNIST); the chapters that train an
image GAN show the converged generator beside their live run.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from .checkpoint import safe_load
from .conditional import ConditionalGenerator
from .dcgan import DCGANGenerator
from .models import MLPBNGenerator, MLPGenerator

CONVERGED = Path(__file__).parent / "assets" / "converged"
RECORD = CONVERGED / "converged.json"

# name: (chapter, how to build the generator). The training settings live in
# scripts/train_converged.py; the record of each file says which were used.
GENERATORS = {
    "mlp_mnist": (3, lambda: MLPGenerator(100, (1, 28, 28))),             # 001's MLP
    "mlp_bn_mnist": (3, lambda: MLPBNGenerator(100, (1, 28, 28))),        # 002's MLP + BatchNorm
    "dcgan_mnist": (4, lambda: DCGANGenerator(100, channels=1, image_size=28, width=32)),
    "dcgan64_faces": (4, lambda: DCGANGenerator(100, channels=3, image_size=64, width=32)),
    "wgan_gp_mnist": (8, lambda: DCGANGenerator(100, channels=1, image_size=28, width=16)),
    "cgan_mnist": (9, lambda: ConditionalGenerator(100, (1, 28, 28), num_classes=10)),
}


class PretrainedError(RuntimeError):
    """A shipped generator that cannot be returned: unknown name, missing or altered file."""


def records() -> dict:
    """The record of every shipped generator, `{name: record}` (empty if none is shipped)."""
    return json.loads(RECORD.read_text()) if RECORD.exists() else {}


def available() -> list[str]:
    """The names `pretrained` can return: those with a file and a record in the package."""
    recs = records()
    return [name for name in GENERATORS if name in recs and (CONVERGED / f"{name}.pt").exists()]


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def half_state(G: torch.nn.Module) -> dict:
    """G's state dict on the CPU with floating tensors in float16: what is shipped."""
    return {k: (v.half() if v.is_floating_point() else v).cpu() for k, v in G.state_dict().items()}


def pretrained(name: str, device="cpu"):
    """The shipped, trained generator `name`, in eval mode on `device`, float32.

    `G.record` holds how it was made and what it measures (see `records()`). Raises
    `PretrainedError` naming the known generators for an unknown `name`, and when the file
    is missing or its sha256 differs from the record. Example:
    `G = ganlib.pretrained("dcgan_mnist"); x = ganlib.generate(G, G.sample_z(64))`.
    Introduced in chapter 3.
    """
    if name not in GENERATORS:
        raise PretrainedError(f"no shipped generator {name!r}; choose one of "
                              f"{', '.join(GENERATORS)}")
    path, record = CONVERGED / f"{name}.pt", records().get(name)
    if record is None or not path.exists():
        raise PretrainedError(f"generator {name!r} is not in this copy of ganlib ({path}); "
                              f"rebuild it with `python scripts/train_converged.py {name}`")
    if file_sha256(path) != record["sha256"]:
        raise PretrainedError(f"{path} does not match its record (sha256 differs): the file "
                              f"was changed or damaged; reinstall ganlib or rebuild it with "
                              f"`python scripts/train_converged.py {name}`")
    G = GENERATORS[name][1]()
    state = safe_load(path, what="generator", error=PretrainedError,  # sha256 matched: rare
                      todo=f"Rebuild it with `python scripts/train_converged.py {name}`.")
    G.load_state_dict({k: (v.float() if v.is_floating_point() else v) for k, v in state.items()})
    G.record = record
    return G.to(device).eval()


def frames(name: str):
    """The fixed-noise sample grids saved while `name` trained, for `ganlib.plot.animate_grids`:
    `(steps (F,) int64, frames (F, H, W) or (F, H, W, 3) uint8)`. Shipped for the generators
    whose record has "frames" (chapter 4's DCGANs). Introduced in chapter 4."""
    record = records().get(name, {})
    if "frames" not in record:
        with_frames = [n for n, r in records().items() if "frames" in r]
        raise PretrainedError(f"no training frames are shipped for {name!r}; these have them: "
                              f"{', '.join(with_frames) or 'none'}")
    with np.load(CONVERGED / record["frames"]["file"]) as f:
        return torch.from_numpy(f["step"]), torch.from_numpy(f["frames"])


__all__ = ["GENERATORS", "PretrainedError", "available", "frames", "pretrained", "records"]
