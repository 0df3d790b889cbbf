"""Packed training (``pack=k``, ``dislab.pack``): a group's models equal their single runs (float64 weights within
1e-12, the same logged steps and values; float32 losses within 1e-5), every packable method; a group resumes
exactly after it is killed; a model whose step is not finite is left alone and stopped without touching the
others; the sweep packs groups and runs the jobs that cannot be packed alone."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import FAST, TINY, compose

ROOT = Path(__file__).resolve().parents[1]
BASE = [*FAST, "steps=6", "+trainer.log_every_n_steps=2", "checkpoint_every=4", "metrics_every=3"]


def _history(run_dir) -> dict[int, dict[str, float]]:
    with open(Path(run_dir) / "history.csv", newline="") as f:
        return {int(r.pop("step")): {k: float(v) for k, v in r.items() if v} for r in csv.DictReader(f)}


def _weights(run_dir) -> dict:
    return torch.load(Path(run_dir) / "checkpoints/last.ckpt", map_location="cpu", weights_only=True)["state_dict"]


def _group(root, jobs, extra) -> list[tuple]:
    """The jobs ``[[override, ...], ...]`` of one packed group, job i in ``root/i``."""
    return [(compose([*BASE, *extra, *o, f"run_dir={root / str(i)}"]), None) for i, o in enumerate(jobs)]


def _single_and_packed(tmp_path, jobs, extra):
    from dislab.pack.run import run_group
    from dislab.train import run

    for i, o in enumerate(jobs):
        run(compose([*BASE, *extra, *o, f"run_dir={tmp_path / 'single' / str(i)}"]))
    out = run_group(_group(tmp_path / "packed", jobs, extra))
    assert all(isinstance(r, dict) for r in out), out
    return [(tmp_path / "single" / str(i), tmp_path / "packed" / str(i)) for i in range(len(jobs))]


METHODS = [["model=vae"], ["model=beta_vae", "beta=4"], ["model=annealed_vae", "model.c_max=5", "model.c_steps=3"],
           ["model=beta_tcvae", "beta=6"], ["model=factor_vae", "model.gamma=20"],
           ["model=dip_vae_i", "model.lambda_od=5"], ["model=dip_vae_ii", "model.lambda_od=2"]]


def test_every_packable_method_packed_equals_its_single_runs_in_float64(tmp_path):
    """Two seeds of each method in one group of 14 (seven lanes): weights, every logged value and the metrics."""
    jobs = [[*m, f"seed={s}"] for m in METHODS for s in (0, 1)]
    for single, packed in _single_and_packed(tmp_path, jobs, ["+trainer.precision=64-true"]):
        a, b = _weights(single), _weights(packed)
        assert a.keys() == b.keys()
        assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-12, single
        ha, hb = _history(single), _history(packed)
        assert ha.keys() == hb.keys() and {0, 1, 3, 5, 6} == set(ha), (sorted(ha), sorted(hb))
        for step in ha:
            assert ha[step].keys() == hb[step].keys(), step
            for key, v in ha[step].items():
                assert hb[step][key] == pytest.approx(v, rel=1e-9, abs=1e-12), (single, step, key)
        ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (single, packed))
        assert mb["metrics"] == pytest.approx(ma["metrics"], rel=1e-9) and mb["untrained"] == ma["untrained"]
        assert mb["packed"]["group"][0].endswith("packed/0") and "packed" not in ma
        assert mb["global_step"] == ma["global_step"] == 6


def test_a_packed_group_of_two_methods_and_two_seeds_equals_its_single_runs_in_float32(tmp_path):
    jobs = [["model=beta_vae", "seed=0", "beta=2"], ["model=beta_vae", "seed=1", "beta=8"],
            ["model=factor_vae", "seed=0", "model.gamma=5"], ["model=factor_vae", "seed=1", "model.gamma=30"]]
    for single, packed in _single_and_packed(tmp_path, jobs, []):
        ha, hb = _history(single), _history(packed)
        assert ha.keys() == hb.keys()
        for step, row in ha.items():
            loss = abs(row.get("train/loss", 0.0))
            for key, v in row.items():
                if key.startswith("train/"):  # a small term (a TC near 0) within 1e-5 of the loss it is part of
                    assert abs(hb[step][key] - v) <= 1e-5 * max(abs(v), loss), (single, step, key, v, hb[step][key])


def _beta_vae(beta: float, seed: int):
    from functools import partial

    from dislab.models.beta_vae import BetaVAE
    from dislab.nets.mlp import MLP

    torch.manual_seed(seed)
    model = BetaVAE(beta=beta, net=MLP((1, 8, 8), 3, 16), optimizer=partial(torch.optim.Adam, lr=1e-2))
    gen = torch.Generator()
    gen.set_state(torch.get_rng_state())
    return model.double(), gen


def test_a_model_whose_step_is_not_finite_is_left_alone_and_the_others_are_not_touched():
    from dislab.pack.engine import Pack

    x = torch.rand(5, 3, 8, 1, 8, 8, dtype=torch.float64)

    def train(betas):
        built = [_beta_vae(b, s) for s, b in enumerate(betas)]
        pack = Pack([m for m, _ in built], [1e-2] * len(built), {}, dtype=torch.float64, gens=[g for _, g in built])
        start = [pack.lanes[0].state_dict(i) for i in range(len(built))]
        for t in range(5):
            pack.step(x[t, : len(built)])
        return pack, start

    pack, start = train([2.0, float("inf"), 4.0])
    assert pack.bad.tolist() == [0, 5, 0] and pack.first_bad.tolist() == [-1, 0, -1]
    lane = pack.lanes[0]
    after = lane.state_dict(1)
    assert all(torch.equal(after[k], start[1][k]) for k in after)  # weights unchanged; its moments too
    assert float(lane.opt.step_count[1]) == 0 and all(float(m[1].abs().max()) == 0 for m in lane.opt.exp_avg)
    fine, _ = train([2.0, 3.0, 4.0])
    for i in (0, 2):
        a, b = lane.state_dict(i), fine.lanes[0].state_dict(i)
        assert all(torch.equal(a[k], b[k]) for k in a), i
    assert float(lane.opt.step_count[0]) == 5


def test_stacked_adam_equals_torch_adam_per_model():
    from dislab.pack.engine import StackedAdam

    torch.manual_seed(0)
    w = torch.randn(3, 4, 5, dtype=torch.float64)
    lrs, grads = [1e-3, 1e-2, 3e-1], torch.randn(7, 3, 4, 5, dtype=torch.float64)
    stacked = w.clone().requires_grad_()
    opt = StackedAdam([stacked], torch.tensor(lrs, dtype=torch.float64), betas=(0.8, 0.95), eps=1e-6,
                      weight_decay=0.1)
    singles = [w[i].clone().requires_grad_() for i in range(3)]
    refs = [torch.optim.Adam([p], lr=lr, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)
            for p, lr in zip(singles, lrs, strict=True)]
    for g in grads:
        stacked.grad = g.clone()
        opt.step(torch.ones(3, dtype=torch.bool))
        for i, (p, ref) in enumerate(zip(singles, refs, strict=True)):
            p.grad = g[i].clone()
            ref.step()
    for i in range(3):
        assert torch.allclose(stacked[i], singles[i], rtol=0, atol=1e-14), i


def test_a_killed_group_resumes_exactly(tmp_path, monkeypatch):
    from dislab.pack import engine
    from dislab.pack.run import run_group

    jobs = [["model=beta_vae", "seed=0", "beta=2"], ["model=factor_vae", "seed=1"]]
    extra = ["steps=10", "+trainer.precision=64-true", "checkpoint_every=4"]

    def group(name):
        return _group(tmp_path / name, jobs, extra)

    run_group(group("whole"))
    real = engine.Pack.step

    def dying(self, x):
        if self.step_index == 6:
            raise KeyboardInterrupt  # as kill -9 leaves it: the checkpoints of step 4, nothing after
        real(self, x)

    monkeypatch.setattr(engine.Pack, "step", dying)
    with pytest.raises(KeyboardInterrupt):
        run_group(group("killed"))
    assert not (tmp_path / "killed/0/metrics.json").exists()
    assert torch.load(tmp_path / "killed/0/checkpoints/last.ckpt", weights_only=True)["global_step"] == 4
    monkeypatch.setattr(engine.Pack, "step", real)
    run_group(group("killed"))
    for i in range(len(jobs)):
        a, b = _weights(tmp_path / "whole" / str(i)), _weights(tmp_path / "killed" / str(i))
        assert all(torch.equal(a[k], b[k]) for k in a), i
        assert _history(tmp_path / "whole" / str(i)) == _history(tmp_path / "killed" / str(i))


def test_methods_that_cannot_be_packed_say_why():
    from dislab.pack.run import packable

    assert packable(compose([*FAST, "model=beta_tcvae"])) is None
    assert "pairs" in packable(compose([*FAST, "model=ada_gvae"]))
    assert "prior samples" in packable(compose([*FAST, "model=aae"]))
    assert "Adam" in packable(compose([*FAST, "optimizer._target_=torch.optim.SGD"]))


def test_a_packed_sweep_trains_groups_and_the_rest_alone_and_skips_them_when_run_again(tmp_path):
    """Through train.py -m: two groups (a group holds at most pack=3), AAE alone; a second command skips all."""
    sweep = tmp_path / "sweep"
    cmd = [sys.executable, str(ROOT / "train.py"), "-m", *TINY, "steps=6", "trainer=cpu", "pack=3",
           "model=beta_vae,factor_vae,aae", "seed=0,1", f"hydra.sweep.dir={sweep}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout + out.stderr
    assert "packed group 0: jobs 0,1,2" in text and "packed group 1: jobs 3" in text
    assert "job 4 runs alone: model AAE cannot be packed" in text
    with open(sweep / "sweep_summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["done"] * 6
    for n in range(6):
        saved = json.loads((sweep / str(n) / "metrics.json").read_text())
        assert ("packed" in saved) == (n not in (4, 5)), n
        assert (sweep / str(n) / ".hydra/config.yaml").exists() and (sweep / str(n) / "pictures").is_dir()
    before = {n: (sweep / str(n) / "metrics.json").stat().st_mtime_ns for n in range(6)}
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert {n: (sweep / str(n) / "metrics.json").stat().st_mtime_ns for n in range(6)} == before
    assert "runs alone: it is finished" in again.stdout + again.stderr


def test_compile_true_compiles_the_groups_loss_and_optimizer_and_trains_as_eager(tmp_path):
    """Counted from what Dynamo traced in a real compiled group (no mock): the loss (with its backward) and the
    optimizer step of the group's lane, and the losses it logs equal the eager group's."""
    from torch._dynamo.utils import counters

    from dislab.pack.run import run_group

    jobs = [["model=beta_vae", "seed=0", "beta=2"], ["model=beta_vae", "seed=1", "beta=8"]]
    torch._dynamo.reset()
    counters.clear()
    for name, comp in (("eager", "false"), ("compiled", "true")):
        run_group([(compose([*BASE, *o, f"compile={comp}", f"run_dir={tmp_path / name / str(i)}"]), None)
                   for i, o in enumerate(jobs)])
        if name == "eager":
            assert not counters["stats"]["unique_graphs"]
    assert counters["stats"]["unique_graphs"] >= 2 and counters["stats"]["calls_captured"] > 50
    for i in range(len(jobs)):
        ha, hb = _history(tmp_path / "eager" / str(i)), _history(tmp_path / "compiled" / str(i))
        assert ha.keys() == hb.keys()
        losses = [(step, row["train/loss"]) for step, row in ha.items() if "train/loss" in row]
        assert len(losses) == 3 and all(hb[step]["train/loss"] == pytest.approx(v, rel=1e-4) for step, v in losses)


def test_the_groups_evaluations_encode_each_batch_once_for_all_models():
    """Three models scored one after another with the same metric: every batch is encoded in one pass for all
    three (as many passes as one model's evaluation makes), and each gets exactly its own codes."""
    from hydra.utils import instantiate

    from dislab.evaluate import compute_metrics
    from dislab.load import build_model
    from dislab.pack.engine import Pack, SharedEncoder

    cfg = compose([*FAST, "+trainer.precision=64-true"])
    data = instantiate(cfg.dataset)
    models = []
    for seed in range(3):
        torch.manual_seed(seed)
        models.append(build_model(cfg, data).double())
    alone = [compute_metrics(instantiate(cfg.metrics), data, m, 0) for m in models]
    calls = []
    real = models[0].represent
    models[0].__dict__["represent"] = lambda x: calls.append(1) or real(x)
    compute_metrics(instantiate(cfg.metrics), data, models[0], 0)
    models[0].__dict__.pop("represent")
    pack = Pack(models, [1e-4] * 3, {}, dtype=torch.float64)
    shared = SharedEncoder(pack)
    shared.install(models)
    together = [compute_metrics(instantiate(cfg.metrics), data, m, 0) for m in models]
    assert shared.passes == len(calls) > 0
    assert together == alone
    rng = np.random.default_rng(0)
    x = data.sample_observations(5, rng)
    mu, _ = models[1].encode(x)  # not the next batch model 1 waits for: encoded now, for all
    own = models[1].net.encode(torch.as_tensor(x).double())[0].detach().numpy()
    assert shared.passes == len(calls) + 1 and np.allclose(mu, own, rtol=0, atol=1e-12)
    shared.uninstall(models)
    assert "encode" not in vars(models[0])


def test_sigterm_saves_every_jobs_checkpoint_at_the_step_and_the_group_resumes_exactly(tmp_path, monkeypatch):
    import signal

    from dislab.callbacks import checkpoint
    from dislab.pack import engine
    from dislab.pack.run import run_group

    jobs = [["model=beta_vae", "seed=0"], ["model=dip_vae_ii", "seed=1"]]
    extra = ["steps=9", "+trainer.precision=64-true", "checkpoint_every=100"]

    def group(name):
        return _group(tmp_path / name, jobs, extra)

    run_group(group("whole"))
    real = engine.Pack.step

    def signalled(self, x):
        real(self, x)
        if self.step_index == 5:
            checkpoint._seen[signal.SIGTERM] = True  # as the handler notes a scancel

    monkeypatch.setattr(engine.Pack, "step", signalled)
    monkeypatch.setitem(checkpoint._seen, signal.SIGTERM, False)  # and so it is left
    with pytest.raises(checkpoint.Interrupted, match="SIGTERM at step 5"):
        run_group(group("term"))
    checkpoint._seen[signal.SIGTERM] = False
    assert all(_step(tmp_path / "term" / str(i)) == 5 for i in range(2))
    monkeypatch.setattr(engine.Pack, "step", real)
    run_group(group("term"))
    for i in range(len(jobs)):
        a, b = _weights(tmp_path / "whole" / str(i)), _weights(tmp_path / "term" / str(i))
        assert all(torch.equal(a[k], b[k]) for k in a), i


def _step(run_dir) -> int:
    return torch.load(Path(run_dir) / "checkpoints/last.ckpt", map_location="cpu", weights_only=True)["global_step"]


def test_each_packed_job_has_its_own_complete_wandb_run(tmp_path, monkeypatch):
    from dislab.pack.run import run_group
    from wandb_files import read_runs

    monkeypatch.setenv("WANDB_MODE", "offline")
    jobs = [["model=beta_vae", "seed=0"], ["model=factor_vae", "seed=1"]]
    run_group([(compose([*BASE, *o, "logger=wandb", f"run_dir={tmp_path / str(i)}"]), None)
               for i, o in enumerate(jobs)])
    for i in range(2):
        rec = read_runs(tmp_path / str(i))
        saved = json.loads((tmp_path / str(i) / "metrics.json").read_text())
        assert rec.complete and rec.name == str(i)
        assert rec.summary["metrics/mig"] == pytest.approx(saved["metrics"]["mig"])
        assert any("train/loss" in row for row in rec.history)


def test_usr2_saves_the_groups_checkpoints_then_runs_the_handler_that_was_there_before(tmp_path, monkeypatch):
    """submitit's handler requeues the job (SystemExit): the group stops with every job's checkpoint at the step."""
    import signal

    from dislab.callbacks import checkpoint
    from dislab.pack import engine
    from dislab.pack.run import run_group

    real = engine.Pack.step

    def warned(self, x):
        real(self, x)
        if self.step_index == 3:
            checkpoint._seen[signal.SIGUSR2] = True

    def requeue(signum, frame):
        raise SystemExit(0)

    monkeypatch.setattr(engine.Pack, "step", warned)
    monkeypatch.setitem(checkpoint._previous, signal.SIGUSR2, requeue)
    monkeypatch.setitem(checkpoint._seen, signal.SIGUSR2, False)
    before = signal.signal(signal.SIGUSR2, checkpoint._note)  # USR2 is noted; submitit's handler was there before
    jobs = [(compose([*BASE, "checkpoint_every=100", f"seed={i}", f"run_dir={tmp_path / str(i)}"]), None)
            for i in range(2)]
    try:
        with pytest.raises(checkpoint.Requeued, match="USR2 at step 3"):
            run_group(jobs)
    finally:
        signal.signal(signal.SIGUSR2, before)
    assert [_step(tmp_path / str(i)) for i in range(2)] == [3, 3] and not checkpoint._seen[signal.SIGUSR2]


def test_a_run_alone_refuses_a_packed_checkpoint_and_writes_nothing(tmp_path):
    import hashlib

    from dislab.pack.run import run_group
    from dislab.rundir import RunDirRefused
    from dislab.train import run

    cfgs = [compose([*BASE, f"seed={i}", f"run_dir={tmp_path / str(i)}"]) for i in range(2)]
    run_group([(c, None) for c in cfgs])
    (tmp_path / "0" / "metrics.json").unlink()  # as if killed after its last checkpoint

    def tree():
        return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((tmp_path / "0").rglob("*"))
                if p.is_file()}

    before = tree()
    with pytest.raises(RunDirRefused, match="written by a packed group: resume it in a packed sweep"):
        run(cfgs[0])
    assert tree() == before
