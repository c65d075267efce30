"""The fast training step: `train`'s step compiled with `torch.compile`, in one place.

The loop that a student reads (`ganlib.training.train_step`, `d_step`, `g_step`) stays plain
Python. On CUDA, `train` hands its step to `fast_step`, which returns the same step
compiled by TorchInductor: forward, backward and loss fused into far fewer kernel launches,
which is what small GANs on a GPU wait for. `TrainConfig(fast=False)` keeps the plain step.

What stays the same: the random draws (noise, dropout, the gradient penalty's
interpolation weights) come from torch's ordinary generators in the same order
(`fallback_random`: Inductor would otherwise draw its own numbers), the n_critic D steps,
the statistics left on the device. What does not: fused kernels add in another order, so
the weights agree with the plain step's to float32 rounding, not bit for bit
(`tests/test_fast.py` bounds the difference on the CPU, `tests/test_gpu.py` on CUDA). A
compiled run is deterministic, so it resumes exactly like a plain one.

Where the step is left as it is (returned unchanged, `compilable` says so):

- WGAN-GP: its gradient penalty differentiates twice, which compiled graphs do not support.
- Dropout in G or D (`conv32`'s D): compiled dropout draws its mask another way, so the
  run would no longer be the plain loop's.
- fp16: the gradient scaler reads its inf checks back to the host every step, breaking the
  compiled graph where the time would be saved.

The trials ensemble (`ganlib.ensemble`, chapter 6) takes the other road: its step has two
backward passes through one generator pass, which a compiled region cannot hold, and ten
2-D GANs wait for kernel launches, not arithmetic. `graph_step` records the whole eager
step (forward, backward, Adam) as one CUDA graph and replays it, the same kernels on the
same tensors; `compile_forward` can fuse the networks' kernels first.

Introduced in chapter 3 (a first GAN on MNIST), beside `train`.
"""
from __future__ import annotations

import torch
from torch import nn


_RANDOM_LAYERS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)


def compilable(G, D, loss, precision=None) -> bool:
    """True when `fast_step` compiles the step of `G` and `D` with this loss (a `GANLoss`)
    and precision (a `ganlib.amp.Precision`; None: float32)."""
    random_layers = any(isinstance(m, _RANDOM_LAYERS) for net in (G, D) for m in net.modules())
    return not (loss.gradient_penalty or random_layers
                or getattr(precision, "amp", "none") == "fp16")


def fast_step(step, G, D, loss, precision=None):
    """Return `step` compiled with `torch.compile` (same random draws, float32 rounding
    aside the same updates), or `step` itself where compiling is not exact (`compilable`).

    `step` is a callable such as `functools.partial(ganlib.training.train_step, G, D, ...)`
    taking the list of real batches; the first call compiles it (seconds on a GPU, up to
    a minute on a CPU), later calls reuse the compiled code. Works on the CPU too (it
    needs a C++ compiler there), which is how its test runs without a GPU.
    """
    if not compilable(G, D, loss, precision):
        return step
    return torch.compile(step, dynamic=False, options={"fallback_random": True})


# ------------------------------------------------------------ one CUDA graph for a whole step

def graph_step(step, inputs, models, optimizers, warmup: int = 3):
    """Return `step` captured in one CUDA graph: a callable `fast(*inputs)` that copies its
    arguments into fixed buffers and replays every kernel of `step` (forward, backward and
    the optimizers' updates) with one launch. Small models wait for launches, not for
    arithmetic: this is what PacGAN's 2-D trials need on a GPU (chapter 6).

    `step(*inputs)` must draw no random numbers (pass noise in as an input) and must not
    read values back to the host. `inputs` are example tensors of the shapes and dtypes
    that will be passed; `models` and `optimizers` are what `step` updates. Every
    optimizer's param groups must be `capturable` (Adam, SGD, ... with `capturable=True`).

    What stays the same: the graph replays the very kernels that the plain step launches,
    on the same tensors (weights, BatchNorm statistics, optimizer state), so a replay
    updates them as a plain call would. Before capturing, `warmup` calls on a side stream
    let cuBLAS and the optimizers set themselves up; `_restored` then puts every weight,
    buffer and optimizer state back, so those calls leave no trace in the run. Returned
    outputs are copies (the graph's own outputs are overwritten by the next replay).
    Introduced in chapter 6 (mode collapse), beside `ganlib.ensemble`.
    """
    static = [x.detach().clone() for x in inputs]
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side), _restored(models, optimizers):
        for _ in range(warmup):
            step(*static)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):  # recorded, not run: nothing changes here
        outputs = step(*static)

    def fast(*args):
        for buffer, x in zip(static, args):
            buffer.copy_(x)
        graph.replay()
        return tuple(out.clone() for out in outputs)
    return fast


def compile_forward(*models) -> None:
    """Compile each module's forward in place (`nn.Module.compile`, TorchInductor, the same
    random draws as in `fast_step`): calling `model(x)` runs fused kernels, which
    `graph_step` then captures like any others. `model.forward(x)` still runs the plain
    code. The updates agree with the plain ones to float32 rounding, not bit for bit."""
    for m in models:
        m.compile(dynamic=False, options={"fallback_random": True})


class _restored:
    """A context that saves every parameter, buffer and optimizer state tensor of `models`
    and `optimizers` on entry and writes them back in place on exit (so the tensors keep
    their memory, which a captured graph relies on). Optimizer state that did not exist on
    entry is set to zero, which is what a fresh optimizer starts from (Adam's step count
    and moments, SGD's momentum). Gradients are cleared."""

    def __init__(self, models, optimizers):
        self.models, self.optimizers = list(models), list(optimizers)

    def _tensors(self):
        for m in self.models:
            yield from m.parameters()
            yield from m.buffers()
        for opt in self.optimizers:
            for state in opt.state.values():
                yield from (v for v in state.values() if torch.is_tensor(v))

    def __enter__(self):
        self.saved = {id(t): (t, t.detach().clone()) for t in self._tensors()}
        return self

    def __exit__(self, *exc):
        with torch.no_grad():
            for t in self._tensors():
                t.copy_(self.saved[id(t)][1]) if id(t) in self.saved else t.zero_()
        for m in self.models:
            for p in m.parameters():
                p.grad = None
        return False
