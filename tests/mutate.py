"""Mutation testing of ganlib's core, one module list per command (tests/README.md).

    python tests/mutate.py losses checkpoint            # mutate two modules
    python tests/mutate.py --max-children 2 train data  # at most 2 workers (default)

For each module, mutmut (a dev dependency: `pip install -e '.[dev]'`) plants one-line bugs
("mutants") and runs that module's own test files against each, with `-x`, only the tests
that call the mutated function. It works in a copy under runs/mutation/ (ignored by git),
with pyproject's [tool.mutmut] settings and the test selection narrowed to the modules
named, and prints the killed/survived counts and the survivors per module.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "runs" / "mutation"
# module -> the test files that test it (plus test_mutation_kills.py for every module)
TESTS = {
    "losses": ["test_losses.py"],
    "checkpoint": ["test_checkpoint.py"],
    "training": ["test_train.py", "test_resume.py", "test_precision.py"],
    "history": ["test_train.py"],
    "run_files": ["test_train.py", "test_resume.py", "test_cli.py"],
    "sampling": ["test_train.py", "test_cli.py"],
    "data": ["test_data.py"],
    "metrics": ["test_metrics.py"],
    "models": ["test_models.py"],
    "__main__": ["test_cli.py"],
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("modules", nargs="+", choices=sorted(TESTS), help="ganlib modules to mutate")
    p.add_argument("--max-children", type=int, default=2, help="parallel test workers")
    args = p.parse_args(argv)
    tests = sorted({f"tests/{t}" for m in args.modules for t in TESTS[m]}
                   | {"tests/test_mutation_kills.py"})
    tests = [t for t in tests if (ROOT / t).is_file()]

    WORK.mkdir(parents=True, exist_ok=True)
    for name in ("ganlib", "tests"):  # a fresh copy of the code; mutmut keeps its cache
        shutil.rmtree(WORK / name, ignore_errors=True)
        shutil.copytree(ROOT / name, WORK / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(ROOT / "conftest.py", WORK / "conftest.py")
    pyproject = (ROOT / "pyproject.toml").read_text()
    selection = "pytest_add_cli_args_test_selection = [" + ", ".join(f'"{t}"' for t in tests) + "]"
    pyproject, n = re.subn(r"pytest_add_cli_args_test_selection = \[[^\]]*\]", selection,
                           pyproject)
    assert n == 1, "pyproject.toml's [tool.mutmut] has no pytest_add_cli_args_test_selection"
    only = "only_mutate = [" + ", ".join(f'"ganlib/{m}.py"' for m in args.modules) + "]"
    pyproject, n = re.subn(r"only_mutate = \[[^\]]*\]", only, pyproject)
    assert n == 1, "pyproject.toml's [tool.mutmut] has no only_mutate"
    (WORK / "pyproject.toml").write_text(pyproject)

    mutmut = Path(sys.executable).with_name("mutmut")
    globs = [f"ganlib.{m}.*" for m in args.modules]
    print(f"mutating {', '.join(args.modules)} against {', '.join(tests)}", flush=True)
    subprocess.run([str(mutmut), "run", "--max-children", str(args.max_children), *globs],
                   cwd=WORK)
    out = subprocess.run([str(mutmut), "results", "--all", "true"], cwd=WORK,
                         capture_output=True, text=True).stdout
    rows = [line.strip().rsplit(": ", 1) for line in out.splitlines() if ": " in line]
    for m in args.modules:
        mine = [(name, status) for name, status in rows if name.startswith(f"ganlib.{m}.")]
        counts = Counter(status for _, status in mine)
        killed = counts["killed"] + counts["timeout"]
        print(f"\n{m}: {len(mine)} mutants, {killed} killed, {counts['survived']} survived, "
              f"other {dict((k, v) for k, v in counts.items() if k not in ('killed', 'timeout', 'survived'))}")
        for name, status in mine:
            if status != "killed":
                print(f"  {status}: {name}   (mutmut show {name}, in {WORK})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
