"""The book's structure: each chapter's first cell, how notebooks are stored, the table of
contents, and the API links. (nbval runs the chapters themselves: see pyproject.toml.)"""
from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
NOTEBOOKS = sorted(BOOK.glob("*.ipynb"))
CHAPTERS = sorted(p for p in BOOK.iterdir() if p.suffix in (".ipynb", ".md"))


def load_notebook(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def cell_source(cell: dict) -> str:
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def first_code_cell(path: Path) -> dict:
    return next(c for c in load_notebook(path)["cells"] if c["cell_type"] == "code")


def repository_url() -> str:
    """The project's address, set in one place: `repository.url` in _config.yml."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    return config["repository"]["url"]


def run_driver(code: str) -> dict:
    """Run `code` in a fresh interpreter (the test's own Python, where ganlib is installed);
    it prints one JSON line last, which is returned."""
    proc = subprocess.run([sys.executable, "-c", code], cwd=BOOK, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, f"driver failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_there_are_chapters():
    assert NOTEBOOKS, "no notebooks found under book/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_is_a_noop_where_ganlib_is_installed(path):
    # Any attempt to start a process (pip) raises; the cell must still pick a device and seed.
    source = cell_source(first_code_cell(path))
    driver = textwrap.dedent(f"""
        import json, os, subprocess
        def refuse(*args, **kwargs):
            raise AssertionError(f"the setup cell tried to run a process: {{args!r}}")
        subprocess.run = subprocess.call = subprocess.check_call = refuse
        subprocess.check_output = os.system = refuse
        scope = {{"__name__": "__main__"}}
        exec(compile({source!r}, "setup-cell", "exec"), scope)
        import torch
        print(json.dumps({{"device": str(scope["device"]), "seed": torch.initial_seed()}}))
    """)
    result = run_driver(driver)
    assert result["device"] in ("cpu", "cuda")
    assert result["seed"] == 0


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_installs_ganlib_from_the_configured_repository(path):
    # Where ganlib is not importable (Colab), the cell pip-installs it from the address in
    # _config.yml. We hide ganlib from importlib.util.find_spec and record the command.
    source = cell_source(first_code_cell(path))
    driver = textwrap.dedent(f"""
        import importlib.util, json, subprocess
        real_find_spec = importlib.util.find_spec
        importlib.util.find_spec = lambda name, *a, **k: (
            None if name == "ganlib" else real_find_spec(name, *a, **k))
        class Stop(Exception):
            pass
        calls = []
        def record(args, *rest, **kwargs):
            calls.append(list(args))
            raise Stop
        subprocess.run = subprocess.check_call = subprocess.call = record
        try:
            exec(compile({source!r}, "setup-cell", "exec"), {{"__name__": "__main__"}})
        except Stop:
            pass
        print(json.dumps(calls))
    """)
    calls = run_driver(driver)
    assert len(calls) == 1, f"expected one pip install, got {calls}"
    (cmd,) = calls
    assert cmd[1:4] == ["-m", "pip", "install"], cmd
    assert f"git+{repository_url()}" in cmd, (
        f"the setup cell installs from {cmd[-1]!r}, but _config.yml says {repository_url()!r}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_is_tagged_setup(path):
    assert "setup" in first_code_cell(path).get("metadata", {}).get("tags", [])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(path):
    nb = load_notebook(path)
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"cell {i} of {path.name} has outputs"
            assert cell.get("execution_count") is None, f"cell {i} of {path.name} has a count"
    assert "widgets" not in nb["metadata"], f"{path.name} stores widget state; clear it"


def toc_files() -> set[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = {toc["root"]}

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.add(node["file"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(toc.get("parts", toc.get("chapters", [])))
    return {str(Path(f).with_suffix("")) for f in files}


def test_toc_lists_every_chapter_and_nothing_else():
    listed = toc_files()
    present = {str(p.relative_to(ROOT).with_suffix("")) for p in CHAPTERS}
    assert present - listed == set(), f"chapters missing from _toc.yml: {present - listed}"
    assert listed - present == set(), f"_toc.yml lists missing files: {listed - present}"


API_ROLE = re.compile(r"\{py:(func|class|meth|mod)\}`([^`]+)`")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_api_links_name_real_ganlib_objects(path):
    # The full build checks these too (-n); this catches a typo in a second.
    if path.suffix == ".ipynb":
        text = "\n".join(cell_source(c) for c in load_notebook(path)["cells"]
                         if c["cell_type"] == "markdown")
    else:
        text = path.read_text(encoding="utf-8")
    for _, target in API_ROLE.findall(text):
        target = target.lstrip("~").split("<")[-1].rstrip(">")
        parts = target.split(".")
        assert parts[0] == "ganlib", target
        for i in range(len(parts), 0, -1):  # the longest importable module prefix
            try:
                obj = importlib.import_module(".".join(parts[:i]))
                break
            except ImportError:
                continue
        for name in parts[i:]:
            assert hasattr(obj, name), f"{path.name}: {target} does not exist"
            obj = getattr(obj, name)
