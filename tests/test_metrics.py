"""Metrics: closed forms, hand-made cases with known answers, and orderings on the bundled
MNIST sample (train split vs test split). No downloads; runs in seconds on a CPU."""
import json
import math
import sys

import pytest
import torch

from ganlib import TrainConfig, build_models, load_checkpoint, train
from ganlib.classifier import (CLASSIFIERS, ClassifierError, SmallCNN, accuracy, file_sha256,
                               load_classifier, save_classifier)
from ganlib.data import (DataUnavailable, data_root, load_mnist_sample, load_torchvision,
                         stacked_mnist)
from ganlib.mixtures import grid_of_gaussians, ring_means, ring_of_gaussians
from ganlib.inception import InceptionUnavailable, inception_fid
from ganlib.metrics import (Embedding, class_histogram, classes_covered, classifier_score, embed,
                            fid, fid_evaluator, frechet_distance, frechet_distance_from_stats,
                            image_metrics, kl_to_uniform, precision_recall)
from ganlib.mode_metrics import (mixture_metrics, mode_coverage, mode_evaluator,
                                 stacked_mnist_metrics, stacked_mnist_modes)
from ganlib.sampling import generate_many

RECORD = CLASSIFIERS["mnist"].parent / "classifiers.json"
P_WITHIN_3_STD_2D = 1 - math.exp(-4.5)  # P(|z| < 3) for a 2-D standard normal: 98.89%


@pytest.fixture(scope="module")
def real_test():
    return load_mnist_sample(train=False)  # 1,000 held-out digits, 100 per class


@pytest.fixture(scope="module")
def real_train():
    return load_mnist_sample(train=True)  # 5,000 digits, 500 per class


@pytest.fixture(scope="module")
def emb_test(real_test):
    return embed(real_test.x)


@pytest.fixture(scope="module")
def emb_train(real_train):
    return embed(real_train.x)


def _subset(e: Embedding, keep: torch.Tensor) -> Embedding:
    return Embedding(e.features[keep], e.logits[keep])


# ----------------------------------------------------------------------------- Fréchet distance

def test_frechet_matches_closed_form_for_diagonal_gaussians():
    mu1, mu2 = torch.tensor([0.0, 1.0, -2.0]), torch.tensor([1.0, 1.0, 0.0])
    s1, s2 = torch.tensor([1.0, 4.0, 0.25]), torch.tensor([4.0, 1.0, 1.0])
    expected = (mu1 - mu2).square().sum() + (s1.sqrt() - s2.sqrt()).square().sum()  # 5 + 2.25
    got = frechet_distance_from_stats(mu1, torch.diag(s1), mu2, torch.diag(s2))
    assert got == pytest.approx(expected.item(), abs=1e-9)


def test_frechet_handles_singular_covariances():
    zero = torch.zeros(3)
    got = frechet_distance_from_stats(zero, torch.diag(torch.tensor([0.0, 1.0, 4.0])),
                                      zero, torch.diag(torch.tensor([0.0, 4.0, 1.0])))
    assert got == pytest.approx(2.0, abs=1e-9)  # (1 - 2)^2 + (2 - 1)^2


def _random_rotation(n, g):
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    return q


def test_frechet_matches_closed_form_for_full_commuting_covariances():
    # sigma = Q diag(s) Q^T with one random rotation Q: full matrices that commute, so
    # tr((sigma1 sigma2)^(1/2)) = sum sqrt(s1 s2) and d^2 = |mu1 - mu2|^2 + sum (sqrt s1 - sqrt s2)^2.
    g = torch.Generator().manual_seed(4)
    q = _random_rotation(5, g)
    s1 = torch.tensor([0.5, 1.0, 2.0, 4.0, 9.0], dtype=torch.float64)
    s2 = torch.tensor([4.0, 1.0, 0.5, 1.0, 0.25], dtype=torch.float64)
    sigma1, sigma2 = q @ torch.diag(s1) @ q.T, q @ torch.diag(s2) @ q.T
    assert (sigma1 - torch.diag(torch.diagonal(sigma1))).abs().max() > 0.1  # not diagonal
    mu1, mu2 = torch.randn(5, generator=g, dtype=torch.float64), torch.zeros(5, dtype=torch.float64)
    expected = (mu1 - mu2).square().sum() + (s1.sqrt() - s2.sqrt()).square().sum()
    got = frechet_distance_from_stats(mu1, sigma1, mu2, sigma2)
    assert got == pytest.approx(expected.item(), rel=1e-10)
    assert frechet_distance_from_stats(mu2, sigma2, mu1, sigma1) == pytest.approx(got, rel=1e-10)


def test_frechet_agrees_with_eigenvalues_of_the_product_on_full_covariances():
    # A torch-only reference by another route: sigma1 sigma2 is similar to a PSD matrix, so
    # its (complex-typed) eigenvalues are real and >= 0, and tr((sigma1 sigma2)^(1/2)) is the
    # sum of their square roots. Covariances that do not commute.
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(6, 6, generator=g, dtype=torch.float64), torch.randn(6, 6, generator=g, dtype=torch.float64)
    s1, s2 = a @ a.T + 0.1 * torch.eye(6, dtype=torch.float64), b @ b.T + 0.1 * torch.eye(6, dtype=torch.float64)
    assert not torch.allclose(s1 @ s2, s2 @ s1)
    mu1, mu2 = torch.randn(6, generator=g, dtype=torch.float64), torch.zeros(6, dtype=torch.float64)
    eig = torch.linalg.eigvals(s1 @ s2)
    assert eig.imag.abs().max() < 1e-8 and eig.real.min() > 0
    expected = ((mu1 - mu2).square().sum() + s1.trace() + s2.trace()
                - 2 * eig.real.sqrt().sum()).item()
    assert frechet_distance_from_stats(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)


def test_frechet_agrees_with_scipy_sqrtm_on_full_covariances():
    linalg = pytest.importorskip("scipy.linalg")
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(6, 6, generator=g, dtype=torch.float64), torch.randn(6, 6, generator=g, dtype=torch.float64)
    s1, s2 = a @ a.T + 0.1 * torch.eye(6, dtype=torch.float64), b @ b.T
    mu1, mu2 = torch.randn(6, generator=g, dtype=torch.float64), torch.zeros(6, dtype=torch.float64)
    covmean = linalg.sqrtm((s1 @ s2).numpy()).real  # the usual pytorch-fid formula
    expected = ((mu1 - mu2).square().sum() + s1.trace() + s2.trace()).item() - 2 * covmean.trace()
    assert frechet_distance_from_stats(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)


def test_frechet_of_samples_approaches_the_population_distance():
    g = torch.Generator().manual_seed(1)
    n, s1, s2 = 200_000, torch.tensor([1.0, 0.25]), torch.tensor([0.25, 1.0])
    a = torch.randn(n, 2, generator=g) * s1.sqrt()
    b = torch.randn(n, 2, generator=g) * s2.sqrt() + torch.tensor([1.0, 0.0])
    expected = 1.0 + (s1.sqrt() - s2.sqrt()).square().sum().item()  # 1 + 0.5
    assert frechet_distance(a, b) == pytest.approx(expected, abs=0.02)


def test_frechet_is_symmetric_and_zero_for_identical_sets():
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(500, 16, generator=g), torch.rand(400, 16, generator=g)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-9)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    assert frechet_distance(a, b) > 1.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_frechet_on_gpu_matches_cpu():
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(300, 8, generator=g), torch.randn(300, 8, generator=g) + 0.5
    assert frechet_distance(a.cuda(), b.cuda()) == pytest.approx(frechet_distance(a, b), rel=1e-6)


def test_fid_orders_real_below_missing_class_below_single_class_below_noise(emb_test, emb_train,
                                                                          real_train):
    y = real_train.y
    noise = torch.rand(1000, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    real = fid(emb_test, emb_train)
    missing = fid(emb_test, _subset(emb_train, y != 3))
    single = fid(emb_test, _subset(emb_train, y == 3))
    assert real < missing < single < fid(emb_test, noise)
    assert real < 5 < single  # the floor is small; a collapsed set is far away


def test_fid_refuses_images_of_the_wrong_shape_or_range(real_test):
    with pytest.raises(ValueError, match="28x28"):
        fid(torch.zeros(4, 3, 28, 28), real_test.x)
    with pytest.raises(ValueError, match="to_signed"):
        fid((real_test.x[:10] + 1) / 2, real_test.x)


# ----------------------------------------------------------------------------- classifiers

def test_mnist_classifier_is_accurate_on_the_bundled_test_sample(real_test):
    assert accuracy(load_classifier("mnist"), real_test.x, real_test.y) >= 0.98


@pytest.mark.parametrize("name, target", [("mnist", 0.99), ("fashion-mnist", 0.90)])
def test_shipped_weights_match_their_record(name, target):
    entry = json.loads(RECORD.read_text())[name]
    path = CLASSIFIERS[name]
    assert entry["file"] == path.name and entry["sha256"] == file_sha256(path)
    assert entry["test_accuracy"] >= target and entry["train_images"] == 60_000
    assert path.stat().st_size < 1_000_000  # well under 1 MB
    model = load_classifier(name)
    x = torch.rand(5, 1, 28, 28) * 2 - 1
    assert model(x).shape == (5, 10) and model.features(x).shape == (5, model.feature_dim)


@pytest.mark.parametrize("name, folder, target", [("mnist", "MNIST", 0.99),
                                                   ("fashion-mnist", "FashionMNIST", 0.90)])
def test_classifier_is_accurate_on_the_full_test_set_where_it_is_at_hand(name, folder, target):
    root = data_root(None)
    if not (root / folder / "raw").is_dir():
        pytest.skip(f"{folder}/raw not under {root} (CI sets GANLIB_DATA to ../shared/data)")
    try:
        test = load_torchvision(name, root, train=False, fallback_to_sample=False)
    except DataUnavailable as err:
        pytest.skip(f"{name} incomplete under {root}: {err}")
    assert len(test) == 10_000
    assert accuracy(load_classifier(name), test.x, test.y) >= target


def test_classifier_load_fails_clearly_on_corrupt_or_foreign_files(tmp_path):
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(CLASSIFIERS["mnist"].read_bytes()[:5000])
    with pytest.raises(ClassifierError, match="corrupt.*train_classifiers.py"):
        load_classifier(bad)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(ClassifierError, match="not a ganlib classifier"):
        load_classifier(foreign)
    with pytest.raises(ClassifierError, match="no classifier weights"):
        load_classifier(tmp_path / "missing.pt")


def test_save_and_load_classifier_round_trip(tmp_path):
    model = SmallCNN().eval()
    save_classifier(model, tmp_path / "c.pt", dataset="test")
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    assert torch.equal(load_classifier(tmp_path / "c.pt")(x), model(x))


# ----------------------------------------------------------------------------- classes

def test_classifier_score_of_hand_made_predictions():
    k = 10
    confident = Embedding(torch.zeros(50, 1), 100.0 * torch.eye(k).repeat(5, 1))  # 5 per class
    assert classifier_score(confident) == pytest.approx(k, rel=1e-6)
    unsure = Embedding(torch.zeros(50, 1), torch.zeros(50, k))
    assert classifier_score(unsure) == pytest.approx(1.0, abs=1e-9)
    one_class = Embedding(torch.zeros(50, 1), 100.0 * torch.eye(k)[[2] * 50])
    assert classifier_score(one_class) == pytest.approx(1.0, abs=1e-6)


def _score_by_hand(p):
    """exp(mean_i KL(p_i || mean_j p_j)) in plain Python, from rows of probabilities."""
    k, n = len(p[0]), len(p)
    p_y = [sum(row[c] for row in p) / n for c in range(k)]
    kls = [sum(row[c] * math.log(row[c] / p_y[c]) for c in range(k)) for row in p]
    return math.exp(sum(kls) / n), kls, p_y


def test_classifier_score_averages_probabilities_then_kl_then_exponentiates():
    p = [[0.98, 0.01, 0.01], [0.6, 0.3, 0.1], [0.5, 0.2, 0.3], [0.02, 0.08, 0.9]]
    want, kls, p_y = _score_by_hand(p)
    logits = torch.tensor(p, dtype=torch.float64).log() + 3.0  # softmax(log p + c) = p
    assert classifier_score(Embedding(torch.zeros(4, 1), logits)) == pytest.approx(want, rel=1e-9)
    # Each plausible slip gives a clearly different number on these rows:
    mean_of_exp = sum(math.exp(v) for v in kls) / len(kls)  # exp inside the mean
    reverse = math.exp(sum(sum(p_y[c] * math.log(p_y[c] / row[c]) for c in range(3))
                           for row in p) / len(p))  # KL(p(y) || p(y|x))
    mean_logit = torch.softmax(logits.mean(0), 0).tolist()  # p(y) from the mean logit
    from_logits = math.exp(sum(sum(row[c] * math.log(row[c] / mean_logit[c]) for c in range(3))
                               for row in p) / len(p))
    for wrong in (mean_of_exp, reverse, from_logits):
        assert abs(wrong - want) > 0.01


def test_class_measures_of_real_digits_and_of_a_single_class(emb_test, emb_train, real_train):
    assert classifier_score(emb_test) > 9.0
    hist = class_histogram(emb_test)
    assert hist.shape == (10,) and hist.sum().item() == pytest.approx(1.0)
    assert classes_covered(hist) == 10 and kl_to_uniform(hist) < 0.01
    single = _subset(emb_train, real_train.y == 7)  # 500 sevens
    assert classifier_score(single) < 1.2
    hist = class_histogram(single)
    assert classes_covered(hist) == 1 and kl_to_uniform(hist) > 0.9 * math.log(10)


def test_kl_to_uniform_and_classes_covered_on_hand_made_histograms():
    assert kl_to_uniform([5, 5, 5, 5]) == pytest.approx(0.0, abs=1e-12)
    assert kl_to_uniform([7, 0, 0, 0]) == pytest.approx(math.log(4))
    assert kl_to_uniform([2, 1, 1]) == pytest.approx(0.5 * math.log(1.5) + 0.5 * math.log(0.75))
    assert classes_covered([0.5, 0.5, 0.0]) == 2
    assert classes_covered([0.995, 0.005]) == 1  # a few stray samples are not coverage
    assert classes_covered([0.995, 0.005], min_fraction=0) == 2
    with pytest.raises(ValueError, match="empty"):
        kl_to_uniform([0, 0])


# ----------------------------------------------------------------------------- precision, recall

def test_precision_recall_on_points_on_a_line():
    line = lambda v: Embedding(torch.stack([v, torch.zeros_like(v)], 1), torch.zeros(len(v), 1))
    real = line(torch.arange(100.0) + 0.5)  # 0.5, 1.5, ..., 99.5: k=3 radius 2
    fake = line(torch.arange(10.0))  # 0..9: radius 3, so it covers [-3, 12]
    precision, recall = precision_recall(real, fake, k=3)
    assert precision == 1.0 and recall == pytest.approx(0.12)  # 0.5 .. 11.5 are covered


def test_precision_recall_show_collapse(emb_test, emb_train, real_train):
    p_real, r_real = precision_recall(emb_test, emb_train)
    p_one, r_one = precision_recall(emb_test, _subset(emb_train, real_train.y == 3))
    assert p_real > 0.6 and r_real > 0.6
    assert p_one > 0.6 and r_one < 0.25


def test_image_metrics_agree_with_the_single_functions(emb_test, emb_train):
    m = image_metrics(emb_test, emb_train)
    assert m["fid"] == pytest.approx(fid(emb_test, emb_train))
    assert m["classifier_score"] == pytest.approx(classifier_score(emb_train))
    assert m["classes_covered"] == 10
    assert (m["precision"], m["recall"]) == pytest.approx(precision_recall(emb_test, emb_train))


# ----------------------------------------------------------------------------- 2-D mixtures

def test_true_ring_gives_all_modes_and_high_quality():
    m = mixture_metrics(ring_of_gaussians(n=2500, seed=1).x, "ring")
    assert m["modes"] == m["num_modes"] == 8
    assert m["high_quality_pct"] == pytest.approx(100 * P_WITHIN_3_STD_2D, abs=1.0)
    assert m["reverse_kl"] < 0.02


def test_one_mode_sampler_captures_one_of_eight():
    x = ring_means()[2] + 0.01 * torch.randn(2500, 2, generator=torch.Generator().manual_seed(0))
    m = mixture_metrics(x, "ring")
    assert m["modes"] == 1 and m["reverse_kl"] == pytest.approx(math.log(8))
    assert m["high_quality_pct"] > 97


def test_true_grid_gives_25_modes():
    m = mixture_metrics(grid_of_gaussians(n=2500, seed=1).x, "grid")
    assert m["modes"] == m["num_modes"] == 25
    assert m["high_quality_pct"] == pytest.approx(100 * P_WITHIN_3_STD_2D, abs=1.0)


def test_mixture_metrics_on_hand_made_points():
    half = ring_means()[[0, 2, 4, 6]].repeat(10, 1)  # exactly on 4 of the 8 means
    m = mixture_metrics(half, "ring")
    assert (m["modes"], m["high_quality_pct"]) == (4, 100.0)
    assert m["reverse_kl"] == pytest.approx(math.log(2))
    far = mixture_metrics(torch.full((10, 2), 5.0), "ring")
    assert (far["modes"], far["high_quality_pct"], far["reverse_kl"]) == (0, 0.0, math.inf)
    wide = mixture_metrics(ring_of_gaussians(2500, radius=2.0, std=0.02).x,
                           means=ring_means(8, 2.0), std=0.02)
    assert wide["modes"] == 8
    with pytest.raises(ValueError, match="std"):
        mixture_metrics(half, means=ring_means())


# ----------------------------------------------------------------------------- stacked MNIST

def test_stacked_mnist_modes_on_hand_made_images(real_test, emb_test):
    clf = load_classifier("mnist")
    right = emb_test.logits.argmax(1) == real_test.y  # digits the classifier gets right
    x, y = real_test.x[right], real_test.y[right]
    first = {d: x[y == d][0] for d in range(10)}  # one image of each digit, (1, 28, 28)
    wanted = torch.tensor([7, 123, 450, 999, 0] * 6)  # 5 modes, 6 samples each
    images = torch.stack([torch.cat([first[int(m) // 100], first[int(m) // 10 % 10],
                                     first[int(m) % 10]]) for m in wanted])  # (30, 3, 28, 28)
    assert torch.equal(stacked_mnist_modes(images, clf), wanted)
    m = stacked_mnist_metrics(images, clf)
    assert (m["modes"], m["num_modes"]) == (5, 1000)
    assert m["kl_to_uniform"] == pytest.approx(math.log(200))  # uniform over 5 of 1,000


def test_stacked_mnist_of_real_digits_covers_the_modes(real_test):
    data = stacked_mnist(real_test, n=1000, seed=0)
    modes = stacked_mnist_modes(data.x)
    assert (modes == data.y).float().mean() > 0.95  # each channel ~99% right
    assert mode_coverage(modes, 1000)["modes"] > 550  # 1000 (1 - 1/e) = 632 expected


# ----------------------------------------------------------------------------- during training

def _train_config(tmp_path, **kw):
    return TrainConfig(num_steps=4, batch_size=32, eval_every=2, out_dir=str(tmp_path),
                       progress=False, sample_every=0, ckpt_every=0, device="cpu", **kw)


def test_mode_evaluator_during_training_logs_and_keeps_best(tmp_path):
    G, D = build_models("toy", image_shape=(2,))
    cfg = _train_config(tmp_path, data="ring", model="toy", best_metric="reverse_kl")
    history = train(G, D, ring_of_gaussians(n=512), cfg, evaluate=mode_evaluator("ring", n=300))
    assert history["eval"]["step"] == [2, 4]
    assert set(history["eval"]) >= {"modes", "high_quality_pct", "reverse_kl"}
    assert (tmp_path / "best.pt").exists() and (tmp_path / "last.pt").exists()


def test_fid_evaluator_during_training_logs_and_keeps_best(tmp_path, real_test):
    G, D = build_models("mlp")
    cfg = _train_config(tmp_path, data="mnist-sample", best_metric="fid")
    evaluate = fid_evaluator(real_test.x, n=200)
    history = train(G, D, real_test, cfg, evaluate=evaluate)
    assert history["eval"]["step"] == [2, 4] and len(history["eval"]["fid"]) == 2
    assert all(v > 0 for v in history["eval"]["fid"])
    # best.pt holds the generator with the lowest recorded FID: scoring it again gives it.
    best = load_checkpoint(tmp_path / "best.pt")
    assert best["step"] == history["eval"]["step"][history["eval"]["fid"].index(
        min(history["eval"]["fid"]))]
    G_best, _ = build_models("mlp")
    G_best.load_state_dict(best["G"])
    assert evaluate(G_best)["fid"] == pytest.approx(min(history["eval"]["fid"]), rel=1e-6)


class ReplayG(torch.nn.Module):
    """A stand-in generator that "samples" given images in order: sample_z(n) is the next n
    indices, G(z) the images at them. Lets an evaluator score a known set."""

    def __init__(self, x):
        super().__init__()
        self.x, self.next, self.latent_dim = x, 0, 1
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # evaluators read G's device from it

    def sample_z(self, n, device=None):
        idx = torch.arange(self.next, self.next + n) % len(self.x)
        self.next += n
        return idx

    def forward(self, z):
        return self.x[z]


def test_fid_evaluator_of_the_real_set_itself_is_near_zero_and_worse_sets_score_worse(
        real_test, real_train):
    evaluate = fid_evaluator(real_test.x, n=1000, batch_size=300)
    same = evaluate(ReplayG(real_test.x))  # the very images it compares with
    assert same["fid"] == pytest.approx(0.0, abs=1e-6)
    assert same["classifier_score"] == pytest.approx(classifier_score(real_test.x), rel=1e-9)
    assert same["classes_covered"] == 10.0 and same["kl_to_uniform"] < 0.01
    other = evaluate(ReplayG(real_train.x[:1000]))  # other real digits: small but > 0
    threes = evaluate(ReplayG(real_train.x[real_train.y == 3]))  # a collapsed generator
    noise = evaluate(ReplayG(torch.rand(1000, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1))
    assert 0 < other["fid"] < threes["fid"] < noise["fid"]
    assert other["fid"] == pytest.approx(fid(real_test.x, real_train.x[:1000]), rel=1e-6)
    assert threes["classes_covered"] == 1.0 and threes["classifier_score"] < 1.5
    assert threes["kl_to_uniform"] > 0.9 * math.log(10)


def test_mode_evaluator_scores_the_true_mixture_above_a_collapsed_one():
    evaluate = mode_evaluator("ring", n=1000)
    true = evaluate(ReplayG(ring_of_gaussians(n=1000, seed=3).x))
    one = evaluate(ReplayG(ring_means()[5] + 0.01 * torch.randn(
        1000, 2, generator=torch.Generator().manual_seed(0))))
    assert true["modes"] == 8 and one["modes"] == 1
    assert true["reverse_kl"] < 0.05 and one["reverse_kl"] == pytest.approx(math.log(8))


def test_evaluators_use_fixed_noise_and_leave_the_global_rng_alone():
    G, _ = build_models("toy", image_shape=(2,))
    state = torch.get_rng_state()
    assert torch.equal(generate_many(G, 100, 30), generate_many(G, 100, 30))
    assert torch.equal(torch.get_rng_state(), state)
    evaluate = mode_evaluator("grid", n=100)
    assert evaluate(G) == evaluate(G)


# ----------------------------------------------------------------------------- Inception FID

def test_inception_fid_without_torchmetrics_says_what_to_install(monkeypatch, real_test):
    monkeypatch.setitem(sys.modules, "torchmetrics", None)  # makes `import torchmetrics` fail
    with pytest.raises(InceptionUnavailable, match=r"ganlib\[inception\].*ganlib.metrics.fid"):
        inception_fid(real_test.x[:4], real_test.x[4:8])


def test_inception_fid_runs_where_available(real_test):
    try:
        value = inception_fid(real_test.x[:16], real_test.x[16:32], device="cpu")
    except InceptionUnavailable as err:
        pytest.skip(f"Inception FID unavailable here (expected offline): {err}")
    assert value >= 0
