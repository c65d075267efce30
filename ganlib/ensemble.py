"""Many independent trials of PacGAN's 2-D GAN, trained together as one batched model.

`ganlib.trials.Trials` holds T networks of one class as one module (`torch.func`'s
`stack_module_state`, `functional_call`, `vmap`). This module trains a pair of them:
`ensemble_step` updates all T discriminators and generators at once, through ganlib's own
`d_step` and `g_step` (each trial's loss is its own, their sum is minimised, so each trial's
gradient is its own, and Adam works element by element), and `train_toy_ensemble` runs
the whole protocol of an `EnsembleConfig`: each trial's own data and noise, measurements,
snapshots, resumable checkpoints, a CUDA graph on a GPU. `tests/test_ensemble.py` checks
that T trials trained here match T separately trained pairs step for step, for every
option of `train_toy_ensemble`.

Introduced in chapter 6 (mode collapse); chapter 5 (BCE vs least squares) uses it too.
"""
from __future__ import annotations

import contextlib
import functools
import time
from dataclasses import dataclass, fields
from pathlib import Path

import torch
from torch.func import vmap
from tqdm.auto import tqdm

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint, settings_differences
from .device import get_device
from .fast import compile_forward, graph_step
from .history import StepLog
from .losses import get_loss
from .mixtures import reference_points, trial_data
from .mode_metrics import N_MIXTURE, mixture_metrics, point_recall, summarize
from .optim import make_adam
from .sampling import generate
from .training import d_step, discriminate, g_step
from .trials import build_ensemble, trial_seeds
from .validation import check_ensemble_config

METRICS = ("modes", "high_quality_pct", "reverse_kl", "recall")  # per trial, summarised
RUN_CONTROL = ("device", "fast", "progress")  # not saved: a checkpoint resumes with any


@dataclass
class EnsembleConfig:
    """Everything that defines a run of `train_toy_ensemble`, checked on creation
    (`ganlib.validation.check_ensemble_config`) and saved in its checkpoints (`settings`).
    Introduced in chapter 6 (mode collapse)."""
    kind: str = "ring"           # "ring" (8 Gaussians, std 0.01) or "grid" (25, std 0.05)
    trials: int = 10             # independent runs T, each with its own weights, data and noise
    loss: str = "bce"            # a ganlib.losses.get_loss name (none with a gradient penalty)
    pack: int = 1                # PacGAN's packing degree m (1: an ordinary GAN)
    steps: int = 20000           # D+G updates
    batch_size: int = 100        # D inputs per step: batch_size * pack real points, as many fakes
    lr: float = 1e-4             # Adam's learning rate for both players
    betas: tuple = (0.8, 0.999)  # Adam's betas for both players (PacGAN's code)
    seed: int = 0                # one seed; trial t uses trial_seeds(seed, trials)[t]
    num_samples: int = N_MIXTURE  # points per trial for the metrics (2,500 as in the papers)
    minibatch_std: int = 0       # group size of a minibatch-stddev feature in D (0: none)
    dataset_size: int = 100_000  # each trial's training set: points, or tuples (real_tuples)
    log_every: int = 100         # record the per-trial losses every N steps (and at the end)
    snapshot_steps: tuple = ()   # steps after which to keep snapshot_samples points (fixed noise)
    snapshot_samples: int = 500  # points per trial in each snapshot
    eval_steps: tuple = ()       # steps after which to measure every trial as at the end
    eval_every: int = 0          # also measure every N steps (0: only eval_steps and the end)
    init_std: float | None = 0.02  # PacGAN's N(0, init_std) weights (pacgan_init); None: PyTorch's
    lsgan_abc: tuple = (0.0, 1.0, 1.0)  # LSGAN's targets: fake a, real b, G's target c
    updates: str = "alternating"  # alternating (d_step, g_step) | simultaneous (PacGAN's code)
    batchnorm: str = "torch"     # torch (nn.BatchNorm1d) | pacgan (per packing slot, no biases)
    real_tuples: bool = False    # PacGAN's data: dataset_size fixed tuples of pack real points
    device: str = "auto"         # "auto" picks CUDA when present
    fast: bool | str = True      # CUDA: each step one CUDA graph; "compile": fused first; False
    progress: bool = True        # show a progress bar

    def __post_init__(self):
        check_ensemble_config(self)  # one line saying what to change for any bad setting

    def settings(self) -> dict:
        """The run-defining fields as plain values (lists, step sets sorted): what a
        checkpoint records and a resumed run must match."""
        plain = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in RUN_CONTROL}
        return {k: sorted(v) if k.endswith("_steps") else list(v) if isinstance(v, tuple) else v
                for k, v in plain.items()}


def ensemble_step(G, D, opt_G, opt_D, loss, x_real, z, simultaneous: bool = False):
    """One D update and one G update for all trials.

    Alternating (the default): ganlib's `d_step` on detached fakes, then `g_step` with the
    updated D scoring the same fakes. Simultaneous (PacGAN's code): both players'
    gradients are taken at the current parameters, then both step.

    Args:
        x_real: real points `(T, B, 2)`; z: noise `(T, B, latent_dim)`.
    Returns:
        per-trial `(d_loss (T,), g_loss (T,))`, detached.
    Introduced in chapter 6 (mode collapse).
    """
    x_fake = G(z)  # (T, B, 2)
    if not simultaneous:
        d_losses, _, _ = d_step(D, opt_D, loss, x_real, x_fake.detach())
        return d_losses, g_step(D, opt_G, loss, x_fake)
    real_logits, fake_logits = discriminate(D, x_real, x_fake)
    d_losses = vmap(loss.d_loss)(real_logits, fake_logits)  # (T,): each trial's own
    g_losses = vmap(loss.g_loss)(fake_logits)
    # the sums: each trial's gradient is its own loss's
    grads_D = torch.autograd.grad(d_losses.sum(), [*D.parameters()], retain_graph=True)
    grads_G = torch.autograd.grad(g_losses.sum(), [*G.parameters()])
    for p, grad in zip([*D.parameters(), *G.parameters()], [*grads_D, *grads_G]):
        # contiguous, as backward() would lay it out: fused Adam on the CPU (torch
        # 2.14) reads a strided gradient as if it were contiguous
        p.grad = grad.contiguous()
    opt_D.step()
    opt_G.step()
    return d_losses.detach(), g_losses.detach()


def train_toy_ensemble(config: EnsembleConfig | None = None, *, checkpoint=None, stop_at=None,
                       time_limit=None, **options) -> dict:
    """Train `trials` independent toy GANs (PacGAN's networks) on a 2-D mixture at once.

    Args:
        config: an `EnsembleConfig`, or its fields as keywords (`**options`), e.g.
            `train_toy_ensemble(kind="grid", trials=10, pack=2)`.
        checkpoint: a file to resume from when it exists, and to write when the run
            stops early and at every measurement: a run stopped and resumed ends exactly
            as an uninterrupted one (same device type; any `fast`).
        stop_at: stop after this step (saving `checkpoint`) instead of at `steps`.
        time_limit: stop (saving `checkpoint`) after this many seconds of training.
    Returns:
        The run as a dict with the same keys whether or not it finished; "finished"
        (False when stopped early), "step",
        "settings" (`EnsembleConfig.settings`), "device", "history" (`{"step": [...],
        "d_loss": [[T values], ...], "g_loss": ...}`), "evals" (`{step: [per-trial
        metrics]}`), "seconds" of training (measurements excluded), "snapshots" (`{step:
        (T, snapshot_samples, 2) tensor}`), "G" and "D" (`Trials`); and, None until the
        run has finished: "samples" `(T, num_samples, 2)` on the CPU, "metrics" (one
        `mixture_metrics` dict per trial plus "recall", `point_recall`) and "summary"
        (`ganlib.mode_metrics.summarize` of them).
    Introduced in chapter 6 (mode collapse).
    """
    if config is not None and options:
        raise TypeError("pass an EnsembleConfig or its fields as keywords, not both")
    cfg = config if config is not None else EnsembleConfig(**options)
    run = _Run(cfg, get_device(cfg.device))
    if checkpoint is not None and Path(checkpoint).exists():
        run.load(checkpoint)
    step_fn = run.step_function()  # after resuming: a CUDA graph holds the tensors it has
    x_ref = reference_points(cfg.kind, cfg.num_samples).float()  # (num_samples, 2)
    measure_at = set(cfg.eval_steps) | set(range(cfg.eval_every, cfg.steps,
                                                  cfg.eval_every or cfg.steps + 1))
    log = StepLog(run.history, keys=("d_loss", "g_loss"), finite=False)  # one read-back
    clock = _Stopwatch(run.seconds)
    end = min(cfg.steps, stop_at if stop_at is not None else cfg.steps)
    for step in tqdm(range(run.step, end), desc=f"{cfg.kind} x{cfg.trials}",
                     disable=not cfg.progress, dynamic_ncols=True):
        d_loss, g_loss = step_fn(*run.batch(step))  # (T,), (T,), left on the device
        run.step = done = step + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            log.add(done, d_loss, g_loss)
        if done in cfg.snapshot_steps:
            run.snapshots[done] = generate(run.G, run.z_snap).cpu()
        if done in measure_at and done != cfg.steps:
            with clock.paused():  # measuring and saving are not training time
                run.evals[done] = _measure(run.G, run.z_eval, cfg.kind, x_ref)[1]
                log.flush()
                run.seconds = clock.seconds
                if checkpoint is not None:
                    run.save(checkpoint)
        if time_limit is not None and clock.total() > time_limit:
            break
    run.seconds = clock.total()
    log.flush()
    if checkpoint is not None:
        run.save(checkpoint)
    finished = run.step == cfg.steps
    samples, metrics = _measure(run.G, run.z_eval, cfg.kind, x_ref) if finished else (None, None)
    if finished and measure_at:
        run.evals[cfg.steps] = metrics
    return {"finished": finished, "step": run.step, "settings": cfg.settings(),
            "device": str(run.device), "history": run.history, "evals": run.evals,
            "seconds": run.seconds, "snapshots": run.snapshots, "G": run.G, "D": run.D,
            "samples": samples, "metrics": metrics,
            "summary": summarize(metrics, METRICS) if finished else None}


class _Run:
    """One run's state, all of which its checkpoint holds: the two `Trials` and their
    optimizers, each trial's training set, the random stream (one generator on the
    device), the step, the epoch's order, the history, the measurements and the noise
    they use."""
    SAVED = ("step", "order", "seconds", "snapshots", "evals", "history", "z_snap", "z_eval")

    def __init__(self, cfg: EnsembleConfig, device: torch.device):
        self.cfg, self.device, T = cfg, device, cfg.trials
        self.G, self.D = build_ensemble(T, cfg.pack, cfg.minibatch_std, cfg.seed, cfg.init_std,
                                        cfg.batchnorm)
        self.G.to(device).train()
        self.D.to(device).train()
        self.opt_G = make_adam(self.G, cfg.lr, cfg.betas)
        self.opt_D = make_adam(self.D, cfg.lr, cfg.betas)
        unit = cfg.pack if cfg.real_tuples else 1  # real points per stored (and shuffled) unit
        self.n, self.per_step = cfg.batch_size * cfg.pack, cfg.batch_size * cfg.pack // unit
        self.data = trial_data(cfg.kind, trial_seeds(cfg.seed, T), cfg.dataset_size,
                               unit).to(device)  # (T, N, unit, 2)
        self.gen = torch.Generator(device).manual_seed(cfg.seed)
        self.rows = torch.arange(T, device=device)[:, None]  # (T, 1) for per-trial gathers
        self.step, self.order, self.seconds, self.snapshots, self.evals = 0, None, 0.0, {}, {}
        self.history = {"step": [], "d_loss": [], "g_loss": []}
        self.z_snap = torch.randn(T, cfg.snapshot_samples, 2, device=device, generator=self.gen)
        self.z_eval = torch.randn(T, cfg.num_samples, 2, device=device, generator=self.gen)

    def batch(self, step: int):
        """`(x_real (T, B m, 2), z (T, B m, latent_dim))` for `step`: each trial's own points,
        its data reshuffled at every epoch, and fresh noise."""
        T, per_epoch = self.cfg.trials, self.cfg.dataset_size // self.per_step
        if step % per_epoch == 0:
            self.order = torch.rand(T, self.cfg.dataset_size, device=self.device,
                                    generator=self.gen).argsort(1)
        j = step % per_epoch * self.per_step
        x_real = self.data[self.rows, self.order[:, j:j + self.per_step]].view(T, self.n, 2)
        z = torch.randn(T, self.n, self.G.latent_dim, device=self.device, generator=self.gen)
        return x_real, z

    def step_function(self):
        """`ensemble_step` on this run's networks; on CUDA with `fast`, replayed as one CUDA
        graph (`ganlib.fast.graph_step`), after `compile_forward` with "compile"."""
        cfg = self.cfg
        step = functools.partial(ensemble_step, self.G, self.D, self.opt_G, self.opt_D,
                                 get_loss(cfg.loss, *cfg.lsgan_abc),
                                 simultaneous=cfg.updates == "simultaneous")
        if not cfg.fast or self.device.type != "cuda":
            return step
        if cfg.fast == "compile":
            compile_forward(self.G, self.D)
        for group in (*self.opt_G.param_groups, *self.opt_D.param_groups):
            group["capturable"] = True  # Adam's step count stays on the GPU
        examples = (torch.zeros(cfg.trials, self.n, 2, device=self.device),  # no draws from
                    torch.zeros(cfg.trials, self.n, self.G.latent_dim, device=self.device))
        return graph_step(step, examples, (self.G, self.D), (self.opt_G, self.opt_D))

    def save(self, path) -> None:
        save_checkpoint(path, kind="toy-ensemble", settings=self.cfg.settings(),
                        device=self.device.type, G=self.G.state_dict(), D=self.D.state_dict(),
                        opt_G=self.opt_G.state_dict(), opt_D=self.opt_D.state_dict(),
                        generator=self.gen.get_state(),
                        **{k: getattr(self, k) for k in self.SAVED})

    def load(self, path) -> None:
        ckpt = load_checkpoint(path, map_location=self.device)
        if ckpt.get("kind") != "toy-ensemble":
            raise CheckpointError(f"{path} is not a train_toy_ensemble checkpoint")
        settings = self.cfg.settings()
        diffs = settings_differences(ckpt["settings"], settings, settings)
        if diffs:
            raise CheckpointError(f"{path} was written by a run with other settings ("
                                  f"{'; '.join(diffs)}); pass the same settings or another "
                                  "checkpoint file")
        if ckpt["device"] != self.device.type:
            raise CheckpointError(f"{path} was written on {ckpt['device']}; its random stream "
                                  f"continues only there: resume it on {ckpt['device']}")
        for name in ("G", "D", "opt_G", "opt_D"):
            getattr(self, name).load_state_dict(ckpt[name])
        self.gen.set_state(ckpt["generator"].cpu())
        for k in self.SAVED:
            setattr(self, k, ckpt[k])


class _Stopwatch:
    """Seconds of training since `seconds`, leaving out what runs inside `paused()`."""

    def __init__(self, seconds: float = 0.0):
        self.seconds, self._start = seconds, time.perf_counter()

    @contextlib.contextmanager
    def paused(self):
        self.seconds += time.perf_counter() - self._start
        try:
            yield
        finally:
            self._start = time.perf_counter()

    def total(self) -> float:
        return self.seconds + time.perf_counter() - self._start


def _measure(G, z, kind: str, x_ref):
    """Each trial's points from the fixed noise `z` (eval mode, on the CPU) and their
    `mixture_metrics` plus recall against the real points `x_ref`."""
    samples = generate(G, z).cpu()  # (T, num_samples, 2)
    metrics = []
    for x in samples:
        m = mixture_metrics(x, kind)
        m["recall"] = point_recall(x_ref, x)
        metrics.append(m)
    return samples, metrics


__all__ = ["EnsembleConfig", "ensemble_step", "train_toy_ensemble", "METRICS"]
