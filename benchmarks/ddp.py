"""Data-parallel scaling: images/s of `ganlib.train` on 1 and 2 processes (torchrun + DDP).

    python benchmarks/ddp.py [--batch-size 64] [--steps 200] [--repeats 3] [--json PATH]

Trains 001's MLP GAN on MNIST (the bundled 5,000-image sample when the full set is not
there) in these configurations, each started with `torchrun --nproc-per-node N`:
  - CPU: 1 process x 1 thread, 2 processes x 1 thread (Gloo), and for reference 1 process x
    2 threads (the same two cores without DDP);
  - CUDA, when present: 1, 2, ... up to all GPUs, one process each (NCCL).
The batch per process stays `--batch-size` (weak scaling, as torchrun users run it), so N
processes train on N times more images per step. Images/s counts the real images of all
processes; scaling efficiency = images/s / (cores or GPUs used x images/s of the first row).
Images per CPU-second (all processes' CPU time together) and its ratio to the first row,
the CPU efficiency, say what DDP costs in work (communication, the duplicated noise draw)
apart from how the operating system shares a busy machine; on a quiet machine both
efficiencies agree.

Each process times `ganlib.train` for `--steps` steps and for a short run of `--steps / 4`
steps, after a warm-up run, and takes the difference: start-up (joining the group, wrapping
in DDP, loading data) is left out. Prints a table and writes JSON (default
benchmarks/results/ddp_cpu.json, or ddp_cuda.json on a GPU machine).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def worker(args) -> None:
    """One training process (started by torchrun): time train(), report from rank 0."""
    import torch.distributed as dist

    import ganlib
    from ganlib import distributed
    try:
        data, source = ganlib.load_dataset("mnist"), "MNIST (60,000)"
    except Exception:  # offline, no data folder: the bundled sample
        data, source = ganlib.load_dataset("mnist-sample"), "bundled MNIST sample (5,000)"
    device = distributed.init(ganlib.get_device(args.device))

    def timed(steps: int) -> tuple[float, float]:
        """Wall-clock and CPU seconds (all processes together) of one `train` call."""
        ganlib.seed_everything(0)
        G, D = ganlib.build_models("mlp", image_shape=(1, 28, 28))
        cfg = ganlib.TrainConfig(batch_size=args.batch_size, num_steps=steps, progress=False,
                                 log_every=50, device=str(device))
        if distributed.is_distributed():
            dist.barrier()
        start, cpu_start = time.perf_counter(), time.process_time()
        ganlib.train(G, D, data, cfg)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        cpu = distributed.all_mean(torch.tensor([time.process_time() - cpu_start]))
        return time.perf_counter() - start, float(cpu) * distributed.world_size()

    timed(10)  # warm-up: first DDP wrap, allocator, kernels
    short, runs, cpu_runs = max(1, args.steps // 4), [], []
    for _ in range(args.repeats):
        (t_short, c_short), (t_long, c_long) = timed(short), timed(args.steps)
        images = (args.steps - short) * args.batch_size * distributed.world_size()
        runs.append(images / (t_long - t_short))
        cpu_runs.append(images / (c_long - c_short))
    if distributed.is_rank0():
        print("RESULT " + json.dumps({"images_per_s": statistics.median(runs), "all_runs": runs,
                                      "images_per_cpu_s": statistics.median(cpu_runs),
                                      "all_cpu_runs": cpu_runs, "data": source}), flush=True)


def run(n_proc: int, threads: int, device: str, args) -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(n_proc),
           "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", __file__,
           "--worker", "--device", device, "--batch-size", str(args.batch_size),
           "--steps", str(args.steps), "--repeats", str(args.repeats)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    if proc.returncode or not lines:
        sys.exit(f"torchrun with {n_proc} process(es) failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-size", type=int, default=64, help="real images per process per step")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu", help="cpu, or cuda (one GPU per process)")
    p.add_argument("--json", default=None)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)

    from ganlib.book import cpu_name
    if args.device == "cpu":
        configs = [("1 process x 1 thread", 1, 1), ("2 processes x 1 thread", 2, 1),
                   ("1 process x 2 threads", 1, 2)]
    else:
        configs = [(f"{n} GPU{'s' * (n > 1)}", n, 1) for n in range(1, torch.cuda.device_count() + 1)]
    load_start = os.getloadavg()[0]
    results = {}
    for name, n_proc, threads in configs:
        r = run(n_proc, threads, args.device, args)
        base = results.get(configs[0][0], r)
        r.update(processes=n_proc, threads_per_process=threads,  # efficiency per core/GPU used
                 scaling_efficiency=r["images_per_s"] / (n_proc * threads * base["images_per_s"]),
                 cpu_efficiency=r["images_per_cpu_s"] / base["images_per_cpu_s"])
        results[name] = r
        print(f"{name:>24}: {r['images_per_s']:8.0f} images/s   efficiency "
              f"{r['scaling_efficiency']:.2f}   {r['images_per_cpu_s']:6.0f} images/CPU-s "
              f"({r['cpu_efficiency']:.2f})", flush=True)
    machine = cpu_name() if args.device == "cpu" else torch.cuda.get_device_name()
    meta = {"machine": machine, "cpu_count": os.cpu_count(), "device": args.device,
            "model": "mlp (001)", "data": results[configs[0][0]].pop("data"),
            "batch_size_per_process": args.batch_size, "steps": args.steps,
            "repeats": args.repeats, "torch": torch.__version__,
            "python": platform.python_version(), "load_average_1min_at_start": load_start,
            "load_average_1min_at_end": os.getloadavg()[0]}
    for r in results.values():
        r.pop("data", None)
    path = Path(args.json or REPO / "benchmarks" / "results" / f"ddp_{args.device}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
