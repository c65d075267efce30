"""Checkpoints: atomic writes, safe loading (`weights_only=True`), and clear errors.

A checkpoint is a dict of tensors and plain Python values: models, optimizers, the step,
RNG states, the run's config and its history. Enough to resume exactly. `atomic_write`
and `safe_load` serve every file ganlib writes or reads with torch (checkpoints, the
classifiers' weights, `history.json`); `settings_differences` is the one resume check.
Introduced in chapter 3 (a first GAN on MNIST).
"""
from __future__ import annotations

import os
import pickle
import struct
import tempfile
import zipfile
from pathlib import Path

import torch

FORMAT = "ganlib-checkpoint"
VERSION = 1
# Config fields that define a run; resuming with any of them changed is refused.
RUN_KEYS = ("data", "model", "loss", "image_size", "latent_dim", "pack_m", "batch_size",
            "n_critic", "lr_g", "lr_d", "betas", "seed", "lsgan_abc", "gp_weight", "clip_value",
            "r1_weight", "label_smoothing", "ema")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: missing, corrupt, foreign or incompatible."""


def atomic_write(path: str | Path, write) -> None:
    """Call `write(tmp_path)`, then rename the temporary file onto `path` in one step.

    A crash or an exception while writing leaves any earlier file at `path` untouched. The
    new file gets the permissions an ordinary `open(path, "w")` would give it (the
    temporary file starts as owner-only).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


# What torch.load raises on a truncated, corrupt or foreign file.
_UNREADABLE = (RuntimeError, OSError, EOFError, IndexError, struct.error,
               pickle.UnpicklingError, zipfile.BadZipFile, ValueError, KeyError)


def safe_load(path: Path, map_location="cpu", *, what: str = "checkpoint",
              todo: str = "Use another checkpoint or retrain.", error=CheckpointError):
    """`torch.load(path, weights_only=True)` (no code runs from the file), raising `error`
    saying that `path` is not a readable `what` (truncated or corrupt?), with the loader's
    first line and `todo`, when torch cannot read it. `load_checkpoint` and
    `ganlib.classifier.load_classifier` read their files through it."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except _UNREADABLE as err:
        first = (str(err).splitlines() or [type(err).__name__])[0][:200]  # "" for an empty file
        raise error(f"{path} is not a readable {what} (truncated or corrupt?): {first}. "
                    f"{todo}") from err


def rng_state() -> dict:
    """The torch RNG states: the CPU's, and every CUDA device's when CUDA is available.

    Each is a CPU `uint8` tensor, as torch returns them. `train` stores this dict in each
    checkpoint and `set_rng_state` puts it back on resume.
    """
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore RNG states saved by `rng_state`, wherever the checkpoint was written.

    `load_checkpoint(..., map_location="cuda")` moves every tensor, these states included,
    to the GPU, but torch takes RNG states only as CPU `uint8` tensors, so each is brought
    back to the CPU first. What is exact across devices:

    - Same device as the run that wrote it (CPU to CPU, CUDA to CUDA with the same number
      of GPUs): every generator continues where it was, so the resumed run draws the same
      noise as the uninterrupted one.
    - Written on CUDA, resumed on the CPU: the CPU generator is restored exactly; the CUDA
      states are kept out of use (no GPU to hold them). The run's noise was drawn on the
      GPU and now comes from the CPU generator, so it cannot replay the CUDA noise: the
      weights, optimizer, step and data order continue exactly, the noise is new.
    - Written on the CPU, resumed on CUDA: there are no CUDA states to restore, so the CUDA
      generator keeps the seed `train` gave it (as at step 0); the CPU's noise is not
      replayed either.
    - Written with more GPUs than are present: the states of the GPUs present are restored.
    """
    torch.set_rng_state(_cpu_bytes(state["torch"]))
    if "cuda" in state and torch.cuda.is_available():
        cuda = [_cpu_bytes(s) for s in state["cuda"]][:torch.cuda.device_count()]
        for i, s in enumerate(cuda):
            torch.cuda.set_rng_state(s, i)


def _cpu_bytes(t: torch.Tensor) -> torch.Tensor:
    """An RNG state as torch's setters want it: a CPU uint8 tensor (map_location may have
    moved it to a GPU)."""
    return t.to(device="cpu", dtype=torch.uint8)


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
    ckpt = safe_load(path, map_location)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a ganlib checkpoint (a plain state_dict or "
                              "another tool's file?); load it with torch.load yourself, "
                              "or use a file written by ganlib.train")
    if ckpt.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint version {ckpt.get('version')}, this "
                              f"ganlib reads version {VERSION}")
    return ckpt


def check_compatible(ckpt: dict, config: dict, image_shape) -> None:
    """Refuse to resume when the run-defining config (`RUN_KEYS`, compared by
    `settings_differences`) or the data's shape differ."""
    diffs = settings_differences(ckpt["config"], config, RUN_KEYS)
    if tuple(ckpt["image_shape"]) != tuple(image_shape):
        diffs.append(f"data shape: checkpoint {tuple(ckpt['image_shape'])}, now {tuple(image_shape)}")
    if diffs:
        raise CheckpointError("cannot resume: this run's settings differ from the checkpoint's ("
                              + "; ".join(diffs) + "). Resume with the same settings, or "
                              "train into a new --out folder.")


def settings_differences(saved: dict, now: dict, keys) -> list[str]:
    """`"key: checkpoint X, now Y"` for each of `keys` whose value in `now` differs from the
    checkpoint's `saved` one (a tuple equals the list a checkpoint stores). A key the
    checkpoint does not record (a setting added after it was written) is not compared:
    that run used the setting's default behaviour. The resume check of `train`
    (`check_compatible`) and of `ganlib.ensemble.train_toy_ensemble`."""
    return [f"{k}: checkpoint {saved.get(k)!r}, now {now.get(k)!r}"
            for k in keys if k in saved and _norm(saved[k]) != _norm(now.get(k))]


def _norm(v):
    return list(v) if isinstance(v, (tuple, list)) else v
