"""Sweeps: parallel jobs, a failing job, re-runs that skip finished jobs, the summary with UDR,
GPU pinning, the SLURM launcher's sbatch script, and DDP (few subprocesses: each costs seconds)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from omegaconf import OmegaConf

from conftest import CONF, ROOT, TINY

JOB = ["steps=3", *(o for o in TINY if o != "batch_size=16")]  # a sweep's job: the tiny run at the default batch size


def _train(*args, timeout=300, env=None):
    env = {**os.environ, "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "0", **(env or {})}
    return subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _summary(sweep_dir) -> dict[str, dict]:
    with open(sweep_dir / "sweep_summary.csv", newline="") as f:
        return {row["job"]: row for row in csv.DictReader(f)}


def test_parallel_sweep_survives_a_failing_job_and_a_rerun_skips_finished_jobs(tmp_path):
    sweep = ["-m", "launcher=joblib", "hydra.launcher.n_jobs=2", "model=beta_vae,beta_tcvae", "seed=0,1", *JOB,
             f"hydra.sweep.dir={tmp_path}"]
    bad = tmp_path / "3" / "checkpoints" / "last.ckpt"  # job 3 (beta_tcvae, seed 1) will fail to resume
    bad.parent.mkdir(parents=True)
    bad.write_text("not a checkpoint")

    first = _train(*sweep)
    assert first.returncode == 1, first.stderr[-3000:]
    assert sorted(p.parent.name for p in tmp_path.glob("*/metrics.json")) == ["0", "1", "2"]
    assert "ConfigError" in (tmp_path / "3" / "error.txt").read_text()
    rows = _summary(tmp_path)
    assert [rows[j]["status"] for j in "0123"] == ["done", "done", "done", "failed"]
    assert rows["3"]["cell"] == rows["2"]["cell"] and "seed" not in rows["3"]["cell"]
    assert "cannot resume" in rows["3"]["error"] and float(rows["0"]["mig"]) >= 0
    assert "1 failed" in first.stdout and "job 3 (model=beta_tcvae seed=1): ConfigError" in first.stdout
    udr = json.loads((tmp_path / "udr.json").read_text())
    cells = {c["cell"].split()[0]: c for c in udr["cells"]}
    assert len(cells["model=beta_tcvae"]["runs"]) == 1 and "at least 2 seeds" in cells["model=beta_tcvae"]["note"]
    for v in ("lasso", "spearman"):
        scores = cells["model=beta_vae"][f"udr_{v}"]
        assert len(scores) == 2 and all(0 <= s <= 1 for s in scores)
        assert 0 <= float(rows["0"][f"udr_{v}"]) <= 1 and rows["3"][f"udr_{v}"] == ""

    mtimes = {j: (tmp_path / j / "metrics.json").stat().st_mtime_ns for j in "012"}
    bad.unlink()
    second = _train(*sweep)  # the same command: only job 3 trains
    assert second.returncode == 0, second.stderr[-3000:]
    assert {j: (tmp_path / j / "metrics.json").stat().st_mtime_ns for j in "012"} == mtimes
    assert not (tmp_path / "3" / "error.txt").exists()
    assert [r["status"] for r in _summary(tmp_path).values()] == ["done"] * 4
    assert "4 done (3 from an earlier run, skipped)" in second.stdout

    other = _train(*[a.replace("seed=0,1", "seed=0,1,2") for a in sweep])  # not the same sweep: refused
    assert other.returncode == 2 and "holds a sweep started with other settings" in other.stderr


def test_optuna_search_draws_from_its_space_survives_a_failing_trial_and_resumes(tmp_path):
    """sweeper=optuna: 3 trials of beta in [1, 8] and lr in {1e-3, 1e-4}, maximising mig; trial 1 fails (an
    unreadable checkpoint), the search goes on and the summary lists it; a re-run replays trials 0 and 2 from
    their metrics.json and trains trial 1 with the same knobs."""
    search = ["sweeper=optuna", "model=beta_vae", "beta=interval(1,8)", "lr=choice(0.001,0.0001)",
              "hydra.sweeper.n_trials=3", *JOB, f"hydra.sweep.dir={tmp_path}"]
    bad = tmp_path / "1" / "checkpoints" / "last.ckpt"
    bad.parent.mkdir(parents=True)
    bad.write_text("not a checkpoint")

    first = _train(*search)
    assert first.returncode == 1, first.stderr[-3000:]  # a trial failed: the grid sweep's status
    knobs = {}
    for j in "012":
        over = dict(o.split("=", 1) for o in OmegaConf.load(tmp_path / j / ".hydra" / "overrides.yaml"))
        cfg = OmegaConf.load(tmp_path / j / ".hydra" / "config.yaml")
        assert 1 <= cfg.beta <= 8 and cfg.lr in (0.001, 0.0001) and float(over["beta"]) == cfg.beta, (j, over)
        knobs[j] = (cfg.beta, cfg.lr)
    assert len({b for b, _ in knobs.values()}) == 3  # drawn, not a grid
    rows = _summary(tmp_path)
    assert [rows[j]["status"] for j in "012"] == ["done", "failed", "done"] and "cannot resume" in rows["1"]["error"]
    mig = {j: json.loads((tmp_path / j / "metrics.json").read_text())["metrics"]["mig"] for j in "02"}
    best = OmegaConf.load(tmp_path / "optimization_results.yaml")
    top = max(mig, key=mig.get)
    assert best.best_value == mig[top] and (best.best_params.beta, best.best_params.lr) == knobs[top]

    mtimes = {j: (tmp_path / j / "metrics.json").stat().st_mtime_ns for j in "02"}
    bad.unlink()
    second = _train(*search)
    assert second.returncode == 0, second.stderr[-3000:]
    assert {j: (tmp_path / j / "metrics.json").stat().st_mtime_ns for j in "02"} == mtimes
    assert [r["status"] for r in _summary(tmp_path).values()] == ["done"] * 3
    for j in "012":
        cfg = OmegaConf.load(tmp_path / j / ".hydra" / "config.yaml")
        assert (cfg.beta, cfg.lr) == knobs[j], j


def test_an_optuna_search_whose_every_trial_fails_ends_with_its_summary_and_exit_1(tmp_path):
    search = ["sweeper=optuna", "model=beta_vae", "beta=interval(1,8)", "hydra.sweeper.n_trials=2", *JOB,
              f"hydra.sweep.dir={tmp_path}"]
    for j in "01":
        bad = tmp_path / j / "checkpoints" / "last.ckpt"
        bad.parent.mkdir(parents=True)
        bad.write_text("not a checkpoint")
    out = _train(*search)
    assert out.returncode == 1, out.stderr[-3000:]
    assert "Traceback" not in out.stderr and "every trial failed" in out.stderr + out.stdout, out.stderr[-3000:]
    rows = _summary(tmp_path)
    assert [rows[j]["status"] for j in "01"] == ["failed"] * 2 and "cannot resume" in rows["1"]["error"]
    assert not (tmp_path / "optimization_results.yaml").exists()


def test_only_optunas_no_completed_trial_error_with_no_finished_trial_ends_quietly(tmp_path, monkeypatch):
    from hydra_plugins.dislab_optuna import OptunaSweeper

    Plugin = OptunaSweeper.__bases__[0]  # the class it subclasses (Hydra's plugin scan may re-import its module)

    sweeper = object.__new__(OptunaSweeper)  # sweep() only, on the plugin's sweep raising as told
    sweeper._sweep_dir = tmp_path
    (tmp_path / "0").mkdir()
    for message, finished, ends in (("No trials are completed yet.", False, True),
                                    ("No trials are completed yet.", True, False),
                                    ("GridSampler only supports discrete distributions.", False, False)):
        (tmp_path / "0" / "metrics.json").unlink(missing_ok=True)
        if finished:
            (tmp_path / "0" / "metrics.json").write_text("{}")

        def plugin_sweep(self, arguments, message=message):
            raise ValueError(message)

        monkeypatch.setattr(Plugin, "sweep", plugin_sweep)
        if ends:
            assert sweeper.sweep([]) is None
        else:
            with pytest.raises(ValueError, match=message):
                sweeper.sweep([])


def _fake_run(d, overrides, means, metrics=None, model="beta_vae", beta=4):
    """A finished run directory as run() leaves it (only the files the summary reads)."""
    (d / ".hydra").mkdir(parents=True)
    cfg = {"seed": int(overrides[-1].split("=")[1]), "beta": beta, "model": {"_target_": f"dislab.models.{model}.M"}}
    OmegaConf.save(OmegaConf.create(cfg), d / ".hydra" / "config.yaml")
    OmegaConf.save(OmegaConf.create(overrides), d / ".hydra" / "overrides.yaml")
    kl = np.where(means.std(0) > 0.5, 1.0, 0.0)
    np.savez(d / "representation.npz", means=means, kl=kl, factors=np.zeros((len(means), 2), int), eval_seed=0)
    (d / "metrics.json").write_text(json.dumps({"metrics": metrics or {"mig": 0.5}, "global_step": 3}))


def test_a_metrics_json_of_other_knobs_is_not_read_as_this_jobs_result(tmp_path):
    from dislab.sweep.runs import read_run

    _fake_run(tmp_path / "a", ["model=beta_vae", "beta=4", "launcher=joblib", "seed=1"], np.zeros((4, 2)))
    saved = json.loads((tmp_path / "a" / "metrics.json").read_text())
    for recorded, status in ((["beta=4", "model=beta_vae", "seed=1"], "done"),  # where it ran does not count
                             (["beta=7.5", "model=beta_vae", "seed=1"], "incomplete"),
                             (["beta=4", "model=beta_vae", "seed=2"], "incomplete"), (None, "done")):
        (tmp_path / "a" / "metrics.json").write_text(json.dumps({**saved, "overrides": recorded}))
        assert read_run(tmp_path / "a").status == status, recorded


def test_summary_udr_and_wandb_summary_run(tmp_path):
    """UDR per cell; each job's UDR in its own W&B run (resumed by id, its earlier values kept); the summary
    run's config holds the sweep's axes and its values are per cell, never a mean across models."""
    import wandb

    from dislab.sweep.summary import log_to_wandb, summarize, udr_to_runs
    from dislab.trackers.wandb import finish, read_run
    from wandb_files import read_runs

    rng = np.random.default_rng(0)
    factors = rng.normal(size=(500, 3))
    cells = {"beta_vae": (4, [0.2, 0.4, 0.3]), "beta_tcvae": (6, [0.6, 1.0])}  # mig per seed
    mixed = np.array([[1, 1, 0], [-1, 1, 0], [0, 0, 1]]) / [2 ** 0.5, 2 ** 0.5, 1]  # two factors rotated by 45°
    try:
        for model, (beta, migs) in cells.items():
            for seed, mig in enumerate(migs):  # the same code up to a permutation and sign (UDR near 1), but one
                perm = rng.permutation(3)
                code = factors @ mixed if seed == 2 else factors
                means = np.concatenate([code[:, perm] * rng.choice([-1, 1], 3), 0.01 * rng.normal(size=(500, 2))], 1)
                d = tmp_path / str(len(list(tmp_path.iterdir())))
                _fake_run(d, [f"model={model}", f"beta={beta}", f"seed={seed}"], means, {"mig": mig}, model, beta)
                wandb.init(project="dislab-test", dir=str(d), group=tmp_path.name, name=d.name, config={"beta": beta})
                wandb.log({"metrics/mig": mig})
                wandb.finish()
    finally:
        finish()
    out = summarize(tmp_path)
    assert len(out["udr"]) == 2
    for v in ("lasso", "spearman"):
        scores = [cell[f"udr_{v}"] for cell in out["udr"]]
        assert len(scores[0]) == 3 and min(scores[0]) < max(scores[0]) - 0.1, scores  # the rotated code stands out
        assert len(scores[1]) == 2 and all(0.7 <= s <= 1 for s in scores[1]), scores
    assert "UDR model=beta_vae beta=4: lasso 0." in out["text"]

    assert len(udr_to_runs(out)) == 5
    udr = json.loads((tmp_path / "udr.json").read_text())["runs"]
    for job in "01234":
        rec = read_runs(tmp_path / job)
        assert rec.complete and len(list((tmp_path / job / "wandb").glob("offline-run-*"))) == 2  # resumed: 2 segments
        assert {k: rec.summary[k] for k in ("udr_lasso", "udr_spearman")} == udr[job]
        assert rec.summary["udr_seeds"] == (3 if job < "3" else 2)
        assert rec.summary["metrics/mig"] == [0.2, 0.4, 0.3, 0.6, 1.0][int(job)]
        assert rec.config["beta"] in (4, 6) and rec.group == tmp_path.name and rec.name == job

    where = log_to_wandb(out, tmp_path, project="dislab-test")
    rec = read_run(next(where.glob("run-*.wandb")))
    assert rec.complete and rec.group == tmp_path.name and rec.name == f"{tmp_path.name}-summary"
    assert rec.config["axes"] == {"model": ["beta_vae", "beta_tcvae"], "beta": [4, 6], "seed": [0, 1, 2]}
    assert rec.summary["jobs"] == 5 and rec.summary["sweep_summary/_type"] == rec.summary["cells/_type"] == "table-file"
    assert rec.summary["mig_mean/model=beta_vae beta=4"] == pytest.approx(0.3)
    assert rec.summary["mig_mean/model=beta_tcvae beta=6"] == pytest.approx(0.8)
    for i, cell in enumerate(("model=beta_vae beta=4", "model=beta_tcvae beta=6")):  # the mean of each cell's seeds
        assert rec.summary[f"udr_lasso/{cell}"] == pytest.approx(np.mean(out["udr"][i]["udr_lasso"]))
    mig_keys = [k for k in rec.summary if "mig" in k]  # no value pools the two models (their mean is 0.5)
    assert sorted(mig_keys) == ["mig_mean/model=beta_tcvae beta=6", "mig_mean/model=beta_vae beta=4"], mig_keys
    table = json.loads((where / "files" / rec.summary["cells/path"]).read_text())
    assert table["columns"][:4] == ["cell", "seeds", "mig_mean", "mig_std"]
    assert [row[:4] for row in table["data"]] == [
        ["model=beta_vae beta=4", 3, pytest.approx(0.3), pytest.approx(np.std([0.2, 0.4, 0.3]))],
        ["model=beta_tcvae beta=6", 2, pytest.approx(0.8), pytest.approx(0.2)]]


def test_udr_over_too_few_seeds_is_reported_with_a_warning(tmp_path):
    """A cell of 2 seeds (its two runs get the same UDR) or 3 gets the warning in udr.json and one console
    line naming it with its seeds; a cell of MIN_SEEDS (4) seeds does not."""
    from dislab.metrics.udr import MIN_SEEDS, seeds_warning
    from dislab.sweep.summary import summarize

    assert MIN_SEEDS == 4 and seeds_warning(1) is None and seeds_warning(4) is None
    assert seeds_warning(2).startswith("UDR over 2 seeds: ") and seeds_warning(3).startswith("UDR over 3 seeds: ")
    rng = np.random.default_rng(0)
    factors = rng.normal(size=(300, 3))
    job = 0
    for beta, seeds in ((1, 2), (2, 3), (4, 4)):
        for seed in range(seeds):
            means = np.concatenate([factors[:, rng.permutation(3)], 0.01 * rng.normal(size=(300, 1))], 1)
            _fake_run(tmp_path / str(job), ["model=beta_vae", f"beta={beta}", f"seed={seed}"], means, beta=beta)
            job += 1
    out = summarize(tmp_path)
    saved = json.loads((tmp_path / "udr.json").read_text())
    cells = {c["cell"]: c for c in saved["cells"]}
    assert saved["min_seeds"] == 4 and len(cells) == 3
    assert cells["model=beta_vae beta=1"]["warning"] == seeds_warning(2)
    assert cells["model=beta_vae beta=2"]["warning"] == seeds_warning(3)
    assert "warning" not in cells["model=beta_vae beta=4"] and len(cells["model=beta_vae beta=4"]["udr_lasso"]) == 4
    spearman = cells["model=beta_vae beta=1"]["udr_spearman"]
    assert spearman[0] == pytest.approx(spearman[1])  # what the warning is about: 2 seeds, one shared value
    [line] = [t for t in out["text"].splitlines() if t.startswith("warning: UDR")]
    assert line.endswith(": beta=1 (2 seeds), beta=2 (3 seeds); see udr.json"), line
    assert "beta=4" not in line


def _hydra_cfg(overrides):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return hydra_compose("train", overrides=overrides, return_hydra_config=True)


def test_gpu_slots_pin_each_worker_to_one_gpu(tmp_path, monkeypatch):
    from dislab.sweep import gpus

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6")
    assert gpus.visible_gpus() == ["4", "5", "6"] and gpus.visible_gpus([0, 2]) == ["4", "6"]
    with pytest.raises(ValueError):
        gpus.visible_gpus([3])
    cfg = _hydra_cfg(["launcher=gpus", "hydra.callbacks.gpus.jobs_per_gpu=2", f"hydra.sweep.dir={tmp_path}"])
    pin = gpus.PinGPUs(**{k: v for k, v in cfg.hydra.callbacks.gpus.items() if k != "_target_"})
    pin.on_multirun_start(cfg)
    assert cfg.hydra.launcher.n_jobs == 6  # 3 GPUs x 2 jobs each
    held = [gpus.claim_slot(tmp_path / ".gpus", 3) for _ in range(3)]  # three workers
    assert [s for s, _ in held] == [0, 1, 2] and [gpus.gpu_of_slot(s, ["4", "6"]) for s, _ in held] == ["4", "6", "4"]
    held[1][1].close()  # a worker ends: its slot is free again
    assert gpus.claim_slot(tmp_path / ".gpus", 3)[0] == 1


def test_slurm_launcher_writes_the_sbatch_script(tmp_path):
    """Through submitit up to `sbatch`, which a stand-in replaces: it keeps the script and refuses it.
    (tests/test_slurm.py runs sweeps on a real SLURM.)"""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text('#!/bin/sh\ncat "$@" > "$0.script"\necho "sbatch: error: stand-in" >&2\nexit 1\n')
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    out = _train("-m", "launcher=slurm", "hydra.launcher.partition=gpu", "hydra.launcher.timeout_min=90", "trainer=gpu",
                 "threads=2", "model=beta_vae,vae", "seed=0,1", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                 env={"PATH": f"{bin_dir}:{os.environ['PATH']}"}, timeout=120)
    script = (bin_dir / "sbatch.script").read_text()
    for line in ("#SBATCH --partition=gpu", "#SBATCH --time=90", "#SBATCH --gpus-per-node=1", "#SBATCH --array=0-3",
                 "#SBATCH --ntasks-per-node=1", "#SBATCH --cpus-per-task=2", "#SBATCH --mem=8GB",
                 f"#SBATCH --output={tmp_path / 'sweep'}/.submitit/"):
        assert line in script, script[-3000:]
    assert out.returncode == 2 and out.stderr.strip().splitlines()[-1] == \
        "error: SLURM refused the jobs: stand-in (partition=gpu cpus_per_task=2 mem_gb=8 gpus_per_node=1 " \
        "tasks_per_node=1 timeout_min=90)" and "Traceback" not in out.stderr, out.stderr[-3000:]
    _train("-m", "launcher=slurm", "seed=0,1", f"hydra.sweep.dir={tmp_path / 'cpu'}",
           env={"PATH": f"{bin_dir}:{os.environ['PATH']}"}, timeout=120)
    script = (bin_dir / "sbatch.script").read_text()
    assert "#SBATCH --cpus-per-task=1" in script and "gpus" not in script  # the default trainer asks for no GPU
    shown = _train("launcher=slurm", "--cfg", "hydra", "-p", "hydra.launcher")
    assert "dislab_slurm.SlurmLauncher" in shown.stdout and "timeout_min: 240" in shown.stdout


def test_ddp_on_cpu_trains_the_configured_steps_and_writes_results_once(tmp_path):
    out = _train("trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", *JOB, "steps=5", "batch_size=16",
                 "logger=wandb", f"hydra.run.dir={tmp_path}")
    assert out.returncode == 0, out.stderr[-3000:]
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["global_step"] == 5
    assert (tmp_path / "train_ddp_process_1.log").exists()  # a second process did train
    assert len(list((tmp_path / "wandb").glob("offline-run-*"))) == 1
    assert "distributed_backend=gloo" in out.stdout + out.stderr


@pytest.mark.slow
def test_ddp_jobs_in_a_sweep_run_once_each_and_a_failing_one_spares_the_rest(tmp_path):
    """Under the basic launcher every DDP rank runs its job alone (not the whole sweep again), and a
    job whose ranks die does not take the sweep with it (Lightning's watchdog would)."""
    out = _train("-m", "model=vae", "lr=1e30,1e-4", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
                 *JOB, "steps=4", "batch_size=16", f"hydra.sweep.dir={tmp_path}")
    assert out.returncode == 1, out.stderr[-3000:]
    assert (out.stdout + out.stderr).count("Launching 2 jobs locally") == 1
    assert "NonFiniteError" in (tmp_path / "0" / "error.txt").read_text()
    assert json.loads((tmp_path / "1" / "metrics.json").read_text())["global_step"] == 4
    assert (tmp_path / "1" / "train_ddp_process_1.log").exists()
    assert [r["status"] for r in _summary(tmp_path).values()] == ["failed", "done"]


def test_ddp_under_a_worker_launcher_is_refused_before_any_job(tmp_path, capsys):
    from dislab.sweep.callback import SweepCallback

    cfg = _hydra_cfg(["launcher=joblib", "trainer=ddp", f"hydra.sweep.dir={tmp_path}"])
    with pytest.raises(SystemExit) as e:
        SweepCallback().on_multirun_start(cfg)
    assert e.value.code == 2 and "launcher=local" in capsys.readouterr().err
    SweepCallback().on_multirun_start(_hydra_cfg(["launcher=joblib", f"hydra.sweep.dir={tmp_path}"]))


def test_a_finished_run_directory_is_not_reused_for_other_knobs(tmp_path):
    """run() under Hydra (in-process): the same overrides (and where it ran) skip a finished run; other knobs or
    another seed are refused in one line, naming both."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from conftest import FAST
    from dislab.train import run
    from dislab.validate import ConfigError

    def job(*over):
        cfg = _hydra_cfg([*FAST, "model=beta_vae", *over, f"run_dir={tmp_path}"])
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            del cfg["hydra"]
        return run(cfg)

    try:
        first = job("beta=4")
        stamp = (tmp_path / "metrics.json").stat().st_mtime_ns
        assert job("beta=4", "threads=1") == first  # where or how it ran does not count
        for other, said in ((["beta=5"], "beta=5"), (["beta=4", "seed=1"], "seed=1")):
            with pytest.raises(ConfigError, match=f"holds a run of .*beta=4.*, not of .*{said}"):
                job(*other)
        assert (tmp_path / "metrics.json").stat().st_mtime_ns == stamp
    finally:
        HydraConfig.instance().cfg = None


def test_the_summary_runs_keys_name_cells_by_what_tells_them_apart(tmp_path):
    """``<metric>_mean/<cell>`` keys carry only the overrides the sweep's cells do not all share (not the steps,
    data set or metrics every job ran with); a sweep of one cell is ``all``; seeds never split a cell."""
    from dislab.sweep.runs import Run
    from dislab.sweep.summary import cell_labels

    def job(*over):
        return Run(dir=tmp_path, overrides=list(over), config={}, choices={}, status="done")

    shared = ["dataset=toy", "steps=300", "metrics=mig", "logger=none"]
    runs = [job(*shared, "model=beta_vae", "beta=4", f"seed={s}") for s in (0, 1)] + \
        [job(*shared, "model=beta_vae", "beta=8", "seed=0"), job(*shared, "model=vae", "seed=0")]
    assert sorted(cell_labels(runs).values()) == ["model=beta_vae beta=4", "model=beta_vae beta=8", "model=vae"]
    assert cell_labels(runs)["dataset=toy steps=300 metrics=mig model=beta_vae beta=8"] == "model=beta_vae beta=8"
    assert sorted(cell_labels(runs[:3]).values()) == ["beta=4", "beta=8"]
    assert list(cell_labels(runs[:2]).values()) == ["all"]
