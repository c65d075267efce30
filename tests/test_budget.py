"""`ganlib.budget`: quick for tests and CI, full for the book, and a GPU budget where CUDA
is present (or where GANLIB_BUDGET=gpu asks for it)."""
from __future__ import annotations

import pytest
import torch

from ganlib import budget


@pytest.mark.parametrize("env, cuda, want", [
    ("quick", True, 1), ("quick", False, 1),      # CI: quick wins, GPU or not
    ("full", False, 10), ("full", True, 100),     # the book: a GPU trains longer
    (None, False, 10), (None, True, 100),         # unset is "full"
    ("gpu", False, 100), ("gpu", True, 100),      # asked for, even on a CPU
])
def test_budget_sees_the_device(env, cuda, want, monkeypatch):
    if env is None:
        monkeypatch.delenv("GANLIB_BUDGET", raising=False)
    else:
        monkeypatch.setenv("GANLIB_BUDGET", env)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert budget(quick=1, full=10, gpu=100) == want
    assert budget(quick=1, full=10) == (1 if env == "quick" else 10)  # no gpu: as before


def test_an_unknown_budget_names_the_choices(monkeypatch):
    monkeypatch.setenv("GANLIB_BUDGET", "huge")
    with pytest.raises(ValueError, match="GANLIB_BUDGET must be one of quick, full, gpu, "
                                         "got 'huge'"):
        budget(quick=1, full=10)
