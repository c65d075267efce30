"""Datasets as tensors in [-1, 1]: by name, from torchvision, or from an image folder.

Images are `(N, C, H, W)` float tensors in [-1, 1] (the range of the generator's tanh);
2-D mixtures are `(N, 2)` points (`ganlib.mixtures`). Every loader returns an
`ganlib.image_data.ImageData`; batches for training come from `ganlib.batches`.
Introduced in chapter 3 (a first GAN on MNIST).
"""
from __future__ import annotations

import math
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
import torchvision
from torch.utils.data import Dataset

from . import mixtures
from .image_data import ImageData
from .image_folder import read_folder, read_npz, resize_crop

DATA_ENV = "GANLIB_DATA"
SAMPLE_PATH = Path(__file__).parent / "assets" / "mnist_sample.npz"


# ----------------------------------------------------------------------------- ranges

def to_signed(x: torch.Tensor) -> torch.Tensor:
    """Map images from [0, 1] (or uint8 0..255) to [-1, 1], the range of a tanh output."""
    if x.dtype == torch.uint8:
        return x.float().div(127.5).sub(1.0)
    return x * 2.0 - 1.0


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """Map images from [-1, 1] back to [0, 1] for display, clamping small overshoots."""
    return ((x + 1.0) / 2.0).clamp(0.0, 1.0)


def check_images(x: torch.Tensor, channels: int | None = None,
                 image_size: int | None = None, tol: float = 1e-3) -> None:
    """Raise a `ValueError` that says what to do unless `x` is a float batch `(B, C, H, W)`
    in [-1, 1] with the given channel count and size."""
    if not torch.is_tensor(x):
        raise TypeError(f"images must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype == torch.uint8:
        raise ValueError("images are uint8 (0..255); the generator's tanh makes [-1, 1]. "
                         "Use ganlib.data.to_signed(x).")
    if x.dim() != 4:
        raise ValueError(f"images must have shape (B, C, H, W); got {tuple(x.shape)}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"the model expects {channels} channel(s) but the images have "
                         f"{x.shape[1]} (shape {tuple(x.shape)}); pick a model built with "
                         f"channels={x.shape[1]} or convert the images")
    if image_size is not None and tuple(x.shape[2:]) != (image_size, image_size):
        raise ValueError(f"the model makes {image_size}x{image_size} images but the data is "
                         f"{x.shape[2]}x{x.shape[3]}; load it with image_size={image_size}")
    lo, hi = x.min().item(), x.max().item()
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError("images contain NaN or inf values")
    if lo < -1 - tol or hi > 1 + tol:
        raise ValueError(f"images must be in [-1, 1] to match the generator's tanh output; "
                         f"got min={lo:.3g} max={hi:.3g}. Scale them, e.g. x / 127.5 - 1.")
    if lo >= -tol and hi > 0.5:
        raise ValueError(f"images look like they are in [0, 1] (min={lo:.3g} max={hi:.3g}) "
                         "but the generator's tanh makes [-1, 1]; use "
                         "ganlib.data.to_signed(x).")


# ----------------------------------------------------------------------------- roots

def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data folder: `root` if given, else `$GANLIB_DATA`, else `~/.cache/ganlib`."""
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    return Path.home() / ".cache" / "ganlib"


def _writable_root(root: Path, folder: str) -> Path:
    """torchvision extracts archives next to them; copy a read-only `root/folder/raw`
    (such as a shared data folder) into the cache first."""
    raw = root / folder / "raw"
    if not raw.is_dir() or os.access(raw, os.W_OK):
        return root
    cache = Path.home() / ".cache" / "ganlib"
    dst = cache / folder / "raw"
    dst.mkdir(parents=True, exist_ok=True)
    for f in raw.iterdir():
        if f.is_file() and not (dst / f.name).exists():
            shutil.copy2(f, dst / f.name)
    return cache


def _torchvision_images(kind: str, root: Path, train: bool):
    cls = {"mnist": torchvision.datasets.MNIST,
           "fashion-mnist": torchvision.datasets.FashionMNIST,
           "cifar10": torchvision.datasets.CIFAR10}[kind]
    folder = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "cifar10": ""}[kind]
    if folder:
        root = _writable_root(root, folder)
    ds = cls(root=str(root), train=train, download=True)
    x = torch.as_tensor(np.asarray(ds.data))  # uint8 (N, H, W) or (N, H, W, 3)
    x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)  # -> (N, C, H, W)
    return to_signed(x.contiguous()), torch.as_tensor(np.asarray(ds.targets))


def load_mnist_sample(train: bool = True) -> ImageData:
    """The small labelled MNIST sample shipped inside ganlib (works with no network).

    Balanced across digits; see `ganlib/assets/README.md` for provenance (CC BY-SA 3.0).
    """
    with np.load(SAMPLE_PATH) as f:
        split = "train" if train else "test"
        x = torch.from_numpy(f[f"x_{split}"]).unsqueeze(1)  # (N, 28, 28) -> (N, 1, 28, 28)
        y = torch.from_numpy(f[f"y_{split}"]).long()
    return ImageData(to_signed(x), y, "mnist-sample", f"bundled MNIST sample ({split})")


class DataUnavailable(RuntimeError):
    """A torchvision dataset that is neither on disk nor downloadable (offline)."""


def load_torchvision(name: str, root=None, train: bool = True,
                     fallback_to_sample: bool = True) -> ImageData:
    """MNIST, Fashion-MNIST or CIFAR-10 through torchvision (downloads when missing).

    Offline, with `fallback_to_sample`, MNIST falls back to the bundled sample and says so.
    """
    root = data_root(root)
    try:
        x, y = _torchvision_images(name, root, train)
    except (RuntimeError, OSError) as err:  # torchvision raises these when offline
        if name != "mnist" or not fallback_to_sample:
            raise DataUnavailable(f"could not load {name} from {root} ({err}). Download it "
                                  f"with network access, or set {DATA_ENV} to a folder "
                                  "holding it in torchvision's layout.") from err
        print(f"ganlib: MNIST not found under {root} and no network; using the bundled "
              f"{len(load_mnist_sample(train))}-image sample instead.", file=sys.stderr)
        return load_mnist_sample(train)
    return ImageData(x, y.long(), name, f"torchvision {name} ({root})")


# ----------------------------------------------------------------------------- image folders

def load_images(path: str | os.PathLike, image_size: int = 64) -> ImageData:
    """Any folder of images (searched recursively, like torchvision's `ImageFolder` but
    class folders optional), or an `.npz` whose `images` array is `(N, H, W, 3)` uint8,
    as RGB tensors resized and center-cropped to `image_size` (32 or 64).

    Files with an image extension that cannot be read (not images, truncated) are skipped
    with one `UserWarning` naming them; a folder where none can be read raises a
    `ValueError`. A folder too large to preload is read lazily during training, where an
    unreadable file raises a `ValueError` naming it (`ganlib.image_folder`).
    Introduced in chapter 4 (DCGAN).
    """
    path = Path(path)
    if image_size not in (32, 64):
        raise ValueError(f"image_size must be 32 or 64 for colour image sets, got {image_size}")
    if path.suffix == ".npz" and path.is_file():
        return ImageData(to_signed(read_npz(path, image_size)), None, path.stem, str(path))
    if not path.is_dir():
        what = "is a file, not an image folder or .npz" if path.exists() else "does not exist"
        raise FileNotFoundError(f"image folder {path} {what}; give a folder of images")
    x = read_folder(path, image_size)
    if isinstance(x, Dataset):
        return ImageData(x, None, path.name, f"{path} (lazy)")
    return ImageData(to_signed(x), None, path.name, str(path))


# ----------------------------------------------------------------------------- stacked MNIST

def stacked_mnist(mnist: ImageData, n: int = 60_000, seed: int = 0) -> ImageData:
    """Stacked MNIST: three random digits as the R, G, B channels; 1,000 modes.

    Label = 100 * digit_R + 10 * digit_G + digit_B.
    """
    if mnist.y is None or mnist.x.shape[1] != 1:
        raise ValueError("stacked_mnist needs labelled one-channel MNIST (N, 1, 28, 28)")
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(len(mnist.x), (n, 3), generator=g)
    x = mnist.x[idx].squeeze(2)  # (n, 3, 1, 28, 28) -> (n, 3, 28, 28)
    d = mnist.y[idx]  # (n, 3)
    return ImageData(x, d[:, 0] * 100 + d[:, 1] * 10 + d[:, 2], "stacked-mnist",
                     f"stacked MNIST from {mnist.source}")


# ----------------------------------------------------------------------------- by name

DATASETS = ("mnist", "fashion-mnist", "cifar10", "mnist-sample", "stacked-mnist",
            "ring", "grid")


def load_dataset(name: str, root=None, image_size: int | None = None,
                 train: bool = True) -> ImageData:
    """Load a dataset by name (one of `DATASETS`) or from a path (image folder or .npz).

    Introduced in chapter 3 (a first GAN on MNIST).
    """
    if name in ("mnist", "fashion-mnist", "cifar10"):
        data = load_torchvision(name, root, train)
    elif name == "mnist-sample":
        data = load_mnist_sample(train)
    elif name == "stacked-mnist":
        data = stacked_mnist(load_torchvision("mnist", root, train))
    elif name in ("ring", "grid"):
        return mixtures.ring_of_gaussians() if name == "ring" else mixtures.grid_of_gaussians()
    elif Path(name).exists():
        return load_images(name, image_size or 64)
    elif "/" in name or "\\" in name or name.startswith(".") or name.endswith(".npz"):
        raise FileNotFoundError(f"no file or folder at {name}; check the path, or use one "
                                f"of the datasets {', '.join(DATASETS)}")
    else:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)} "
                         "or give the path of an image folder or .npz file")
    if image_size is not None and image_size != data.x.shape[-1]:
        data.x = resize_crop(data.x, image_size).clamp(-1, 1)
    return data
