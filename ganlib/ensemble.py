"""Many independent trials of PacGAN's 2-D GAN, trained together as one batched model.

The mode-collapse tables report means over 10 trials. Ten small GANs trained one after the
other keep a CPU (or GPU) mostly idle: every matrix is tiny. Here the T trials' parameters
are stacked with a leading trial dimension, so each layer is one batched matrix product,
`torch.baddbmm` on `(T, B, d_in) x (T, d_in, d_out)`, and one Adam updates all of them.
The trials stay independent: each trial's BatchNorm uses its own batch, the loss is the
*sum* of the per-trial losses (so each trial's gradient is its own), and Adam works element
by element. `tests/test_ensemble.py` checks that T trials trained here match T separately
trained `ToyGenerator` / `ToyDiscriminator` pairs step for step.

Introduced in chapter 6 (mode collapse); chapter 5 (BCE vs least squares) uses it too.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .losses import get_loss
from .metrics import _inside, _knn_radii
from .mode_metrics import MIXTURES, N_MIXTURE, mixture_metrics
from .models import ToyDiscriminator, ToyGenerator
from .train import make_adam
from .utils import get_device


def _stack(tensors) -> nn.Parameter:
    return nn.Parameter(torch.stack([t.detach().clone() for t in tensors]))


def _linear(x, weight, bias):
    """Per-trial linear layer: `(T, B, d_in) -> (T, B, d_out)`; weight `(T, d_in, d_out)`."""
    return torch.baddbmm(bias, x, weight)  # bias (T, 1, d_out) broadcasts over B


class EnsembleGenerator(nn.Module):
    """T copies of `ToyGenerator` as one module: z `(T, B, latent_dim)` -> `(T, B, 2)`.

    Each hidden layer is a batched linear layer, then BatchNorm over each trial's own batch
    (train mode) or its running statistics (eval mode), then ReLU, exactly as
    `torch.nn.BatchNorm1d` does for one trial. Introduced in chapter 6.
    """

    def __init__(self, generators: list[ToyGenerator]):
        super().__init__()
        self.trials, self.latent_dim = len(generators), generators[0].latent_dim
        layers = [list(G.net) for G in generators]  # [Linear, BN, ReLU] * depth + [Linear]
        depth = (len(layers[0]) - 1) // 3
        self.weights = nn.ParameterList(
            [_stack([l[3 * i].weight.T for l in layers]) for i in range(depth)]
            + [_stack([l[-1].weight.T for l in layers])])  # (T, d_in, d_out) each
        self.biases = nn.ParameterList(
            [_stack([l[3 * i].bias[None] for l in layers]) for i in range(depth)]
            + [_stack([l[-1].bias[None] for l in layers])])  # (T, 1, d_out) each
        self.gammas = nn.ParameterList([_stack([l[3 * i + 1].weight[None] for l in layers])
                                        for i in range(depth)])
        self.betas = nn.ParameterList([_stack([l[3 * i + 1].bias[None] for l in layers])
                                       for i in range(depth)])
        for i in range(depth):
            bns = [l[3 * i + 1] for l in layers]
            self.register_buffer(f"running_mean{i}", torch.stack([b.running_mean[None] for b in bns]))
            self.register_buffer(f"running_var{i}", torch.stack([b.running_var[None] for b in bns]))
        self.momentum, self.eps = bns[0].momentum, bns[0].eps

    def forward(self, z):
        T, B, _ = z.shape
        h = z  # (T, B, latent_dim)
        for i, (gamma, beta) in enumerate(zip(self.gammas, self.betas)):
            h = _linear(h, self.weights[i], self.biases[i])  # (T, B, hidden)
            H = h.shape[2]
            # BatchNorm over each trial's own batch: as (B, T * hidden), one channel per
            # (trial, unit), so F.batch_norm's fused kernel (which also updates the running
            # statistics, with the unbiased variance) does exactly what BatchNorm1d does
            h = F.batch_norm(h.transpose(0, 1).reshape(B, T * H),
                             getattr(self, f"running_mean{i}").view(-1),
                             getattr(self, f"running_var{i}").view(-1),
                             gamma.reshape(-1), beta.reshape(-1), self.training,
                             self.momentum, self.eps)
            h = torch.relu(h).view(B, T, H).transpose(0, 1)  # back to (T, B, hidden)
        return _linear(h, self.weights[-1], self.biases[-1])  # (T, B, 2)


class EnsembleDiscriminator(nn.Module):
    """T copies of `ToyDiscriminator` as one module, with PacGAN packing of `m` points per
    input: points `(T, B, 2)` -> logits `(T, B/m, 1)`. Introduced in chapter 6.
    """

    def __init__(self, discriminators: list[ToyDiscriminator], m: int = 1):
        super().__init__()
        self.trials, self.m = len(discriminators), m
        layers = [list(D.net) for D in discriminators]
        maxouts = [i for i, mod in enumerate(layers[0]) if hasattr(mod, "pieces")]
        self.pieces = layers[0][0].pieces
        std_layers = [mod for mod in layers[0] if hasattr(mod, "group_size")]
        self.minibatch_std = std_layers[0].group_size if std_layers else None
        self.weights = nn.ParameterList(
            [_stack([l[i].linear.weight.T for l in layers]) for i in maxouts]
            + [_stack([l[-1].weight.T for l in layers])])
        self.biases = nn.ParameterList(
            [_stack([l[i].linear.bias[None] for l in layers]) for i in maxouts]
            + [_stack([l[-1].bias[None] for l in layers])])

    def forward(self, x):
        T, B, _ = x.shape
        h = x.reshape(T, B // self.m, -1)  # PacGAN: (T, B, 2) -> (T, B/m, 2m)
        for weight, bias in zip(self.weights[:-1], self.biases[:-1]):
            h = _linear(h, weight, bias)  # (T, B/m, hidden * pieces)
            h = h.view(T, h.shape[1], -1, self.pieces).max(-1).values  # maxout -> (T, B/m, hidden)
        if self.minibatch_std is not None:
            g = self.minibatch_std or h.shape[1]
            groups = h.view(T, -1, g, h.shape[2])  # (T, B/(m g), g, hidden)
            std = (groups.var(2, unbiased=False) + 1e-8).sqrt().mean(2, keepdim=True)
            h = torch.cat([h, std.repeat_interleave(g, dim=1)], dim=2)  # (T, B/m, hidden + 1)
        return _linear(h, self.weights[-1], self.biases[-1])  # (T, B/m, 1)


def pacgan_init(module: nn.Module, std: float = 0.02) -> nn.Module:
    """PacGAN's initialisation of the 2-D networks, in place: every linear (and maxout)
    weight from N(0, std), every bias 0; BatchNorm keeps scale 1 and shift 0.

    PacGAN's released code uses std 0.02; PyTorch's default (uniform, scaled by the fan-in)
    starts the maxout discriminator with much larger weights. Returns the module.
    Introduced in chapter 6 (mode collapse).
    """
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, std)
            nn.init.zeros_(m.bias)
    return module


def trial_models(seed: int, pack: int = 1, minibatch_std: int = 0,
                 init_std: float | None = 0.02):
    """One trial's `(ToyGenerator, ToyDiscriminator)`, built after `torch.manual_seed(seed)`
    (and, with `init_std`, initialised by `pacgan_init`); the global RNG is left as it was.
    The discriminator takes `2 * pack` inputs (not wrapped in `Packed`)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        G, D = ToyGenerator(), ToyDiscriminator(2 * pack, minibatch_std=minibatch_std)
        if init_std is not None:
            pacgan_init(G, init_std)
            pacgan_init(D, init_std)
    return G, D


def build_ensemble(trials: int, pack: int = 1, minibatch_std: int = 0, seed: int = 0,
                   init_std: float | None = 0.02):
    """Make `(G, D)` ensembles of `trials` independently initialised toy GANs.

    Trial t starts as `trial_models(s_t, pack, minibatch_std, init_std)` with `s_t` from
    `trial_seeds(seed, trials)`: PacGAN's initialisation by default, PyTorch's with
    `init_std=None`. Introduced in chapter 6 (mode collapse).
    """
    pairs = [trial_models(s, pack, minibatch_std, init_std) for s in trial_seeds(seed, trials)]
    return (EnsembleGenerator([G for G, _ in pairs]),
            EnsembleDiscriminator([D for _, D in pairs], pack))


def trial_seeds(seed: int, trials: int) -> list[int]:
    """One seed per trial, derived from `seed` (the same first seeds for any `trials`)."""
    g = torch.Generator().manual_seed(seed)
    return [int(torch.randint(2**31 - 1, (1,), generator=g)) for _ in range(trials)]


def ensemble_step(G, D, opt_G, opt_D, loss, x_real, z):
    """One D step and one G step for all trials, as `ganlib.train.d_step` / `g_step` do.

    Args:
        x_real: real points `(T, B, 2)`; z: noise `(T, B, latent_dim)`.
    Returns:
        per-trial `(d_loss (T,), g_loss (T,))`, detached.
    Introduced in chapter 6 (mode collapse).
    """
    T, B, _ = x_real.shape
    x_fake = G(z)  # (T, B, 2); graph kept for the G step
    g = D.minibatch_std
    if g is None or (g and (B // D.m) % g == 0):
        # D has no BatchNorm (and minibatch-std groups stay inside each half), so real and
        # fake go through it as one batch: one pass, the same logits
        logits = D(torch.cat([x_real, x_fake.detach()], dim=1))  # (T, 2B/m, 1)
        real_logits, fake_logits = logits.split(B // D.m, dim=1)
    else:
        real_logits, fake_logits = D(x_real), D(x_fake.detach())
    d_losses = torch.stack([loss.d_loss(r, f) for r, f in zip(real_logits, fake_logits)])
    opt_D.zero_grad(set_to_none=True)
    d_losses.sum().backward()  # the sum: each trial's gradient is its own loss's
    opt_D.step()
    fake_logits = D(x_fake)  # the updated D scores the same fakes
    g_losses = torch.stack([loss.g_loss(f) for f in fake_logits])
    opt_G.zero_grad(set_to_none=True)
    g_losses.sum().backward(inputs=list(G.parameters()))  # no gradients for D's weights
    opt_G.step()
    return d_losses.detach(), g_losses.detach()


def mixture_data(kind: str, trials: int, n: int, seed: int) -> torch.Tensor:
    """Each trial's own training set, `(T, n, 2)` points from the ring or grid mixture,
    drawn like `ganlib.data.ring_of_gaussians(n, seed=s_t)` (grid: `grid_of_gaussians`)."""
    means, std = _mixture(kind)
    out = []
    for s in trial_seeds(seed, trials):
        g = torch.Generator().manual_seed(s)
        modes = torch.randint(len(means), (n,), generator=g)
        out.append(means[modes] + std * torch.randn(n, 2, generator=g))
    return torch.stack(out)


def _mixture(kind):
    if kind not in MIXTURES:
        raise ValueError(f"unknown mixture {kind!r}; choose one of {', '.join(MIXTURES)}")
    make_means, std = MIXTURES[kind]
    return make_means(), std


def point_recall(x_real: torch.Tensor, x_fake: torch.Tensor, k: int = 3) -> float:
    """Recall of 2-D points (Kynkäänniemi et al. 2019): the fraction of real points inside
    the union of balls around the generated points, each reaching its k-th neighbour.
    A generator that misses modes leaves their real points uncovered."""
    return _inside(x_real, x_fake, _knn_radii(x_fake, k, 2500), 2500).double().mean().item()


def summarize(metrics: list[dict]) -> dict:
    """Mean and standard error over trials of each metric: `{name: {"mean", "se"}}`.

    The standard error is std / sqrt(trials) with the sample std, as PacGAN reports.
    """
    out = {}
    for key in ("modes", "high_quality_pct", "reverse_kl", "recall"):
        if key not in metrics[0]:
            continue
        v = torch.tensor([float(m[key]) for m in metrics], dtype=torch.float64)
        se = v.std() / len(v) ** 0.5 if len(v) > 1 else torch.tensor(float("nan"))
        out[key] = {"mean": v.mean().item(), "se": se.item()}
    return out


def train_toy_ensemble(kind="ring", trials=10, loss="bce", pack=1, steps=20000,
                       batch_size=100, lr=1e-4, betas=(0.8, 0.999), seed=0, device="auto",
                       progress=True, num_samples=N_MIXTURE, *, minibatch_std=0,
                       dataset_size=100_000, log_every=100, snapshot_steps=(),
                       snapshot_samples=500, eval_steps=(), init_std=0.02,
                       lsgan_abc=(0.0, 1.0, 1.0)) -> dict:
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
        dataset_size: points in each trial's training set (PacGAN: 100,000).
        log_every: record the per-trial losses every this many steps.
        snapshot_steps: steps after which to keep `snapshot_samples` points per trial
            (fixed noise), e.g. to watch collapse happen.
        eval_steps: steps after which to measure every trial as at the end (same noise),
            to see how the numbers depend on the budget.
        init_std: PacGAN's N(0, init_std) weight initialisation (`pacgan_init`); None
            keeps PyTorch's default.
        lsgan_abc: LSGAN's targets (fake a, real b, generator c).
    Returns:
        A dict with "samples", a `(T, num_samples, 2)` CPU tensor; "metrics", one
        `ganlib.mode_metrics.mixture_metrics` dict per trial plus "recall" (see
        `point_recall`); "summary", `{metric: {"mean", "se"}}` over trials; "history",
        `{"step": [...], "d_loss": [[T values], ...], "g_loss": ...}`; "snapshots",
        `{step: (T, snapshot_samples, 2) tensor}`; "evals", `{step: [per-trial metrics]}`;
        "seconds" of training (evaluations excluded); "settings".
    Introduced in chapter 6 (mode collapse).
    """
    if minibatch_std and batch_size % minibatch_std:
        raise ValueError(f"batch_size {batch_size} must be a multiple of the minibatch-std "
                         f"group size {minibatch_std}")
    n = batch_size * pack  # points per step for each player
    if n > dataset_size:
        raise ValueError(f"batch_size * pack = {n} is more than dataset_size {dataset_size}")
    dev = get_device(device)
    objective = get_loss(loss, *lsgan_abc)
    G, D = build_ensemble(trials, pack, minibatch_std, seed, init_std)
    G.to(dev).train()
    D.to(dev).train()
    opt_G, opt_D = make_adam(G, lr, betas), make_adam(D, lr, betas)
    data = mixture_data(kind, trials, dataset_size, seed).to(dev)  # (T, N, 2)
    gen = torch.Generator(dev).manual_seed(seed)
    rows = torch.arange(trials, device=dev)[:, None]  # (T, 1) for per-trial gathers
    per_epoch = dataset_size // n
    z_snap = torch.randn(trials, snapshot_samples, 2, device=dev, generator=gen)
    z_eval = torch.randn(trials, num_samples, 2, device=dev, generator=gen)
    x_ref, _ = _reference(kind, num_samples)
    history, snapshots, evals, pending = {"step": [], "d_loss": [], "g_loss": []}, {}, {}, []
    start, eval_seconds = time.perf_counter(), 0.0
    for step in tqdm(range(steps), desc=f"{kind} x{trials}", disable=not progress,
                     dynamic_ncols=True):
        if step % per_epoch == 0:  # each trial shuffles its own data every epoch
            order = torch.rand(trials, dataset_size, device=dev, generator=gen).argsort(1)
        j = step % per_epoch * n
        x_real = data[rows, order[:, j:j + n]]  # (T, B * pack, 2)
        z = torch.randn(trials, n, G.latent_dim, device=dev, generator=gen)
        d_loss, g_loss = ensemble_step(G, D, opt_G, opt_D, objective, x_real, z)
        done = step + 1
        if done % log_every == 0 or done == steps:
            pending.append((done, d_loss, g_loss))
        if done in snapshot_steps:
            snapshots[done] = _generate(G, z_snap)
        if done in eval_steps and done != steps:
            t0 = time.perf_counter()
            evals[done] = [_measure(x, kind, x_ref) for x in _generate(G, z_eval)]
            eval_seconds += time.perf_counter() - t0
    seconds = time.perf_counter() - start - eval_seconds
    for done, d, g in pending:  # one read-back at the end: no device syncs in the loop
        history["step"].append(done)
        history["d_loss"].append(d.cpu().tolist())
        history["g_loss"].append(g.cpu().tolist())
    samples = _generate(G, z_eval)
    metrics = [_measure(x, kind, x_ref) for x in samples]
    if eval_steps:
        evals[steps] = metrics
    settings = dict(kind=kind, trials=trials, loss=loss, pack=pack, steps=steps,
                    batch_size=batch_size, lr=lr, betas=list(betas), seed=seed,
                    device=str(dev), num_samples=num_samples, minibatch_std=minibatch_std,
                    dataset_size=dataset_size, init_std=init_std)
    return {"samples": samples, "metrics": metrics, "summary": summarize(metrics),
            "history": history, "snapshots": snapshots, "evals": evals, "seconds": seconds,
            "settings": settings, "G": G, "D": D}


def _measure(x, kind, x_ref) -> dict:
    """`mixture_metrics` of one trial's points, plus recall against real points."""
    m = mixture_metrics(x, kind)
    m["recall"] = point_recall(x_ref, x)
    return m


@torch.no_grad()
def _generate(G, z):
    """Points `(T, n, 2)` on the CPU, in eval mode (BatchNorm running statistics) as
    `ganlib.train.generate` does."""
    was_training = G.training
    G.eval()
    x = G(z).float().cpu()
    G.train(was_training)
    return x


def _reference(kind, n, seed=12345):
    """A fixed real sample of the mixture for recall."""
    means, std = _mixture(kind)
    g = torch.Generator().manual_seed(seed)
    modes = torch.randint(len(means), (n,), generator=g)
    return means[modes] + std * torch.randn(n, 2, generator=g), modes


__all__ = ["EnsembleGenerator", "EnsembleDiscriminator", "build_ensemble", "ensemble_step",
           "pacgan_init", "trial_models",
           "train_toy_ensemble", "summarize", "point_recall", "trial_seeds", "mixture_data"]
