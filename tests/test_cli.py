"""The command line: `python -m ganlib train ...` and `python -m ganlib sample ...`.

Most tests call `ganlib.__main__.main(argv)` in this process (fast); the help text and the
offline dataset behaviour run the real `python -m ganlib` in a subprocess, with a timeout.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import ganlib
from ganlib import LOSSES, MODELS, TrainConfig, load_checkpoint
from ganlib.__main__ import build_parser, main
from ganlib.data import DATASETS

FLAGS = ["--data", "--data-root", "--model", "--loss", "--image-size", "--latent-dim", "--pack",
         "--batch-size", "--epochs", "--steps", "--lr-g", "--lr-d", "--beta1", "--n-critic",
         "--seed", "--device", "--sample-every", "--ckpt-every", "--out", "--resume",
         "--no-progress"]


def run_main(argv) -> int:
    """`main(argv)`'s exit code, whether it returns it or argparse exits."""
    try:
        return main(argv)
    except SystemExit as exit:
        return exit.code


def python_m_ganlib(args, cwd, env=None, timeout=240):
    """Run `python -m ganlib ARGS` (the same ganlib these tests import) offline: proxies
    point at a closed local port, so any download attempt fails at once instead of hanging."""
    here = str(Path(ganlib.__file__).resolve().parent.parent)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join([here, *filter(None, [os.environ.get("PYTHONPATH")])]),
           "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
           "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
           "no_proxy": "", "NO_PROXY": "", **(env or {})}
    return subprocess.run([sys.executable, "-m", "ganlib", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """`train --data mnist-sample --steps 20 --out OUT`: the folder and main's exit code."""
    out = tmp_path_factory.mktemp("cli") / "run"
    code = run_main(["train", "--data", "mnist-sample", "--steps", "20", "--out", str(out),
                     "--no-progress"])
    return out, code


def test_train_writes_samples_losses_history_and_last_pt(trained):
    out, code = trained
    assert code == 0
    for name in ("samples.png", "losses.png", "history.json", "last.pt"):
        assert (out / name).is_file(), name
    assert json.loads((out / "history.json").read_text())["step"] == list(range(1, 21))
    ck = load_checkpoint(out / "last.pt")
    assert ck["step"] == 20
    assert ck["config"]["data"] == "mnist-sample" and ck["config"]["model"] == "mlp"
    assert ck["image_shape"] == [1, 28, 28]


def test_sample_writes_a_png_grid(trained, tmp_path, monkeypatch, capsys):
    out, _ = trained
    monkeypatch.chdir(tmp_path)
    assert run_main(["sample", "--ckpt", str(out / "last.pt"), "--n", "16",
                     "--out", "grid.png"]) == 0
    with Image.open(tmp_path / "grid.png") as im:
        assert im.format == "PNG"
        assert im.size == (122, 122)  # 4x4 grid of 28-px digits, 2-px padding: 4 * 30 + 2
    assert "wrote 16 samples to grid.png" in capsys.readouterr().err


def test_resume_continues_and_history_grows(trained, tmp_path):
    out, _ = trained
    run = tmp_path / "run"
    run.mkdir()
    for name in ("last.pt", "history.json"):  # continue a copy; the fixture stays as it was
        (run / name).write_bytes((out / name).read_bytes())
    assert run_main(["train", "--data", "mnist-sample", "--steps", "30", "--out", str(run),
                     "--resume", "--no-progress"]) == 0
    assert json.loads((run / "history.json").read_text())["step"] == list(range(1, 31))
    assert load_checkpoint(run / "last.pt")["step"] == 30
    # Without --resume the same command would start again from step 1 instead.
    assert run_main(["train", "--data", "mnist-sample", "--steps", "2", "--out", str(run),
                     "--no-progress"]) == 0
    assert json.loads((run / "history.json").read_text())["step"] == [1, 2]


def test_resume_with_other_settings_exits_2_and_keeps_last_pt(trained, tmp_path, capsys):
    out, _ = trained
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes((out / "last.pt").read_bytes())
    before = (run / "last.pt").read_bytes()
    assert run_main(["train", "--data", "mnist-sample", "--steps", "30", "--out", str(run),
                     "--resume", "--lr-g", "0.001", "--no-progress"]) == 2
    assert "cannot resume" in capsys.readouterr().err
    assert (run / "last.pt").read_bytes() == before


def test_train_help_mentions_every_flag(tmp_path):
    result = python_m_ganlib(["train", "--help"], cwd=tmp_path, timeout=120)
    assert result.returncode == 0
    for flag in FLAGS:
        assert flag in result.stdout, flag
    for name in (*MODELS, *LOSSES, *DATASETS):  # the choices are listed too
        assert name in result.stdout, name


def test_every_flag_maps_onto_train_config():
    argv = ["train", "--data", "ring", "--data-root", "d", "--model", "toy", "--loss", "hinge",
            "--image-size", "32", "--latent-dim", "16", "--pack", "2", "--batch-size", "8",
            "--epochs", "1.5", "--steps", "7", "--lr-g", "0.001", "--lr-d", "0.003",
            "--beta1", "0.1", "--n-critic", "3", "--seed", "5", "--device", "cpu",
            "--sample-every", "9", "--ckpt-every", "11", "--out", "o", "--resume",
            "--no-progress"]
    assert sorted(a for a in argv if a.startswith("--")) == sorted(FLAGS)
    args = vars(build_parser().parse_args(argv))
    assert args == dict(command="train", data="ring", data_root="d", model="toy", loss="hinge",
                        image_size=32, latent_dim=16, pack_m=2, batch_size=8, num_epochs=1.5,
                        num_steps=7, lr_g=0.001, lr_d=0.003, beta1=0.1, n_critic=3, seed=5,
                        device="cpu", sample_every=9, ckpt_every=11, out_dir="o", resume=True,
                        progress=False)
    # Every flag but these few names a TrainConfig field: the CLI only maps flags onto it.
    fields = set(vars(TrainConfig()))
    assert set(args) - fields == {"command", "data_root", "beta1", "resume"}


def test_cli_defaults_match_train_config():
    args = build_parser().parse_args(["train"])
    cfg = TrainConfig()
    shared = [k for k in vars(args) if hasattr(cfg, k) and k != "out_dir"]
    assert len(shared) >= 15
    for key in shared:
        assert getattr(args, key) == getattr(cfg, key), key
    assert (args.beta1, 0.999) == cfg.betas


@pytest.mark.parametrize("flag, value, choices", [
    ("--loss", "wasserstein", LOSSES),
    ("--model", "resnet", tuple(MODELS)),
    ("--data", "mnistt", DATASETS),
])
def test_unknown_names_exit_2_listing_the_choices(flag, value, choices, tmp_path, capsys):
    argv = ["train", "--data", "mnist-sample", "--steps", "1", "--out", str(tmp_path / "out"),
            "--no-progress", flag, value]
    assert run_main(argv) == 2
    err = capsys.readouterr().err
    assert value in err
    for name in choices:
        assert name in err, name
    assert not (tmp_path / "out").exists()


def test_sample_on_a_corrupt_checkpoint_exits_2(tmp_path, capsys):
    bad = tmp_path / "last.pt"
    bad.write_bytes(os.urandom(1000))
    assert run_main(["sample", "--ckpt", str(bad), "--out", str(tmp_path / "g.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not a readable checkpoint" in err
    assert "Traceback" not in err
    assert run_main(["sample", "--ckpt", str(tmp_path / "none.pt"),
                     "--out", str(tmp_path / "g.png")]) == 2
    assert "no checkpoint at" in capsys.readouterr().err
    assert not (tmp_path / "g.png").exists()


def test_offline_mnist_falls_back_to_the_bundled_sample_with_one_line(tmp_path):
    empty = tmp_path / "data"
    empty.mkdir()
    result = python_m_ganlib(["train", "--data", "mnist", "--steps", "1", "--batch-size", "64",
                              "--out", "out", "--no-progress"], cwd=tmp_path,
                             env={"GANLIB_DATA": str(empty)})
    assert result.returncode == 0, result.stderr
    said = [line for line in result.stderr.splitlines()
            if "not found" in line or "network" in line or "instead" in line]
    assert said == [f"ganlib: MNIST not found under {empty} and no network; using the "
                    "bundled 5000-image sample instead."]
    assert "Traceback" not in result.stderr
    assert "bundled MNIST sample (train)" in result.stderr  # it trained on the sample
    assert (tmp_path / "out" / "last.pt").is_file()


def test_offline_cifar10_exits_2_saying_what_to_do(tmp_path):
    empty = tmp_path / "data"
    empty.mkdir()
    result = python_m_ganlib(["train", "--data", "cifar10", "--steps", "1", "--out", "out"],
                             cwd=tmp_path, env={"GANLIB_DATA": str(empty)})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"error: could not load cifar10 from {empty}" in result.stderr
    assert "Download it with network access, or set GANLIB_DATA" in result.stderr
    assert not (tmp_path / "out").exists()
