"""Endless shuffled batches for training, the same after a resume as without one.

A dataset that fits lives as one tensor on the training device and batches are drawn by
index: no per-item PIL work, no worker processes. Image folders too large to keep in memory
go through a DataLoader with the same interface. Introduced in chapter 3 (a first GAN).
"""
from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset


class TensorBatches:
    """Endless shuffled batches of a tensor, drawn by index on `device`.

    Each epoch's order comes from `seed` and the epoch number alone, so a run resumed at
    any step sees the same batches as an uninterrupted one. Only full batches are drawn.
    With labels `y` `(N,)`, each batch is a pair `(x, y)` (conditional GANs, chapter 9).
    """

    def __init__(self, x: torch.Tensor, batch_size: int, device: torch.device, seed: int = 0,
                 y: torch.Tensor | None = None):
        if len(x) == 0:
            raise ValueError("the dataset is empty; check the data path")
        if batch_size > len(x):
            raise ValueError(f"batch_size {batch_size} is larger than the dataset "
                             f"({len(x)} items); use a batch size of at most {len(x)}")
        self.x = _fit_on(x, device)
        self.y = None if y is None else _fit_on(y, device)
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
                yield x if self.y is None else (x, self.y[idx].to(self.device))
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


def make_batches(data, batch_size: int, device: torch.device, seed: int = 0,
                 labels: bool = False) -> TensorBatches:
    """Batches for training from an `ImageData`, a tensor or a `Dataset`: on-device
    indexing for tensors, a DataLoader otherwise. Introduced in chapter 3 (a first GAN).
    `labels=True` yields `(x, y)` pairs from a labelled, preloaded `ImageData` (chapter 9)."""
    x = data if torch.is_tensor(data) or isinstance(data, Dataset) else data.x  # ImageData
    y = _labels(data, x) if labels else None
    if torch.is_tensor(x):
        return TensorBatches(x, batch_size, device, seed, y)
    return LoaderBatches(x, batch_size, device, seed)


def _labels(data, x) -> torch.Tensor:
    """The labels a conditional GAN trains on, or one line saying why there are none."""
    y = getattr(data, "y", None)
    if y is None or not torch.is_tensor(x) or len(y) != len(x):
        raise ValueError("a conditional generator (num_classes > 0) needs labelled data: an "
                         "ImageData whose y holds one class per image, e.g. "
                         "ganlib.load_dataset('mnist'); this data has no labels")
    return y.long()
