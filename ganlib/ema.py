"""An exponential moving average (EMA) of the generator's weights.

After every generator step, each averaged weight moves a fraction `1 - decay` of the way
towards the trained one: w_ema <- decay * w_ema + (1 - decay) * w. Sampling from the
average rather than from the last iterate smooths out the generator's oscillation in the
game (Yazici et al. 2019; used by ProGAN, StyleGAN, BigGAN). The averaging itself is
PyTorch's: `torch.optim.swa_utils.AveragedModel` with its EMA rule. Introduced in
chapter 10 (GANs in practice).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


def warmup_ema(decay: float):
    """The EMA rule with a warm-up (as TensorFlow's `ExponentialMovingAverage` with
    `num_updates`): after n updates the decay is min(decay, (1 + n) / (10 + n)), so the
    average forgets the untrained starting weights within the first few hundred steps
    instead of the first few thousand. A `multi_avg_fn` for `AveragedModel`."""
    @torch.no_grad()
    def update(ema_params, params, num_averaged):
        n = float(num_averaged)
        if torch.is_floating_point(ema_params[0]):
            torch._foreach_lerp_(ema_params, params, 1.0 - min(decay, (1.0 + n) / (10.0 + n)))
        else:  # integer buffers (BatchNorm's batch count): the current value
            torch._foreach_copy_(ema_params, params)
    return update


def ema_model(G: nn.Module, decay: float = 0.999, warmup: bool = False) -> AveragedModel:
    """A copy of `G` whose weights are an EMA of G's, updated by `ema.update_parameters(G)`.

    Args:
        G: the generator being trained (its current weights are the average's start).
        decay: how much of the old average each update keeps, in [0, 1); 0.999 averages over
            roughly the last 1 / (1 - decay) = 1,000 steps.
        warmup: start with a smaller decay, min(decay, (1 + n) / (10 + n)) after n updates
            (`warmup_ema`), for short runs, where the plain average is still dragged back
            towards the untrained weights for thousands of steps.
    Returns:
        a `torch.optim.swa_utils.AveragedModel`; call it like G (`ema(z)`), its `.module` is
        the averaged generator (for `sample_z`, `state_dict`, `ganlib.generate`). Buffers
        (BatchNorm's running statistics) are averaged too.
    """
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"the EMA decay must be in [0, 1), got {decay}; 0.999 is usual")
    rule = warmup_ema(decay) if warmup else get_ema_multi_avg_fn(decay)
    ema = AveragedModel(G, multi_avg_fn=rule, use_buffers=True)
    ema.update_parameters(G)  # the first update copies G: the average starts at G's weights
    return ema

