"""Mutation testing of ganlib's core, one module list per command (tests/README.md).

    python tests/mutate.py losses checkpoint            # mutate two modules
    python tests/mutate.py --max-children 2 training data  # at most 2 workers (default)
    python tests/mutate.py --sample 30 training data    # 30 mutants per module, at random

For each module, mutmut (a dev dependency: `pip install -e '.[dev]'`) plants one-line bugs
("mutants") and runs that module's own test files against each, with `-x`, only the tests
that call the mutated function. It works in a copy under runs/mutation/ (ignored by git),
with pyproject's [tool.mutmut] settings and the test selection narrowed to the modules
named, and prints the killed/survived counts and the survivors per module.

A whole module can have several hundred mutants, and a mutant of the training loop takes
minutes when it survives. `--sample N` tests N mutants per module drawn at random (seeded
by `--seed`) from all that mutmut generates: the killed share of the sample estimates the
module's score, printed with its 95% Wilson interval. Mutants listed in
`tests/equivalent_mutants.txt` (with the reason each cannot change behaviour) are left out
of the score.
"""
from __future__ import annotations

import argparse
import math
import random
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
    p.add_argument("--sample", type=int, help="test this many mutants per module, at random")
    p.add_argument("--seed", type=int, default=0, help="the sample's seed")
    p.add_argument("--retest", action="store_true", help="with --sample: test again only "
                   "the sampled mutants not yet killed and not listed as equivalent (after "
                   "new tests), keep the others' results")
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
    run = [str(mutmut), "run", "--max-children", str(args.max_children)]
    if args.sample:  # generate and collect the test coverage once ("no mutant" ends the run)
        subprocess.run([*run, "ganlib.no_such_module.*"], cwd=WORK, capture_output=True)
        names = [name for name, _ in _results(mutmut)]
        chosen = []
        for m in args.modules:
            mine = sorted(n for n in names if n.startswith(f"ganlib.{m}."))
            chosen += random.Random(f"{args.seed}-{m}").sample(mine, min(args.sample, len(mine)))
        print(f"sampled {len(chosen)} of {len(names)} mutants", flush=True)
        if args.retest:  # mutmut reruns every mutant it is given by name
            status = dict(_results(mutmut))
            skip = _equivalent()
            chosen_now = [n for n in chosen
                          if status.get(n) not in ("killed", "timeout") and n not in skip]
            print(f"testing again the {len(chosen_now)} not killed", flush=True)
        subprocess.run([*run, *(chosen_now if args.retest else chosen)], cwd=WORK)
        picked = set(chosen)
        rows = [(n, s) for n, s in _results(mutmut) if n in picked]
    else:
        subprocess.run([*run, *globs], cwd=WORK)
        rows = _results(mutmut)
    equivalent = _equivalent()
    for m in args.modules:
        mine = [(n, s) for n, s in rows if n.startswith(f"ganlib.{m}.")]
        counts = Counter("equivalent" if n in equivalent else s for n, s in mine)
        killed = counts["killed"] + counts["timeout"]
        judged = killed + counts["survived"]
        low, high = _wilson(killed, judged)
        print(f"\n{m}: {len(mine)} mutants tested, {killed} killed, {counts['survived']} "
              f"survived, {counts['equivalent']} equivalent, other "
              f"{dict((k, v) for k, v in counts.items() if k not in ('killed', 'timeout', 'survived', 'equivalent'))}"
              + (f"; score {killed}/{judged} = {killed / judged:.0%} (95% {low:.0%}-{high:.0%})"
                 if judged else ""))
        for name, status in mine:
            if status not in ("killed", "timeout") and name not in equivalent:
                print(f"  {status}: {name}   (mutmut show {name}, in {WORK})")
    return 0


def _results(mutmut) -> list[tuple[str, str]]:
    """Every generated mutant with its status ("killed", "survived", "not checked", ...)."""
    out = subprocess.run([str(mutmut), "results", "--all", "true"], cwd=WORK,
                         capture_output=True, text=True).stdout
    return [tuple(line.strip().rsplit(": ", 1)) for line in out.splitlines() if ": " in line]


def _equivalent() -> set[str]:
    """The names in tests/equivalent_mutants.txt (one per line, then the reason)."""
    path = ROOT / "tests" / "equivalent_mutants.txt"
    lines = path.read_text().splitlines() if path.exists() else []
    return {line.split()[0] for line in lines if line.strip() and not line.startswith("#")}


def _wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion k/n."""
    if n == 0:
        return 0.0, 1.0
    p, d = k / n, 1 + z * z / n
    mid, half = (p + z * z / (2 * n)) / d, z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, mid - half), min(1.0, mid + half)


if __name__ == "__main__":
    sys.exit(main())
