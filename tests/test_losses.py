"""Losses against values computed by hand, their stability and gradients, the gradient
penalty, and get_loss."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ganlib import LOSSES, get_loss, gradient_penalty
from ganlib.losses import (bce_d_loss, bce_g_loss, hinge_d_loss, hinge_g_loss, lsgan_d_loss,
                           lsgan_g_loss, minimax_g_loss, wgan_d_loss, wgan_g_loss)

# Tiny logits, and the same numbers as plain Python floats for the hand computations.
REAL = [2.0, -1.0]
FAKE = [0.5, -3.0, 1.5]


def _t(values):
    return torch.tensor(values, dtype=torch.float64).unsqueeze(1)  # (B, 1) like D's output


def sigmoid(v):
    return 1.0 / (1.0 + math.exp(-v))


def mean(values):
    return sum(values) / len(values)


# ----------------------------------------------------------------------------- hand values

def test_bce_d_loss_by_hand():
    # -E[log D(x)] - E[log(1 - D(G(z)))] with D = sigmoid(logit)
    expected = (-mean([math.log(sigmoid(r)) for r in REAL])
                - mean([math.log(1 - sigmoid(f)) for f in FAKE]))
    assert bce_d_loss(_t(REAL), _t(FAKE)).item() == pytest.approx(expected, rel=1e-12)


def test_bce_g_loss_is_the_non_saturating_loss_by_hand():
    expected = -mean([math.log(sigmoid(f)) for f in FAKE])  # -E[log D(G(z))]
    assert bce_g_loss(_t(FAKE)).item() == pytest.approx(expected, rel=1e-12)


def test_minimax_g_loss_is_the_saturating_loss_by_hand():
    expected = mean([math.log(1 - sigmoid(f)) for f in FAKE])  # E[log(1 - D(G(z)))]
    assert minimax_g_loss(_t(FAKE)).item() == pytest.approx(expected, rel=1e-12)


def test_lsgan_losses_by_hand_with_default_targets():
    # a = 0 (fake), b = 1 (real), c = 1 (what G wants D to say)
    d = 0.5 * mean([(r - 1) ** 2 for r in REAL]) + 0.5 * mean([(f - 0) ** 2 for f in FAKE])
    g = 0.5 * mean([(f - 1) ** 2 for f in FAKE])
    assert lsgan_d_loss(_t(REAL), _t(FAKE)).item() == pytest.approx(d, rel=1e-12)
    assert lsgan_g_loss(_t(FAKE)).item() == pytest.approx(g, rel=1e-12)
    loss = get_loss("lsgan")
    assert loss.d_loss(_t(REAL), _t(FAKE)).item() == pytest.approx(d, rel=1e-12)
    assert loss.g_loss(_t(FAKE)).item() == pytest.approx(g, rel=1e-12)


def test_lsgan_losses_by_hand_with_custom_targets():
    a, b, c = -1.0, 1.0, 0.0  # the paper's other coding
    d = 0.5 * mean([(r - b) ** 2 for r in REAL]) + 0.5 * mean([(f - a) ** 2 for f in FAKE])
    g = 0.5 * mean([(f - c) ** 2 for f in FAKE])
    assert lsgan_d_loss(_t(REAL), _t(FAKE), a=a, b=b).item() == pytest.approx(d, rel=1e-12)
    assert lsgan_g_loss(_t(FAKE), c=c).item() == pytest.approx(g, rel=1e-12)
    loss = get_loss("lsgan", a, b, c)  # the targets pass through get_loss
    assert loss.d_loss(_t(REAL), _t(FAKE)).item() == pytest.approx(d, rel=1e-12)
    assert loss.g_loss(_t(FAKE)).item() == pytest.approx(g, rel=1e-12)


def test_hinge_losses_by_hand():
    d = mean([max(0.0, 1 - r) for r in REAL]) + mean([max(0.0, 1 + f) for f in FAKE])
    # REAL: max(0, -1) = 0, max(0, 2) = 2; FAKE: 1.5, 0, 2.5
    assert d == pytest.approx(1.0 + 4.0 / 3)
    assert hinge_d_loss(_t(REAL), _t(FAKE)).item() == pytest.approx(d, rel=1e-12)
    assert hinge_g_loss(_t(FAKE)).item() == pytest.approx(-mean(FAKE), rel=1e-12)


def test_wgan_losses_by_hand():
    d = mean(FAKE) - mean(REAL)  # E[D(G(z))] - E[D(x)]
    assert wgan_d_loss(_t(REAL), _t(FAKE)).item() == pytest.approx(d, rel=1e-12)
    assert wgan_g_loss(_t(FAKE)).item() == pytest.approx(-mean(FAKE), rel=1e-12)


# ----------------------------------------------------------------------------- stability

D_LOSSES = [bce_d_loss, lsgan_d_loss, hinge_d_loss, wgan_d_loss]
G_LOSSES = [bce_g_loss, minimax_g_loss, lsgan_g_loss, hinge_g_loss, wgan_g_loss]
# Only the objectives that take a log of a probability can overflow; LSGAN, hinge and WGAN
# are polynomials or piecewise linear in the logits, finite wherever the logits are.
LOG_D_LOSSES = [bce_d_loss]
LOG_G_LOSSES = [bce_g_loss, minimax_g_loss]


def _naive_bce_d_loss(real_logits, fake_logits):  # log of a sigmoid: what the test must catch
    return (-torch.log(torch.sigmoid(real_logits)).mean()
            - torch.log(1 - torch.sigmoid(fake_logits)).mean())


def _naive_bce_g_loss(fake_logits):
    return -torch.log(torch.sigmoid(fake_logits)).mean()


def _d_finite_at_huge_logits(d_loss) -> bool:
    for r, f in [(100.0, -100.0), (-100.0, 100.0), (1e4, 1e4)]:
        real = torch.full((4, 1), r, requires_grad=True)
        fake = torch.full((4, 1), f, requires_grad=True)
        value = d_loss(real, fake)
        value.backward()
        if not (torch.isfinite(value) and torch.isfinite(real.grad).all()
                and torch.isfinite(fake.grad).all()):
            return False
    return True


def _g_finite_at_huge_logits(g_loss) -> bool:
    for f in (100.0, -100.0):
        fake = torch.full((4, 1), f, requires_grad=True)
        value = g_loss(fake)
        value.backward()
        if not (torch.isfinite(value) and torch.isfinite(fake.grad).all()):
            return False
    return True


def test_the_finiteness_check_fails_for_a_naive_log_sigmoid():
    # float32 sigmoid(-100) underflows to 0, so log gives -inf: the check below can fail.
    assert not _d_finite_at_huge_logits(_naive_bce_d_loss)
    assert not _g_finite_at_huge_logits(_naive_bce_g_loss)


@pytest.mark.parametrize("d_loss", LOG_D_LOSSES, ids=lambda f: f.__name__)
def test_log_d_losses_are_finite_for_huge_logits(d_loss):
    assert _d_finite_at_huge_logits(d_loss)


@pytest.mark.parametrize("g_loss", LOG_G_LOSSES, ids=lambda f: f.__name__)
def test_log_g_losses_are_finite_for_huge_logits(g_loss):
    assert _g_finite_at_huge_logits(g_loss)


def test_bce_at_huge_logits_has_the_right_limits():
    # A naive log(sigmoid(-100)) in float32 is log(0) = -inf; the stable form gives 100.
    assert bce_d_loss(torch.full((2, 1), 100.0), torch.full((2, 1), -100.0)).item() < 1e-30
    assert bce_d_loss(torch.full((2, 1), -100.0), torch.full((2, 1), 100.0)).item() == \
        pytest.approx(200.0)
    assert bce_g_loss(torch.full((2, 1), -100.0)).item() == pytest.approx(100.0)
    assert minimax_g_loss(torch.full((2, 1), 100.0)).item() == pytest.approx(-100.0)


# ----------------------------------------------------------------------------- gradients

def _grad(g_loss, logit: float) -> float:
    l = torch.tensor([[logit]], dtype=torch.float64, requires_grad=True)
    g_loss(l).backward()
    return l.grad.item()


@pytest.mark.parametrize("logit", [-10.0, -5.0, -1.0, 0.0, 2.0])
def test_g_loss_gradients_match_the_analytic_forms(logit):
    # d/dl E[log(1 - sigmoid(l))] = -sigmoid(l);  d/dl -E[log sigmoid(l)] = -(1 - sigmoid(l))
    assert _grad(minimax_g_loss, logit) == pytest.approx(-sigmoid(logit), rel=1e-9)
    assert _grad(bce_g_loss, logit) == pytest.approx(-(1 - sigmoid(logit)), rel=1e-9)


def test_minimax_g_loss_saturates_when_d_rejects_the_fakes_and_bce_does_not():
    # D(G(z)) = sigmoid(-10) ~ 4.5e-5: D confidently says "fake".
    saturating, non_saturating = _grad(minimax_g_loss, -10.0), _grad(bce_g_loss, -10.0)
    assert abs(saturating) < 1e-4
    assert non_saturating == pytest.approx(-1.0, abs=1e-4)
    # ...and it gets worse the more confident D is: the saturating gradient tends to 0.
    grads = [abs(_grad(minimax_g_loss, l)) for l in (-2.0, -5.0, -10.0, -20.0)]
    assert grads == sorted(grads, reverse=True) and grads[-1] < 1e-8


# d loss / d logit, by hand, for each sample (the 1/B of the batch mean included).
A, B, C = -1.0, 1.0, 0.5  # LSGAN targets that are not the defaults, so mixing them up shows
D_GRADS = {  # name: (loss, d/d real_i, d/d fake_j)
    "bce": (bce_d_loss, lambda r: -(1 - sigmoid(r)), lambda f: sigmoid(f)),
    "lsgan": (lambda r, f: lsgan_d_loss(r, f, a=A, b=B), lambda r: r - B, lambda f: f - A),
    "hinge": (hinge_d_loss, lambda r: -1.0 if r < 1 else 0.0, lambda f: 1.0 if f > -1 else 0.0),
    "wgan": (wgan_d_loss, lambda r: -1.0, lambda f: 1.0),
}
G_GRADS = {
    "bce": (bce_g_loss, lambda f: -(1 - sigmoid(f))),
    "minimax": (minimax_g_loss, lambda f: -sigmoid(f)),
    "lsgan": (lambda f: lsgan_g_loss(f, c=C), lambda f: f - C),
    "hinge": (hinge_g_loss, lambda f: -1.0),
    "wgan": (wgan_g_loss, lambda f: -1.0),
}


@pytest.mark.parametrize("name", D_GRADS)
def test_d_loss_gradients_match_hand_derivatives(name):
    d_loss, d_real, d_fake = D_GRADS[name]
    real, fake = _t(REAL).requires_grad_(), _t(FAKE).requires_grad_()
    d_loss(real, fake).backward()
    assert real.grad.squeeze(1).tolist() == pytest.approx(
        [d_real(r) / len(REAL) for r in REAL], rel=1e-12, abs=1e-15)
    assert fake.grad.squeeze(1).tolist() == pytest.approx(
        [d_fake(f) / len(FAKE) for f in FAKE], rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("name", G_GRADS)
def test_g_loss_gradients_match_hand_derivatives(name):
    g_loss, d_fake = G_GRADS[name]
    fake = _t(FAKE).requires_grad_()
    g_loss(fake).backward()
    assert fake.grad.squeeze(1).tolist() == pytest.approx(
        [d_fake(f) / len(FAKE) for f in FAKE], rel=1e-12, abs=1e-15)


# ----------------------------------------------------------------------------- gradient penalty

def _linear_critic(w: torch.Tensor) -> nn.Module:
    D = nn.Sequential(nn.Flatten(), nn.Linear(w.numel(), 1)).double()
    with torch.no_grad():
        D[1].weight.copy_(w.view(1, -1))
        D[1].bias.fill_(0.3)
    return D


def test_gradient_penalty_is_zero_for_a_unit_norm_linear_critic():
    torch.manual_seed(0)
    w = torch.randn(12, dtype=torch.float64)
    D = _linear_critic(w / w.norm())  # grad_x D(x) = w, with ||w|| = 1 everywhere
    x_real = torch.randn(8, 3, 2, 2, dtype=torch.float64)
    x_fake = torch.randn(8, 3, 2, 2, dtype=torch.float64)
    assert gradient_penalty(D, x_real, x_fake).item() == pytest.approx(0.0, abs=1e-20)


@pytest.mark.parametrize("norm", [0.0, 0.5, 3.0])
def test_gradient_penalty_is_norm_minus_1_squared_for_a_linear_critic(norm):
    torch.manual_seed(1)
    w = torch.randn(12, dtype=torch.float64)
    D = _linear_critic(norm * w / w.norm())
    x_real = torch.randn(8, 12, dtype=torch.float64)
    x_fake = torch.randn(8, 12, dtype=torch.float64)
    assert gradient_penalty(D, x_real, x_fake).item() == pytest.approx((norm - 1) ** 2,
                                                                       rel=1e-12, abs=1e-12)


def test_gradient_penalty_trains_the_critic_not_the_generator():
    torch.manual_seed(2)
    w = torch.randn(6, dtype=torch.float64)
    D = _linear_critic(3.0 * w / w.norm())
    x_real = torch.randn(4, 6, dtype=torch.float64)
    x_fake = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    gradient_penalty(D, x_real, x_fake).backward()
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||; the fakes are detached inside.
    weight = D[1].weight.detach()
    torch.testing.assert_close(D[1].weight.grad, 2 * (3.0 - 1) * weight / weight.norm())
    assert x_fake.grad is None


def _nonlinear_critic() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.Tanh(), nn.Linear(6, 1)).double()


def _penalty_by_finite_differences(D, points: torch.Tensor, h: float = 1e-6) -> float:
    """(||grad_x D(x)|| - 1)^2 averaged over `points` (B, ...), the gradient by central
    differences: no autograd, so a wrong graph in gradient_penalty cannot hide."""
    flat = points.flatten(1)
    total = 0.0
    for x in flat:
        grad = []
        for k in range(len(x)):
            step = torch.zeros_like(x)
            step[k] = h
            up = D((x + step).view(1, *points.shape[1:])).item()
            down = D((x - step).view(1, *points.shape[1:])).item()
            grad.append((up - down) / (2 * h))
        total += (math.sqrt(sum(g * g for g in grad)) - 1) ** 2
    return total / len(flat)


def _fixed_eps(monkeypatch, eps: torch.Tensor):
    """Make gradient_penalty's interpolation weights `eps` (B,) instead of uniform draws."""
    rand = torch.rand

    def fake_rand(*size, **kw):
        shape = tuple(size[0]) if len(size) == 1 and not isinstance(size[0], int) else size
        if shape and shape[0] == len(eps) and math.prod(shape[1:]) == 1:
            return eps.view(shape).to(kw.get("dtype") or torch.float32)
        return rand(*size, **kw)

    monkeypatch.setattr(torch, "rand", fake_rand)


@pytest.mark.parametrize("shape", [(12,), (3, 2, 2)], ids=["flat", "images"])
def test_gradient_penalty_is_taken_at_the_interpolates_of_a_nonlinear_critic(shape, monkeypatch):
    # A tanh critic's gradient differs from point to point, so the penalty tells which points
    # it was taken at: x_hat = eps x_real + (1 - eps) x_fake, one eps per sample.
    D = _nonlinear_critic()
    g = torch.Generator().manual_seed(4)
    x_real = 2 * torch.randn(5, *shape, generator=g, dtype=torch.float64)
    x_fake = 2 * torch.randn(5, *shape, generator=g, dtype=torch.float64)
    eps = torch.tensor([0.0, 0.25, 0.5, 0.8, 1.0], dtype=torch.float64)
    _fixed_eps(monkeypatch, eps)
    e = eps.view(-1, *[1] * len(shape))
    x_hat = e * x_real + (1 - e) * x_fake
    want = _penalty_by_finite_differences(D, x_hat)
    assert gradient_penalty(D, x_real, x_fake).item() == pytest.approx(want, rel=1e-6)
    # The reference tells the right points from nearby wrong ones:
    for wrong in (x_real, x_fake, (1 - e) * x_real + e * x_fake):
        assert _penalty_by_finite_differences(D, wrong) != pytest.approx(want, rel=1e-3)


def test_gradient_penalty_draws_fresh_uniform_weights():
    # Without control, the weights are random draws: the penalty changes from call to call.
    D = _nonlinear_critic()
    g = torch.Generator().manual_seed(5)
    x_real = 2 * torch.randn(4, 12, generator=g, dtype=torch.float64)
    x_fake = 2 * torch.randn(4, 12, generator=g, dtype=torch.float64)
    values = {gradient_penalty(D, x_real, x_fake).item() for _ in range(5)}
    assert len(values) == 5


def test_gradient_penalty_gradient_reaches_the_critic_through_a_nonlinear_critic(monkeypatch):
    # The penalty is differentiable in D's weights (create_graph=True): its gradient with
    # respect to the last layer's weight matches finite differences of the penalty itself.
    D = _nonlinear_critic()
    g = torch.Generator().manual_seed(6)
    x_real = torch.randn(3, 12, generator=g, dtype=torch.float64)
    x_fake = torch.randn(3, 12, generator=g, dtype=torch.float64)
    _fixed_eps(monkeypatch, torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64))
    gradient_penalty(D, x_real, x_fake).backward()
    w = D[3].weight
    h, k = 1e-6, 2
    w.data[0, k] += h  # .data: a nudge outside autograd, the penalty itself needs a graph
    up = gradient_penalty(D, x_real, x_fake).item()
    w.data[0, k] -= 2 * h
    down = gradient_penalty(D, x_real, x_fake).item()
    w.data[0, k] += h
    assert w.grad[0, k].item() == pytest.approx((up - down) / (2 * h), rel=1e-5)


# ----------------------------------------------------------------------------- by name

def test_get_loss_names_each_objective():
    assert get_loss("minimax").g_loss is minimax_g_loss
    assert get_loss("minimax").d_loss is bce_d_loss
    assert get_loss("bce").g_loss is bce_g_loss
    assert get_loss("ns").name == "bce"  # "non-saturating" alias
    assert get_loss("hinge").d_loss is hinge_d_loss
    wgan = get_loss("wgan-gp")
    assert wgan.d_loss is wgan_d_loss and wgan.gradient_penalty
    assert not any(get_loss(n).gradient_penalty for n in LOSSES if n != "wgan-gp")
    assert [get_loss(n).name for n in LOSSES] == list(LOSSES)


def test_get_loss_unknown_name_lists_the_choices():
    with pytest.raises(ValueError, match="unknown loss 'wasserstein'") as err:
        get_loss("wasserstein")
    for name in LOSSES:
        assert name in str(err.value)
