"""The training loop: `d_step`, `g_step`, and `train`, readable top to bottom.

Introduced in chapter 3 (a first GAN on MNIST).
"""
from __future__ import annotations

import contextlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from . import checkpoint as ckpt_io
from . import models
from .data import ImageData, check_images, make_batches
from .losses import GANLoss, get_loss, gradient_penalty, r1_penalty
from .utils import atomic_write, get_device, seed_everything


@dataclass
class TrainConfig:
    """Everything that defines a training run. The command line maps its flags onto this."""
    data: str = "mnist"          # dataset name or image folder (recorded; `train` takes the data)
    model: str = "mlp"           # model name from ganlib.models.MODELS ("custom" if you pass G, D)
    loss: str = "bce"            # minimax | bce | lsgan | hinge | wgan-gp
    image_size: int | None = None  # None: the dataset's own size
    latent_dim: int | None = None  # None: the model's default (100; 1000 for upsample64)
    pack_m: int = 1              # PacGAN packing degree (1 = no packing)
    batch_size: int = 256        # real images per D step (002 uses 256; 001 uses 64)
    num_epochs: float = 5.0      # passes over the data, counted in real batches
    num_steps: int | None = None  # generator steps; overrides num_epochs when set
    lr_g: float = 2e-4           # Adam learning rate for G (001 and DCGAN)
    lr_d: float = 2e-4           # Adam learning rate for D
    betas: tuple = (0.5, 0.999)  # Adam betas; 0.5 as in DCGAN (001 keeps Adam's 0.9)
    n_critic: int = 1            # D steps per G step (5 is usual for wgan-gp)
    gp_weight: float = 10.0      # gradient-penalty weight, used by wgan-gp only
    r1_weight: float = 0.0       # [practice] R1 gamma: D's loss += gamma/2 E||grad D(x_real)||^2 (0: off)
    label_smoothing: float = 0.0  # [practice] one-sided: real target 1 - this, bce/minimax only (0: off)
    lsgan_abc: tuple = (0.0, 1.0, 1.0)  # LSGAN targets: fake a, real b, G's target c
    seed: int = 0                # one seed for weights, noise and data order
    device: str = "auto"         # "auto" picks CUDA when present
    amp: bool = True             # bf16 autocast on CUDA (ignored on CPU)
    sample_every: int = 500      # write a fixed-noise sample grid every N steps (0: never)
    ckpt_every: int = 1000       # write last.pt every N steps (0: only at the end)
    log_every: int = 25          # read losses back from the device every N steps
    eval_every: int = 0          # call `evaluate(G)` every N steps (0: never)
    best_metric: str | None = None  # key of evaluate's dict to keep best.pt by (lower is better)
    out_dir: str | None = None   # where samples, checkpoints and history go (None: nowhere)
    progress: bool = True        # show a tqdm progress bar


class TrainingDiverged(FloatingPointError):
    """A loss became NaN or inf; the last good checkpoint is left as it was."""


_PER_SAMPLE = (nn.Sequential, nn.ModuleList, nn.Identity, nn.Linear, nn.Conv1d, nn.Conv2d,
               nn.ConvTranspose2d, nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.ELU, nn.GELU,
               nn.SiLU, nn.Dropout, nn.Dropout2d, nn.Flatten, nn.Unflatten, nn.MaxPool2d,
               nn.AvgPool2d, nn.Upsample, models.Maxout, models.MLPDiscriminator,
               models.Conv32Discriminator, models.Pool64Discriminator, models.ToyDiscriminator,
               models.Packed)


def _batch_independent(D, x_real, x_fake) -> bool:
    """True when D is known to score each sample (or each PacGAN pack) on its own: built only
    from layers that never mix a batch. BatchNorm, minibatch standard deviation or any
    module ganlib does not know make it False."""
    m = D.m if isinstance(D, models.Packed) else 1
    if len(x_real) % m or len(x_fake) % m or x_real.shape[1:] != x_fake.shape[1:]:
        return False  # separate forwards, where pack() raises its clear error
    return all(type(module) in _PER_SAMPLE for module in D.modules())


def d_step(D, opt_D, loss: GANLoss, x_real, x_fake, gp_weight: float = 10.0,
           r1_weight: float = 0.0):
    """One discriminator update on a real and a (detached) fake batch.

    When D is built only from layers that score each sample on its own (001's MLP, 000's
    and 003's convnets, the toy D), real and fake go through D as one concatenated batch:
    one forward, faster on small models, the same logits up to rounding. With BatchNorm or
    minibatch statistics they go separately, so that a batch never mixes real and fake.
    `r1_weight` > 0 adds (r1_weight / 2) * `r1_penalty(D, x_real)` (chapter 10).
    Returns `(d_loss, real_logits, fake_logits)`, all detached.
    """
    if _batch_independent(D, x_real, x_fake):
        logits = D(torch.cat([x_real, x_fake.to(x_real.dtype)])).float()  # ((B + B') / m, 1)
        n_real = len(x_real) // (D.m if isinstance(D, models.Packed) else 1)
        real_logits, fake_logits = logits[:n_real], logits[n_real:]
    else:
        real_logits, fake_logits = D(x_real).float(), D(x_fake).float()  # (B, 1) each
    d_loss = loss.d_loss(real_logits, fake_logits)
    if loss.gradient_penalty:
        d_loss = d_loss + gp_weight * gradient_penalty(D, x_real, x_fake)
    if r1_weight:  # [practice] R1 on real data, Mescheder et al. 2018's gamma / 2
        d_loss = d_loss + 0.5 * r1_weight * r1_penalty(D, x_real)
    opt_D.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_D.step()
    return d_loss.detach(), real_logits.detach(), fake_logits.detach()


def g_step(D, opt_G, loss: GANLoss, x_fake):
    """One generator update through D: gradients flow into G's parameters only
    (D's are frozen with `requires_grad_(False)` for the backward pass, so no D weight
    gradients are computed). Returns the detached generator loss."""
    trainable = [p for p in D.parameters() if p.requires_grad]  # restore only these after
    for p in trainable:
        p.requires_grad_(False)
    try:
        g_loss = loss.g_loss(D(x_fake).float())
        opt_G.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_G.step()
    finally:
        for p in trainable:
            p.requires_grad_(True)
    return g_loss.detach()


def make_adam(model, lr: float, betas) -> torch.optim.Adam:
    """Adam with the fused kernel (one pass over all parameters, CPU or CUDA): the same
    update as the default implementation, several times faster for small models."""
    return torch.optim.Adam(model.parameters(), lr=lr, betas=tuple(betas), fused=True)


@torch.no_grad()
def generate(G, z: torch.Tensor) -> torch.Tensor:
    """Samples `G(z)` in eval mode (BatchNorm running statistics), float32, no gradients."""
    was_training = G.training
    G.eval()
    x = G(z).float()
    G.train(was_training)
    return x


def new_history() -> dict:
    """An empty history: per step, D and G losses and D's mean output on real and fake
    (probabilities for bce/minimax, raw scores for the other losses)."""
    return {"step": [], "d_loss": [], "g_loss": [], "d_real": [], "d_fake": []}


def train(G, D, data: ImageData | torch.Tensor, config: TrainConfig, resume: bool = False,
          callback=None, evaluate=None, G_ema=None) -> dict:
    """Train `G` and `D` in place on `data` and return the history (a dict of lists).

    With `config.out_dir`, writes fixed-noise sample grids, `last.pt` checkpoints, and at the
    end `samples.png`, `losses.png` and `history.json`. `resume=True` continues exactly from
    `out_dir/last.pt` if it exists. `callback(step, G, D, history)`, if given, runs after
    every step. `evaluate(G) -> {name: float}`, if given, runs every `config.eval_every`
    steps and at the end; its values go to `history["eval"]`, and with `config.best_metric`
    the checkpoint with the lowest value is kept as `best.pt` beside `last.pt` (a GAN's best
    and final generators often differ a lot). Raises `TrainingDiverged` on a NaN/inf loss
    without touching `last.pt`. `G_ema`, if given (`ganlib.ema.ema_model(G, decay)`), is
    updated after every generator step and saved in the checkpoints (chapter 10).
    """
    cfg, device = config, get_device(config.device)
    loss = get_loss(cfg.loss, *cfg.lsgan_abc, real_label=1.0 - cfg.label_smoothing)  # [practice]
    seed_everything(cfg.seed)
    G.to(device).train()
    D.to(device).train()
    z_fixed = G.sample_z(64, device)  # drawn right after seeding: the same on resume
    batches = make_batches(data, cfg.batch_size, device, cfg.seed)
    image_shape = _check_data(G, batches, z_fixed)
    opt_G = make_adam(G, cfg.lr_g, cfg.betas)
    opt_D = make_adam(D, cfg.lr_d, cfg.betas)
    total = cfg.num_steps or max(1, math.ceil(cfg.num_epochs * batches.steps_per_epoch / cfg.n_critic))
    out = Path(cfg.out_dir) if cfg.out_dir else None
    start, history = 0, new_history()
    if resume and out and (out / "last.pt").exists():
        ck = ckpt_io.load_checkpoint(out / "last.pt", map_location=device)
        ckpt_io.check_compatible(ck, asdict(cfg), image_shape)
        G.load_state_dict(ck["G"])
        D.load_state_dict(ck["D"])
        opt_G.load_state_dict(ck["opt_G"])
        opt_D.load_state_dict(ck["opt_D"])
        ckpt_io.set_rng_state(ck["rng"])
        start, history = ck["step"], ck["history"]
        if G_ema is not None and "G_ema" in ck:  # [practice] the average resumes exactly too
            G_ema.load_state_dict(ck["G_ema"])

    def save(step, name="last.pt"):
        if out:
            ckpt_io.save_checkpoint(out / name, G=G.state_dict(), D=D.state_dict(),
                                    opt_G=opt_G.state_dict(), opt_D=opt_D.state_dict(),
                                    step=step, rng=ckpt_io.rng_state(), config=asdict(cfg),
                                    image_shape=list(image_shape), history=history,
                                    **({"G_ema": G_ema.state_dict()} if G_ema is not None else {}))  # [practice]

    amp = torch.autocast("cuda", dtype=torch.bfloat16) if cfg.amp and device.type == "cuda" \
        else contextlib.nullcontext()
    probs = loss.name in ("bce", "minimax")  # D(x) as a probability only for these
    it = batches.iterate(start * cfg.n_critic)
    pending = []  # per-step stats still on the device, read back every log_every steps
    bar = tqdm(range(start, total), initial=start, total=total, desc="train",
               disable=not cfg.progress, dynamic_ncols=True)
    for step in bar:
        with amp:
            for _ in range(cfg.n_critic):
                x_real = next(it)
                z = G.sample_z(x_real.shape[0], device)  # (B, latent_dim)
                x_fake = G(z)  # (B, latent_dim) -> (B, C, H, W); graph kept for g_step
                d_loss, real_logits, fake_logits = d_step(D, opt_D, loss, x_real,
                                                          x_fake.detach(), cfg.gp_weight,
                                                          cfg.r1_weight)  # [practice]
            g_loss = g_step(D, opt_G, loss, x_fake)
        if G_ema is not None:  # [practice] EMA of G's weights after each G step
            G_ema.update_parameters(G)
        act = torch.sigmoid if probs else (lambda t: t)
        pending.append(torch.stack([d_loss, g_loss, act(real_logits).mean(),
                                    act(fake_logits).mean()]))
        done = step + 1
        due_sample = out and cfg.sample_every and done % cfg.sample_every == 0
        due_ckpt = out and cfg.ckpt_every and done % cfg.ckpt_every == 0
        if done % cfg.log_every == 0 or done == total or due_sample or due_ckpt or callback:
            _flush(pending, history, done, out)
            h = history
            bar.set_postfix(d_loss=f"{h['d_loss'][-1]:.3f}", g_loss=f"{h['g_loss'][-1]:.3f}",
                            D_x=f"{h['d_real'][-1]:.2f}", D_G_z=f"{h['d_fake'][-1]:.2f}")
        if due_sample:
            from .plot import save_samples
            save_samples(generate(G, z_fixed), out / "samples" / f"step_{done:07d}.png")
        if evaluate and ((cfg.eval_every and done % cfg.eval_every == 0) or done == total):
            _flush(pending, history, done, out)
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                values = evaluate(G)  # its random draws do not shift training's RNG
            if _record_eval(history, done, values, cfg.best_metric):
                save(done, "best.pt")
        if due_ckpt:
            save(done)
        if callback:
            callback(done, G, D, history)
    bar.close()
    if out and start < total:
        save(total)
        _write_outputs(out, G, z_fixed, history)
    return history


def _check_data(G, batches, z_fixed):
    """Compare one generated batch with the data's shape and check the data's range."""
    x = batches.x
    x_fake = generate(G, z_fixed[:2])
    shape = tuple(x[0].shape)
    if tuple(x_fake.shape[1:]) != shape:
        raise ValueError(f"the generator makes samples of shape {tuple(x_fake.shape[1:])} "
                         f"but the data has shape {shape}; build the models for this data "
                         "(ganlib.build_models(name, image_shape=...)) or resize the data")
    if torch.is_tensor(x) and x.dim() == 4:
        check_images(x)
    return shape


def _record_eval(history, step, values: dict, best_metric) -> bool:
    """Append evaluation results to history["eval"]; True when `best_metric` improved."""
    ev = history.setdefault("eval", {"step": []})
    ev["step"].append(step)
    for k, v in values.items():
        ev.setdefault(k, []).append(float(v))
    if best_metric is None:
        return False
    if best_metric not in values:
        raise KeyError(f"best_metric {best_metric!r} is not among evaluate's results "
                       f"{sorted(values)}")
    return ev[best_metric][-1] <= min(ev[best_metric])


def _flush(pending, history, done, out):
    if not pending:
        return
    stats = torch.stack(pending).cpu()  # (n, 4): one device sync for n steps
    first = done - len(pending) + 1
    if not torch.isfinite(stats).all():
        bad = first + int((~torch.isfinite(stats)).any(1).nonzero()[0])
        kept = f" The last good checkpoint {out / 'last.pt'} is untouched." if out else ""
        raise TrainingDiverged(f"a loss became NaN/inf at step {bad} (d_loss, g_loss = "
                               f"{stats[bad - first, 0]:.4g}, {stats[bad - first, 1]:.4g})."
                               f"{kept} Lower the learning rates, check the data range, "
                               "or resume from the checkpoint with another seed.")
    history["step"] += list(range(first, done + 1))
    for i, key in enumerate(("d_loss", "g_loss", "d_real", "d_fake")):
        history[key] += stats[:, i].tolist()
    pending.clear()


def _write_outputs(out: Path, G, z_fixed, history) -> None:
    from .plot import plot_history, save_figure, save_samples
    save_samples(generate(G, z_fixed), out / "samples.png")
    save_figure(plot_history(history), out / "losses.png")
    atomic_write(out / "history.json",
                 lambda tmp: Path(tmp).write_text(json.dumps(history)))
