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


def test_ganlib_knows_the_configured_repository():
    from ganlib.book import REPOSITORY
    assert REPOSITORY == repository_url(), (
        "ganlib.book.REPOSITORY must equal repository.url in _config.yml")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_every_link_to_the_repository_uses_the_configured_address(path):
    owner_name = repository_url().removeprefix("https://github.com/").strip("/")
    text = path.read_text(encoding="utf-8")
    # Links to other projects on GitHub are fine; an install, a raw file or a Colab link is ours.
    for host in ("git+https://github.com", "raw.githubusercontent.com",
                 "colab.research.google.com/github"):
        for found in re.findall(re.escape(host) + r"/([\w.-]+/[\w.-]+)", text):
            assert found.removesuffix(".git") == owner_name, (
                f"{path.name} links {host}/{found}; the repository is {owner_name} "
                "(repository.url in _config.yml)")


def test_load_result_reads_from_the_checkout_and_explains_a_missing_file(tmp_path, monkeypatch):
    import urllib.request
    from ganlib.book import load_result
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "r.json").write_text('{"x": 1}')
    monkeypatch.chdir(tmp_path / "results")  # a parent of the working folder holds it
    assert load_result("results/r.json") == {"x": 1}
    assert load_result("benchmarks/results/metrics_reference.json")["rows"]  # the checkout's

    def offline(url, timeout):
        raise OSError("no network")
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(FileNotFoundError, match="rerun the script"):
        load_result("results/missing.json")


# --- Homework without leaks: hidden solutions, and the student edition ---------------------

sys.path.insert(0, str(ROOT / "scripts"))
import student_edition  # noqa: E402  (scripts/student_edition.py)

def notebook_params():
    """The numbered chapters (pages such as `distributed.ipynb` have no exercises)."""
    return [pytest.param(p, id=p.name) for p in NOTEBOOKS if p.name[:2].isdigit()]


def exercises(nb: dict) -> list[tuple[int, int, int]]:
    """(answer, check, solution) cell indices of each exercise, in order."""
    cells = nb["cells"]
    tagged = {tag: [i for i, c in enumerate(cells) if tag in c["metadata"].get("tags", [])]
              for tag in ("answer", "check", "solution")}
    return list(zip(tagged["answer"], tagged["check"], tagged["solution"]))


@pytest.mark.parametrize("path", notebook_params())
def test_every_solution_cell_is_hidden_in_the_html_jupyterlab_and_colab(path):
    nb = load_notebook(path)
    solutions = [i for i, c in enumerate(nb["cells"]) if student_edition.is_solution(c)]
    assert solutions, f"{path.name} has no solution cells"
    for i in solutions:
        cell = nb["cells"][i]
        meta = cell["metadata"]
        assert "solution" in meta.get("tags", []), f"cell {i}: tag it `solution`"
        assert "hide-cell" in meta["tags"], f"cell {i}: not hidden in the HTML (hide-cell)"
        assert meta.get("jupyter", {}).get("source_hidden") is True, (
            f"cell {i}: not hidden in JupyterLab (metadata.jupyter.source_hidden)")
        assert meta.get("cellView") == "form", f"cell {i}: not hidden in Colab (cellView)"
        assert cell_source(cell).startswith("#@title"), (
            f"cell {i}: Colab hides a form cell's code only under a #@title first line")
        assert student_edition.is_hidden(cell)


@pytest.mark.parametrize("path", notebook_params())
def test_every_exercise_is_an_answer_stub_a_check_and_a_solution_in_that_order(path):
    nb = load_notebook(path)
    found = exercises(nb)
    tags = [t for c in nb["cells"] for t in c["metadata"].get("tags", [])]
    assert found and len(found) == tags.count("answer") == tags.count("check") \
        == tags.count("solution"), f"{path.name}: answer/check/solution cells do not pair up"
    for answer, check, solution in found:
        assert answer < check < solution, (answer, check, solution)
        assert "replace with your code" in cell_source(nb["cells"][answer])
        assert "solution_" not in cell_source(nb["cells"][check])
        # The solution cell runs the same check on the solution (and nbval/the build run it).
        assert re.search(r"assert check_?\w*\(", cell_source(nb["cells"][solution]))


def test_student_edition_has_no_solutions_and_keeps_every_stub_and_check(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "student_edition.py"),
                           str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    written = sorted(tmp_path.glob("*.ipynb"))
    assert [p.name for p in written] == [p.name for p in NOTEBOOKS]
    for teacher, student in zip(NOTEBOOKS, written):
        nb_t, nb_s = load_notebook(teacher), load_notebook(student)
        text = json.dumps(nb_s)
        assert "solution_" not in text and "#@title" not in text, f"{student.name} leaks"
        assert not any(student_edition.is_solution(c) for c in nb_s["cells"])
        assert not any(student_edition.LABEL.match(cell_source(c)) for c in nb_s["cells"])
        for tag in ("answer", "check"):  # every stub and check is still there, unchanged
            pick = lambda nb: [cell_source(c) for c in nb["cells"]  # noqa: E731
                               if tag in c["metadata"].get("tags", [])]
            assert pick(nb_s) == pick(nb_t)
        ids = [c["id"] for c in nb_s["cells"]]
        assert len(ids) == len(set(ids))


def test_student_edition_refuses_to_overwrite_the_book():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "student_edition.py"),
                           str(BOOK)], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "must not be book/" in proc.stderr


# Chapters cheap enough to execute twice in the test run (their student edition here, the
# teacher's edition under nbval); the others are checked the same way by
# `GANLIB_STUDENT_EDITION=all python -m pytest tests/test_book.py -k student_edition_checks`.
STUDENT_RUN = {"02_minimax.ipynb"}


def student_run_params():
    import os
    every = os.environ.get("GANLIB_STUDENT_EDITION") == "all"
    return [p.name for p in NOTEBOOKS if every or p.name in STUDENT_RUN]


@pytest.mark.parametrize("name", student_run_params())
def test_student_edition_checks_fail_on_the_unfilled_stubs(name, tmp_path, monkeypatch):
    # Run the student edition top to bottom (quick budget): every check cell must run
    # without raising, and report "not answered yet" rather than a pass on the stub.
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    student_edition.write_student_edition(tmp_path)
    nb = nbformat.read(tmp_path / name, as_version=4)
    monkeypatch.setenv("GANLIB_BUDGET", "quick")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(BOOK)}}).execute()
    checks = [c for c in nb.cells if "check" in c.metadata.get("tags", [])]
    assert checks
    for cell in checks:
        out = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        assert "not answered yet" in out and "✓" not in out, (
            f"{name}: a check passed or said nothing on an unfilled stub:\n{out}")


# --- Numbers in the prose -------------------------------------------------------------------
# A number in a chapter's text (markdown) must come from a cell: glued in with myst-nb's
# `{glue:text}` role, or shown in the cell's output. The only numbers the text may state
# itself are listed here, per chapter: definitions and settings (network sizes, image
# sizes, learning rates, the source articles' names 000-003), values quoted from papers,
# and small counts. Math ($...$), code (`...`), links, years and "chapter N" are not prose
# numbers. A number that is measured belongs in a glue, not in this list. (These lists were
# taken from the text when the test was written, and chapters 3 to 7 may still hold values
# that deserve a glue: prune them as they are converted; a stale entry fails the test below.)
PROSE_NUMBERS = {
    "01_introduction.md": "2 10 16 17 18 19",
    "02_minimax.ipynb": "1 2 3",
    "03_first_gan.ipynb": "000 0 0.2 0.3 0.693 1 001 1.386 2 002 003 3 4 5 6 16 30 64 100 255 256 "
                          "784 0.5 2,000 5,000 10,000 60,000 94,000",
    "04_dcgan.ipynb": "000 0 0.02 0.2 0.3 1 2 002 003 3 4 5 6 7 8 9 10 16 28 30 32 64 65 100 128 "
                      "300 301 784 1,000 1,024 10,000 60,000",
    "05_bce_vs_lsgan.ipynb": "000 0 0.01 0.5 1 2 3 4 5 6 7 8 10 16 25 30 32 64 100 150 200 400 "
                             "1,000 2,500 5,000 100,000 200,000 400,000",
    "06_mode_collapse.ipynb": "0 0.01 0.03 0.05 0.1 0.15 1 1.4 2 2.5 3 4 5 6 7 8 10 25 40 50 70 91 99 "
                              "95 98 98.9 100 128 256 300 400 500 512 800 1,000 2,500 10,000 20,000 "
                              "25,000 26,000 100,000 400,000",
    "07_evaluating_gans.ipynb": "0 0.01 1 2 3 4 5 6 8 9 12 16 64 100 128 250 1,000 2,048 5,000 10,000 "
                                "100,000",
    # Chapters 8-10 and the torchrun page: settings and definitions (batch sizes, budgets,
    # the script's defaults, decay rates), snapshots taken at their merge
    "08_wasserstein.ipynb": "0 1 2 3 4 5 8 25 64 100 128 150 1,000 2,000 4,000 10,000 100,000",
    "09_conditional_latent.ipynb": "001 002 1 2 3 4 7 10 32 64 99 100",
    "10_practice.ipynb": "002 0 0.01 0.5 0.9 0.99 0.995 0.999 1 2 3 4 5 8 15 30 60 64 120 128 600 "
                         "1,000 2,500 10,000",
    "distributed.ipynb": "001 0 0.1 1 2 3 4 5 6 7 16 24 32 64 128 256",
    "api.md": "",
    "intro.md": "",
}
_ROLE = re.compile(r"\{[\w:-]+\}`[^`]*`")          # {glue:text}`name:.2f`, {py:func}`...`, {doc}`...`
_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)
_MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]+\$", re.S)
_LINK = re.compile(r"\]\([^)]*\)|https?://\S+")
_REFERENCE = re.compile(r"\b(?:chapters?|Theorem|section|cell|[Ee]xercise|part)s?\s+\d+(?:\.\d+)?"
                        r"(?:\s*(?:to|and|-|–)\s*\d+)?")
_YEAR = re.compile(r"\b(?:19|20)\d\d[a-z]?\b")
_NUMBER = re.compile(r"(?<![\w.-])\d[\d,]*(?:\.\d+)?(?![\w])")


def prose_numbers(markdown: str) -> set[str]:
    """The numbers a text states in its own words (not glued, not in math, code or links)."""
    for pattern in (_ROLE, _CODE, _MATH, _LINK, _REFERENCE, _YEAR):
        markdown = pattern.sub(" ", markdown)
    return {n.rstrip(",") for n in _NUMBER.findall(markdown)}


def chapter_markdown(path: Path) -> str:
    if path.suffix == ".ipynb":
        return "\n".join(cell_source(c) for c in load_notebook(path)["cells"]
                         if c["cell_type"] == "markdown")
    return path.read_text(encoding="utf-8")


def test_prose_number_scanner_skips_glue_math_code_years_and_references():
    text = ("FID {glue:text}`fid:.2f` after $28 \\times 28$ pixels, `lr=2e-4`, in 2016, "
            "chapter 6, [x](https://a.b/1.5) and 3.14 and 60,000.")
    assert prose_numbers(text) == {"3.14", "60,000"}


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_every_number_in_the_prose_is_glued_or_listed(path):
    allowed = set(PROSE_NUMBERS.get(path.name, "").split())
    unlisted = prose_numbers(chapter_markdown(path)) - allowed
    assert not unlisted, (
        f"{path.name} states {sorted(unlisted)} in its text: compute it in a cell and glue it "
        "(myst_nb.glue + {glue:text}`name`), or, if it is a definition or a quoted value, add "
        "it to PROSE_NUMBERS in tests/test_book.py")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_prose_number_lists_hold_only_numbers_the_text_still_states(path):
    stale = set(PROSE_NUMBERS.get(path.name, "").split()) - prose_numbers(chapter_markdown(path))
    assert not stale, f"remove {sorted(stale)} from PROSE_NUMBERS[{path.name!r}]"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_glued_name_in_the_prose_is_glued_by_a_cell(path):
    nb = load_notebook(path)
    used = set(re.findall(r"\{glue(?::\w+)?\}`([\w-]+)", chapter_markdown(path)))
    code = "\n".join(cell_source(c) for c in nb["cells"] if c["cell_type"] == "code")
    glued = set(re.findall(r"glue\(\s*f?[\"']([\w{}-]+)[\"']", code))
    patterns = [re.compile("^" + re.sub(r"\\\{[^}]*\\\}", r"[\\w-]+", re.escape(g)) + "$")
                for g in glued]
    missing = {u for u in used if not any(p.match(u) for p in patterns)}
    assert not missing, f"{path.name} uses {sorted(missing)} in its text, but no cell glues them"


def chapter_imports(path: Path) -> str:
    """Every top-level import of a notebook's code cells (and the try/except blocks that
    hold imports, such as the guarded `from myst_nb import glue`), as one script."""
    import ast
    parts = []
    for cell in load_notebook(path)["cells"]:
        if cell["cell_type"] != "code":
            continue
        code = "\n".join(l for l in cell_source(cell).splitlines() if not l.lstrip().startswith(("%", "!")))
        for node in ast.parse(code).body:
            holds_import = isinstance(node, ast.Try) and any(
                isinstance(n, (ast.Import, ast.ImportFrom)) for n in node.body)
            if isinstance(node, (ast.Import, ast.ImportFrom)) or holds_import:
                parts.append(ast.unparse(node))
    return "\n".join(parts)


def test_every_chapters_imports_work_without_myst_nb():
    """Colab has no myst_nb: each chapter must guard `from myst_nb import glue`."""
    scripts = {p.name: chapter_imports(p) for p in NOTEBOOKS}
    assert "myst_nb" in scripts["02_minimax.ipynb"]  # the scanner sees the guarded import
    driver = textwrap.dedent(f"""
        import json, sys
        sys.modules["myst_nb"] = None  # any `import myst_nb` now raises ImportError
        failed = {{}}
        for name, code in {scripts!r}.items():
            try:
                exec(compile(code, name, "exec"), {{}})
            except Exception as e:
                failed[name] = f"{{type(e).__name__}}: {{e}}"
        print(json.dumps(failed))
    """)
    assert run_driver(driver) == {}


import execute_book  # noqa: E402  (scripts/execute_book.py)


def test_execute_book_runs_every_notebook_of_the_book_into_the_builds_cache():
    """CI runs scripts/execute_book.py before the build, so that the build only renders: it
    must take every notebook in book/ (a missed chapter would be executed by the build
    alone, slowly) and write to the cache path myst-nb reads, `_build/.jupyter_cache`."""
    assert sorted(execute_book.notebooks()) == sorted(BOOK.glob("*.ipynb"))
    assert execute_book.CACHE == ROOT / "_build" / ".jupyter_cache"
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "cache"  # the build reads that cache


# --- GPU budgets ----------------------------------------------------------------------------
# `ganlib.budget(quick=..., full=..., gpu=...)` trains `gpu` where there is a GPU. A call
# without `gpu=` silently trains the CPU-sized `full` budget on a GPU too, so every call in
# every chapter's code states what a GPU runs (the first cell's label form, which prints the
# budget that runs, names all three: `ganlib.budget('quick', 'full', 'gpu')`).

def budget_calls(path: Path) -> list:
    """(cell index, call) for every call of `ganlib.budget` or `budget` in the code cells."""
    import ast
    calls = []
    for i, cell in enumerate(load_notebook(path)["cells"]):
        if cell["cell_type"] != "code":
            continue
        code = "\n".join(l for l in cell_source(cell).splitlines() if not l.lstrip().startswith(("%", "!")))
        for node in ast.walk(ast.parse(code)):
            if isinstance(node, ast.Call) and (getattr(node.func, "attr", None) == "budget"
                                               or getattr(node.func, "id", None) == "budget"):
                calls.append((i, node))
    return calls


def states_the_gpu_budget(call) -> bool:
    return any(k.arg == "gpu" for k in call.keywords) or len(call.args) >= 3


def test_the_budget_call_scanner_tells_a_stated_gpu_budget_from_a_missing_one():
    import ast
    call = lambda src: ast.parse(src).body[0].value  # noqa: E731
    assert states_the_gpu_budget(call("ganlib.budget(quick=1, full=2, gpu=3)"))
    assert states_the_gpu_budget(call("ganlib.budget('quick', 'full', 'gpu')"))
    assert not states_the_gpu_budget(call("ganlib.budget(quick=1, full=2)"))
    assert not states_the_gpu_budget(call("ganlib.budget('quick', 'full')"))
    # ... and it finds the first cell's call, inside an f-string
    assert budget_calls(BOOK / "02_minimax.ipynb")[0][0] == 1


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_budget_call_states_the_gpu_budget(path):
    import ast
    calls = budget_calls(path)
    assert calls, f"{path.name} never calls ganlib.budget (its first cell prints the budget)"
    missing = [f"cell {i}: {ast.unparse(call)}" for i, call in calls if not states_the_gpu_budget(call)]
    assert not missing, (
        f"{path.name} calls ganlib.budget without saying what a GPU trains; pass gpu= (the "
        "positional label form takes 'quick', 'full', 'gpu'):\n" + "\n".join(missing))
