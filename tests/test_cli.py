"""The command line: `python -m ganlib train ...` and `python -m ganlib sample ...`.

Most tests call `ganlib.__main__.main(argv)` in this process (fast); the help text and the
offline dataset behaviour run the real `python -m ganlib` in a subprocess, with a timeout.
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

import ganlib
import ganlib.__main__
from ganlib import LOSSES, MODELS, TrainConfig, load_checkpoint
from ganlib.__main__ import build_parser, main
from ganlib.data import DATASETS

FLAGS = ["--data", "--data-root", "--model", "--loss", "--image-size", "--latent-dim", "--pack",
         "--batch-size", "--epochs", "--steps", "--lr-g", "--lr-d", "--beta1", "--betas",
         "--n-critic", "--gp-weight", "--lsgan-abc", "--seed", "--device", "--amp",
         "--sample-every", "--ckpt-every", "--log-every", "--eval-every", "--best-metric",
         "--out", "--resume", "--no-progress"]


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


# A value other than the default for every TrainConfig field, as flags and as the field
# value that cmd_train must pass on. Booleans are found from their defaults; a field missing
# here (a new one) fails test_every_train_config_field_has_a_flag_that_reaches_it.
NON_DEFAULT = {
    "data": (["--data", "ring"], "ring"), "model": (["--model", "toy"], "toy"),
    "loss": (["--loss", "hinge"], "hinge"), "image_size": (["--image-size", "none"], None),
    "latent_dim": (["--latent-dim", "16"], 16), "pack_m": (["--pack-m", "2"], 2),
    "batch_size": (["--batch-size", "8"], 8), "num_epochs": (["--num-epochs", "1.5"], 1.5),
    "num_steps": (["--num-steps", "7"], 7), "lr_g": (["--lr-g", "0.001"], 0.001),
    "lr_d": (["--lr-d", "0.003"], 0.003), "betas": (["--betas", "0.1", "0.8"], (0.1, 0.8)),
    "n_critic": (["--n-critic", "3"], 3), "gp_weight": (["--gp-weight", "2.5"], 2.5),
    "clip_value": (["--clip-value", "0.05"], 0.05),
    "r1_weight": (["--r1-weight", "1.0"], 1.0),
    "label_smoothing": (["--label-smoothing", "0.1"], 0.1), "ema": (["--ema", "0.99"], 0.99),
    "lsgan_abc": (["--lsgan-abc", "-1", "1", "0"], (-1.0, 1.0, 0.0)),
    "seed": (["--seed", "5"], 5), "device": (["--device", "cpu"], "cpu"),
    "amp": (["--amp", "bf16"], "bf16"),
    "sample_every": (["--sample-every", "9"], 9), "ckpt_every": (["--ckpt-every", "11"], 11),
    "log_every": (["--log-every", "4"], 4), "eval_every": (["--eval-every", "6"], 6),
    "best_metric": (["--best-metric", "reverse_kl"], "reverse_kl"),
    "out_dir": (["--out-dir", "o"], "o"),
}


def _non_default(f):
    if isinstance(f.default, bool):  # --x / --no-x
        return [f"--{'no-' if f.default else ''}{f.name.replace('_', '-')}"], not f.default
    return NON_DEFAULT[f.name]


@pytest.fixture
def captured(monkeypatch):
    """Run `main(argv)` with `train` replaced by a recorder: what cmd_train passes on."""
    calls = []

    def fake_train(G, D, data, config, resume=False, callback=None, evaluate=None):
        calls.append(dict(G=G, D=D, data=data, config=config, resume=resume,
                          evaluate=evaluate, weights=[p.detach().clone() for p in G.parameters()]))
        return {"step": []}
    monkeypatch.setattr(ganlib.__main__, "train", fake_train)

    def run(argv):
        assert run_main(argv) == 0
        return calls[-1]
    return run


def test_every_train_config_field_has_a_flag_that_reaches_it(captured, tmp_path):
    argv = ["train", "--data-root", str(tmp_path), "--resume"]
    expected = {}
    for f in dataclasses.fields(TrainConfig):
        flags, value = _non_default(f)
        argv += flags
        expected[f.name] = value
    call = captured(argv)
    cfg = call["config"]
    for name, value in expected.items():
        assert getattr(cfg, name) == value, name
    assert call["resume"] is True and call["evaluate"] is not None  # --eval-every 6, ring
    assert call["data"].name == "ring"


@pytest.mark.parametrize("argv, field, value", [
    (["--epochs", "2.5"], "num_epochs", 2.5), (["--steps", "3"], "num_steps", 3),
    (["--pack", "2", "--batch-size", "64"], "pack_m", 2), (["--out", "x"], "out_dir", "x"),
    (["--beta1", "0.3"], "betas", (0.3, 0.999)),
    (["--betas", "0.2", "0.9", "--beta1", "0.4"], "betas", (0.4, 0.9)),
    (["--no-progress"], "progress", False), (["--latent-dim", "none"], "latent_dim", None),
])
def test_earlier_flag_names_still_reach_train_config(captured, argv, field, value):
    cfg = captured(["train", "--data", "mnist-sample", *argv])["config"]
    assert getattr(cfg, field) == value


def test_cli_defaults_are_train_config_defaults_except_out(captured):
    cfg = captured(["train", "--data", "mnist"])["config"]
    assert dataclasses.replace(cfg, out_dir=None) == TrainConfig()
    assert cfg.out_dir == "runs/gan"


def test_train_help_shows_each_field_comment():
    help_text = " ".join(build_parser()._subparsers._group_actions[0].choices["train"]
                         .format_help().split())
    assert "real images per D step" in help_text  # batch_size's comment
    assert "D steps per G step" in help_text  # n_critic's comment
    assert "(default: 256)" in help_text


def test_seed_decides_the_initial_weights(captured):
    def weights(seed):
        return captured(["train", "--data", "mnist-sample", "--seed", str(seed)])["weights"]
    a, b, again = weights(1), weights(2), weights(1)
    assert all(torch.equal(x, y) for x, y in zip(a, again))
    assert not all(torch.equal(x, y) for x, y in zip(a, b))


def test_sample_draws_from_the_checkpoint_weights(trained, tmp_path, monkeypatch):
    out, _ = trained
    drawn = []
    monkeypatch.setattr(ganlib.__main__, "save_samples", lambda x, path: drawn.append(x))
    assert run_main(["sample", "--ckpt", str(out / "last.pt"), "--n", "8", "--seed", "3",
                     "--out", str(tmp_path / "g.png")]) == 0
    ck = load_checkpoint(out / "last.pt")
    assert ck["networks"]["name"] == "mlp"
    G, _ = ganlib.build_models("mlp", (1, 28, 28))
    untrained = G.state_dict()
    untrained = {k: v.clone() for k, v in untrained.items()}
    G.load_state_dict(ck["G"])
    torch.manual_seed(3)
    expected = ganlib.generate(G, G.sample_z(8))
    assert torch.allclose(drawn[0], expected)
    G.load_state_dict(untrained)
    torch.manual_seed(3)
    assert not torch.allclose(drawn[0], ganlib.generate(G, G.sample_z(8)), atol=1e-3)


def test_sample_on_custom_networks_says_to_rebuild_them(tmp_path, capsys):
    G = torch.nn.Sequential(torch.nn.Linear(4, 2))
    G.latent_dim = 4
    G.sample_z = lambda n, device=None: torch.randn(n, 4, device=device)
    D = torch.nn.Sequential(torch.nn.Linear(2, 1))
    cfg = TrainConfig(model="mlp", loss="bce", batch_size=8, num_steps=2, out_dir=str(tmp_path),
                      progress=False, sample_every=0)
    ganlib.train(G, D, torch.randn(32, 2), cfg)
    assert load_checkpoint(tmp_path / "last.pt")["networks"]["name"] == "custom"
    assert run_main(["sample", "--ckpt", str(tmp_path / "last.pt"),
                     "--out", str(tmp_path / "g.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "custom networks" in err and "rebuild G yourself" in err
    assert not (tmp_path / "g.png").exists()


# Bad input a user can type: each gives exit code 2 and one line that names the problem.
TRAIN = ["train", "--data", "mnist-sample", "--steps", "1", "--no-progress"]
BAD_INPUT = [
    (TRAIN + ["--batch-size", "0"], "--batch-size must be an integer >= 1"),
    (TRAIN + ["--batch-size", "-5"], "--batch-size must be an integer >= 1"),
    (TRAIN + ["--batch-size", "100000"], "larger than the dataset"),
    (TRAIN + ["--batch-size", "10", "--pack", "4"], "multiple of pack_m=4"),
    (TRAIN + ["--steps", "-3"], "--num-steps must be an integer >= 1"),
    (TRAIN + ["--steps", "0"], "--num-steps must be an integer >= 1"),
    (TRAIN + ["--steps", "none", "--epochs", "0"], "--num-epochs must be a finite number > 0"),
    (TRAIN + ["--epochs", "-1"], "--num-epochs must be a finite number > 0"),
    (TRAIN + ["--epochs", "nan"], "--num-epochs must be a finite number > 0"),
    (TRAIN + ["--epochs", "abc"], "invalid float value: 'abc'"),
    (TRAIN + ["--steps", "1.5"], "invalid int value: '1.5'"),
    (TRAIN + ["--lr-g=-0.1"], "--lr-g must be a finite number >= 0"),
    (TRAIN + ["--lr-d=-1e-3"], "--lr-d must be a finite number >= 0"),
    (TRAIN + ["--beta1", "1.0"], "--betas must be two numbers in [0, 1)"),
    (TRAIN + ["--betas", "-0.1", "0.9"], "--betas must be two numbers in [0, 1)"),
    (TRAIN + ["--n-critic", "0"], "--n-critic must be an integer >= 1"),
    (TRAIN + ["--pack", "0"], "--pack-m must be an integer >= 1"),
    (TRAIN + ["--gp-weight", "-1"], "--gp-weight must be a finite number >= 0"),
    (TRAIN + ["--model", "resnet"], "invalid choice: 'resnet'"),
    (TRAIN + ["--loss", "wasserstein"], "invalid choice: 'wasserstein'"),
    (TRAIN + ["--device", "gpu"], "--device must be 'auto', 'cpu', 'cuda' or 'cuda:N'"),
    (TRAIN + ["--image-size", "30"], "--image-size must be supported by model 'mlp'"),
    (TRAIN + ["--model", "conv32"], "model 'conv32' supports image sizes (32,), got 28x28"),
    (TRAIN + ["--latent-dim", "0"], "--latent-dim must be an integer >= 1"),
    (TRAIN + ["--log-every", "0"], "--log-every must be an integer >= 1"),
    (TRAIN + ["--sample-every", "-1"], "--sample-every must be an integer >= 0"),
    (TRAIN + ["--ckpt-every", "-1"], "--ckpt-every must be an integer >= 0"),
    (TRAIN + ["--eval-every", "-1"], "--eval-every must be an integer >= 0"),
    (TRAIN + ["--best-metric", "fid"], "--eval-every must be > 0 when best_metric='fid'"),
    (TRAIN + ["--seed", "-1"], "--seed must be an integer in [0, 2**63)"),
    (TRAIN + ["--eval-every", "5", "--model", "dcgan", "--image-size", "32"],
     "--eval-every has measures for grey 28x28 images"),
    (["train", "--data", "{missing}", "--steps", "1"], "no file or folder at"),
    (["train", "--data", "{empty}", "--steps", "1"], "no images (.png"),
    (["train", "--data", "{junk}", "--steps", "1"], "none of the 1 image files"),
    (["train", "--data", "{junk}/a.png", "--steps", "1"], "is a file, not an image folder"),
    (TRAIN + ["--out", "{junk}/a.png"], "--out-dir must be a folder"),
    (["train", "--bogus"], "unrecognized arguments: --bogus"),
    ([], "the following arguments are required: command"),
    (["sample", "--ckpt", "x.pt", "--n", "0"], "--n must be at least 1"),
    (["sample", "--ckpt", "{empty}"], "is a folder, not a checkpoint"),
    (["sample", "--ckpt", "{missing}"], "no checkpoint at"),
    (["sample", "--ckpt", "{junk}/a.png"], "not a readable checkpoint"),
    (["sample", "--ckpt", "x.pt", "--device", "gpu"], "--device must be auto, cpu, cuda"),
]


@pytest.mark.parametrize("argv, says", BAD_INPUT, ids=[" ".join(a[-2:]) for a, _ in BAD_INPUT])
def test_bad_input_exits_2_with_one_line(argv, says, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.png").write_text("not an image")
    paths = dict(missing=tmp_path / "missing", empty=tmp_path / "empty", junk=tmp_path / "junk")
    argv = [a.format(**paths) for a in argv]
    assert run_main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines()
           if not line.startswith("ganlib: ")]  # the run's own banner, before the data check
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert says in err[0]


def test_bad_input_in_a_real_process_prints_no_traceback(tmp_path):
    result = python_m_ganlib(["train", "--batch-size", "0"], cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: --batch-size must be an integer >= 1, got 0; use a positive batch size such "
        "as 64"]


def test_ctrl_c_ends_with_one_line(monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(ganlib.__main__, "train", interrupted)
    assert run_main(TRAIN) == 130
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("error: interrupted") and "Traceback" not in "".join(err)


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
