"""The batched ensemble of toy GANs (ganlib.ensemble, on torch.func) against separately
trained models written the plain way, PacGAN's BatchNorm and data, exact resume, the
minibatch-stddev layer, and train_toy_ensemble's public result."""
from __future__ import annotations

import math

import pytest
import torch

from ganlib.checkpoint import CheckpointError
from ganlib.ensemble import train_toy_ensemble
from ganlib.trials import Trials, build_ensemble, trial_models, trial_seeds
from ganlib.losses import get_loss
from ganlib.mixtures import mixture, reference_points, sample_mixture, trial_data
from ganlib.mode_metrics import mixture_metrics, point_recall, summarize
from ganlib.models import Packed
from ganlib.toy_models import (MinibatchStdDev, PacGANBatchNorm, ToyDiscriminator,
                               ToyGenerator)
from ganlib.optim import make_adam
from trials_check import train_side_by_side  # tests/


def _singles(T, pack, mbstd, init_std, batchnorm="torch", seed=0):
    """T separately built models with the ensemble's per-trial initialisation."""
    return [(G, Packed(D, pack)) for G, D in
            (trial_models(s, pack, mbstd, init_std, batchnorm) for s in trial_seeds(seed, T))]


def _assert_same(G, D, singles, atol):
    """Every parameter and buffer of trial t equals the t-th single model's."""
    for t, (g, d) in enumerate(singles):
        for ens, single in ((G, g), (D, d)):
            theirs = single.state_dict()
            for name, value in ens.trial(t).state_dict().items():
                assert torch.allclose(value.double(), theirs[name].double(), atol=atol), name


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
    torch.set_default_dtype(dtype)
    try:
        G, D = build_ensemble(T, pack, mbstd, seed=0, init_std=init_std)
        singles = _singles(T, pack, mbstd, init_std)
    finally:
        torch.set_default_dtype(torch.float32)
    assert isinstance(G, Trials) and G.net.__class__ is ToyGenerator  # one definition
    _assert_same(G, D, singles, atol=0)  # the same start
    make = ((lambda m: torch.optim.SGD(m.parameters(), lr=0.01)) if opt == "sgd"
            else (lambda m: make_adam(m, 1e-3, (0.8, 0.999))))
    gen = torch.Generator().manual_seed(1)
    draw = lambda: (torch.randn(T, B, 2, generator=gen, dtype=dtype),  # x_real, z
                    torch.randn(T, B, 2, generator=gen, dtype=dtype))
    train_side_by_side(G, D, singles, make, get_loss(loss_name), draw, steps)
    atol = 1e-5 if opt == "sgd" else 1e-4  # ganlib's step computes its losses in float32
    _assert_same(G, D, singles, atol)  # weights, BatchNorm running statistics, step counts
    G.eval()
    z = torch.randn(T, 24, 2, generator=gen, dtype=dtype)
    x = G(z)  # (T, 24, 2)
    for t, (g, d) in enumerate(singles):
        assert torch.allclose(x[t], g.eval()(z[t]), atol=10 * atol)
        assert torch.allclose(D(x)[t], d(x[t]), atol=10 * atol)


def _plain_pacgan_run(kind, T, m, steps, batch, N, lr, seed):
    """PacGAN's protocol for each trial on its own, written out: the tuples, the shuffles and
    the noise drawn as train_toy_ensemble draws them (for all trials, then trial t's
    slice), BCE, both gradients at the same parameters, then both Adam steps."""
    seeds = trial_seeds(seed, T)
    gen = torch.Generator().manual_seed(seed)
    torch.randn(T, 500, 2, generator=gen)  # the snapshot noise
    z_eval = torch.randn(T, 200, 2, generator=gen)
    nets = [trial_models(s, m, init_std=None, batchnorm="pacgan") for s in seeds]  # D unpacked
    opts = [(torch.optim.Adam(G.parameters(), lr, betas=(0.8, 0.999)),
             torch.optim.Adam(D.parameters(), lr, betas=(0.8, 0.999))) for G, D in nets]
    means, std = mixture(kind)
    data = []
    for s in seeds:  # n points, then m resamples of them as the tuples' slots
        g = torch.Generator().manual_seed(s)
        x, _ = sample_mixture(means, N, std, g)
        data.append(torch.stack([x[torch.randint(N, (N,), generator=g)] for _ in range(m)], 1))
    for step in range(steps):
        if step % (N // batch) == 0:
            order = torch.rand(T, N, generator=gen).argsort(1)
        j = step % (N // batch) * batch
        z = torch.randn(T, batch * m, 2, generator=gen)
        for t, ((G, D), (opt_G, opt_D)) in enumerate(zip(nets, opts)):
            x_real = data[t][order[t, j:j + batch]].reshape(batch, 2 * m)  # (B, 2m) tuples
            x_fake = G(z[t]).reshape(batch, 2 * m)  # rows t m .. t m + m - 1: one tuple
            real, fake = D(x_real), D(x_fake)
            d_loss = torch.nn.functional.softplus(-real).mean() + torch.nn.functional.softplus(fake).mean()
            g_loss = torch.nn.functional.softplus(-fake).mean()
            grads_D = torch.autograd.grad(d_loss, list(D.parameters()), retain_graph=True)
            grads_G = torch.autograd.grad(g_loss, list(G.parameters()))
            for p, grad in zip([*D.parameters(), *G.parameters()], [*grads_D, *grads_G]):
                p.grad = grad
            opt_D.step()
            opt_G.step()
    with torch.no_grad():
        return [G.eval()(z_eval[t]) for t, (G, _) in enumerate(nets)], nets


@pytest.fixture
def float64():
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def test_pacgan_protocol_matches_a_plain_loop(float64):
    # simultaneous updates, PacGAN's BatchNorm per packing slot, fixed real tuples: T trials
    # in train_toy_ensemble end where T plain loops end. With PyTorch's initialisation and
    # in float64: at PacGAN's N(0, 0.02) weights G starts with every z on nearly one point,
    # so D's gradient is the same for every sample, BatchNorm's backward cancels it to
    # rounding noise, and Adam turns that noise into steps of size lr (in any precision).
    kw = dict(kind="grid", trials=2, pack=3, steps=7, batch_size=10, dataset_size=30,
              lr=1e-3, seed=4, device="cpu", progress=False, num_samples=200, init_std=None)
    r = train_toy_ensemble(**kw, updates="simultaneous", batchnorm="pacgan", real_tuples=True)
    samples, nets = _plain_pacgan_run("grid", 2, 3, 7, 10, 30, 1e-3, 4)
    for t, (G, D) in enumerate(nets):
        assert torch.allclose(r["samples"][t].double(), samples[t], atol=1e-5)
        for ens, single in ((r["G"], G), (r["D"], Packed(D, 3))):
            theirs = single.state_dict()
            for name, value in ens.trial(t).state_dict().items():
                assert torch.allclose(value, theirs[name], atol=1e-9), name
    # each option matters: alternating updates, PyTorch's BatchNorm or unpacked data end elsewhere
    for other in (dict(updates="alternating", batchnorm="pacgan", real_tuples=True),
                  dict(updates="simultaneous", batchnorm="torch", real_tuples=True),
                  dict(updates="simultaneous", batchnorm="pacgan", real_tuples=False)):
        o = train_toy_ensemble(**kw, **other)
        assert not torch.allclose(o["samples"], r["samples"], atol=1e-3), other


def test_pacgan_batchnorm_per_slot_against_the_formula():
    torch.manual_seed(0)
    m, B, F = 3, 8, 5
    bn = PacGANBatchNorm(F, slots=m)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1, 1)
    x = torch.randn(B * m, F) * 3 + 1  # rows i m + s: slot s
    want, mean_sum, std_sum = torch.empty_like(x), 0, 0
    for s in range(m):  # G called m times, one BatchNorm batch per slot
        h = x[s::m]
        mean, var = h.mean(0), ((h - h.mean(0)) ** 2).mean(0)  # biased
        want[s::m] = (h - mean) / torch.sqrt(var + 1e-4) * bn.weight + bn.bias
        mean_sum, std_sum = mean_sum + mean, std_sum + torch.sqrt(var + 1e-4)
    assert torch.allclose(bn(x), want, atol=1e-5)
    # population: 0.95 old + 0.05 (average of the slots' statistics), from 0 and 1
    assert torch.allclose(bn.population_mean, 0.05 * mean_sum / m, atol=1e-6)
    assert torch.allclose(bn.population_std, 0.95 + 0.05 * std_sum / m, atol=1e-6)
    bn.eval()
    y = torch.randn(7, F)  # any batch size in evaluation
    assert torch.allclose(bn(y), (y - bn.population_mean) / bn.population_std * bn.weight
                          + bn.bias)
    G = ToyGenerator(batchnorm="pacgan", slots=2)
    assert all(lin.bias is None for lin in G.net[:-1] if isinstance(lin, torch.nn.Linear))
    assert G.net[-1].bias is not None and G.net[1].eps == 1e-4 and G.net[1].momentum == 0.05
    with pytest.raises(ValueError, match="batchnorm must be"):
        ToyGenerator(batchnorm="keras")


def test_trial_data_fixed_tuples():
    data = trial_data("ring", [7, 8], 50, pack=3)  # (T, n, m, 2)
    assert data.shape == (2, 50, 3, 2)
    means, std = mixture("ring")
    points, _ = sample_mixture(means, 50, std, torch.Generator().manual_seed(7))
    # every slot of every tuple is one of the trial's 50 points
    assert (data[0].reshape(-1, 1, 2) == points[None]).all(-1).any(1).all()
    assert not torch.equal(data[0, :, 0], data[0, :, 1])  # the slots are resampled apart
    single = trial_data("ring", [7], 50)  # points: as ring_of_gaussians(50, seed=7)
    assert torch.equal(single[0, :, 0], points)
    with pytest.raises(ValueError, match="unknown mixture"):
        trial_data("spiral", [0], 10)


@pytest.mark.parametrize("options", [
    dict(), dict(updates="simultaneous", batchnorm="pacgan", real_tuples=True, pack=2)])
def test_a_stopped_and_resumed_run_equals_an_uninterrupted_one(tmp_path, options):
    kw = dict(kind="ring", trials=2, pack=3, steps=12, batch_size=10, lr=1e-3, seed=0,
              device="cpu", progress=False, num_samples=200, dataset_size=50, log_every=2,
              snapshot_steps=(3, 9), eval_every=4, snapshot_samples=20)
    kw.update(options)
    whole = train_toy_ensemble(**kw)
    ckpt = tmp_path / "run.pt"
    for stop in (1, 5, 8):  # mid-epoch, after a measurement, a few times over
        part = train_toy_ensemble(**kw, checkpoint=ckpt, stop_at=stop)
        assert not part["finished"] and part["step"] == stop and part["samples"] is None
        assert part.keys() == whole.keys()  # one return shape, finished or not
    end = train_toy_ensemble(**kw, checkpoint=ckpt)
    assert end["finished"] and end["step"] == 12
    assert torch.equal(end["samples"], whole["samples"])
    assert end["history"] == whole["history"] and end["evals"] == whole["evals"]
    assert sorted(end["evals"]) == [4, 8, 12]
    assert all(torch.equal(end["snapshots"][s], whole["snapshots"][s]) for s in (3, 9))
    for a, b in zip(end["G"].state_dict().values(), whole["G"].state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(CheckpointError, match="other settings"):
        train_toy_ensemble(**{**kw, "lr": 2e-3}, checkpoint=ckpt)


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


def test_trials_shapes_packing_and_trial_copies():
    G, D = build_ensemble(4, pack=3, seed=1)
    x = G(torch.randn(4, 30, 2))
    assert x.shape == (4, 30, 2)
    assert D(x).shape == (4, 10, 1)  # 30 points packed 3 at a time
    g0, g1 = G.trial(0), G.trial(1)
    assert isinstance(g0, ToyGenerator) and not torch.equal(g0.net[0].weight, g1.net[0].weight)
    G.eval()
    z = torch.randn(4, 6, 2)
    assert torch.allclose(G(z)[1], g1.eval()(z[1]), atol=1e-6)


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


def test_trial_data_per_trial():
    data = trial_data("grid", trial_seeds(0, 3), 500)[:, :, 0]  # (T, n, 2)
    assert data.shape == (3, 500, 2)
    assert not torch.equal(data[0], data[1])
    assert mixture_metrics(data[0], "grid")["modes"] == 25
    assert torch.equal(data[:2], trial_data("grid", trial_seeds(0, 2), 500)[:, :, 0])


def test_point_recall_and_summary():
    ring = reference_points("ring", 2500, seed=0)
    half = ring[ring[:, 0] > 0.1]  # only the modes on the right
    assert point_recall(ring, ring) == 1.0
    assert 0.2 < point_recall(ring, half) < 0.5
    s = summarize([{"modes": 6, "high_quality_pct": 90.0, "reverse_kl": 0.5},
                   {"modes": 8, "high_quality_pct": 100.0, "reverse_kl": 0.1}])
    assert s["modes"] == {"mean": 7.0, "std": pytest.approx(2 ** 0.5), "se": pytest.approx(1.0),
                          "n": 2}  # std sqrt(2), se std / sqrt(2)
    assert list(summarize([{"a": 1, "b": 2}], ["b"])) == ["b"]
    assert math.isnan(summarize([{"a": 1}])["a"]["se"])  # one run: no spread to report


def test_train_toy_ensemble_result():
    r = train_toy_ensemble(kind="ring", trials=2, loss="bce", pack=3, steps=6, batch_size=10,
                           lr=1e-3, seed=0, device="cpu", progress=False, num_samples=200,
                           dataset_size=100, log_every=2, snapshot_steps=(3,),
                           eval_steps=(2, 6))
    assert r["finished"] and r["device"] == "cpu"
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
    with pytest.raises(ValueError, match="updates must be"):
        train_toy_ensemble(updates="both", steps=1, progress=False)


def test_ensemble_config_is_checked_and_saved_in_the_checkpoint(tmp_path):
    from ganlib.ensemble import EnsembleConfig
    from ganlib.checkpoint import load_checkpoint
    from ganlib.validation import ConfigError
    cfg = EnsembleConfig(trials=2, pack=2, steps=4, batch_size=10, dataset_size=40,
                         num_samples=100, device="cpu", progress=False, snapshot_steps=(3, 1))
    ckpt = tmp_path / "run.pt"
    r = train_toy_ensemble(cfg, checkpoint=ckpt)
    assert r["settings"] == cfg.settings() == load_checkpoint(ckpt)["settings"]
    assert r["settings"]["snapshot_steps"] == [1, 3] and r["settings"]["betas"] == [0.8, 0.999]
    assert not {"device", "fast", "progress"} & set(r["settings"])  # a resume may change them
    same = train_toy_ensemble(**{k: getattr(cfg, k) for k in cfg.__dataclass_fields__})
    assert torch.equal(same["samples"], r["samples"])  # the config, or its fields as keywords
    with pytest.raises(TypeError, match="not both"):
        train_toy_ensemble(cfg, steps=5)
    for bad, field in ((dict(kind="spiral"), "kind"), (dict(loss="wgan-gp"), "loss"),
                       (dict(trials=0), "trials"), (dict(betas=(0.8, 1.0)), "betas"),
                       (dict(batchnorm="keras"), "batchnorm"), (dict(real_tuples=1), "real_tuples"),
                       (dict(snapshot_steps=(1.5,)), "snapshot_steps")):
        with pytest.raises(ConfigError) as err:
            EnsembleConfig(**bad)
        assert err.value.field == field and str(err.value).startswith(f"{field} must be")
