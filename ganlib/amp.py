"""Automatic mixed precision (AMP), the number format of training: float32 unless bf16 or
fp16 is asked for, in one place. (Not the precision of precision and recall: that is
`ganlib.metrics.precision_recall`.)

`TrainConfig.amp` names the policy and `train` builds a `Precision` from it:

- "none" (the default, everywhere): float32 throughout. TF32 is switched off for CUDA
  matrix products and convolutions, so "float32" means float32 on every GPU: no test shows
  that TF32's 10-bit mantissa leaves the chapters' numbers unchanged.
- "bf16": `torch.autocast` to bfloat16 around the forward passes and the losses only.
  On CUDA it needs a GPU with native bfloat16 (Ampere or newer; not Colab's T4, use
  "fp16" there). On the CPU it runs too (CPU autocast; fast where the CPU has AVX-512 BF16).
- "fp16": autocast to float16 with a `torch.amp.GradScaler` per player, whose state goes
  into the checkpoint so that a resumed run scales its losses as the uninterrupted one did.
  Meant for GPUs without bfloat16; it runs on the CPU as well (slowly), which is how the
  test suite checks it without a GPU.

Always, whatever the policy: the backward pass and the optimizer step run outside autocast
on float32 weights; WGAN-GP's gradient penalty is computed in float32; the 2-D mixtures of
chapters 5 and 6 (`ganlib.ensemble`) always train in float32 (`FLOAT32`, the default of
`d_step` and `g_step`), because near radius 1 bfloat16 values are 0.0078 apart, most of a
mode's standard deviation (0.01).

Introduced in chapter 3 (a first GAN on MNIST), where `train` is.
"""
from __future__ import annotations

import contextlib

import torch

AMP_MODES = ("none", "bf16", "fp16")
_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def float32_matmuls() -> None:
    """Make CUDA matrix products and cuDNN convolutions compute in true float32 (no TF32).

    A process-wide switch (torch keeps it globally); harmless without a GPU."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def check_amp(amp: str, device: torch.device) -> None:
    """Raise `ValueError` saying what to use when `amp` is unknown or `device` cannot run it."""
    if amp not in AMP_MODES:
        hint = " (amp is no longer a bool: use 'bf16' for the old amp=True)" \
            if isinstance(amp, bool) else ""
        raise ValueError(f"amp must be one of {', '.join(map(repr, AMP_MODES))}, got {amp!r}"
                         f"{hint}")
    if amp == "bf16" and device.type == "cuda" and not _native_bf16(device):
        raise ValueError(f"amp='bf16' needs a GPU with native bfloat16, and "
                         f"{torch.cuda.get_device_name(device)} has none; use amp='fp16' "
                         "(float16 with a gradient scaler) or amp='none'")


def _native_bf16(device) -> bool:
    with torch.cuda.device(device):
        try:
            return torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:  # torch < 2.3 has no `including_emulation` and does not emulate
            return torch.cuda.is_bf16_supported()


class Precision:
    """The precision of one training run: autocast for forward passes and losses, and a
    backward pass plus optimizer step that scales the loss under fp16.

    `amp` is "none", "bf16" or "fp16" (see the module's docstring); `device` is where
    training runs. Use `with precision.autocast(): ...` around forwards and losses, then
    `precision.backward_step(loss, opt, "D")` (or "G"): one gradient scaler per player, so
    that a generator step never reads a scale that the discriminator's steps changed.
    Introduced in chapter 3.
    """

    def __init__(self, amp: str = "none", device: torch.device | str = "cpu"):
        device = torch.device(device)
        check_amp(amp, device)
        if device.type == "cuda":
            float32_matmuls()
        self.amp, self.device, self.dtype = amp, device, _DTYPES[amp]
        self.scalers = {player: torch.amp.GradScaler(device.type) for player in ("D", "G")} \
            if amp == "fp16" else {}

    def autocast(self):
        """A context that runs forwards and losses in the policy's dtype (none: a no-op)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def backward_step(self, loss: torch.Tensor, opt: torch.optim.Optimizer, player: str):
        """`loss.backward()` then `opt.step()`; under fp16 the loss is scaled first and the
        step is skipped when the unscaled gradients hold inf/NaN, as `GradScaler` does."""
        scaler = self.scalers.get(player)
        if scaler is None:
            loss.backward()
            opt.step()
            return
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    def state_dict(self) -> dict:
        """The gradient scalers' states (`{}` unless fp16), for the checkpoint."""
        return {player: s.state_dict() for player, s in self.scalers.items()}

    def load_state_dict(self, state: dict) -> None:
        """Restore the scalers from a checkpoint written with the same policy. A checkpoint
        of another policy holds no scaler state (or one this run does not use): the
        scalers then start afresh, as at step 0."""
        for player, s in self.scalers.items():
            if state.get(player):
                s.load_state_dict(state[player])


FLOAT32 = Precision("none")  # d_step's and g_step's default: plain float32 (touches no global)
