"""What one training step costs on the CPU, and what each speed trick buys.

    python benchmarks/cpu_step.py                 # every row, 200 steps each, 3 repeats
    python benchmarks/cpu_step.py --smoke         # seconds: checks the script runs

Times `ganlib.training.train_step` (one D step and one G step, the step `ganlib.train`
runs) on MNIST batches for the candidates of `benchmarks/time_to_quality.py`'s recipes,
each alone and with one change: two intra-op threads instead of one, channels-last
weights (NHWC, oneDNN's preferred layout for convolutions), and `torch.compile` of the whole
step (TorchInductor's CPU backend, `ganlib.fast.fast_step`; its compile time is reported
apart). Also times `ganlib.train` itself against the bare step, which is the loop's own
cost per step (batching, the NaN check's bookkeeping, logging). Prints milliseconds per
step (wall clock and CPU time of the process) and writes JSON with the machine and torch.
Results: benchmarks/README.md ("What a step costs on the CPU").
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import time
from pathlib import Path

import torch

import ganlib
from ganlib.amp import FLOAT32
from ganlib.book import cpu_name
from ganlib.dcgan import DCGANDiscriminator, DCGANGenerator
from ganlib.fast import fast_step
from ganlib.losses import get_loss
from ganlib.optim import make_adam
from ganlib.training import train_step

HERE = Path(__file__).resolve().parent


def networks(name: str):
    if name == "mlp-bn":
        return ganlib.build_models("mlp-bn", (1, 28, 28))
    width = int(name.removeprefix("dcgan"))
    return (DCGANGenerator(100, channels=1, image_size=28, width=width),
            DCGANDiscriminator(channels=1, image_size=28, width=width))


# name: networks, batch size, threads, channels-last, compiled
ROWS = {
    "mlp-bn b128": ("mlp-bn", 128, 1, False, False),
    "mlp-bn b128, 2 threads": ("mlp-bn", 128, 2, False, False),
    "mlp-bn b128, compiled": ("mlp-bn", 128, 1, False, True),
    "mlp-bn b64": ("mlp-bn", 64, 1, False, False),
    "dcgan32 b64": ("dcgan32", 64, 1, False, False),
    "dcgan32 b64, 2 threads": ("dcgan32", 64, 2, False, False),
    "dcgan32 b64, channels-last": ("dcgan32", 64, 1, True, False),
    "dcgan32 b64, compiled": ("dcgan32", 64, 1, False, True),
    "dcgan16 b64": ("dcgan16", 64, 1, False, False),
}


def time_step(name, x, steps: int, repeats: int) -> dict:
    net, batch, threads, channels_last, compiled = ROWS[name]
    torch.set_num_threads(threads)
    ganlib.seed_everything(0)
    G, D = networks(net)
    if channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    opt_G, opt_D = make_adam(G, 2e-4, (0.5, 0.999)), make_adam(D, 2e-4, (0.5, 0.999))
    loss = get_loss("bce")
    step = functools.partial(train_step, G, D, opt_G, opt_D, loss)
    compile_s = None
    if compiled:
        step = fast_step(step, G, D, loss, FLOAT32)
        t0 = time.perf_counter()
        step([x[:batch]])  # the first call compiles
        compile_s = time.perf_counter() - t0
    batches = [x[i * batch:(i + 1) * batch] for i in range(len(x) // batch)]
    for i in range(3):  # warm-up
        step([batches[i]])
    walls, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(steps):
            step([batches[i % len(batches)]])
        walls.append(1000 * (time.perf_counter() - t0) / steps)
        cpus.append(1000 * (time.process_time() - c0) / steps)
    median = lambda v: sorted(v)[len(v) // 2]  # noqa: E731
    return {"networks": net, "batch_size": batch, "threads": threads,
            "channels_last": channels_last, "compiled": compiled, "compile_seconds": compile_s,
            "ms_per_step": median(walls), "cpu_ms_per_step": median(cpus),
            "images_per_s": batch * 1000 / median(walls)}


def loop_overhead(data, steps: int, repeats: int, batch: int = 128) -> dict:
    """`ganlib.train` against the bare `train_step` on the same networks and batch size."""
    torch.set_num_threads(1)

    def bare():
        ganlib.seed_everything(0)
        G, D = networks("mlp-bn")
        opt_G, opt_D = make_adam(G, 2e-4, (0.5, 0.999)), make_adam(D, 2e-4, (0.5, 0.999))
        loss, x = get_loss("bce"), data.x
        c0 = time.process_time()
        for i in range(steps):
            train_step(G, D, opt_G, opt_D, loss, [x[torch.randint(len(x), (batch,))]])
        return time.process_time() - c0

    def full():
        ganlib.seed_everything(0)
        G, D = networks("mlp-bn")
        cfg = ganlib.TrainConfig(batch_size=batch, num_steps=steps, progress=False,
                                 device="cpu", model="custom")
        c0 = time.process_time()
        ganlib.train(G, D, data, cfg)
        return time.process_time() - c0

    b = sorted(bare() for _ in range(repeats))[repeats // 2]
    f = sorted(full() for _ in range(repeats))[repeats // 2]
    return {"batch_size": batch, "bare_cpu_ms": 1000 * b / steps, "train_cpu_ms": 1000 * f / steps,
            "overhead_pct": 100 * (f / b - 1)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--only", nargs="*", choices=list(ROWS))
    p.add_argument("--json", type=Path, default=HERE / "results" / "cpu_step.json")
    p.add_argument("--smoke", action="store_true", help="3 steps, 1 repeat, two rows, no JSON")
    args = p.parse_args(argv)
    names = args.only or list(ROWS)
    if args.smoke:
        args.steps, args.repeats, names = 3, 1, ["mlp-bn b64", "dcgan16 b64"]
    data = ganlib.load_dataset("mnist")
    rows = {}
    for name in names:
        rows[name] = r = time_step(name, data.x, args.steps, args.repeats)
        extra = f"  (compiling took {r['compile_seconds']:.0f} s)" if r["compiled"] else ""
        print(f"{name:28s} {r['ms_per_step']:7.1f} ms/step  {r['cpu_ms_per_step']:7.1f} CPU-ms"
              f"  {r['images_per_s']:7.0f} images/s{extra}", flush=True)
    overhead = loop_overhead(data, args.steps, args.repeats)
    print(f"ganlib.train vs the bare step (mlp-bn, batch 128, 1 thread): "
          f"{overhead['train_cpu_ms']:.1f} vs {overhead['bare_cpu_ms']:.1f} CPU-ms per step "
          f"({overhead['overhead_pct']:+.1f}%)")
    if args.smoke:
        return rows
    record = {"machine": {"cpu": cpu_name(), "cores": os.cpu_count(),
                          "platform": platform.platform(), "load_average": os.getloadavg()},
              "torch": torch.__version__, "data": data.source, "steps": args.steps,
              "repeats": args.repeats, "date": time.strftime("%Y-%m-%d"),
              "rows": rows, "loop_overhead": overhead}
    args.json.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.json}")
    return rows


if __name__ == "__main__":
    main()
