"""Conditional GANs: the models' shapes, the projection logit against a hand computation, the
label plumbing through batches, d_step, g_step and train, learning on a tiny problem, exact
resume with labels, and the class measures against references."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganlib import (ImageData, TrainConfig, build_models, d_step, g_step, generate, get_loss,
                    load_checkpoint, make_batches, train)
from ganlib.conditional import (ConditionalGenerator, ProjectionDiscriminator,
                                conditional_accuracy, conditional_samples, per_class_fid)
from ganlib.metrics import embed, frechet_distance

SHAPE, K = (1, 8, 8), 4  # tiny images of 4 classes keep these tests fast


def tiny_models(seed=0, latent_dim=8):
    torch.manual_seed(seed)
    return (ConditionalGenerator(latent_dim, SHAPE, num_classes=K, embed_dim=4),
            ProjectionDiscriminator(SHAPE, num_classes=K, feature_dim=16))


def quadrant_data(n=256, seed=0) -> ImageData:
    """Class k lights quadrant k (a 4x4 block) of an 8x8 image; the rest is dark, with noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % K
    x = torch.full((n, *SHAPE), -1.0)
    for k in range(K):
        r, c = divmod(k, 2)
        x[y == k, 0, 4 * r:4 * r + 4, 4 * c:4 * c + 4] = 1.0
    x = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(-1, 1)
    return ImageData(x, y, "quadrants", "four lit quadrants, made in the test")


def quadrant_class(x):
    """The brightest quadrant of each image `(N, 1, 8, 8)`: the class a reader would see."""
    q = F.avg_pool2d(x, 4).flatten(1)  # (N, 4): quadrants in the order 0, 1, 2, 3
    return q.argmax(1)


def config(out_dir=None, **kw):
    base = dict(model="cgan-mlp", batch_size=16, num_steps=4, progress=False, device="cpu",
                out_dir=str(out_dir) if out_dir else None)
    return TrainConfig(**{**base, **kw})


def state_equal(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ----------------------------------------------------------------------------- models

@pytest.mark.parametrize("batch", [1, 5])
def test_build_models_makes_a_conditional_pair_with_the_right_shapes(batch):
    G, D = build_models("cgan-mlp", (1, 28, 28))
    G.eval()  # BatchNorm with a batch of 1
    z, y = G.sample_z(batch), torch.arange(batch) % 10
    x = G(z, y)
    assert G.num_classes == D.num_classes == 10 and z.shape == (batch, 100)
    assert x.shape == (batch, 1, 28, 28) and x.abs().max() <= 1  # tanh output
    assert D(x, y).shape == (batch, 1)  # logits


def test_conditional_models_refuse_packing_and_other_sizes():
    with pytest.raises(ValueError, match="packing"):
        build_models("cgan-mlp", (1, 28, 28), pack_m=2)
    with pytest.raises(ValueError, match="image sizes"):
        build_models("cgan-mlp", (1, 32, 32))


def test_generator_without_labels_draws_the_classes_in_turn():
    G, _ = tiny_models()
    G.eval()
    z = G.sample_z(10)
    assert torch.equal(G(z), G(z, torch.arange(10) % K))
    assert not torch.equal(G(z, torch.zeros(10, dtype=torch.long)), G(z))  # labels matter
    assert G.sample_y(1000).unique().tolist() == list(range(K))


def test_projection_logit_equals_the_formula_written_out():
    _, D = tiny_models()
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(6, *SHAPE, generator=g) * 2 - 1, torch.tensor([0, 1, 2, 3, 3, 0])
    (l1, l2), psi, E = [m for m in D.phi if isinstance(m, nn.Linear)], D.psi, D.embed.weight
    # phi(x) = lrelu(W2 lrelu(W1 x + b1) + b2), by hand
    h = x.flatten(1) @ l1.weight.T + l1.bias
    h = torch.where(h > 0, h, 0.2 * h)
    h = h @ l2.weight.T + l2.bias
    h = torch.where(h > 0, h, 0.2 * h)  # (6, 16)
    want = h @ psi.weight.T + psi.bias + (E[y] * h).sum(1, keepdim=True)  # psi(phi) + e_y . phi
    assert torch.allclose(D(x, y), want, atol=1e-5)
    # the label enters only through the inner product: changing it shifts the logit by
    # (e_a - e_b) . phi(x)
    a, b = torch.zeros(6, dtype=torch.long), torch.full((6,), 2)
    shift = ((E[0] - E[2]) * h).sum(1, keepdim=True)
    assert torch.allclose(D(x, a) - D(x, b), shift, atol=1e-5)


# ----------------------------------------------------------------------------- plumbing

def test_batches_with_labels_pair_each_image_with_its_own_label():
    n = 40
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, *SHAPE) / n  # x == i / n
    data = ImageData(x, torch.arange(n) % 7, "ids", "test")
    plain = make_batches(data, 8, torch.device("cpu"), seed=3).iterate()
    pairs = make_batches(data, 8, torch.device("cpu"), seed=3, labels=True).iterate()
    for _ in range(12):  # across an epoch boundary
        xb, (xl, yl) = next(plain), next(pairs)
        assert torch.equal(xb, xl)  # the same order with and without labels
        assert torch.equal(yl, (xl[:, 0, 0, 0] * n).round().long() % 7)


def test_labels_asked_of_unlabelled_data_raise_a_clear_error():
    with pytest.raises(ValueError, match="needs labelled data"):
        make_batches(torch.zeros(8, *SHAPE), 4, torch.device("cpu"), labels=True)
    G, D = tiny_models()
    with pytest.raises(ValueError, match="needs labelled data"):
        train(G, D, quadrant_data().x, config())


def test_d_step_and_g_step_score_image_label_pairs():
    G, D = tiny_models()
    D_ref = ProjectionDiscriminator(SHAPE, num_classes=K, feature_dim=16)
    D_ref.load_state_dict(D.state_dict())
    data = quadrant_data(16)
    z, y_fake = G.sample_z(16), torch.arange(16) % K
    x_fake = G(z, y_fake)
    loss = get_loss("hinge")
    d_loss, real_logits, fake_logits = d_step(D, torch.optim.SGD(D.parameters(), lr=0.0), loss,
                                              data.x, x_fake.detach(), y_real=data.y,
                                              y_fake=y_fake)
    want = loss.d_loss(D_ref(data.x, data.y), D_ref(x_fake, y_fake))
    assert torch.allclose(d_loss, want.detach(), atol=1e-6)
    assert torch.allclose(real_logits, D_ref(data.x, data.y).detach(), atol=1e-6)
    other = (data.y + 1) % K  # other labels, other loss: the labels reach D
    assert not torch.allclose(d_step(D, torch.optim.SGD(D.parameters(), lr=0.0), loss, data.x,
                                     x_fake.detach(), y_real=other, y_fake=y_fake)[0], d_loss)
    g_loss = g_step(D, torch.optim.SGD(G.parameters(), lr=0.0), loss, x_fake, y_fake=y_fake)
    assert torch.allclose(g_loss, loss.g_loss(D_ref(x_fake, y_fake)).detach(), atol=1e-6)


def test_wgan_gp_penalises_a_conditional_critic():
    G, D = tiny_models()
    history = train(G, D, quadrant_data(), config(loss="wgan-gp", n_critic=2, num_steps=3))
    assert history["step"] == [1, 2, 3]
    assert all(torch.isfinite(torch.tensor(history["d_loss"])))


def test_train_draws_fake_labels_uniformly_and_feeds_real_labels():
    G, D = tiny_models()
    data = quadrant_data(64)
    calls = []
    D.register_forward_hook(lambda m, args, out: calls.append(args[1].clone()))
    train(G, D, data, config(num_steps=20, batch_size=16))
    # Per step: D on real, D on fake (d_step), D on fake (g_step).
    real_labels = torch.cat(calls[0::3])
    fake_labels = torch.cat(calls[1::3])
    assert torch.equal(torch.cat(calls[2::3]), fake_labels)  # g_step judges the same pairs
    assert torch.bincount(real_labels, minlength=K).tolist() == [80] * K  # 5 epochs of 64
    counts = torch.bincount(fake_labels, minlength=K)
    assert counts.sum() == 320 and counts.min() > 50  # uniform: 80 each on average


# ----------------------------------------------------------------------------- training

def test_a_few_hundred_steps_draw_the_asked_class_far_above_chance():
    G, D = tiny_models()
    cfg = config(num_steps=300, batch_size=32, loss="hinge", lr_g=1e-3, lr_d=1e-3)
    x_before, y = conditional_samples(G, 100)
    before = (quadrant_class(x_before) == y).float().mean().item()
    train(G, D, quadrant_data(), cfg)
    x, y = conditional_samples(G, 100)
    after = (quadrant_class(x) == y).float().mean().item()
    assert after > 0.9 > before + 0.3, (before, after)  # chance is 1/4


def test_resume_with_labels_matches_an_uninterrupted_run_exactly(tmp_path):
    n = 6
    G_full, D_full = tiny_models()
    h_full = train(G_full, D_full, quadrant_data(), config(tmp_path / "full", num_steps=n))
    G, D = tiny_models()
    train(G, D, quadrant_data(), config(tmp_path / "half", num_steps=n // 2))
    assert load_checkpoint(tmp_path / "half" / "last.pt")["step"] == n // 2
    G, D = tiny_models(seed=123)  # all that matters comes from last.pt
    h_resumed = train(G, D, quadrant_data(), config(tmp_path / "half", num_steps=n),
                      resume=True)
    assert state_equal(G, G_full) and state_equal(D, D_full)
    assert h_resumed == h_full


def test_conditional_samples_are_ordered_by_class_and_fixed_by_the_seed():
    G, _ = tiny_models()
    state = torch.get_rng_state()
    x, y = conditional_samples(G, 3, seed=5)
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is untouched
    assert y.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3] and x.shape == (12, *SHAPE)
    assert torch.equal(conditional_samples(G, 3, seed=5)[0], x)
    torch.manual_seed(5)
    assert torch.equal(x, generate(G, G.sample_z(12), y))


# ----------------------------------------------------------------------------- measures

@pytest.fixture(scope="module")
def digits(mnist_sample):
    return mnist_sample.x[:2000], mnist_sample.y[:2000]


def test_conditional_accuracy_of_real_digits_and_of_wrong_labels(digits):
    x, y = digits
    acc, per_class = conditional_accuracy(x, y)
    pred = embed(x).logits.argmax(1)
    assert acc == pytest.approx((pred == y).float().mean().item()) and acc > 0.97
    for k in range(10):  # per class, by hand
        assert per_class[k].item() == pytest.approx((pred[y == k] == k).float().mean().item())
    wrong, _ = conditional_accuracy(x, (y + 1) % 10)  # every label off by one
    assert wrong < 0.05
    with pytest.raises(ValueError, match="one label per image"):
        conditional_accuracy(x, y[:-1])


def test_per_class_fid_is_the_frechet_distance_within_each_class(digits):
    x, y = digits
    a, b = slice(0, 1000), slice(1000, 2000)
    same = per_class_fid(x[a], y[a], x[b], y[b])
    feats = embed(x).features
    for k in (0, 7):  # by hand: the class's features on each side
        fa, fb = feats[a][y[a] == k], feats[b][y[b] == k]
        assert same[k].item() == pytest.approx(frechet_distance(fa, fb), rel=1e-4)
    shuffled = per_class_fid(x[a], y[a], x[b], (y[b] + 1) % 10)  # each class gets another's
    assert same.shape == shuffled.shape == (10,)
    assert (shuffled > 5 * same).all()
    with pytest.raises(ValueError, match="at least 2"):
        per_class_fid(x[a], y[a], x[b][:5], y[b][:5])
