"""Rerun every experiment of the book, one after the other, with the recorded settings.

    python experiments/run_all.py            # everything (hours on a 2-core CPU)
    python experiments/run_all.py --quick    # every command with --quick, to --out /tmp
    python experiments/run_all.py --list     # print the commands and stop
    python experiments/run_all.py --only mode_collapse stacked_mnist

`COMMANDS` below is the one list of what to run: a script of this folder and its
arguments. A script here that `COMMANDS` does not mention is reported, so a new experiment
is not silently left out. Each script writes its own file under `experiments/results/`.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

LONG = ["--trials", "10", "--steps", "10000", "--lr", "1e-4"]  # PacGAN's lr, 2.5% of its steps
LONG_OUT = "experiments/results/mode_collapse_long.json"

# (script, arguments): the commands whose results the book reads (run from the repository
# root; with --quick, the added --out replaces any --out here)
COMMANDS = [
    ("losses.py", ["mnist"]),        # chapter 5: BCE vs LSGAN, the chapter's width (16)
    ("losses.py", ["mnist", "--width", "32"]),  # and twice that
    ("losses.py", ["ring"]),
    ("losses.py", ["grid"]),
    ("mode_collapse.py", ["ring"]),  # chapter 6: PacGAN's Table 1 and remedies
    ("mode_collapse.py", ["grid"]),
    # chapter 6: the rows the papers' tables are matched on, 10 trials at a longer budget
    ("mode_collapse.py", ["ring", *LONG, "--only", "GAN", "PacGAN2", "--out", LONG_OUT]),
    ("mode_collapse.py", ["grid", *LONG, "--only", "GAN", "PacGAN4", "--out", LONG_OUT]),
    ("stacked_mnist.py", []),        # chapter 6: DCGAN vs PacDCGAN2
    ("wgan.py", ["ring", "grid", "mnist"]),  # chapter 8: WGAN, WGAN-GP and SN-GAN critics
    ("conditional.py", []),          # chapter 9: conditional accuracy, per-class FID, lerp vs slerp
    # chapter 6: VEEGAN's and GDPP's Table 1 at its own protocol, 5 runs of 25,000
    # iterations per row (hours: run ring and grid side by side; add --checkpoints DIR to
    # make them resumable)
    ("veegan.py", ["ring"]),
    ("veegan.py", ["grid"]),
    ("d_vs_blur.py", []),            # chapter 6: how fast that protocol's D tells the grid from a blur
]


HELPERS = ("record.py",)  # modules the scripts import, not experiments to run


def unlisted() -> list[str]:
    """Scripts in this folder that COMMANDS does not run."""
    listed = {script for script, _ in COMMANDS} | set(HELPERS)
    return sorted(p.name for p in HERE.glob("*.py")
                  if p.name not in listed and p.name != Path(__file__).name
                  and not p.name.startswith("_"))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="pass --quick and write to a temporary folder (a smoke test)")
    p.add_argument("--list", action="store_true", help="print the commands and stop")
    p.add_argument("--only", nargs="*", help="script names (without .py) to run")
    args = p.parse_args(argv)
    for name in unlisted():
        print(f"note: experiments/{name} is not in run_all.COMMANDS and is not run",
              file=sys.stderr)
    commands = [(s, a) for s, a in COMMANDS
                if not args.only or Path(s).stem in args.only]
    tmp = Path(tempfile.mkdtemp(prefix="ganlib-experiments-")) if args.quick else None
    failed = []
    for i, (script, arguments) in enumerate(commands):
        extra = ["--quick", "--out", str(tmp / f"{Path(script).stem}-{i}.json")] if args.quick else []
        cmd = [sys.executable, str(HERE / script), *arguments, *extra]
        print("$ " + " ".join(cmd[1:]), flush=True)
        if args.list:
            continue
        start = time.perf_counter()
        if subprocess.run(cmd, cwd=HERE.parent).returncode != 0:
            failed.append(" ".join(cmd[1:]))
        print(f"  ({time.perf_counter() - start:.0f} s)", flush=True)
    if failed:
        sys.exit("failed:\n  " + "\n  ".join(failed))


if __name__ == "__main__":
    main()
