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


def test_load_dataset_stacks_the_mnist_read_from_the_root_given(tmp_path, monkeypatch):
    # "stacked-mnist" stacks the torchvision MNIST under `root` (not the default root).
    import ganlib.data as data_module
    _fake_torchvision_mnist(tmp_path, "MNIST")
    monkeypatch.setenv("GANLIB_DATA", str(tmp_path / "elsewhere"))
    monkeypatch.setattr(data_module, "stacked_mnist", lambda mnist: mnist)  # what it stacks
    mnist = data_module.load_dataset("stacked-mnist", root=tmp_path)
    assert mnist.source == f"torchvision mnist ({tmp_path})" and mnist.y.tolist() == list(range(6))


def test_a_run_resumed_with_g_ema_ends_with_the_uninterrupted_average(tmp_path):
    # The moving average of G is saved in last.pt and resumes exactly (chapter 10).
    from ganlib import TrainConfig, train
    from ganlib.ema import ema_model
    from ganlib.models import MLPDiscriminator, MLPGenerator
    shape = (1, 8, 8)
    x = torch.rand(64, *shape, generator=torch.Generator().manual_seed(0)) * 2 - 1

    def run(out, steps, resume=False):
        torch.manual_seed(0)
        G, D = MLPGenerator(8, shape), MLPDiscriminator(shape)
        G_ema = ema_model(G, 0.9)
        cfg = TrainConfig(model="mlp", batch_size=16, num_steps=steps, progress=False,
                          device="cpu", out_dir=str(out), sample_every=0)
        train(G, D, x, cfg, resume=resume, G_ema=G_ema)
        return G_ema.state_dict()

    full = run(tmp_path / "full", 6)
    run(tmp_path / "half", 3)
    resumed = run(tmp_path / "half", 6, resume=True)
    assert full.keys() == resumed.keys()
    assert all(torch.equal(full[k], resumed[k]) for k in full)


def test_every_command_and_flag_has_help_text():
    # `python -m ganlib --help` says what each command does; every flag of both commands
    # has a help line (train's come from TrainConfig's field comments).
    import argparse
    from ganlib.__main__ import build_parser
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help for a in sub._choices_actions}
    assert helps == {"train": "train a GAN; writes samples.png, losses.png, history.json and "
                              "last.pt into --out",
                     "sample": "write a grid of samples from a checkpoint"}
    for name in ("train", "sample"):
        for action in sub.choices[name]._actions:
            assert action.help and action.help.strip(), (name, action.option_strings)


# ----------------------------------------------------------------------------- training

def test_the_progress_bar_shows_the_last_losses_and_d_outputs():
    from ganlib.history import StepLog, new_history
    log = StepLog(new_history())
    log.add(1, torch.tensor(1.25), torch.tensor(0.5), torch.tensor(0.75), torch.tensor(0.125))
    log.flush()
    assert log.postfix() == {"d_loss": "1.250", "g_loss": "0.500", "D_x": "0.75",
                             "D_G_z": "0.12"}


def test_train_step_and_d_step_default_to_trainconfigs_settings():
    # Whoever calls d_step / train_step directly (the chapters do) gets the run's defaults:
    # in the signatures, and in what a step does when they are left out.
    import copy
    import inspect
    from ganlib import TrainConfig
    from ganlib.optim import make_adam
    from ganlib.training import d_step, train_step
    cfg = TrainConfig()
    for fn in (d_step, train_step):
        params = inspect.signature(fn).parameters
        for name in ("gp_weight", "clip_value", "r1_weight"):
            assert params[name].default == getattr(cfg, name), (fn.__name__, name)
    from ganlib.models import MLPDiscriminator, MLPGenerator
    torch.manual_seed(0)
    G, D = MLPGenerator(8, (1, 8, 8)), MLPDiscriminator((1, 8, 8))
    x_real = torch.rand(4, 1, 8, 8) * 2 - 1
    results = []
    for explicit in (False, True):
        G1, D1 = copy.deepcopy(G), copy.deepcopy(D)
        opts = make_adam(G1, 1e-3, (0.5, 0.9)), make_adam(D1, 1e-3, (0.5, 0.9))
        kw = dict(gp_weight=cfg.gp_weight, clip_value=cfg.clip_value,
                  r1_weight=cfg.r1_weight) if explicit else {}
        torch.manual_seed(1)
        results.append(train_step(G1, D1, *opts, get_loss("wgan-gp"), [x_real], **kw)[0])
    assert torch.equal(results[0], results[1])  # the same D loss, penalty included


def test_the_steps_score_a_conditional_d_at_the_labels_given():
    # Chapter 9: D(x, y) scores pairs; d_step and g_step pass the labels through, and
    # train_step draws one label per fake.
    from ganlib import build_models, get_loss
    from ganlib.optim import make_adam
    from ganlib.training import d_step, g_step, train_step
    torch.manual_seed(0)
    G, D = build_models("cgan-mlp", (1, 28, 28))
    loss = get_loss("bce")
    x_real, y_real = torch.rand(8, 1, 28, 28) * 2 - 1, torch.arange(8) % 10
    y_fake = (torch.arange(8) + 3) % 10
    x_fake = G(G.sample_z(8), y_fake).detach()
    with torch.no_grad():
        want_real, want_fake = D(x_real, y_real), D(x_fake, y_fake)
    opt_G, opt_D = make_adam(G, 1e-4, (0.5, 0.999)), make_adam(D, 1e-4, (0.5, 0.999))
    _, real_logits, fake_logits = d_step(D, opt_D, loss, x_real, x_fake, y_real=y_real,
                                         y_fake=y_fake)
    assert torch.allclose(real_logits, want_real) and torch.allclose(fake_logits, want_fake)
    x_fake = G(G.sample_z(8), y_fake)
    with torch.no_grad():
        want = loss.g_loss(D(x_fake, y_fake))
    assert torch.allclose(g_step(D, opt_G, loss, x_fake, y_fake=y_fake), want)
    d_loss, g_loss, real_logits, fake_logits = train_step(G, D, opt_G, opt_D, loss,
                                                         [(x_real, y_real)])
    assert real_logits.shape == fake_logits.shape == (8, 1)
    assert torch.isfinite(d_loss) and torch.isfinite(g_loss)


def test_get_loss_gives_each_objective_its_generator_loss_with_or_without_smoothing():
    # bce is the non-saturating loss, -log D(G(z)); minimax the saturating log(1 - D(G(z))).
    from torch.nn.functional import softplus
    # One-sided label smoothing (real_label < 1) changes D's targets only, never G's loss.
    logits = torch.tensor([[-2.0], [0.5], [3.0]])
    for real_label in (1.0, 0.9):
        bce, minimax = get_loss("bce", real_label=real_label), get_loss("minimax", real_label=real_label)
        assert torch.allclose(bce.g_loss(logits), softplus(-logits).mean()), real_label
        assert torch.allclose(minimax.g_loss(logits), -softplus(logits).mean()), real_label


def test_check_images_names_nan_and_inf():
    from ganlib.data import check_images
    for bad in (float("nan"), float("inf")):
        x = torch.zeros(2, 1, 4, 4)
        x[1, 0, 2, 2] = bad
        with pytest.raises(ValueError, match="^images contain NaN or inf values$"):
            check_images(x)
