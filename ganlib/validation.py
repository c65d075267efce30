"""Checking a run's settings before anything runs: `check_config(cfg)` for a `TrainConfig`,
`check_ensemble_config(cfg)` for a `ganlib.ensemble.EnsembleConfig`.

Each config's `__post_init__` calls its check, so a bad value fails where it is written,
with one line that names the setting, what it must be, and what to do, instead of a
`ZeroDivisionError` in the loop or a run that trains nothing. The names are the fields
(the command line's flags are the same names with dashes).
Introduced in chapter 3 (a first GAN on MNIST); the ensemble's in chapter 6.
"""
from __future__ import annotations

import math
import os
import re

import torch

from .amp import AMP_MODES  # float32 unless asked; bf16/fp16 autocast
from .losses import LOSSES, get_loss
from .mixtures import MIXTURES
from .models import MODELS

DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?|mps")


class ConfigError(ValueError):
    """A `TrainConfig` (or `EnsembleConfig`) setting out of range or not among the known
    names; `field` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def _fail(name: str, must: str, value, todo: str) -> None:
    raise ConfigError(name, f"{name} must be {must}, got {value!r}; {todo}")


def _int(cfg, name: str, low: int, todo: str, optional: bool = False) -> None:
    v = getattr(cfg, name)
    if optional and v is None:
        return
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        _fail(name, f"an integer >= {low}" + (" or None" if optional else ""), v, todo)


def _number(cfg, name: str, todo: str, positive: bool = True) -> None:
    v = getattr(cfg, name)
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    if not ok or (v <= 0 if positive else v < 0):
        _fail(name, "a finite number " + ("> 0" if positive else ">= 0"), v, todo)


def _flag(cfg, name: str) -> None:
    if hasattr(cfg, name) and not isinstance(getattr(cfg, name), bool):
        _fail(name, "True or False", getattr(cfg, name), f"pass a bool for {name}")


def _betas(cfg, todo: str) -> None:
    betas = cfg.betas
    if (not isinstance(betas, (tuple, list)) or len(betas) != 2
            or not all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1
                       for b in betas)):
        _fail("betas", "two numbers in [0, 1)", betas, todo)


def _lsgan_abc_seed_device(cfg) -> None:
    abc = cfg.lsgan_abc
    if (not isinstance(abc, (tuple, list)) or len(abc) != 3
            or not all(isinstance(t, (int, float)) and math.isfinite(t) for t in abc)):
        _fail("lsgan_abc", "three finite numbers (a, b, c)", abc, "use e.g. (0, 1, 1)")
    seed = cfg.seed
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        _fail("seed", "an integer in [0, 2**63)", seed, "use e.g. 0, 1, 2 for repeated runs")
    if not isinstance(cfg.device, torch.device) and not (
            isinstance(cfg.device, str) and DEVICE_PATTERN.fullmatch(cfg.device)):
        _fail("device", "'auto', 'cpu', 'cuda' or 'cuda:N'", cfg.device,
              "use 'auto' to pick the GPU when there is one")
    if isinstance(cfg.device, str) and cfg.device.startswith("cuda:") and \
            torch.cuda.is_available() and int(cfg.device[5:]) >= torch.cuda.device_count():
        _fail("device", f"cuda:0 .. cuda:{torch.cuda.device_count() - 1} on this machine",
              cfg.device, "pick a GPU that exists, or 'auto'")


def check_config(cfg) -> None:
    """Raise `ConfigError` (a `ValueError`) with one line saying what to change, unless
    every field of `cfg` (a `TrainConfig`) is in range and every name is known.

    Ranges: counts >= 1 (batch_size, pack_m, n_critic, num_steps, latent_dim, log_every),
    intervals >= 0 (sample_every, ckpt_every, eval_every), learning rates and num_epochs
    > 0, betas in [0, 1), gp_weight >= 0. Names: model in `MODELS` (or "custom" for your
    own networks), loss in `LOSSES`, device "auto", "cpu", "cuda" or "cuda:N", amp one of
    `AMP_MODES`. Also: image_size supported by the model, batch_size a multiple of pack_m,
    best_metric only with eval_every > 0, out_dir not an existing file.
    """
    if not isinstance(cfg.data, str) or not cfg.data:
        _fail("data", "a non-empty string (a dataset name, a path, or your own label)",
              cfg.data, "name the data the run trains on")
    if cfg.model not in MODELS and cfg.model != "custom":
        _fail("model", f"one of {', '.join(MODELS)} (or 'custom' for your own G and D)",
              cfg.model, "pick a model by name")
    if cfg.loss not in LOSSES:
        _fail("loss", f"one of {', '.join(LOSSES)}", cfg.loss, "pick an objective by name")
    _int(cfg, "image_size", 1, "give a size in pixels, or None for the data's own",
         optional=True)
    if cfg.model in MODELS and cfg.image_size is not None:
        sizes = MODELS[cfg.model][0]
        if cfg.image_size not in sizes:
            supported = "no image_size (it makes 2-D points)" if sizes == (None,) else \
                f"image_size {' or '.join(map(str, sizes))}"
            _fail("image_size", f"supported by model {cfg.model!r}", cfg.image_size,
                  f"that model takes {supported}; change image_size or the model")
    _int(cfg, "latent_dim", 1, "give the noise size, or None for the model's default",
         optional=True)
    _int(cfg, "pack_m", 1, "use 1 for no packing, m > 1 to judge m samples at once")
    _int(cfg, "batch_size", 1, "use a positive batch size such as 64")
    if cfg.batch_size % cfg.pack_m:
        _fail("batch_size", f"a multiple of pack_m={cfg.pack_m}", cfg.batch_size,
              f"use e.g. {cfg.pack_m * max(1, cfg.batch_size // cfg.pack_m)}")
    _number(cfg, "num_epochs", "give a positive number of passes over the data (or num_steps)")
    _int(cfg, "num_steps", 1, "give a positive number of generator steps, or None to count "
         "epochs", optional=True)
    for name in ("lr_g", "lr_d"):  # 0 is allowed: it freezes that player (a constant critic)
        _number(cfg, name, "use a small positive learning rate such as 2e-4", positive=False)
    _betas(cfg, "use e.g. (0.5, 0.999) as DCGAN does")
    _int(cfg, "n_critic", 1, "use 1, or 5 as usual for wgan-gp")
    _number(cfg, "gp_weight", "use 10 as in WGAN-GP, or 0 for no penalty", positive=False)
    _number(cfg, "clip_value", "use 0.01 as in WGAN")
    _number(cfg, "r1_weight", "use e.g. 1 (R1's gamma), or 0 for none", positive=False)
    if not (isinstance(cfg.label_smoothing, (int, float)) and 0 <= cfg.label_smoothing < 1):
        _fail("label_smoothing", "a number in [0, 1)", cfg.label_smoothing,
              "use e.g. 0.1 (real target 0.9), or 0 for none")
    if not (isinstance(cfg.ema, (int, float)) and not isinstance(cfg.ema, bool) and 0 <= cfg.ema < 1):
        _fail("ema", "a decay in [0, 1)", cfg.ema,
              "use e.g. 0.999 (an average over about 1,000 steps), or 0 for none")
    _lsgan_abc_seed_device(cfg)
    if cfg.amp not in AMP_MODES:
        _fail("amp", f"one of {', '.join(AMP_MODES)}", cfg.amp,
              "use 'none' (float32), or 'bf16' for mixed precision on a GPU (amp=True is "
              "now amp='bf16')")
    for name in ("fast", "progress", "sync_bn"):
        _flag(cfg, name)
    for name in ("sample_every", "ckpt_every", "eval_every"):
        _int(cfg, name, 0, "give a number of steps, or 0 for never")
    _int(cfg, "log_every", 1, "read the losses back every N >= 1 steps, e.g. 25")
    if cfg.best_metric is not None:
        if not isinstance(cfg.best_metric, str) or not cfg.best_metric:
            _fail("best_metric", "a key of evaluate's results or None", cfg.best_metric,
                  "name the measure to keep best.pt by, e.g. 'fid'")
        if not cfg.eval_every:
            _fail("eval_every", f"> 0 when best_metric={cfg.best_metric!r}", cfg.eval_every,
                  "set eval_every (steps between evaluations) or drop best_metric")
    if cfg.out_dir is not None:
        if not isinstance(cfg.out_dir, (str, os.PathLike)) or not str(cfg.out_dir):
            _fail("out_dir", "a folder path or None", cfg.out_dir, "name an output folder")
        if os.path.exists(cfg.out_dir) and not os.path.isdir(cfg.out_dir):
            _fail("out_dir", "a folder", str(cfg.out_dir), "it is a file; choose another path")


def check_ensemble_config(cfg) -> None:
    """Raise `ConfigError` with one line saying what to change, unless every field of `cfg`
    (a `ganlib.ensemble.EnsembleConfig`) is in range and every name is known.

    Counts >= 1 (trials, pack, batch_size, dataset_size, num_samples, log_every,
    snapshot_samples), steps and intervals >= 0, lr >= 0, betas in [0, 1); kind a mixture
    of `ganlib.mixtures.MIXTURES`, loss in `LOSSES` without a gradient penalty; batch_size
    a multiple of minibatch_std; one step's real points (or tuples) at most dataset_size.
    """
    if cfg.kind not in MIXTURES:
        _fail("kind", f"one of {', '.join(MIXTURES)}", cfg.kind, "pick a 2-D mixture by name")
    if cfg.loss not in LOSSES:
        _fail("loss", f"one of {', '.join(LOSSES)}", cfg.loss, "pick an objective by name")
    if get_loss(cfg.loss).gradient_penalty:
        _fail("loss", "an objective without a gradient penalty", cfg.loss,
              f"loss {cfg.loss!r} needs a gradient penalty, which the ensemble lacks")
    for name in ("trials", "pack", "batch_size", "dataset_size", "num_samples", "log_every",
                 "snapshot_samples"):
        _int(cfg, name, 1, f"give a positive {name}")
    for name in ("steps", "eval_every", "minibatch_std"):
        _int(cfg, name, 0, f"give {name} >= 0 (0: none)")
    for name in ("snapshot_steps", "eval_steps"):
        steps = getattr(cfg, name)
        if isinstance(steps, (str, bytes)) or not all(
                isinstance(s, int) and not isinstance(s, bool) for s in steps):
            _fail(name, "a collection of step numbers", steps, "use e.g. (1000, 5000) or ()")
    _number(cfg, "lr", "use a small positive learning rate such as 1e-4", positive=False)
    _betas(cfg, "use e.g. (0.8, 0.999) as PacGAN does")
    if cfg.init_std is not None:
        _number(cfg, "init_std", "use 0.02 (PacGAN's), or None for PyTorch's initialisation")
    _lsgan_abc_seed_device(cfg)
    if cfg.updates not in ("alternating", "simultaneous"):
        _fail("updates", "'alternating' or 'simultaneous'", cfg.updates,
              "alternating is ganlib's d_step then g_step, simultaneous PacGAN's code")
    if cfg.batchnorm not in ("torch", "pacgan"):
        _fail("batchnorm", "'torch' or 'pacgan'", cfg.batchnorm,
              "torch is nn.BatchNorm1d, pacgan PacGAN's BatchNorm per packing slot")
    if cfg.fast not in (True, False, "compile"):
        _fail("fast", "True, False or 'compile'", cfg.fast,
              "True replays each step as one CUDA graph, 'compile' also fuses its kernels")
    for name in ("real_tuples", "progress"):
        _flag(cfg, name)
    g = cfg.minibatch_std
    if g and cfg.batch_size % g:
        _fail("batch_size", f"a multiple of the minibatch-std group size {g}", cfg.batch_size,
              f"use e.g. {g * max(1, cfg.batch_size // g)}")
    per_step, what = ((cfg.batch_size, "batch_size") if cfg.real_tuples
                      else (cfg.batch_size * cfg.pack, "batch_size * pack"))
    if per_step > cfg.dataset_size:
        _fail("batch_size", f"such that {what} ({per_step}) is no more than dataset_size "
              f"({cfg.dataset_size})", cfg.batch_size, "lower batch_size or raise dataset_size")
