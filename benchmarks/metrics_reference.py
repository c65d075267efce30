"""Reference values for ganlib's image metrics on real MNIST (chapter 7's table).

    python benchmarks/metrics_reference.py [--root DATA] [--json PATH] [--threads N]

Compares the MNIST test set (10,000 images) with sets that stand in for generators: other
real digits (the floor), digits with one class missing, a single class (a collapsed
generator), blurred digits and uniform noise; then shows how FID-MNIST depends on the
sample size. Uses the full MNIST from --root (default: $GANLIB_DATA, else ../shared/data
beside the repository); without it, falls back to the bundled 5,000 + 1,000 sample and
says so. Takes about 70 s of CPU time on one thread.

Writes everything it prints, with the settings (sample sizes, seeds, data source, device,
torch version, wall time), to benchmarks/results/metrics_reference.json, the committed
file that chapter 7 reads its numbers from; --json writes it elsewhere.
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

from ganlib.classifier import CLASSIFIERS, file_sha256, load_classifier  # noqa: E402
from ganlib.data import load_mnist_sample, load_torchvision  # noqa: E402
from ganlib.metrics import (Embedding, class_histogram, classes_covered,  # noqa: E402
                            classifier_score, embed, frechet_distance, kl_to_uniform,
                            precision_recall)
from ganlib.book import cpu_name  # noqa: E402
from ganlib.checkpoint import atomic_write  # noqa: E402

N = 10_000            # images per candidate set (fewer when the data has fewer)
MISSING = 3           # the class left out / kept alone
SIZES = (250, 500, 1_000, 2_000, 5_000, 10_000)
DRAWS = 5             # random subsets per sample size
SEED = 0              # one generator for every random subset and for the noise images
K = 3                 # nearest neighbours for precision and recall (the paper's value)
RESULTS = REPO / "benchmarks" / "results" / "metrics_reference.json"  # read by chapter 7


def load(root):
    """(train, test, note): the full MNIST if it is under root, else the bundled sample."""
    try:
        train = load_torchvision("mnist", root, train=True, fallback_to_sample=False)
        test = load_torchvision("mnist", root, train=False, fallback_to_sample=False)
        return train, test, "full MNIST (torchvision files)"
    except RuntimeError as err:
        print(f"NOTE: {str(err).splitlines()[0][:150]}\nNOTE: using the bundled sample "
              "(5,000 train / 1,000 test digits); values differ from the recorded table.")
        return load_mnist_sample(True), load_mnist_sample(False), "bundled MNIST sample"


def blur(x: torch.Tensor) -> torch.Tensor:
    import torchvision.transforms.functional as TF
    return TF.gaussian_blur(x, kernel_size=5, sigma=1.0)


def pick(idx: torch.Tensor, n: int, g: torch.Generator) -> torch.Tensor:
    return idx[torch.randperm(len(idx), generator=g)[:n]]


def subset(e: Embedding, idx) -> Embedding:
    return Embedding(e.features[idx], e.logits[idx])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", default=os.environ.get("GANLIB_DATA", str(REPO.parent / "shared" / "data")),
                   help="folder holding MNIST/raw (default: $GANLIB_DATA, else ../shared/data)")
    p.add_argument("--json", default=str(RESULTS),
                   help="where to write the results (default: benchmarks/results/"
                        "metrics_reference.json, which chapter 7 reads)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1; the results do not depend on it)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    t0, cpu0 = time.time(), time.process_time()
    g = torch.Generator().manual_seed(SEED)
    train, test, source = load(args.root)
    clf = load_classifier("mnist")
    n = min(N, len(test), len(train))
    ref = embed(test.x[:n], clf)  # the "real" side of every comparison
    all_idx = torch.arange(len(train))
    candidates = {  # key: (name, images)
        "floor": ("train vs test (floor)", train.x[pick(all_idx, n, g)]),
        "missing": (f"one class missing (no {MISSING}s)",
                    train.x[pick(all_idx[train.y != MISSING], n, g)]),
        "single": (f"single class (only {MISSING}s)",
                   train.x[pick(all_idx[train.y == MISSING], n, g)]),
        "blurred": ("blurred digits (Gaussian, sigma 1)", blur(train.x[pick(all_idx, n, g)])),
        "noise": ("uniform noise", torch.rand(n, 1, 28, 28, generator=g) * 2 - 1)}
    rows = []
    for key, (name, x) in candidates.items():
        e = embed(x, clf, check=False)
        hist = class_histogram(e)
        precision, recall = precision_recall(ref, e, k=K)
        rows.append({"key": key, "set": name, "n": len(x),
                     "fid": frechet_distance(ref.features, e.features),
                     "classifier_score": classifier_score(e), "classes_covered": classes_covered(hist),
                     "kl_to_uniform": kl_to_uniform(hist), "precision": precision, "recall": recall})

    # FID against sample size: both sides n images, DRAWS random subsets each
    train_emb = embed(train.x[pick(all_idx, 2 * n, g)], clf)  # floor draws come from here
    missing_emb = embed(candidates["missing"][1], clf)
    sizes = []
    for size in [s for s in SIZES if s <= n]:
        floor, miss = [], []
        for _ in range(DRAWS):
            r = ref.features[torch.randperm(n, generator=g)[:size]]
            floor.append(frechet_distance(r, train_emb.features[torch.randperm(len(train_emb), generator=g)[:size]]))
            miss.append(frechet_distance(r, missing_emb.features[torch.randperm(n, generator=g)[:size]]))
        floor, miss = torch.tensor(floor), torch.tensor(miss)
        sizes.append({"n": size, "floor_mean": floor.mean().item(), "floor_std": floor.std().item(),
                      "missing_mean": miss.mean().item(), "missing_std": miss.std().item(),
                      "floor_draws": floor.tolist(), "missing_draws": miss.tolist()})
    seconds = time.time() - t0

    machine = f"{cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, " \
              f"{torch.get_num_threads()} threads"
    print(f"FID-MNIST reference ({source}; reference set: {n} MNIST test images; {machine})\n")
    print("| candidate set | n | FID-MNIST | classifier score | classes covered | KL to uniform | precision | recall |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['set']} | {r['n']:,} | {r['fid']:.2f} | {r['classifier_score']:.2f} | "
              f"{r['classes_covered']} | {r['kl_to_uniform']:.3f} | {r['precision']:.3f} | {r['recall']:.3f} |")
    print(f"\nFID-MNIST against sample size (both sides n images; mean ± std over {DRAWS} draws)\n")
    print(f"| n | train vs test (floor) | one class missing (no {MISSING}s) |")
    print("|---:|---:|---:|")
    for s in sizes:
        print(f"| {s['n']:,} | {s['floor_mean']:.2f} ± {s['floor_std']:.2f} | "
              f"{s['missing_mean']:.2f} ± {s['missing_std']:.2f} |")
    print(f"\n{seconds:.0f} s in all")
    result = {
        "script": "python benchmarks/metrics_reference.py",
        "source": source, "train_images": len(train), "test_images": len(test),
        "settings": {"reference_n": n, "candidate_n": N, "missing_class": MISSING,
                     "sample_sizes": [s for s in SIZES if s <= n], "draws": DRAWS,
                     "seed": SEED, "k": K, "classifier": "mnist",
                     "classifier_sha256": file_sha256(CLASSIFIERS["mnist"])},
        "environment": {"device": "cpu", "cpu": cpu_name(), "cores": os.cpu_count(),
                        "threads": torch.get_num_threads(), "torch": torch.__version__,
                        "python": platform.python_version()},
        "seconds": round(seconds, 1),  # wall time, all of it
        "cpu_seconds": round(time.process_time() - cpu0, 1),  # this process's CPU time
        "rows": rows, "sample_sizes": sizes}
    out = Path(args.json)
    atomic_write(out, lambda tmp: Path(tmp).write_text(json.dumps(result, indent=2) + "\n"))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
