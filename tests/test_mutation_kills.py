"""Tests written to kill the mutants that mutation testing (tests/README.md) found alive:
each checks a behaviour the module tests left open."""
from __future__ import annotations

import pytest
import torch

from ganlib import CheckpointError, get_loss, load_checkpoint
from ganlib.checkpoint import check_compatible, save_checkpoint


# ----------------------------------------------------------------------------- checkpoint

def test_a_file_written_by_this_format_version_loads(tmp_path):
    # The format tag and version are a promise to files already on disk: a version-1 file
    # written by hand (as an older ganlib wrote it) must keep loading.
    torch.save({"format": "ganlib-checkpoint", "version": 1, "step": 3}, tmp_path / "old.pt")
    assert load_checkpoint(tmp_path / "old.pt")["step"] == 3
    save_checkpoint(tmp_path / "new.pt", step=4)
    raw = torch.load(tmp_path / "new.pt", weights_only=True)
    assert (raw["format"], raw["version"], raw["step"]) == ("ganlib-checkpoint", 1, 4)


def test_load_checkpoint_maps_to_the_cpu_by_default(tmp_path):
    save_checkpoint(tmp_path / "c.pt", w=torch.ones(2))
    assert load_checkpoint(tmp_path / "c.pt")["w"].device == torch.device("cpu")


def test_checkpoint_error_messages_in_full(tmp_path):
    def message(path):
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(path)
        return str(err.value)

    (tmp_path / "empty.pt").write_bytes(b"")  # torch raises an EOFError with no message
    assert message(tmp_path / "empty.pt") == (
        f"{tmp_path / 'empty.pt'} is not a readable checkpoint (truncated or corrupt?): "
        "EOFError. Use another checkpoint or retrain.")
    assert message(tmp_path / "nope.pt") == (
        f"no checkpoint at {tmp_path / 'nope.pt'}; check the path (training writes last.pt "
        "in its --out folder)")
    torch.save({"a": 1}, tmp_path / "plain.pt")
    assert message(tmp_path / "plain.pt") == (
        f"{tmp_path / 'plain.pt'} is not a ganlib checkpoint (a plain state_dict or another "
        "tool's file?); load it with torch.load yourself, or use a file written by "
        "ganlib.train")
    torch.save({"format": "ganlib-checkpoint", "version": 2}, tmp_path / "v2.pt")
    assert message(tmp_path / "v2.pt") == (
        f"{tmp_path / 'v2.pt'} has checkpoint version 2, this ganlib reads version 1")


def test_a_long_error_is_cut_to_its_first_200_characters(tmp_path, monkeypatch):
    def fail(*args, **kw):
        raise RuntimeError("x" * 300 + "\nsecond line")

    monkeypatch.setattr(torch, "load", fail)
    (tmp_path / "c.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(tmp_path / "c.pt")
    assert ": " + "x" * 200 + ". Use another" in str(err.value)
    assert "x" * 201 not in str(err.value) and "second line" not in str(err.value)


def test_check_compatible_lists_every_difference():
    ckpt = {"config": {"lr_g": 1, "seed": 0, "betas": (0.5, 0.999)}, "image_shape": [1, 2]}
    now = {"lr_g": 2, "seed": 1, "betas": [0.5, 0.999]}  # a list equals the tuple
    with pytest.raises(CheckpointError) as err:
        check_compatible(ckpt, now, (1, 3))
    assert str(err.value) == (
        "cannot resume: this run's settings differ from the checkpoint's (lr_g: checkpoint 1, "
        "now 2; seed: checkpoint 0, now 1; data shape: checkpoint (1, 2), now (1, 3)). "
        "Resume with the same settings, or train into a new --out folder.")
    check_compatible(ckpt, {"lr_g": 1, "seed": 0, "betas": [0.5, 0.999]}, [1, 2])  # no error


# ----------------------------------------------------------------------------- losses

def test_unknown_loss_message_in_full():
    with pytest.raises(ValueError) as err:
        get_loss("x")
    assert str(err.value) == "unknown loss 'x'; choose one of minimax, bce, lsgan, hinge, wgan, wgan-gp"
