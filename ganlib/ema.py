"""An exponential moving average (EMA) of the generator's weights.

After every generator step, each averaged weight moves a fraction `1 - decay` of the way
towards the trained one: w_ema <- decay * w_ema + (1 - decay) * w. Sampling from the
average rather than from the last iterate smooths out the generator's oscillation in the
game (Yazici et al. 2019; used by ProGAN, StyleGAN, BigGAN). The averaging itself is
PyTorch's: `torch.optim.swa_utils.AveragedModel` with its EMA rule. Introduced in
chapter 10 (GANs in practice).
"""
from __future__ import annotations

from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


def ema_model(G: nn.Module, decay: float = 0.999) -> AveragedModel:
    """A copy of `G` whose weights are an EMA of G's, updated by `ema.update_parameters(G)`.

    Args:
        G: the generator being trained (its current weights are the average's start).
        decay: how much of the old average each update keeps, in [0, 1); 0.999 averages over
            roughly the last 1 / (1 - decay) = 1,000 steps.
    Returns:
        a `torch.optim.swa_utils.AveragedModel`; call it like G (`ema(z)`), its `.module` is
        the averaged generator (for `sample_z`, `state_dict`, `ganlib.generate`). Buffers
        (BatchNorm's running statistics) are averaged too.
    """
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"the EMA decay must be in [0, 1), got {decay}; 0.999 is usual")
    ema = AveragedModel(G, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
    ema.update_parameters(G)  # the first update copies G: the average starts at G's weights
    return ema

