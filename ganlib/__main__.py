"""Command line: `python -m ganlib train ...` and `python -m ganlib sample ...`.

This is the only place that parses argv. `train`'s flags are made from `TrainConfig`'s
fields, one per field, named after it with dashes (`lr_g` -> `--lr-g`), with the comment
beside its default as help: nothing is repeated by hand. Short names kept from earlier
versions: `--epochs` (`--num-epochs`), `--steps` (`--num-steps`), `--pack` (`--pack-m`),
`--out` (`--out-dir`), `--beta1` (the first of `--betas`). Booleans are `--x/--no-x`.

Any bad input ends in one line on stderr, `error: ...`, and exit code 2; never a traceback.
"""
from __future__ import annotations

import argparse
import ast
import inspect
import io
import re
import sys
import textwrap
import tokenize
from dataclasses import MISSING, fields
from pathlib import Path

from .amp import AMP_MODES
from .checkpoint import CheckpointError, load_checkpoint
from .data import DATASETS, DataUnavailable, load_dataset
from .distributed import DistributedError
from .losses import LOSSES
from .metrics import fid_evaluator
from .mode_metrics import mode_evaluator
from .models import MODELS, build_models
from .plot import save_samples
from .recipes import RECIPES, get_recipe
from .sampling import generate
from .history import TrainingDiverged
from .training import TrainConfig, train
from .device import get_device
from .seeding import seed_everything
from .validation import DEVICE_PATTERN, ConfigError

ALIASES = {"num_epochs": ["--epochs"], "num_steps": ["--steps"], "pack_m": ["--pack"],
           "out_dir": ["--out"]}  # short flags kept from earlier versions
CHOICES = {"model": tuple(MODELS), "loss": tuple(LOSSES), "amp": AMP_MODES}
CLI_DEFAULTS = {"out_dir": "runs/gan"}  # the command line always writes its outputs
EXTRA_HELP = {"data": f"; one of {', '.join(DATASETS)}, or the path of an image folder or "
                      ".npz (offline, mnist falls back to the bundled 5,000-image sample)",
              "eval_every": "; here: FID-MNIST and friends for grey 28x28 data, mode counts "
                            "for ring and grid"}


class UsageError(Exception):
    """A command line argparse cannot parse."""


class Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage, so `main` prints one line."""

    def error(self, message):
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def field_comments(cls) -> dict:
    """The comment after each field of a dataclass, from its source: {name: comment}."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):  # no source (a frozen or zipped install): no help text
        return {}
    comments = {tok.start[0]: tok.string.lstrip("# ").strip()
                for tok in tokenize.generate_tokens(io.StringIO(source).readline)
                if tok.type == tokenize.COMMENT}
    body = ast.parse(source).body[0].body
    return {node.target.id: comments.get(node.end_lineno, "") for node in body
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)}


def _kind(f):
    """(base type, optional) from a field's annotation (a string, PEP 563) and default."""
    ann = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    names = [n for n in re.findall(r"[A-Za-z_]+", ann) if n not in ("None", "Optional")]
    base = {"int": int, "float": float, "bool": bool, "tuple": tuple}.get(names[0] if names
                                                                            else "", str)
    return base, "None" in ann or "Optional" in ann


def _optional(convert):
    def parse(text):
        return None if text.lower() == "none" else convert(text)
    parse.__name__ = convert.__name__  # argparse names the type in its error messages
    return parse


def add_config_flags(p: argparse.ArgumentParser, cls=TrainConfig) -> None:
    """One flag per dataclass field: `--name-with-dashes` (plus `ALIASES`), typed from the
    annotation, defaulting to the field's default, with the field's comment as help."""
    comments = field_comments(cls)
    for f in fields(cls):
        default = f.default if f.default is not MISSING else f.default_factory()
        default = CLI_DEFAULTS.get(f.name, default)
        flags = [f"--{f.name.replace('_', '-')}", *ALIASES.get(f.name, [])]
        help_ = (comments.get(f.name, "") + EXTRA_HELP.get(f.name, "")).replace("%", "%%")
        base, optional = _kind(f)
        kw = dict(dest=f.name, default=default, help=help_ or " ")
        if base is bool:
            kw["action"] = argparse.BooleanOptionalAction
        elif base is tuple:
            kw.update(nargs=len(default), type=float, metavar=f.name.upper())
        else:
            kw["type"] = _optional(base) if optional else base
            if f.name in CHOICES and not isinstance(default, bool):
                kw["choices"] = CHOICES[f.name]
        p.add_argument(*flags, **kw)
    p.add_argument("--beta1", type=float, default=None,
                   help="Adam beta1 alone (the first of --betas; kept from earlier versions)")


def build_parser(recipe: str | None = None) -> argparse.ArgumentParser:
    """The parser; with `recipe`, `train`'s defaults are that recipe's settings."""
    p = Parser(prog="python -m ganlib", description="Train GANs and sample from them. Run "
               "`python -m ganlib train --help` for the flags.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a GAN; writes samples.png, losses.png, "
                       "history.json and last.pt into --out",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_config_flags(t)
    t.add_argument("--recipe", choices=tuple(RECIPES), default=None,
                   help="start from a named recipe's model and settings (ganlib.recipes), e.g. "
                        "fast-mnist: good digits in about two minutes on a CPU; flags given "
                        "beside it win")
    if recipe is not None:
        r = get_recipe(recipe)
        t.set_defaults(model=r.model, **r.settings)
    t.add_argument("--data-root", default=None, help="folder for torchvision datasets "
                   "(default: $GANLIB_DATA, else ~/.cache/ganlib)")
    t.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    s = sub.add_parser("sample", help="write a grid of samples from a checkpoint",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    s.add_argument("--ckpt", required=True, help="checkpoint written by train (last.pt)")
    s.add_argument("--n", type=int, default=64, help="number of samples")
    s.add_argument("--out", default="grid.png", help="PNG file to write")
    s.add_argument("--seed", type=int, default=0, help="random seed for the noise")
    s.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    s.add_argument("--ema", action=argparse.BooleanOptionalAction, default=True,
                   help="sample from the moving average of G when the checkpoint keeps one "
                        "(training with --ema)")
    return p


def config_from_args(args) -> TrainConfig:
    """The `TrainConfig` that the parsed `train` flags describe (checked on creation; a bad
    value's error names its flag)."""
    values = {f.name: getattr(args, f.name) for f in fields(TrainConfig)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    if args.beta1 is not None:
        values["betas"] = (args.beta1, values["betas"][1])
    try:
        return TrainConfig(**values)
    except ConfigError as err:
        flag = f"--{err.field.replace('_', '-')}"
        raise ConfigError(err.field, re.sub(rf"^{err.field}\b", flag, str(err))) from None


def cmd_train(args) -> None:
    cfg = config_from_args(args)
    device = get_device(cfg.device)
    data = load_dataset(cfg.data, root=args.data_root, image_size=cfg.image_size)
    image_shape = tuple(data.x[0].shape)
    seed_everything(cfg.seed)  # before building: the seed decides the initial weights
    G, D = build_models(cfg.model, image_shape, cfg.latent_dim, cfg.pack_m)
    print(f"ganlib: {cfg.model} GAN, {cfg.loss} loss, on {data.source}: {len(data)} samples "
          f"of shape {image_shape}, device {device}"
          + (f", recipe {args.recipe}" if args.recipe else ""), file=sys.stderr)
    evaluate = _evaluator(data, image_shape) if cfg.eval_every else None
    history = train(G, D, data, cfg, resume=args.resume, evaluate=evaluate)
    if history["step"]:
        print(f"ganlib: done, {history['step'][-1]} steps; wrote {cfg.out_dir}/samples.png, "
              "losses.png, history.json, last.pt", file=sys.stderr)


def _evaluator(data, image_shape):
    """`--eval-every`'s measures: FID-MNIST and friends for grey 28x28 images, mode
    counts for the 2-D ring and grid."""
    if data.name in ("ring", "grid"):
        return mode_evaluator(data.name)
    if tuple(image_shape) == (1, 28, 28) and hasattr(data.x, "shape"):
        clf = "fashion-mnist" if data.name == "fashion-mnist" else "mnist"
        return fid_evaluator(data.x[:10_000], classifier=clf)
    raise ValueError(f"--eval-every has measures for grey 28x28 images and the ring/grid "
                     f"mixtures, not for {data.name} {tuple(image_shape)}; leave it at 0, or "
                     "call ganlib.train(..., evaluate=...) from Python")


def cmd_sample(args) -> None:
    if args.n < 1:
        raise ValueError(f"--n must be at least 1, got {args.n}; ask for e.g. --n 64")
    if Path(args.ckpt).is_dir():
        raise CheckpointError(f"{args.ckpt} is a folder, not a checkpoint; give the file, "
                              f"e.g. --ckpt {Path(args.ckpt) / 'last.pt'}")
    if not DEVICE_PATTERN.fullmatch(args.device):
        raise ValueError(f"--device must be auto, cpu, cuda or cuda:N, got {args.device!r}")
    device = get_device(args.device)
    ck = load_checkpoint(args.ckpt, map_location=device)
    cfg = ck["config"]
    net = ck.get("networks") or {"name": cfg["model"], "image_shape": ck["image_shape"],
                                 "latent_dim": cfg["latent_dim"], "pack_m": cfg["pack_m"]}
    if net["name"] not in MODELS:
        raise CheckpointError(f"{args.ckpt} holds custom networks (not made by "
                              "ganlib.build_models); rebuild G yourself and load ck['G'] "
                              "from ganlib.load_checkpoint")
    G, _ = build_models(net["name"], net["image_shape"], net["latent_dim"], net["pack_m"])
    averaged = args.ema and "G_ema" in ck  # an AveragedModel's state: "module." + G's names
    G.load_state_dict({k.removeprefix("module."): v for k, v in ck["G_ema"].items()
                       if k.startswith("module.")} if averaged else ck["G"])
    G.to(device)
    seed_everything(args.seed)
    x = generate(G, G.sample_z(args.n, device))
    save_samples(x, args.out)
    print(f"ganlib: wrote {args.n} samples to {args.out}"
          + (" (from the moving average of G)" if averaged else ""), file=sys.stderr)


def main(argv=None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 bad input, 130 interrupted)."""
    try:
        args = build_parser().parse_args(argv)
        if getattr(args, "recipe", None):  # again, with the recipe's settings as defaults
            args = build_parser(args.recipe).parse_args(argv)
        (cmd_train if args.command == "train" else cmd_sample)(args)
    except (UsageError, ValueError, TrainingDiverged, DataUnavailable, OSError,
            DistributedError) as err:  # DistributedError: another rank failed
        print(f"error: {_first_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; run the same command with --resume to continue from "
              "the last checkpoint", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 (torch's own errors: one line, still)
        print(f"error: {type(err).__name__}: {_first_line(err)}; if the input looks right, "
              "please report this with the command you ran", file=sys.stderr)
        return 2
    return 0


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


if __name__ == "__main__":
    sys.exit(main())
