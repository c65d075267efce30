"""The experiment scripts whose result files the book reads: every command of
`experiments/run_all.py` names a script that exists, the long mode-collapse commands run
(as a smoke test), and the committed result files hold what those commands write."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import ganlib
from ganlib.losses import bce_d_loss

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"
sys.path.insert(0, str(EXPERIMENTS))

import losses as losses_experiment  # noqa: E402
import mode_collapse  # noqa: E402
import run_all  # noqa: E402
import wgan as wgan_experiment  # noqa: E402


def hold_lock(lock: Path) -> subprocess.Popen:
    """A living process that holds `lock` (record.claim_lock), returned once it holds it."""
    code = ("import sys, time; sys.path.insert(0, sys.argv[1]); from record import claim_lock; "
            "assert claim_lock(sys.argv[2]); print('held', flush=True); time.sleep(60)")
    other = subprocess.Popen([sys.executable, "-c", code, str(EXPERIMENTS), str(lock)],
                             stdout=subprocess.PIPE, text=True)
    assert other.stdout.readline().strip() == "held"
    return other


def option(args: list[str], flag: str) -> list[str]:
    """The values after `flag` in an argument list, up to the next flag."""
    if flag not in args:
        return []
    rest = args[args.index(flag) + 1:]
    stop = next((i for i, a in enumerate(rest) if a.startswith("--")), len(rest))
    return rest[:stop]


def long_commands() -> list[list[str]]:
    return [args for script, args in run_all.COMMANDS
            if script == "mode_collapse.py" and option(args, "--out") == [run_all.LONG_OUT]]


def test_every_command_names_an_existing_script_and_none_is_left_out():
    assert all((EXPERIMENTS / script).is_file() for script, _ in run_all.COMMANDS)
    assert run_all.unlisted() == []


def test_the_long_mode_collapse_commands_run(tmp_path):
    commands = long_commands()
    assert {args[0] for args in commands} == {"ring", "grid"}
    out = tmp_path / "long.json"
    for args in commands:  # --quick: 2 trials of 30 steps; the last --out wins
        mode_collapse.main([*args, "--quick", "--out", str(out),
                            "--threads", str(torch.get_num_threads())])
    results = json.loads(out.read_text())
    for args in commands:
        sec = results[args[0]]
        assert list(sec["rows"]) == option(args, "--only")
        assert sec["trials"] == 2 and sec["steps"] == 30 and sec["budget"] == "quick"
        for row in sec["rows"].values():
            assert len(row["metrics"]) == 2 and len(row["by_step"]) == 10


def test_the_committed_long_results_are_what_the_commands_write():
    path = ROOT / run_all.LONG_OUT
    if not path.exists():
        pytest.skip(f"{run_all.LONG_OUT} has not been computed")
    results = json.loads(path.read_text())
    for args in long_commands():
        sec = results[args[0]]
        assert sec["trials"] == int(option(args, "--trials")[0])
        assert sec["steps"] == int(option(args, "--steps")[0])
        assert sec["lr"] == float(option(args, "--lr")[0])
        assert sec["budget"] == "full" and list(sec["rows"]) == option(args, "--only")
        for row in sec["rows"].values():
            assert len(row["metrics"]) == sec["trials"]
            assert row["settings"]["steps"] == sec["steps"]


def test_a_chunked_pacgan_run_equals_an_uninterrupted_one(tmp_path):
    # PacGAN's protocol in three chunks (stopped at steps 7 and 16, as a run of ~10 minutes
    # on a GPU would be): the same rows, measurements and losses as one run, and each
    # section records where it ran
    args = ["ring", "--protocol", "pacgan", "--quick", "--only", "GAN", "PacGAN2",
            "--threads", str(torch.get_num_threads())]
    mode_collapse.main([*args, "--out", str(tmp_path / "whole.json")])
    chunked = [*args, "--out", str(tmp_path / "chunks.json"), "--checkpoints", str(tmp_path / "ck")]
    mode_collapse.main([*chunked, "--stop-at", "7"])
    part = json.loads((tmp_path / "chunks.json").read_text())["ring"]
    assert part["in_progress"] == {"GAN": 7} and part["rows"] == {}
    mode_collapse.main([*chunked, "--stop-at", "16"])  # GAN: 7 -> 16
    mode_collapse.main(chunked)  # GAN to the end, then PacGAN2 whole
    whole = json.loads((tmp_path / "whole.json").read_text())["ring"]
    end = json.loads((tmp_path / "chunks.json").read_text())["ring"]
    assert end["in_progress"] == {} and list(end["rows"]) == ["GAN", "PacGAN2"]
    for name in ("GAN", "PacGAN2"):
        a, b = whole["rows"][name], end["rows"][name]
        for key in ("metrics", "by_step", "history", "samples", "summary", "settings"):
            assert a[key] == b[key], (name, key)
        assert b["settings"]["updates"] == "simultaneous" and b["settings"]["real_tuples"]
        assert sorted(b["by_step"], key=int) == ["10", "20", "30"]  # --quick: every 10 steps
    for key in ("machine", "versions", "date", "wall_seconds"):  # the one record (record.py)
        assert key in end
    assert end["versions"]["torch"] == torch.__version__ and end["protocol"]["batchnorm"] == "pacgan"
    with pytest.raises(SystemExit):  # stopping needs somewhere to keep the run
        mode_collapse.main([*args, "--stop-at", "3", "--out", str(tmp_path / "x.json")])


def test_every_committed_result_file_has_the_one_record():
    import record
    for path in sorted((EXPERIMENTS / "results").glob("*.json")):
        results = json.loads(path.read_text())
        sections = [results] if "machine" in results else results.values()
        for sec in sections:
            assert set(sec["machine"]) == {"cpu", "threads", "cuda"}, path.name
            assert set(sec["versions"]) == {"python", "torch", "ganlib"}, path.name
            assert sec["wall_seconds"] > 0 and sec["date"] and record.describe(sec)


@pytest.mark.parametrize("script", [losses_experiment, wgan_experiment], ids=["losses", "wgan"])
def test_the_chapter_experiments_write_their_ring_section(script, tmp_path):
    """`experiments/losses.py ring --quick` and `experiments/wgan.py ring --quick` run end to
    end and write a section in the schema the chapters read (the settings record the
    placeholders "<seed>" beside a real TrainConfig's fields)."""
    out = tmp_path / "results.json"
    script.main(["ring", "--quick", "--seeds", "1", "--steps", "3", "--out", str(out)])
    sec = json.loads(out.read_text())["ring"]
    assert sec["budget"]["name"] == "quick" and sec["budget"]["steps"] == 3
    assert {"machine", "versions", "date", "wall_seconds"} <= sec.keys()
    configs = sec["settings"]["train_config"]
    configs = configs.values() if "seed" not in configs else [configs]
    assert all(c["seed"] == "<seed>" and c["num_steps"] == 3 for c in configs)
    assert sec["runs"] and all(0 <= r["metrics"]["modes"] <= 8 for r in sec["runs"])


# experiments/veegan.py: the VEEGAN/GDPP 2-D protocol (chapter 6)

def test_the_veegan_protocol_runs_quickly_and_writes_its_section(tmp_path):
    import veegan
    out = tmp_path / "veegan.json"
    veegan.main(["ring", "--quick", "--only", "GAN", "Unrolled-5", "WGAN-GP", "PacGAN2",
                 "GAN+SN", "GAN+R1", "--out", str(out)])
    sec = json.loads(out.read_text())["ring"]
    assert sec["budget"] == "quick" and sec["protocol"]["iterations"] == 20
    assert sec["protocol"]["batch_size"] == 512 and sec["protocol"]["latent_dim"] == 256
    assert {"machine", "versions", "date", "wall_seconds"} <= sec.keys()
    assert list(sec["rows"]) == ["GAN", "Unrolled-5", "WGAN-GP", "PacGAN2", "GAN+SN", "GAN+R1"]
    assert sec["rows"]["Unrolled-5"]["settings"]["unroll"] == 5
    for row in sec["rows"].values():
        assert len(row["runs"]) == 2 and row["summary"]["modes"]["n"] == 2
        for run in row["runs"]:
            assert 0 <= run["locations"] <= run["modes"] <= 8 and run["locations"] <= 7
            assert sorted(run["by_step"], key=int) == ["10", "20"]
        assert len(row["runs"][0]["points"]) == 500 and "points" not in row["runs"][1]
    assert sec["published"]["Unrolled GAN"] == {"modes": 7.6, "high_quality_pct": 35.6}
    assert sec["matches"]["Unrolled-5"] == "Unrolled GAN"


def test_veegan_rows_run_by_separate_commands_build_one_table(tmp_path):
    import veegan
    out, quick = tmp_path / "veegan.json", ["grid", "--quick", "--runs", "1"]
    veegan.main([*quick, "--only", "WGAN-GP", "--out", str(out)])
    veegan.main([*quick, "--only", "GAN", "--out", str(out)])
    first = json.loads(out.read_text())["grid"]
    assert list(first["rows"]) == ["GAN", "WGAN-GP"]  # the table's order, both kept
    veegan.main([*quick, "--only", "GAN", "--iterations", "10", "--out", str(out)])
    other = json.loads(out.read_text())["grid"]  # another protocol: a new table
    assert list(other["rows"]) == ["GAN"] and other["protocol"]["iterations"] == 10


def test_a_resumed_veegan_run_equals_an_uninterrupted_one(tmp_path):
    import veegan
    args = ["grid", "--quick", "--only", "Unrolled-5", "GAN+SN", "--runs", "1"]
    veegan.main([*args, "--out", str(tmp_path / "whole.json")])
    chunked = [*args, "--out", str(tmp_path / "chunks.json"), "--checkpoints", str(tmp_path / "ck")]
    veegan.main([*chunked, "--stop-at", "9"])  # between two saves (every 7 when quick)
    part = json.loads((tmp_path / "chunks.json").read_text())["grid"]
    assert part["in_progress"] == {"Unrolled-5 run 0": 9, "GAN+SN run 0": 9}
    assert part["rows"] == {}  # a row is written once a run has finished
    veegan.main(chunked)
    veegan.main(chunked)  # finished runs are read back, not trained again
    whole = json.loads((tmp_path / "whole.json").read_text())["grid"]["rows"]
    end = json.loads((tmp_path / "chunks.json").read_text())["grid"]
    assert end["in_progress"] == {}
    for name in ("Unrolled-5", "GAN+SN"):
        for a, b in zip(whole[name]["runs"], end["rows"][name]["runs"], strict=True):
            assert {k: v for k, v in a.items() if k != "seconds"} == \
                   {k: v for k, v in b.items() if k != "seconds"}
    with pytest.raises(SystemExit):  # stopping needs somewhere to keep the run
        veegan.main([*args, "--stop-at", "3", "--out", str(tmp_path / "x.json")])


def test_veegan_runs_held_by_another_process_are_waited_for_or_taken_over(tmp_path):
    import veegan
    ck, out = tmp_path / "ck", tmp_path / "v.json"
    ck.mkdir()
    args = ["grid", "--quick", "--only", "GAN", "--runs", "2", "--out", str(out),
            "--checkpoints", str(ck), "--poll", "0.2"]
    other = hold_lock(ck / "grid-GAN-run1.lock")
    try:  # another living process holds run 1: stopping early skips it and says so
        veegan.main([*args, "--stop-at", "20"])
        sec = json.loads(out.read_text())["grid"]
        assert len(sec["rows"]["GAN"]["runs"]) == 1 and sec["in_progress"] == {"GAN run 1": 0}
        assert not (ck / "grid-GAN-run0.lock").exists()  # released once trained
        veegan.main([*args, "--no-wait"])  # goes on without waiting, and says what is left
        assert json.loads(out.read_text())["grid"]["in_progress"] == {"GAN run 1": 0}
    finally:
        other.kill()
        other.wait()
    assert (ck / "grid-GAN-run1.lock").exists()  # the dead owner's file stays; its lock does not
    veegan.main(args)  # its owner died: the run is taken over, and the table completes
    sec = json.loads(out.read_text())["grid"]
    assert [r["seed"] for r in sec["rows"]["GAN"]["runs"]] == [0, 1] and sec["in_progress"] == {}
    assert not list(ck.glob("*.lock"))


def test_a_veegan_write_keeps_the_runs_another_process_finished_meanwhile(tmp_path, monkeypatch):
    # run 0 is held by another process, which finishes it while this one trains run 1: the
    # file written after run 1 holds both (it held only run 1, until this process ended)
    import veegan
    ck, out = tmp_path / "ck", tmp_path / "v.json"
    ck.mkdir()
    real, seen = veegan.train_run, {}

    def train_run(kind, name, seed, iterations, ring, eval_every, save_every, ckpt, *rest):
        if seed == 1:  # meanwhile the other process finishes run 0
            real(kind, name, 0, iterations, ring, eval_every, save_every, ck / "grid-GAN-run0.pt")
        if seed == 2:  # the file as written after run 1
            seen.update(json.loads(out.read_text())["grid"])
        return real(kind, name, seed, iterations, ring, eval_every, save_every, ckpt, *rest)

    monkeypatch.setattr(veegan, "train_run", train_run)
    other = hold_lock(ck / "grid-GAN-run0.lock")
    try:
        veegan.main(["grid", "--quick", "--only", "GAN", "--runs", "3", "--out", str(out),
                     "--checkpoints", str(ck), "--no-wait"])
    finally:
        other.kill()
        other.wait()
    assert [r["seed"] for r in seen["rows"]["GAN"]["runs"]] == [0, 1] and seen["in_progress"] == {}
    final = json.loads(out.read_text())["grid"]
    assert [r["seed"] for r in final["rows"]["GAN"]["runs"]] == [0, 1, 2] and final["in_progress"] == {}


def test_the_veegan_metrics_are_gdpps_rule():
    import veegan
    from ganlib.mode_metrics import mixture_metrics
    g = torch.Generator().manual_seed(0)
    means = veegan.mixture_means("grid")
    x = means[torch.randint(25, (2500,), generator=g)] + 0.1 * torch.randn(2500, 2, generator=g)
    ours, ganlib_metrics = veegan.protocol_metrics(x, means, 0.05), mixture_metrics(x, "grid")
    for key in ("modes", "num_modes", "high_quality_pct", "reverse_kl"):
        assert ours[key] == pytest.approx(ganlib_metrics[key], rel=1e-12), key
    # the ring's centres are linspace(0, 2 pi, 8): the first and last coincide at (0, 1), and
    # GDPP's exact differences send x < 0 to the last, x > 0 to the first
    ring = veegan.mixture_means("ring")
    assert torch.allclose(ring[0], ring[7]) and len(torch.unique(ring.round(decimals=6), dim=0)) == 7
    top = torch.tensor([[0.001, 1.0], [-0.001, 1.0], [0.0, 1.1]])
    m = veegan.protocol_metrics(top, ring, 0.01)
    assert (m["modes"], m["locations"], m["num_modes"]) == (2, 1, 8)
    assert m["high_quality_pct"] == pytest.approx(200 / 3)
    assert veegan.protocol_metrics(top[2:], ring, 0.01)["reverse_kl"] == float("inf")
    distinct = veegan.mixture_means("ring", "distinct")
    assert len(torch.unique(distinct.round(decimals=6), dim=0)) == 8


def test_veegan_rows_that_try_a_protocol_detail_the_other_way():
    import veegan
    from ganlib.losses import get_loss
    means, loss = veegan.mixture_means("ring").float(), get_loss("bce")

    def one_iteration(name):
        cfg = {**veegan.BASE, **veegan.CONFIGS[name]}
        torch.manual_seed(0)
        G, D, opt_G, opt_D = veegan.build(cfg)
        d_loss, g_loss = veegan.train_step(G, D, opt_G, opt_D, get_loss(cfg["loss"]), cfg, means, 0.01)
        return cfg, G, D, opt_G

    cfg, G_sim, D_sim, _ = one_iteration("GAN")
    _, G_alt, D_alt, _ = one_iteration("GAN-alternating")
    # the same D update (same batch, same fakes); G's differs: it steps against the updated D
    for a, b in zip(D_sim.parameters(), D_alt.parameters()):
        assert torch.equal(a, b)
    assert any(not torch.equal(a, b) for a, b in zip(G_sim.parameters(), G_alt.parameters()))
    # the saturating loss and G's own learning rate are the settings they say
    assert one_iteration("GAN-minimax")[0]["loss"] == "minimax"
    _, _, _, opt_G = one_iteration("WGAN-GP-lr")
    assert opt_G.param_groups[0]["lr"] == 1e-4 and veegan.PROTOCOL["lr_g"] == 1e-3
    G, D, opt_G, opt_D = veegan.build({**veegan.BASE, **veegan.CONFIGS["Unrolled-5-dlr"]})
    assert opt_D.param_groups[0]["lr"] == 1e-3 == opt_G.param_groups[0]["lr"]
    assert veegan.PROTOCOL["lr_d"] == 1e-4
    # WGAN-GP's toy recipe: its penalty, critic steps, rates and Adam betas
    cfg, _, _, opt_G = one_iteration("WGAN-GP-toy")
    assert (cfg["gp_weight"], cfg["n_critic"], opt_G.param_groups[0]["lr"]) == (0.1, 5, 1e-4)
    assert opt_G.param_groups[0]["betas"] == (0.5, 0.9) and veegan.PROTOCOL["betas"] == (0.5, 0.999)
    assert one_iteration("WGAN-GP-lr-gp0.1")[0]["gp_weight"] == 0.1
    assert veegan.MATCHES["WGAN-GP-lr"] == "WGAN-GP" and veegan.MATCHES["GAN-alternating"] == "GAN"


def test_d_vs_blur_records_a_curve_per_rate_and_seed(tmp_path):
    import d_vs_blur
    out = tmp_path / "d.json"
    runs = d_vs_blur.main(["--quick", "--out", str(out)])  # 1 seed of 40 steps per rate
    rec = json.loads(out.read_text())
    assert rec["quick"] and [r["lr"] for r in rec["runs"]] == [1e-4, 1e-3] == rec["budget"]["lrs"]
    assert all(list(r["curve"]) == ["20", "40"] for r in rec["runs"])
    assert rec["runs"] == json.loads(json.dumps(runs))
    again = d_vs_blur.train(1e-4, 0, 40, 20)  # one seed decides D's weights and every batch
    assert again["curve"] == runs[0]["curve"]
    # a D that says nothing (logit 0 everywhere) scores chance, 2 log 2; the blur fills the square
    zeros = torch.zeros(10_000, 1)  # (n, 1) logits
    assert bce_d_loss(zeros, zeros).item() == pytest.approx(rec["chance_loss"])
    x = d_vs_blur.blur(10_000)
    assert x.abs().max() <= 5 and x.abs().max() > 4.99 and abs(x.mean()) < 0.1
    assert d_vs_blur.first_below({"20": {"loss": 1.4}, "40": {"loss": 1.0}, "60": {"loss": 0.5}}, 1.2) == 40
    assert d_vs_blur.first_below({"20": {"loss": 1.4}}, 1.2) is None
    with pytest.raises(SystemExit):
        d_vs_blur.main(["--seeds", "0", "--out", str(out)])


def test_run_store_claims_once_and_takes_over_a_dead_owners_lock(tmp_path):
    from record import RunStore
    store = RunStore(tmp_path, key="k")
    assert store.claim("a") and not store.claim("a")  # our own living lock holds it
    (tmp_path / "k-b.lock").write_text("999999999")  # a file nobody holds, from a dead process
    assert store.claim("b")
    other = hold_lock(tmp_path / "k-c.lock")  # a living process holds c, until it dies
    try:
        assert not store.claim("c") and not RunStore(tmp_path, key="k").claim("c")
    finally:
        other.kill()
        other.wait()
    assert store.claim("c")
    # a file naming a living process that holds no lock (a dead owner's id, since reused) is free
    (tmp_path / "k-d.lock").write_text(str(os.getppid()))
    assert store.claim("d")
    store.put("a", {"x": 1})
    assert not store.claim("a") and store.get("a") == {"x": 1}
    assert not (tmp_path / "k-a.lock").exists()
    assert RunStore(tmp_path, key="other").get("a") is None  # other settings: retrained


def test_sections_written_by_two_processes_at_once_are_all_kept(tmp_path):
    # veegan.py's ring and grid, run in two shells, write their sections of one file
    import subprocess
    path = tmp_path / "r.json"
    code = ("import sys, pathlib; sys.path.insert(0, sys.argv[1]); from record import write_section\n"
            "d = pathlib.Path(sys.argv[2]).parent; (d / sys.argv[3]).touch()\n"
            "while not all((d / t).exists() for t in ('ring', 'grid')): pass  # start together\n"
            "for i in range(150): write_section(sys.argv[2], f'{sys.argv[3]}{i}', {'i': i})")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(EXPERIMENTS), str(path), tag])
             for tag in ("ring", "grid")]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    assert sorted(json.loads(path.read_text())) == sorted(f"{t}{i}" for t in ("ring", "grid") for i in range(150))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid", "r.json", "ring"]  # nothing left behind


def test_a_stored_mnist_experiment_equals_one_without_a_store(tmp_path, monkeypatch):
    # The runs kept in --store (resume, processes sharing seeds) must give the same section.
    calls = []
    real = losses_experiment.train_mnist
    monkeypatch.setattr(losses_experiment, "train_mnist",
                        lambda *a, **k: calls.append(a[:2]) or real(*a, **k))
    x = torch.rand(64, 1, 28, 28) * 2 - 1
    data = ganlib.ImageData(x, torch.zeros(64, dtype=torch.long), "random", "random images")
    monkeypatch.setattr(losses_experiment.ganlib, "load_dataset", lambda *a, **k: data)
    args = ["mnist", "--quick", "--steps", "2", "--seeds", "1", "--n-eval", "64", "--threads", "1"]
    plain, stored = tmp_path / "plain.json", tmp_path / "stored.json"
    losses_experiment.main([*args, "--out", str(plain)])
    losses_experiment.main([*args, "--out", str(stored), "--store", str(tmp_path / "runs")])
    assert len(calls) == 4
    losses_experiment.main([*args, "--out", str(stored), "--store", str(tmp_path / "runs")])
    assert len(calls) == 4  # the second time every run came from the store
    a, b = (json.loads(p.read_text())["mnist"] for p in (plain, stored))
    for ra, rb in zip(a["runs"], b["runs"]):
        assert ra["metrics"] == rb["metrics"] and ra["curve"] == rb["curve"]
