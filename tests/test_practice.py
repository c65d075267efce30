"""Chapter 10's pieces against references: R1 against finite differences, one-sided label
smoothing by value, the EMA of G against a hand-computed average, and `train` using them."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import ganlib
from ganlib.ema import ema_model
from ganlib.losses import bce_d_loss, get_loss, r1_penalty


class Quadratic(nn.Module):
    """D(x) = sum_i a_i x_i^2 + b.x: its input gradient 2 a x + b is known in closed form."""

    def __init__(self, dim):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.a = nn.Parameter(torch.randn(dim, generator=g, dtype=torch.float64))
        self.b = nn.Parameter(torch.randn(dim, generator=g, dtype=torch.float64))

    def forward(self, x):
        return (self.a * x ** 2 + self.b * x).sum(1, keepdim=True)  # (B, dim) -> (B, 1)


def finite_difference_r1(D, x, h=1e-6):
    """E ||grad_x D(x)||^2 with the gradient from central differences, coordinate by coordinate."""
    grads = torch.zeros_like(x)
    with torch.no_grad():
        for i in range(x.shape[1]):
            e = torch.zeros_like(x)
            e[:, i] = h
            grads[:, i] = (D(x + e) - D(x - e))[:, 0] / (2 * h)
    return grads.pow(2).sum(1).mean()


@pytest.mark.parametrize("make_D", [
    lambda: Quadratic(3),
    lambda: nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1)).double(),
])
def test_r1_penalty_matches_finite_differences(make_D):
    torch.manual_seed(1)
    D = make_D()
    x = torch.randn(5, 3, dtype=torch.float64)
    assert torch.allclose(r1_penalty(D, x), finite_difference_r1(D, x), rtol=1e-6, atol=1e-8)


def test_r1_penalty_closed_form_and_gradient_reaches_d():
    D = Quadratic(2)
    x = torch.tensor([[1.0, -2.0], [0.5, 0.0]], dtype=torch.float64)
    want = ((2 * D.a * x + D.b) ** 2).sum(1).mean()  # grad_x D = 2 a x + b
    got = r1_penalty(D, x)
    assert torch.allclose(got, want)
    got.backward()  # create_graph: the penalty trains D's parameters
    (ga, gb) = torch.autograd.grad(want, (D.a, D.b))
    assert torch.allclose(D.a.grad, ga) and torch.allclose(D.b.grad, gb)


def test_r1_penalty_on_the_dirac_gan_is_psi_squared():
    D = nn.Linear(1, 1, bias=False)  # D(x) = psi x
    with torch.no_grad():
        D.weight.fill_(-0.7)
    assert math.isclose(r1_penalty(D, torch.zeros(4, 1)).item(), 0.49, rel_tol=1e-6)


def test_one_sided_label_smoothing_by_value():
    real = torch.tensor([[0.0], [2.0]])
    fake = torch.tensor([[-1.0], [3.0]])
    sp = lambda t: math.log1p(math.exp(t))  # softplus
    # real targets 0.9: -(0.9 log s(l) + 0.1 log(1 - s(l))); fakes still target 0
    want = (0.9 * (sp(0.0) + sp(-2.0)) / 2 + 0.1 * (sp(0.0) + sp(2.0)) / 2
            + (sp(-1.0) + sp(3.0)) / 2)
    assert math.isclose(bce_d_loss(real, fake, real_label=0.9).item(), want, rel_tol=1e-6)
    loss = get_loss("bce", real_label=0.9)
    assert math.isclose(loss.d_loss(real, fake).item(), want, rel_tol=1e-6)
    assert torch.equal(loss.g_loss(fake), get_loss("bce").g_loss(fake))  # G's loss unchanged
    assert torch.equal(bce_d_loss(real, fake, real_label=1.0), bce_d_loss(real, fake))


def test_smoothed_optimum_is_the_target():
    # the smoothed loss of a single real logit is smallest where sigmoid(logit) = 0.9
    logit = torch.zeros(1, 1, requires_grad=True)
    opt = torch.optim.LBFGS([logit], max_iter=100)

    def closure():
        opt.zero_grad()
        v = bce_d_loss(logit, torch.full((1, 1), -1e4), real_label=0.9)
        v.backward()
        return v
    opt.step(closure)
    assert math.isclose(torch.sigmoid(logit).item(), 0.9, abs_tol=1e-4)


def test_label_smoothing_refuses_non_bce_losses():
    with pytest.raises(ValueError, match="label smoothing"):
        get_loss("lsgan", real_label=0.9)


def test_ema_model_matches_a_hand_computed_average():
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    decay = 0.9
    ema = ema_model(G, decay)
    want = {k: v.detach().clone().float() for k, v in G.state_dict().items()
            if v.dtype.is_floating_point}
    for _ in range(3):
        with torch.no_grad():
            for p in G.parameters():
                p.add_(torch.randn_like(p))
        G(torch.randn(8, 2))  # changes BatchNorm's running statistics
        ema.update_parameters(G)
        for k, v in G.state_dict().items():
            if k in want:
                want[k] = decay * want[k] + (1 - decay) * v.float()
    got = ema.module.state_dict()
    for k, v in want.items():
        assert torch.allclose(got[k], v, atol=1e-6), k
    z = torch.randn(4, 2)
    assert torch.allclose(ema(z), ema.module(z))


def test_ema_model_rejects_a_bad_decay():
    with pytest.raises(ValueError, match="decay"):
        ema_model(nn.Linear(1, 1), 1.0)


def ring_run(tmp_path=None, steps=6, **kw):
    G = ganlib.toy_models.ToyGenerator(hidden=16, depth=1)
    D = ganlib.toy_models.ToyDiscriminator(hidden=16, depth=1, pieces=2)
    cfg = ganlib.TrainConfig(batch_size=32, num_steps=steps, progress=False, sample_every=0,
                             seed=0, lr_g=1e-3, lr_d=1e-3, log_every=1,
                             out_dir=str(tmp_path) if tmp_path else None, **kw)
    return G, D, cfg


def test_train_adds_r1_and_label_smoothing_to_d_loss():
    data = ganlib.ring_of_gaussians(256).x
    ganlib.seed_everything(0)
    G, D, cfg = ring_run(steps=1)
    plain = ganlib.train(G, D, data, cfg)
    for kw in ({"r1_weight": 10.0}, {"label_smoothing": 0.1}):
        ganlib.seed_everything(0)
        G, D, cfg = ring_run(steps=1, **kw)
        h = ganlib.train(G, D, data, cfg)
        assert h["d_loss"][0] > plain["d_loss"][0], kw  # both add a positive term at step 1


def test_train_updates_and_resumes_the_ema(tmp_path):
    data = ganlib.ring_of_gaussians(256).x
    ganlib.seed_everything(0)
    G, D, cfg = ring_run(tmp_path / "a", steps=4)
    ema = ema_model(G, 0.5)
    ganlib.train(G, D, data, cfg, G_ema=ema)
    assert int(ema.n_averaged) == 5  # the copy at creation and one update per G step
    for p_ema, p in zip(ema.module.parameters(), G.parameters()):
        assert not torch.equal(p_ema, p)  # an average, not the last iterate
    # 2 + 2 steps with a resume give the same average as 4 in one go
    ganlib.seed_everything(0)
    G2, D2, cfg2 = ring_run(tmp_path / "b", steps=2)
    ema2 = ema_model(G2, 0.5)
    ganlib.train(G2, D2, data, cfg2, G_ema=ema2)
    ganlib.seed_everything(0)
    G3, D3, cfg3 = ring_run(tmp_path / "b", steps=4)
    ema3 = ema_model(G3, 0.5)
    ganlib.train(G3, D3, data, cfg3, resume=True, G_ema=ema3)
    for a, b in zip(ema.module.state_dict().values(), ema3.module.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6)
