"""Stacked MNIST (chapter 6): DCGAN against PacDCGAN2, modes captured out of 1,000.

    python experiments/stacked_mnist.py [--steps 800] [--seeds 1] [--root DATA]
    python experiments/stacked_mnist.py --quick --out /tmp/smoke.json   # a smoke test

Stacked MNIST puts three random MNIST digits in the R, G, B channels of one image
(`ganlib.data.stacked_mnist`), so it has 1,000 modes. We train ganlib's DCGAN for 28x28
images (`ganlib.models.DCGANGenerator` / `DCGANDiscriminator`, width 64) and the same pair
with PacGAN packing of 2 (`pack_m=2`: the discriminator sees 2 images, 6 channels), with
the same optimiser and number of steps, and count the modes of 26,000 samples with
`ganlib.mode_metrics.stacked_mnist_metrics` (each channel classified by ganlib's MNIST
classifier; a mode is captured by at least one sample; KL to uniform over the 1,000).
Writes `experiments/results/stacked_mnist.json` with the settings, machine, versions,
wall times and numbers, and a few samples of each model.
"""
from __future__ import annotations

import argparse
import base64
import time
from pathlib import Path

import torch

import ganlib
from ganlib.sampling import generate_many
from ganlib.mode_metrics import N_STACKED, stacked_mnist_metrics
from record import stamp, write_section  # this folder: one record for every result file

RESULTS = Path(__file__).resolve().parent / "results" / "stacked_mnist.json"
MODELS = {"DCGAN": 1, "PacDCGAN2": 2}  # name: packing degree
# Published (26,000 samples), PacGAN's Table 2 (Lin et al. 2018; checked against the image
# of the table in its released code, stacked_MNIST_experiments/results/Table2.png): its own
# DCGAN and PacDCGAN2, mean ± standard error over 10 trials. VEEGAN's DCGAN row (Srivastava
# et al. 2017, Table 2: 99 modes, KL 3.4) is a different implementation, kept for reference.
PUBLISHED = {"DCGAN": {"modes": 78.9, "modes_se": 6.46, "kl_to_uniform": 4.50, "kl_se": 0.127,
                       "source": "PacGAN, Table 2, DCGAN (our implementation)"},
             "PacDCGAN2": {"modes": 1000.0, "modes_se": 0.0, "kl_to_uniform": 0.06,
                           "kl_se": 0.003, "source": "PacGAN, Table 2"},
             "DCGAN (VEEGAN)": {"modes": 99.0, "kl_to_uniform": 3.4, "source": "VEEGAN, Table 2"}}


def config(pack_m: int, steps: int, seed: int) -> ganlib.TrainConfig:
    """The one configuration both models share; only the packing degree differs."""
    return ganlib.TrainConfig(data="stacked-mnist", model="dcgan", loss="bce", pack_m=pack_m,
                              batch_size=64, num_steps=steps, lr_g=2e-4, lr_d=2e-4,
                              betas=(0.5, 0.999), seed=seed, device="auto", progress=False)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--root", default=None, help="MNIST folder (default $GANLIB_DATA)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="a smoke test: 20 steps, 2,600 samples")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    steps = 20 if args.quick else args.steps
    n_eval = N_STACKED // 10 if args.quick else N_STACKED
    mnist = ganlib.load_dataset("mnist", root=args.root)
    data = ganlib.stacked_mnist(mnist, n=60_000, seed=0)
    runs, start = [], time.perf_counter()
    real = stacked_mnist_metrics(data.x[:n_eval])  # the metric on real data: its ceiling
    print(f"real stacked MNIST ({n_eval:,}): {real}", flush=True)
    samples = {}
    for seed in range(args.seeds):
        for name, m in MODELS.items():
            t0 = time.perf_counter()
            cfg = config(m, steps, seed)
            ganlib.seed_everything(seed)
            G, D = ganlib.build_models("dcgan", image_shape=(3, 28, 28), pack_m=m)
            history = ganlib.train(G, D, data, cfg)
            train_s = time.perf_counter() - t0
            x = generate_many(G, n_eval, seed=12345)  # (n_eval, 3, 28, 28)
            metrics = stacked_mnist_metrics(x)
            runs.append({"model": name, "pack_m": m, "seed": seed, "metrics": metrics,
                         "train_seconds": round(train_s, 1),
                         "seconds": round(time.perf_counter() - t0, 1),
                         "final_d_loss": sum(history["d_loss"][-50:]) / len(history["d_loss"][-50:]),
                         "final_g_loss": sum(history["g_loss"][-50:]) / len(history["g_loss"][-50:])})
            if seed == 0:
                pixels = ((x[:8] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
                samples[name] = base64.b64encode(pixels.numpy().tobytes()).decode()
            print(f"{name} seed {seed}: {metrics} ({runs[-1]['seconds']:.0f} s)", flush=True)
    section = {
        "what": "DCGAN vs PacDCGAN2 on stacked MNIST, modes of the final generators",
        "budget": {"name": "quick" if args.quick else "full", "steps": steps,
                   "seeds": args.seeds, "n_eval": n_eval},
        "epochs": round(steps * 64 / len(data), 2),
        "settings": {**{k: v for k, v in vars(config(2, steps, 0)).items()
                        if k not in ("pack_m", "seed")}, "data": data.source,
                     "n_train": len(data), "image_size": 28, "width": 64},
        **stamp(start),
        "real": real, "runs": runs, "published": PUBLISHED,
        "samples": {k: {"shape": [8, 3, 28, 28], "uint8_base64": v} for k, v in samples.items()}}
    write_section(args.out, None, section)
    print(f"wrote {args.out} ({section['wall_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
