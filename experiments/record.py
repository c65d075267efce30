"""Recording an experiment: where and with what it ran, when, for how long, and writing its
section of a result file. One schema for every result file the book reads: each section
holds `**stamp(start)`, that is

    "machine":  {"cpu": "AMD EPYC", "threads": 1, "cuda": null or the GPU's name},
    "versions": {"python": "3.11.7", "torch": "2.14.1", "ganlib": "0.1.0"},
    "date": "2026-11-23T18:51:07+00:00", "wall_seconds": 123.4

beside its own settings and numbers.
"""
from __future__ import annotations

import argparse
import datetime
import fcntl
import json
import os
import platform
import re
import time
from pathlib import Path

import torch

import ganlib
from ganlib.book import cpu_name
from ganlib.checkpoint import atomic_write


def machine() -> dict:
    """The CPU, torch's thread count and the GPU (None without CUDA)."""
    return {"cpu": cpu_name(), "threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def versions() -> dict:
    return {"python": platform.python_version(), "torch": torch.__version__,
            "ganlib": ganlib.__version__}


def stamp(start: float) -> dict:
    """The record every section carries; `start` is a `time.perf_counter()` reading."""
    return {"machine": machine(), "versions": versions(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "wall_seconds": round(time.perf_counter() - start, 1)}


def describe(section: dict) -> str:
    """"AMD EPYC, 1 thread" or the GPU's name: the machine of a section, for a table."""
    m = section["machine"]
    return m["cuda"] or f"{m['cpu']}, {m['threads']} thread{'s' if m['threads'] > 1 else ''}"


def dumps(results: dict) -> str:
    """JSON with one line per list of numbers (and per list of points), to keep it short."""
    text = json.dumps(results, indent=1)
    flat = lambda m: re.sub(r"\s+", " ", m.group(0)).replace("[ ", "[").replace(" ]", "]")
    text = re.sub(r'\[[^\[\]{}"]*\]', flat, text)  # [1.0, 2.0] on one line
    return re.sub(r"\[(\s*\[[^\[\]]*\],?)+\s*\]", flat, text) + "\n"  # [[x, y], ...] too


def write_section(path: Path, name: str | None, section: dict) -> None:
    """Replace section `name` of the JSON file at `path`, keeping the others (atomically);
    `name=None` writes `section` as the whole file. Two processes writing their sections
    of one file at once take turns (an exclusive `flock` on its folder, released by the
    kernel even when a writer dies), so neither loses the other's."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)  # waits while another process writes a section
        results = json.loads(path.read_text()) if name and path.exists() else {}
        if name:
            results[name] = section
        atomic_write(path, lambda tmp: Path(tmp).write_text(dumps(results if name else section)))
    finally:
        os.close(folder)  # releases the lock


_HELD: dict[Path, int] = {}  # the locks this process holds: path -> its open descriptor


def claim_lock(lock: Path) -> bool:
    """Take the lock file `lock`: True when it is now ours, False while another process (or
    this one) holds it. The hold is an exclusive `flock` on the open file, which the kernel
    drops when its process dies, so a dead owner's lock is free at once, whatever its file
    says (the holder's process id, written for a person looking). `release_lock` gives it up."""
    lock = Path(lock).absolute()
    if lock in _HELD:
        return False
    while True:
        fd = os.open(lock, os.O_CREAT | os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a living process holds it
            os.close(fd)
            return False
        try:  # still the file at that path? Its owner may have released (deleted) it meanwhile
            if os.fstat(fd).st_ino == os.stat(lock).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)  # a deleted lock: try the path again
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    _HELD[lock] = fd
    return True


def release_lock(lock: Path) -> None:
    """Give up a lock `claim_lock` took (deleting its file); nothing if this process holds none."""
    lock = Path(lock).absolute()
    fd = _HELD.pop(lock, None)
    if fd is not None:
        lock.unlink(missing_ok=True)  # before closing, so no one locks a file about to vanish
        os.close(fd)


class RunStore:
    """Finished runs of a long experiment, one JSON file each in `folder`, so that an
    interrupted experiment resumes where it stopped and several processes can share its
    runs: a process `claim`s a run (`claim_lock` on the run's lock file; a dead owner's
    lock is free), `put`s the finished run, and `wait`s for the runs others hold.
    `key` names the settings the runs depend on; a stored run with another key is retrained.

        store = RunStore(folder, key="mnist-w16-12000")
        for name in names:
            if store.claim(name):
                store.put(name, train(name))
        runs = store.wait(names)
    """

    def __init__(self, folder, key: str):
        self.folder, self.key = Path(folder), key
        self.folder.mkdir(parents=True, exist_ok=True)

    def _path(self, name: str, suffix: str = ".json") -> Path:
        return self.folder / f"{self.key}-{name}{suffix}"

    def get(self, name: str) -> dict | None:
        path = self._path(name)
        return json.loads(path.read_text()) if path.exists() else None

    def put(self, name: str, run: dict) -> None:
        atomic_write(self._path(name), lambda tmp: Path(tmp).write_text(json.dumps(run)))
        release_lock(self._path(name, ".lock"))

    def claim(self, name: str) -> bool:
        """True when this process should train run `name`: not stored, and not held by a
        living process."""
        return not self._path(name).exists() and claim_lock(self._path(name, ".lock"))

    def wait(self, names, poll: float = 30.0) -> list[dict]:
        """The stored runs `names`, in order, once all have landed."""
        while (missing := [n for n in names if self.get(n) is None]):
            print(f"waiting for {len(missing)} run(s) held by other processes: {missing[0]} ...",
                  flush=True)
            time.sleep(poll)
        return [self.get(n) for n in names]


def add_common_arguments(p: argparse.ArgumentParser, results: Path, seeds: int | None) -> None:
    """The flags every multi-seed experiment shares: --seeds, --noise-seed, --root,
    --threads, --quick and --out (`results`, the JSON file whose section it replaces)."""
    p.add_argument("--seeds", type=int, default=seeds, help="runs (seeds) per configuration"
                   + (f" (default {seeds})" if seeds else " (default: the script's, per data set)"))
    p.add_argument("--noise-seed", type=int, default=12345, help="evaluation noise")
    p.add_argument("--root", default=None, help="MNIST folder (default $GANLIB_DATA)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--quick", action="store_true", help="a smoke test: few steps and seeds")
    p.add_argument("--out", type=Path, default=results, help="JSON file to update")
