"""Checkpoints: atomic writes, safe loading (`weights_only=True`), and clear errors.

A checkpoint is a dict of tensors and plain Python values: models, optimizers, the step,
RNG states, the run's config and its history. Enough to resume exactly.
"""
from __future__ import annotations

import pickle
import struct
import zipfile
from pathlib import Path

import torch

from .utils import atomic_write

FORMAT = "ganlib-checkpoint"
VERSION = 1
# Config fields that define a run; resuming with any of them changed is refused.
RUN_KEYS = ("data", "model", "loss", "image_size", "latent_dim", "pack_m", "batch_size",
            "n_critic", "lr_g", "lr_d", "betas", "seed", "lsgan_abc", "gp_weight")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: missing, corrupt, foreign or incompatible."""


def rng_state() -> dict:
    """The torch RNG states (CPU, and every CUDA device when present)."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, **state) -> None:
    """Write `state` (plus format tags) to `path` atomically: a temporary file is written,
    flushed, then renamed, so an interrupted save never damages an earlier checkpoint."""
    payload = {"format": FORMAT, "version": VERSION, **state}
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Load a ganlib checkpoint safely (`weights_only=True`: no code runs from the file).

    Raises `CheckpointError` saying what is wrong when the file is missing, truncated,
    corrupt, or not a ganlib checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}; check the path (training writes "
                              "last.pt in its --out folder)")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, OSError, EOFError, IndexError, struct.error, pickle.UnpicklingError,
            zipfile.BadZipFile, ValueError, KeyError) as err:  # what torch.load raises on junk
        first = (str(err).splitlines() or [type(err).__name__])[0][:200]  # "" for an empty file
        raise CheckpointError(f"{path} is not a readable checkpoint (truncated or corrupt?): "
                              f"{first}. Use another checkpoint or retrain.") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a ganlib checkpoint (a plain state_dict or "
                              "another tool's file?); load it with torch.load yourself, "
                              "or use a file written by ganlib.train")
    if ckpt.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint version {ckpt.get('version')}, this "
                              f"ganlib reads version {VERSION}")
    return ckpt


def check_compatible(ckpt: dict, config: dict, image_shape) -> None:
    """Refuse to resume when the run-defining config or the data's shape differ."""
    old = ckpt["config"]
    diffs = [f"{k}: checkpoint {old.get(k)!r}, now {config.get(k)!r}"
             for k in RUN_KEYS if _norm(old.get(k)) != _norm(config.get(k))]
    if tuple(ckpt["image_shape"]) != tuple(image_shape):
        diffs.append(f"data shape: checkpoint {tuple(ckpt['image_shape'])}, now {tuple(image_shape)}")
    if diffs:
        raise CheckpointError("cannot resume: this run's settings differ from the checkpoint's ("
                              + "; ".join(diffs) + "). Resume with the same settings, or "
                              "train into a new --out folder.")


def _norm(v):
    return list(v) if isinstance(v, (tuple, list)) else v
