"""Keeping the critic Lipschitz (chapter 8): weight clipping, spectral normalisation against
exact singular values, the BatchNorm warning, the "wgan" loss in training, and the gradient
penalty against finite differences."""
from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import ganlib
from ganlib import get_loss, gradient_penalty
from ganlib.lipschitz import (check_critic, clip_weights, has_batch_norm,
                              input_gradient_norms, largest_singular_values, spectral_norm,
                              without_batch_norm)
from ganlib.losses import wgan_d_loss, wgan_g_loss
from ganlib.dcgan import DCGANDiscriminator
from ganlib.optim import make_adam
from ganlib.toy_models import ToyDiscriminator, ToyGenerator
from ganlib.training import TrainConfig, d_step, train


def small_critic(seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 8), nn.Softplus(),
                         nn.Linear(8, 1)).to(dtype)


# ----------------------------------------------------------------------------- clipping

def test_clip_weights_clamps_every_parameter_and_leaves_small_ones_alone():
    D = small_critic()
    before = [p.detach().clone() for p in D.parameters()]
    clip_weights(D, 0.05)
    for old, new in zip(before, D.parameters()):
        torch.testing.assert_close(new.detach(), old.clamp(-0.05, 0.05))
    assert any((old.abs() > 0.05).any() for old in before)  # the test clipped something
    with pytest.raises(ValueError, match="positive"):
        clip_weights(D, 0.0)


def test_get_loss_wgan_clips_and_wgan_gp_penalises():
    wgan, gp = get_loss("wgan"), get_loss("wgan-gp")
    assert wgan.d_loss is wgan_d_loss and wgan.g_loss is wgan_g_loss
    assert wgan.weight_clipping and not wgan.gradient_penalty
    assert gp.gradient_penalty and not gp.weight_clipping
    assert not any(get_loss(n).weight_clipping for n in ganlib.LOSSES if n != "wgan")


def test_d_step_with_wgan_clips_after_the_step_and_other_losses_do_not():
    torch.manual_seed(0)
    x_real, x_fake = torch.randn(16, 2), torch.randn(16, 2) + 1
    for name, clipped in (("wgan", True), ("wgan-gp", False)):
        D = ToyDiscriminator(hidden=8, depth=2)
        opt = make_adam(D, 1e-3, (0.0, 0.9))
        d_step(D, opt, get_loss(name), x_real, x_fake, clip_value=2 ** -8)  # exact in float32
        biggest = max(p.abs().max().item() for p in D.parameters())
        assert (biggest <= 2 ** -8) == clipped, (name, biggest)


def test_train_with_wgan_keeps_every_weight_within_clip_value():
    torch.manual_seed(0)
    G, D = ToyGenerator(hidden=16, depth=2), ToyDiscriminator(hidden=16, depth=2)
    data = ganlib.ring_of_gaussians(512)
    cfg = TrainConfig(loss="wgan", clip_value=0.02, n_critic=2, num_steps=3, batch_size=64,
                      lr_d=1e-3, betas=(0.0, 0.9), device="cpu", progress=False)
    history = train(G, D, data, cfg)
    assert len(history["step"]) == 3
    assert max(p.abs().max().item() for p in D.parameters()) == pytest.approx(0.02)


# ----------------------------------------------------------------------------- spectral norm

def test_spectral_norm_makes_each_layers_largest_singular_value_near_1():
    torch.manual_seed(0)
    D = nn.Sequential(nn.Conv2d(1, 8, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(8, 16, 4, 2, 1),
                      nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(16 * 7 * 7, 1))
    with torch.no_grad():
        for m in D:
            if hasattr(m, "weight"):
                m.weight.mul_(5.0)  # far from 1 before normalising
    before = largest_singular_values(D)
    assert min(before) > 2
    spectral_norm(D)
    assert all(torch.nn.utils.parametrize.is_parametrized(m, "weight")
               for m in D if isinstance(m, (nn.Conv2d, nn.Linear)))
    x = torch.randn(8, 1, 28, 28)
    for _ in range(30):  # power iterations: one per forward pass in training mode
        D(x)
    D.eval()
    after = largest_singular_values(D)  # exact, by SVD of the normalised weights
    assert after == pytest.approx([1.0] * 3, abs=2e-3)


def test_spectral_norm_reaches_every_linear_layer_inside_maxout_and_is_idempotent():
    D = spectral_norm(ToyDiscriminator(hidden=8, depth=2))
    layers = [m for m in D.modules() if isinstance(m, nn.Linear)]
    assert len(layers) == 3
    assert all(torch.nn.utils.parametrize.is_parametrized(m, "weight") for m in layers)
    spectral_norm(D)  # a second call must not stack a second normalisation
    assert all(len(m.parametrizations.weight) == 1 for m in layers)


def test_a_spectrally_normalised_mlp_is_1_lipschitz():
    torch.manual_seed(1)
    D = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                      nn.Linear(64, 1))
    with torch.no_grad():
        for m in D:
            if isinstance(m, nn.Linear):
                m.weight.mul_(10.0)
    x = torch.randn(512, 2)
    assert input_gradient_norms(D, x).max() > 1.5
    spectral_norm(D)
    for _ in range(50):
        D(x)
    D.eval()
    assert input_gradient_norms(D, x).max() <= 1.0 + 1e-3


# ----------------------------------------------------------------------------- BatchNorm check

def test_check_critic_warns_for_a_batchnorm_critic_with_a_gradient_penalty_only():
    D_bn = DCGANDiscriminator(channels=1, image_size=28, width=8)
    assert has_batch_norm(D_bn)
    with pytest.warns(UserWarning, match="BatchNorm"):
        check_critic(D_bn, get_loss("wgan-gp"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_critic(D_bn, get_loss("wgan"))     # no penalty: no warning
        check_critic(D_bn, get_loss("bce"))
        D = without_batch_norm(DCGANDiscriminator(channels=1, image_size=28, width=8))
        assert not has_batch_norm(D)
        check_critic(D, get_loss("wgan-gp"))     # no BatchNorm: no warning
        assert D(torch.randn(2, 1, 28, 28)).shape == (2, 1)


def test_train_warns_when_wgan_gp_meets_a_batchnorm_critic():
    G, D = ganlib.build_models("dcgan", image_shape=(1, 28, 28))
    data = torch.rand(8, 1, 28, 28) * 2 - 1
    cfg = TrainConfig(loss="wgan-gp", num_steps=1, batch_size=4, device="cpu", progress=False)
    with pytest.warns(UserWarning, match="gradient penalty"):
        train(G, D, data, cfg)


# ----------------------------------------------------------------------------- gradient penalty

def _eps_as_drawn(seed, x_real):
    """The interpolation weights gradient_penalty draws right after `manual_seed(seed)`."""
    torch.manual_seed(seed)
    return torch.rand(x_real.shape[0], *([1] * (x_real.dim() - 1)))


def _finite_difference_penalty(D, x_real, x_fake, eps, h=1e-6):
    """E[(||grad_x D(x_hat)|| - 1)^2] with the gradient by central differences."""
    x_hat = eps * x_real + (1 - eps) * x_fake  # (B, d)
    grad = torch.zeros_like(x_hat)
    with torch.no_grad():
        for j in range(x_hat.shape[1]):
            e = torch.zeros_like(x_hat)
            e[:, j] = h
            grad[:, j] = (D(x_hat + e) - D(x_hat - e)).squeeze(1) / (2 * h)
    return ((grad.norm(dim=1) - 1) ** 2).mean()


def test_gradient_penalty_matches_a_finite_difference_estimate():
    D = small_critic()
    g = torch.Generator().manual_seed(3)
    x_real = torch.randn(6, 3, generator=g, dtype=torch.float64)
    x_fake = 2 + torch.randn(6, 3, generator=g, dtype=torch.float64)
    torch.manual_seed(7)
    penalty = gradient_penalty(D, x_real, x_fake).item()
    eps = _eps_as_drawn(7, x_real).double()
    expected = _finite_difference_penalty(D, x_real, x_fake, eps).item()
    assert penalty == pytest.approx(expected, rel=1e-7)
    assert penalty > 1e-3  # not trivially 0


def test_gradient_penalty_weight_gradient_matches_finite_differences():
    # d(penalty)/d(weights) needs a double backward (create_graph=True); compare one
    # weight matrix's gradient with central differences of the penalty itself.
    D = small_critic(seed=4)
    g = torch.Generator().manual_seed(5)
    x_real = torch.randn(5, 3, generator=g, dtype=torch.float64)
    x_fake = torch.randn(5, 3, generator=g, dtype=torch.float64) - 1
    torch.manual_seed(11)
    gradient_penalty(D, x_real, x_fake).backward()
    W = D[2].weight
    analytic = W.grad.clone()
    numeric, h = torch.zeros_like(W), 1e-6
    for idx in [(0, 0), (3, 7), (7, 15), (5, 2)]:
        vals = []
        for sign in (1, -1):
            with torch.no_grad():
                W[idx] += sign * h
            torch.manual_seed(11)  # the same interpolates
            vals.append(gradient_penalty(D, x_real, x_fake).item())
            with torch.no_grad():
                W[idx] -= sign * h
        numeric[idx] = (vals[0] - vals[1]) / (2 * h)
        assert analytic[idx].item() == pytest.approx(numeric[idx].item(), rel=1e-5, abs=1e-9)
    assert analytic.abs().max() > 1e-4


def test_input_gradient_norms_of_a_linear_critic_are_its_weight_norm():
    D = nn.Sequential(nn.Linear(4, 1)).double()
    with torch.no_grad():
        D[0].weight.copy_(torch.tensor([[3.0, 0.0, 4.0, 0.0]]))
    norms = input_gradient_norms(D, torch.randn(10, 4, dtype=torch.float64))
    torch.testing.assert_close(norms, torch.full((10,), 5.0, dtype=torch.float64))
    assert D[0].weight.grad is None  # D's own gradients untouched
