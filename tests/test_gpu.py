"""ganlib on a CUDA GPU: every model under every precision policy, exact resume, CPU/CUDA
agreement, the compiled step, the metrics and the trials ensemble.

Every test here is marked `gpu` and skipped without CUDA (tests/conftest.py). On a GPU
machine, one command runs them all (minutes, most of them compiling):

    python3 -m pytest -o addopts="" -p no:cacheprovider -m gpu tests/test_gpu.py -rA -s

`-s` shows the measured differences that the tolerances below bound (lines "MEASURED").
"""
from __future__ import annotations

import functools

import pytest
import torch

from ganlib import MODELS, TrainConfig, build_models, load_checkpoint, train
from ganlib.ensemble import train_toy_ensemble
from ganlib.trials import build_ensemble, trial_models, trial_seeds
from ganlib.losses import get_loss
from ganlib.metrics import class_histogram, classifier_score, fid, precision_recall
from ganlib.models import Packed
from ganlib.optim import make_adam
from ganlib.training import train_step
from trials_check import train_side_by_side  # tests/

pytestmark = pytest.mark.gpu
CUDA = torch.device("cuda")

# Tolerances, each a bound on a measured difference (printed as MEASURED with -s):
CPU_CUDA_LOSS_RTOL = 1e-4   # per-step losses, float32 (TF32 off), 5 steps of the MLP GAN
CPU_CUDA_WEIGHT_ATOL = 2e-3  # weights after 5 Adam steps of lr 2e-4: a near-zero gradient
#                             whose sign rounds differently moves its weight by up to lr a step
RESUME_ATOL = 0.0            # resumed vs uninterrupted on the same GPU: the same kernels
FAST_ATOL = 1e-4             # compiled vs plain step on CUDA, 5 steps (fused kernels' rounding)
METRIC_RTOL = 1e-3           # FID and classifier score: CPU vs CUDA features
ENSEMBLE_GRAPH_ATOL = 1e-4  # one CUDA graph vs the plain ensemble step, 40 steps of lr 1e-4:
#                             the same kernels replayed (0 expected); a cuBLAS algorithm
#                             that differs under capture would move a weight by < lr a step
COMPILED_ENSEMBLE_ATOL = 4e-3  # the graph of Inductor-fused forwards (fast="compile"), the
#                             same 40 steps: rounding differs, and Adam moves a weight whose
#                             gradient is rounding noise by up to lr a step (40 x 1e-4)
POINTS_ATOL = 2e-3           # precision, recall, class fractions: at most 2 of 1,000 points
#                             on a ball's edge or a class boundary may fall the other way

SHAPES = {"mlp": (1, 28, 28), "mlp-bn": (1, 28, 28), "dcgan": (1, 28, 28),
          "conv32": (3, 32, 32), "upsample64": (3, 64, 64), "toy": (2,)}


@pytest.fixture(autouse=True)
def fresh_compiler():
    """Each test compiles from scratch: dynamo's per-function recompile limit (8) would
    otherwise send later tests' steps back to eager after many models in one process."""
    torch._dynamo.reset()
    yield


def _bf16_ok():
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)


def _data(name, mnist_sample, blobs32, blobs64):
    shape = SHAPES[name]
    if name == "toy":
        from ganlib import ring_of_gaussians
        return ring_of_gaussians(n=512)
    return mnist_sample.x[:512] if shape[0] == 1 else (blobs32 if shape[1] == 32 else blobs64)


def _config(out=None, **kw):
    base = dict(batch_size=16, num_steps=3, progress=False, device="cuda", sample_every=0,
                out_dir=str(out) if out else None)
    return TrainConfig(**{**base, **kw})


def _max_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    return max((sa[k].double().cpu() - sb[k].double().cpu()).abs().max().item() for k in sa
               if sa[k].is_floating_point())


def test_every_model_list_is_covered():
    assert set(SHAPES) == set(MODELS)


@pytest.mark.parametrize("amp", ["none", "bf16", "fp16"])
@pytest.mark.parametrize("name", list(SHAPES))
def test_every_model_trains_a_few_steps_on_cuda(name, amp, mnist_sample, blobs32, blobs64,
                                                tmp_path):
    """Each model, each precision policy, the plain step: finite losses, float32 weights on
    the GPU, a checkpoint (with the fp16 scalers' state) that loads on the CPU."""
    if amp == "bf16" and not _bf16_ok():
        pytest.skip("this GPU has no native bfloat16")
    torch.manual_seed(0)
    G, D = build_models(name, SHAPES[name])
    history = train(G, D, _data(name, mnist_sample, blobs32, blobs64),
                    _config(tmp_path, model=name, amp=amp, fast=False))
    assert torch.isfinite(torch.tensor(history["d_loss"] + history["g_loss"])).all()
    assert all(p.device.type == "cuda" and p.dtype == torch.float32 for p in G.parameters())
    ck = load_checkpoint(tmp_path / "last.pt")  # map_location="cpu"
    assert sorted(ck["scalers"]) == (["D", "G"] if amp == "fp16" else [])


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("name", ["mlp", "dcgan"])
def test_resume_on_cuda_equals_the_uninterrupted_run(name, fast, mnist_sample, tmp_path):
    n = 6
    torch.manual_seed(0)
    G_full, D_full = build_models(name, SHAPES[name])
    h_full = train(G_full, D_full, mnist_sample.x[:512],
                   _config(tmp_path / "full", model=name, num_steps=n, fast=fast))
    torch.manual_seed(0)
    G, D = build_models(name, SHAPES[name])
    train(G, D, mnist_sample.x[:512], _config(tmp_path / "half", model=name, num_steps=n // 2,
                                              fast=fast))
    torch.manual_seed(1)
    G, D = build_models(name, SHAPES[name])
    h = train(G, D, mnist_sample.x[:512], _config(tmp_path / "half", model=name, num_steps=n,
                                                  fast=fast), resume=True)
    diff = max(_max_diff(G, G_full), _max_diff(D, D_full))
    print(f"MEASURED resume on CUDA ({name}, fast={fast}): max |w - w_full| = {diff:.3g}")
    assert diff <= RESUME_ATOL
    assert h["step"] == h_full["step"]
    assert max(abs(a - b) for a, b in zip(h["d_loss"], h_full["d_loss"])) <= RESUME_ATOL


def test_a_cuda_checkpoint_resumes_on_the_cpu_and_back(mnist_sample, tmp_path):
    """Across devices the run goes on (weights, optimizers, step and data order exact; the
    noise comes from the new device's generator, see ganlib.checkpoint.set_rng_state)."""
    torch.manual_seed(0)
    G, D = build_models("mlp", SHAPES["mlp"])
    data = mnist_sample.x[:512]
    train(G, D, data, _config(tmp_path, num_steps=2))
    cpu_rng = load_checkpoint(tmp_path / "last.pt")["rng"]["torch"]
    h = train(G, D, data, _config(tmp_path, num_steps=4, device="cpu"), resume=True)
    assert h["step"] == [1, 2, 3, 4]
    assert load_checkpoint(tmp_path / "last.pt")["rng"]["torch"].shape == cpu_rng.shape
    h = train(G, D, data, _config(tmp_path, num_steps=6), resume=True)  # back on CUDA
    assert h["step"] == [1, 2, 3, 4, 5, 6]
    assert next(G.parameters()).device.type == "cuda"


def _steps_on(device, steps=5, name="mlp-bn"):
    """`steps` plain float32 train_steps on `device` from the same weights, data and noise
    (noise drawn on the CPU, so both devices see the same numbers)."""
    torch.manual_seed(0)
    G, D = build_models(name, SHAPES[name])
    G.to(device), D.to(device)
    opt_G, opt_D = make_adam(G, 2e-4, (0.5, 0.999)), make_adam(D, 2e-4, (0.5, 0.999))
    gen = torch.Generator().manual_seed(1)
    x = (torch.rand(steps, 32, *SHAPES[name], generator=gen) * 2 - 1).to(device)
    z = torch.randn(steps, 32, G.latent_dim, generator=gen).to(device)
    noise = iter(z)
    G.sample_z = lambda n, device=None: next(noise)
    losses = [torch.stack(train_step(G, D, opt_G, opt_D, get_loss("bce"), [x[i]])[:2]).cpu()
              for i in range(steps)]
    return G, D, torch.stack(losses)


def test_cpu_and_cuda_agree_on_a_few_float32_steps():
    from ganlib.amp import Precision
    Precision("none", CUDA)  # the policy: TF32 off, as train sets it
    G_cpu, D_cpu, l_cpu = _steps_on(torch.device("cpu"))
    G_gpu, D_gpu, l_gpu = _steps_on(CUDA)
    loss_rel = ((l_gpu - l_cpu).abs() / l_cpu.abs()).max().item()
    w = max(_max_diff(G_cpu, G_gpu), _max_diff(D_cpu, D_gpu))
    print(f"MEASURED CPU vs CUDA, 5 float32 steps of mlp-bn: loss rel {loss_rel:.3g}, "
          f"max |w_cpu - w_cuda| {w:.3g}")
    assert loss_rel <= CPU_CUDA_LOSS_RTOL
    assert w <= CPU_CUDA_WEIGHT_ATOL


@pytest.mark.parametrize("name", ["mlp", "mlp-bn", "dcgan"])
def test_the_compiled_step_equals_the_plain_step_on_cuda(name):
    from ganlib.fast import fast_step
    results = []
    for fast in (False, True):
        torch.manual_seed(0)
        G, D = build_models(name, SHAPES[name])
        G.to(CUDA), D.to(CUDA)
        opt_G, opt_D = make_adam(G, 2e-4, (0.5, 0.999)), make_adam(D, 2e-4, (0.5, 0.999))
        step = functools.partial(train_step, G, D, opt_G, opt_D, get_loss("bce"))
        if fast:
            plain, step = step, fast_step(step, G, D, get_loss("bce"))
            assert step is not plain
        x = (torch.rand(5, 32, *SHAPES[name], generator=torch.Generator().manual_seed(1))
             * 2 - 1).to(CUDA)
        torch.manual_seed(2)
        losses = torch.stack([torch.stack(step([x[i]])[:2]) for i in range(5)]).cpu()
        results.append((G, D, losses))
    (G0, D0, l0), (G1, D1, l1) = results
    diff = max(_max_diff(G0, G1), _max_diff(D0, D1))
    print(f"MEASURED compiled vs plain on CUDA ({name}): max |w| diff {diff:.3g}, "
          f"max loss diff {(l0 - l1).abs().max().item():.3g}")
    assert diff <= FAST_ATOL
    torch.testing.assert_close(l1, l0, rtol=1e-4, atol=1e-4)


def test_metrics_agree_between_devices(mnist_sample):
    from ganlib import load_mnist_sample
    x_real = load_mnist_sample(train=False).x  # 1,000 digits
    x_fake = mnist_sample.x[:1000].clone()
    x_fake[:, :, 10:18, 10:18] = -1  # a blanked patch: a distinct, imperfect set
    on_cpu = [fid(x_real, x_fake), classifier_score(x_fake), *precision_recall(x_real, x_fake)]
    on_gpu = [fid(x_real.to(CUDA), x_fake.to(CUDA)), classifier_score(x_fake.to(CUDA)),
              *precision_recall(x_real.to(CUDA), x_fake.to(CUDA))]
    print(f"MEASURED metrics CPU vs CUDA (fid, score, precision, recall): {on_cpu} vs {on_gpu}")
    for a, b in zip(on_cpu[:2], on_gpu[:2]):
        assert abs(a - b) <= METRIC_RTOL * abs(a)
    for a, b in zip(on_cpu[2:], on_gpu[2:]):
        assert abs(a - b) <= POINTS_ATOL
    torch.testing.assert_close(class_histogram(x_fake.to(CUDA)), class_histogram(x_fake),
                               rtol=0, atol=POINTS_ATOL)


@pytest.mark.parametrize("opt, pack", [("sgd", 1), ("adam", 2)])
def test_the_ensemble_equals_separate_runs_on_cuda(opt, pack):
    """T trials trained as one batched model on CUDA end where T separately trained ganlib
    models end (SGD in float32; Adam in float64, as tests/test_ensemble.py explains)."""
    dtype = torch.float64 if opt == "adam" else torch.float32
    T, B, steps, loss = 3, 12, 4, get_loss("bce")
    torch.set_default_dtype(dtype)
    try:
        G, D = build_ensemble(T, pack, seed=0)
        singles = [trial_models(s, pack) for s in trial_seeds(0, T)]
    finally:
        torch.set_default_dtype(torch.float32)
    singles = [(g.to(CUDA), (Packed(d, pack) if pack > 1 else d).to(CUDA)) for g, d in singles]
    G.to(CUDA), D.to(CUDA)
    make = ((lambda m: torch.optim.SGD(m.parameters(), lr=0.01)) if opt == "sgd"
            else (lambda m: make_adam(m, 1e-3, (0.8, 0.999))))
    gen = torch.Generator().manual_seed(1)
    draw = lambda: (torch.randn(T, B * pack, 2, generator=gen, dtype=dtype).to(CUDA),  # x_real
                    torch.randn(T, B * pack, 2, generator=gen, dtype=dtype).to(CUDA))  # z
    train_side_by_side(G, D, singles, make, loss, draw, steps)
    G.eval()
    z = torch.randn(T, 24, 2, generator=gen, dtype=dtype).to(CUDA)
    with torch.no_grad():
        x = G(z)  # (T, 24, 2)
        for t, (g, _) in enumerate(singles):
            g.eval()
            torch.testing.assert_close(x[t], g(z[t]), rtol=1e-4, atol=1e-4)


def test_train_toy_ensemble_runs_in_float32_on_cuda():
    """The 2-D mixtures never use mixed precision: float32 weights and samples, and the
    same seed gives the same samples on the GPU."""
    kw = dict(kind="ring", trials=2, steps=30, batch_size=50, device="cuda", progress=False,
              num_samples=200, dataset_size=500)
    r = train_toy_ensemble(**kw)
    assert r["samples"].dtype == torch.float32 and r["samples"].shape == (2, 200, 2)
    assert all(p.dtype == torch.float32 and p.is_cuda for p in r["G"].parameters())
    torch.testing.assert_close(train_toy_ensemble(**kw)["samples"], r["samples"],
                               rtol=0, atol=1e-6)


@pytest.mark.parametrize("mode, options", [
    (True, dict()),
    (True, dict(updates="simultaneous", batchnorm="pacgan", real_tuples=True, pack=2,
                init_std=None)),
    ("compile", dict())])
def test_the_ensemble_graph_equals_the_plain_step_on_cuda(tmp_path, mode, options):
    """`train_toy_ensemble(fast=True)` on CUDA (each step one CUDA graph, `graph_step`) ends
    where `fast=False` ends: the same losses, weights and samples (with "compile", to
    float32 rounding as Adam amplifies it); and a run stopped and resumed with the graph
    (captured again after loading) equals an uninterrupted one."""
    atol = ENSEMBLE_GRAPH_ATOL if mode is True else COMPILED_ENSEMBLE_ATOL
    kw = dict(kind="ring", trials=3, pack=1, steps=40, batch_size=20, lr=1e-4, seed=0,
              device="cuda", progress=False, num_samples=200, dataset_size=400, log_every=5,
              eval_every=20, **options)

    def run(**extra):  # a fresh compiler per run: dynamo's recompile limit stays far
        torch._dynamo.reset()
        return train_toy_ensemble(**kw, **extra)

    plain, fast = run(fast=False), run(fast=mode)
    weights = max(_max_diff(fast[k], plain[k]) for k in ("G", "D"))
    losses = max(abs(a - b) for key in ("d_loss", "g_loss")
                 for rows in zip(fast["history"][key], plain["history"][key])
                 for a, b in zip(*rows))
    print(f"MEASURED ensemble graph (fast={mode}) vs plain {options}: weights {weights:.2e}, "
          f"losses {losses:.2e}")
    assert fast["history"]["step"] == plain["history"]["step"]
    assert weights <= atol and losses <= atol
    torch.testing.assert_close(fast["samples"], plain["samples"], rtol=0, atol=10 * atol)
    ckpt = tmp_path / "run.pt"
    for stop in (7, 20):  # mid-epoch, and at a measurement
        assert not run(fast=mode, checkpoint=ckpt, stop_at=stop)["finished"]
    resumed = run(fast=mode, checkpoint=ckpt)
    assert resumed["history"] == fast["history"]
    assert _max_diff(resumed["G"], fast["G"]) == RESUME_ATOL
    assert torch.equal(resumed["samples"], fast["samples"])
