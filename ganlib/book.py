"""What the book needs beyond training: its budget knob, its repository, its result files.

- `budget(quick=..., full=..., gpu=...)`: how long a chapter trains, from `$GANLIB_BUDGET`.
- `REPOSITORY`: the project's address (`tests/test_book.py` checks it against `_config.yml`).
- `load_result(path)`: a JSON result file that a script of the repository wrote, read from
  the clone or, in Colab, downloaded; `cpu_name()` for the machine record those files keep.

Introduced in chapter 1 (how to use this book); `load_result` in chapters 4 to 8.
"""
from __future__ import annotations

import json
import os
import platform
import urllib.request
from pathlib import Path

import torch

BUDGET_ENV = "GANLIB_BUDGET"
BUDGETS = ("quick", "full", "gpu")


def budget(quick, full, gpu=None):
    """The book's one training-budget knob: how long a chapter trains.

    `$GANLIB_BUDGET` chooses: "quick" (tests, CI) gives `quick`; "full" or unset (the
    rendered book) gives `gpu` when CUDA is available and `gpu` is given, else `full`;
    "gpu" gives `gpu` (or `full` when none is given) even without CUDA, e.g. to rehearse a
    GPU budget's code path on a CPU. Example:
    `steps = budget(quick=50, full=5000, gpu=50_000)`. A chapter that passes no `gpu`
    trains the `full` budget everywhere, as before. Introduced in chapter 1.
    """
    mode = os.environ.get(BUDGET_ENV, "full")
    if mode not in BUDGETS:
        raise ValueError(f"{BUDGET_ENV} must be one of {', '.join(BUDGETS)}, got {mode!r}")
    if mode == "quick":
        return quick
    if gpu is not None and (mode == "gpu" or torch.cuda.is_available()):
        return gpu
    return full


# The project's repository; tests/test_book.py checks that it equals `repository.url` in
# _config.yml (the one place a move is made) and that every chapter's links agree with it.
REPOSITORY = "https://github.com/gan-book/gan-book"


def load_result(path: str, branch: str = "main"):
    """Read a JSON result file that a script of the repository writes (e.g.
    "benchmarks/results/metrics_reference.json"), as parsed JSON.

    Looks in the current folder and its parents (a clone, where the chapters run from
    `book/`), then in the checkout that holds this package (an editable install), and
    only then downloads the committed file from the project's repository (Colab, where
    `pip install` brought the package without the repository's other folders).
    Raises `FileNotFoundError` saying how to rebuild the file when none of these works.
    The chapters read their measured tables through it (chapters 4 to 8).
    """
    here = Path.cwd().resolve()
    for folder in (here, *here.parents, Path(__file__).resolve().parents[1]):
        if (folder / path).is_file():
            return json.loads((folder / path).read_text(encoding="utf-8"))
    raw = REPOSITORY.replace("https://github.com/", "https://raw.githubusercontent.com/")
    url = f"{raw}/{branch}/{path}"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return json.loads(response.read())
    except OSError as err:
        raise FileNotFoundError(
            f"{path} is not under {here} or its parents, and downloading {url} failed "
            f"({err}). Run the chapter from a clone of {REPOSITORY}, or rerun the script "
            "that writes the file (see experiments/README.md and benchmarks/README.md)."
        ) from err


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one), for the machine record
    that benchmark and experiment result files keep."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
