"""The batched ensemble of toy GANs (ganlib.ensemble) against separately trained ganlib
models, the minibatch-stddev layer, and train_toy_ensemble's public result."""
from __future__ import annotations

import math

import pytest
import torch

from ganlib.ensemble import (EnsembleDiscriminator, EnsembleGenerator, build_ensemble,
                             ensemble_step, mixture_data, pacgan_init, point_recall, summarize,
                             train_toy_ensemble, trial_models, trial_seeds)
from ganlib.losses import get_loss
from ganlib.mode_metrics import mixture_metrics
from ganlib.models import MinibatchStdDev, Packed, ToyDiscriminator, ToyGenerator
from ganlib.train import d_step, g_step, make_adam


def _singles(T, pack, minibatch_std, init_std, seed=0):
    """T separately built ganlib models with the ensemble's per-trial initialisation."""
    pairs = []
    for s in trial_seeds(seed, T):
        torch.manual_seed(s)
        G, D = ToyGenerator(), ToyDiscriminator(2 * pack, minibatch_std=minibatch_std)
        if init_std is not None:
            pacgan_init(G, init_std)
            pacgan_init(D, init_std)
        pairs.append((G, Packed(D, pack) if pack > 1 else D))
    return pairs


def _params(G, D):
    """A single pair's parameters in the ensemble's layout: G's weights (d_in, d_out) and
    biases, then D's."""
    g_lin = [m for m in G.net if isinstance(m, torch.nn.Linear)]
    d_lin = [m.linear if hasattr(m, "linear") else m for m in D.modules()
             if hasattr(m, "linear") or (isinstance(m, torch.nn.Linear) and m.out_features == 1)]
    return ([m.weight.T for m in g_lin], [m.bias for m in g_lin],
            [m.weight.T for m in d_lin], [m.bias for m in d_lin])


@pytest.mark.parametrize("opt, loss_name, pack, mbstd, init_std", [
    ("sgd", "bce", 1, 0, None), ("sgd", "lsgan", 2, 0, 0.02), ("sgd", "bce", 2, 3, None),
    ("adam", "bce", 3, 0, 0.02)])
def test_ensemble_matches_separately_trained_models(opt, loss_name, pack, mbstd, init_std):
    # Same initial weights, same batches: T trials trained as one batched model end where T
    # ganlib models trained with d_step/g_step end. SGD in float32 is exact to rounding.
    # Adam divides by each gradient's own size, which turns rounding noise in near-zero
    # gradients (e.g. biases before BatchNorm) into steps of size lr, so it runs in float64.
    dtype = torch.float64 if opt == "adam" else torch.float32
    T, B, steps = 3, 12, 4
    with torch.random.fork_rng():
        torch.set_default_dtype(dtype)
        try:
            G, D = build_ensemble(T, pack, mbstd, seed=0, init_std=init_std)
            singles = _singles(T, pack, mbstd, init_std)
        finally:
            torch.set_default_dtype(torch.float32)
    make = ((lambda m: torch.optim.SGD(m.parameters(), lr=0.01)) if opt == "sgd"
            else (lambda m: make_adam(m, 1e-3, (0.8, 0.999))))
    opt_G, opt_D = make(G), make(D)
    opts = [(make(g), make(d)) for g, d in singles]
    loss = get_loss(loss_name)
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x_real = torch.randn(T, B, 2, generator=gen, dtype=dtype)
        z = torch.randn(T, B, 2, generator=gen, dtype=dtype)
        d_losses, g_losses = ensemble_step(G, D, opt_G, opt_D, loss, x_real, z)
        for t, ((g, d), (og, od)) in enumerate(zip(singles, opts)):
            x_fake = g(z[t])
            d_loss, _, _ = d_step(d, od, loss, x_real[t], x_fake.detach())
            g_loss = g_step(d, og, loss, x_fake)
            assert math.isclose(d_loss.item(), d_losses[t].item(), rel_tol=1e-5)
            assert math.isclose(g_loss.item(), g_losses[t].item(), rel_tol=1e-5)
    atol = 1e-5 if opt == "sgd" else 1e-4  # ganlib's step computes its losses in float32
    for t, (g, d) in enumerate(singles):
        gw, gb, dw, db = _params(g, d)
        for mine, theirs in zip([*G.weights, *G.biases, *D.weights, *D.biases], [*gw, *gb, *dw, *db]):
            assert torch.allclose(mine[t].squeeze(), theirs.squeeze().to(dtype), atol=atol)
        for i, bn in enumerate(m for m in g.net if isinstance(m, torch.nn.BatchNorm1d)):
            assert torch.allclose(getattr(G, f"running_var{i}")[t, 0], bn.running_var, atol=atol)
            assert torch.allclose(G.gammas[i][t, 0], bn.weight, atol=atol)
    G.eval()
    for g, _ in singles:
        g.eval()
    z = torch.randn(T, 24, 2, generator=gen, dtype=dtype)
    x = G(z)  # (T, 24, 2)
    for t, (g, d) in enumerate(singles):
        assert torch.allclose(x[t], g(z[t]), atol=10 * atol)
        assert torch.allclose(D(x)[t], d(x[t]), atol=10 * atol)


def test_pacgan_init_and_trial_models():
    G, D = trial_models(seed=5, pack=2)
    w = torch.cat([m.weight.flatten() for m in D.modules() if isinstance(m, torch.nn.Linear)])
    assert abs(w.std().item() - 0.02) < 0.002  # N(0, 0.02) as in PacGAN's code
    assert all(m.bias.abs().max() == 0 for m in G.modules() if isinstance(m, torch.nn.Linear))
    assert D.net[0].linear.in_features == 4  # two packed points
    G2, _ = trial_models(seed=5, pack=2)
    assert torch.equal(G.net[0].weight, G2.net[0].weight)  # same seed, same weights
    G3, _ = trial_models(seed=5, init_std=None)  # PyTorch's default: larger, uniform
    assert G3.net[0].weight.abs().max() > 0.1 and G3.net[0].bias.abs().max() > 0


def test_ensemble_shapes_and_packing():
    G, D = build_ensemble(4, pack=3, seed=1)
    assert isinstance(G, EnsembleGenerator) and isinstance(D, EnsembleDiscriminator)
    x = G(torch.randn(4, 30, 2))
    assert x.shape == (4, 30, 2)
    assert D(x).shape == (4, 10, 1)  # 30 points packed 3 at a time
    # trials are initialised differently
    assert not torch.allclose(G.weights[0][0], G.weights[0][1])


def test_minibatch_stddev_values():
    x = torch.tensor([[0.0, 2.0], [2.0, 2.0], [1.0, 1.0], [1.0, 1.0]])  # (4, 2)
    y = MinibatchStdDev(group_size=2)(x)
    assert y.shape == (4, 3)
    # group 1: stds (1, 0) -> mean 0.5; group 2: identical rows -> 0 (up to the 1e-8 guard)
    assert torch.allclose(y[:, 2], torch.tensor([0.5, 0.5, 0.0, 0.0]), atol=1e-3)
    assert torch.equal(y[:, :2], x)
    whole = MinibatchStdDev(group_size=0)(x)
    assert torch.allclose(whole[:, 2], x.std(0, unbiased=False).mean().expand(4))
    with pytest.raises(ValueError, match="multiple of the minibatch-std group size"):
        MinibatchStdDev(group_size=3)(x)


def test_toy_discriminator_with_minibatch_stddev_sees_collapse():
    torch.manual_seed(0)
    D = ToyDiscriminator(minibatch_std=4)
    assert any(isinstance(m, MinibatchStdDev) for m in D.modules())
    assert D(torch.randn(8, 2)).shape == (8, 1)
    # the feature D receives is 0 on a fully collapsed batch and > 0 on a spread one
    feats = D.net[:-1]
    assert feats(torch.ones(8, 2))[:, -1].abs().max() < 1e-3
    assert feats(torch.randn(8, 2))[:, -1].min() > 1e-3


def test_mixture_data_per_trial():
    data = mixture_data("grid", trials=3, n=500, seed=0)
    assert data.shape == (3, 500, 2)
    assert not torch.equal(data[0], data[1])
    assert mixture_metrics(data[0], "grid")["modes"] == 25
    assert torch.equal(data[:2], mixture_data("grid", trials=2, n=500, seed=0))


def test_point_recall_and_summary():
    ring = mixture_data("ring", 1, 2500, seed=0)[0]
    half = ring[ring[:, 0] > 0.1]  # only the modes on the right
    assert point_recall(ring, ring) == 1.0
    assert 0.2 < point_recall(ring, half) < 0.5
    s = summarize([{"modes": 6, "high_quality_pct": 90.0, "reverse_kl": 0.5},
                   {"modes": 8, "high_quality_pct": 100.0, "reverse_kl": 0.1}])
    assert s["modes"] == {"mean": 7.0, "se": pytest.approx(1.0)}  # std sqrt(2) / sqrt(2)


def test_train_toy_ensemble_result():
    r = train_toy_ensemble(kind="ring", trials=2, loss="bce", pack=3, steps=6, batch_size=10,
                           lr=1e-3, seed=0, device="cpu", progress=False, num_samples=200,
                           dataset_size=100, log_every=2, snapshot_steps=(3,),
                           eval_steps=(2, 6))
    assert r["samples"].shape == (2, 200, 2) and r["samples"].device.type == "cpu"
    assert len(r["metrics"]) == 2
    assert set(r["metrics"][0]) >= {"modes", "high_quality_pct", "reverse_kl", "recall"}
    assert set(r["summary"]) == {"modes", "high_quality_pct", "reverse_kl", "recall"}
    assert r["history"]["step"] == [2, 4, 6]
    assert len(r["history"]["d_loss"][0]) == 2
    assert r["snapshots"][3].shape == (2, 500, 2)
    assert sorted(r["evals"]) == [2, 6] and r["evals"][6] == r["metrics"]
    assert r["seconds"] > 0
    again = train_toy_ensemble(kind="ring", trials=2, pack=3, steps=6, batch_size=10, lr=1e-3,
                               device="cpu", progress=False, num_samples=200, dataset_size=100)
    assert torch.equal(r["samples"], again["samples"])  # same seed, same result
    with pytest.raises(ValueError, match="more than dataset_size"):
        train_toy_ensemble(pack=3, batch_size=100, steps=1, dataset_size=200, progress=False)
    with pytest.raises(ValueError, match="minibatch-std group size"):
        train_toy_ensemble(minibatch_std=3, batch_size=100, steps=1, progress=False)
