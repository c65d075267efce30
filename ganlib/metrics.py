"""How good are the samples? Offline measures in the feature space of ganlib's classifier.

Every image measure here runs the small CNN of `ganlib.classifier` (trained on MNIST, or on
Fashion-MNIST with `classifier="fashion-mnist"`) and works on its outputs:

- `fid`: the Fréchet distance between Gaussians fitted to real and generated features
  ("FID-MNIST": a classifier trained on the data set itself, as TF-GAN does for MNIST;
  Heusel et al. 2017 use Inception-v3).
- `classifier_score`: exp E_x KL(p(y|x) || p(y)), the Inception-score analogue (Salimans et
  al. 2016): 10 for sharp, balanced digits, 1 for a single class.
- `class_histogram`, `kl_to_uniform`, `classes_covered`: which classes are generated.
- `precision_recall`: Kynkäänniemi et al. 2019, k-nearest-neighbour manifolds; mode
  collapse shows as high precision and low recall.

`fid_evaluator` makes an `evaluate(G)` for `ganlib.train`. 2-D mixtures and stacked MNIST
are in `ganlib.mode_metrics`; the usual Inception FID (optional, needs downloads) is in
`ganlib.inception`.
Introduced in chapter 7 (evaluating GANs).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .classifier import load_classifier
from .data import check_images
from .sampling import generate_many


@dataclass
class Embedding:
    """The classifier's view of a set of images: `features (N, F)` and `logits (N, K)`.

    Every function below that takes images also takes an `Embedding`, so a set embedded
    once can be compared many times.
    """
    features: torch.Tensor
    logits: torch.Tensor

    def __len__(self) -> int:
        return len(self.features)


def _classifier(classifier, device):
    if isinstance(classifier, torch.nn.Module):
        return classifier.to(device).eval()
    return load_classifier(classifier, device)


@torch.no_grad()
def embed(x: torch.Tensor, classifier="mnist", batch_size: int = 500,
          check: bool = True) -> Embedding:
    """Run the classifier over images in batches, on the images' device.

    Args:
        x: images `(N, 1, 28, 28)` in [-1, 1], on any device.
        classifier: "mnist", "fashion-mnist", a weight file, or a loaded `SmallCNN`.
        batch_size: images per forward pass (memory, not results).
        check: check the value range (off for generator output, which is in range anyway).
    Returns:
        an `Embedding` with `features (N, F)` and `logits (N, K)`, float32, on `x.device`.
    Introduced in chapter 7 (evaluating GANs).
    """
    if isinstance(x, Embedding):
        return x
    if not torch.is_tensor(x) or x.dim() != 4 or tuple(x.shape[1:]) != (1, 28, 28):
        shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
        raise ValueError(f"the metrics' classifier takes grey 28x28 images (N, 1, 28, 28); got "
                         f"{shape}. For stacked MNIST use ganlib.mode_metrics."
                         "stacked_mnist_metrics; resize other images to 28x28 first.")
    if len(x) == 0:
        raise ValueError("no images to embed; pass at least one image")
    if check:
        check_images(x)
    model = _classifier(classifier, x.device)
    features, logits = [], []
    for i in range(0, len(x), batch_size):
        f = model.features(x[i:i + batch_size].float())  # (B, 1, 28, 28) -> (B, F)
        features.append(f)
        logits.append(model.head(f))  # (B, F) -> (B, K)
    return Embedding(torch.cat(features), torch.cat(logits))


# ----------------------------------------------------------------------------- Fréchet distance

def feature_stats(features: torch.Tensor):
    """Mean `(F,)` and covariance `(F, F)` of features `(N, F)`, in float64."""
    f = features.double()
    if len(f) < 2:
        raise ValueError("a covariance needs at least 2 samples; use a few thousand for FID")
    mu = f.mean(0)
    fc = f - mu
    return mu, fc.T @ fc / (len(f) - 1)  # (F,), (F, F)


def _sqrtm_psd(s: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix by eigendecomposition."""
    w, v = torch.linalg.eigh(s)
    return (v * w.clamp(min=0).sqrt()) @ v.T


def frechet_distance_from_stats(mu1, sigma1, mu2, sigma2) -> float:
    """Squared Fréchet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2)::

        d^2 = |mu1 - mu2|^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^(1/2)).

    The last trace is computed stably as the sum of square roots of the eigenvalues of the
    symmetric matrix sigma1^(1/2) sigma2 sigma1^(1/2) (same eigenvalues as sigma1 sigma2),
    in float64: no complex residue, no failure on singular covariances.
    Introduced in chapter 7 (evaluating GANs).
    """
    dev = mu1.device
    mu1, sigma1, mu2, sigma2 = (t.to(dev, torch.float64) for t in (mu1, sigma1, mu2, sigma2))
    root1 = _sqrtm_psd(sigma1)
    m = root1 @ sigma2 @ root1
    eig = torch.linalg.eigvalsh((m + m.T) / 2).clamp(min=0)  # symmetrise rounding errors away
    d2 = (mu1 - mu2).square().sum() + sigma1.trace() + sigma2.trace() - 2 * eig.sqrt().sum()
    return max(d2.item(), 0.0)  # rounding can make identical sets give -1e-12


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """Squared Fréchet distance between Gaussians fitted to two feature sets `(N, F)`, `(M, F)`.

    Symmetric, zero for identical sets, on CPU or GPU. Introduced in chapter 7.
    """
    return frechet_distance_from_stats(*feature_stats(features_a),
                                       *feature_stats(features_b.to(features_a.device)))


def fid(x_real, x_fake, classifier="mnist", batch_size: int = 500) -> float:
    """FID-MNIST: the Fréchet distance between real and generated images in the penultimate
    feature space of ganlib's classifier (lower is better; 0 for identical sets).

    Args:
        x_real, x_fake: images `(N, 1, 28, 28)` in [-1, 1], or `Embedding` objects of them.
            FID is biased upwards for small N: compare values at the same sample sizes.
        classifier: "mnist" (default) or "fashion-mnist", a weight file or a `SmallCNN`.
    Returns:
        the squared distance as a float. Not comparable with Inception FID. At 10,000 vs
        10,000: ~0.03 between real digits, ~1.7 with one class missing, ~50 for a single
        class, ~650 for noise (benchmarks/README.md).
    Introduced in chapter 7 (evaluating GANs).
    """
    a, b = embed(x_real, classifier, batch_size), embed(x_fake, classifier, batch_size)
    return frechet_distance(a.features, b.features)


# ----------------------------------------------------------------------------- classes

def classifier_score(x, classifier="mnist", batch_size: int = 500) -> float:
    """exp E_x KL(p(y|x) || p(y)): the Inception score with ganlib's classifier.

    Args:
        x: images `(N, 1, 28, 28)` in [-1, 1], or their `Embedding`.
    Returns:
        a float between 1 (one class, or unsure predictions) and the number of classes
        (confident predictions spread evenly over all classes). Higher is better.
    Introduced in chapter 7 (evaluating GANs).
    """
    log_p = F.log_softmax(embed(x, classifier, batch_size).logits.double(), dim=1)  # (N, K)
    log_py = torch.logsumexp(log_p, dim=0) - math.log(len(log_p))  # log mean_x p(y|x), (K,)
    kl = (log_p.exp() * (log_p - log_py)).sum(1)  # (N,)
    return kl.mean().exp().item()


def class_histogram(x, classifier="mnist", batch_size: int = 500) -> torch.Tensor:
    """Fraction of images assigned to each class by the classifier.

    Args:
        x: images `(N, 1, 28, 28)` in [-1, 1], or their `Embedding`.
    Returns:
        `(K,)` float64 fractions on the CPU, summing to 1.
    Introduced in chapter 7 (evaluating GANs).
    """
    logits = embed(x, classifier, batch_size).logits
    counts = torch.bincount(logits.argmax(1).cpu(), minlength=logits.shape[1])
    return counts.double() / counts.sum()


def kl_to_uniform(hist) -> float:
    """KL(q || uniform) in nats for a histogram `(K,)` (counts or fractions) over K classes.

    0 when balanced, log K when everything is in one class. Empty classes add nothing: this
    is the "reverse KL" of the mode-collapse papers (VEEGAN, PacGAN).
    Introduced in chapter 7 (evaluating GANs).
    """
    q = torch.as_tensor(hist, dtype=torch.float64).cpu()
    if q.sum() <= 0:
        raise ValueError("the histogram is empty (all zeros); there is nothing to compare")
    q = q / q.sum()
    q = q[q > 0]
    return (q * (q * len(hist)).log()).sum().item()


def classes_covered(hist, min_fraction: float = 0.01) -> int:
    """Number of classes holding at least `min_fraction` of the samples (default 1%).

    The threshold keeps a handful of misclassified images (the classifier errs on ~1% of
    real digits) from counting as coverage; `min_fraction=0` counts any class seen.
    Introduced in chapter 7 (evaluating GANs).
    """
    q = torch.as_tensor(hist, dtype=torch.float64)
    q = q / q.sum()
    return int((q > 0).logical_and(q >= min_fraction).sum())


# ----------------------------------------------------------------------------- precision, recall

def _knn_radii(f: torch.Tensor, k: int, batch_size: int) -> torch.Tensor:
    """Distance from each row of `f (N, F)` to its k-th nearest other row, `(N,)`."""
    if k >= len(f):
        raise ValueError(f"k={k} nearest neighbours need more than {k} samples, got {len(f)}")
    return torch.cat([torch.cdist(f[i:i + batch_size], f).topk(k + 1, largest=False).values[:, k]
                      for i in range(0, len(f), batch_size)])  # k+1: each point is its own 0th


def _inside(query: torch.Tensor, ref: torch.Tensor, radii: torch.Tensor, batch_size: int):
    """For each query row: is it inside some ball (ref_j, radii_j)? `(M,)` bool."""
    return torch.cat([(torch.cdist(query[i:i + batch_size], ref) <= radii).any(1)
                      for i in range(0, len(query), batch_size)])


def precision_recall(x_real, x_fake, k: int = 3, classifier="mnist",
                     batch_size: int = 1000) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) in the classifier's features.

    Each set's manifold is the union of balls around its samples, each ball reaching the
    sample's k-th nearest neighbour. Precision: the fraction of generated samples inside
    the real manifold (quality). Recall: the fraction of real samples inside the generated
    manifold (coverage). Distances are computed `batch_size` rows at a time, so 10k x 10k
    fits in memory.

    Args:
        x_real, x_fake: images `(N, 1, 28, 28)` in [-1, 1], or their `Embedding` objects.
        k: neighbours per ball; 3 as in the paper.
    Returns:
        `(precision, recall)`, floats in [0, 1]. Mode collapse: high precision, low recall.
    Introduced in chapter 7 (evaluating GANs).
    """
    real = embed(x_real, classifier).features
    fake = embed(x_fake, classifier).features.to(real.device)
    precision = _inside(fake, real, _knn_radii(real, k, batch_size), batch_size)
    recall = _inside(real, fake, _knn_radii(fake, k, batch_size), batch_size)
    return precision.float().mean().item(), recall.float().mean().item()


def image_metrics(x_real, x_fake, classifier="mnist", k: int = 3) -> dict:
    """All the image measures at once, embedding each set a single time.

    Returns `{"fid", "classifier_score", "kl_to_uniform", "classes_covered", "precision",
    "recall"}` for images (or `Embedding` objects) `(N, 1, 28, 28)`. Introduced in chapter 7.
    """
    real, fake = embed(x_real, classifier), embed(x_fake, classifier)
    hist = class_histogram(fake)
    precision, recall = precision_recall(real, fake, k)
    return {"fid": frechet_distance(real.features, fake.features),
            "classifier_score": classifier_score(fake), "kl_to_uniform": kl_to_uniform(hist),
            "classes_covered": classes_covered(hist), "precision": precision, "recall": recall}


# ----------------------------------------------------------------------------- during training

def fid_evaluator(x_real, n: int = 2000, classifier="mnist", batch_size: int = 500,
                  seed: int | None = 0):
    """Make `evaluate(G)` for `ganlib.train(..., evaluate=...)`: image measures of n samples.

    Args:
        x_real: the real images `(N, 1, 28, 28)` to compare with (embedded once, here);
            e.g. 10,000 training images.
        n: generated samples per evaluation (a fixed size: FID depends on it).
        seed: fixed noise for every evaluation (None: fresh noise each time).
    Returns:
        `evaluate(G) -> {"fid", "classifier_score", "kl_to_uniform", "classes_covered"}`.
        Use `TrainConfig(eval_every=..., best_metric="fid")` to keep the best generator.
    Introduced in chapter 7 (evaluating GANs).
    """
    clf = _classifier(classifier, x_real.device)
    real_stats = feature_stats(embed(x_real, clf, batch_size).features)

    def evaluate(G) -> dict:
        x_fake = generate_many(G, n, batch_size, seed)
        fake = embed(x_fake, clf.to(x_fake.device), batch_size, check=False)
        hist = class_histogram(fake)
        return {"fid": frechet_distance_from_stats(*feature_stats(fake.features), *real_stats),
                "classifier_score": classifier_score(fake), "kl_to_uniform": kl_to_uniform(hist),
                "classes_covered": float(classes_covered(hist))}
    return evaluate
