"""Command line: `python -m ganlib train ...` and `python -m ganlib sample ...`.

This is the only place that parses argv; it maps flags onto `TrainConfig`.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import fields

import torch

from .checkpoint import CheckpointError, load_checkpoint
from .distributed import DistributedError  # [ddp]
from .data import DATASETS, DataUnavailable, load_dataset
from .losses import LOSSES
from .models import MODELS, build_models
from .plot import save_samples
from .train import TrainConfig, TrainingDiverged, generate, train
from .utils import get_device, seed_everything

HELP = {f.name: f for f in fields(TrainConfig)}


def _add(p, flag, name, **kw):
    default = HELP[name].default
    p.add_argument(flag, dest=name, default=default, **kw,
                   help=f"{kw.pop('help', '')} (default: {default})".strip())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ganlib", description="Train GANs and sample "
                                "from them. Run `python -m ganlib train --help` for the flags.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a GAN; writes samples.png, losses.png, "
                       "history.json and last.pt into --out",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    t.add_argument("--data", default="mnist", help=f"dataset: {', '.join(DATASETS)}, or the "
                   "path of an image folder / .npz. Offline, mnist falls back to the bundled "
                   "5,000-image sample")
    t.add_argument("--data-root", default=None, help="folder for torchvision datasets "
                   "(default: $GANLIB_DATA, else ~/.cache/ganlib)")
    t.add_argument("--model", default="mlp", help=f"architecture: {', '.join(MODELS)}")
    t.add_argument("--loss", default="bce", help=f"objective: {', '.join(LOSSES)}")
    t.add_argument("--image-size", type=int, default=None, help="resize images to this size "
                   "(default: the dataset's own size)")
    t.add_argument("--latent-dim", type=int, default=None, help="noise size (default: the "
                   "model's own, 100; 1000 for upsample64)")
    t.add_argument("--pack", type=int, default=1, dest="pack_m", help="PacGAN packing degree")
    t.add_argument("--batch-size", type=int, default=256, help="real images per D step")
    t.add_argument("--epochs", type=float, default=5.0, dest="num_epochs", help="passes "
                   "over the data")
    t.add_argument("--steps", type=int, default=None, dest="num_steps", help="generator "
                   "steps; overrides --epochs")
    t.add_argument("--lr-g", type=float, default=2e-4, help="Adam learning rate for G")
    t.add_argument("--lr-d", type=float, default=2e-4, help="Adam learning rate for D")
    t.add_argument("--beta1", type=float, default=0.5, help="Adam beta1")
    t.add_argument("--n-critic", type=int, default=1, help="D steps per G step")
    t.add_argument("--seed", type=int, default=0, help="random seed")
    t.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    t.add_argument("--sample-every", type=int, default=500, help="steps between sample grids")
    t.add_argument("--ckpt-every", type=int, default=1000, help="steps between checkpoints")
    t.add_argument("--out", default="runs/gan", dest="out_dir", help="output folder")
    t.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    t.add_argument("--no-progress", action="store_false", dest="progress",
                   help="hide the progress bar")
    s = sub.add_parser("sample", help="write a grid of samples from a checkpoint",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    s.add_argument("--ckpt", required=True, help="checkpoint written by train (last.pt)")
    s.add_argument("--n", type=int, default=64, help="number of samples")
    s.add_argument("--out", default="grid.png", help="PNG file to write")
    s.add_argument("--seed", type=int, default=0, help="random seed for the noise")
    s.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    return p


def cmd_train(args) -> None:
    known = {f.name for f in fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in vars(args).items() if k in known})
    cfg.betas = (args.beta1, 0.999)
    data = load_dataset(args.data, root=args.data_root, image_size=args.image_size)
    image_shape = tuple(data.x[0].shape)
    G, D = build_models(cfg.model, image_shape, cfg.latent_dim, cfg.pack_m)
    print(f"ganlib: {cfg.model} GAN, {cfg.loss} loss, on {data.source}: {len(data)} samples "
          f"of shape {image_shape}, device {get_device(cfg.device)}", file=sys.stderr)
    history = train(G, D, data, cfg, resume=args.resume)
    if history["step"]:
        print(f"ganlib: done, {history['step'][-1]} steps; wrote {cfg.out_dir}/samples.png, "
              "losses.png, history.json, last.pt", file=sys.stderr)


def cmd_sample(args) -> None:
    device = get_device(args.device)
    ck = load_checkpoint(args.ckpt, map_location=device)
    cfg = ck["config"]
    if cfg["model"] not in MODELS:
        raise CheckpointError(f"{args.ckpt} holds a custom model ({cfg['model']!r}); "
                              "rebuild it yourself and load ck['G']")
    G, _ = build_models(cfg["model"], ck["image_shape"], cfg["latent_dim"], cfg["pack_m"])
    G.load_state_dict(ck["G"])
    G.to(device)
    seed_everything(args.seed)
    x = generate(G, G.sample_z(args.n, device))
    save_samples(x, args.out)
    print(f"ganlib: wrote {args.n} samples to {args.out}", file=sys.stderr)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        (cmd_train if args.command == "train" else cmd_sample)(args)
    except (ValueError, TrainingDiverged, FileNotFoundError, DataUnavailable,
            DistributedError) as err:  # [ddp] DistributedError: another rank failed
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
