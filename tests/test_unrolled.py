"""ganlib.unrolled (chapter 6): G's loss through D unrolled k steps, against a hand-written
unroll of a tiny network, against the plain step at k=0, and against torch's own Adam."""
from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from ganlib.lipschitz import spectral_norm
from ganlib.losses import get_loss
from ganlib.training import g_step
from ganlib.unrolled import (adam_update, unrolled_g_loss, unrolled_g_step,
                             unrolled_parameters)

BCE = get_loss("bce")


def tiny(seed: int = 0, dtype=torch.float32):
    """G: 3 -> 2 (linear), D: 2 -> 4 (tanh) -> 1, an Adam for each with a warm state (two
    real D steps, so the unroll starts from non-zero moments and step count 2); D's betas
    are not 0.5, where beta1 and 1 - beta1 would be the same number."""
    torch.manual_seed(seed)
    G = nn.Linear(3, 2).to(dtype)
    D = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1)).to(dtype)
    opt_G = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), lr=0.05, betas=(0.8, 0.99), foreach=False)
    z, x_real = torch.randn(8, 3, dtype=dtype), torch.randn(8, 2, dtype=dtype)
    for _ in range(2):
        opt_D.zero_grad()
        BCE.d_loss(D(x_real), D(G(z).detach())).backward()
        opt_D.step()
    return G, D, opt_G, opt_D, z, x_real


def hand_unrolled_g_loss(G, D, opt_D, z, x_real, k, saddle=False):
    """The same loss written out: D's four tensors, its forward and Adam by hand."""
    w1, b1, w2, b2 = D[0].weight, D[0].bias, D[2].weight, D[2].bias
    theta = [w1, b1, w2, b2]
    state = [opt_D.state[p] for p in theta]
    m = [s["exp_avg"] for s in state]
    v = [s["exp_avg_sq"] for s in state]
    t0 = float(state[0]["step"])
    (lr, (beta1, beta2), eps) = (opt_D.param_groups[0][key] for key in ("lr", "betas", "eps"))

    def d(x, th):  # (B, 2) -> (B, 1)
        return torch.tanh(x @ th[0].T + th[1]) @ th[2].T + th[3]

    x_fake = G(z)
    for i in range(k):
        d_loss = (nn.functional.softplus(-d(x_real, theta)).mean()
                  + nn.functional.softplus(d(x_fake, theta)).mean())
        grads = torch.autograd.grad(d_loss, theta, create_graph=True)
        t = t0 + i + 1
        new = []
        for j, g in enumerate(grads):
            m[j] = beta1 * m[j] + (1 - beta1) * g
            v[j] = beta2 * v[j] + (1 - beta2) * g ** 2
            m_hat, v_hat = m[j] / (1 - beta1 ** t), v[j] / (1 - beta2 ** t)
            new.append(theta[j] - lr * m_hat / (v_hat.sqrt() + eps))
        theta = new
    if saddle:
        return -(nn.functional.softplus(-d(x_real, theta)).mean()
                 + nn.functional.softplus(d(x_fake, theta)).mean())
    return nn.functional.softplus(-d(x_fake, theta)).mean()


def g_grads(G, loss):
    return torch.autograd.grad(loss, list(G.parameters()))


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("objective", ["g_loss", "saddle"])
def test_the_unrolled_gradient_equals_a_hand_written_unroll(k, objective):
    G, D, opt_G, opt_D, z, x_real = tiny(dtype=torch.float64)
    ours = g_grads(G, unrolled_g_loss(D, opt_D, BCE, x_real, G(z), k, objective))
    hand = g_grads(G, hand_unrolled_g_loss(G, D, opt_D, z, x_real, k, objective == "saddle"))
    for a, b in zip(ours, hand):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_the_unrolled_parameters_are_what_torch_adam_reaches_in_k_steps():
    G, D, opt_G, opt_D, z, x_real = tiny()
    x_fake = G(z).detach()
    params = unrolled_parameters(D, opt_D, BCE, x_real, x_fake, 4)
    D2 = copy.deepcopy(D)
    opt_D2 = torch.optim.Adam(D2.parameters(), lr=0.05, betas=(0.8, 0.99), foreach=False)
    opt_D2.load_state_dict(opt_D.state_dict())  # the same moments and step count
    for _ in range(4):
        opt_D2.zero_grad()
        BCE.d_loss(D2(x_real), D2(x_fake)).backward()
        opt_D2.step()
    for (name, p), q in zip(D2.named_parameters(), params.values()):
        torch.testing.assert_close(q, p, rtol=1e-6, atol=1e-7, msg=name)


def test_k0_is_the_plain_non_saturating_g_step():
    G, D, opt_G, opt_D, z, x_real = tiny()
    G2 = copy.deepcopy(G)
    opt_G2 = torch.optim.Adam(G2.parameters(), lr=1e-3, betas=(0.5, 0.999))
    loss_a = unrolled_g_step(D, opt_G, opt_D, BCE, x_real, G(z), k=0)
    loss_b = g_step(D, opt_G2, BCE, G2(z))
    assert torch.equal(loss_a, loss_b)
    for a, b in zip(G.parameters(), G2.parameters()):
        assert torch.equal(a, b)


def test_gradients_flow_through_the_unrolled_steps():
    # k=5 differs from k=0, and from the gradient against D_5 held fixed (no flow through
    # the inner steps): the second-order term is really there
    G, D, opt_G, opt_D, z, x_real = tiny()
    k0 = g_grads(G, unrolled_g_loss(D, opt_D, BCE, x_real, G(z), 0))
    k5 = g_grads(G, unrolled_g_loss(D, opt_D, BCE, x_real, G(z), 5))
    fixed = {n: p.detach() for n, p in
             unrolled_parameters(D, opt_D, BCE, x_real, G(z), 5).items()}
    first_order = g_grads(G, BCE.g_loss(torch.func.functional_call(D, fixed, (G(z),))))
    for a, b, c in zip(k5, k0, first_order):
        assert (a - b).abs().max() > 1e-4 * b.abs().max()
        assert (a - c).abs().max() > 1e-4 * c.abs().max()


def test_the_unrolled_loss_passes_gradcheck():
    G, D, opt_G, opt_D, z, x_real = tiny(dtype=torch.float64)
    w, b = G.weight.detach().clone(), G.bias.detach().clone()

    def loss(w, b):
        return unrolled_g_loss(D, opt_D, BCE, x_real, z @ w.T + b, 2, "saddle")
    assert torch.autograd.gradcheck(loss, (w.requires_grad_(), b.requires_grad_()))


def test_the_g_step_leaves_d_and_its_optimizer_alone():
    G, D, opt_G, opt_D, z, x_real = tiny()
    opt_D.zero_grad(set_to_none=True)
    before = copy.deepcopy(D.state_dict()), copy.deepcopy(opt_D.state_dict())
    unrolled_g_step(D, opt_G, opt_D, BCE, x_real, G(z), k=3)
    assert all(torch.equal(a, b) for a, b in zip(before[0].values(), D.state_dict().values()))
    assert all(p.grad is None for p in D.parameters())
    after = opt_D.state_dict()["state"]
    for i, s in before[1]["state"].items():
        assert all(torch.equal(s[key], after[i][key]) for key in s)


def test_the_unroll_leaves_d_s_buffers_alone():
    # spectral norm's power-iteration vectors are buffers that every training-mode forward
    # updates: the unroll runs on its own copy of them
    G, D, opt_G, opt_D, z, x_real = tiny()
    D = spectral_norm(D)
    opt_D = torch.optim.Adam(D.parameters(), lr=0.05)
    before = {n: b.clone() for n, b in D.named_buffers()}
    assert before
    unrolled_g_step(D, opt_G, opt_D, BCE, x_real, G(z), k=2)
    assert all(torch.equal(b, before[n]) for n, b in D.named_buffers())


def test_sgd_inner_steps_are_plain_gradient_steps():
    G, D, _, _, z, x_real = tiny()
    opt_D = torch.optim.SGD(D.parameters(), lr=0.1)
    x_fake = G(z).detach()
    params = unrolled_parameters(D, opt_D, BCE, x_real, x_fake, 1)
    grads = torch.autograd.grad(BCE.d_loss(D(x_real), D(x_fake)), list(D.parameters()))
    for (name, p), g, q in zip(D.named_parameters(), grads, params.values()):
        torch.testing.assert_close(q, p - 0.1 * g, msg=name)


def test_adam_update_has_no_nan_gradient_where_a_gradient_entry_is_zero():
    p = torch.tensor([1.0, 2.0], requires_grad=True)
    grad = p * torch.tensor([0.0, 1.0])  # the first entry exactly 0 at Adam's first step
    new, _, _ = adam_update(p, grad, torch.zeros(2), torch.zeros(2), 0.0, 0.1, (0.5, 0.999), 1e-8)
    (g,) = torch.autograd.grad(new.sum(), p)
    assert torch.isfinite(g).all()
    assert math.isclose(new[1].item(), 2.0 - 0.1, rel_tol=1e-6)  # Adam's first step is lr


@pytest.mark.parametrize("k", [-1, 2.0, True, "5"])
def test_a_bad_k_is_refused_clearly(k):
    G, D, opt_G, opt_D, z, x_real = tiny()
    with pytest.raises(ValueError, match="integer >= 0"):
        unrolled_g_step(D, opt_G, opt_D, BCE, x_real, G(z), k)


def test_unsupported_settings_are_refused_clearly():
    G, D, opt_G, opt_D, z, x_real = tiny()
    with pytest.raises(ValueError, match="Adam or SGD"):
        unrolled_g_loss(D, torch.optim.RMSprop(D.parameters()), BCE, x_real, G(z), 1)
    with pytest.raises(ValueError, match="plain Adam and SGD"):
        unrolled_g_loss(D, torch.optim.SGD(D.parameters(), lr=0.1, momentum=0.9), BCE,
                        x_real, G(z), 1)
    with pytest.raises(ValueError, match="not supported"):
        unrolled_g_loss(D, opt_D, get_loss("wgan-gp"), x_real, G(z), 1)
    with pytest.raises(ValueError, match="unknown objective"):
        unrolled_g_loss(D, opt_D, BCE, x_real, G(z), 1, objective="minimax")
