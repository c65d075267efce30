"""The precision policy (`ganlib.amp`): float32 unless asked; autocast around forward
and loss only; the gradient penalty in float32; fp16 with gradient scalers; TF32 off on
CUDA; clear errors for a policy the device cannot run."""
from __future__ import annotations

import sys
import warnings

import pytest
import torch

from ganlib import TrainConfig, get_loss, train
from ganlib.models import MLPDiscriminator, MLPGenerator
from ganlib.optim import make_adam
from ganlib.amp import AMP_MODES, Precision, check_amp
from ganlib.training import d_step, g_step

SHAPE = (1, 8, 8)
import ganlib.training as train_module  # noqa: E402  (the module; ganlib.train is the function)


def _models():
    torch.manual_seed(0)
    return MLPGenerator(8, SHAPE), MLPDiscriminator(SHAPE)


def test_float32_is_the_default_and_amp_names_a_policy():
    assert TrainConfig().amp == "none" and AMP_MODES == ("none", "bf16", "fp16")
    with Precision().autocast():
        assert torch.nn.Linear(4, 2)(torch.randn(3, 4)).dtype == torch.float32


@pytest.mark.parametrize("amp, dtype", [("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_autocast_wraps_forward_and_loss_but_not_backward_step_or_penalty(amp, dtype,
                                                                         monkeypatch):
    """Under bf16/fp16, D's forward runs in the low dtype; the gradient penalty, backward
    and the optimizer step see no autocast; weights and their gradients stay float32."""
    G, D = _models()
    opt_D, opt_G = make_adam(D, 1e-3, (0.5, 0.999)), make_adam(G, 1e-3, (0.5, 0.999))
    precision = Precision(amp, "cpu")
    seen = {}
    D.net[1].register_forward_hook(lambda m, args, out: seen.setdefault("forward", out.dtype)
                                   and None)  # a hook that returns None keeps the output
    real_penalty = train_module.gradient_penalty

    def penalty(D_, x_real, x_fake):
        seen["penalty"] = (torch.is_autocast_enabled("cpu"), x_real.dtype, x_fake.dtype)
        return real_penalty(D_, x_real, x_fake)

    for opt, name in ((opt_D, "D step"), (opt_G, "G step")):
        original = opt.step
        opt.step = lambda *a, _o=original, _n=name, **k: (
            seen.setdefault(_n, torch.is_autocast_enabled("cpu")), _o(*a, **k))[1]
    monkeypatch.setattr(train_module, "gradient_penalty", penalty)
    x_real = torch.rand(16, *SHAPE) * 2 - 1
    with precision.autocast():
        x_fake = G(G.sample_z(16))
    assert x_fake.dtype == dtype
    d_loss, real_logits, _ = d_step(D, opt_D, get_loss("wgan-gp"), x_real, x_fake.detach(),
                                    gp_weight=10.0, precision=precision)
    g_loss = g_step(D, opt_G, get_loss("wgan-gp"), x_fake, precision=precision)
    assert seen["forward"] == dtype
    assert seen["penalty"] == (False, torch.float32, torch.float32)
    assert seen["D step"] is False and seen["G step"] is False
    assert d_loss.dtype == g_loss.dtype == real_logits.dtype == torch.float32
    for p in list(G.parameters()) + list(D.parameters()):
        assert p.dtype == torch.float32 and (p.grad is None or p.grad.dtype == torch.float32)


def test_fp16_scales_the_loss_with_one_scaler_per_player():
    G, D = _models()
    precision = Precision("fp16", "cpu")
    assert set(precision.scalers) == {"D", "G"}
    opt_D = make_adam(D, 1e-3, (0.5, 0.999))
    x_real, x_fake = torch.rand(16, *SHAPE) * 2 - 1, torch.rand(16, *SHAPE) * 2 - 1
    before = [p.detach().clone() for p in D.parameters()]
    d_step(D, opt_D, get_loss("bce"), x_real, x_fake, precision=precision)
    state = precision.state_dict()
    assert state["D"]["_growth_tracker"] == 1 and state["G"]["_growth_tracker"] == 0
    assert any(not torch.equal(a, p) for a, p in zip(before, D.parameters()))
    fresh = Precision("fp16", "cpu")
    fresh.load_state_dict(state)
    assert fresh.state_dict() == state
    Precision("none").load_state_dict(state)  # another policy's checkpoint: nothing to load
    fresh.load_state_dict({})  # a float32 checkpoint resumed under fp16: scalers start afresh
    assert fresh.state_dict() == state


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_trains_on_the_cpu_without_warnings(amp, tmp_path):
    """The CPU runs both policies (CPU autocast; fp16 is slow there, and is for GPUs
    without bfloat16): a short run, no warning, finite losses, float32 weights."""
    G, D = _models()
    cfg = TrainConfig(model="mlp", batch_size=16, num_steps=3, progress=False, device="cpu",
                      amp=amp, out_dir=str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history = train(G, D, torch.rand(64, *SHAPE) * 2 - 1, cfg)
    assert torch.isfinite(torch.tensor(history["d_loss"] + history["g_loss"])).all()
    assert all(p.dtype == torch.float32 for p in G.parameters())


def test_bf16_and_fp16_change_the_numbers_and_none_does_not():
    """The policy is not a label: a bf16 run's weights differ from float32's, by rounding."""
    def run(amp):
        G, D = _models()
        train(G, D, torch.rand(64, *SHAPE, generator=torch.Generator().manual_seed(0)) * 2 - 1,
              TrainConfig(batch_size=16, num_steps=3, progress=False, device="cpu", amp=amp))
        return torch.cat([p.detach().flatten() for p in G.parameters()])

    w32, w32_again, w16 = run("none"), run("none"), run("bf16")
    assert torch.equal(w32, w32_again)
    assert not torch.equal(w32, w16) and torch.allclose(w32, w16, atol=0.05)


def test_unknown_or_boolean_amp_is_refused_with_what_to_use():
    with pytest.raises(ValueError, match=r"amp must be one of 'none', 'bf16', 'fp16', got 'fp32'"):
        check_amp("fp32", torch.device("cpu"))
    with pytest.raises(ValueError, match=r"use 'bf16' for the old amp=True"):
        Precision(True, "cpu")


def test_bf16_on_a_gpu_without_bfloat16_says_to_use_fp16(monkeypatch):
    """Colab's T4 has no native bfloat16 (torch would emulate it, slowly)."""
    precision_module = sys.modules["ganlib.amp"]
    monkeypatch.setattr(precision_module, "_native_bf16", lambda device: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    with pytest.raises(ValueError, match=r"Tesla T4 has none; use amp='fp16'"):
        check_amp("bf16", torch.device("cuda"))
    check_amp("fp16", torch.device("cuda"))  # fp16 is the T4's policy
    monkeypatch.setattr(precision_module, "_native_bf16", lambda device: True)
    check_amp("bf16", torch.device("cuda"))


def test_the_policy_switches_tf32_off_on_cuda():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        Precision("none", "cpu")
        assert torch.backends.cudnn.allow_tf32  # the CPU policy leaves torch's globals alone
        Precision("none", "cuda")  # no GPU needed to build it: "none" has no scaler
        assert not torch.backends.cuda.matmul.allow_tf32
        assert not torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
