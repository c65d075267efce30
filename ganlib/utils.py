"""Small shared helpers: seeding, device choice, atomic file writes."""
from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) from one integer.

    Same seed, same CPU result: every random draw in ganlib goes through these generators.
    Introduced in chapter 1 (how to use this book).
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def get_device(device: str | torch.device = "auto") -> torch.device:
    """Return a `torch.device`; "auto" picks CUDA when a GPU is present, else the CPU."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but CUDA is not available; "
                         "use device='auto' or 'cpu'")
    return dev


def atomic_write(path: str | Path, write) -> None:
    """Call `write(tmp_path)`, then rename the temporary file onto `path` in one step.

    A crash or an exception while writing leaves any earlier file at `path` untouched. The
    new file gets the permissions an ordinary `open(path, "w")` would give it (the
    temporary file starts as owner-only).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


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
    The chapters read their measured tables through it (chapters 5 to 7).
    """
    import json
    import urllib.request
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
    import platform
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
