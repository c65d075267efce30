"""Training one GAN on several processes (GPUs or machines) with torchrun and DDP.

Introduced in the book's page on distributed training (book/distributed.ipynb).

`torchrun --nproc-per-node N -m ganlib train ...` starts N copies of the same program and
gives each its RANK, LOCAL_RANK and WORLD_SIZE in the environment. `ganlib.train` then calls
the functions below, and nothing else in the loop changes:

- `init` joins the process group (NCCL on CUDA, Gloo on the CPU) and picks this process's
  GPU (`cuda:LOCAL_RANK`);
- `wrap` puts G and D each in `DistributedDataParallel`, which averages their gradients
  over the processes during `backward`;
- `shard_batches` gives each process its own rows of every global batch, and `sample_z` the
  matching rows of one global noise draw: W processes at batch B see exactly what one
  process at batch W*B sees, decided by the seed and the epoch alone (resume stays exact);
- `all_mean` averages the logged losses, so every rank records the global batch's losses
  and takes the same decisions (a NaN stops all ranks at the same step);
- `is_rank0` says who writes samples, history and checkpoints;
- `stop_together` turns a failing rank into one clear error on every rank.

Without torchrun's environment (or an initialised `torch.distributed`) each of these does
nothing, and training is exactly the single-process loop.
"""
from __future__ import annotations

import atexit
import functools
import os
import sys

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .checkpoint import CheckpointError


class DistributedError(RuntimeError):
    """Another training process failed, so this one stopped too."""


def is_distributed() -> bool:
    """True inside a process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank, 0 to world_size - 1 (0 when not distributed)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """The number of training processes (1 when not distributed)."""
    return dist.get_world_size() if is_distributed() else 1


def is_rank0() -> bool:
    """True in the one process that writes files (the only one when not distributed)."""
    return rank() == 0


def launched_by_torchrun() -> bool:
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def init(device: torch.device) -> torch.device:
    """Join torchrun's process group (once) and return the device this process trains on.

    With torchrun's environment and no process group yet, initialise one from it: NCCL when
    `device` is CUDA, Gloo on the CPU. Each process takes the GPU `cuda:LOCAL_RANK`. A
    process group you initialised yourself is used as it is. Outside torchrun, returns
    `device` unchanged.
    """
    if launched_by_torchrun() and not dist.is_initialized() and int(os.environ["WORLD_SIZE"]) > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        atexit.register(_cleanup)
    if not is_distributed() or device.type != "cuda":
        return device
    local = int(os.environ.get("LOCAL_RANK", rank() % torch.cuda.device_count()))
    if device.index is not None and device.index != local:
        raise ValueError(f"device {device} was asked for in process {rank()} of "
                         f"{world_size()}; with torchrun each process takes its own GPU "
                         "(cuda:LOCAL_RANK): use device 'auto' or 'cuda'")
    torch.cuda.set_device(local)
    return torch.device("cuda", local)


def _cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def convert_sync_bn(model: nn.Module, device: torch.device) -> nn.Module:
    """Replace every BatchNorm layer of `model` by a SyncBatchNorm (in place; the same
    parameter and buffer tensors), so batch statistics are taken over all processes'
    batches together. Returns `model`. Does nothing outside a process group."""
    if not is_distributed() or not any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                                       for m in model.modules()):
        return model
    if device.type != "cuda":
        raise ValueError("sync_bn needs CUDA: torch's SyncBatchNorm runs on GPUs only. "
                         "Train without --sync-bn on the CPU (each process then normalises "
                         "with its own batch's statistics)")
    return nn.SyncBatchNorm.convert_sync_batchnorm(model)


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """`model` in `DistributedDataParallel` (gradients averaged over the processes during
    backward; rank 0's weights copied to all at the start), or `model` itself when not
    distributed. The wrapper shares the model's parameters: train through the wrapper,
    save and sample from the model."""
    if not is_distributed():
        return model
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                   else None)


def unwrap(model: nn.Module) -> nn.Module:
    """The network inside a DDP wrapper (the model itself otherwise)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


class ShardedBatches:
    """This process's rows of every global batch of `batches` (built at the global batch
    size W*B): global batch j of an epoch is the same `order[j*W*B:(j+1)*W*B]` as for one
    process, and rank r takes its rows `r*B:(r+1)*B`. The union over the ranks is the
    one-process batch, and the order still comes from the seed and the epoch alone."""

    def __init__(self, batches, rank: int, world_size: int):
        if batches.batch_size % world_size:
            raise ValueError(f"the global batch {batches.batch_size} does not split evenly "
                             f"over {world_size} processes")
        self.batches, self.rank, self.world_size = batches, rank, world_size
        self.batch_size = batches.batch_size // world_size  # B, per process
        self.steps_per_epoch = batches.steps_per_epoch

    def __getattr__(self, name):  # x, device, seed, dataset, ...: those of `batches`
        if name == "batches":
            raise AttributeError(name)
        return getattr(self.batches, name)

    def epoch_order(self, epoch: int) -> torch.Tensor:
        S, W, B = self.steps_per_epoch, self.world_size, self.batch_size
        order = self.batches.epoch_order(epoch)[:S * W * B]  # the one-process order
        return order.view(S, W, B)[:, self.rank].reshape(-1)  # (S*B,): this rank's rows

    def iterate(self, start_batch: int = 0):
        """Yield this process's batches forever from global batch `start_batch`: the
        unsharded class's own loop, drawing `B` items at a time from this rank's order."""
        return type(self.batches).iterate(self, start_batch)


def shard_batches(batches):
    """`ShardedBatches` for this process, or `batches` itself when not distributed."""
    return ShardedBatches(batches, rank(), world_size()) if is_distributed() else batches


def sample_z(G: nn.Module, n: int, device) -> torch.Tensor:
    """This process's `n` noise vectors `(n, latent_dim)`: its rows of one global draw of
    `n * world_size`, which every rank makes with the same generator state. So the union is
    the one-process draw, and all ranks keep one RNG state (the one rank 0 saves)."""
    z = G.sample_z(n * world_size(), device)  # (W*n, latent_dim), the same on every rank
    return z[rank() * n:(rank() + 1) * n]


def all_mean(t: torch.Tensor) -> torch.Tensor:
    """The mean of `t` over the processes (a copy of `t` when not distributed). For losses
    that are means over equal shards this is the global batch's loss."""
    if not is_distributed():
        return t
    t = t.clone()
    dist.all_reduce(t)
    return t / world_size()


def stop_together(train):
    """Decorate `train` so that one failing rank stops the run with a clear error everywhere.

    The failing rank says so on stderr, closes its process group (Gloo) so the others stop
    waiting for it, and re-raises its own error. The other ranks, whose next collective then
    fails, raise `DistributedError` saying that another rank failed. Only rank 0 writes
    checkpoints, atomically, so `last.pt` is the last one completed: resume from it.
    """
    @functools.wraps(train)
    def guarded(*args, **kwargs):
        try:
            return train(*args, **kwargs)
        except Exception as err:
            if not is_distributed():
                raise
            me = f"rank {rank()} of {world_size()}"
            if _is_peer_failure(err):
                raise DistributedError(
                    f"{me} stopped: another training process failed (its own error is "
                    "printed above). The last checkpoint rank 0 wrote is intact; fix the "
                    "cause and rerun with --resume.") from err
            print(f"ganlib: {me} failed ({type(err).__name__}: {err}); the other "
                  "processes stop too", file=sys.stderr)
            if dist.get_backend() == "gloo":
                _cleanup()  # closes the sockets: the others' collectives fail at once
            raise
    return guarded


def _is_peer_failure(err: Exception) -> bool:
    """True for the errors a collective raises when another process has gone away."""
    backend_error = getattr(dist, "DistBackendError", ())
    text = str(err)
    return isinstance(err, backend_error) or (isinstance(err, RuntimeError) and any(
        s in text for s in ("Connection closed by peer", "Connection reset by peer",
                            "Broken pipe", "Socket Timeout", "NCCL")))


def check_resume(ckpt: dict, device: torch.device) -> None:
    """What resuming needs beyond the one-process resume: the same number of processes (the
    global batch and each rank's rows depend on it), and on CUDA this GPU's generator set to
    the state rank 0 saved for its own GPU (all ranks draw the same noise, so they share it).
    """
    saved = ckpt.get("world_size", 1)
    if saved != world_size():
        raise CheckpointError(f"cannot resume: the checkpoint was written by {saved} "
                              f"training process(es), this run has {world_size()}. Resume "
                              f"with torchrun --nproc-per-node {saved} (in all), or train "
                              "into a new --out folder.")
    if is_distributed() and device.type == "cuda" and "cuda" in ckpt["rng"]:
        torch.cuda.set_rng_state(ckpt["rng"]["cuda"][0].cpu(), device)  # rank 0 ran on cuda:0
