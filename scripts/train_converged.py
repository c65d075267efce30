"""Train the chapters' generators to convergence on the CPU and ship them in ganlib.

The chapters train live at a budget a reader's CPU (or CI) can afford, which is far from
converged. This script trains the same networks with the chapters' settings for many more
steps, evaluates them during training (FID-MNIST of 2,000 fixed-noise samples against the
10,000 test digits), measures the final generator (10,000 samples against the test split:
FID-MNIST, KID, classes covered, KL to uniform, precision and recall), and writes its
weights in float16 to `ganlib/assets/converged/NAME.pt` with a record in
`converged.json`, which `ganlib.pretrained(NAME)` reads.

    python scripts/train_converged.py dcgan_mnist            # one generator (resumes)
    python scripts/train_converged.py all                    # every one, one after another
    python scripts/train_converged.py dcgan_mnist --smoke --out /tmp/c --runs /tmp/r

Each run keeps its folder under `--runs` (default `runs/converged/NAME`: checkpoints every
500 steps, fixed-noise sample grids, the history). Run the same command again after an
interruption and it resumes from `last.pt`, exactly: on the same CPU and torch the
shipped file is bit-equal to an uninterrupted run's (same seed, same draws). The grids
taken every `frame_every` steps are packed into `NAME_frames.npz` for the animations of
chapter 4 (`ganlib.plot.animate_grids`). One torch thread by default (`--threads`).
"""
from __future__ import annotations

import argparse
import fcntl
import io
import json
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import ganlib
from ganlib.conditional import ProjectionDiscriminator, conditional_accuracy, conditional_samples
from ganlib.dcgan import DCGANDiscriminator
from ganlib.kid import kid
from ganlib.lipschitz import without_batch_norm
from ganlib.metrics import embed, fid_evaluator, image_metrics
from ganlib.models import MLPBNDiscriminator, MLPDiscriminator
from ganlib.converged import CONVERGED, GENERATORS, file_sha256, half_state
from ganlib.book import cpu_name
from ganlib.checkpoint import atomic_write
from ganlib.sampling import generate_many

ROOT = Path(__file__).resolve().parents[1]
FACES = Path(ganlib.__file__).parent / "assets" / "emoji_faces_64.npz"
N_EVAL, N_FINAL = 2000, 10_000  # samples per periodic evaluation; for the final measures


@dataclass
class Recipe:
    """How one shipped generator is trained: its D, data and TrainConfig fields."""
    make_D: object
    data: str  # "mnist" or "faces"
    steps: int
    batch_size: int
    train: dict = field(default_factory=dict)  # TrainConfig fields beyond the defaults below
    eval_every: int = 1000
    frame_every: int = 500
    note: str = ""


RECIPES = {
    "mlp_mnist": Recipe(
        lambda: MLPDiscriminator((1, 28, 28)), "mnist", steps=93_800, batch_size=64,
        train=dict(loss="bce", lr_g=2e-4, lr_d=2e-4, betas=(0.9, 0.999)),
        eval_every=938 * 2, frame_every=938 * 2,
        note="001's network, loss and schedule: 100 epochs of 938 batches of 64, Adam lr "
             "2e-4 with its default betas (0.9, 0.999)"),
    "mlp_bn_mnist": Recipe(
        lambda: MLPBNDiscriminator((1, 28, 28)), "mnist", steps=30_000, batch_size=64,
        train=dict(loss="bce", lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999)),
        note="chapter 3's run of 002's network, 10x its full budget"),
    "dcgan_mnist": Recipe(
        lambda: DCGANDiscriminator(channels=1, image_size=28, width=32), "mnist",
        steps=30_000, batch_size=64, train=dict(loss="bce", lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999)),
        note="chapter 4's DCGAN at width 32 (half PyTorch's DCGAN example), DCGAN's settings"),
    "dcgan64_faces": Recipe(
        lambda: DCGANDiscriminator(channels=3, image_size=64, width=16), "faces",
        steps=20_000, batch_size=32, train=dict(loss="bce", lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999)),
        eval_every=0, frame_every=1000,
        note="chapter 4's 64x64 DCGAN, G width 32 and D width 16, on the shipped emoji faces "
             "with the chapter's augmentation (mirror images, shifts)"),
    "wgan_gp_mnist": Recipe(
        lambda: without_batch_norm(DCGANDiscriminator(channels=1, image_size=28, width=16)),
        "mnist", steps=12_000, batch_size=64,
        train=dict(loss="wgan-gp", gp_weight=10.0, n_critic=5, lr_g=1e-4, lr_d=1e-4, betas=(0.0, 0.9)),
        eval_every=500,
        note="chapter 8's WGAN-GP: its quarter-width DCGAN with a BatchNorm-free critic, 5 "
             "critic steps per generator step, Adam lr 1e-4, betas (0, 0.9)"),
    "cgan_mnist": Recipe(
        lambda: ProjectionDiscriminator((1, 28, 28), num_classes=10), "mnist", steps=30_000,
        batch_size=64, train=dict(loss="bce", lr_g=1e-3, lr_d=1e-3, betas=(0.5, 0.999)),
        note="chapter 9's conditional MLP generator and projection discriminator, its settings"),
}
assert set(RECIPES) == set(GENERATORS), "every shipped generator needs a recipe"


def augment(x, copies=8, seed=0):
    """Chapter 4's augmentation: x (N, C, S, S) and its mirror images, copied `copies` times
    with random shifts of up to S/16 (edge pixels repeated)."""
    x = torch.cat([x, x.flip(-1)])
    m, size = x.shape[-1] // 16, x.shape[-1]
    padded = F.pad(x, (m, m, m, m), mode="replicate")
    g = torch.Generator().manual_seed(seed)
    offsets = torch.randint(0, 2 * m + 1, (copies, 2), generator=g).tolist()
    return torch.cat([padded[..., dy:dy + size, dx:dx + size] for dy, dx in offsets])


def scaled(recipe: Recipe, smoke: bool) -> Recipe:
    """The recipe, or a seconds-long version of it (`--smoke`)."""
    if not smoke:
        return recipe
    return Recipe(recipe.make_D, recipe.data, steps=6, batch_size=recipe.batch_size,
                  train=recipe.train, eval_every=3 if recipe.eval_every else 0, frame_every=2,
                  note=recipe.note)


def load_data(kind: str, smoke: bool):
    if kind == "faces":
        return augment(ganlib.load_images(FACES, image_size=64).x)
    data = ganlib.load_dataset("mnist")
    return ganlib.ImageData(data.x[:512], data.y[:512], data.name, data.source) if smoke else data


def final_measures(G, x_test, conditional: bool, n: int) -> dict:
    """The record's numbers: 10,000 samples (n) against the test split."""
    x_fake = generate_many(G, n, seed=0).cpu()  # a conditional G cycles through the classes
    real, fake = embed(x_test), embed(x_fake)
    out = image_metrics(real, fake)
    out["kid"], out["kid_std"] = kid(real, fake)
    if conditional:
        x, y = conditional_samples(G, n // 10, seed=0)
        acc, per_class = conditional_accuracy(x.cpu(), y.cpu())
        out["conditional_accuracy"], out["per_class_accuracy"] = acc, per_class.tolist()
    return out


def frames_from_grids(run_dir: Path, cells: int = 4, every: int = 1):
    """Every `every`-th fixed-noise grid `samples/step_*.png` (8x8 images, 2 pixels apart)
    cut to its top-left `cells` x `cells` images: `(steps (F,), frames (F, H, W[, 3]) uint8)`."""
    from PIL import Image
    paths = sorted((run_dir / "samples").glob("step_*.png"))[every - 1::every]
    steps, frames = [], []
    for p in paths:
        a = np.asarray(Image.open(p))
        size = (a.shape[0] - 2) // 8  # image size + 2 pixels of padding
        a = a[: cells * size + 2, : cells * size + 2]
        frames.append(a[..., 0] if a.ndim == 3 and (a[..., 0] == a[..., 1]).all() else a)
        steps.append(int(p.stem.split("_")[1]))
    return np.array(steps), np.stack(frames)


def update_record(path: Path, name: str, entry: dict) -> None:
    """Set `record[name] = entry` in converged.json, under a lock (runs finish in parallel)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        record = json.loads(path.read_text()) if path.exists() else {}
        record[name] = entry
        record = {k: record[k] for k in GENERATORS if k in record}  # a fixed order
        atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(record, indent=1) + "\n"))


def train_one(name: str, args) -> dict:
    recipe = scaled(RECIPES[name], args.smoke)
    run_dir = args.runs / name
    chapter, make_G = GENERATORS[name]
    data = load_data(recipe.data, args.smoke)
    ganlib.seed_everything(0)
    G, D = make_G(), recipe.make_D()
    cfg = ganlib.TrainConfig(data=recipe.data, model="custom", batch_size=recipe.batch_size,
                             num_steps=recipe.steps, seed=0, device=str(args.device),
                             sample_every=recipe.frame_every, ckpt_every=2 if args.smoke else 500,
                             eval_every=recipe.eval_every, out_dir=str(run_dir),
                             progress=False, **recipe.train)
    mnist = recipe.data == "mnist"
    x_test = ganlib.load_dataset("mnist", train=False).x if mnist else None
    evaluate = fid_evaluator(x_test, n=N_EVAL) if mnist and recipe.eval_every else None
    timing = run_dir / "seconds.json"
    before = json.loads(timing.read_text())["seconds"] if timing.exists() else 0.0
    start = time.perf_counter()

    def keep_time(step, G, D, history):  # the training time so far, beside each last.pt
        if step % cfg.ckpt_every == 0 or step == cfg.num_steps:
            seconds = before + time.perf_counter() - start
            atomic_write(timing, lambda tmp: Path(tmp).write_text(json.dumps({"step": step, "seconds": seconds})))
        if recipe.eval_every and step % recipe.eval_every == 0:
            e = history["eval"]
            print(f"{name} step {step}: FID-MNIST {e['fid'][-1]:.2f}, "
                  f"classes {e['classes_covered'][-1]:.0f}", flush=True)

    history = ganlib.train(G, D, data, cfg, resume=True, callback=keep_time, evaluate=evaluate)
    seconds = json.loads(timing.read_text())["seconds"] if timing.exists() else time.perf_counter() - start
    G.eval()
    entry = {"chapter": chapter, "network": type(G).__name__, "data": recipe.data,
             "note": recipe.note, "train_config": {k: v for k, v in asdict(cfg).items()
                                                   if k not in ("out_dir", "progress")},
             "steps": recipe.steps, "batch_size": recipe.batch_size,
             "seconds": round(seconds, 1), "device": str(args.device),
             "device_name": (torch.cuda.get_device_name(args.device) if args.device.type == "cuda"
                             else cpu_name()),
             "threads": torch.get_num_threads(), "torch": torch.__version__,
             "ganlib": ganlib.__version__, "smoke": args.smoke,
             "command": "python scripts/train_converged.py " + shlex.join(args.argv_for(name)),
             "date": time.strftime("%Y-%m-%d", time.gmtime())}
    if mnist:
        e = history["eval"]
        entry["eval"] = {"n_samples": N_EVAL, "against": "the 10,000 MNIST test digits",
                         "step": e["step"], "fid": [round(v, 3) for v in e["fid"]],
                         "classes_covered": e["classes_covered"],
                         "kl_to_uniform": [round(v, 4) for v in e["kl_to_uniform"]]}
        n = 500 if args.smoke else N_FINAL
        entry["metrics"] = {"n_samples": n, "against": "the 10,000 MNIST test digits",
                            **final_measures(G, x_test, name == "cgan_mnist", n)}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{name}.pt"
    buffer = io.BytesIO()  # torch.save names its archive after the file: save to memory so
    torch.save(half_state(G), buffer)  # the bytes do not depend on atomic_write's temporary name
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(buffer.getvalue()))
    entry["sha256"], entry["bytes"] = file_sha256(path), path.stat().st_size
    if name in ("dcgan_mnist", "dcgan64_faces"):  # chapter 4's animations
        # 4x4 digits every 500 steps; 3x3 faces every 2,000 (the package stays under 10 MB)
        steps, frames = frames_from_grids(run_dir, cells=4 if mnist else 3, every=1 if mnist else 2)
        frames_path = args.out / f"{name}_frames.npz"
        atomic_write(frames_path, lambda tmp: np.savez_compressed(open(tmp, "wb"), step=steps, frames=frames))
        entry["frames"] = {"file": frames_path.name, "count": len(steps), "every": recipe.frame_every}
    update_record(args.out / "converged.json", name, entry)
    print(f"{name}: {recipe.steps} steps in {seconds:.0f} s; " + (
        ", ".join(f"{k} {v:.3f}" for k, v in entry.get("metrics", {}).items()
                  if isinstance(v, float)) or "no metrics (faces)"), flush=True)
    return entry


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="+", metavar="NAME",
                        help=f"which to train: {', '.join(RECIPES)}, or all")
    parser.add_argument("--out", type=Path, default=CONVERGED, help="folder for NAME.pt and converged.json")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "converged",
                        help="folder of the run folders (checkpoints, grids)")
    parser.add_argument("--smoke", action="store_true", help="6 steps each: checks the script runs")
    parser.add_argument("--device", default="cpu", help="cpu (the shipped files), cuda or auto")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    names = list(RECIPES) if args.names == ["all"] else args.names
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        parser.error(f"unknown generator {unknown[0]!r}; choose from {', '.join(RECIPES)} or all")
    args.device = ganlib.get_device(args.device)
    torch.set_num_threads(args.threads)
    extra = [f for f in (["--smoke"] if args.smoke else []) +
             ([f"--threads={args.threads}"] if args.threads != 1 else [])]
    args.argv_for = lambda name: [name, *extra]
    for name in names:
        train_one(name, args)


if __name__ == "__main__":
    main()
