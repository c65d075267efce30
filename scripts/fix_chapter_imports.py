"""Rewrite the chapters' imports so that each ganlib name comes from the module defining it.

    python scripts/fix_chapter_imports.py          # rewrite book/*.ipynb in place
    python scripts/fix_chapter_imports.py --check  # only list what would change (exit 1 if any)

For every code cell of `book/*.ipynb`: a `from ganlib.MODULE import a, b` whose names live
elsewhere (`from ganlib.models import ToyGenerator`, defined in `ganlib.toy_models`) is
split into one import per defining module, merged into that module's import where the
cell already has one; a `ganlib.MODULE.name` reached through the wrong module is renamed.
`from ganlib import name` (the re-exports of `ganlib/__init__.py`) is left alone. Only
the `source` of code cells changes; every other cell and field is written back as it was
(JSON with indent 1, as Jupyter writes it). `tests/test_imports.py` checks the result.
"""
from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import json
import pkgutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import ganlib  # noqa: E402

WIDTH = 99  # the chapters' line length


def _assigns(module, name: str) -> bool:
    """True when `module` assigns `name` at its top level (a constant defined there)."""
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    return any(isinstance(t, ast.Name) and t.id == name
               for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
               for t in (node.targets if isinstance(node, ast.Assign) else [node.target]))


def home(module_name: str, name: str) -> str:
    """The ganlib module that defines `name`, which `module_name` makes importable (or
    made importable once: an old path, e.g. `ganlib.utils.budget`, is looked up in
    `ganlib`'s modules)."""
    try:
        module = importlib.import_module(module_name)
        value = getattr(module, name)
    except (ImportError, AttributeError):
        for info in pkgutil.iter_modules(ganlib.__path__):
            other = importlib.import_module(f"ganlib.{info.name}")
            if hasattr(other, name) and home(other.__name__, name) == other.__name__:
                return other.__name__
        raise SystemExit(f"{module_name}.{name}: no ganlib module defines {name}")
    if inspect.ismodule(value):
        return module_name
    where = getattr(value, "__module__", None)
    if (inspect.isclass(value) or inspect.isfunction(value)) and (where or "").startswith("ganlib"):
        return where
    if _assigns(module, name):
        return module_name
    for info in pkgutil.iter_modules(ganlib.__path__):  # a constant imported from elsewhere
        other = importlib.import_module(f"ganlib.{info.name}")
        if getattr(other, name, None) is value and _assigns(other, name):
            return other.__name__
    return module_name


def render(indent: str, module: str, names: list[str], comment: str = "") -> str:
    """`from module import a, b` on one line, or wrapped in parentheses at WIDTH."""
    line = f"{indent}from {module} import {', '.join(names)}"
    if len(line + comment) <= WIDTH:
        return line + comment
    head = f"{indent}from {module} import ("
    lines, current = [], head
    for i, name in enumerate(names):
        piece = name + (", " if i < len(names) - 1 else ")")
        if len(current + piece.rstrip()) > WIDTH and current.strip() not in ("", head.strip()):
            lines.append(current.rstrip())
            current = " " * len(head) + piece
        else:
            current += piece
    lines.append(current + comment)
    return "\n".join(lines)


def _parse(source: str):
    masked = "\n".join("#" + line if line.lstrip().startswith(("%", "!")) else line
                       for line in source.split("\n"))  # IPython magics: same line numbers
    try:
        return ast.parse(masked)
    except SyntaxError:
        return None


def fix_source(source: str) -> str:
    """The cell's code with every ganlib import taken from the defining module."""
    tree = _parse(source)
    if tree is None:
        return source
    lines = source.split("\n")
    existing = {node.module: node for node in tree.body if isinstance(node, ast.ImportFrom)
                and node.level == 0 and (node.module or "").startswith("ganlib.")}
    edits = []  # (first line, last line, replacement lines), 0-based, applied bottom-up
    additions: dict[str, list[str]] = {}
    for node in tree.body:
        if not (isinstance(node, ast.ImportFrom) and node.level == 0
                and (node.module or "").startswith("ganlib.")):
            continue
        groups: dict[str, list[str]] = {}
        for a in node.names:
            shown = a.name if a.asname is None else f"{a.name} as {a.asname}"
            groups.setdefault(home(node.module, a.name), []).append(shown)
        if list(groups) == [node.module]:
            continue
        indent = lines[node.lineno - 1][:node.col_offset]
        last = lines[node.end_lineno - 1]
        comment = last[last.index("#", node.end_col_offset):] if "#" in last[node.end_col_offset:] else ""
        comment = ("  " + comment) if comment else ""
        out = []
        for module, names in groups.items():
            if module != node.module and module in existing:
                additions.setdefault(module, []).extend(names)  # merged into that import
            else:
                out.append(render(indent, module, names, comment if module == node.module else ""))
        edits.append((node.lineno - 1, node.end_lineno - 1, "\n".join(out).split("\n") if out else []))
    for module, names in additions.items():
        node = existing[module]
        if any(first == node.lineno - 1 for first, _, _ in edits):
            continue  # that import is being rewritten itself; leave the rest to a second run
        merged = [a.name if a.asname is None else f"{a.name} as {a.asname}" for a in node.names]
        merged += [n for n in names if n not in merged]
        indent = lines[node.lineno - 1][:node.col_offset]
        edits.append((node.lineno - 1, node.end_lineno - 1,
                      render(indent, module, sorted(merged, key=str.lower)).split("\n")))
    for first, last, new in sorted(edits, reverse=True):
        lines[first:last + 1] = new
    return _fix_attributes("\n".join(lines))


def _fix_attributes(source: str) -> str:
    """`ganlib.MODULE.name` -> `ganlib.HOME.name` where `name` is defined in HOME."""
    tree = _parse(source)
    if tree is None:
        return source
    lines = source.split("\n")
    renames = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
                and isinstance(node.value.value, ast.Name) and node.value.value.id == "ganlib"):
            module = f"ganlib.{node.value.attr}"
            try:
                where = home(module, node.attr)
            except (ImportError, AttributeError):
                continue
            if where != module:
                renames.append((node.value.lineno - 1, node.value.col_offset, module, where))
    for row, col, old, new in sorted(renames, reverse=True):
        line = lines[row]
        assert line[col:col + len(old)] == old, (line, old)
        lines[row] = line[:col] + new + line[col + len(old):]
    return "\n".join(lines)


def fix_notebook(path: Path, write: bool) -> list[str]:
    """Fix `path`'s code cells; return the changed lines as `-old` / `+new` pairs."""
    text = path.read_text(encoding="utf-8")
    nb = json.loads(text)
    changes = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        old = "".join(cell["source"])
        new = fix_source(old)
        if new != old:
            cell["source"] = new.splitlines(keepends=True)
            old_lines, new_lines = old.split("\n"), new.split("\n")
            changes += [f"-{line}" for line in old_lines if line not in new_lines]
            changes += [f"+{line}" for line in new_lines if line not in old_lines]
    if changes and write:
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return changes


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="only list the changes")
    p.add_argument("notebooks", nargs="*", type=Path,
                   default=sorted((ROOT / "book").glob("*.ipynb")))
    args = p.parse_args(argv)
    changed = False
    for path in args.notebooks:
        changes = fix_notebook(path, write=not args.check)
        if changes:
            changed = True
            print(f"{path.name}:")
            print("\n".join(f"  {line}" for line in changes))
    return 1 if changed and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
