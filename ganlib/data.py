"""Datasets as tensors in [-1, 1], and fast shuffled batches.

Images are `(N, C, H, W)` float tensors in [-1, 1] (the range of the generator's tanh);
2-D mixtures are `(N, 2)` points. When a dataset fits, it lives as one tensor on the
training device and batches are drawn by index: no per-item PIL work, no worker processes.
"""
from __future__ import annotations

import math
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

DATA_ENV = "GANLIB_DATA"
SAMPLE_PATH = Path(__file__).parent / "assets" / "mnist_sample.npz"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
PRELOAD_LIMIT_BYTES = 2 * 2**30  # image folders larger than this as float32 are read lazily


@dataclass
class ImageData:
    """A dataset: `x` images `(N, C, H, W)` in [-1, 1] (or points `(N, 2)`), optional labels.

    `x` is a Tensor, except for image folders too large to preload, where it is a
    `torch.utils.data.Dataset` of `(C, H, W)` tensors. `source` says where it came from.
    """
    x: torch.Tensor | Dataset
    y: torch.Tensor | None
    name: str
    source: str

    def __len__(self) -> int:
        return len(self.x)


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
    import torchvision
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

class _ImageFiles(Dataset):
    """Images read one at a time (only for folders too large to keep in memory)."""

    def __init__(self, files, image_size: int):
        import torchvision.transforms as T
        self.files = files
        self.transform = T.Compose([T.Resize(image_size), T.CenterCrop(image_size),
                                    T.ToTensor(), T.Normalize([0.5] * 3, [0.5] * 3)])

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        from PIL import Image
        with Image.open(self.files[i]) as im:
            return self.transform(im.convert("RGB"))


def _resize_crop(x: torch.Tensor, image_size: int) -> torch.Tensor:
    """Resize the short side to `image_size` (antialiased), then center-crop a square."""
    import torchvision.transforms.functional as TF
    x = TF.resize(x, image_size, antialias=True)
    return TF.center_crop(x, image_size)


def load_images(path: str | os.PathLike, image_size: int = 64) -> ImageData:
    """Any folder of images (searched recursively, like torchvision's `ImageFolder` but
    class folders optional), or an `.npz` whose `images` array is `(N, H, W, 3)` uint8,
    as RGB tensors resized and center-cropped to `image_size` (32 or 64)."""
    from PIL import Image
    path = Path(path)
    if image_size not in (32, 64):
        raise ValueError(f"image_size must be 32 or 64 for colour image sets, got {image_size}")
    if path.suffix == ".npz":
        with np.load(path) as f:
            if "images" not in f:
                raise ValueError(f"{path} has no 'images' array (keys: {list(f.keys())})")
            x = torch.from_numpy(f["images"]).permute(0, 3, 1, 2)  # (N, H, W, 3) -> (N, 3, H, W)
        if len(x) == 0:
            raise ValueError(f"{path} holds no images")
        return ImageData(to_signed(_resize_crop(x, image_size)), None, path.stem, str(path))
    if not path.is_dir():
        raise FileNotFoundError(f"image folder {path} does not exist")
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found under {path}; "
                         "point --data at a folder that contains image files")
    if len(files) * 3 * image_size**2 * 4 > PRELOAD_LIMIT_BYTES:
        return ImageData(_ImageFiles(files, image_size), None, path.name, f"{path} (lazy)")
    from tqdm.auto import tqdm
    images = []
    for f in tqdm(files, desc=f"reading {path.name}", leave=False, disable=len(files) < 2000):
        with Image.open(f) as im:
            arr = torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1)
        images.append(_resize_crop(arr, image_size))
    return ImageData(to_signed(torch.stack(images)), None, path.name, str(path))


# ----------------------------------------------------------------------------- 2-D mixtures

def ring_means(k: int = 8, radius: float = 1.0) -> torch.Tensor:
    """Means of the ring mixture, `(k, 2)`, at angles 2*pi*i/k for i = 0..k-1.

    Not `linspace(0, 2*pi, k)`, which puts the last mean on top of the first.
    """
    angles = 2 * math.pi * torch.arange(k, dtype=torch.float64) / k
    return torch.stack([radius * angles.cos(), radius * angles.sin()], dim=1).float()


def grid_means(side: int = 5, spacing: float = 2.0) -> torch.Tensor:
    """Means of the grid mixture, `(side**2, 2)`: {-4, -2, 0, 2, 4}^2 by default."""
    ticks = (torch.arange(side, dtype=torch.float32) - (side - 1) / 2) * spacing
    gx, gy = torch.meshgrid(ticks, ticks, indexing="ij")
    return torch.stack([gx.flatten(), gy.flatten()], dim=1)


def sample_mixture(means: torch.Tensor, n: int, std: float,
                   generator: torch.Generator | None = None):
    """`n` points from an equal-weight Gaussian mixture; returns `(points (n, 2), modes (n,))`."""
    modes = torch.randint(len(means), (n,), generator=generator)
    points = means[modes] + std * torch.randn(n, means.shape[1], generator=generator)
    return points, modes


def ring_of_gaussians(n: int = 100_000, k: int = 8, radius: float = 1.0, std: float = 0.01,
                      seed: int = 0) -> ImageData:
    """A ring of `k` Gaussians (VEEGAN/PacGAN's 2-D benchmark), `(n, 2)` points."""
    g = torch.Generator().manual_seed(seed)
    x, modes = sample_mixture(ring_means(k, radius), n, std, g)
    return ImageData(x, modes, "ring", f"ring of {k} Gaussians, radius {radius}, std {std}")


def grid_of_gaussians(n: int = 100_000, side: int = 5, spacing: float = 2.0,
                      std: float = 0.05, seed: int = 0) -> ImageData:
    """A grid of `side**2` Gaussians, means {-4, -2, 0, 2, 4}^2 by default, `(n, 2)` points."""
    g = torch.Generator().manual_seed(seed)
    x, modes = sample_mixture(grid_means(side, spacing), n, std, g)
    return ImageData(x, modes, "grid", f"grid of {side * side} Gaussians, std {std}")


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
    elif name == "ring":
        return ring_of_gaussians()
    elif name == "grid":
        return grid_of_gaussians()
    elif Path(name).exists():
        return load_images(name, image_size or 64)
    else:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)} "
                         "or give the path of an image folder or .npz file")
    if image_size is not None and image_size != data.x.shape[-1]:
        data.x = _resize_crop(data.x, image_size).clamp(-1, 1)
    return data


# ----------------------------------------------------------------------------- batches

class TensorBatches:
    """Endless shuffled batches of a tensor, drawn by index on `device`.

    Each epoch's order comes from `seed` and the epoch number alone, so a run resumed at
    any step sees the same batches as an uninterrupted one. Only full batches are drawn.
    With labels `y` `(N,)`, each batch is a pair `(x, y)` (conditional GANs, chapter 9).
    """

    def __init__(self, x: torch.Tensor, batch_size: int, device: torch.device, seed: int = 0,
                 y: torch.Tensor | None = None):  # [cond] optional labels
        if len(x) == 0:
            raise ValueError("the dataset is empty; check the data path")
        if batch_size > len(x):
            raise ValueError(f"batch_size {batch_size} is larger than the dataset "
                             f"({len(x)} items); use a batch size of at most {len(x)}")
        self.x = _fit_on(x, device)
        self.y = None if y is None else _fit_on(y, device)  # [cond]
        self.device, self.batch_size, self.seed = device, batch_size, seed
        self.steps_per_epoch = len(x) // batch_size

    def epoch_order(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(len(self.x), generator=g)

    def iterate(self, start_batch: int = 0):
        """Yield batches forever, starting at global batch number `start_batch`."""
        epoch, i = divmod(start_batch, self.steps_per_epoch)
        while True:
            order = self.epoch_order(epoch).to(self.x.device)
            for j in range(i, self.steps_per_epoch):
                idx = order[j * self.batch_size:(j + 1) * self.batch_size]
                x = self.x[idx].to(self.device, non_blocking=True)
                yield x if self.y is None else (x, self.y[idx].to(self.device))  # [cond]
            epoch, i = epoch + 1, 0


class LoaderBatches(TensorBatches):
    """The same interface over a lazy `Dataset` (a DataLoader with workers)."""

    def __init__(self, dataset: Dataset, batch_size: int, device: torch.device, seed: int = 0,
                 num_workers: int = 2):
        if len(dataset) == 0:
            raise ValueError("the dataset is empty; check the data path")
        if batch_size > len(dataset):
            raise ValueError(f"batch_size {batch_size} is larger than the dataset "
                             f"({len(dataset)} items); use at most {len(dataset)}")
        self.dataset, self.device, self.batch_size, self.seed = dataset, device, batch_size, seed
        self.num_workers = num_workers
        self.x = dataset
        self.steps_per_epoch = len(dataset) // batch_size

    def iterate(self, start_batch: int = 0):
        epoch, i = divmod(start_batch, self.steps_per_epoch)
        while True:
            order = self.epoch_order(epoch)[i * self.batch_size:].tolist()
            loader = DataLoader(self.dataset, batch_size=self.batch_size, sampler=order,
                                drop_last=True, num_workers=self.num_workers,
                                pin_memory=self.device.type == "cuda")
            for x in loader:
                yield x.to(self.device, non_blocking=True)
            epoch, i = epoch + 1, 0


def _fit_on(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Move the whole dataset to `device` when it fits (half the free GPU memory),
    else keep it in pinned CPU memory and move one batch at a time."""
    if device.type != "cuda":
        return x.to(device)
    free, _ = torch.cuda.mem_get_info(device)
    if x.numel() * x.element_size() < free // 2:
        return x.to(device)
    return x.pin_memory()


def make_batches(data: ImageData | torch.Tensor | Dataset, batch_size: int,
                 device: torch.device, seed: int = 0, labels: bool = False) -> TensorBatches:
    """Batches for training: on-device indexing for tensors, a DataLoader otherwise.
    `labels=True` yields `(x, y)` pairs from a labelled, preloaded `ImageData`."""
    x = data.x if isinstance(data, ImageData) else data
    y = _labels(data) if labels else None  # [cond]
    if torch.is_tensor(x):
        return TensorBatches(x, batch_size, device, seed, y)  # [cond] y
    return LoaderBatches(x, batch_size, device, seed)


def _labels(data) -> torch.Tensor:  # [cond] the labels a conditional GAN trains on
    y = data.y if isinstance(data, ImageData) else None
    if y is None or not torch.is_tensor(data.x) or len(y) != len(data.x):
        raise ValueError("a conditional generator (num_classes > 0) needs labelled data: an "
                         "ImageData whose y holds one class per image, e.g. "
                         "ganlib.load_dataset('mnist'); this data has no labels")
    return y.long()
