"""Recipes (`ganlib.recipes`), the warmed-up EMA of G (`ganlib.ema.warmup_ema`) and
`TrainConfig.ema`, through Python and the command line."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import torch
from torch import nn

import ganlib
from ganlib.__main__ import main
from ganlib.ema import ema_model
from ganlib.recipes import RECIPES, get_recipe, recipe_config


def test_warmup_ema_follows_its_decay_schedule():
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    decay = 0.999
    ema = ema_model(G, decay, warmup=True)
    want = {k: v.detach().clone() for k, v in G.state_dict().items() if v.dtype.is_floating_point}
    for n in range(1, 6):  # the creation was update 0
        with torch.no_grad():
            for p in G.parameters():
                p.add_(torch.randn_like(p))
        G(torch.randn(8, 2))  # moves BatchNorm's running statistics too
        ema.update_parameters(G)
        d = min(decay, (1 + n) / (10 + n))  # 0.18, 0.25, ...: far below 0.999 at the start
        for k, v in G.state_dict().items():
            if k in want:
                want[k] = d * want[k] + (1 - d) * v
    got = ema.module.state_dict()
    for k, v in want.items():
        assert torch.allclose(got[k], v, atol=1e-6), k
    # the integer batch counter is copied, not averaged
    assert got["1.num_batches_tracked"] == G.state_dict()["1.num_batches_tracked"]
    # long after the warm-up, the decay is the one asked for
    assert min(decay, (1 + 10_000) / (10 + 10_000)) == decay


def test_warmup_ema_forgets_the_untrained_start_faster_than_the_plain_one():
    torch.manual_seed(0)
    G = nn.Linear(1, 1, bias=False)
    plain, warm = ema_model(G, 0.999), ema_model(G, 0.999, warmup=True)
    with torch.no_grad():
        G.weight.fill_(1.0)
    for _ in range(300):
        plain.update_parameters(G)
        warm.update_parameters(G)
    start = 1.0 - plain.module.weight.item()  # the share of the start left in the average
    assert warm.module.weight.item() > 0.95 and plain.module.weight.item() < 0.3, start


def ring_config(tmp_path, steps, **kw):
    return ganlib.TrainConfig(batch_size=32, num_steps=steps, progress=False, sample_every=2,
                              ckpt_every=2, seed=0, lr_g=1e-3, lr_d=1e-3, model="custom",
                              out_dir=str(tmp_path), **kw)


def ring_models():
    ganlib.seed_everything(0)
    return (ganlib.toy_models.ToyGenerator(hidden=16, depth=1),
            ganlib.toy_models.ToyDiscriminator(hidden=16, depth=1, pieces=2))


def test_train_keeps_its_own_ema_when_the_config_asks_and_resumes_it_exactly(tmp_path):
    data = ganlib.ring_of_gaussians(256).x
    G, D = ring_models()
    ganlib.train(G, D, data, ring_config(tmp_path / "a", 4, ema=0.9))
    ck = ganlib.load_checkpoint(tmp_path / "a" / "last.pt")
    assert int(ck["G_ema"]["n_averaged"]) == 5 and ck["config"]["ema"] == 0.9
    # the same average as an EMA passed in by hand with the warm-up
    G2, D2 = ring_models()
    by_hand = ema_model(G2, 0.9, warmup=True)
    ganlib.train(G2, D2, data, ring_config(tmp_path / "b", 4), G_ema=by_hand)
    for k, v in by_hand.state_dict().items():
        assert torch.equal(ck["G_ema"][k], v), k
    # 2 + 2 steps with a resume: the same average
    G3, D3 = ring_models()
    ganlib.train(G3, D3, data, ring_config(tmp_path / "c", 2, ema=0.9))
    G3, D3 = ring_models()
    ganlib.train(G3, D3, data, ring_config(tmp_path / "c", 4, ema=0.9), resume=True)
    ck3 = ganlib.load_checkpoint(tmp_path / "c" / "last.pt")
    for k, v in ck["G_ema"].items():
        assert torch.equal(ck3["G_ema"][k], v), k
    # resuming with another decay is another run
    G4, D4 = ring_models()
    with pytest.raises(ganlib.CheckpointError, match="ema"):
        ganlib.train(G4, D4, data, ring_config(tmp_path / "c", 6, ema=0.5), resume=True)


@pytest.mark.parametrize("bad", [1.0, -0.1, True, "0.9"])
def test_config_refuses_an_ema_decay_outside_0_1(bad):
    with pytest.raises(ganlib.ConfigError, match="ema"):
        ganlib.TrainConfig(ema=bad)


def test_recipe_config_sets_the_recipes_fields_and_takes_overrides():
    r = get_recipe("fast-mnist")
    cfg = recipe_config("fast-mnist")
    assert cfg.model == r.model == "mlp-bn"
    for k, v in r.settings.items():
        assert getattr(cfg, k) == v, k
    assert cfg.ema > 0 and cfg.batch_size == 128  # what the benchmark chose
    assert recipe_config("fast-mnist", num_steps=7, lr_g=1e-4).num_steps == 7
    assert set(RECIPES) == {"fast-mnist"}
    with pytest.raises(ValueError, match="fast-mnist"):
        get_recipe("slow-mnist")


def test_cli_recipe_sets_defaults_flags_win_and_sample_uses_the_average(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--recipe", "fast-mnist", "--data", "mnist-sample", "--steps", "3",
                 "--lr-g", "1e-4", "--out", str(out), "--no-progress"]) == 0
    assert "recipe fast-mnist" in capsys.readouterr().err
    ck = ganlib.load_checkpoint(out / "last.pt")
    cfg = ck["config"]
    assert (cfg["model"], cfg["batch_size"], cfg["lr_d"], cfg["ema"]) == ("mlp-bn", 128, 4e-4, 0.995)
    assert cfg["lr_g"] == 1e-4  # the flag given beside the recipe wins
    assert "G_ema" in ck
    # sample: the average by default, G itself with --no-ema; the two differ
    grids = {}
    for flag in ("--ema", "--no-ema"):
        path = tmp_path / f"grid{flag}.png"
        assert main(["sample", "--ckpt", str(out / "last.pt"), "--n", "4", "--out", str(path),
                     flag]) == 0
        grids[flag] = path.read_bytes()
    err = capsys.readouterr().err
    assert err.count("from the moving average of G") == 1
    assert grids["--ema"] != grids["--no-ema"]
    assert main(["train", "--recipe", "slow-mnist"]) == 2



def test_the_readme_main_job_runs_offline_and_writes_its_grid(tmp_path):
    """The README's first command as written there (its `python -m ganlib train ...` part),
    offline with an empty data folder and a few steps: the bundled sample, one line, a grid."""
    from test_cli import python_m_ganlib
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    argv = shlex.split(re.search(r"-m ganlib (train [^\n`]*)", readme).group(1))
    assert argv[argv.index("--recipe") + 1] in RECIPES
    (tmp_path / "data").mkdir()
    result = python_m_ganlib([*argv, "--steps", "3", "--no-progress"], cwd=tmp_path,
                             env={"GANLIB_DATA": str(tmp_path / "data")})
    assert result.returncode == 0, result.stderr
    out = tmp_path / argv[argv.index("--out") + 1]
    assert (out / "samples.png").is_file() and (out / "last.pt").is_file()
    assert "bundled 5000-image sample instead" in result.stderr and "Traceback" not in result.stderr
