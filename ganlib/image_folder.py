"""Reading image files: a folder of images (any depth) or an `.npz` array, resized and
center-cropped to a square.

`ganlib.data.load_images` turns what these return into an `ImageData` in [-1, 1]. Files with
an image extension that cannot be decoded (not images, truncated) are skipped with one
`UserWarning` naming them; if none can be read, a `ValueError` names the first.
Introduced in chapter 4 (DCGAN, on a folder of emoji).
"""
from __future__ import annotations

import pickle
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as TF
from PIL import Image
from torch.utils.data import Dataset
from tqdm.auto import tqdm

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
PRELOAD_LIMIT_BYTES = 2 * 2**30  # image folders larger than this as float32 are read lazily


class ImageFiles(Dataset):
    """Images read one at a time, as `(3, S, S)` float tensors in [-1, 1] (only for folders
    too large to keep in memory). An unreadable file raises a `ValueError` naming it."""

    def __init__(self, files, image_size: int):
        self.files = files
        self.transform = T.Compose([T.Resize(image_size), T.CenterCrop(image_size),
                                    T.ToTensor(), T.Normalize([0.5] * 3, [0.5] * 3)])

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        return self.transform(_read_rgb(self.files[i], strict=True))


def _read_rgb(file: Path, strict: bool = False):
    """The image in `file` as an RGB PIL image; None if it cannot be decoded (not an image,
    truncated, too large), or with `strict` a ValueError naming the file."""
    try:
        with Image.open(file) as im:
            return im.convert("RGB")  # decodes the whole file: a truncated one fails here
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        if strict:
            raise ValueError(f"cannot read image {file} ({err}); remove or replace it") from err
        return None


def resize_crop(x: torch.Tensor, image_size: int) -> torch.Tensor:
    """Resize `(N, C, H, W)` so the short side is `image_size` (antialiased), then
    center-crop a square `(N, C, image_size, image_size)`."""
    x = TF.resize(x, image_size, antialias=True)
    return TF.center_crop(x, image_size)


def read_folder(path: Path, image_size: int) -> torch.Tensor | ImageFiles:
    """Every image file under `path` as uint8 `(N, 3, S, S)`, or as a lazy `ImageFiles`
    when they would take more than `PRELOAD_LIMIT_BYTES` as float32."""
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS
                   and p.is_file())
    if not files:
        raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found under {path}; "
                         "point --data at a folder that contains image files")
    if len(files) * 3 * image_size**2 * 4 > PRELOAD_LIMIT_BYTES:
        return ImageFiles(files, image_size)
    images, skipped = [], []
    for f in tqdm(files, desc=f"reading {path.name}", leave=False, disable=len(files) < 2000):
        im = _read_rgb(f)
        if im is None:
            skipped.append(f)
            continue
        arr = torch.from_numpy(np.array(im)).permute(2, 0, 1)  # (H, W, 3) -> (3, H, W)
        images.append(resize_crop(arr, image_size))
    if not images:
        raise ValueError(f"none of the {len(files)} image files under {path} can be read "
                         f"(first: {files[0]}); check that they are images")
    if skipped:
        names = ", ".join(str(f) for f in skipped[:5]) + (", ..." if len(skipped) > 5 else "")
        warnings.warn(f"skipped {len(skipped)} unreadable image file(s) under {path}: {names}",
                      stacklevel=3)
    return torch.stack(images)  # (N, 3, S, S) uint8


def read_npz(path: Path, image_size: int) -> torch.Tensor:
    """The `images` array `(N, H, W, 3)` uint8 of an `.npz` file as `(N, 3, S, S)` uint8."""
    try:
        with np.load(path) as f:  # allow_pickle=False: a pickle is refused, never run
            keys = list(f.keys())
            images = f["images"] if "images" in keys else None
    except (OSError, EOFError, ValueError, zipfile.BadZipFile,
            pickle.UnpicklingError) as err:
        first = (str(err).splitlines() or [type(err).__name__])[0]
        raise ValueError(f"{path} is not a readable .npz file ({first}); save one with "
                         "numpy.savez(path, images=...)") from err
    if images is None:
        raise ValueError(f"{path} has no 'images' array (keys: {keys}); save the images "
                         "under the name 'images'")
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"{path}: 'images' must be uint8 (N, H, W, 3), got {images.dtype} "
                         f"{images.shape}")
    if len(images) == 0:
        raise ValueError(f"{path} holds no images")
    x = torch.from_numpy(images).permute(0, 3, 1, 2)  # (N, H, W, 3) -> (N, 3, H, W)
    return resize_crop(x, image_size)
