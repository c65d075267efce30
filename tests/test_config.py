"""`TrainConfig` checks itself: each out-of-range setting or unknown name is refused on
creation with one line that names the setting and says what to do."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from ganlib import TrainConfig
from ganlib.amp import AMP_MODES
from ganlib.validation import ConfigError, check_config

BAD = [  # (setting, what the message must say)
    (dict(batch_size=0), "batch_size must be an integer >= 1, got 0"),
    (dict(batch_size=-4), "batch_size must be an integer >= 1, got -4"),
    (dict(batch_size=2.5), "batch_size must be an integer >= 1, got 2.5"),
    (dict(batch_size=True), "batch_size must be an integer >= 1, got True"),
    (dict(batch_size=10, pack_m=4), "batch_size must be a multiple of pack_m=4"),
    (dict(num_steps=-3), "num_steps must be an integer >= 1 or None, got -3"),
    (dict(num_steps=0), "num_steps must be an integer >= 1 or None, got 0"),
    (dict(num_epochs=0), "num_epochs must be a finite number > 0"),
    (dict(num_epochs=-1.0), "num_epochs must be a finite number > 0"),
    (dict(num_epochs=math.inf), "num_epochs must be a finite number > 0"),
    (dict(lr_g=-1e-4), "lr_g must be a finite number >= 0"),
    (dict(lr_d=-1e-3), "lr_d must be a finite number >= 0"),
    (dict(lr_d=math.nan), "lr_d must be a finite number >= 0"),
    (dict(betas=(1.0, 0.999)), "betas must be two numbers in [0, 1)"),
    (dict(betas=(-0.1, 0.9)), "betas must be two numbers in [0, 1)"),
    (dict(betas=(0.5,)), "betas must be two numbers in [0, 1)"),
    (dict(n_critic=0), "n_critic must be an integer >= 1"),
    (dict(pack_m=0), "pack_m must be an integer >= 1"),
    (dict(gp_weight=-1.0), "gp_weight must be a finite number >= 0"),
    (dict(lsgan_abc=(0.0, 1.0)), "lsgan_abc must be three finite numbers"),
    (dict(model="resnet"), "model must be one of mlp, mlp-bn"),
    (dict(loss="wasserstein"), "loss must be one of"),
    (dict(clip_value=0.0), "clip_value must be a finite number > 0"),
    (dict(r1_weight=-1.0), "r1_weight must be a finite number >= 0"),
    (dict(label_smoothing=1.0), "label_smoothing must be a number in [0, 1)"),
    (dict(device="gpu"), "device must be 'auto', 'cpu', 'cuda' or 'cuda:N'"),
    (dict(device="cuda:x"), "device must be 'auto', 'cpu', 'cuda' or 'cuda:N'"),
    (dict(amp="fp8"), "amp must be one of none, bf16, fp16"),
    (dict(amp=True), "amp=True is now amp='bf16'"),
    (dict(image_size=30), "image_size must be supported by model 'mlp'"),
    (dict(model="conv32", image_size=64), "that model takes image_size 32"),
    (dict(model="toy", image_size=28), "that model takes no image_size"),
    (dict(image_size=0), "image_size must be an integer >= 1 or None"),
    (dict(latent_dim=0), "latent_dim must be an integer >= 1 or None"),
    (dict(log_every=0), "log_every must be an integer >= 1"),
    (dict(sample_every=-1), "sample_every must be an integer >= 0"),
    (dict(ckpt_every=-1), "ckpt_every must be an integer >= 0"),
    (dict(eval_every=-1), "eval_every must be an integer >= 0"),
    (dict(best_metric="fid"), "eval_every must be > 0 when best_metric='fid'"),
    (dict(best_metric="", eval_every=5), "best_metric must be a key of evaluate's results"),
    (dict(seed=-1), "seed must be an integer in [0, 2**63)"),
    (dict(seed=1.0), "seed must be an integer in [0, 2**63)"),
    (dict(data=""), "data must be a non-empty string"),
    (dict(progress="yes"), "progress must be True or False"),
]


@pytest.mark.parametrize("setting, says", BAD, ids=[str(s) for s, _ in BAD])
def test_a_bad_setting_is_refused_in_one_line_naming_it(setting, says):
    with pytest.raises(ValueError) as err:
        TrainConfig(**setting)
    message = str(err.value)
    assert says in message and "\n" not in message
    assert "; " in message  # what it must be, then what to do
    assert isinstance(err.value, ConfigError) and err.value.field in message


def test_an_out_dir_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(ConfigError, match="out_dir must be a folder"):
        TrainConfig(out_dir=str(tmp_path / "f"))
    assert TrainConfig(out_dir=str(tmp_path / "new")).out_dir == str(tmp_path / "new")


@pytest.mark.parametrize("setting", [
    {}, dict(model="custom", image_size=17), dict(model="toy"), dict(model="dcgan", image_size=28),
    dict(device="cpu"), dict(device="cuda:1"), dict(device=torch.device("cpu")),
    dict(num_steps=1, batch_size=1), dict(betas=[0.0, 0.9]), dict(gp_weight=0),
    dict(eval_every=3, best_metric="fid"), dict(seed=2**40),
    dict(pack_m=4, batch_size=64), dict(data="N(4, 0.5^2)"), dict(sample_every=0, ckpt_every=0),
], ids=str)
def test_good_settings_are_accepted(setting):
    cfg = TrainConfig(**setting)
    check_config(cfg)
    for key, value in setting.items():
        assert getattr(cfg, key) == value


@pytest.mark.parametrize("amp", AMP_MODES)
def test_every_amp_mode_is_accepted(amp):
    assert TrainConfig(amp=amp).amp == amp


def test_replace_checks_again():
    cfg = TrainConfig()
    with pytest.raises(ConfigError, match="batch_size"):
        dataclasses.replace(cfg, batch_size=0)
