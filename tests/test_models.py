"""Models: output shapes and ranges for every architecture and size, logits (never
probabilities) from every discriminator, PacGAN packing, DCGAN's initialisation, the noise
distributions, and build_models' errors."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from ganlib import MODELS, Packed, build_models, describe_models, pack
from ganlib.dcgan import DCGANDiscriminator, DCGANGenerator
from ganlib.generator import Generator
from ganlib.models import Upsample64Generator
from ganlib.toy_models import ToyDiscriminator, ToyGenerator

CASES = [("mlp", (1, 28, 28)), ("mlp-bn", (1, 28, 28)), ("conv32", (3, 32, 32)),
         ("upsample64", (3, 64, 64))] + \
        [("dcgan", (c, s, s)) for s in (28, 32, 64) for c in (1, 3)] + [("toy", (2,))]
IDS = [f"{name}-{'x'.join(map(str, shape))}" for name, shape in CASES]

WEIGHTED = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)


def _last_weighted(module: nn.Module) -> nn.Module:
    return [m for m in module.modules() if isinstance(m, WEIGHTED)][-1]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("name, shape", CASES, ids=IDS)
def test_generator_output_shape_and_range(name, shape):
    G, _ = build_models(name, shape)
    z = G.sample_z(4)  # (B, latent_dim)
    assert z.shape == (4, G.latent_dim)
    x = G(z)  # (B, latent_dim) -> (B, *shape)
    assert x.shape == (4, *shape)
    assert torch.isfinite(x).all()
    if name != "toy":  # images: tanh output, the range of the data
        assert x.min() >= -1 and x.max() <= 1


@pytest.mark.parametrize("name, shape", [c for c in CASES if c[0] != "toy"],
                         ids=[i for i, c in zip(IDS, CASES) if c[0] != "toy"])
def test_image_generators_end_in_tanh(name, shape):
    """Blow up the last layer's weights: a tanh output saturates at +-1 but never passes it."""
    G, _ = build_models(name, shape)
    with torch.no_grad():
        _last_weighted(G).weight.mul_(1000)
    x = G(G.sample_z(4))
    assert x.abs().max() <= 1
    assert x.abs().max() > 0.99  # the pre-activations really were large


@pytest.mark.parametrize("name, shape", CASES, ids=IDS)
def test_discriminator_returns_raw_logits(name, shape):
    _, D = build_models(name, shape)
    last = _last_weighted(D)
    seen = []
    last.register_forward_hook(lambda m, i, out: seen.append(out))
    with torch.no_grad():
        last.weight.mul_(1000)  # a sigmoid output could never leave [0, 1] after this
    x = torch.rand(4, *shape) * 2 - 1
    logits = D(x)
    assert logits.shape == (4, 1)
    # Nothing (no sigmoid) comes after D's last layer: its output is the logit itself.
    assert torch.equal(logits, seen[-1].reshape(4, 1))
    assert logits.abs().max() > 1
    assert not any(isinstance(m, nn.Sigmoid) for m in D.modules())


@pytest.mark.parametrize("name, shape", CASES, ids=IDS)
def test_packed_discriminator_judges_pairs(name, shape):
    G, D = build_models(name, shape, pack_m=2)
    assert isinstance(D, Packed) and D.m == 2
    x = G(G.sample_z(4)).detach()  # (4, *shape)
    assert D(x).shape == (2, 1)  # (B, *shape) -> (B/2, 1)
    with pytest.raises(ValueError, match="batch size 3 is not a multiple of the packing "
                                         "degree 2; use a batch size divisible by 2"):
        D(x[:3])


def test_pack_puts_consecutive_samples_side_by_side():
    x = torch.randn(6, 3, 4, 4)
    packed = pack(x, 3)
    assert packed.shape == (2, 9, 4, 4)
    assert torch.equal(packed[0, 3:6], x[1]) and torch.equal(packed[1, 6:9], x[5])
    points = torch.randn(4, 2)
    assert torch.equal(pack(points, 2), torch.cat([points[0::2], points[1::2]], dim=1))


@pytest.mark.parametrize("channels, size", [(1, 28), (3, 64)])
def test_dcgan_initialisation(channels, size):
    """Radford et al.: conv weights N(0, 0.02), BatchNorm scale N(1, 0.02), BatchNorm bias 0
    (PyTorch's own defaults would be Kaiming-uniform weights and scale 1)."""
    G, D = build_models("dcgan", (channels, size, size))
    modules = [*G.modules(), *D.modules()]
    convs = [m.weight.flatten() for m in modules if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    w = torch.cat(convs)
    assert w.std().item() == pytest.approx(0.02, rel=0.03)
    assert abs(w.mean().item()) < 1e-3
    for layer in convs:  # every layer, even the 1,024-weight ones
        assert layer.std().item() == pytest.approx(0.02, rel=0.15)
    bns = [m for m in modules if isinstance(m, nn.BatchNorm2d)]
    scale = torch.cat([m.weight for m in bns])
    assert scale.mean().item() == pytest.approx(1.0, abs=0.01)
    assert scale.std().item() == pytest.approx(0.02, rel=0.2)
    assert all(torch.count_nonzero(m.bias) == 0 for m in bns)


def test_toy_generator_is_pacgans_2d_sampler():
    G, D = build_models("toy", (2,))
    assert isinstance(G, ToyGenerator) and isinstance(D, ToyDiscriminator)
    assert G.latent_dim == 2
    z = G.sample_z(1000)
    assert z.shape == (1000, 2)
    assert z.std().item() == pytest.approx(1.0, rel=0.1)  # N(0, I) noise
    hidden = [m.out_features for m in G.modules() if isinstance(m, nn.Linear)]
    assert hidden == [400, 400, 400, 400, 2]  # 4 hidden layers of 400 units
    assert [m.pieces for m in D.net[:3]] == [5, 5, 5]  # 3 maxout layers, 5 pieces each
    assert G(z).shape == (1000, 2)
    _, D4 = build_models("toy", (2,), pack_m=4)
    assert D4(torch.randn(8, 2)).shape == (2, 1)


def test_upsample64_noise_is_uniform_in_minus1_1_with_latent_1000():
    G, _ = build_models("upsample64", (3, 64, 64))
    assert isinstance(G, Upsample64Generator)
    assert G.latent_dim == 1000
    z = G.sample_z(200)  # (200, 1000)
    assert z.shape == (200, 1000)
    assert z.min() >= -1 and z.max() <= 1
    assert z.min() < -0.99 and z.max() > 0.99  # fills the interval
    assert z.var().item() == pytest.approx(1 / 3, rel=0.02)  # U(-1, 1) has variance 1/3
    assert abs(z.mean().item()) < 0.01


def test_other_generators_use_gaussian_noise():
    G, _ = build_models("mlp", (1, 28, 28))
    assert G.latent_dim == 100
    z = G.sample_z(1000)  # (1000, 100)
    assert z.var().item() == pytest.approx(1.0, rel=0.02)
    assert (z.abs() > 1).float().mean().item() == pytest.approx(0.317, abs=0.01)


def test_latent_dim_override():
    G, D = build_models("dcgan", (1, 32, 32), latent_dim=16)
    assert G.latent_dim == 16
    assert G(G.sample_z(2)).shape == (2, 1, 32, 32)
    assert {name: latent for name, (_, latent) in MODELS.items()} == {
        "mlp": 100, "mlp-bn": 100, "conv32": 100, "upsample64": 1000, "dcgan": 100, "toy": 2,
        "cgan-mlp": 100}


def test_mlp_layer_widths_follow_the_source_articles():
    G, D = build_models("mlp", (1, 28, 28))
    assert [m.out_features for m in G.modules() if isinstance(m, nn.Linear)] == \
        [256, 512, 1024, 784]
    assert [m.out_features for m in D.modules() if isinstance(m, nn.Linear)] == [512, 256, 1]
    G, D = build_models("mlp-bn", (1, 28, 28))
    assert [m.out_features for m in G.modules() if isinstance(m, nn.Linear)] == [256, 512, 784]
    assert isinstance(G.net[-1], nn.Tanh)  # 002's BatchNorm after the tanh is left out


def test_mlp_bn_discriminator_sees_a_shift_of_the_whole_batch():
    # 002's D (BatchNorm right after the input layer) gives the same logits for a batch and
    # for the batch shifted by any fixed image v: the per-feature batch mean is removed.
    # ganlib's version leaves that BatchNorm out, so a grey-on-average batch is visible.
    torch.manual_seed(0)
    x = torch.rand(32, 1, 28, 28) * 2 - 1
    v = torch.rand(1, 1, 28, 28)
    d_002 = nn.Sequential(nn.Flatten(), nn.Linear(784, 512, bias=False), nn.BatchNorm1d(512),
                          nn.LeakyReLU(0.3), nn.Linear(512, 1))
    assert torch.allclose(d_002(x), d_002(x + v), atol=1e-4)
    _, D = build_models("mlp-bn", (1, 28, 28))
    assert not any(isinstance(m, nn.BatchNorm1d) for m in D.net[:3])
    assert (D(x) - D(x + v)).abs().max() > 1e-2


@pytest.mark.parametrize("args, message", [
    (("resnet", (1, 28, 28)), "unknown model 'resnet'; choose one of mlp, mlp-bn, conv32, "
                              "upsample64, dcgan, toy"),
    (("conv32", (3, 64, 64)), r"supports image sizes \(32,\), got 64x64"),
    (("upsample64", (3, 32, 32)), r"supports image sizes \(64,\), got 32x32"),
    (("dcgan", (1, 48, 48)), "supports image sizes .* got 48x48"),
    (("mlp", (1, 28, 32)), "got 28x32"),
    (("toy", (1, 28, 28)), "'toy' is for 2-D points"),
    (("mlp", (2,)), "use --model toy"),
])
def test_build_models_errors(args, message):
    with pytest.raises(ValueError, match=message):
        build_models(*args)


def test_build_models_refuses_pack_below_1():
    with pytest.raises(ValueError, match="pack_m must be >= 1"):
        build_models("mlp", (1, 28, 28), pack_m=0)


@pytest.mark.parametrize("name, shape, m", [("mlp", (1, 28, 28), 2), ("mlp-bn", (1, 32, 32), 1),
                                            ("conv32", (3, 32, 32), 1), ("dcgan", (1, 28, 28), 4),
                                            ("toy", (2,), 2)])
def test_describe_models_is_what_build_models_needs_to_rebuild_the_pair(name, shape, m):
    G, D = build_models(name, shape, latent_dim=8, pack_m=m)
    desc = describe_models(G, D, shape)
    assert desc == {"name": name, "image_shape": list(shape), "latent_dim": 8, "pack_m": m}
    G2, D2 = build_models(**desc)
    assert repr(G2) == repr(G) and repr(D2) == repr(D)


def test_describe_models_calls_other_networks_custom():
    G, D = build_models("mlp", (1, 28, 28))
    _, D_bn = build_models("mlp-bn", (1, 28, 28))
    assert describe_models(G, D_bn, (1, 28, 28))["name"] == "custom"  # a mixed pair
    G.net[1] = nn.LeakyReLU(0.2)  # changed after building
    assert describe_models(G, D, (1, 28, 28))["name"] == "custom"
    G = DCGANGenerator(100, 1, 28, width=32)  # built by hand: not what build_models makes
    assert describe_models(G, DCGANDiscriminator(1, 28, width=32), (1, 28, 28))["name"] == "custom"


def test_dcgan_and_the_generator_base_live_in_their_modules():
    import ganlib.models
    assert DCGANGenerator.__module__ == "ganlib.dcgan" and Generator.__module__ == "ganlib.generator"
    assert ganlib.models.DCGANGenerator is DCGANGenerator  # still importable from models
    assert issubclass(DCGANGenerator, Generator)


def test_every_registered_network_has_the_layers_on_record():
    """Each model of `MODELS`, layer by layer as PyTorch prints it (sizes, activation slopes,
    BatchNorm momentum and eps, dropout rates) and its parameter count, against
    tests/architectures.json: a changed network fails here. After a deliberate change,
    rewrite the file with `python tests/architectures.py` and review its diff."""
    import json

    from architectures import FILE, architectures  # tests/architectures.py
    expected, actual = json.loads(FILE.read_text()), architectures()
    assert actual.keys() == expected.keys()
    for key in expected:
        assert actual[key] == expected[key], (
            f"{key} differs from tests/architectures.json; if intended, run "
            "`python tests/architectures.py` and review the diff")
