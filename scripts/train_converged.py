"""Train the chapters' headline generators at a real budget and save them small.

The chapters train live at a budget the CPU of a reader (or CI) can afford, which for some
networks is far from converged. This script trains the same networks with the chapters'
settings for many more steps, on a GPU when there is one, and saves each generator's
weights in float16 (a few MB in all) with a record of how it was made, so that a chapter
can show what the method reaches beside its live run.

    python scripts/train_converged.py --out ganlib/assets/converged      # the real budget
    python scripts/train_converged.py --out /tmp/c --smoke               # a seconds-long check

Runs (name: chapter, network, data, steps at the real budget):
    mlp_bn_mnist:  chapter 3, 002's MLP + BatchNorm, MNIST, 30,000 steps of 64
    dcgan_mnist:   chapter 4, DCGAN width 32, MNIST, 30,000 steps of 64
    dcgan64_faces: chapter 4, DCGAN 64x64 (widths 32/16), the shipped emoji faces with the
                   chapter's augmentation, 20,000 steps of 32 (needs a GPU: hours on a CPU)
The record (`converged.json`) holds, per run: steps, batch size, seconds, device, torch
version, the FID-MNIST of 2,000 samples against 2,000 test digits (MNIST runs) and the
file's sha256. Do not commit files trained at `--smoke` or on a budget that has not
converged: the point of these files is a generator that worked.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import ganlib
from ganlib.models import DCGANDiscriminator, DCGANGenerator

ASSETS = Path(ganlib.__file__).parent / "assets"


def augment(x, copies=8, seed=0):
    """Chapter 4's augmentation: x (N, C, S, S) and its mirror images, copied `copies` times
    with random shifts of up to S/16 (edge pixels repeated)."""
    x = torch.cat([x, x.flip(-1)])
    m, size = x.shape[-1] // 16, x.shape[-1]
    padded = F.pad(x, (m, m, m, m), mode="replicate")
    g = torch.Generator().manual_seed(seed)
    offsets = torch.randint(0, 2 * m + 1, (copies, 2), generator=g).tolist()
    return torch.cat([padded[..., dy:dy + size, dx:dx + size] for dy, dx in offsets])


def runs(smoke: bool) -> dict:
    scale = (lambda n: 3) if smoke else (lambda n: n)
    return {
        "mlp_bn_mnist": dict(chapter=3, steps=scale(30_000), batch_size=64, data="mnist",
                             make=lambda: ganlib.build_models("mlp-bn", image_shape=(1, 28, 28))),
        "dcgan_mnist": dict(chapter=4, steps=scale(30_000), batch_size=64, data="mnist",
                            make=lambda: (DCGANGenerator(100, channels=1, image_size=28, width=32),
                                          DCGANDiscriminator(channels=1, image_size=28, width=32))),
        "dcgan64_faces": dict(chapter=4, steps=scale(20_000), batch_size=32, data="faces",
                              make=lambda: (DCGANGenerator(100, channels=3, image_size=64, width=32),
                                            DCGANDiscriminator(channels=3, image_size=64, width=16))),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the .pt files and converged.json")
    parser.add_argument("--only", nargs="*", help="names of the runs to do (default: all)")
    parser.add_argument("--smoke", action="store_true", help="3 steps each: checks the script runs")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    device = ganlib.get_device(args.device)
    record_path = args.out / "converged.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    for name, run in runs(args.smoke).items():
        if args.only and name not in args.only:
            continue
        ganlib.seed_everything(0)
        if run["data"] == "mnist":
            data = ganlib.load_dataset("mnist")
        else:
            data = augment(ganlib.load_images(ASSETS / "emoji_faces_64.npz", image_size=64).x)
        G, D = run["make"]()
        cfg = ganlib.TrainConfig(data=run["data"], model="custom", loss="bce", batch_size=run["batch_size"],
                                 num_steps=run["steps"], lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999),
                                 device=str(device), progress=not args.smoke)
        start = time.perf_counter()
        ganlib.train(G, D, data, cfg)
        seconds = time.perf_counter() - start
        entry = {"chapter": run["chapter"], "steps": run["steps"], "batch_size": run["batch_size"],
                 "seconds": round(seconds, 1), "device": str(device),
                 "device_name": (torch.cuda.get_device_name(device) if device.type == "cuda"
                                 else ganlib.utils.cpu_name()),
                 "torch": torch.__version__, "smoke": args.smoke}
        if run["data"] == "mnist":
            x_test = ganlib.load_dataset("mnist", train=False).x[:2000]
            samples = ganlib.metrics.generate_many(G, len(x_test), seed=0)
            entry["fid_mnist"] = ganlib.fid(x_test, samples.cpu())
        path = args.out / f"{name}.pt"
        state = {k: (v.half() if v.is_floating_point() else v) for k, v in G.state_dict().items()}
        torch.save({k: v.cpu() for k, v in state.items()}, path)
        entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        entry["bytes"] = path.stat().st_size
        record[name] = entry
        record_path.write_text(json.dumps(record, indent=1) + "\n")
        print(f"{name}: {entry}")


if __name__ == "__main__":
    main()
