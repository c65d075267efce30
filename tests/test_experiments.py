"""The experiment scripts whose result files the book reads: every command of
`experiments/run_all.py` names a script that exists, the long mode-collapse commands run
(as a smoke test), and the committed result files hold what those commands write."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"
sys.path.insert(0, str(EXPERIMENTS))

import mode_collapse  # noqa: E402
import run_all  # noqa: E402


def option(args: list[str], flag: str) -> list[str]:
    """The values after `flag` in an argument list, up to the next flag."""
    if flag not in args:
        return []
    rest = args[args.index(flag) + 1:]
    stop = next((i for i, a in enumerate(rest) if a.startswith("--")), len(rest))
    return rest[:stop]


def long_commands() -> list[list[str]]:
    return [args for script, args in run_all.COMMANDS
            if script == "mode_collapse.py" and option(args, "--out") == [run_all.LONG_OUT]]


def test_every_command_names_an_existing_script_and_none_is_left_out():
    assert all((EXPERIMENTS / script).is_file() for script, _ in run_all.COMMANDS)
    assert run_all.unlisted() == []


def test_the_long_mode_collapse_commands_run(tmp_path):
    commands = long_commands()
    assert {args[0] for args in commands} == {"ring", "grid"}
    out = tmp_path / "long.json"
    for args in commands:  # --quick: 2 trials of 30 steps; the last --out wins
        mode_collapse.main([*args, "--quick", "--out", str(out),
                            "--threads", str(torch.get_num_threads())])
    results = json.loads(out.read_text())
    for args in commands:
        sec = results[args[0]]
        assert list(sec["rows"]) == option(args, "--only")
        assert sec["trials"] == 2 and sec["steps"] == 30 and sec["budget"] == "quick"
        for row in sec["rows"].values():
            assert len(row["metrics"]) == 2 and len(row["by_step"]) == 10


def test_the_committed_long_results_are_what_the_commands_write():
    path = ROOT / run_all.LONG_OUT
    if not path.exists():
        pytest.skip(f"{run_all.LONG_OUT} has not been computed")
    results = json.loads(path.read_text())
    for args in long_commands():
        sec = results[args[0]]
        assert sec["trials"] == int(option(args, "--trials")[0])
        assert sec["steps"] == int(option(args, "--steps")[0])
        assert sec["lr"] == float(option(args, "--lr")[0])
        assert sec["budget"] == "full" and list(sec["rows"]) == option(args, "--only")
        for row in sec["rows"].values():
            assert len(row["metrics"]) == sec["trials"]
            assert row["settings"]["steps"] == sec["steps"]
