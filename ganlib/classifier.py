"""The small CNN whose features the metrics use ("FID-MNIST"), its training and loading.

Inception-v3 needs weights from the internet and was never meant for 28x28 digits, so
ganlib ships its own classifiers, one for MNIST and one for Fashion-MNIST (the approach of
TF-GAN's MNIST metrics). `scripts/train_classifiers.py` rebuilds both weight files;
`ganlib/assets/classifiers.json` records how they were made and how accurate they are.
Introduced in chapter 7 (evaluating GANs).
"""
from __future__ import annotations

import hashlib
import io
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoint import atomic_write, safe_load
from .device import get_device

ASSETS = Path(__file__).parent / "assets"
CLASSIFIERS = {"mnist": ASSETS / "mnist_cnn.pt", "fashion-mnist": ASSETS / "fashion_cnn.pt"}
FORMAT = "ganlib-classifier"
REBUILD = ("Reinstall ganlib, or rebuild the weights with "
           "`python scripts/train_classifiers.py --root DATA` (DATA holds MNIST/raw and "
           "FashionMNIST/raw).")


class ClassifierError(RuntimeError):
    """A classifier weight file that is missing, corrupt or not a ganlib classifier."""


def _block(c_in, c_out):
    return nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()


class SmallCNN(nn.Module):
    """Three conv layers (BatchNorm, ReLU), global average pooling, one linear layer:
    (B, 1, 28, 28) in [-1, 1] -> logits (B, 10). About 94k parameters (~390 kB).

    `features(x)`, the penultimate layer `(B, feature_dim)`, is the last conv layer averaged
    over positions, as Inception-v3's pool3 is for FID. The Fréchet distance and
    precision/recall are measured there. Why not a dense hidden layer: its units learn to
    detect classes, so noise, which matches no class, lands near the centre of the real
    digits and looks closer to them than a single class does. Averaged conv features
    keep texture: noise excites every filter everywhere and lands far away.
    """

    def __init__(self, num_classes: int = 10, feature_dim: int = 128):
        super().__init__()
        self.num_classes, self.feature_dim = num_classes, feature_dim
        self.conv = nn.Sequential(  # BatchNorm: fast, steady training on a CPU budget
            *_block(1, 32), nn.MaxPool2d(2),            # -> (B, 32, 14, 14)
            *_block(32, 64), nn.MaxPool2d(2),           # -> (B, 64, 7, 7)
            *_block(64, feature_dim))                   # -> (B, F, 7, 7)
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).mean((2, 3))  # (B, 1, 28, 28) -> (B, F, 7, 7) -> (B, F)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (B, F) -> (B, num_classes)


def load_classifier(name: str | Path = "mnist", device="cpu") -> SmallCNN:
    """Load a shipped classifier ("mnist" or "fashion-mnist") or a weight file, in eval mode.

    Args:
        name: "mnist", "fashion-mnist", or the path of a file written by `save_classifier`.
        device: where to put it ("auto" picks CUDA when present).
    Returns:
        a `SmallCNN` in eval mode, mapping `(B, 1, 28, 28)` images in [-1, 1] to logits.
    Raises `ClassifierError` saying what to do when the file is missing or corrupt.
    The file is read with `torch.load(weights_only=True)`: no code runs from it.
    Introduced in chapter 7 (evaluating GANs).
    """
    path = CLASSIFIERS.get(str(name), Path(name))
    if not path.is_file():
        known = ", ".join(CLASSIFIERS)
        raise ClassifierError(f"no classifier weights at {path} (known names: {known}). "
                              + REBUILD)
    ckpt = safe_load(path, what="classifier file", todo=REBUILD, error=ClassifierError)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ClassifierError(f"{path} is not a ganlib classifier file. " + REBUILD)
    model = SmallCNN(ckpt["num_classes"], ckpt["feature_dim"])
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as err:
        raise ClassifierError(f"{path} does not fit ganlib's SmallCNN "
                              f"({str(err).splitlines()[0][:200]}). " + REBUILD) from err
    return model.to(get_device(device)).eval()


def save_classifier(model: SmallCNN, path: str | Path, **info) -> str:
    """Write `model`'s weights and `info` (plain values) atomically; return the file's sha256."""
    payload = {"format": FORMAT, "num_classes": model.num_classes,
               "feature_dim": model.feature_dim, **info,
               "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}
    buffer = io.BytesIO()  # not torch.save(tmp): the archive would be named after tmp,
    torch.save(payload, buffer)  # and the same weights would give a different sha256
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(buffer.getvalue()))
    return file_sha256(path)


def file_sha256(path: str | Path) -> str:
    """The sha256 hex digest of a file (recorded beside the shipped weights)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """Fraction of images `x (N, 1, 28, 28)` whose predicted class equals `y (N,)`."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct = 0
    for i in range(0, len(x), batch_size):
        logits = model(x[i:i + batch_size].to(device))
        correct += (logits.argmax(1).cpu() == y[i:i + batch_size]).sum().item()
    model.train(was_training)
    return correct / len(x)


def _shift(x: torch.Tensor, max_shift: int, g: torch.Generator) -> torch.Tensor:
    """Translate each image by up to `max_shift` pixels (zero-padded with the background -1)."""
    b, _, h, w = x.shape
    p = max_shift
    padded = F.pad(x, (p, p, p, p), value=-1.0)  # (B, 1, H+2p, W+2p)
    dy, dx = torch.randint(0, 2 * p + 1, (2, b), generator=g)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None].expand(b, 1, h, w + 2 * p)
    out = padded.gather(2, rows)  # (B, 1, H, W+2p)
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :].expand(b, 1, h, w)
    return out.gather(3, cols)  # (B, 1, H, W)


def train_classifier(x: torch.Tensor, y: torch.Tensor, num_epochs: int = 6,
                     batch_size: int = 128, lr: float = 5e-3, max_shift: int = 0,
                     seed: int = 0, device="cpu", log=print) -> SmallCNN:
    """Train a `SmallCNN` on images `x (N, 1, 28, 28)` in [-1, 1] with labels `y (N,)`.

    Adam with a one-cycle learning-rate schedule; batches are drawn by index from the
    tensor (no DataLoader); `max_shift > 0` adds random translations. Deterministic for a
    given seed, device and thread count. Returns the model in eval mode.
    Introduced in chapter 7 (evaluating GANs).
    """
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    device = get_device(device)
    model = SmallCNN(int(y.max()) + 1).to(device)
    steps_per_epoch = math.ceil(len(x) / batch_size)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=num_epochs * steps_per_epoch)
    for epoch in range(num_epochs):
        order = torch.randperm(len(x), generator=g)
        total = 0.0
        for i in range(steps_per_epoch):
            idx = order[i * batch_size:(i + 1) * batch_size]
            xb = _shift(x[idx], max_shift, g) if max_shift else x[idx]
            loss = F.cross_entropy(model(xb.to(device)), y[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        log(f"epoch {epoch + 1}/{num_epochs}: train loss {total / steps_per_epoch:.4f}")
    return model.eval()
