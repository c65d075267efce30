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


# ----------------------------------------------------------------------------- data

def _write_idx(path, array, magic: int) -> None:
    """One file of MNIST's idx format: big-endian magic, the sizes, then uint8 values."""
    import numpy as np
    header = np.array([magic, *array.shape], dtype=">u4").tobytes()
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def _fake_torchvision_mnist(root, folder: str, n: int = 6) -> tuple:
    """A tiny data set in torchvision's MNIST layout (`root/folder/raw/*-ubyte`), made here:
    `n` training images of constant value 10 * label and their labels 0..n-1."""
    import numpy as np
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    labels = np.arange(n, dtype=np.uint8) % 10
    images = np.repeat(labels[:, None, None] * 10, 28 * 28, axis=1).reshape(n, 28, 28)
    for prefix in ("train", "t10k"):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", images, 0x803)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels, 0x801)
    return images, labels


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_load_torchvision_reads_torchvisions_layout(tmp_path, name, folder):
    # Real users download through torchvision; this reads a folder in its layout (no network).
    from ganlib.data import load_torchvision
    images, labels = _fake_torchvision_mnist(tmp_path, folder)
    data = load_torchvision(name, root=tmp_path, fallback_to_sample=False)
    assert data.x.shape == (6, 1, 28, 28) and data.x.dtype == torch.float32
    assert torch.equal(data.x[:, 0], torch.as_tensor(images).float() / 127.5 - 1)  # [-1, 1]
    assert data.y.tolist() == labels.tolist() and data.y.dtype == torch.long
    assert data.source == f"torchvision {name} ({tmp_path})"


def test_a_read_only_torchvision_folder_is_copied_into_the_cache(tmp_path, monkeypatch):
    # A shared, read-only data folder: torchvision would extract next to its archives, so
    # ganlib copies raw/ into ~/.cache/ganlib first (whose parents may not exist yet).
    import ganlib.data as data_module
    _fake_torchvision_mnist(tmp_path / "shared", "MNIST")
    home = tmp_path / "home"
    monkeypatch.setattr(data_module.Path, "home", staticmethod(lambda: home))
    monkeypatch.setattr(data_module.os, "access", lambda path, mode: False)  # read-only
    data = data_module.load_torchvision("mnist", root=tmp_path / "shared",
                                        fallback_to_sample=False)
    cache = home / ".cache" / "ganlib"
    assert sorted(p.name for p in (cache / "MNIST" / "raw").iterdir()) == sorted(
        p.name for p in (tmp_path / "shared" / "MNIST" / "raw").iterdir())
    assert len(data.x) == 6  # read from the copy; the source names the user's folder
    assert data.source == f"torchvision mnist ({tmp_path / 'shared'})"


# ----------------------------------------------------------------------------- losses

def test_r1_penalty_is_the_mean_squared_gradient_norm_and_trains_d():
    from ganlib.losses import r1_penalty
    w = torch.nn.Parameter(torch.tensor([0.5, -2.0]))
    D = lambda x: (w * x ** 2).sum(1, keepdim=True)  # grad_x D = 2 w x
    x = torch.tensor([[1.0, 2.0], [-3.0, 0.5]])
    expected = ((2 * w * x) ** 2).sum(1).mean()
    penalty = r1_penalty(D, x)
    assert torch.allclose(penalty, expected)
    (grad_w,) = torch.autograd.grad(penalty, w)  # needs the graph of the input gradient
    assert torch.allclose(grad_w, (8 * w * x ** 2).mean(0))
    assert not x.requires_grad  # the caller's tensor is left as it was


# ----------------------------------------------------------------------------- metrics

def test_precision_recall_and_image_metrics_use_the_classifier_given(mnist_sample):
    # A classifier passed by name must embed both sets (not the default MNIST one for one).
    from ganlib.metrics import embed, frechet_distance, image_metrics, precision_recall
    x_real, x_fake = mnist_sample.x[:300], mnist_sample.x[300:600].flip(-1)
    real, fake = embed(x_real, "fashion-mnist"), embed(x_fake, "fashion-mnist")
    assert precision_recall(x_real, x_fake, classifier="fashion-mnist") == \
        precision_recall(real, fake)
    m = image_metrics(x_real, x_fake, classifier="fashion-mnist")
    assert m["fid"] == pytest.approx(frechet_distance(real.features, fake.features), rel=1e-6)
    assert (m["precision"], m["recall"]) == precision_recall(real, fake)


# ----------------------------------------------------------------------------- sampling

def test_generate_many_draws_the_same_noise_by_default_as_with_seed_0():
    from ganlib import build_models
    from ganlib.sampling import generate_many
    G, _ = build_models("mlp", (1, 28, 28))
    assert torch.equal(generate_many(G, 10), generate_many(G, 10, seed=0))
    assert not torch.equal(generate_many(G, 10), generate_many(G, 10, seed=1))


# ----------------------------------------------------------------------------- command line

def test_sample_rebuilds_g_from_a_checkpoint_written_before_networks_were_recorded(tmp_path):
    # Checkpoints of an older ganlib have no "networks" entry: `sample` rebuilds G from the
    # run's config (model, latent_dim, pack_m) and its image shape.
    from ganlib import TrainConfig, build_models, train
    from ganlib.__main__ import main
    from ganlib.checkpoint import save_checkpoint as save
    G, D = build_models("mlp", (1, 28, 28), latent_dim=12)
    cfg = TrainConfig(model="mlp", latent_dim=12, batch_size=8, num_steps=1, progress=False,
                      out_dir=str(tmp_path), sample_every=0)
    train(G, D, torch.rand(16, 1, 28, 28) * 2 - 1, cfg)
    ck = load_checkpoint(tmp_path / "last.pt")
    del ck["networks"]
    save(tmp_path / "old.pt", **{k: v for k, v in ck.items() if k not in ("format", "version")})
    assert main(["sample", "--ckpt", str(tmp_path / "old.pt"), "--n", "4",
                 "--out", str(tmp_path / "g.png")]) == 0
    assert (tmp_path / "g.png").is_file()
