"""A refused command changes nothing; a resume never mixes two configurations; one driver per sweep directory;
an extension records both budgets; run names carry only what decides a run."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, TINY, compose


def _cli(script, *args, timeout=300):
    env = {**os.environ, "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "0"}
    return subprocess.run([sys.executable, script, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def fingerprint(root) -> dict[str, str]:
    """Every file and folder under ``root``: its content's digest (folders: ``dir``)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def test_a_refused_command_writes_nothing_and_the_same_command_resumes(tmp_path):
    """A finished run and an interrupted one (its checkpoint, no metrics.json) are fingerprinted; each refusal
    through train.py (another knob, another model, another net, another step budget, a smaller extension, a bad
    value, a directory in use, eval.py on a directory in use) exits non-zero with one line naming what differs and
    leaves every file as it was;
    the same command resumes the interrupted run and skips the finished one."""
    from dislab.lock import RunLock

    done, cut = tmp_path / "done", tmp_path / "cut"
    base = [*TINY, "model=beta_vae", "beta=4", "steps=6", "checkpoint_every=3"]
    first = _cli("train.py", *base, f"hydra.run.dir={done}")
    assert first.returncode == 0, first.stderr[-3000:]
    shutil.copytree(done, cut)
    for name in ("metrics.json", "representation.npz"):
        (cut / name).unlink()  # as a run killed after its last checkpoint
    shutil.rmtree(cut / "pictures")
    before = {d: fingerprint(d) for d in (done, cut)}
    assert ".hydra/config.yaml" in before[done] and "train.log" in before[done]

    refusals = [  # (run dir, overrides, exit status, what the line must say)
        (done, ["beta=8"], 2, "(finished): it differs in beta=4 (now 8);"),
        (cut, ["beta=8"], 2, "(interrupted): it differs in beta=4 (now 8);"),
        (cut, ["model=beta_tcvae"], 2, "differs in model._target_=dislab.models.beta_vae.BetaVAE (now "),
        (cut, ["+net.hidden=64"], 2, "differs in net.hidden=32 (now 64)"),
        (done, ["steps=9"], 2, "differs in steps=6 (now 9)"),
        (cut, ["steps=9"], 2, "differs in steps=6 (now 9)"),
        (done, ["steps=5", "extend=true"], 2, "give more steps than that (steps=5 is not)"),
        (done, ["beta=-1"], 2, "beta=-1"),
    ]
    for run_dir, change, status, said in refusals:
        over = [o for o in base if o.split("=")[0].lstrip("+") not in {c.split("=")[0].lstrip("+") for c in change}]
        out = _cli("train.py", *over, *change, f"hydra.run.dir={run_dir}")
        assert out.returncode == status and said in out.stderr, (change, out.returncode, out.stderr[-2000:])
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert fingerprint(run_dir) == before[run_dir], change
    with RunLock(cut):  # a live process writes it: exit 4, naming this process
        out = _cli("train.py", *base, f"hydra.run.dir={cut}")
    assert out.returncode == 4 and f"PID {os.getpid()}" in out.stderr, out.stderr[-2000:]
    assert fingerprint(cut) == before[cut]
    with RunLock(done):  # a re-score while it is in use: refused, no eval/<time>/ left behind
        out = _cli("eval.py", f"run={done}", "metrics=mig", "++metrics.mig.num_train=128")
    assert out.returncode == 4 and f"PID {os.getpid()}" in out.stderr, out.stderr[-2000:]
    assert fingerprint(done) == before[done]

    again = _cli("train.py", *base, "logger=csv", f"hydra.run.dir={cut}")  # bookkeeping may change
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming" in again.stdout and json.loads((cut / "metrics.json").read_text())["global_step"] == 6
    same = _cli("train.py", *base, f"hydra.run.dir={done}")
    assert same.returncode == 0 and "is complete; skipping" in same.stdout
    assert fingerprint(done) == before[done]


def _hydra_job(tmp_path, overrides):
    """A composed config under an active HydraConfig, as Hydra hands it to the task."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    cfg = compose([*overrides, f"run_dir={tmp_path}"], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def test_extend_trains_a_finished_run_on_and_equals_the_longer_run(tmp_path):
    """extend=true steps=8 on a run finished at 4 steps resumes from its checkpoint: the weights equal those of
    a run trained 8 steps at once; metrics.json, the checkpoint and the history record both budgets; the shorter
    run's result is kept as metrics.4.json."""
    import torch
    from hydra.core.hydra_config import HydraConfig

    from dislab.train import run

    common = [*TINY, "model=beta_vae", "beta=4", "checkpoint_every=2"]
    try:
        run(_hydra_job(tmp_path / "a", [*common, "steps=4"]))
        run(_hydra_job(tmp_path / "a", [*common, "steps=8", "extend=true"]))
        run(_hydra_job(tmp_path / "b", [*common, "steps=8"]))
        run(_hydra_job(tmp_path / "c", [*common, "steps=4"]))  # a checkpoint written before budgets were kept:
        old = torch.load(tmp_path / "c" / "checkpoints" / "last.ckpt", weights_only=False)
        del old["callbacks"]["AtomicCheckpoint"]["budgets"]  # its first budget is the steps its config said
        torch.save(old, tmp_path / "c" / "checkpoints" / "last.ckpt")
        run(_hydra_job(tmp_path / "c", [*common, "steps=8", "extend=true"]))
    finally:
        HydraConfig.instance().cfg = None
    a, b = (torch.load(tmp_path / d / "checkpoints" / "last.ckpt", weights_only=False) for d in "ab")
    assert a["global_step"] == b["global_step"] == 8
    for k, v in b["state_dict"].items():
        assert torch.equal(a["state_dict"][k], v), k
    saved = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert json.loads((tmp_path / "c" / "metrics.json").read_text())["budgets"] == [4, 8]
    assert saved["budgets"] == [4, 8] and json.loads((tmp_path / "b" / "metrics.json").read_text())["budgets"] == [8]
    assert saved["metrics"] == json.loads((tmp_path / "b" / "metrics.json").read_text())["metrics"]
    assert json.loads((tmp_path / "a" / "metrics.4.json").read_text())["global_step"] == 4
    assert a["callbacks"]["AtomicCheckpoint"]["budgets"] == [4, 8]
    rows = (tmp_path / "a" / "history.csv").read_text().splitlines()
    col = rows[0].split(",").index("train/budget")
    assert [r.split(",")[0] for r in rows[1:] if r.split(",")[col]] == ["4"]


@pytest.mark.parametrize("launcher", ["local", "joblib", "gpus", "slurm", "optuna"])
def test_one_driver_per_sweep_directory(tmp_path, launcher, capsys):
    """on_multirun_start, which Hydra calls before any sweeper or launcher writes or submits, refuses a sweep
    directory whose driver lives (exit 4, naming it) and writes nothing; a dead driver's lock does not block."""
    from dislab.lock import SWEEP, RunLock
    from dislab.sweep.callback import SweepCallback

    group = "sweeper=optuna" if launcher == "optuna" else f"launcher={launcher}"
    cfg = compose([group, *TINY, f"hydra.sweep.dir={tmp_path}"], return_hydra_config=True)
    with RunLock(tmp_path, name=SWEEP):
        before = fingerprint(tmp_path)
        with pytest.raises(SystemExit) as e:
            SweepCallback().on_multirun_start(cfg)
        assert fingerprint(tmp_path) == before
    assert e.value.code == 4
    err = capsys.readouterr().err
    assert f"sweep directory {tmp_path} is in use by PID {os.getpid()}" in err and "one sweep per" in err
    (tmp_path / SWEEP).write_text(json.dumps({"host": os.uname().nodename, "pid": 2 ** 22 + 1, "since": "then"}))
    callback = SweepCallback()
    callback.on_multirun_start(cfg)  # a dead driver's lock is taken over
    assert json.loads((tmp_path / SWEEP).read_text())["pid"] == os.getpid()
    callback._release()
    assert not (tmp_path / SWEEP).exists()


def test_a_second_driver_is_refused_and_a_held_job_directory_is_not_written(tmp_path):
    """Through train.py -m (joblib): while this process holds the sweep directory, a driver is refused in one
    line and the directory is unchanged; while it holds job 0's directory, the sweep trains job 1, writes
    nothing into job 0's directory and lists job 0 as failed with the holder's line."""
    import csv

    from dislab.lock import SWEEP, RunLock

    sweep = ["-m", "launcher=joblib", "hydra.launcher.n_jobs=2", "model=beta_vae", "seed=0,1", "steps=3", *TINY,
             f"hydra.sweep.dir={tmp_path}"]
    (tmp_path / "0").mkdir(parents=True)
    with RunLock(tmp_path, name=SWEEP):
        before = fingerprint(tmp_path)
        out = _cli("train.py", *sweep)
        assert fingerprint(tmp_path) == before
    assert out.returncode == 4 and f"PID {os.getpid()}" in out.stderr and "Launching" not in out.stdout
    with RunLock(tmp_path / "0"):
        held = fingerprint(tmp_path / "0")
        out = _cli("train.py", *sweep)
        assert fingerprint(tmp_path / "0") == held
    assert out.returncode == 1, out.stderr[-3000:]
    with open(tmp_path / "sweep_summary.csv", newline="") as f:
        rows = {r["job"]: r for r in csv.DictReader(f)}
    assert rows["1"]["status"] == "done" and rows["0"]["status"] == "failed"
    assert f"is in use by PID {os.getpid()}" in rows["0"]["error"]
    assert not (tmp_path / SWEEP).exists()


def test_run_names_and_what_trained_leave_out_bookkeeping(tmp_path):
    """One definition: where or how a run ran (launcher, trackers, checkpoints, threads...) is not in its name,
    its sweep cell or what metrics.json records; knobs, seed, steps and metrics are."""
    from hydra.core.hydra_config import HydraConfig

    from dislab.rundir import is_bookkeeping, what_trained
    from dislab.sweep.runs import cell_of
    from dislab.train import run_name

    try:
        cfg = _hydra_job(tmp_path, ["model=beta_tcvae", "steps=300", "metrics=none", "logger=none", "beta=8",
                                    "eval_untrained=false", "checkpoint_every=20", "threads=2", "compile=true"])
        assert run_name(cfg) == "beta_tcvae-steps=300-metrics=none-beta=8"
    finally:
        HydraConfig.instance().cfg = None

    over = ["model=beta_tcvae", "steps=300", "metrics=none", "logger=none", "eval_untrained=false",
            "checkpoint_every=20", "beta=8", "seed=1", "threads=2", "launcher=joblib",
            "+trainer.enable_progress_bar=false", "dataset.device=cpu", "hydra.launcher.n_jobs=2",
            "metrics@metrics_during=fast", "lr=0.001"]
    assert what_trained(over) == ["beta=8", "lr=0.001", "metrics=none", "model=beta_tcvae", "seed=1", "steps=300"]
    assert cell_of(over) == ("model=beta_tcvae", "steps=300", "metrics=none", "beta=8", "lr=0.001")
    assert not is_bookkeeping("dataset=shapes3d") and not is_bookkeeping("+net.hidden=32")
    assert is_bookkeeping("logger.wandb.project=x") and not is_bookkeeping("loggers=x")


def test_a_sweep_of_other_settings_is_refused_before_it_touches_the_directory(tmp_path, capsys):
    """A sweep directory that another command filled: refused (exit 2) with every file as it was, including the
    earlier driver's records of refused jobs; the same command goes on and clears those records."""
    from omegaconf import OmegaConf

    from dislab.sweep.callback import SweepCallback

    first = compose(["seed=0", *TINY, f"hydra.sweep.dir={tmp_path}"], return_hydra_config=True)
    OmegaConf.save(first, tmp_path / "multirun.yaml")
    (tmp_path / "refused").mkdir()
    (tmp_path / "refused" / "0.json").write_text("{}")
    before = fingerprint(tmp_path)
    other = compose(["seed=1", *TINY, f"hydra.sweep.dir={tmp_path}"], return_hydra_config=True)
    with pytest.raises(SystemExit) as e:
        SweepCallback().on_multirun_start(other)
    assert e.value.code == 2 and "holds a sweep started with other settings" in capsys.readouterr().err
    assert fingerprint(tmp_path) == before
    again = SweepCallback()
    again.on_multirun_start(first)
    again._release()
    assert not (tmp_path / "refused").exists()
