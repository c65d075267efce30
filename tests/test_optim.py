"""`ganlib.optim.make_adam`: fused Adam where this torch has it for the device, torch's
default Adam elsewhere, and the same update either way."""
from __future__ import annotations

import sys

import pytest
import torch

from ganlib.optim import fused_adam_supported, make_adam

optim_module = sys.modules["ganlib.optim"]


@pytest.mark.parametrize("device, version, want", [
    ("cuda", "2.2.0", True), ("cpu", "2.3.1", False), ("cpu", "2.4.0", True),
    ("cpu", "2.14.1+cu130", True), ("meta", "2.14.1", False)])
def test_fused_adam_is_used_only_where_torch_has_the_kernel(device, version, want):
    assert fused_adam_supported(device, version) is want


def _two_steps(monkeypatch, fused: bool):
    monkeypatch.setattr(optim_module, "fused_adam_supported", lambda device: fused)
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 3)
    opt = make_adam(model, 1e-2, (0.5, 0.999))
    for _ in range(2):
        opt.zero_grad()
        model(torch.randn(8, 5)).square().mean().backward()
        opt.step()
    return opt, torch.cat([p.detach().flatten() for p in model.parameters()])


def test_both_branches_give_the_same_update(monkeypatch):
    opt_fused, w_fused = _two_steps(monkeypatch, True)   # this torch: fused on the CPU
    opt_plain, w_plain = _two_steps(monkeypatch, False)  # an older torch's CPU path
    assert opt_fused.defaults["fused"] is True and not opt_plain.defaults["fused"]
    assert opt_plain.defaults["betas"] == (0.5, 0.999) and opt_plain.defaults["lr"] == 1e-2
    torch.testing.assert_close(w_fused, w_plain, rtol=1e-6, atol=1e-6)
