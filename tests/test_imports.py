"""How ganlib's modules import each other, and how the chapters import ganlib: no import
cycle, no import hidden inside a function (except of an optional dependency), and one
import path per public name (issue 23)."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ganlib"
BOOK = ROOT / "book"
OPTIONAL = {"torchmetrics"}  # pip install 'ganlib[inception]': imported where it is used


def _modules() -> dict[str, ast.Module]:
    return {f"ganlib.{p.stem}" if p.stem != "__init__" else "ganlib": ast.parse(p.read_text())
            for p in sorted(PACKAGE.glob("*.py"))}


def _imported(node, module: str) -> list[str]:
    """The absolute names an import statement in `module` brings in (modules, and for
    `from x import y` also `x.y`, which may be a submodule)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    package = module if module == "ganlib" else module.rsplit(".", 1)[0]
    base = node.module or ""
    if node.level:
        parts = package.split(".")[:len(package.split(".")) - node.level + 1]
        base = ".".join(parts + ([base] if base else []))
    return [base, *(f"{base}.{a.name}" for a in node.names)]


def _top_level_edges(module: str, tree: ast.Module, known) -> set[str]:
    """The ganlib modules `module` imports when it is imported (outside functions)."""
    edges = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            edges |= {name for name in _imported(node, module) if name in known}
    return edges - {module, "ganlib"}


def _function_imports(tree: ast.Module):
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    yield fn.name, node


def test_no_import_cycle_in_ganlib():
    trees = _modules()
    graph = {m: _top_level_edges(m, t, trees) for m, t in trees.items()}
    done, path = set(), []

    def visit(m):
        if m in path:
            cycle = path[path.index(m):] + [m]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if m in done:
            return
        path.append(m)
        for n in sorted(graph[m]):
            visit(n)
        path.pop()
        done.add(m)
    for m in sorted(graph):
        visit(m)


def test_the_cycle_check_finds_a_cycle(tmp_path, monkeypatch):
    (tmp_path / "a.py").write_text("from .b import x\n")
    (tmp_path / "b.py").write_text("def f():\n    pass\nfrom . import a\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", tmp_path)
    with pytest.raises(pytest.fail.Exception, match="import cycle: ganlib.a -> ganlib.b -> ganlib.a"):
        test_no_import_cycle_in_ganlib()


def test_no_import_inside_a_function_except_optional_dependencies():
    hidden = []
    for module, tree in _modules().items():
        for fn, node in _function_imports(tree):
            names = _imported(node, module)
            if getattr(node, "level", 0) or names[0].split(".")[0] not in OPTIONAL:
                hidden.append(f"{module}.{fn}: {', '.join(a.name for a in node.names)}")
    assert not hidden, "imports inside functions (move them to the top): " + "; ".join(hidden)


# ----------------------------------------------------------------------------- the chapters

def _chapter_imports():
    """`(chapter, module, name)` for every `from ganlib.module import name` and every
    `ganlib.module.name` in the chapters' code cells."""
    for nb in sorted(BOOK.glob("*.ipynb")):
        for cell in json.loads(nb.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            try:
                tree = ast.parse("\n".join(line for line in source.splitlines()
                                           if not line.lstrip().startswith(("%", "!"))))
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ganlib"):
                    for a in node.names:
                        yield nb.name, node.module, a.name
                elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) \
                        and isinstance(node.value.value, ast.Name) and node.value.value.id == "ganlib":
                    yield nb.name, f"ganlib.{node.value.attr}", node.attr


def _defined_in(module, name: str) -> bool:
    """True when `name` is made in `module` itself (not imported into it)."""
    import inspect
    value = getattr(module, name)
    if inspect.ismodule(value):
        return value.__name__ == f"{module.__name__}.{name}"
    home = getattr(value, "__module__", None)
    if home is not None and (inspect.isclass(value) or inspect.isfunction(value)):
        return home == module.__name__
    tree = ast.parse(Path(module.__file__).read_text())  # constants: assigned at top level
    return any(isinstance(node, (ast.Assign, ast.AnnAssign)) and name in
               {t.id for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
                if isinstance(t, ast.Name)} for node in tree.body)


def test_chapters_import_each_name_from_the_module_that_defines_it():
    import importlib

    import ganlib
    wrong = []
    for chapter, module_name, name in _chapter_imports():
        if module_name == "ganlib":
            if name not in ganlib.__all__ and not hasattr(ganlib, name):
                wrong.append(f"{chapter}: ganlib.{name} does not exist")
            continue
        module = importlib.import_module(module_name)
        if not hasattr(module, name):
            wrong.append(f"{chapter}: {module_name}.{name} does not exist")
        elif not _defined_in(module, name):
            home = getattr(getattr(module, name), "__module__", "?")
            wrong.append(f"{chapter}: {name} from {module_name}, defined in {home}")
    assert not wrong, "; ".join(wrong)


def _python_imports():
    """`(file, module, name)` for each `from ganlib.module import name` in the tests,
    scripts, experiments and benchmarks, and each `from .module import name` in ganlib."""
    for folder in ("tests", "scripts", "experiments", "benchmarks", "ganlib"):
        for path in sorted((ROOT / folder).glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.ImportFrom) or node.module is None:
                    continue
                module = f"ganlib.{node.module}" if folder == "ganlib" and node.level == 1 \
                    else node.module
                if module.startswith("ganlib.") and (node.level == 0 or folder == "ganlib"):
                    for a in node.names:
                        yield f"{folder}/{path.name}", module, a.name


def test_ganlib_and_its_scripts_import_each_name_from_the_module_that_defines_it():
    import importlib
    wrong = []
    for where, module_name, name in _python_imports():
        module = importlib.import_module(module_name)
        if hasattr(module, name) and not _defined_in(module, name):
            home = getattr(getattr(module, name), "__module__", "?")
            wrong.append(f"{where}: {name} from {module_name}, defined in {home}")
    assert not wrong, "; ".join(wrong)
