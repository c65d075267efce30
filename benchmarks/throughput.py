"""Training throughput: the source article's loop as written vs ganlib, same model, same data.

    python benchmarks/throughput.py [--steps 300] [--repeats 3] [--threads N] [--json results.json] [--root DATA]
    python benchmarks/throughput.py --before bb9a016   # also ganlib as it was at that commit

Runs in one process on the same MNIST training images:
  1. article-64: the loop of source article 001: torchvision MNIST with ToTensor + Normalize,
     a DataLoader (batch 64, shuffle), its MLP with Sigmoid + BCELoss, Adam 2e-4.
  2. ganlib-64:  `ganlib.train` on the same MLP (logits, non-saturating BCE) at batch 64.
  3. ganlib-default: the same at ganlib's default batch size.
  4. with `--before REV`: rows 2 and 3 again with ganlib as it was at git revision REV
     (extracted with `git archive`, run in a child process on the same data, timed inside
     the child, interleaved with the others): the loop's speed before and after a change,
     in one run. Rows 2 and 3 then run in child processes too, so that both are measured
     alike.
Prints real images per wall-clock second and per CPU second of the process, and their
ratios to the article's loop, and writes JSON. On a quiet machine the two agree (with one
thread); on a shared one, wall-clock time depends on the other load and CPU time does not
(much), so compare the CPU columns there. On CUDA, only the wall-clock columns mean much.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

import ganlib
from ganlib.data import data_root, load_torchvision


class ArticleGenerator(nn.Module):  # 001's generator, as written
    def __init__(self):
        super().__init__()
        self.model = nn.Sequential(nn.Linear(100, 256), nn.ReLU(), nn.Linear(256, 512), nn.ReLU(),
                                   nn.Linear(512, 1024), nn.ReLU(), nn.Linear(1024, 784), nn.Tanh())

    def forward(self, z):
        return self.model(z).view(-1, 1, 28, 28)


class ArticleDiscriminator(nn.Module):  # 001's discriminator, with its Sigmoid
    def __init__(self):
        super().__init__()
        self.model = nn.Sequential(nn.Linear(784, 512), nn.LeakyReLU(0.2), nn.Linear(512, 256),
                                   nn.LeakyReLU(0.2), nn.Linear(256, 1), nn.Sigmoid())

    def forward(self, img):
        return self.model(img.view(-1, 784))


class PILDigits(torch.utils.data.Dataset):
    """torchvision.datasets.MNIST's per-item path (uint8 -> PIL -> transform) over a tensor,
    used only when the full MNIST files are not available."""

    def __init__(self, x_uint8, transform):
        self.x, self.transform = x_uint8, transform

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        from PIL import Image
        return self.transform(Image.fromarray(self.x[i].numpy(), mode="L")), 0


def article_dataset(root):
    """The article's data pipeline: torchvision MNIST + ToTensor + Normalize((0.5,), (0.5,))."""
    import torchvision.datasets as datasets
    import torchvision.transforms as transforms
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    try:
        from ganlib.data import _writable_root
        return datasets.MNIST(root=str(_writable_root(root, "MNIST")), train=True,
                              download=True, transform=transform), "MNIST (60,000)"
    except (RuntimeError, OSError):
        x = ((ganlib.load_mnist_sample().x[:, 0] + 1) * 127.5).round().to(torch.uint8)
        return PILDigits(x, transform), f"bundled MNIST sample ({len(x)})"


def run_article(dataset, steps: int, batch_size: int = 64,
                device: str = "cpu") -> tuple[float, float]:
    """001's training loop as written, timed over `steps` iterations; returns images per
    wall-clock second and per CPU second of this process. On `device` "cuda" it moves the
    models and each batch there, as the article's `.to(device)` lines do."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True)
    generator, discriminator = ArticleGenerator().to(device), ArticleDiscriminator().to(device)
    optimizer_G = torch.optim.Adam(generator.parameters(), lr=0.0002)
    optimizer_D = torch.optim.Adam(discriminator.parameters(), lr=0.0002)
    criterion = nn.BCELoss()
    done, t0, c0 = 0, time.perf_counter(), time.process_time()
    while done < steps:
        for real_images, _ in loader:
            real_images = real_images.to(device)
            batch_size = real_images.size(0)
            real_labels = torch.ones(batch_size, 1, device=device)
            fake_labels = torch.zeros(batch_size, 1, device=device)
            optimizer_D.zero_grad()
            d_loss_real = criterion(discriminator(real_images), real_labels)
            z = torch.randn(batch_size, 100, device=device)
            fake_images = generator(z)
            d_loss_fake = criterion(discriminator(fake_images.detach()), fake_labels)
            d_loss = d_loss_real + d_loss_fake
            d_loss.backward()
            optimizer_D.step()
            optimizer_G.zero_grad()
            g_loss = criterion(discriminator(fake_images), real_labels)
            g_loss.backward()
            optimizer_G.step()
            d_loss.item(), g_loss.item()  # the article prints these (once an epoch)
            done += 1
            if done == steps:
                break
    return steps * 64 / (time.perf_counter() - t0), steps * 64 / (time.process_time() - c0)


def run_ganlib(data, steps: int, batch_size: int) -> tuple[float, float]:
    """`ganlib.train` on 001's MLP (as logits) for `steps` steps; returns images per
    wall-clock second and per CPU second, timing the whole call (set-up included)."""
    G, D = ganlib.build_models("mlp", (1, 28, 28))
    cfg = ganlib.TrainConfig(batch_size=batch_size, num_steps=steps, progress=False,
                             betas=(0.9, 0.999), device="auto")
    t0, c0 = time.perf_counter(), time.process_time()
    ganlib.train(G, D, data, cfg)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return (steps * batch_size / (time.perf_counter() - t0),
            steps * batch_size / (time.process_time() - c0))


def child_row(tree: Path, args, batch_size: int):
    """A row measured by the `ganlib` in folder `tree`: this script, run as a child process
    that imports that `ganlib`, times `run_ganlib` and prints its two numbers."""
    def fn():
        cmd = [sys.executable, __file__, "--child-batch", str(batch_size), "--steps",
               str(args.steps)] + (["--threads", str(args.threads)] if args.threads else []) \
            + (["--root", str(args.root)] if args.root else [])
        env = {**os.environ, "PYTHONPATH": str(tree)}
        out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
        return tuple(json.loads(out.strip().splitlines()[-1]))
    return fn


def extract(rev: str) -> Path:
    """`ganlib/` as it was at git revision `rev`, in a temporary folder."""
    repo = Path(__file__).resolve().parents[1]
    tree = Path(tempfile.mkdtemp(prefix="ganlib-before-"))
    archive = subprocess.run(["git", "-C", str(repo), "archive", rev, "ganlib"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=300, help="training steps per measurement")
    p.add_argument("--repeats", type=int, default=3, help="measurements per row (median kept)")
    p.add_argument("--root", default=None, help="data folder (default: $GANLIB_DATA)")
    p.add_argument("--json", default=None, help="write the results to this JSON file")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: torch's choice, one per core)")
    p.add_argument("--before", default=None, metavar="REV",
                   help="also time ganlib as it was at this git revision (before/after)")
    p.add_argument("--child-batch", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    root = data_root(args.root)
    if args.child_batch:  # a --before row: this process's ganlib is the old one
        data = load_torchvision("mnist", root, fallback_to_sample=True)
        print(json.dumps(run_ganlib(data, args.steps, args.child_batch)))
        return
    dataset, desc = article_dataset(root)
    try:
        data = load_torchvision("mnist", root, fallback_to_sample=False)
    except RuntimeError:
        data = ganlib.load_mnist_sample()
    default_batch = ganlib.TrainConfig().batch_size
    rows = [("article-64", lambda: run_article(dataset, args.steps), 64),
            ("ganlib-64", lambda: run_ganlib(data, args.steps, 64), 64),
            (f"ganlib-{default_batch}", lambda: run_ganlib(data, args.steps, default_batch),
             default_batch)]
    if args.before:  # every ganlib row in a child process alike, old and new
        tree, here = extract(args.before), Path(__file__).resolve().parents[1]
        rows[1:] = [(name, child_row(here, args, bs), bs) for name, _, bs in rows[1:]]
        rows += [(f"ganlib-64@{args.before}", child_row(tree, args, 64), 64),
                 (f"ganlib-{default_batch}@{args.before}", child_row(tree, args, default_batch),
                  default_batch)]
    # Interleave the rows (a, b, c, a, b, c, ...) so that a change in machine load during the
    # run affects every row alike; keep the median of each row's repeats.
    runs = {name: [] for name, _, _ in rows}
    for _ in range(args.repeats):
        for name, fn, _ in rows:
            runs[name].append(fn())
    if args.before:
        shutil.rmtree(tree)
    median = lambda values: sorted(values)[len(values) // 2]
    results = {name: {"batch_size": bs,
                      "images_per_s": median([wall for wall, _ in runs[name]]),
                      "images_per_cpu_s": median([cpu for _, cpu in runs[name]]),
                      "all_runs": runs[name]} for name, _, bs in rows}
    base = results["article-64"]
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else \
        f"CPU ({torch.get_num_threads()} threads)"
    print(f"data: {desc}; device: {device}; {args.steps} steps x {args.repeats} repeats (median)")
    print(f"{'loop':<22}{'batch':>6}{'images/s':>12}{'vs article':>12}"
          f"{'images/CPU-s':>14}{'vs article':>12}")
    for name, r in results.items():
        r["ratio"] = r["images_per_s"] / base["images_per_s"]
        r["ratio_cpu"] = r["images_per_cpu_s"] / base["images_per_cpu_s"]
        print(f"{name:<22}{r['batch_size']:>6}{r['images_per_s']:>12.0f}{r['ratio']:>11.2f}x"
              f"{r['images_per_cpu_s']:>14.0f}{r['ratio_cpu']:>11.2f}x")
    if args.json:
        meta = {"device": device, "before": args.before, "data": desc, "steps": args.steps, "repeats": args.repeats,
                "torch": torch.__version__, "python": platform.python_version(),
                "platform": platform.platform(), "cpu_count": os.cpu_count(),
                "load_average_1min_at_end": os.getloadavg()[0]}
        Path(args.json).write_text(json.dumps({"meta": meta, "results": results}, indent=2))
        print(f"wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
