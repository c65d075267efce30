"""The training loop: `d_step`, `g_step`, and `train`, readable top to bottom.

`d_step` and `g_step` also update the trials ensemble of chapter 6 (`ganlib.trials.Trials`,
trained by `ganlib.ensemble`): what differs for it is stated where it happens.
Introduced in chapter 3 (a first GAN on MNIST).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import vmap
from tqdm.auto import tqdm

from . import distributed
from .amp import FLOAT32, Precision
from .batches import make_batches
from .data import check_images
from .device import get_device
from .ema import ema_model
from .fast import fast_step
from .history import StepLog, new_history
from .image_data import ImageData
from .lipschitz import check_critic, clip_weights  # chapter 8
from .losses import GANLoss, get_loss, gradient_penalty, r1_penalty
from .models import Conv32Discriminator, MLPDiscriminator, Packed, Pool64Discriminator
from .optim import make_adam
from .run_files import RunFiles
from .sampling import generate
from .seeding import seed_everything
from .toy_models import Maxout, ToyDiscriminator
from .trials import Trials
from .validation import check_config


@dataclass
class TrainConfig:
    """Everything that defines a training run. The command line maps its flags onto this."""
    data: str = "mnist"          # dataset name or image folder (recorded; `train` takes the data)
    model: str = "mlp"           # model name from ganlib.models.MODELS ("custom" if you pass G, D)
    loss: str = "bce"            # minimax | bce | lsgan | hinge | wgan | wgan-gp
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
    clip_value: float = 0.01     # WGAN's weight-clipping bound c, used by wgan only
    r1_weight: float = 0.0       # R1's gamma: D's loss += gamma/2 E||grad D(x_real)||^2 (0: off)
    label_smoothing: float = 0.0  # one-sided: real target 1 - this, bce/minimax only (0: off)
    ema: float = 0.0             # sample from an EMA of G's weights with this decay, warmed up (0: off)
    lsgan_abc: tuple = (0.0, 1.0, 1.0)  # LSGAN targets: fake a, real b, G's target c
    seed: int = 0                # one seed for weights, noise and data order
    device: str = "auto"         # "auto" picks CUDA when present
    amp: str = "none"            # none (float32) | bf16 | fp16: see ganlib.amp
    fast: bool = True            # on CUDA, compile the training step (False: the plain loop)
    sample_every: int = 500      # write a fixed-noise sample grid every N steps (0: never)
    ckpt_every: int = 1000       # write last.pt every N steps (0: only at the end)
    log_every: int = 25          # read losses back from the device every N steps
    eval_every: int = 0          # call `evaluate(G)` every N steps (0: never)
    best_metric: str | None = None  # key of evaluate's dict to keep best.pt by (lower is better)
    out_dir: str | None = None   # where samples, checkpoints and history go (None: nowhere)
    progress: bool = True        # show a tqdm progress bar
    sync_bn: bool = False        # torchrun on GPUs: BatchNorm over all processes' batches

    def __post_init__(self):
        check_config(self)  # one line saying what to change for any out-of-range setting


_PER_SAMPLE = (nn.Sequential, nn.ModuleList, nn.Identity, nn.Linear, nn.Conv1d, nn.Conv2d,
               nn.ConvTranspose2d, nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.ELU, nn.GELU,
               nn.SiLU, nn.Dropout, nn.Dropout2d, nn.Flatten, nn.Unflatten, nn.MaxPool2d,
               nn.AvgPool2d, nn.Upsample, Maxout, MLPDiscriminator, Conv32Discriminator,
               Pool64Discriminator, ToyDiscriminator, Packed)


def scores_each_sample(D: nn.Module) -> bool:
    """True when D is known to score each sample (or each PacGAN pack) on its own: built
    only from layers that never mix a batch. BatchNorm, minibatch standard deviation or any
    module ganlib does not know make it False."""
    return all(type(module) in _PER_SAMPLE for module in D.modules())


def discriminate(D, x_real, x_fake, y_real=None, y_fake=None):
    """D's logits on a real and a fake batch: `(B / m, 1)` each (`(T, B / m, 1)` for the
    trials ensemble, whose batches are `(T, B, ...)`: the batch is dimension 1).

    When D scores each sample on its own (`scores_each_sample`: 001's MLP, 000's and 003's
    convnets, the toy D), real and fake go through D as one concatenated batch: one
    forward, faster on small models, the same logits up to rounding. With BatchNorm or
    minibatch statistics they go separately, so that a batch never mixes real and fake; a
    conditional D (labels `y_real`, `y_fake` `(B,)`) scores `(x, y)` pairs, in two forwards.
    """
    if y_real is not None:
        return D(x_real, y_real), D(x_fake, y_fake)
    net = distributed.unwrap(D)  # the network inside a DDP wrapper (torchrun)
    net, dim = (net.net, 1) if isinstance(net, Trials) else (net, 0)  # Trials: one definition
    m = net.m if isinstance(net, Packed) else 1
    n_real, n_fake = x_real.shape[dim], x_fake.shape[dim]
    if (n_real % m or n_fake % m or x_real.shape[dim + 1:] != x_fake.shape[dim + 1:]
            or not scores_each_sample(net)):  # separate forwards (pack() raises clearly)
        return D(x_real), D(x_fake)
    logits = D(torch.cat([x_real, x_fake.to(x_real.dtype)], dim))  # ((B + B') / m, 1)
    return logits.split([n_real // m, n_fake // m], dim)


def d_step(D, opt_D, loss: GANLoss, x_real, x_fake, *, gp_weight: float = 10.0,
           precision: Precision = FLOAT32, clip_value: float = 0.01, y_real=None, y_fake=None,
           r1_weight: float = 0.0):
    """One discriminator update on a real and a (detached) fake batch.

    D scores both batches through `discriminate` (one forward when it can). `precision` (a
    `ganlib.amp.Precision`) autocasts the forward and the loss; the gradient penalty, the
    backward pass and the step stay in float32. For `loss="wgan"` D's weights are clipped
    into [-clip_value, clip_value] after the step. With labels `y_real`, `y_fake` `(B,)`,
    D is conditional and scores pairs, `D(x, y)` (chapter 9). `r1_weight` > 0 adds
    (r1_weight / 2) * `r1_penalty(D, x_real)` (chapter 10). For the trials ensemble (`D` a
    `ganlib.trials.Trials`, chapter 6) each trial's loss is its own (`vmap`) and their sum
    is minimised, so each trial gets its own gradient; `d_loss` is then `(T,)`.
    Returns `(d_loss, real_logits, fake_logits)`, all detached.
    """
    trials = isinstance(D, Trials)
    with precision.autocast():
        real_logits, fake_logits = (t.float() for t in discriminate(D, x_real, x_fake,
                                                                    y_real, y_fake))
        d_loss = (vmap(loss.d_loss) if trials else loss.d_loss)(real_logits, fake_logits)
    if loss.gradient_penalty:
        D_x = D if y_real is None else (lambda x: D(x, y_real))  # the penalty at real labels
        d_loss = d_loss + gp_weight * gradient_penalty(D_x, x_real.float(), x_fake.float())
    if r1_weight:  # R1 on real data, Mescheder et al. 2018's gamma / 2
        d_loss = d_loss + 0.5 * r1_weight * r1_penalty(D, x_real.float())
    opt_D.zero_grad(set_to_none=True)
    precision.backward_step(d_loss.sum() if trials else d_loss, opt_D, "D")
    if loss.weight_clipping:  # WGAN's Lipschitz constraint, after every D step
        clip_weights(D, clip_value)
    return d_loss.detach(), real_logits.detach(), fake_logits.detach()


def g_step(D, opt_G, loss: GANLoss, x_fake, *, precision: Precision = FLOAT32, y_fake=None):
    """One generator update through D: gradients flow into G's parameters only
    (D's are frozen with `requires_grad_(False)` for the backward pass, so no D weight
    gradients are computed). `precision` autocasts D's forward and the loss only; `y_fake`
    are the labels a conditional D scores the fakes with. For the trials ensemble
    (`ganlib.trials.Trials`) each trial's loss is its own (`vmap`), their sum is minimised
    and the loss returned is `(T,)`. Returns the detached G loss."""
    trials = isinstance(D, Trials)
    trainable = [p for p in D.parameters() if p.requires_grad]  # restore only these after
    for p in trainable:
        p.requires_grad_(False)
    try:
        with precision.autocast():
            fake_logits = (D(x_fake) if y_fake is None else D(x_fake, y_fake)).float()
            g_loss = (vmap(loss.g_loss) if trials else loss.g_loss)(fake_logits)
        opt_G.zero_grad(set_to_none=True)
        precision.backward_step(g_loss.sum() if trials else g_loss, opt_G, "G")
    finally:
        for p in trainable:
            p.requires_grad_(True)
    return g_loss.detach()


def train_step(G, D, opt_G, opt_D, loss: GANLoss, x_reals: list, gp_weight: float = 10.0,
               precision: Precision = FLOAT32, clip_value: float = 0.01, r1_weight: float = 0.0):
    """One generator step of `train`: a D step on each real batch of `x_reals` (n_critic of
    them, each with fresh noise), then a G step on the last fakes. For a conditional G
    (`G.num_classes > 0`) each batch is a pair `(x_real, y_real)` and the fakes get uniform
    random labels. Under torchrun G and D are DDP-wrapped: the noise is this process's rows of
    one global draw, and the G step scores through the plain D, so that D's gradients are
    reduced in D's step only.

    Returns `(d_loss, g_loss, real_logits, fake_logits)` of the last steps, detached and
    left on the device. `train` may hand this function to `ganlib.fast.fast_step`.
    """
    num_classes = getattr(distributed.unwrap(G), "num_classes", 0)
    for batch in x_reals:
        x_real, y_real = batch if num_classes else (batch, None)
        z = distributed.sample_z(distributed.unwrap(G), len(x_real), x_real.device)  # (B, nz)
        y_fake = (torch.randint(num_classes, (len(z),), device=z.device)  # (B,) uniform
                  if num_classes else None)
        with precision.autocast():
            x_fake = G(z) if y_fake is None else G(z, y_fake)  # -> (B, C, H, W); kept for g_step
        d_loss, real_logits, fake_logits = d_step(
            D, opt_D, loss, x_real, x_fake.detach(), gp_weight=gp_weight, precision=precision,
            clip_value=clip_value, y_real=y_real, y_fake=y_fake, r1_weight=r1_weight)
    g_loss = g_step(distributed.unwrap(D), opt_G, loss, x_fake, precision=precision,
                    y_fake=y_fake)
    return d_loss, g_loss, real_logits, fake_logits


@distributed.stop_together  # under torchrun a failing rank stops every rank with a clear error
def train(G, D, data: ImageData | torch.Tensor, config: TrainConfig, resume: bool = False,
          callback=None, evaluate=None, G_ema=None) -> dict:
    """Train `G` and `D` in place on `data` and return the history (a dict of lists).

    With `config.out_dir`, writes fixed-noise sample grids, `last.pt` checkpoints, and at the
    end `samples.png`, `losses.png` and `history.json` (`ganlib.run_files`). `resume=True`
    continues exactly from `out_dir/last.pt` if it exists. `callback(step, G, D, history)`,
    if given, runs after every step. `evaluate(G) -> {name: float}`, if given, runs every
    `config.eval_every` steps and at the end; its values go to `history["eval"]`, and with
    `config.best_metric` the checkpoint with the lowest value is kept as `best.pt` beside
    `last.pt` (a GAN's best and final generators often differ a lot). Raises
    `TrainingDiverged` on a NaN/inf loss without touching `last.pt`. Started by `torchrun`,
    each process trains on its shard of every batch with G and D in DistributedDataParallel
    and rank 0 writes (`ganlib.distributed`). `G_ema`, if given
    (`ganlib.ema.ema_model(G, decay)`), is updated after every generator step and saved in
    the checkpoints (chapter 10); with `config.ema > 0` and no `G_ema`, train keeps one
    itself (`ema_model(G, config.ema, warmup=True)`, what the command line's `--ema` and
    the `fast-mnist` recipe use). Either way the sample grids it writes come from the
    average.
    """
    cfg, device = config, get_device(config.device)
    device = distributed.init(device)  # torchrun: join the process group, cuda:LOCAL_RANK
    loss = get_loss(cfg.loss, *cfg.lsgan_abc, real_label=1.0 - cfg.label_smoothing)
    check_critic(D, loss)  # warn: a gradient penalty with a BatchNorm critic
    seed_everything(cfg.seed)
    G.to(device).train()
    D.to(device).train()
    z_fixed = G.sample_z(64, device)  # drawn right after seeding: the same on resume
    conditional = getattr(G, "num_classes", 0) > 0  # a conditional G trains on (x, y) pairs
    batches = make_batches(data, cfg.batch_size * distributed.world_size(), device, cfg.seed,
                           labels=conditional)
    batches = distributed.shard_batches(batches)  # this process's rows of each global batch
    image_shape = _check_data(G, batches, z_fixed)
    if cfg.sync_bn:  # before the optimizers see the parameters
        G, D = distributed.convert_sync_bn(G, device), distributed.convert_sync_bn(D, device)
    opt_G = make_adam(G, cfg.lr_g, cfg.betas)
    opt_D = make_adam(D, cfg.lr_d, cfg.betas)
    precision = Precision(cfg.amp, device)  # autocast dtype and fp16 loss scaling
    total = cfg.num_steps or max(1, math.ceil(cfg.num_epochs * batches.steps_per_epoch / cfg.n_critic))
    if cfg.ema and G_ema is None:  # the average this run samples from (chapter 10)
        G_ema = ema_model(G, cfg.ema, warmup=True)
    files = RunFiles(cfg, image_shape, G, D, opt_G, opt_D, precision, G_ema)  # rank 0 writes
    resumed = files.resume(device) if resume else None  # (step, history) from last.pt
    start, history = resumed or (0, new_history())
    log = StepLog(history, last_pt=files.last_pt)  # D's outputs: probabilities for bce/minimax
    d_output = torch.sigmoid if loss.name in ("bce", "minimax") else (lambda logits: logits)

    step_fn = functools.partial(train_step, distributed.wrap(G, device),
                                distributed.wrap(D, device), opt_G, opt_D, loss,
                                gp_weight=cfg.gp_weight, precision=precision,
                                clip_value=cfg.clip_value, r1_weight=cfg.r1_weight)
    if cfg.fast and device.type == "cuda" and not distributed.is_distributed():
        step_fn = fast_step(step_fn, G, D, loss, precision)  # compiled: same draws and updates
    it = batches.iterate(start * cfg.n_critic)
    bar = tqdm(range(start, total), initial=start, total=total, desc="train",
               disable=not cfg.progress or not distributed.is_rank0(), dynamic_ncols=True)
    for step in bar:
        x_reals = [next(it) for _ in range(cfg.n_critic)]  # one real batch per D step
        d_loss, g_loss, real_logits, fake_logits = step_fn(x_reals)  # left on the device
        done = step + 1
        log.add(done, d_loss, g_loss, d_output(real_logits).mean(), d_output(fake_logits).mean())
        if G_ema is not None:  # the moving average of G's weights, after each G step
            G_ema.update_parameters(G)
        due = _due(cfg, done, total, files.out is not None, evaluate is not None)
        if due or callback:  # read the losses back (NaN check) before anything is written
            log.flush()
            bar.set_postfix(**log.postfix())
        if "sample" in due:
            files.save_samples(done, z_fixed)
        if "eval" in due:
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                values = evaluate(G)  # its random draws do not shift training's RNG
            if log.record_eval(done, values, cfg.best_metric):
                files.save(done, history, "best.pt")
        if "ckpt" in due:
            files.save(done, history)
        if callback:
            callback(done, G, D, history)
    bar.close()
    if start < total:
        files.finish(total, history, z_fixed)
    return history


def _due(cfg: TrainConfig, done: int, total: int, writing: bool, evaluating: bool) -> set:
    """What happens after step `done`: "log" (read the losses back), "sample", "eval",
    "ckpt". Every step's losses are read back before anything that uses them."""
    every = {"log": cfg.log_every,
             "sample": cfg.sample_every if writing else 0,
             "ckpt": cfg.ckpt_every if writing else 0,
             "eval": cfg.eval_every if evaluating else 0}
    due = {name for name, n in every.items() if n and done % n == 0}
    if done == total:  # the end: the last losses, and the final evaluation
        due |= {"log", "eval"} if evaluating else {"log"}
    return due


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
