"""Resuming across devices: RNG states as torch's setters want them (CPU uint8 tensors,
wherever `map_location` put them), and a resumed run equal to an uninterrupted one under
every precision policy. The CUDA half of these checks is in tests/test_gpu.py."""
from __future__ import annotations

import pytest
import torch

from ganlib import TrainConfig, load_checkpoint, train
from ganlib import checkpoint as ckpt_io
from ganlib.models import MLPDiscriminator, MLPGenerator

SHAPE = (1, 8, 8)


class MovedToGPU:
    """An RNG state as `torch.load(..., map_location="cuda")` returns it: a uint8 tensor on
    the GPU, which `torch.set_rng_state` refuses ("RNG state must be a torch.ByteTensor").
    Without a GPU, this stand-in has the one way back that a CUDA tensor has: `.to()`."""

    def __init__(self, t: torch.Tensor):
        self.t, self.device, self.dtype = t, torch.device("cuda", 0), t.dtype

    def to(self, *args, **kwargs):
        return self.t.to(*args, **kwargs)


def moved(state: dict) -> dict:
    return {k: [MovedToGPU(s) for s in v] if isinstance(v, list) else MovedToGPU(v)
            for k, v in state.items()}


def test_set_rng_state_takes_states_that_map_location_moved_to_the_gpu():
    state = ckpt_io.rng_state()
    want = torch.rand(5)
    torch.manual_seed(123)  # somewhere else entirely
    ckpt_io.set_rng_state(moved(state))
    assert torch.equal(torch.rand(5), want)


def test_cuda_states_go_back_to_each_present_gpu_as_cpu_uint8(monkeypatch):
    """Written on two GPUs, resumed on a machine with one: the present GPU gets its own
    state, as a CPU ByteTensor (what `torch.cuda.set_rng_state` requires)."""
    got = []

    def set_cuda_state(s, device):
        if not (isinstance(s, torch.Tensor) and s.device.type == "cpu" and s.dtype == torch.uint8):
            raise TypeError("RNG state must be a torch.ByteTensor")  # as torch says
        got.append((device, s))

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_rng_state", set_cuda_state)
    gpu0, gpu1 = torch.full((16,), 7, dtype=torch.uint8), torch.full((16,), 9, dtype=torch.uint8)
    ckpt_io.set_rng_state(moved({"torch": torch.get_rng_state(), "cuda": [gpu0, gpu1]}))
    assert len(got) == 1 and got[0][0] == 0 and torch.equal(got[0][1], gpu0)


def test_a_cuda_checkpoints_cpu_state_is_restored_on_a_cpu_only_machine():
    state = {**ckpt_io.rng_state(), "cuda": [torch.zeros(16, dtype=torch.uint8)]}
    want = torch.rand(5)
    torch.manual_seed(5)
    ckpt_io.set_rng_state(state)  # no CUDA here: its states are left out of use
    assert torch.equal(torch.rand(5), want)


def _models(seed=0):
    torch.manual_seed(seed)
    return MLPGenerator(8, SHAPE), MLPDiscriminator(SHAPE)


def _data():
    return torch.rand(64, *SHAPE, generator=torch.Generator().manual_seed(0)) * 2 - 1


def _config(out, steps, **kw):
    return TrainConfig(model="mlp", batch_size=16, num_steps=steps, progress=False,
                       device="cpu", out_dir=str(out), **kw)


def _same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_resume_from_a_checkpoint_loaded_onto_the_gpu_equals_the_uninterrupted_run(
        tmp_path, monkeypatch):
    """`train(..., resume=True)` as on CUDA, where `load_checkpoint(map_location=device)`
    hands back GPU tensors: the run goes on exactly (it crashed with a TypeError before)."""
    G_full, D_full = _models()
    h_full = train(G_full, D_full, _data(), _config(tmp_path / "full", 6))
    G, D = _models()
    train(G, D, _data(), _config(tmp_path / "half", 3))

    load = ckpt_io.load_checkpoint

    def load_onto_gpu(path, map_location="cpu"):
        ck = load(path, map_location)
        return {**ck, "rng": moved(ck["rng"])}

    monkeypatch.setattr(ckpt_io, "load_checkpoint", load_onto_gpu)  # as ganlib.run_files calls it
    G, D = _models(seed=1)
    h = train(G, D, _data(), _config(tmp_path / "half", 6), resume=True)
    assert _same_state(G, G_full) and _same_state(D, D_full) and h == h_full


@pytest.mark.parametrize("amp", ["none", "bf16", "fp16"])
def test_resumed_run_equals_the_uninterrupted_run_under_each_precision(amp, tmp_path):
    """On the CPU, bit for bit: weights, optimizers, history and (fp16) the gradient
    scalers' state, which the checkpoint carries."""
    G_full, D_full = _models()
    h_full = train(G_full, D_full, _data(), _config(tmp_path / "full", 6, amp=amp))
    G, D = _models()
    train(G, D, _data(), _config(tmp_path / "half", 3, amp=amp))
    G, D = _models(seed=1)
    h = train(G, D, _data(), _config(tmp_path / "half", 6, amp=amp), resume=True)
    assert _same_state(G, G_full) and _same_state(D, D_full) and h == h_full
    scalers = load_checkpoint(tmp_path / "half" / "last.pt")["scalers"]
    assert scalers == load_checkpoint(tmp_path / "full" / "last.pt")["scalers"]
    assert sorted(scalers) == (["D", "G"] if amp == "fp16" else [])
