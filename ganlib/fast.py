"""The fast training step: `train`'s step compiled with `torch.compile`, in one place.

The loop that a student reads (`ganlib.train.train_step`, `d_step`, `g_step`) stays plain
Python. On CUDA, `train` hands its step to `fast_step`, which returns the same step
compiled by TorchInductor: forward, backward and loss fused into far fewer kernel launches,
which is what small GANs on a GPU wait for. `TrainConfig(fast=False)` keeps the plain step.

What stays the same: the random draws (noise, dropout, the gradient penalty's
interpolation weights) come from torch's ordinary generators in the same order
(`fallback_random`: Inductor would otherwise draw its own numbers), the n_critic D steps,
the statistics left on the device. What does not: fused kernels add in another order, so
the weights agree with the plain step's to float32 rounding, not bit for bit
(`tests/test_fast.py` bounds the difference on the CPU, `tests/test_gpu.py` on CUDA). A
compiled run is deterministic, so it resumes exactly like a plain one.

Where the step is left as it is (returned unchanged, `compilable` says so):
- WGAN-GP: its gradient penalty differentiates twice, which compiled graphs do not support.
- Dropout in G or D (`conv32`'s D): compiled dropout draws its mask another way, so the
  run would no longer be the plain loop's.
- fp16: the gradient scaler reads its inf checks back to the host every step, breaking the
  compiled graph where the time would be saved.

Introduced in chapter 3 (a first GAN on MNIST), beside `train`.
"""
from __future__ import annotations

import torch
from torch import nn


_RANDOM_LAYERS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)


def compilable(G, D, loss, precision=None) -> bool:
    """True when `fast_step` compiles the step of `G` and `D` with this loss (a `GANLoss`)
    and precision (a `ganlib.precision.Precision`; None: float32)."""
    random_layers = any(isinstance(m, _RANDOM_LAYERS) for net in (G, D) for m in net.modules())
    return not (loss.gradient_penalty or random_layers
                or getattr(precision, "amp", "none") == "fp16")


def fast_step(step, G, D, loss, precision=None):
    """Return `step` compiled with `torch.compile` (same random draws, float32 rounding
    aside the same updates), or `step` itself where compiling is not exact (`compilable`).

    `step` is a callable such as `functools.partial(ganlib.train.train_step, G, D, ...)`
    taking the list of real batches; the first call compiles it (seconds on a GPU, up to
    a minute on a CPU), later calls reuse the compiled code. Works on the CPU too (it
    needs a C++ compiler there), which is how its test runs without a GPU.
    """
    if not compilable(G, D, loss, precision):
        return step
    return torch.compile(step, dynamic=False, options={"fallback_random": True})
