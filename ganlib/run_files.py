"""What a training run keeps in its folder (`TrainConfig.out_dir`), and how it resumes.

    out_dir/last.pt            the whole state, every `ckpt_every` steps and at the end
    out_dir/best.pt            the state at the best `evaluate` value (`best_metric`)
    out_dir/samples/step_*.png fixed-noise grids every `sample_every` steps
    out_dir/samples.png, losses.png, history.json   at the end

Checkpoints are written atomically and hold everything an exact resume needs: weights,
optimizer and loss-scaler states, every random generator, the step, the history, the run's
settings (checked on resume) and a description of the networks (for `python -m ganlib
sample`). Under torchrun only rank 0 writes. With `out_dir=None` nothing is written.
Introduced in chapter 3 (a first GAN on MNIST).
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch

from . import checkpoint as ckpt_io
from . import distributed
from .models import describe_models
from .plot import plot_history, save_figure, save_samples
from .sampling import generate


class RunFiles:
    """The files of one run of `train`, for the models and optimizers it trains in place.

    `config` is the run's `TrainConfig`, `image_shape` the data's `(C, H, W)`, `precision`
    its `ganlib.amp.Precision` (fp16 loss scalers are saved), `G_ema` an optional
    moving average of G (`ganlib.ema`), saved and resumed with the rest; the sample grids
    show it when there is one."""

    def __init__(self, config, image_shape, G, D, opt_G, opt_D, precision, G_ema=None):
        self.out = Path(config.out_dir) if config.out_dir else None
        self.config, self.image_shape = config, tuple(image_shape)
        self.G, self.D, self.opt_G, self.opt_D = G, D, opt_G, opt_D
        self.precision, self.G_ema = precision, G_ema
        self.writes = self.out is not None and distributed.is_rank0()  # rank 0 alone writes

    @property
    def last_pt(self) -> Path | None:
        return self.out / "last.pt" if self.out else None

    def resume(self, device) -> tuple[int, dict] | None:
        """Load `last.pt` into the models, optimizers and random generators, after checking
        that it was written by a run with the same settings. Returns `(step, history)`, or
        None when there is no checkpoint to resume from."""
        if self.last_pt is None or not self.last_pt.exists():
            return None
        ck = ckpt_io.load_checkpoint(self.last_pt, map_location=device)
        ckpt_io.check_compatible(ck, asdict(self.config), self.image_shape)
        self.G.load_state_dict(ck["G"])
        self.D.load_state_dict(ck["D"])
        self.opt_G.load_state_dict(ck["opt_G"])
        self.opt_D.load_state_dict(ck["opt_D"])
        self.precision.load_state_dict(ck.get("scalers", {}))
        ckpt_io.set_rng_state(ck["rng"])
        distributed.check_resume(ck, device)  # the same process count; this GPU's generator
        if self.G_ema is not None and "G_ema" in ck:  # the average resumes exactly too
            self.G_ema.load_state_dict(ck["G_ema"])
        return ck["step"], ck["history"]

    def save(self, step: int, history: dict, name: str = "last.pt") -> None:
        """Write the whole state after `step` steps to `out_dir/name`, atomically."""
        if not self.writes:
            return
        ema = {"G_ema": self.G_ema.state_dict()} if self.G_ema is not None else {}
        ckpt_io.save_checkpoint(
            self.out / name, G=self.G.state_dict(), D=self.D.state_dict(),
            opt_G=self.opt_G.state_dict(), opt_D=self.opt_D.state_dict(),
            scalers=self.precision.state_dict(), step=step, rng=ckpt_io.rng_state(),
            config=asdict(self.config), image_shape=list(self.image_shape), history=history,
            networks=describe_models(self.G, self.D, self.image_shape),
            world_size=distributed.world_size(), **ema)

    @property
    def sampler(self):
        """The generator the grids show (the moving average when the run keeps one)."""
        return self.G_ema.module if self.G_ema is not None else self.G

    def save_samples(self, step: int, z_fixed: torch.Tensor) -> None:
        """The grid of the samples from the fixed noise, as `samples/step_{step}.png`."""
        if self.writes:
            save_samples(generate(self.sampler, z_fixed),
                         self.out / "samples" / f"step_{step:07d}.png")

    def finish(self, step: int, history: dict, z_fixed: torch.Tensor) -> None:
        """At the end: `last.pt`, the final sample grid, the loss curves and `history.json`."""
        if not self.writes:
            return
        self.save(step, history)
        save_samples(generate(self.sampler, z_fixed), self.out / "samples.png")
        save_figure(plot_history(history), self.out / "losses.png")
        ckpt_io.atomic_write(self.out / "history.json",
                             lambda tmp: Path(tmp).write_text(json.dumps(history)))


__all__ = ["RunFiles"]
