"""Shared fixtures for the ganlib tests.

Every test uses data that ganlib ships (the bundled MNIST sample) or that it makes itself
(synthetic tensors, PNG folders written into `tmp_path`); none touches the network.
"""
from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")  # figures are written to files, never shown

import pytest
import torch

import ganlib

# Mutation testing (tests/README.md): mutmut's coverage pass marks itself with
# MUTANT_UNDER_TEST=stats, which a `python -m ganlib` subprocess would inherit and fail on
# (it cannot record coverage); the pass keeps its own copy of the mark in this process.
if os.environ.get("MUTANT_UNDER_TEST") == "stats":
    del os.environ["MUTANT_UNDER_TEST"]


# One intra-op thread: these models are small, and on a shared 2-core machine OpenMP threads
# spinning against other processes made the suite several times slower. Override with
# GANLIB_TEST_THREADS=2 on an idle machine.
torch.set_num_threads(int(os.environ.get("GANLIB_TEST_THREADS", "1")))


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: trains an architecture for a few hundred steps (runs by default; "
        "deselect with -m 'not slow')")
    config.addinivalue_line(
        "markers", "gpu: needs a CUDA GPU (skipped without one; run them with "
        "`python3 -m pytest -o addopts=\"\" -p no:cacheprovider -m gpu tests/test_gpu.py`)")
    config.addinivalue_line(  # tests/test_distributed.py
        "markers", "distributed: starts two training processes (Gloo on the CPU; runs by "
        "default; deselect with -m 'not distributed')")


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def mnist_sample():
    """The bundled 5,000-image MNIST training sample, `(5000, 1, 28, 28)` in [-1, 1]."""
    return ganlib.load_mnist_sample()


def colour_blobs(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """`n` synthetic colour images `(n, 3, size, size)` in [-1, 1]: one soft disc of a random
    colour at a random place on a dark background. Small, structured, and free."""
    g = torch.Generator().manual_seed(seed)
    coords = torch.arange(size, dtype=torch.float32)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")  # (S, S) each
    centre = torch.rand(n, 2, generator=g) * size * 0.6 + size * 0.2  # (n, 2)
    radius = (torch.rand(n, generator=g) * 0.15 + 0.1) * size  # (n,)
    colour = torch.rand(n, 3, generator=g) * 2 - 1  # (n, 3) in [-1, 1]
    d2 = (yy - centre[:, 0, None, None]) ** 2 + (xx - centre[:, 1, None, None]) ** 2
    disc = torch.sigmoid((radius[:, None, None] ** 2 - d2) / size)  # (n, S, S) in (0, 1)
    x = -1 + disc[:, None] * (colour[:, :, None, None] + 1)  # background -1, disc = colour
    return x.clamp(-1, 1)


@pytest.fixture(scope="session")
def blobs32():
    return colour_blobs(256, 32, seed=1)


@pytest.fixture(scope="session")
def blobs64():
    return colour_blobs(256, 64, seed=2)
