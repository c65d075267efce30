"""Checkpoints: atomic writes, safe loading with clear errors, and refusing to resume a run
with different settings."""
from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import torch

from ganlib import CheckpointError, TrainConfig, build_models, load_checkpoint, train
from ganlib.checkpoint import FORMAT, RUN_KEYS, VERSION, atomic_write, save_checkpoint
from ganlib.models import MLPDiscriminator, MLPGenerator


def _files(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


# ----------------------------------------------------------------------------- atomic writes

def test_atomic_write_leaves_the_old_file_intact_when_the_write_fails(tmp_path):
    path = tmp_path / "last.pt"
    path.write_bytes(b"the good checkpoint")

    def half_written(tmp):
        with open(tmp, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, half_written)
    assert path.read_bytes() == b"the good checkpoint"
    assert os.listdir(tmp_path) == ["last.pt"]  # no temporary file left behind


def test_atomic_write_gives_the_permissions_of_an_ordinary_write(tmp_path):
    atomic_write(tmp_path / "a.json", lambda tmp: Path(tmp).write_text("{}"))
    (tmp_path / "b.json").write_text("{}")
    assert (tmp_path / "a.json").stat().st_mode == (tmp_path / "b.json").stat().st_mode


def test_atomic_write_replaces_the_file_when_the_write_succeeds(tmp_path):
    path = tmp_path / "sub" / "f.txt"  # the folder is created
    atomic_write(path, lambda tmp: open(tmp, "w").write("one"))
    atomic_write(path, lambda tmp: open(tmp, "w").write("two"))
    assert path.read_text() == "two"
    assert os.listdir(path.parent) == ["f.txt"]


def test_save_checkpoint_that_fails_to_pickle_keeps_the_previous_one(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(path, step=1, weights=torch.ones(3))
    good = path.read_bytes()
    with pytest.raises(Exception):
        save_checkpoint(path, step=2, callback=lambda: None)  # a lambda cannot be pickled
    assert path.read_bytes() == good
    assert load_checkpoint(path)["step"] == 1
    assert os.listdir(tmp_path) == ["last.pt"]


def test_checkpoint_round_trip(tmp_path):
    save_checkpoint(tmp_path / "c.pt", step=7, w=torch.arange(4.0), config={"lr": 1e-3},
                    shape=[1, 28, 28], betas=(0.5, 0.999), name=None)
    ck = load_checkpoint(tmp_path / "c.pt")
    assert ck["format"] == FORMAT and ck["version"] == VERSION
    assert ck["step"] == 7 and torch.equal(ck["w"], torch.arange(4.0))
    assert ck["config"] == {"lr": 1e-3} and ck["betas"] == (0.5, 0.999) and ck["name"] is None


# ----------------------------------------------------------------------------- bad files

@pytest.fixture
def good_checkpoint(tmp_path):
    path = tmp_path / "good.pt"
    G = MLPGenerator(8, (1, 8, 8))
    save_checkpoint(path, G=G.state_dict(), step=3)
    return path


def test_truncated_checkpoint_raises_checkpoint_error(good_checkpoint, tmp_path):
    data = good_checkpoint.read_bytes()
    path = tmp_path / "truncated.pt"
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match=r"truncated.pt is not a readable checkpoint "
                                              r"\(truncated or corrupt\?\).*retrain"):
        load_checkpoint(path)


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 not really a zip",
                                     b"\x80\x02" + b"\xff" * 100],
                         ids=["empty", "fake-zip", "bad-pickle"])
def test_corrupt_checkpoint_raises_checkpoint_error(content, tmp_path):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch, reading junk
def test_random_bytes_and_every_truncation_raise_checkpoint_error(tmp_path):
    """torch.load fails on junk in many ways (UnpicklingError, IndexError, struct.error,
    OSError, EOFError with an empty message, ...): each must become a CheckpointError."""
    save_checkpoint(tmp_path / "good.pt", w=torch.randn(100), step=3, history={"step": [1]})
    good = (tmp_path / "good.pt").read_bytes()
    rng = random.Random(0)
    junk = [rng.randbytes(rng.choice([1, 2, 3, 8, 64, 4096])) for _ in range(400)]
    junk += [good[:n] for n in range(0, len(good), 5)]  # truncated anywhere
    path = tmp_path / "bad.pt"
    for content in junk:
        path.write_bytes(content)
        with pytest.raises(CheckpointError, match="not a (readable|ganlib) checkpoint"):
            load_checkpoint(path)


def test_plain_state_dict_is_not_a_ganlib_checkpoint(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(MLPDiscriminator((1, 8, 8)).state_dict(), path)
    with pytest.raises(CheckpointError, match="not a ganlib checkpoint.*plain state_dict"):
        load_checkpoint(path)


def test_other_version_is_refused(tmp_path):
    torch.save({"format": FORMAT, "version": VERSION + 1}, tmp_path / "new.pt")
    with pytest.raises(CheckpointError, match=f"version {VERSION + 1}.*reads version {VERSION}"):
        load_checkpoint(tmp_path / "new.pt")


def test_missing_checkpoint_raises_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match=r"no checkpoint at .*nope.pt; check the path"):
        load_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path)  # a folder is not a checkpoint either
    assert issubclass(CheckpointError, ValueError)  # so the CLI reports it and exits 2


class _Payload:
    """Unpickling this runs os.mkdir(marker): what a malicious checkpoint could do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def test_loading_uses_weights_only_and_runs_no_code(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "version": VERSION, "x": _Payload(marker)}, path)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the file really does run code when trusted
    assert marker.exists()


# ----------------------------------------------------------------------------- resuming

def _run(out, model="mlp", shape=(1, 28, 28), steps=1, **kw):
    torch.manual_seed(0)
    G, D = build_models(model, shape)
    x = torch.rand(32, *shape) * 2 - 1
    cfg = TrainConfig(model=model, batch_size=16, num_steps=steps, progress=False,
                      device="cpu", out_dir=str(out), **kw)
    return train(G, D, x, cfg, resume=True)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    _run(out)
    return out


@pytest.mark.parametrize("change, message", [
    (dict(lr_g=1e-3), "lr_g: checkpoint 0.0002, now 0.001"),
    (dict(loss="hinge"), "loss: checkpoint 'bce', now 'hinge'"),
    (dict(seed=1), "seed: checkpoint 0, now 1"),
    (dict(model="mlp-bn"), "model: checkpoint 'mlp', now 'mlp-bn'"),
    (dict(model="dcgan"), "model: checkpoint 'mlp', now 'dcgan'"),
    (dict(shape=(3, 28, 28)), r"data shape: checkpoint \(1, 28, 28\), now \(3, 28, 28\)"),
])
def test_resuming_with_different_settings_is_refused_and_leaves_last_pt(change, message,
                                                                        run_dir):
    before = _files(run_dir)
    with pytest.raises(CheckpointError, match="cannot resume: this run's settings differ "
                                              "from the checkpoint's") as err:
        _run(run_dir, steps=3, **change)
    assert err.match(message)
    assert "train into a new --out folder" in str(err.value)
    assert _files(run_dir) == before


# Every setting that defines a run, with a different value: resuming with any one of them
# changed must be refused. The list is the test's own, so a key dropped from RUN_KEYS fails
# its case, and a key added to RUN_KEYS without a case here fails the check below.
RUN_SETTINGS = {
    "data": "fashion-mnist", "model": "dcgan", "loss": "hinge", "image_size": 32,
    "latent_dim": 64, "pack_m": 2, "batch_size": 8, "n_critic": 2, "lr_g": 1e-3, "lr_d": 1e-3,
    "betas": (0.9, 0.999), "seed": 1, "lsgan_abc": (-1.0, 1.0, 0.0), "gp_weight": 5.0,
    "clip_value": 0.05, "r1_weight": 1.0, "label_smoothing": 0.1, "ema": 0.99,
}


def test_every_run_key_has_a_refusal_case():
    assert set(RUN_KEYS) == set(RUN_SETTINGS)


@pytest.mark.parametrize("key", RUN_SETTINGS)
def test_resuming_with_any_run_setting_changed_is_refused(key, run_dir):
    before = _files(run_dir)
    old = TrainConfig(model="mlp", batch_size=16).__dict__[key]  # as _run wrote it
    new = RUN_SETTINGS[key]
    kw = {"model": new} if key == "model" else {key: new}
    with pytest.raises(CheckpointError, match="cannot resume") as err:
        _run_config(run_dir, **kw)
    assert f"{key}: checkpoint {old!r}, now {new!r}" in str(err.value)
    assert _files(run_dir) == before


def _run_config(out, model="mlp", **kw):
    """_run with config values that need not match the models or data (the refusal comes
    before either is used)."""
    torch.manual_seed(0)
    G, D = build_models("mlp", (1, 28, 28))
    x = torch.rand(32, 1, 28, 28) * 2 - 1
    cfg = TrainConfig(**{**dict(model=model, batch_size=16, num_steps=3, progress=False,
                                device="cpu", out_dir=str(out)), **kw})
    return train(G, D, x, cfg, resume=True)


def test_resuming_with_settings_written_as_lists_is_allowed(tmp_path):
    # The command line or a JSON config can give betas and LSGAN targets as lists: the same
    # settings as the checkpoint's tuples.
    _run(tmp_path, steps=1)
    history = _run(tmp_path, steps=2, betas=[0.5, 0.999], lsgan_abc=[0.0, 1.0, 1.0])
    assert history["step"] == [1, 2]


def test_resuming_with_more_steps_is_allowed(tmp_path):
    _run(tmp_path, steps=1)
    history = _run(tmp_path, steps=2)
    assert history["step"] == [1, 2]
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 2


def test_a_setting_the_checkpoint_does_not_record_is_not_compared(tmp_path):
    """A checkpoint written before a setting existed resumes (with today's default), and
    the settings it does record are still compared."""
    _run(tmp_path)
    path = tmp_path / "last.pt"
    ck = torch.load(path, weights_only=True)
    del ck["config"]["clip_value"]
    torch.save(ck, path)
    _run_config(tmp_path, clip_value=0.05)  # not recorded: not compared, no refusal
    with pytest.raises(CheckpointError, match="lr_g: checkpoint"):
        _run_config(tmp_path, lr_g=1e-3)
