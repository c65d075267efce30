"""Mode collapse at the VEEGAN/GDPP 2-D protocol (chapter 6): GAN, Unrolled-5 and WGAN-GP,
beside PacGAN packing and cheap remedies, on the ring and the grid.

    python experiments/veegan.py ring [--runs 5] [--only GAN Unrolled-5] [--checkpoints DIR]
    python experiments/veegan.py grid --checkpoints ckpt/veegan    # again to go on
    python experiments/veegan.py ring --quick --out /tmp/smoke.json   # a smoke test

The protocol is GDPP's released `gdppgan_Synthetic.py` (M-Elfeki/GDPP), which follows
VEEGAN's and the unrolled-GAN notebook's (poolio/unrolled_gan); experiments/README.md cites
each point by file and line: G 256-d Gaussian noise -> 128 -> 128 -> 2, D 2 -> 128 -> 128
-> 1, tanh, weights orthogonal with gain 1.4 and biases 0, batch 512 fresh mixture samples
and fresh noise every iteration, Adam (beta1 0.5, eps 1e-8) at lr 1e-4 for D and 1e-3 for
G, one simultaneous D and G update per iteration (both from the same parameters and batch,
as one `sess.run` of both train ops), 25,000 iterations, 2,500 samples measured by GDPP's
`evaluate_samples` (`protocol_metrics` below), 5 runs. The ring's centres are GDPP's,
`linspace(0, 2*pi, 8)`: the first and last coincide (`--ring-means distinct` for 8 at
45 degrees). Each run can stop and go on later with `--checkpoints DIR`: the same command
continues every unfinished run from its last save, to the numbers of an uninterrupted run,
and the same command in a second shell shares the runs (a lock file per run claims it).
Writes one section ("ring" or "grid") of `experiments/results/veegan.json`.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
from torch import nn

from ganlib.checkpoint import load_checkpoint, save_checkpoint
from ganlib.generator import Generator
from ganlib.lipschitz import spectral_norm
from ganlib.losses import get_loss
from ganlib.metrics import kl_to_uniform
from ganlib.mixtures import grid_means, ring_means, sample_mixture
from ganlib.mode_metrics import summarize
from ganlib.models import Packed
from ganlib.training import d_step, g_step
from ganlib.unrolled import unrolled_g_step
from record import claim_lock, release_lock, stamp, write_section  # this folder: one record for every result file

RESULTS = Path(__file__).resolve().parent / "results" / "veegan.json"

# gdppgan_Synthetic.py's params (lines 22-34), the notebook's (cell 11)
PROTOCOL = dict(latent_dim=256, hidden=128, batch_size=512, lr_d=1e-4, lr_g=1e-3,
                betas=(0.5, 0.999), eps=1e-8, iterations=25_000, num_samples=2_500,
                threshold=3.0, init_gain=1.4, runs=5, updates="simultaneous",
                data="fresh mixture samples and fresh noise every iteration")
STD = {"ring": 0.01, "grid": 0.05}  # gdppgan_Synthetic.py lines 40, 50 (and 87, 91)

# name: how a row differs from the plain GAN (loss "bce": D's BCE, G's non-saturating loss,
# gdppgan_Synthetic.py lines 164-168 without GDPP's term, lines 171-172)
CONFIGS = {
    "GAN": dict(),
    # the notebook's G minimises -(D's loss) at the unrolled D: the saddle objective
    "Unrolled-5": dict(unroll=5, objective="saddle"),
    # no WGAN-GP code in GDPP's repository: ganlib's wgan-gp loss on the same networks,
    # GDPP's Adam and learning rates (its appendix A.1 uses them for every model), one
    # critic step (its "same training paradigm"), penalty weight 10 (Gulrajani et al.)
    "WGAN-GP": dict(loss="wgan-gp", gp_weight=10.0),
    "PacGAN2": dict(pack=2),  # 512 D inputs of m points each, as PacGAN's code feeds D
    "PacGAN4": dict(pack=4),
    "GAN+SN": dict(spectral_norm=True),  # every D layer (ganlib.lipschitz.spectral_norm)
    "GAN+R1": dict(r1_weight=1.0),  # (gamma / 2) R1 on real data, gamma = 1 (our choice)
    # not in the default table: the unrolled G with the non-saturating loss instead
    "Unrolled-5-NS": dict(unroll=5, objective="g_loss"),
    # and with G at D's learning rate (1e-4), as GAN-lr does for the plain GAN
    "Unrolled-5-lr": dict(unroll=5, objective="saddle", lr_g=1e-4),
    # and with D at G's learning rate (1e-3): at the protocol's 1e-4, D alone against a fixed
    # blur of the grid's square barely starts to tell the two apart in 25,000 iterations
    # (experiments/d_vs_blur.py)
    "Unrolled-5-dlr": dict(unroll=5, objective="saddle", lr_d=1e-3),
    # protocol details tried the other way, to explain where our rows and the papers' differ:
    # G's saturating minimax loss (the notebook's k = 0: its saddle objective without unrolling)
    "GAN-minimax": dict(loss="minimax"),
    # the plain GAN with G at D's learning rate (1e-4): Adam moves each weight by about lr a
    # step whatever the gradient's size, so G's rate bounds how still its samples can sit
    "GAN-lr": dict(lr_g=1e-4),
    # WGAN-GP with G at D's learning rate (1e-4), and with WGAN-GP's 5 critic steps
    "WGAN-GP-lr": dict(loss="wgan-gp", gp_weight=10.0, lr_g=1e-4),
    "WGAN-GP-5": dict(loss="wgan-gp", gp_weight=10.0, n_critic=5),
    # WGAN-GP-lr with the toy penalty weight of WGAN-GP's own code (gan_toy.py: LAMBDA = .1),
    # and that script's whole recipe on our networks: 5 critic steps, both rates 1e-4, Adam (0.5, 0.9)
    "WGAN-GP-lr-gp0.1": dict(loss="wgan-gp", gp_weight=0.1, lr_g=1e-4),
    "WGAN-GP-toy": dict(loss="wgan-gp", gp_weight=0.1, n_critic=5, lr_g=1e-4, betas=(0.5, 0.9)),
    # the usual PyTorch order instead of the simultaneous one: D's step, then G's against it
    "GAN-alternating": dict(updates="alternating"),
}
DEFAULT_ROWS = ["GAN", "Unrolled-5", "WGAN-GP", "PacGAN2", "PacGAN4", "GAN+SN", "GAN+R1"]
BASE = dict(loss="bce", pack=1, unroll=0, objective="g_loss", gp_weight=10.0, n_critic=1,
            spectral_norm=False, r1_weight=0.0)  # a row may also set lr_g, lr_d, betas (else PROTOCOL's)

# GDPP (Elfeki et al. 2019) Table 1, modes and % high-quality samples, means of five runs,
# no error bars; its first four rows are VEEGAN's Table 1 (Srivastava et al. 2017)
PUBLISHED = {
    "ring": {"GAN": (1.0, 99.3), "ALI": (2.8, 0.13), "Unrolled GAN": (7.6, 35.6),
             "VEEGAN": (8.0, 52.9), "WGAN-GP": (6.8, 59.6), "GDPP-GAN": (8.0, 71.7)},
    "grid": {"GAN": (3.3, 0.5), "ALI": (15.8, 1.6), "Unrolled GAN": (23.6, 16.0),
             "VEEGAN": (24.6, 40.0), "WGAN-GP": (24.2, 28.7), "GDPP-GAN": (24.8, 68.5)},
}
MATCHES = {"GAN": "GAN", "Unrolled-5": "Unrolled GAN", "WGAN-GP": "WGAN-GP",  # ours: theirs
           # the rows that try one protocol detail the other way answer the same published row
           "Unrolled-5-NS": "Unrolled GAN", "Unrolled-5-lr": "Unrolled GAN",
           "Unrolled-5-dlr": "Unrolled GAN",
           "GAN-minimax": "GAN", "GAN-alternating": "GAN", "GAN-lr": "GAN",
           "WGAN-GP-lr": "WGAN-GP", "WGAN-GP-5": "WGAN-GP",
           "WGAN-GP-lr-gp0.1": "WGAN-GP", "WGAN-GP-toy": "WGAN-GP"}
DEFAULTS = dict(iterations=PROTOCOL["iterations"], runs=PROTOCOL["runs"], eval_every=5_000,
                save_every=1_000)
QUICK = dict(iterations=20, runs=2, eval_every=10, save_every=7)
KEEP_POINTS = 500  # the first run's final points, for the chapter's scatter plots


def mixture_means(kind: str, ring: str = "gdpp") -> torch.Tensor:
    """The mixture's centres `(K, 2)`. Ring "gdpp": (sin t, cos t) at t = linspace(0, 2 pi,
    8), GDPP's and the notebook's, whose first and last coincide at (0, 1) (7 places, that
    one with twice the weight); "distinct": 8 at 45 degrees (`ganlib.mixtures`). Grid: the
    25 points of {-4, -2, 0, 2, 4}^2, the same in GDPP and ganlib."""
    if kind == "grid":
        return grid_means().double()
    if ring == "distinct":
        return ring_means(8).double()
    t = torch.linspace(0, 2 * math.pi, 8, dtype=torch.float64)
    return torch.stack([t.sin(), t.cos()], 1)


def protocol_metrics(x: torch.Tensor, means: torch.Tensor, std: float,
                     threshold: float = 3.0) -> dict:
    """GDPP's `evaluate_samples`: each point goes to its nearest centre (squared distances
    in float64, ties to the first centre, as numpy's argmin); it is high quality if within
    `threshold` standard deviations (<=); a centre is captured if a high-quality point is
    assigned to it. With the ring's coincident centres that rule can count 8 "modes" at 7
    places (points left of x = 0 at the top go to the last centre): "locations" counts the
    places. "reverse_kl" is KL(q || uniform) of the high-quality points over the K centres
    (the data are uniform over them, the ring's top place split in two halves by x's sign).
    On the grid every rule equals `ganlib.mode_metrics.mixture_metrics`'s (a test checks)."""
    d2 = ((x.double().cpu()[:, None, :] - means[None]) ** 2).sum(-1)  # (N, K)
    nearest = d2.argmin(1)  # (N,)
    high_quality = d2.gather(1, nearest[:, None]).squeeze(1).sqrt() <= threshold * std
    counts = torch.bincount(nearest[high_quality], minlength=len(means))  # (K,)
    places = torch.unique(means[counts > 0].round(decimals=6), dim=0)
    return {"modes": int((counts > 0).sum()), "locations": len(places),
            "num_modes": len(means), "high_quality_pct": 100.0 * high_quality.double().mean().item(),
            "reverse_kl": kl_to_uniform(counts) if counts.sum() > 0 else float("inf")}


class VeeganGenerator(Generator):
    """The protocol's G: z (256, N(0, I)) -> 128 -> 128 -> 2, tanh, linear output."""

    def __init__(self, latent_dim: int = 256, hidden: int = 128):
        super().__init__(latent_dim)
        self.net = nn.Sequential(nn.Linear(latent_dim, hidden), nn.Tanh(),
                                 nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, 2))

    def forward(self, z):
        return self.net(z)  # (B, 256) -> (B, 2)


class VeeganDiscriminator(nn.Module):
    """The protocol's D: 2 m -> 128 -> 128 -> 1 logit, tanh (m points when packed)."""

    def __init__(self, in_dim: int = 2, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.Tanh(),
                                 nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, x):
        return self.net(x)  # (B, in_dim) -> (B, 1)


def orthogonal_init(module: nn.Module, gain: float = 1.4) -> nn.Module:
    """Orthogonal weights scaled by `gain`, zero biases (TF's orthogonal_initializer, slim's
    default biases)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.orthogonal_(m.weight, gain)
            nn.init.zeros_(m.bias)
    return module


def build(cfg: dict):
    G = orthogonal_init(VeeganGenerator(PROTOCOL["latent_dim"], PROTOCOL["hidden"]),
                        PROTOCOL["init_gain"])
    D = orthogonal_init(VeeganDiscriminator(2 * cfg["pack"], PROTOCOL["hidden"]),
                        PROTOCOL["init_gain"])
    if cfg["spectral_norm"]:
        D = spectral_norm(D)
    if cfg["pack"] > 1:
        D = Packed(D, cfg["pack"])
    betas = cfg.get("betas", PROTOCOL["betas"])
    make = lambda net, lr: torch.optim.Adam(net.parameters(), lr=lr, betas=betas,  # noqa: E731
                                            eps=PROTOCOL["eps"])
    return G, D, make(G, cfg.get("lr_g", PROTOCOL["lr_g"])), make(D, cfg.get("lr_d", PROTOCOL["lr_d"]))


def train_step(G, D, opt_G, opt_D, loss, cfg: dict, means: torch.Tensor, std: float):
    """One iteration: G's step against D as it is now (unrolled when cfg["unroll"] > 0),
    then D's normal step on the same batch and the same (pre-update) fakes: the two
    updates of one `sess.run([g_train_op, d_train_op])`. Returns (d_loss, g_loss)."""
    n = PROTOCOL["batch_size"] * cfg["pack"]  # 512 D inputs of `pack` points each
    for _ in range(cfg["n_critic"] - 1):  # extra critic steps, if asked
        x_real = sample_mixture(means, n, std)[0]
        d_step(D, opt_D, loss, x_real, G(G.sample_z(n)).detach(), gp_weight=cfg["gp_weight"],
               r1_weight=cfg["r1_weight"])
    x_real = sample_mixture(means, n, std)[0]  # (n, 2), fresh every iteration
    x_fake = G(G.sample_z(n))                   # (n, 256) -> (n, 2), graph to G
    if cfg.get("updates") == "alternating":  # D first, then G against the updated D
        d_loss = d_step(D, opt_D, loss, x_real, x_fake.detach(), gp_weight=cfg["gp_weight"],
                        r1_weight=cfg["r1_weight"])[0]
        return d_loss, g_step(D, opt_G, loss, x_fake)
    if cfg["unroll"]:
        g_loss = unrolled_g_step(D, opt_G, opt_D, loss, x_real, x_fake, cfg["unroll"],
                                 cfg["objective"])
    else:
        g_loss = g_step(D, opt_G, loss, x_fake)
    d_loss = d_step(D, opt_D, loss, x_real, x_fake.detach(), gp_weight=cfg["gp_weight"],
                    r1_weight=cfg["r1_weight"])[0]
    return d_loss, g_loss


def train_run(kind: str, name: str, seed: int, iterations: int, ring: str, eval_every: int,
              save_every: int, ckpt: Path | None, stop_at: int | None = None,
              deadline: float | None = None) -> dict | None:
    """Train and measure one run; None if it stopped unfinished (saved in `ckpt`)."""
    cfg = {**BASE, **CONFIGS[name]}
    settings = {"kind": kind, "row": name, "seed": seed, "iterations": iterations,
                "ring_means": ring if kind == "ring" else None, **cfg}
    means, std = mixture_means(kind, ring), STD[kind]
    torch.manual_seed(seed)
    G, D, opt_G, opt_D = build(cfg)
    loss = get_loss(cfg["loss"])
    z_eval = torch.randn(PROTOCOL["num_samples"], PROTOCOL["latent_dim"],  # fixed per run
                         generator=torch.Generator().manual_seed(10_000 + seed))
    step, seconds, evals = 0, 0.0, {}
    if ckpt is not None and ckpt.exists():
        state = load_checkpoint(ckpt)
        if state["settings"] != settings:
            raise SystemExit(f"{ckpt} was written with other settings ({state['settings']}); "
                             "delete it or use another --checkpoints folder")
        if state.get("result") is not None:
            return state["result"]
        for obj, key in ((G, "G"), (D, "D"), (opt_G, "opt_G"), (opt_D, "opt_D")):
            obj.load_state_dict(state[key])
        torch.set_rng_state(state["rng"])
        step, seconds, evals = state["step"], state["seconds"], state["evals"]

    def save(result=None):
        if ckpt is not None:
            save_checkpoint(ckpt, settings=settings, G=G.state_dict(), D=D.state_dict(),
                            opt_G=opt_G.state_dict(), opt_D=opt_D.state_dict(),
                            rng=torch.get_rng_state(), step=step, seconds=seconds,
                            evals=evals, result=result)

    means32, start = means.float(), time.perf_counter()
    while step < iterations:
        if (stop_at is not None and step >= stop_at) or (deadline and time.perf_counter() > deadline):
            seconds += time.perf_counter() - start
            save()
            return None
        d_loss, g_loss = train_step(G, D, opt_G, opt_D, loss, cfg, means32, std)
        step += 1
        if step % eval_every == 0 or step == iterations:
            with torch.no_grad():
                m = protocol_metrics(G(z_eval), means, std, PROTOCOL["threshold"])
            evals[str(step)] = {**m, "d_loss": d_loss.item(), "g_loss": g_loss.item()}
        if step % save_every == 0 and step < iterations and ckpt is not None:
            elapsed, start = time.perf_counter() - start, time.perf_counter()
            seconds += elapsed
            save()
    seconds += time.perf_counter() - start
    with torch.no_grad():
        x = G(z_eval)  # (2500, 2)
    result = {"seed": seed, **protocol_metrics(x, means, std, PROTOCOL["threshold"]),
              "seconds": round(seconds, 1), "by_step": evals,
              "points": [[round(v, 3) for v in p] for p in x[:KEEP_POINTS].tolist()]}
    save(result)
    return result


def finished(ckpt: Path) -> bool:
    """Whether the run kept in `ckpt` has its final numbers."""
    return ckpt.exists() and load_checkpoint(ckpt).get("result") is not None


def section(kind, rows, runs, iterations, ring, eval_every, quick, started, in_progress) -> dict:
    out_rows = {}
    for name, results in rows.items():
        if not results:
            continue  # no finished run yet: in_progress says how far its runs are
        out_rows[name] = {
            "settings": {**BASE, **CONFIGS[name]},
            "summary": summarize(results, ["modes", "locations", "high_quality_pct", "reverse_kl"])
            if results else {},
            "runs": [{k: v for k, v in r.items() if k != "points" or i == 0}  # points: run 0
                     for i, r in enumerate(results)],
            "seconds": round(sum(r["seconds"] for r in results), 1)}
    budget = "quick" if quick else ("full" if iterations == PROTOCOL["iterations"]
                                    and runs >= PROTOCOL["runs"] else "reduced")
    return {"kind": kind, "protocol": {**PROTOCOL, "iterations": iterations, "runs": runs,
                                       "std": STD[kind], "ring_means": ring if kind == "ring" else None,
                                       "means": mixture_means(kind, ring).round(decimals=6).tolist(),
                                       "eval_every": eval_every,
                                       "source": "M-Elfeki/GDPP gdppgan_Synthetic.py; "
                                                 "poolio/unrolled_gan (experiments/README.md)"},
            "budget": budget, "device": "cpu", "torch": torch.__version__, **stamp(started),
            "wall_seconds": round(sum(r["seconds"] for r in out_rows.values()), 1),
            "rows": out_rows, "in_progress": in_progress,
            "published": {row: {"modes": m, "high_quality_pct": hq}
                          for row, (m, hq) in PUBLISHED[kind].items()},
            "published_source": "GDPP (Elfeki et al. 2019) Table 1; its GAN, ALI, Unrolled GAN "
                                "and VEEGAN rows are VEEGAN's Table 1 (Srivastava et al. 2017)",
            "matches": MATCHES}


def with_other_rows(path: Path, new: dict) -> dict:
    """`new` (a section) plus the rows of the section already in `path` that this command
    did not run, when that section has the same protocol: `--only GAN` then `--only WGAN-GP`
    build one table. The budget is the weakest of the rows'."""
    old = json.loads(path.read_text()).get(new["kind"]) if path.exists() else None
    if not old or old.get("protocol") != json.loads(json.dumps(new["protocol"])):  # as stored
        return new
    rows = {**{k: v for k, v in old["rows"].items() if k not in new["rows"]}, **new["rows"]}
    ran = {*new["rows"], *(k.rsplit(" run ", 1)[0] for k in new["in_progress"])}
    order = [name for name in CONFIGS if name in rows]
    budgets = {"full": 2, "reduced": 1, "quick": 0}
    return {**new, "rows": {name: rows[name] for name in order},
            "budget": min(old["budget"], new["budget"], key=budgets.get),
            "in_progress": {**{k: v for k, v in old.get("in_progress", {}).items()
                               if k.rsplit(" run ", 1)[0] not in ran}, **new["in_progress"]},
            "wall_seconds": round(sum(r["seconds"] for r in rows.values()), 1)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("kind", choices=("ring", "grid"))
    p.add_argument("--runs", type=int, help=f"runs (seeds) per row (default {PROTOCOL['runs']})")
    p.add_argument("--iterations", type=int, help=f"default {PROTOCOL['iterations']:,}")
    p.add_argument("--only", nargs="*", choices=list(CONFIGS), help=f"rows (default: "
                   f"{' '.join(DEFAULT_ROWS)})")
    p.add_argument("--ring-means", choices=("gdpp", "distinct"), default="gdpp",
                   help="gdpp: linspace(0, 2 pi, 8), two centres coincide; distinct: 8 at 45 degrees")
    p.add_argument("--eval-every", type=int, help="measure every this many iterations "
                   f"(default {DEFAULTS['eval_every']:,})")
    p.add_argument("--save-every", type=int, help="checkpoint every this many iterations "
                   f"(default {DEFAULTS['save_every']:,})")
    p.add_argument("--seed", type=int, default=0, help="run i uses seed + i")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--quick", action="store_true", help="a smoke test: 2 runs of 20 iterations "
                   "(flags given explicitly still win)")
    p.add_argument("--out", type=Path, default=RESULTS, help="JSON file whose section to replace")
    p.add_argument("--checkpoints", type=Path, help="folder for each run's checkpoint: the same "
                   "command run again goes on from there")
    p.add_argument("--max-minutes", type=float, help="stop after this long (needs --checkpoints)")
    p.add_argument("--stop-at", type=int, help="stop each run after this iteration (needs --checkpoints)")
    p.add_argument("--poll", type=float, default=30.0, help="seconds between looks at runs "
                   "that another process holds")
    p.add_argument("--no-wait", action="store_true", help="leave the runs another process "
                   "holds to it (it writes the table once they are done) and go on")
    args = p.parse_args(argv)
    if (args.max_minutes or args.stop_at) and not args.checkpoints:
        p.error("--max-minutes and --stop-at need --checkpoints DIR, where the runs are kept")
    torch.set_num_threads(args.threads)
    torch.set_default_dtype(torch.float32)
    for key, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    started = time.perf_counter()
    deadline = started + 60 * args.max_minutes if args.max_minutes else None
    names = args.only or DEFAULT_ROWS
    tag = "grid" if args.kind == "grid" else f"ring-{args.ring_means}"  # checkpoint names
    results, in_progress, held = {name: {} for name in names}, {}, []
    if args.checkpoints:
        args.checkpoints.mkdir(parents=True, exist_ok=True)

    def rows():  # each row's finished runs, in run order
        return {name: [runs[i] for i in sorted(runs)] for name, runs in results.items()}

    def write():
        for name, i, ckpt in held:  # runs another process held: read back those it has finished since
            if i not in results[name] and finished(ckpt):
                results[name][i] = load_checkpoint(ckpt)["result"]
                in_progress.pop(f"{name} run {i}", None)
        write_section(args.out, args.kind, with_other_rows(args.out, section(
            args.kind, rows(), args.runs, args.iterations, args.ring_means, args.eval_every,
            args.quick, started, in_progress)))

    def run(name, i, ckpt):
        """Train (or read back) run i of row `name`; False if another process holds it."""
        lock = ckpt.with_suffix(".lock") if ckpt else None
        claimed = lock is not None and claim_lock(lock)
        if lock and not claimed and not finished(ckpt):  # held by a living process
            in_progress[f"{name} run {i}"] = load_checkpoint(ckpt)["step"] if ckpt.exists() else 0
            return False
        try:  # a finished run is read back from its checkpoint by train_run
            r = train_run(args.kind, name, args.seed + i, args.iterations, args.ring_means,
                          args.eval_every, args.save_every, ckpt, args.stop_at, deadline)
        finally:
            if claimed:
                release_lock(lock)
        in_progress.pop(f"{name} run {i}", None)
        if r is None:
            in_progress[f"{name} run {i}"] = load_checkpoint(ckpt)["step"]
            return True
        results[name][i] = r
        print(f"{args.kind} {name:14s} run {i}: modes {r['modes']} ({r['locations']} places)  "
              f"hq {r['high_quality_pct']:.1f}%  kl {r['reverse_kl']:.2f}  "
              f"({r['seconds']:.0f} s)", flush=True)
        write()
        return True

    for name in names:
        for i in range(args.runs):
            ckpt = args.checkpoints / f"{tag}-{name}-run{i}.pt" if args.checkpoints else None
            if not run(name, i, ckpt):
                held.append((name, i, ckpt))
    # runs another process holds (the same command in a second shell shares the runs): read
    # back those it has finished, take over one whose process died, and wait for the rest,
    # unless asked to stop early or not to wait
    while held:
        held = [(name, i, ckpt) for name, i, ckpt in held if not run(name, i, ckpt)]
        if not held or args.stop_at or args.max_minutes or args.no_wait:
            break
        print(f"waiting for {len(held)} run(s) held by another process: "
              f"{held[0][0]} run {held[0][1]} ...", flush=True)
        time.sleep(args.poll)
    write()
    if in_progress:
        print(f"unfinished: {in_progress}; run the same command again to go on", flush=True)
    return rows()


if __name__ == "__main__":
    main()
