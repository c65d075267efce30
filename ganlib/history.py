"""A run's history: the per-step losses `train` returns, read back from the device in batches.

`history` is a plain dict of lists (it goes into checkpoints and `history.json`):
`step`, `d_loss`, `g_loss`, `d_real`, `d_fake`, and with periodic evaluation `eval`,
`{"step": [...], metric: [...]}`. `StepLog` fills it without a device sync per step: each
step's four numbers stay on the device until `flush`, which also raises `TrainingDiverged`
at the first NaN/inf, before anything is written.
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
    """Collects each step's `(d_loss, g_loss, D(x_real), D(G(z)))` on the device and moves
    them into `history` on `flush`. `probabilities=True` (bce, minimax) records D's outputs
    as sigmoids of its logits; `last_pt` names the checkpoint a divergence leaves intact."""

    def __init__(self, history: dict, probabilities: bool, last_pt=None):
        self.history, self.probabilities, self.last_pt = history, probabilities, last_pt
        self.pending = []  # (4,) tensors still on the device

    def add(self, d_loss, g_loss, real_logits, fake_logits) -> None:
        act = torch.sigmoid if self.probabilities else (lambda t: t)
        self.pending.append(torch.stack([d_loss, g_loss, act(real_logits).mean(),
                                         act(fake_logits).mean()]))

    def flush(self, done: int) -> None:
        """Append the pending steps, which end at step `done`, to the history: one read-back
        (averaged over the processes under torchrun). Raises `TrainingDiverged` on NaN/inf."""
        if not self.pending:
            return
        stats = distributed.all_mean(torch.stack(self.pending)).cpu()  # (n, 4)
        first = done - len(self.pending) + 1
        if not torch.isfinite(stats).all():
            bad = first + int((~torch.isfinite(stats)).any(1).nonzero()[0])
            kept = (f" The last good checkpoint {self.last_pt} is untouched."
                    if self.last_pt else "")
            raise TrainingDiverged(
                f"a loss became NaN/inf at step {bad} (d_loss, g_loss = "
                f"{stats[bad - first, 0]:.4g}, {stats[bad - first, 1]:.4g}).{kept} Lower the "
                "learning rates, check the data range, or resume from the checkpoint with "
                "another seed.")
        self.history["step"] += list(range(first, done + 1))
        for i, key in enumerate(KEYS):
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
