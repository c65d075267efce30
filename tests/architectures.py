"""Every registered model's layers, as PyTorch prints them, for a regression test.

    python tests/architectures.py     # rewrite tests/architectures.json after a deliberate change

`tests/test_models.py` compares `architectures()` with the committed file, so that a changed
layer size, activation slope, BatchNorm momentum or eps, or a dropped layer in any of the
source articles' networks fails a test instead of passing silently (issue 16). Review the
diff of the JSON file before committing a rewrite: it is the networks' specification.
"""
from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
FILE = HERE / "architectures.json"
# name -> the data shapes it is built for here (each size it supports, in colour where it can)
SHAPES = {"mlp": [(1, 28, 28)], "mlp-bn": [(1, 28, 28)], "conv32": [(3, 32, 32)],
          "upsample64": [(1, 64, 64), (3, 64, 64)], "dcgan": [(1, 28, 28), (3, 32, 32), (3, 64, 64)],
          "toy": [(2,)], "cgan-mlp": [(1, 28, 28)]}


def architectures() -> dict:
    """`{"name (C, H, W)": {"G": repr, "D": repr, "parameters": [G's, D's]}}`."""
    from ganlib.models import MODELS, build_models
    assert set(SHAPES) == set(MODELS), "a model is missing from tests/architectures.py"
    out = {}
    for name, shapes in SHAPES.items():
        for shape in shapes:
            G, D = build_models(name, shape)
            out[f"{name} {shape}"] = {
                "G": repr(G).splitlines(), "D": repr(D).splitlines(),
                "parameters": [sum(p.numel() for p in m.parameters()) for m in (G, D)]}
    return out


if __name__ == "__main__":
    FILE.write_text(json.dumps(architectures(), indent=1) + "\n")
    print(f"wrote {FILE}")
