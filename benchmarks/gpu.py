"""GPU speed: the rows of issue 10's table, each with its reference loop in the same process.

    python benchmarks/gpu.py [--quick] [--json benchmarks/results/gpu.json] [--root DATA]

Rows (each "ganlib" figure is `ganlib.train` as a user calls it: float32, `fast=True`):
  mlp-64       001's MLP on MNIST at batch 64: 001's loop as written
               (`benchmarks/throughput.py`'s `run_article`, moved to the device) vs ganlib.
  mlp-256      the same MLP at batch 256 in ganlib: images/s and seconds per MNIST epoch.
  dcgan-64     DCGAN on 64x64 RGB images at batch 128: PyTorch's DCGAN tutorial loop
               (written out below) vs ganlib's `dcgan` model, the same images (synthetic
               colour discs: no dataset download) through the same DataLoader settings.
  pacgan-2d    PacGAN's 2-D GAN on the ring, 10 trials batched with `ganlib.ensemble`:
               steps/s and minutes for PacGAN's 400,000-step protocol, `fast=True` (on
               CUDA each step replays one CUDA graph, `ganlib.fast.graph_step`).
  pacgan-2d-compile  the same with `fast="compile"`: G's and D's kernels fused by
               TorchInductor, then the step captured as one graph (float32 rounding).
  pacgan-2d-plain  the same with `fast=False`: the eager step, for comparison.
  fid-mnist    time to FID-MNIST below 10 (2,000 samples against 10,000 real digits,
               checked every `eval_every` steps) for `BEST_MNIST_RECIPE`.
ganlib's rates are steady-state: two runs of n and 2n steps, rate = n / (t_2n - t_n), so
set-up and compilation cancel. Records the device name, torch version and settings.
`--quick` runs every row for a few steps (on the CPU: well under a minute) to check the
script itself; its figures mean nothing.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import throughput  # noqa: E402  (001's loop and data pipeline, shared with throughput.py)

import ganlib  # noqa: E402
from ganlib.data import data_root, load_torchvision  # noqa: E402
from ganlib.ensemble import train_toy_ensemble  # noqa: E402
from ganlib.metrics import fid_evaluator  # noqa: E402
from ganlib.book import cpu_name  # noqa: E402

# The best MNIST recipe measured so far (experiments/results/losses.json: LSGAN beat BCE
# with DCGAN at batch 64), at DCGAN's own width.
BEST_MNIST_RECIPE = dict(model="dcgan", loss="lsgan", batch_size=64, lr_g=2e-4, lr_d=2e-4,
                         betas=(0.5, 0.999))


class TutorialGenerator(nn.Module):  # PyTorch's DCGAN tutorial, as written (nz 100, ngf 64)
    def __init__(self, nz=100, ngf=64, nc=3):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())

    def forward(self, input):
        return self.main(input)


class TutorialDiscriminator(nn.Module):  # the tutorial's D, with its Sigmoid
    def __init__(self, ndf=64, nc=3):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid())

    def forward(self, input):
        return self.main(input)


def weights_init(m):  # the tutorial's initialisation
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        nn.init.normal_(m.weight.data, 0.0, 0.02)
    elif classname.find("BatchNorm") != -1:
        nn.init.normal_(m.weight.data, 1.0, 0.02)
        nn.init.constant_(m.bias.data, 0)


def run_tutorial(images: torch.Tensor, steps: int, device, batch_size=128, workers=2) -> float:
    """The DCGAN tutorial's training loop over `images` (N, 3, 64, 64) in [-1, 1] through a
    DataLoader (batch 128, shuffle, 2 workers, as the tutorial); returns images/s."""
    dataloader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images),
                                             batch_size=batch_size, shuffle=True,
                                             num_workers=workers)
    netG, netD = TutorialGenerator().to(device), TutorialDiscriminator().to(device)
    netG.apply(weights_init)
    netD.apply(weights_init)
    criterion = nn.BCELoss()
    optimizerD = torch.optim.Adam(netD.parameters(), lr=0.0002, betas=(0.5, 0.999))
    optimizerG = torch.optim.Adam(netG.parameters(), lr=0.0002, betas=(0.5, 0.999))
    real_label, fake_label = 1., 0.
    done, t0 = 0, time.perf_counter()
    while done < steps:
        for data in dataloader:
            netD.zero_grad()
            real_cpu = data[0].to(device)
            b_size = real_cpu.size(0)
            label = torch.full((b_size,), real_label, dtype=torch.float, device=device)
            output = netD(real_cpu).view(-1)
            errD_real = criterion(output, label)
            errD_real.backward()
            D_x = output.mean().item()
            noise = torch.randn(b_size, 100, 1, 1, device=device)
            fake = netG(noise)
            label.fill_(fake_label)
            output = netD(fake.detach()).view(-1)
            errD_fake = criterion(output, label)
            errD_fake.backward()
            D_G_z1 = output.mean().item()
            errD = errD_real + errD_fake
            optimizerD.step()
            netG.zero_grad()
            label.fill_(real_label)
            output = netD(fake).view(-1)
            errG = criterion(output, label)
            errG.backward()
            D_G_z2 = output.mean().item()
            optimizerG.step()
            del errD, errG, D_x, D_G_z1, D_G_z2  # the tutorial prints these every 50 steps
            done += 1
            if done == steps:
                break
    _sync()
    return steps * batch_size / (time.perf_counter() - t0)


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def steady_rate(run, n: int) -> float:
    """Steps per second of `run(steps)` (a whole fresh run) from runs of n and 2n steps."""
    times = []
    for steps in (n, 2 * n):
        t0 = time.perf_counter()
        run(steps)
        _sync()
        times.append(time.perf_counter() - t0)
    return n / max(times[1] - times[0], 1e-9)


def ganlib_run(name, shape, data, batch_size, device, **kw):
    def run(steps):
        torch.manual_seed(0)
        G, D = ganlib.build_models(name, shape)
        ganlib.train(G, D, data, ganlib.TrainConfig(model=name, batch_size=batch_size,
                                                    num_steps=steps, progress=False,
                                                    device=str(device), **kw))
    return run


def colour_discs(n: int, size: int = 64, seed: int = 0) -> torch.Tensor:
    """`n` images (n, 3, size, size) in [-1, 1]: a soft disc of a random colour each."""
    g = torch.Generator().manual_seed(seed)
    c = torch.arange(size, dtype=torch.float32)
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    centre = torch.rand(n, 2, generator=g) * size * 0.6 + size * 0.2
    radius = (torch.rand(n, generator=g) * 0.15 + 0.1) * size
    colour = torch.rand(n, 3, generator=g) * 2 - 1
    d2 = (yy - centre[:, 0, None, None]) ** 2 + (xx - centre[:, 1, None, None]) ** 2
    disc = torch.sigmoid((radius[:, None, None] ** 2 - d2) / size)
    return (-1 + disc[:, None] * (colour[:, :, None, None] + 1)).clamp(-1, 1)


def time_to_fid(data, test, device, S, target=10.0) -> dict:
    """Train BEST_MNIST_RECIPE until FID-MNIST < target; training seconds (evaluations
    excluded) and steps when it got there, or None within S["fid_max_steps"]."""
    max_steps, eval_every = S["fid_max_steps"], S["fid_every"]
    evaluate_fid = fid_evaluator(test.x[:S["fid_real"]].to(device), n=S["fid_fake"])
    state = {"eval_seconds": 0.0, "fids": []}

    class Reached(Exception):
        pass

    def evaluate(G):
        t = time.perf_counter()
        values = evaluate_fid(G)
        state["eval_seconds"] += time.perf_counter() - t
        state["fids"].append(round(values["fid"], 2))
        if values["fid"] < target:
            raise Reached
        return values

    torch.manual_seed(0)
    G, D = ganlib.build_models("dcgan", (1, 28, 28))
    recipe = {**BEST_MNIST_RECIPE, "batch_size": S["fid_batch"]}
    cfg = ganlib.TrainConfig(num_steps=max_steps, eval_every=eval_every, progress=False,
                             device=str(device), **recipe)
    t0 = time.perf_counter()
    try:
        ganlib.train(G, D, data, cfg, evaluate=evaluate)
        reached = None
    except Reached:
        reached = len(state["fids"]) * eval_every
    seconds = time.perf_counter() - t0 - state["eval_seconds"]
    return {"target_fid": target, "steps": reached, "seconds": round(seconds, 2) if reached
            else None, "fid_at_each_eval": state["fids"], "eval_every": eval_every,
            "max_steps": max_steps, "real": S["fid_real"], "fake": S["fid_fake"],
            "recipe": {**recipe, "betas": list(recipe["betas"])}}


# Settings of each row; --quick shrinks every size so that the script runs in seconds.
FULL = dict(steps=300, article_steps=1000, dcgan_batch=128, dcgan_images=10_000,
            dcgan_steps=100, tutorial_steps=200, workers=2, trials=10,
            ensemble=dict(), ensemble_steps=2000, fid_real=10_000, fid_fake=2000,
            fid_max_steps=20_000, fid_every=500, fid_batch=64)
QUICK = dict(steps=2, article_steps=3, dcgan_batch=8, dcgan_images=16, dcgan_steps=1,
             tutorial_steps=1, workers=0, trials=2,
             ensemble=dict(num_samples=100, dataset_size=200, batch_size=20),
             ensemble_steps=2, fid_real=500, fid_fake=100, fid_max_steps=2, fid_every=1,
             fid_batch=16)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="every row for a few small steps "
                   "(checks the script; seconds on a CPU; its figures mean nothing)")
    p.add_argument("--root", default=None, help="data folder (default: $GANLIB_DATA)")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = p.parse_args()
    device = ganlib.get_device("auto")
    S = QUICK if args.quick else FULL
    if args.quick:  # the bundled sample, through the article's per-item PIL pipeline
        mnist, test = ganlib.load_mnist_sample(), ganlib.load_mnist_sample(train=False)
        import torchvision.transforms as T
        x_uint8 = ((mnist.x[:, 0] + 1) * 127.5).round().to(torch.uint8)
        dataset = throughput.PILDigits(x_uint8, T.Compose([T.ToTensor(), T.Normalize((0.5,), (0.5,))]))
        desc = f"bundled MNIST sample ({len(mnist)})"
    else:
        root = data_root(args.root)
        dataset, desc = throughput.article_dataset(root)
        try:
            mnist = load_torchvision("mnist", root, fallback_to_sample=False)
            test = load_torchvision("mnist", root, train=False, fallback_to_sample=False)
        except RuntimeError:
            mnist, test = ganlib.load_mnist_sample(), ganlib.load_mnist_sample(train=False)
    rows, n = {}, S["steps"]

    ref = throughput.run_article(dataset, S["article_steps"], 64, str(device))[0]
    rate = steady_rate(ganlib_run("mlp", (1, 28, 28), mnist, 64, device, betas=(0.9, 0.999)), n)
    rows["mlp-64"] = {"reference": "001's loop as written", "reference_images_per_s": ref,
                      "ganlib_images_per_s": rate * 64, "ratio": rate * 64 / ref}
    rate = steady_rate(ganlib_run("mlp", (1, 28, 28), mnist, 256, device, betas=(0.9, 0.999)), n)
    rows["mlp-256"] = {"ganlib_images_per_s": rate * 256,
                       "seconds_per_epoch": len(mnist) / (rate * 256), "epoch_images": len(mnist)}

    discs, b = colour_discs(S["dcgan_images"]), S["dcgan_batch"]
    ref = run_tutorial(discs, S["tutorial_steps"], device, b, S["workers"])
    rate = steady_rate(ganlib_run("dcgan", (3, 64, 64), discs, b, device), S["dcgan_steps"])
    rows["dcgan-64"] = {"reference": "PyTorch DCGAN tutorial loop", "batch_size": b,
                        "reference_images_per_s": ref, "ganlib_images_per_s": rate * b,
                        "ratio": rate * b / ref}

    kw = dict(kind="ring", trials=S["trials"], device=str(device), progress=False, **S["ensemble"])
    k = S["ensemble_steps"]
    for row, fast in (("pacgan-2d", True), ("pacgan-2d-compile", "compile"),
                      ("pacgan-2d-plain", False)):
        times = [train_toy_ensemble(steps=s, fast=fast, **kw)["seconds"] for s in (k, 2 * k)]
        steps_per_s = k / max(times[1] - times[0], 1e-9)
        rows[row] = {"trials": S["trials"], "fast": fast if device.type == "cuda" else False,
                     "steps_per_s": steps_per_s,
                     "minutes_per_400k_steps": 400_000 / steps_per_s / 60}

    rows["fid-mnist"] = time_to_fid(mnist, test, device, S)

    meta = {"device": torch.cuda.get_device_name() if device.type == "cuda" else cpu_name(),
            "torch": torch.__version__, "python": platform.python_version(),
            "cuda": torch.version.cuda, "quick": args.quick, "data": desc, "settings": S,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    print(f"device: {meta['device']}; torch {meta['torch']}"
          + ("; QUICK: these figures mean nothing" if args.quick else ""))
    for name, r in rows.items():
        print(f"{name:<10} " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                         for k, v in r.items()))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
        print(f"wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
