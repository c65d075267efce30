"""The speed-to-quality benchmarks run (their --smoke modes): what the README and chapter 10
quote comes from these scripts, so a change that breaks them fails here, not months later."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("script, expect", [
    ("time_to_quality.py", "FID-MNIST (steps) against seconds of training"),
    ("cpu_step.py", "ganlib.train vs the bare step"),
])
def test_benchmark_smoke_run(script, expect, tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--smoke"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert expect in out.stdout, out.stdout[-2000:]
    assert not list(tmp_path.iterdir())  # a smoke run writes no result file


def test_throughput_times_an_older_ganlib_beside_the_current_one(tmp_path):
    # --before REV: the loop's speed before and after a change, in one run (issue 22).
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "throughput.py"), "--steps",
                          "2", "--repeats", "1", "--threads", "1", "--before", "HEAD"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [line.split()[0] for line in out.stdout.splitlines()[2:]]
    assert rows == ["article-64", "ganlib-64", "ganlib-256", "ganlib-64@HEAD", "ganlib-256@HEAD"]
