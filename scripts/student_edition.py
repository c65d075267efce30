"""The book's homework without leaks: hide the solutions, or write a student edition.

Every chapter ends in exercises. Each has three code cells: the student's answer (a stub
that returns None, tagged ``answer``), a check that says whether it is right (tagged
``check``), and the solution (tagged ``solution``), which the build and nbval execute so
that it stays correct.

    python scripts/student_edition.py OUT_DIR
        Write the student edition: every chapter notebook of book/ copied to OUT_DIR with
        each solution cell (and its "Solution" label) replaced by a one-line note. The
        answer stubs and the checks stay; a check on an unfilled stub reports "not answered
        yet" until the student fills it in.

    python scripts/student_edition.py --mark book/*.ipynb
        (for authors) Tag each exercise's cells (``answer``: the cell that starts
        "# your answer"; ``check``: the code cell after it; ``solution``) and hide every
        solution cell in place, in every front end a student opens the chapter with: ``hide-cell`` for the HTML book, ``jupyter.source_hidden`` for
        JupyterLab and Notebook 7, ``cellView: form`` with a ``#@title`` first line for
        Colab. tests/test_book.py checks that every solution cell is marked this way.

A solution cell is a code cell tagged ``solution``, or one that defines a ``solution_*``
name (``--mark`` tags those).
"""
from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
TITLE = "#@title Solution (hidden: double-click, or click the ..., to show it)"
LABEL = re.compile(r"^\s*Solution\b.*\(click to show\)\s*:?\s*$")
DEFINES_SOLUTION = re.compile(r"^(?:def |)solution_\w+\s*(?:\(|=)", re.MULTILINE)
NOTE = ("*The solution to this exercise is in the teacher's edition. "
        "Run the check above until it reports ✓.*")


def source(cell: dict) -> str:
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def set_source(cell: dict, text: str) -> None:
    cell["source"] = text.splitlines(keepends=True)


def is_solution(cell: dict) -> bool:
    """A code cell tagged `solution`, or one that defines a `solution_*` name."""
    if cell["cell_type"] != "code":
        return False
    return ("solution" in cell.get("metadata", {}).get("tags", [])
            or bool(DEFINES_SOLUTION.search(source(cell))))


def is_hidden(cell: dict) -> bool:
    """Hidden in the HTML (hide-cell), JupyterLab (source_hidden) and Colab (a form with a
    #@title first line)."""
    meta = cell.get("metadata", {})
    return ("hide-cell" in meta.get("tags", [])
            and meta.get("jupyter", {}).get("source_hidden") is True
            and meta.get("cellView") == "form"
            and source(cell).lstrip().startswith("#@title"))


def mark(cell: dict) -> None:
    """Tag `cell` as a solution and hide it in the HTML, JupyterLab and Colab."""
    meta = cell.setdefault("metadata", {})
    tags = meta.setdefault("tags", [])
    for tag in ("solution", "hide-cell"):
        if tag not in tags:
            tags.append(tag)
    meta.setdefault("jupyter", {})["source_hidden"] = True
    meta["cellView"] = "form"
    text = source(cell)
    if not text.lstrip().startswith("#@title"):
        set_source(cell, TITLE + "\n" + text)


def mark_notebook(path: Path) -> int:
    """Mark every solution cell of the notebook at `path` in place; return how many."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    for i, cell in enumerate(code[:-1]):  # the stub "# your answer" and the check after it
        if source(cell).startswith("# your answer"):
            for c, tag in ((cell, "answer"), (code[i + 1], "check")):
                tags = c.setdefault("metadata", {}).setdefault("tags", [])
                if tag not in tags:
                    tags.append(tag)
    cells = [c for c in nb["cells"] if is_solution(c)]
    for cell in cells:
        mark(cell)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return len(cells)


def student_notebook(nb: dict) -> dict:
    """A copy of notebook `nb` with each solution cell replaced by a note and each
    "Solution (click to show):" label removed."""
    nb = copy.deepcopy(nb)
    cells = []
    for i, cell in enumerate(nb["cells"]):
        following = nb["cells"][i + 1] if i + 1 < len(nb["cells"]) else None
        if (cell["cell_type"] == "markdown" and LABEL.match(source(cell))
                and following is not None and is_solution(following)):
            continue
        if is_solution(cell):
            cell = {"cell_type": "markdown", "id": cell.get("id", f"solution-{i}"),
                    "metadata": {"tags": ["solution-removed"]}, "source": NOTE}
        cells.append(cell)
    nb["cells"] = cells
    return nb


def write_student_edition(out_dir: Path, book: Path = BOOK) -> list[Path]:
    """Write the student edition of every notebook in `book` to `out_dir`; return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(book.glob("*.ipynb")):
        nb = student_notebook(json.loads(path.read_text(encoding="utf-8")))
        target = out_dir / path.name
        target.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", type=Path,
                        help="OUT_DIR for the student edition, or notebooks with --mark")
    parser.add_argument("--mark", action="store_true",
                        help="hide the solution cells of the given notebooks in place")
    args = parser.parse_args(argv)
    if args.mark:
        for path in args.paths:
            print(f"{path}: {mark_notebook(path)} solution cells hidden")
        return 0
    if len(args.paths) != 1:
        parser.error("give one OUT_DIR (or --mark with notebooks)")
    (out_dir,) = args.paths
    if out_dir.resolve() == BOOK.resolve():
        parser.error("OUT_DIR must not be book/ itself: that would delete the solutions")
    for path in write_student_edition(out_dir):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
