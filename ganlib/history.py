"""A run's history: the values `train` (and the trials ensemble) record, read back from the
device in batches.

`history` is a plain dict of lists (it goes into checkpoints and `history.json`):
`step`, `d_loss`, `g_loss`, `d_real`, `d_fake`, and with periodic evaluation `eval`,
`{"step": [...], metric: [...]}`. `StepLog` fills it without a device sync per step: each
recorded step's values stay on the device until `flush`, which also raises
`TrainingDiverged` at the first NaN/inf, before anything is written.
Introduced in chapter 3 (a first GAN on MNIST); `TrainingDiverged` in chapter 10.
"""
from __future__ import annotations

import torch

from . import distributed

KEYS = ("d_loss", "g_loss", "d_real", "d_fake")  # per step, after "step"


class TrainingDiverged(FloatingPointError):
    """A loss became NaN or inf; the last good checkpoint is left as it was."""


def new_history() -> dict:
    """An empty history: per step, D and G losses and D's mean output on real and fake
    (probabilities for bce/minimax, raw scores for the other losses)."""
    return {"step": [], **{key: [] for key in KEYS}}


class StepLog:
    """Collects the values of chosen steps on the device and moves them into `history`
    (one list per key of `keys`, after "step") on `flush`: one read-back for many steps.

    `train` records `(d_loss, g_loss, D(x_real), D(G(z)))` every step (`KEYS`);
    `ganlib.ensemble` records per-trial `(d_loss (T,), g_loss (T,))` every `log_every`
    steps, with `finite=False`: a trial that diverges is recorded as NaN and the others go
    on. `last_pt` names the checkpoint a divergence leaves intact."""

    def __init__(self, history: dict, keys=KEYS, last_pt=None, finite: bool = True):
        self.history, self.keys, self.last_pt, self.finite = history, keys, last_pt, finite
        self.pending = []  # (step, values stacked: (len(keys), ...)) still on the device

    def add(self, step: int, *values: torch.Tensor) -> None:
        """Record `values` (one tensor of the same shape per key, on the device) at `step`."""
        self.pending.append((step, torch.stack(values)))

    def flush(self) -> None:
        """Append the pending steps to the history: one read-back (averaged over the
        processes under torchrun). With `finite`, raises `TrainingDiverged` on NaN/inf."""
        if not self.pending:
            return
        steps = [step for step, _ in self.pending]
        stats = distributed.all_mean(torch.stack([v for _, v in self.pending])).cpu()  # (n, K, ...)
        if self.finite and not torch.isfinite(stats).all():
            i = int((~torch.isfinite(stats)).flatten(1).any(1).nonzero()[0])
            kept = (f" The last good checkpoint {self.last_pt} is untouched."
                    if self.last_pt else "")
            raise TrainingDiverged(
                f"a loss became NaN/inf at step {steps[i]} (d_loss, g_loss = "
                f"{stats[i, 0]:.4g}, {stats[i, 1]:.4g}).{kept} Lower the "
                "learning rates, check the data range, or resume from the checkpoint with "
                "another seed.")
        self.history["step"] += steps
        for i, key in enumerate(self.keys):
            self.history[key] += stats[:, i].tolist()
        self.pending.clear()

    def postfix(self) -> dict:
        """The latest values, for the progress bar."""
        h = self.history
        return dict(d_loss=f"{h['d_loss'][-1]:.3f}", g_loss=f"{h['g_loss'][-1]:.3f}",
                    D_x=f"{h['d_real'][-1]:.2f}", D_G_z=f"{h['d_fake'][-1]:.2f}")

    def record_eval(self, step: int, values: dict, best_metric: str | None) -> bool:
        """Append evaluation results to `history["eval"]`; True when `best_metric` (lower is
        better) reached its best value so far."""
        ev = self.history.setdefault("eval", {"step": []})
        ev["step"].append(step)
        for k, v in values.items():
            ev.setdefault(k, []).append(float(v))
        if best_metric is None:
            return False
        if best_metric not in values:
            raise KeyError(f"best_metric {best_metric!r} is not among evaluate's results "
                           f"{sorted(values)}")
        return ev[best_metric][-1] <= min(ev[best_metric])


__all__ = ["KEYS", "StepLog", "TrainingDiverged", "new_history"]
