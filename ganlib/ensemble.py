"""Many independent trials of PacGAN's 2-D GAN, trained together as one batched model.

`ganlib.trials.Trials` holds T networks of one class as one module (`torch.func`'s
`stack_module_state`, `functional_call`, `vmap`). This module trains a pair of them:
`ensemble_step` updates all T discriminators and generators at once (the loss is the *sum*
of the per-trial losses, so each trial's gradient is its own, and Adam works element by
element), and `train_toy_ensemble` runs the whole protocol: each trial's own data and noise,
measurements, snapshots, resumable checkpoints, a CUDA graph on a GPU.
`tests/test_ensemble.py` checks that T trials trained here match T separately trained pairs
step for step, for every option of `train_toy_ensemble`.

Introduced in chapter 6 (mode collapse); chapter 5 (BCE vs least squares) uses it too.
"""
from __future__ import annotations

import functools
import time
from pathlib import Path

import torch
from torch.func import vmap
from tqdm.auto import tqdm

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .fast import compile_forward, graph_step
from .losses import get_loss
from .mixtures import reference_points, trial_data
from .mode_metrics import N_MIXTURE, mixture_metrics, point_recall, summarize
from .optim import make_adam
from .toy_models import MinibatchStdDev
from .trials import Trials, build_ensemble, generate_points, trial_seeds
from .utils import get_device

METRICS = ("modes", "high_quality_pct", "reverse_kl", "recall")  # per trial, summarised


def _scores(D: Trials, x_real, x_fake):
    """D's logits `(T, B/m, 1)` for real and fake points: one pass when D scores each
    packed input on its own, separate passes when it has minibatch statistics."""
    if any(isinstance(mod, MinibatchStdDev) for mod in D.net.modules()):
        return D(x_real), D(x_fake)
    logits = D(torch.cat([x_real, x_fake], dim=1))  # (T, (B + B') / m, 1)
    return logits.split([x_real.shape[1] // D.m, x_fake.shape[1] // D.m], dim=1)


def ensemble_step(G, D, opt_G, opt_D, loss, x_real, z, simultaneous: bool = False):
    """One D update and one G update for all trials.

    Alternating (the default, as `ganlib.training.d_step` then `g_step`): D steps on detached
    fakes, then the updated D scores the same fakes for G's step. Simultaneous (PacGAN's
    code): both players' gradients are taken at the current parameters, then both step.

    Args:
        x_real: real points `(T, B, 2)`; z: noise `(T, B, latent_dim)`.
    Returns:
        per-trial `(d_loss (T,), g_loss (T,))`, detached.
    Introduced in chapter 6 (mode collapse).
    """
    x_fake = G(z)  # (T, B, 2)
    d_loss, g_loss = vmap(loss.d_loss), vmap(loss.g_loss)  # per trial: (T,)
    if simultaneous:
        real_logits, fake_logits = _scores(D, x_real, x_fake)
        d_losses, g_losses = d_loss(real_logits, fake_logits), g_loss(fake_logits)
        # the sums: each trial's gradient is its own loss's
        grads_D = torch.autograd.grad(d_losses.sum(), [*D.parameters()], retain_graph=True)
        grads_G = torch.autograd.grad(g_losses.sum(), [*G.parameters()])
        for p, grad in zip([*D.parameters(), *G.parameters()], [*grads_D, *grads_G]):
            # contiguous, as backward() would lay it out: fused Adam on the CPU (torch
            # 2.14) reads a strided gradient as if it were contiguous
            p.grad = grad.contiguous()
        opt_D.step()
        opt_G.step()
    else:
        d_losses = d_loss(*_scores(D, x_real, x_fake.detach()))
        opt_D.zero_grad(set_to_none=True)
        d_losses.sum().backward()
        opt_D.step()
        g_losses = g_loss(D(x_fake))  # the updated D scores the same fakes
        opt_G.zero_grad(set_to_none=True)
        g_losses.sum().backward(inputs=[*G.parameters()])  # no gradients for D's weights
        opt_G.step()
    return d_losses.detach(), g_losses.detach()


def train_toy_ensemble(kind="ring", trials=10, loss="bce", pack=1, steps=20000,
                       batch_size=100, lr=1e-4, betas=(0.8, 0.999), seed=0, device="auto",
                       progress=True, num_samples=N_MIXTURE, *, minibatch_std=0,
                       dataset_size=100_000, log_every=100, snapshot_steps=(),
                       snapshot_samples=500, eval_steps=(), eval_every=0, init_std=0.02,
                       lsgan_abc=(0.0, 1.0, 1.0), updates="alternating", batchnorm="torch",
                       real_tuples=False, checkpoint=None, stop_at=None,
                       time_limit=None, fast=True) -> dict:
    """Train `trials` independent toy GANs (PacGAN's networks) on a 2-D mixture at once.

    Args:
        kind: "ring" (8 Gaussians, std 0.01) or "grid" (25, std 0.05).
        trials: independent runs T, each with its own weights, data and noise.
        loss: a `ganlib.losses.get_loss` name ("bce", "lsgan", ...).
        pack: PacGAN's packing degree m (1: an ordinary GAN).
        steps: D+G updates.
        batch_size: discriminator inputs per step, as in PacGAN's code: each step draws
            `batch_size * pack` real points and as many generated ones.
        lr, betas: Adam's settings for both players.
        seed: one seed for everything; trial t uses `trial_seeds(seed, trials)[t]`.
        device: "auto" picks CUDA when present.
        progress: show a progress bar.
        num_samples: points per trial for the metrics (2,500 as in the papers).
        minibatch_std: group size of a minibatch-stddev feature in D (0: none).
        dataset_size: each trial's training set: points, or with `real_tuples` packed
            tuples (PacGAN: 100,000).
        log_every: record the per-trial losses every this many steps.
        snapshot_steps: steps after which to keep `snapshot_samples` points per trial
            (fixed noise), e.g. to watch collapse happen.
        eval_steps, eval_every: steps after which (and every `eval_every` steps) to
            measure every trial as at the end (same noise), to see the budget's effect.
        init_std: PacGAN's N(0, init_std) weight initialisation (`pacgan_init`); None
            keeps PyTorch's default.
        lsgan_abc: LSGAN's targets (fake a, real b, generator c).
        updates: "alternating" (ganlib's `d_step` then `g_step`) or "simultaneous"
            (PacGAN's code: both gradients at the same parameters).
        batchnorm: "torch" (`nn.BatchNorm1d`) or "pacgan" (`PacGANBatchNorm` per packing
            slot, no hidden biases: PacGAN's code).
        real_tuples: PacGAN's data: `dataset_size` fixed tuples of `pack` real points
            (`ganlib.mixtures.trial_data`), shuffled as tuples; False: points, shuffled
            one by one and packed as they come.
        checkpoint: a file to resume from when it exists, and to write when the run
            stops early and at every measurement: a run stopped and resumed ends exactly
            as an uninterrupted one (same device type).
        stop_at: stop after this step (saving `checkpoint`) instead of at `steps`.
        time_limit: stop (saving `checkpoint`) after this many seconds of training.
        fast: on CUDA, replay each step as one CUDA graph (`ganlib.fast.graph_step`): the
            same kernels on the same data and noise, far fewer launches. "compile": also
            fuse G's and D's kernels first (`ganlib.fast.compile_forward`; equal to float32
            rounding). Ignored on the CPU; False keeps the plain step. Checkpoints resume
            with any setting.
    Returns:
        A dict with "finished" (False when stopped early, and then only "step", "settings",
        "history", "evals", "seconds" and "device" are set); "samples", a `(T,
        num_samples, 2)` CPU tensor; "metrics", one `mixture_metrics` dict per trial plus
        "recall" (`point_recall`); "summary", `ganlib.mode_metrics.summarize` of them;
        "history", `{"step": [...], "d_loss": [[T values], ...], "g_loss": ...}`;
        "snapshots", `{step: (T, snapshot_samples, 2) tensor}`; "evals", `{step:
        [per-trial metrics]}`; "seconds" of training (evaluations excluded); "settings";
        "device"; "G" and "D" (`Trials`).
    Introduced in chapter 6 (mode collapse).
    """
    if updates not in ("alternating", "simultaneous"):
        raise ValueError(f"updates must be 'alternating' or 'simultaneous', got {updates!r}")
    if fast not in (True, False, "compile"):
        raise ValueError(f"fast must be True, False or 'compile', got {fast!r}")
    if minibatch_std and batch_size % minibatch_std:
        raise ValueError(f"batch_size {batch_size} must be a multiple of the minibatch-std "
                         f"group size {minibatch_std}")
    unit = pack if real_tuples else 1  # real points per stored (and shuffled) unit
    n, per_step = batch_size * pack, batch_size * pack // unit  # points, units per step
    if per_step > dataset_size:
        raise ValueError(f"batch_size * pack = {n} is more than dataset_size {dataset_size}")
    objective = get_loss(loss, *lsgan_abc)
    if objective.gradient_penalty:
        raise ValueError(f"loss {loss!r} needs a gradient penalty, which the ensemble lacks")
    settings = dict(kind=kind, trials=trials, loss=loss, pack=pack, steps=steps,
                    batch_size=batch_size, lr=lr, betas=list(betas), seed=seed,
                    num_samples=num_samples, minibatch_std=minibatch_std,
                    dataset_size=dataset_size, init_std=init_std, lsgan_abc=list(lsgan_abc),
                    updates=updates, batchnorm=batchnorm, real_tuples=real_tuples,
                    log_every=log_every, snapshot_steps=sorted(snapshot_steps),
                    snapshot_samples=snapshot_samples, eval_steps=sorted(eval_steps),
                    eval_every=eval_every)
    dev = get_device(device)
    seeds = trial_seeds(seed, trials)
    G, D = build_ensemble(trials, pack, minibatch_std, seed, init_std, batchnorm)
    G.to(dev).train()
    D.to(dev).train()
    opt_G, opt_D = make_adam(G, lr, betas), make_adam(D, lr, betas)
    data = trial_data(kind, seeds, dataset_size, unit).to(dev)  # (T, N, unit, 2)
    gen = torch.Generator(dev).manual_seed(seed)
    rows = torch.arange(trials, device=dev)[:, None]  # (T, 1) for per-trial gathers
    per_epoch = dataset_size // per_step
    run = {"step": 0, "order": None, "seconds": 0.0, "snapshots": {}, "evals": {},
           "history": {"step": [], "d_loss": [], "g_loss": []},
           "z_snap": torch.randn(trials, snapshot_samples, 2, device=dev, generator=gen),
           "z_eval": torch.randn(trials, num_samples, 2, device=dev, generator=gen)}
    if checkpoint is not None and Path(checkpoint).exists():
        _resume(checkpoint, settings, dev, G, D, opt_G, opt_D, gen, run)
    step_fn = functools.partial(ensemble_step, G, D, opt_G, opt_D, objective,
                                simultaneous=updates == "simultaneous")
    if fast and dev.type == "cuda":  # captured after resuming: the graph holds the tensors
        if fast == "compile":
            compile_forward(G, D)
        for group in (*opt_G.param_groups, *opt_D.param_groups):
            group["capturable"] = True  # Adam's step count stays on the GPU
        examples = (torch.zeros(trials, n, 2, device=dev),  # no draws from gen: the
                    torch.zeros(trials, n, G.latent_dim, device=dev))  # stream stays as plain
        step_fn = graph_step(step_fn, examples, (G, D), (opt_G, opt_D))
    x_ref = reference_points(kind, num_samples).float()  # (num_samples, 2), as the samples
    measure_at = set(eval_steps) | set(range(eval_every, steps, eval_every or steps + 1))
    end = min(steps, stop_at if stop_at is not None else steps)
    pending, eval_seconds, start = [], 0.0, time.perf_counter()
    bar = tqdm(range(run["step"], end), desc=f"{kind} x{trials}", disable=not progress,
               dynamic_ncols=True)
    for step in bar:
        if step % per_epoch == 0:  # each trial shuffles its own data every epoch
            run["order"] = torch.rand(trials, dataset_size, device=dev, generator=gen).argsort(1)
        j = step % per_epoch * per_step
        x_real = data[rows, run["order"][:, j:j + per_step]].view(trials, n, 2)  # (T, B m, 2)
        z = torch.randn(trials, n, G.latent_dim, device=dev, generator=gen)
        d_loss, g_loss = step_fn(x_real, z)  # (T,), (T,)
        run["step"] = done = step + 1
        if done % log_every == 0 or done == steps:
            pending.append((done, d_loss, g_loss))
        if done in snapshot_steps:
            run["snapshots"][done] = generate_points(G, run["z_snap"])
        if done in measure_at and done != steps:
            t0 = time.perf_counter()
            samples = generate_points(G, run["z_eval"])  # (T, num_samples, 2)
            run["evals"][done] = [_measure(x, kind, x_ref) for x in samples]
            _flush(pending, run["history"])
            if checkpoint is not None:
                run["seconds"] += t0 - start - eval_seconds
                _save(checkpoint, settings, G, D, opt_G, opt_D, gen, run)
                start, eval_seconds = time.perf_counter(), 0.0
            else:
                eval_seconds += time.perf_counter() - t0
        if time_limit is not None and run["seconds"] + time.perf_counter() - start > time_limit:
            break
    bar.close()
    run["seconds"] += time.perf_counter() - start - eval_seconds
    _flush(pending, run["history"])  # one read-back: no device syncs in the loop
    out = {"finished": run["step"] == steps, "step": run["step"], "settings": settings,
           "device": str(dev), "history": run["history"], "evals": run["evals"],
           "seconds": run["seconds"], "snapshots": run["snapshots"], "G": G, "D": D}
    if checkpoint is not None:
        _save(checkpoint, settings, G, D, opt_G, opt_D, gen, run)
    if not out["finished"]:
        return out
    samples = generate_points(G, run["z_eval"])
    metrics = [_measure(x, kind, x_ref) for x in samples]
    if measure_at:
        out["evals"][steps] = metrics
    return {**out, "samples": samples, "metrics": metrics, "summary": summarize(metrics, METRICS)}


def _flush(pending, history):
    """Move the logged per-trial losses from the device into `history` (lists)."""
    for done, d, g in pending:
        history["step"].append(done)
        history["d_loss"].append(d.cpu().tolist())
        history["g_loss"].append(g.cpu().tolist())
    pending.clear()


def _save(path, settings, G, D, opt_G, opt_D, gen, run):
    save_checkpoint(path, kind="toy-ensemble", settings=settings, device=gen.device.type,
                    G=G.state_dict(), D=D.state_dict(), opt_G=opt_G.state_dict(),
                    opt_D=opt_D.state_dict(), generator=gen.get_state(), **run)


def _resume(path, settings, dev, G, D, opt_G, opt_D, gen, run):
    ckpt = load_checkpoint(path, map_location=dev)
    if ckpt.get("kind") != "toy-ensemble":
        raise CheckpointError(f"{path} is not a train_toy_ensemble checkpoint")
    if ckpt["settings"] != settings:
        diff = sorted(k for k in settings if ckpt["settings"].get(k) != settings[k])
        raise CheckpointError(f"{path} was written by a run with other settings ({', '.join(diff)}"
                              "); pass the same settings or another checkpoint file")
    if ckpt["device"] != dev.type:
        raise CheckpointError(f"{path} was written on {ckpt['device']}; its random stream "
                              f"continues only there: resume it on {ckpt['device']}")
    G.load_state_dict(ckpt["G"])
    D.load_state_dict(ckpt["D"])
    opt_G.load_state_dict(ckpt["opt_G"])
    opt_D.load_state_dict(ckpt["opt_D"])
    gen.set_state(ckpt["generator"].cpu())
    run.update({k: ckpt[k] for k in run})


def _measure(x, kind, x_ref) -> dict:
    """`mixture_metrics` of one trial's points, plus recall against real points."""
    m = mixture_metrics(x, kind)
    m["recall"] = point_recall(x_ref, x)
    return m


__all__ = ["ensemble_step", "train_toy_ensemble", "METRICS"]
