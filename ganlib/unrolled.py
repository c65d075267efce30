"""Unrolled GANs (Metz et al. 2017): the generator's loss through D unrolled k steps.

The generator of a plain GAN steps against today's discriminator. An unrolled generator
steps against the discriminator it would face after D's next k updates:

    theta_D^0 = theta_D,  theta_D^{i+1} = theta_D^i + step(grad of D's loss at theta_D^i)
    G minimises  f(theta_G, theta_D^k(theta_G)),

where every inner step is differentiable, so G's gradient flows through the k updates: G
sees how D would react to its move, and a generator that piles onto one mode is punished
by the discriminator that would follow it there. The unrolled parameters are a throwaway
copy; D itself takes its normal step afterwards.

Written with `torch.func.functional_call` (D evaluated at the unrolled parameters, held in
a dict) and `torch.autograd.grad(..., create_graph=True)` (each inner gradient kept in the
graph). The inner optimiser is D's own: Adam (the paper and the reference notebook,
`poolio/unrolled_gan`, whose Keras Adam starts each unroll from D's current moments and
step count, as here) or plain SGD. Each inner step reuses the same real batch and fakes,
as the notebook's graph does. Introduced in chapter 6 (mode collapse and its remedies).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.func import functional_call

from .losses import GANLoss

OBJECTIVES = ("g_loss", "saddle")


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"the number of unrolling steps k must be an integer >= 0, got {k!r}; "
                         "k=0 is the plain generator step, the papers use k=5")
    return k


def _inner_optimizer(opt_D: torch.optim.Optimizer, D: nn.Module) -> list[dict]:
    """For each of D's parameters that opt_D updates: its name, hyperparameters and state."""
    kind = "adam" if isinstance(opt_D, torch.optim.Adam) else \
        "sgd" if isinstance(opt_D, torch.optim.SGD) else None
    if kind is None:
        raise ValueError(f"unrolling needs D's optimizer to be torch.optim.Adam or SGD, got "
                         f"{type(opt_D).__name__}; build opt_D with ganlib.optim.make_adam")
    group_of = {p: g for g in opt_D.param_groups for p in g["params"]}
    out = []
    for name, p in D.named_parameters():
        g = group_of.get(p)
        if g is None or not p.requires_grad:
            continue  # not trained by opt_D: held fixed in the unroll too
        unsupported = {k: g[k] for k in ("weight_decay", "amsgrad", "maximize", "momentum",
                                         "nesterov", "decoupled_weight_decay")
                       if g.get(k) not in (None, False, 0, 0.0)}
        if unsupported:
            raise ValueError(f"unrolling supports plain Adam and SGD only; opt_D has "
                             f"{unsupported}. Use lr and betas alone")
        s = opt_D.state.get(p, {})
        out.append(dict(name=name, param=p, kind=kind, lr=float(g["lr"]), betas=g.get("betas"),
                        eps=g.get("eps"), step=float(s["step"]) if "step" in s else 0.0,
                        m=s.get("exp_avg"), v=s.get("exp_avg_sq")))
    return out


def _sqrt(v: torch.Tensor) -> torch.Tensor:
    """sqrt(v), with a zero (not NaN) gradient where v == 0: a gradient entry that is
    exactly 0 at Adam's first step leaves v = 0, where sqrt's derivative is infinite."""
    positive = v > 0
    return torch.where(positive, v, torch.ones_like(v)).sqrt() * positive


def adam_update(p, grad, m, v, step: float, lr: float, betas, eps: float):
    """One differentiable Adam step, the update of `torch.optim.Adam` (no weight decay).

    Args:
        p, grad, m, v: a parameter, its gradient, Adam's first and second moments, all of
            one shape; m and v are the moments before this step (zeros at the start).
        step: steps taken before this one (torch's `state["step"]`).
    Returns:
        `(p, m, v)` after the step, each a function of the inputs that autograd can
        differentiate (no in-place updates). Introduced in chapter 6.
    """
    beta1, beta2 = betas
    t = step + 1
    m = torch.lerp(m, grad, 1 - beta1)            # beta1 m + (1 - beta1) g, as torch computes it
    v = v * beta2 + (1 - beta2) * grad * grad
    denom = _sqrt(v) / math.sqrt(1 - beta2 ** t) + eps
    return p - (lr / (1 - beta1 ** t)) * m / denom, m, v


def unrolled_parameters(D: nn.Module, opt_D: torch.optim.Optimizer, loss: GANLoss,
                        x_real: torch.Tensor, x_fake: torch.Tensor, k: int) -> dict:
    """D's parameters after k differentiable steps of its own optimiser, as a dict.

    Args:
        D: the discriminator; its parameters, buffers and `opt_D` are left untouched.
        opt_D: D's optimiser (Adam or SGD): its learning rate, betas, eps and current state
            (moments, step count) define the inner steps.
        loss: the objective; the inner steps minimise `loss.d_loss` (no gradient penalty).
        x_real: a real batch `(B, ...)`; x_fake: `G(z)`, `(B, ...)`, NOT detached, so the
            result depends on G's parameters. The same batch is used at every inner step.
        k: inner steps, >= 0 (0 returns D's parameters themselves).
    Returns:
        a dict from the name of each parameter opt_D trains to its value after the k
        steps, ready for `torch.func.functional_call(D, params, x)`. Introduced in chapter 6.
    """
    k = _check_k(k)
    if loss.gradient_penalty:
        raise ValueError(f"unrolling {loss.name!r} is not supported (its gradient penalty "
                         "would need a third order of derivatives); use loss='bce' or 'minimax'")
    slots = _inner_optimizer(opt_D, D)
    params = {s["name"]: s["param"] for s in slots}
    # the unroll's own copy of D's buffers (BatchNorm statistics, spectral norm's vectors),
    # so that its forward passes leave the real D as it was
    buffers = {n: b.clone() for n, b in D.named_buffers()}
    moments = [(s["m"] if s["m"] is not None else torch.zeros_like(s["param"]),
                s["v"] if s["v"] is not None else torch.zeros_like(s["param"])) for s in slots]
    for i in range(k):
        real_logits = functional_call(D, (params, buffers), (x_real,))  # (B, 1)
        fake_logits = functional_call(D, (params, buffers), (x_fake,))  # (B, 1)
        d_loss = loss.d_loss(real_logits, fake_logits)
        # create_graph: the step below stays differentiable in G (through x_fake) and in D
        grads = torch.autograd.grad(d_loss, list(params.values()), create_graph=True)
        new_params, new_moments = {}, []
        for s, g, (m, v) in zip(slots, grads, moments):
            p = params[s["name"]]
            if s["kind"] == "sgd":
                new_params[s["name"]] = p - s["lr"] * g
                new_moments.append((m, v))
            else:
                p, m, v = adam_update(p, g, m, v, s["step"] + i, s["lr"], s["betas"], s["eps"])
                new_params[s["name"]] = p
                new_moments.append((m, v))
        params, moments = new_params, new_moments
    return params


def unrolled_g_loss(D: nn.Module, opt_D: torch.optim.Optimizer, loss: GANLoss,
                    x_real: torch.Tensor, x_fake: torch.Tensor, k: int,
                    objective: str = "g_loss") -> torch.Tensor:
    """The generator's loss against D unrolled k steps (Metz et al. 2017).

    Args:
        D, opt_D, loss, x_real, x_fake, k: as for `unrolled_parameters`; x_fake is `G(z)`.
        objective: "g_loss" scores the fakes with `loss.g_loss` (the non-saturating loss for
            "bce"; k=0 is then exactly `ganlib.training.g_step`'s loss); "saddle" is the
            paper's surrogate -d_loss(D_k(x_real), D_k(x_fake)), the value of the game
            itself, whose real-data term also depends on G through D_k (what
            `poolio/unrolled_gan` minimises; for BCE, the saturating minimax loss at k=0).
    Returns:
        the scalar loss, differentiable in G's parameters. Introduced in chapter 6.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    params = unrolled_parameters(D, opt_D, loss, x_real, x_fake, k)
    buffers = {n: b.clone() for n, b in D.named_buffers()}
    fake_logits = functional_call(D, (params, buffers), (x_fake,))  # (B, 1)
    if objective == "g_loss":
        return loss.g_loss(fake_logits)
    real_logits = functional_call(D, (params, buffers), (x_real,))  # (B, 1)
    return -loss.d_loss(real_logits, fake_logits)


def unrolled_g_step(D: nn.Module, opt_G: torch.optim.Optimizer, opt_D: torch.optim.Optimizer,
                    loss: GANLoss, x_real: torch.Tensor, x_fake: torch.Tensor, k: int,
                    objective: str = "g_loss") -> torch.Tensor:
    """One generator update through D unrolled k steps; `ganlib.training.g_step` at k=0.

    Computes `unrolled_g_loss` and steps `opt_G` on its gradient. Only G's parameters
    (those of `opt_G`) receive gradients: D, its `.grad` and `opt_D` are left exactly as
    they were, so D's own (normal) update can follow, on `x_fake.detach()`.

    Args:
        D, opt_D, loss, x_real, k, objective: as for `unrolled_g_loss`.
        opt_G: G's optimiser; x_fake: `G(z)` `(B, ...)`, with its graph to G.
    Returns:
        the detached G loss. Introduced in chapter 6.
    """
    g_loss = unrolled_g_loss(D, opt_D, loss, x_real, x_fake, k, objective)
    g_params = [p for group in opt_G.param_groups for p in group["params"] if p.requires_grad]
    opt_G.zero_grad(set_to_none=True)
    g_loss.backward(inputs=g_params)  # into G only; D's .grad stays as it was
    opt_G.step()
    return g_loss.detach()


__all__ = ["OBJECTIVES", "adam_update", "unrolled_parameters", "unrolled_g_loss",
           "unrolled_g_step"]
