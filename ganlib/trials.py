"""`Trials`: T networks of one class, each with its own weights, run as one batched module.

The mode-collapse tables report means over 10 trials. Ten small GANs trained one after the
other keep a processor mostly idle: every matrix is tiny. `Trials` stacks the T networks'
parameters along a leading trial dimension and runs the *same* network class
(`ganlib.toy_models.ToyGenerator`, `ToyDiscriminator`) on each trial's slice with
`torch.func.functional_call`, vectorised by `torch.func.vmap`. The trials stay independent:
each trial's BatchNorm uses its own batch and its own running statistics. `ganlib.ensemble`
trains them (`ensemble_step`, `train_toy_ensemble`).

Introduced in chapter 6 (mode collapse).
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from .models import Packed
from .toy_models import ToyDiscriminator, ToyGenerator, pacgan_init


class Trials(nn.Module):
    """T networks of one class with their own weights, as one module: input `(T, B, ...)`,
    trial t's slice through trial t's network, output `(T, ...)`.

    Parameters and buffers are stacked by `torch.func.stack_module_state`; `forward` calls
    the one network definition with each trial's slice (`functional_call`) under `vmap`.
    BatchNorm running statistics are stacked buffers too, updated in place per trial.
    `trial(t)` returns trial t as an ordinary module. Introduced in chapter 6.
    """

    def __init__(self, nets: list[nn.Module]):
        super().__init__()
        params, buffers = stack_module_state(list(nets))
        self.trials, self.names, self.buffer_names = len(nets), list(params), list(buffers)
        self.stacked = nn.ParameterList([nn.Parameter(p.detach()) for p in params.values()])
        for i, b in enumerate(buffers.values()):
            self.register_buffer(f"buffer{i}", b)
        self._net = [copy.deepcopy(nets[0]).to("meta")]  # a list: not a submodule, no state
        self.latent_dim = getattr(nets[0], "latent_dim", None)
        self.m = nets[0].m if isinstance(nets[0], Packed) else 1

    @property
    def net(self) -> nn.Module:
        """The network definition, on the meta device (it holds no numbers)."""
        return self._net[0]

    def _state(self):
        return ([*self.stacked], [getattr(self, f"buffer{i}") for i in range(len(self.buffer_names))])

    def forward(self, x):
        net = self.net.train(self.training)

        def one(params, buffers, x):  # one trial: x (B, ...) -> (B', ...)
            return functional_call(net, (dict(zip(self.names, params)),
                                         dict(zip(self.buffer_names, buffers))), (x,))
        return vmap(one)(*self._state(), x)

    def trial(self, t: int) -> nn.Module:
        """Trial t as an ordinary module (a copy, on this module's device)."""
        params, buffers = self._state()
        net = copy.deepcopy(self.net).to_empty(device=params[0].device)
        net.load_state_dict({**{n: p[t] for n, p in zip(self.names, params)},
                             **{n: b[t] for n, b in zip(self.buffer_names, buffers)}})
        return net.train(self.training)


def trial_seeds(seed: int, trials: int) -> list[int]:
    """One seed per trial, derived from `seed` (the same first seeds for any `trials`)."""
    g = torch.Generator().manual_seed(seed)
    return [int(torch.randint(2**31 - 1, (1,), generator=g)) for _ in range(trials)]


def trial_models(seed: int, pack: int = 1, minibatch_std: int = 0,
                 init_std: float | None = 0.02, batchnorm: str = "torch"):
    """One trial's `(ToyGenerator, ToyDiscriminator)`, built after `torch.manual_seed(seed)`
    (and, with `init_std`, initialised by `pacgan_init`); the global RNG is left as it was.
    The discriminator takes `2 * pack` inputs (not wrapped in `Packed`); with
    `batchnorm="pacgan"` the generator normalises each of the `pack` slots on its own."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        slots = pack if batchnorm == "pacgan" else 1
        G = ToyGenerator(batchnorm=batchnorm, slots=slots)
        D = ToyDiscriminator(2 * pack, minibatch_std=minibatch_std)
        if init_std is not None:
            pacgan_init(G, init_std)
            pacgan_init(D, init_std)
    return G, D


def build_ensemble(trials: int, pack: int = 1, minibatch_std: int = 0, seed: int = 0,
                   init_std: float | None = 0.02, batchnorm: str = "torch"):
    """Make `(G, D)`, two `Trials` of `trials` independently initialised toy GANs.

    Trial t starts as `trial_models(s_t, pack, minibatch_std, init_std, batchnorm)` with
    `s_t` from `trial_seeds(seed, trials)`; D is wrapped in `Packed(D, pack)`, so
    `D((T, B, 2))` gives logits `(T, B/pack, 1)`. Introduced in chapter 6 (mode collapse).
    """
    pairs = [trial_models(s, pack, minibatch_std, init_std, batchnorm)
             for s in trial_seeds(seed, trials)]
    return Trials([G for G, _ in pairs]), Trials([Packed(D, pack) for _, D in pairs])


__all__ = ["Trials", "build_ensemble", "trial_models", "trial_seeds"]
