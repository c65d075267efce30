"""The fast steps (`ganlib.fast`): compiled with torch.compile, `train`'s step trains as the
plain step does, and it is left alone where compiling would change the run; the trials
ensemble's CUDA graph (`graph_step`) warms up without leaving a trace and is used on CUDA
only (its replay is checked against the plain step in tests/test_gpu.py)."""
from __future__ import annotations

import functools
import sys

import pytest
import torch

from ganlib import build_models, get_loss
from ganlib.ensemble import ensemble_step, train_toy_ensemble
from ganlib.trials import build_ensemble
from ganlib.fast import _restored, compilable, compile_forward, fast_step
from ganlib.models import MLPDiscriminator, MLPGenerator
from ganlib.optim import make_adam
from ganlib.amp import Precision
from ganlib.training import train_step

SHAPE = (1, 8, 8)


def _run(fast: bool, steps: int = 3):
    """`steps` generator steps of the tiny MLP GAN (n_critic 2), plain or compiled; returns
    the final weights and each step's statistics."""
    torch.manual_seed(0)
    G, D = MLPGenerator(8, SHAPE), MLPDiscriminator(SHAPE)
    opt_G, opt_D = make_adam(G, 1e-3, (0.5, 0.999)), make_adam(D, 1e-3, (0.5, 0.999))
    loss = get_loss("bce")
    step = functools.partial(train_step, G, D, opt_G, opt_D, loss)
    if fast:
        plain, step = step, fast_step(step, G, D, loss)
        assert step is not plain  # compiled, not handed back
    x = torch.rand(steps, 2, 16, *SHAPE, generator=torch.Generator().manual_seed(1)) * 2 - 1
    torch.manual_seed(2)  # the noise comes from the global generator, drawn in the step
    stats = [torch.stack(step(list(x[i]))[:2]) for i in range(steps)]  # d_loss, g_loss
    return {**G.state_dict(), **{f"D.{k}": v for k, v in D.state_dict().items()}}, stats


@pytest.mark.slow
def test_compiled_step_trains_as_the_plain_step():
    """On the CPU (TorchInductor with gcc), three steps of the compiled step give the plain
    step's losses and weights to float32 rounding: the same noise, the same updates."""
    plain, plain_stats = _run(fast=False)
    compiled, compiled_stats = _run(fast=True)
    for a, b in zip(plain_stats, compiled_stats):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    for k in plain:
        torch.testing.assert_close(compiled[k], plain[k], rtol=1e-4, atol=1e-5)


def test_fast_step_compiles_only_where_it_is_exact():
    torch.manual_seed(0)
    G, D = MLPGenerator(8, SHAPE), MLPDiscriminator(SHAPE)
    step = functools.partial(train_step, G, D, None, None, get_loss("bce"))
    assert compilable(G, D, get_loss("bce"))
    assert fast_step(step, G, D, get_loss("bce")) is not step
    assert fast_step(step, G, D, get_loss("lsgan"), Precision("bf16")) is not step
    # left as they are: double backward, fp16's host-side scaler, dropout's masks
    assert fast_step(step, G, D, get_loss("wgan-gp")) is step
    assert fast_step(step, G, D, get_loss("bce"), Precision("fp16")) is step
    G32, D32 = build_models("conv32", (3, 32, 32))  # its D has Dropout
    assert not compilable(G32, D32, get_loss("bce"))
    assert fast_step(step, G32, D32, get_loss("bce")) is step


def test_train_uses_the_plain_step_on_the_cpu(monkeypatch):
    """`fast` is for CUDA: on the CPU `train` never compiles, whatever the flag."""
    import ganlib.training as train_module  # noqa: E402  (the module; ganlib.train is the function)
    calls = []
    monkeypatch.setattr(train_module, "fast_step", lambda step, *a: calls.append(1) or step)
    G, D = MLPGenerator(8, SHAPE), MLPDiscriminator(SHAPE)
    x = torch.rand(32, *SHAPE) * 2 - 1
    train_module.train(G, D, x, train_module.TrainConfig(batch_size=16, num_steps=2,
                                                         progress=False, device="cpu"))
    assert calls == []


def _ensemble_steps(G, D, opt_G, opt_D, steps, seed, simultaneous):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x_real, z = torch.randn(2, 3, 12, 2, generator=gen)  # (T, B, 2) each
        ensemble_step(G, D, opt_G, opt_D, get_loss("bce"), x_real, z, simultaneous)


@pytest.mark.parametrize("simultaneous", [False, True])
@pytest.mark.parametrize("before", [0, 2])  # a fresh optimizer, and one with state (resumed)
def test_graph_warmup_leaves_no_trace(simultaneous, before):
    """`graph_step` warms up by running the step; `_restored` puts back every weight,
    BatchNorm statistic and Adam state (zero where Adam had none), so the run that follows
    is bit for bit the run without the warm-up."""
    runs = []
    for warm in (False, True):
        G, D = build_ensemble(3, pack=2, seed=0)
        opt_G, opt_D = make_adam(G, 1e-3, (0.8, 0.999)), make_adam(D, 1e-3, (0.8, 0.999))
        _ensemble_steps(G, D, opt_G, opt_D, before, 1, simultaneous)
        if warm:
            with _restored((G, D), (opt_G, opt_D)):
                _ensemble_steps(G, D, opt_G, opt_D, 3, 2, simultaneous)  # other data
            assert all(p.grad is None for p in [*G.parameters(), *D.parameters()])
        _ensemble_steps(G, D, opt_G, opt_D, 3, 3, simultaneous)
        runs.append([*G.state_dict().values(), *D.state_dict().values(),
                     *(v for opt in (opt_G, opt_D) for s in opt.state.values()
                       for v in s.values())])
    assert len(runs[0]) == len(runs[1])
    for a, b in zip(*runs):
        assert torch.equal(a, b)


@pytest.mark.slow
@pytest.mark.parametrize("simultaneous", [False, True])
def test_compiled_trials_train_as_the_plain_ones(simultaneous):
    """`compile_forward` (the fusion `train_toy_ensemble(fast="compile")` adds before its
    CUDA graph) on the CPU: three steps of 3 trials give the plain losses to 1e-5 and
    weights within one Adam step (lr 1e-3; measured: 5.7e-4 after 4 steps); the BatchNorm
    statistics, updated in place inside the compiled code, follow too."""
    runs = []
    for compiled in (False, True):
        G, D = build_ensemble(3, pack=2, seed=0)
        if compiled:
            compile_forward(G, D)
        opt_G, opt_D = make_adam(G, 1e-3, (0.8, 0.999)), make_adam(D, 1e-3, (0.8, 0.999))
        gen = torch.Generator().manual_seed(1)
        losses = [torch.stack(ensemble_step(G, D, opt_G, opt_D, get_loss("bce"),
                                            *torch.randn(2, 3, 20, 2, generator=gen),
                                            simultaneous)) for _ in range(3)]
        runs.append((losses, {**G.state_dict(), **{f"D.{k}": v for k, v in D.state_dict().items()}}))
    (plain_losses, plain), (compiled_losses, compiled) = runs
    for a, b in zip(plain_losses, compiled_losses):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    assert compiled.keys() == plain.keys()
    for k in plain:
        torch.testing.assert_close(compiled[k], plain[k], rtol=0, atol=1e-3)


def test_train_toy_ensemble_captures_no_graph_on_the_cpu(monkeypatch):
    """`fast` is for CUDA: on the CPU the ensemble runs its plain step, flag or not."""
    ensemble_module = sys.modules["ganlib.ensemble"]
    calls = []
    monkeypatch.setattr(ensemble_module, "graph_step", lambda step, *a: calls.append(1) or step)
    kw = dict(trials=2, steps=3, batch_size=10, dataset_size=50, num_samples=100,
              device="cpu", progress=False)
    on, off = train_toy_ensemble(**kw, fast=True), train_toy_ensemble(**kw, fast=False)
    assert calls == [] and torch.equal(on["samples"], off["samples"])
    with pytest.raises(ValueError, match="fast must be"):
        train_toy_ensemble(**kw, fast="graph")
