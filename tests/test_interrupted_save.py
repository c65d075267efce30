"""A real training process killed (SIGKILL) in the middle of writing a checkpoint: the
previous last.pt stays loadable and `python -m ganlib train --resume` continues it to the
end. Each process is bounded in time."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

import ganlib
from ganlib import load_checkpoint

STEPS = 10
# The CLI in a child process, with torch.save replaced so that the KILL_AT-th save writes half
# of its bytes, says so through a marker file, and then hangs until it is killed.
CHILD = """
import io, os, runpy, sys, time
import torch
kill_at, marker = int(os.environ["KILL_AT"]), os.environ["MARKER"]
real_save, calls = torch.save, []

def save(obj, f, *args, **kw):
    calls.append(1)
    if len(calls) < kill_at:
        return real_save(obj, f, *args, **kw)
    buf = io.BytesIO()
    real_save(obj, buf, *args, **kw)
    data = buf.getvalue()
    with open(f, "wb") as out:
        out.write(data[:len(data) // 2])
        out.flush()
        os.fsync(out.fileno())
    open(marker, "w").close()
    time.sleep(120)  # killed here, mid-save

torch.save = save
sys.argv = ["ganlib"] + sys.argv[1:]
runpy.run_module("ganlib", run_name="__main__")
"""


def _train_args(out: Path, resume=False):
    args = ["train", "--data", "ring", "--model", "toy", "--batch-size", "64",
            "--steps", str(STEPS), "--ckpt-every", "1", "--sample-every", "0",
            "--device", "cpu", "--out", str(out), "--no-progress"]
    return args + ["--resume"] if resume else args


def _env(**extra):
    root = str(Path(ganlib.__file__).resolve().parents[1])  # the ganlib under test
    return {**os.environ, "PYTHONPATH": root, "MPLBACKEND": "Agg", **extra}


def _cli(args, timeout=600):
    return subprocess.run([sys.executable, "-m", "ganlib", *args], env=_env(),
                          capture_output=True, text=True, timeout=timeout)


def test_process_killed_mid_save_keeps_last_pt_and_resumes_exactly(tmp_path):
    out, marker = tmp_path / "run", tmp_path / "saving"
    child = subprocess.Popen([sys.executable, "-c", CHILD, *_train_args(out)],
                             env=_env(KILL_AT="5", MARKER=str(marker)),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 600
        while not marker.exists():
            assert child.poll() is None, child.stdout.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the child never reached its 5th save"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)  # in the middle of writing last.pt for step 5
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=60)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL

    ck = load_checkpoint(out / "last.pt")  # the step-4 checkpoint, whole
    assert ck["step"] == 4 and ck["history"]["step"] == [1, 2, 3, 4]

    resumed = _cli(_train_args(out, resume=True))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a = load_checkpoint(out / "last.pt")
    assert a["step"] == STEPS and a["history"]["step"] == list(range(1, STEPS + 1))
    for key in ("d_loss", "g_loss"):  # it continued the killed run's history
        assert a["history"][key][:4] == ck["history"][key]
    # and ended where a run never interrupted ends: the same history and the same weights
    whole = _cli(_train_args(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr[-2000:]
    b = load_checkpoint(tmp_path / "whole" / "last.pt")
    assert a["history"] == b["history"]
    for net in ("G", "D"):
        assert all(torch.equal(a[net][k], b[net][k]) for k in b[net]), net
