"""Rebuild ganlib/assets/mnist_sample.npz, the small MNIST sample shipped inside ganlib.

    python scripts/make_mnist_sample.py [--root ../shared/data]

Takes the first N_PER_CLASS images of each digit from the original MNIST training file and
the first N_TEST_PER_CLASS of each digit from the test file (deterministic: no randomness),
and stores them as uint8 in a compressed .npz. MNIST: Yann LeCun and Corinna Cortes,
CC BY-SA 3.0.
"""
import argparse
import gzip
import os
from pathlib import Path

import numpy as np

N_PER_CLASS = 500
N_TEST_PER_CLASS = 100
OUT = Path(__file__).resolve().parents[1] / "ganlib" / "assets" / "mnist_sample.npz"


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the MNIST format): big-endian header, then uint8 data."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def first_per_class(x, y, n):
    idx = np.concatenate([np.flatnonzero(y == c)[:n] for c in range(10)])
    idx.sort()  # keep the original file order
    return x[idx], y[idx]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", default=os.environ.get("GANLIB_DATA", "../shared/data"),
                   help="folder holding MNIST/raw/*.gz (torchvision's layout)")
    args = p.parse_args()
    raw = Path(args.root) / "MNIST" / "raw"
    x_tr, y_tr = first_per_class(read_idx(raw / "train-images-idx3-ubyte.gz"),
                                 read_idx(raw / "train-labels-idx1-ubyte.gz"), N_PER_CLASS)
    x_te, y_te = first_per_class(read_idx(raw / "t10k-images-idx3-ubyte.gz"),
                                 read_idx(raw / "t10k-labels-idx1-ubyte.gz"), N_TEST_PER_CLASS)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.2f} MB): "
          f"{len(x_tr)} train + {len(x_te)} test images")


if __name__ == "__main__":
    main()
