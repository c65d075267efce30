"""Training on several processes (ganlib.distributed): DDP with Gloo on the CPU.

The multi-process tests (marked `distributed`; deselect with -m 'not distributed') start two
training processes the way torchrun does: each gets RANK, LOCAL_RANK, WORLD_SIZE and a free
MASTER_PORT on 127.0.0.1 in its environment, and `ganlib.train` joins the process group from
there. Most fork this test process (cheap: torch is already imported); one runs the README's
`torchrun ... -m ganlib train` for real. Every launch has a time limit.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import traceback
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch._dynamo  # noqa: F401  DDP imports it on first use: once here, not in every worker
import torch.distributed as dist
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

import ganlib
from ganlib import distributed
from ganlib.checkpoint import CheckpointError, load_checkpoint
from ganlib.batches import LoaderBatches, TensorBatches, make_batches

TIMEOUT = 120  # seconds a launch may take before the test fails as hung
B = 16         # batch per process; the one-process reference uses 2 * B
STEPS = 12
REPO = Path(__file__).resolve().parents[1]

distributed_mark = pytest.mark.distributed


# ----------------------------------------------------------------------------- launching

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_rank(rank, world, port, folder, fn, args):
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    try:
        result = fn(rank, *args)
        torch.save(result, folder / f"rank{rank}.pt")
    except BaseException as err:
        (folder / f"rank{rank}.err").write_text(f"{type(err).__name__}: {err}\n"
                                                + traceback.format_exc())
        os._exit(1)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def launch(fn, *args, folder: Path, world: int = 2) -> dict:
    """Run `fn(rank, *args)` in `world` forked processes set up as torchrun sets them up.
    Returns {rank: result} for ranks that finished and {rank: "Type: message..."} (a str) for
    ranks that raised; a rank killed by a signal is absent. Fails the test if any hangs."""
    folder.mkdir(parents=True, exist_ok=True)
    ctx, port = multiprocessing.get_context("fork"), _free_port()
    procs = [ctx.Process(target=_run_rank, args=(r, world, port, folder, fn, args))
             for r in range(world)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(TIMEOUT)
    hung = [r for r, p in enumerate(procs) if p.is_alive()]
    for p in procs:
        if p.is_alive():
            p.kill()
    assert not hung, f"ranks {hung} did not finish within {TIMEOUT} s"
    out = {}
    for r in range(world):
        if (folder / f"rank{r}.pt").exists():
            out[r] = torch.load(folder / f"rank{r}.pt", weights_only=False)
        elif (folder / f"rank{r}.err").exists():
            out[r] = (folder / f"rank{r}.err").read_text()
    return out


# ----------------------------------------------------------------------------- workers

def _config(out_dir, **kw) -> ganlib.TrainConfig:
    # The run-defining fields match the torchrun command line of the resume test.
    cfg = ganlib.TrainConfig(data="mnist-sample", model="mlp", batch_size=B, num_steps=STEPS,
                             ckpt_every=5, sample_every=0, log_every=4, out_dir=str(out_dir),
                             progress=False)
    return replace(cfg, **kw)


def _mlp_models():
    """001's MLP GAN: no BatchNorm, so W processes at batch B compute what one does at W*B."""
    ganlib.seed_everything(0)
    return ganlib.build_models("mlp", image_shape=(1, 28, 28))


def _params(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _mnist_worker(rank, out_dir, kill_at=None, fail_at=None):
    """Train the MLP GAN on the MNIST sample; after every step, how far the ranks' weights differ."""
    G, D = _mlp_models()
    spread = []

    def callback(step, G, D, history):
        w = torch.cat([_params(G), _params(D)])
        all_w = [torch.empty_like(w) for _ in range(distributed.world_size())]
        dist.all_gather(all_w, w)
        spread.append(max(float((a - w).abs().max()) for a in all_w))
        if step == kill_at and rank == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        if step == fail_at and rank == 1:
            raise RuntimeError("injected failure on rank 1")

    history = ganlib.train(G, D, ganlib.load_dataset("mnist-sample").x, _config(out_dir),
                           callback=callback)
    return {"G": G.state_dict(), "D": D.state_dict(), "history": history, "spread": spread}


def _counting_wrap(model, device):
    """distributed.wrap, plus a communication hook that counts D's and G's reductions."""
    ddp = _real_wrap(model, device)
    name = "D" if isinstance(model, ganlib.models.MLPBNDiscriminator) else "G"

    def hook(state, bucket):
        _REDUCTIONS[name] += 1
        return default_hooks.allreduce_hook(dist.group.WORLD, bucket)
    ddp.register_comm_hook(None, hook)
    return ddp


_real_wrap = distributed.wrap
_REDUCTIONS = {"G": 0, "D": 0}


def _batchnorm_worker(rank, out_dir):
    """A GAN with BatchNorm in G and D, WGAN-GP (a gradient penalty through DDP) and two D
    steps per G step; counts the gradient reductions of each network."""
    ganlib.seed_everything(0)
    G = ganlib.models.MLPBNGenerator(latent_dim=8, image_shape=(1, 8, 8))
    D = ganlib.models.MLPBNDiscriminator(image_shape=(1, 8, 8))
    try:
        distributed.init(torch.device("cpu"))
        distributed.convert_sync_bn(G, torch.device("cpu"))
        sync_bn_error = None
    except ValueError as err:
        sync_bn_error = str(err)
    x = torch.rand(64, 1, 8, 8) * 2 - 1
    distributed.wrap = _counting_wrap
    try:
        ganlib.train(G, D, x, _config(out_dir, data="noise", model="mlp-bn", loss="wgan-gp",
                                           n_critic=2, num_steps=4, batch_size=8))
    finally:
        distributed.wrap = _real_wrap
    D_w = _params(D)
    all_D = [torch.empty_like(D_w) for _ in range(2)]
    dist.all_gather(all_D, D_w)
    return {"reductions": dict(_REDUCTIONS), "D_equal": torch.equal(*all_D),
            "sync_bn_error": sync_bn_error}


# ----------------------------------------------------------------------------- tests

class _Items(torch.utils.data.Dataset):  # a lazy dataset: item i is the number i
    def __len__(self):
        return 100

    def __getitem__(self, i):
        return torch.tensor([float(i)])


@pytest.mark.parametrize("lazy", [False, True], ids=["tensor", "dataset"])
def test_shards_make_up_the_one_process_batches(lazy):
    x = torch.arange(100.0)[:, None]  # (100, 1): each row says which item it is
    cpu = torch.device("cpu")
    one = TensorBatches(x, 2 * 8, cpu, seed=3)

    def batches():
        return LoaderBatches(_Items(), 2 * 8, cpu, 3, num_workers=0) if lazy else \
            make_batches(x, 2 * 8, cpu, 3)
    shards = [distributed.ShardedBatches(batches(), r, 2) for r in range(2)]
    assert shards[0].steps_per_epoch == one.steps_per_epoch == 6
    for start in (0, 4, 13):  # the first batch, mid-epoch, and the third epoch (resume)
        it_one, its = one.iterate(start), [s.iterate(start) for s in shards]
        for _ in range(8):
            parts = [next(it) for it in its]
            assert all(p.shape == (8, 1) for p in parts)
            assert torch.equal(torch.cat(parts), next(it_one))


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory):
    """One uninterrupted two-process run on the MNIST sample, batch B per process."""
    folder = tmp_path_factory.mktemp("mnist2")
    results = launch(_mnist_worker, folder / "run", folder=folder / "ranks")
    assert set(results) == {0, 1} and all(isinstance(r, dict) for r in results.values()), results
    return folder / "run", results


@distributed_mark
def test_ranks_agree_on_weights_after_every_step(mnist_run):
    _, results = mnist_run
    for r in (0, 1):
        assert len(results[r]["spread"]) == STEPS
        assert max(results[r]["spread"]) == 0.0  # bitwise: averaged gradients, same Adam


@distributed_mark
def test_two_processes_equal_one_process_at_double_batch(mnist_run, tmp_path):
    run, results = mnist_run
    G, D = _mlp_models()
    start = {"G": _params(G), "D": _params(D)}
    history = ganlib.train(G, D, ganlib.load_dataset("mnist-sample").x,
                           _config(tmp_path, batch_size=2 * B))
    ck = load_checkpoint(run / "last.pt")
    assert ck["step"] == STEPS and ck["world_size"] == 2
    # Float tolerance, measured against how far training moved the weights. Elementwise
    # bounds do not work: Adam divides by sqrt(v), so where a gradient is near 0 rounding (two
    # half-batches summed, then averaged, vs one batch) can turn a few updates by up to lr.
    # A wrong shard or wrong noise makes the two runs differ by about as much as they moved.
    for name, model in (("G", G), ("D", D)):
        one = _params(model)
        for two in (torch.cat([v.flatten() for v in ck[name].values()]),  # rank 0's file
                    torch.cat([v.flatten() for v in results[1][name].values()])):  # rank 1
            moved, differ = (one - start[name]).norm(), (two - one).norm()
            assert differ < 1e-3 * moved, (name, float(differ), float(moved))
    for key in ("d_loss", "g_loss", "d_real", "d_fake"):  # rank 0 logs the global batch's
        torch.testing.assert_close(torch.tensor(ck["history"][key]), torch.tensor(history[key]),
                                   rtol=1e-4, atol=1e-5)


@distributed_mark
def test_killed_run_resumed_with_torchrun_equals_uninterrupted(mnist_run, tmp_path):
    run, results = mnist_run
    out = launch(_mnist_worker, tmp_path / "run", 7, folder=tmp_path / "ranks")
    assert 1 not in out  # rank 1 was killed at step 7 ...
    assert "DistributedError" in out[0] and "another training process failed" in out[0]
    assert load_checkpoint(tmp_path / "run" / "last.pt")["step"] == 5  # ... after the step-5 save
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
           "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{_free_port()}",
           "-m", "ganlib", "train", "--data", "mnist-sample", "--model", "mlp", "--batch-size", str(B),
           "--steps", str(STEPS), "--ckpt-every", "5", "--sample-every", "0",
           "--out", str(tmp_path / "run"), "--resume", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    resumed, whole = load_checkpoint(tmp_path / "run" / "last.pt"), load_checkpoint(run / "last.pt")
    assert resumed["step"] == STEPS
    for name in ("G", "D"):
        for k, v in whole[name].items():
            assert torch.equal(resumed[name][k], v), (name, k)
    assert resumed["history"]["d_loss"] == whole["history"]["d_loss"]


@distributed_mark
def test_failing_rank_stops_the_run_with_clear_error(mnist_run, tmp_path):
    out = launch(_mnist_worker, tmp_path / "run", None, 7, folder=tmp_path / "ranks")
    assert out[1].startswith("RuntimeError: injected failure on rank 1")  # its own error
    assert out[0].startswith("DistributedError: rank 0 of 2 stopped: another training "
                             "process failed")
    ck = load_checkpoint(tmp_path / "run" / "last.pt")  # intact, and the last one completed
    assert ck["step"] == 5 and not (tmp_path / "run" / "history.json").exists()


@distributed_mark
def test_resuming_with_another_process_count_is_refused(mnist_run, tmp_path):
    run, _ = mnist_run
    G, D = _mlp_models()
    with pytest.raises(CheckpointError, match="written by 2 training process"):
        ganlib.train(G, D, ganlib.load_dataset("mnist-sample").x,
                     _config(run, num_steps=STEPS + 1), resume=True)


@distributed_mark
def test_g_step_does_not_reduce_D_gradients(tmp_path):
    out = launch(_batchnorm_worker, tmp_path / "run", folder=tmp_path / "ranks")
    assert set(out) == {0, 1} and all(isinstance(r, dict) for r in out.values()), out
    for r in (0, 1):
        # One reduction (one bucket: small models) per backward: D's two per G step
        # (n_critic=2), G's one; none of D's from the generator step.
        assert out[r]["reductions"] == {"D": 4 * 2, "G": 4}
        assert out[r]["D_equal"]
        assert "sync_bn needs CUDA" in out[r]["sync_bn_error"]
