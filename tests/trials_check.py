"""A check shared by tests/test_ensemble.py (CPU) and tests/test_gpu.py (CUDA): the trials
ensemble and separately built single models, trained side by side on the same batches."""
from __future__ import annotations

import math

from ganlib.ensemble import ensemble_step
from ganlib.training import d_step, g_step


def train_side_by_side(G, D, singles, make_opt, loss, draw, steps: int) -> None:
    """Train the ensemble `(G, D)` (`ganlib.trials.Trials`) with `ensemble_step` and each
    single pair `(g, d)` of `singles` with `d_step`/`g_step`, `steps` times on the batches
    `draw()` returns (real points and noise, `(T, B, 2)` each); every trial's D and G losses
    must equal its single model's to 1e-5 at every step. `make_opt(module)` builds an
    optimizer (one per network)."""
    opt_G, opt_D = make_opt(G), make_opt(D)
    opts = [(make_opt(g), make_opt(d)) for g, d in singles]
    for _ in range(steps):
        x_real, z = draw()
        d_losses, g_losses = ensemble_step(G, D, opt_G, opt_D, loss, x_real, z)
        for t, ((g, d), (og, od)) in enumerate(zip(singles, opts)):
            x_fake = g(z[t])
            d_loss, _, _ = d_step(d, od, loss, x_real[t], x_fake.detach())
            g_loss = g_step(d, og, loss, x_fake)
            assert math.isclose(d_loss.item(), d_losses[t].item(), rel_tol=1e-5), (t, "D")
            assert math.isclose(g_loss.item(), g_losses[t].item(), rel_tol=1e-5), (t, "G")
