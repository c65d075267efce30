"""Rebuild the classifiers shipped in ganlib/assets (the feature space of FID-MNIST).

    python scripts/train_classifiers.py --root ../shared/data          # both, ~ minutes on CPU
    python scripts/train_classifiers.py --root DATA --only mnist

Trains `ganlib.classifier.SmallCNN` on the full 60,000-image training set of MNIST and of
Fashion-MNIST, measures accuracy on the 10,000 test images, writes `mnist_cnn.pt` and
`fashion_cnn.pt`, and records seed, epochs, accuracy, time, torch version and sha256 in
`ganlib/assets/classifiers.json`. Same seed, same machine and thread count: same weights.
"""
import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ganlib.classifier import (ASSETS, CLASSIFIERS, accuracy, save_classifier,  # noqa: E402
                               train_classifier)
from ganlib.data import load_torchvision  # noqa: E402

# dataset: (epochs, max random shift in pixels, accuracy it must reach on the test set)
RECIPES = {"mnist": (6, 0, 0.990), "fashion-mnist": (6, 0, 0.900)}
RECORD = ASSETS / "classifiers.json"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", default=os.environ.get("GANLIB_DATA"),
                   help="folder holding MNIST/raw and FashionMNIST/raw (torchvision's "
                        "layout); default: $GANLIB_DATA")
    p.add_argument("--only", choices=list(RECIPES), default=None, help="train just this one")
    p.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ASSETS), help="folder for the weight files")
    p.add_argument("--threads", type=int, default=1, help="CPU threads; results are exactly "
                   "reproducible for the same seed and thread count (1 is also the fastest "
                   "on a busy 2-core machine)")
    args = p.parse_args()
    if not args.root:
        p.error("give --root DATA or set GANLIB_DATA to the folder holding MNIST/raw")
    torch.set_num_threads(args.threads)
    record = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    for name in [args.only] if args.only else list(RECIPES):
        epochs, max_shift, target = RECIPES[name]
        epochs = args.epochs or epochs
        train = load_torchvision(name, args.root, train=True, fallback_to_sample=False)
        test = load_torchvision(name, args.root, train=False, fallback_to_sample=False)
        print(f"{name}: {len(train)} train, {len(test)} test images")
        t0 = time.time()
        model = train_classifier(train.x, train.y, num_epochs=epochs, max_shift=max_shift,
                                 seed=args.seed)
        seconds = time.time() - t0
        acc = accuracy(model, test.x, test.y)
        print(f"{name}: test accuracy {acc:.4f} after {seconds:.0f} s")
        if acc < target:
            print(f"WARNING: {name} reached {acc:.4f} < {target}; not recording it as shipped")
        path = Path(args.out) / CLASSIFIERS[name].name
        info = {"dataset": name, "test_accuracy": round(acc, 4), "seed": args.seed,
                "epochs": epochs}
        sha = save_classifier(model, path, **info)
        record[name] = {
            "file": path.name, "sha256": sha, "bytes": path.stat().st_size, **info,
            "max_shift": max_shift, "train_images": len(train), "test_images": len(test),
            "script": "python scripts/train_classifiers.py --root DATA"
                      + (f" --seed {args.seed}" if args.seed else ""),
            "train_seconds": round(seconds), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "machine": f"{platform.machine()} CPU"}
        if Path(args.out).resolve() == ASSETS.resolve():
            RECORD.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}; record in {RECORD}")


if __name__ == "__main__":
    main()
