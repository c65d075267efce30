"""Execute the book's notebooks on every core, into the cache the book build reads.

    GANLIB_BUDGET=quick python scripts/execute_book.py && jupyter-book build . -W -n

`jupyter-book build` (with `execute_notebooks: cache` in `_config.yml`) runs each notebook
that its cache does not hold, one after the other. This script fills that cache first,
`_build/.jupyter_cache`, with jupyter-cache's parallel executor (one notebook per core, each
in its own folder as the build runs it), so the build then only renders. A notebook that
the cache already holds with the same code is not run again. The budget is whatever
`GANLIB_BUDGET` says, as for the build: jupyter-cache keys a notebook on its code, not on
the budget, so run `jupyter-book clean --all .` before switching budgets.

Exits 1, printing each failing notebook's error, when any notebook fails; the build would
then run it again and fail with the same error.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml
from jupyter_cache import get_cache
from jupyter_cache.executors import load_executor

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "_build" / ".jupyter_cache"  # where myst-nb looks: beside _build/html


def notebooks() -> list[Path]:
    """The .ipynb files of `_toc.yml`, in its order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    return [ROOT / f"{f}.ipynb" for f in files if (ROOT / f"{f}.ipynb").exists()]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--timeout", type=int, default=None,
                   help="seconds per notebook (default: _config.yml's execute.timeout)")
    args = p.parse_args(argv)
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    timeout = args.timeout or config["execute"]["timeout"]
    cache = get_cache(str(CACHE))
    for path in notebooks():
        cache.add_nb_to_project(str(path))
    result = load_executor("local-parallel", cache=cache).run_and_cache(timeout=timeout)
    failed = [*result.excepted, *result.errored]
    print(f"executed {len(result.succeeded)} notebook(s) into {CACHE.relative_to(ROOT)}"
          f"{f'; {len(failed)} failed' if failed else ''}")
    for uri in failed:
        record = cache.get_project_record(uri)
        print(f"\n{uri} failed:\n{record.traceback}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
