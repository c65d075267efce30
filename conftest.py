"""Repository-level pytest configuration, loaded before tests/conftest.py.

`python -m pytest` also runs every chapter of the book under nbval (`--nbval-lax`, see
pyproject.toml). Chapters take their training length from `ganlib.budget`, which reads
$GANLIB_BUDGET; the notebook kernels inherit this process's environment, so setting it here
(at import, before any kernel starts) makes every chapter run with the quick budget. An
explicit GANLIB_BUDGET=full in the environment still wins.
"""
import os

os.environ.setdefault("GANLIB_BUDGET", "quick")
