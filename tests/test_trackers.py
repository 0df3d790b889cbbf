"""logger=tensorboard and logger=mlflow: what they received, read back from TensorBoard's event files and from a
real ``mlflow server`` on loopback (and MLflow's default store, one for every run under ``outputs/``): the same
scalars as metrics.json, the run's config, and the pictures (equal, pixel for pixel, to those in ``pictures/``).
Runs under one ``outputs/`` side by side in one MLflow store and one TensorBoard logdir, also two jobs starting at
once; the line that opens each tracker at the end of a run; MLflow's start-up lines filtered; W&B online
without credentials logs offline."""

from __future__ import annotations

import io
import json
import logging
import math
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

FINAL_PICTURES = {"traversals", "reconstructions", "samples", "kl", "mi_heatmap"}
DURING = {"traversals", "reconstructions"}  # at the during-training evaluations (metrics_every=2 of steps=4)


def _png(path_or_bytes) -> np.ndarray:
    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    return np.asarray(Image.open(src).convert("RGB"))


def test_tensorboard_event_files_hold_the_scalars_config_and_pictures(run_fast):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    metrics, run_dir = run_fast("model=beta_vae", "logger=tensorboard", "+trainer.log_every_n_steps=2")
    saved = json.loads((run_dir / "metrics.json").read_text())
    ea = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0, "scalars": 0}).Reload()

    mig = [(e.step, e.value) for e in ea.Scalars("metrics/mig")]
    assert [s for s, _ in mig] == [0, 4]  # untrained, final
    assert [e.step for e in ea.Scalars("during/mig")] == [2]  # the during-training estimate, under its own name
    assert math.isclose(mig[0][1], saved["untrained"]["mig"], rel_tol=1e-6)
    assert math.isclose(mig[-1][1], metrics["mig"], rel_tol=1e-6)
    for k, v in saved["decomposition"].items():
        assert math.isclose(ea.Scalars(f"decomposition/{k}")[-1].value, v, rel_tol=1e-5, abs_tol=1e-6)
    assert [e.step for e in ea.Scalars("train/loss")] == [1, 3]

    content = ea.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    assert hparams["beta"].number_value == 4 and hparams["model_name"].string_value == "beta_vae"
    assert hparams["model/_target_"].string_value == "dislab.models.beta_vae.BetaVAE"

    images = {t[len("pictures/"):]: ea.Images(t) for t in ea.Tags()["images"]}
    assert set(images) == FINAL_PICTURES | {"traversals_gif"}
    for name, events in images.items():
        assert [e.step for e in events] == ([2, 4] if name in DURING else [4]), name
    for name in FINAL_PICTURES:
        assert np.array_equal(_png(images[name][-1].encoded_image_string), _png(run_dir / "pictures" / f"{name}.png"))
    gif = images["traversals_gif"][-1].encoded_image_string
    assert gif == (run_dir / "pictures" / "traversals.gif").read_bytes() and Image.open(io.BytesIO(gif)).n_frames == 16


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real ``mlflow server`` on 127.0.0.1 (a free port, a temporary store, no job-execution workers); stopped
    at the end (its process group: uvicorn too)."""
    root = tmp_path_factory.mktemp("mlflow_server")
    port = _free_port()
    log = open(root / "server.log", "w")
    proc = subprocess.Popen([str(Path(sys.executable).with_name("mlflow")), "server", "--host", "127.0.0.1",
                             "--port", str(port), "--backend-store-uri", f"sqlite:///{root}/store.db",
                             "--artifacts-destination", str(root / "artifacts"), "--workers", "1"],
                            cwd=root, env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        while True:  # no deadline of our own: a server that cannot start exits, and the suite's timeout stays
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited ({proc.returncode}):\n{(root / 'server.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        yield uri
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=60)
        log.close()


def _check_mlflow(uri: str, metrics: dict, run_dir: Path, tmp_path: Path, runs: int = 1, beta: int = 4) -> None:
    """The run ``run_dir`` logged to (its id in ``mlflow_run_id``), one of ``runs`` in experiment ``dislab``."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("dislab")
    assert len(client.search_runs([exp.experiment_id])) == runs
    run = client.get_run((run_dir / "mlflow_run_id").read_text().strip())
    rid = run.info.run_id
    assert run.info.status == "FINISHED" and run.info.run_name == run_dir.name
    assert run.data.params["beta"] == str(beta) and run.data.params["model_name"] == "beta_vae"
    assert run.data.params["seed"] == "0"
    assert run.data.params["model/_target_"] == "dislab.models.beta_vae.BetaVAE"
    saved = json.loads((run_dir / "metrics.json").read_text())
    history = sorted((m.step, m.value) for m in client.get_metric_history(rid, "metrics/mig"))
    assert history == [(0, pytest.approx(saved["untrained"]["mig"], rel=1e-6)), (4, pytest.approx(metrics["mig"]))]
    assert [m.step for m in client.get_metric_history(rid, "during/mig")] == [2]
    assert run.data.metrics["metrics/mig"] == pytest.approx(metrics["mig"], rel=1e-6)  # the latest value

    def names(folder):
        return {Path(a.path).name for a in client.list_artifacts(rid, folder)}

    assert names("pictures") == {"step_2", "step_4"}
    assert names("pictures/step_2") == {f"{n}.png" for n in DURING}
    assert names("pictures/step_4") == {f"{n}.png" for n in FINAL_PICTURES} | {"traversals.gif"}
    got = Path(client.download_artifacts(rid, "pictures/step_4", str(tmp_path)))
    for name in FINAL_PICTURES:
        assert np.array_equal(_png(got / f"{name}.png"), _png(run_dir / "pictures" / f"{name}.png")), name
    assert (got / "traversals.gif").read_bytes() == (run_dir / "pictures" / "traversals.gif").read_bytes()


def test_mlflow_server_receives_params_metrics_and_pictures(run_fast, mlflow_server, tmp_path, caplog):
    from mlflow.tracking import MlflowClient

    caplog.set_level(logging.INFO)
    metrics, run_dir = run_fast("model=beta_vae", "logger=mlflow", f"logger.mlflow.tracking_uri={mlflow_server}")
    assert not (run_dir / "mlflow.db").exists() and not (tmp_path / "mlflow.db").exists()
    _check_mlflow(mlflow_server, metrics, run_dir, tmp_path / "download")
    info = MlflowClient(mlflow_server).get_run((run_dir / "mlflow_run_id").read_text().strip()).info
    view = f"  view      {mlflow_server}/#/experiments/{info.experiment_id}/runs/{info.run_id}"
    assert [m for m in caplog.messages if m.endswith(view)] != []  # after the job's name, without a terminal


NOISE = ("Creating initial MLflow database tables", "Updating database tables", "Context impl SQLiteImpl",
         "Will assume non-transactional DDL", "Running upgrade", "setup plugin alembic", "not found. Creating it.")


def test_runs_under_one_outputs_folder_share_one_mlflow_store_and_one_tensorboard_logdir(
        run_fast, tmp_path, monkeypatch, capsys, caplog):
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer
    from tensorboard.plugins.hparams import plugin_data_pb2

    monkeypatch.chdir(tmp_path)  # nothing may land in the working directory
    caplog.set_level(logging.INFO)
    outputs = tmp_path / "outputs"
    dirs = {4: outputs / "runs" / "a", 8: outputs / "multirun" / "sweep" / "0"}  # a run, a sweep's job
    metrics = {beta: run_fast("model=beta_vae", f"beta={beta}", "logger=[mlflow,tensorboard]", run_dir=d)[0]
               for beta, d in dirs.items()}
    printed = capsys.readouterr()  # MLflow's own lines go to stderr, not through the root logger
    said = "\n".join([printed.out, printed.err, *caplog.messages])
    assert [line for line in NOISE if line in said] == []

    assert sorted(p.name for p in tmp_path.iterdir()) == ["outputs"]
    assert sorted(p.name for p in outputs.iterdir()) == ["mlartifacts", "mlflow.db", "multirun", "runs"]
    uri = f"sqlite:///{outputs}/mlflow.db"
    client = MlflowClient(uri)
    for beta, run_dir in dirs.items():
        assert not (run_dir / "mlflow.db").exists() and not (run_dir / "mlartifacts").exists()
        _check_mlflow(uri, metrics[beta], run_dir, tmp_path / "download" / str(beta), runs=2, beta=beta)
        rid = (run_dir / "mlflow_run_id").read_text().strip()
        assert client.get_run(rid).info.artifact_uri.startswith(str(outputs / "mlartifacts"))
    for view in (f"  view      mlflow ui --backend-store-uri {uri}", f"  view      tensorboard --logdir {outputs}"):
        assert len([m for m in caplog.messages if m.endswith(view)]) == 2  # at each run's end

    mux = EventMultiplexer().AddRunsFromDirectory(str(outputs)).Reload()  # the runs `tensorboard --logdir` lists
    assert sorted(mux.Runs()) == ["multirun/sweep/0/tensorboard", "runs/a/tensorboard"]
    hparams = mux.PluginRunToTagToContent("hparams")
    for beta, run_dir in dirs.items():
        name = str((run_dir / "tensorboard").relative_to(outputs))
        assert [e.step for e in mux.Scalars(name, "metrics/mig")] == [0, 4]
        assert math.isclose(mux.Scalars(name, "metrics/mig")[-1].value, metrics[beta]["mig"], rel_tol=1e-6)
        start = plugin_data_pb2.HParamsPluginData.FromString(hparams[name]["_hparams_/session_start_info"])
        assert start.session_start_info.hparams["beta"].number_value == beta
    columns = _hparams_dashboard(outputs)
    assert {"beta", "seed", "model_name"} <= columns["knobs"] and "metrics/mig" in columns["metrics"]


def _hparams_dashboard(logdir: Path) -> dict[str, set[str]]:
    """The knob and metric columns of TensorBoard's HParams dashboard for ``tensorboard --logdir <logdir>``."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import backend_context

    mux = plugin_event_multiplexer.EventMultiplexer().AddRunsFromDirectory(str(logdir)).Reload()
    provider = data_provider.MultiplexerDataProvider(mux, str(logdir))
    hp = backend_context.Context(base_plugin.TBContext(data_provider=provider, multiplexer=mux, logdir=str(logdir)))
    request = context.RequestContext()
    exp = hp.experiment_from_metadata(request, "", True, hp.hparams_metadata(request, ""),
                                      hp.hparams_from_data_provider(request, "", None))
    return {"knobs": {h.name for h in exp.hparam_infos}, "metrics": {m.name.tag for m in exp.metric_infos}}


JOB = """
import json, logging, sys, time
from pathlib import Path

import mlflow.store.tracking.sqlalchemy_store, pytorch_lightning.loggers  # imported before the gate opens
from hydra import compose, initialize_config_dir

from dislab.console import quiet_library_noise
from dislab.trackers.loggers import make_loggers
from dislab.train import group_name, run_name

logging.basicConfig(level=logging.INFO, format="[%(name)s] %(message)s")  # INFO to the console, as Hydra's
quiet_library_noise()  # as run() does
with initialize_config_dir(config_dir=sys.argv[1], version_base="1.3"):
    cfg = compose("train", overrides=json.loads(sys.argv[2]))
run_dir, gate = Path(cfg.run_dir), Path(sys.argv[3])
run_dir.mkdir(parents=True)
(gate.parent / "ready").touch()
while not gate.exists():
    time.sleep(0.01)
(mlflow,) = make_loggers(cfg, run_dir, run_name(cfg), group_name(cfg))
for step in range(1, 51):
    mlflow.log_metrics({"train/loss": float(step)}, step)
mlflow.finalize("success")
"""


def test_two_jobs_starting_at_once_build_and_share_one_new_mlflow_store(tmp_path):
    """Two sweep jobs (launcher=joblib runs two at once) open a new store at the same moment, one here, one in a
    subprocess: MLflow alone fails to build its tables twice at once. The subprocess leaves its logging to dislab
    (MLFLOW_CONFIGURE_LOGGING=false): alembic's lines would reach the console there too."""
    from mlflow.tracking import MlflowClient

    from conftest import CONF, FAST, ROOT, compose
    from dislab.console import quiet_library_noise
    from dislab.trackers.loggers import make_loggers
    from dislab.train import group_name, run_name

    outputs, gate = tmp_path / "outputs", tmp_path / "go"

    def job(n, beta):
        return [*FAST, "model=beta_vae", f"beta={beta}", "logger=mlflow", f"run_dir={outputs}/multirun/s/{n}"]

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "MLFLOW_CONFIGURE_LOGGING": "false"}
    proc = subprocess.Popen([sys.executable, "-c", JOB, str(CONF), json.dumps(job(1, 8)), str(gate)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    cfg, run_dir = compose(job(0, 4)), outputs / "multirun" / "s" / "0"
    run_dir.mkdir(parents=True)
    quiet_library_noise()
    while not (tmp_path / "ready").exists():
        if proc.poll() is not None:
            pytest.fail(f"the job ended before the gate:\n{proc.communicate()[0][-3000:]}")
        time.sleep(0.01)
    gate.touch()
    (mlflow,) = make_loggers(cfg, run_dir, run_name(cfg), group_name(cfg))  # the same as the subprocess's
    for step in range(1, 51):
        mlflow.log_metrics({"train/loss": float(step)}, step)
    mlflow.finalize("success")
    said = proc.communicate()[0]
    assert proc.returncode == 0, said[-3000:]
    assert [line for line in NOISE if line in said] == []

    client = MlflowClient(f"sqlite:///{outputs}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("dislab").experiment_id])
    assert sorted((r.data.params["beta"], r.info.status) for r in runs) == [("4", "FINISHED"), ("8", "FINISHED")]
    for r in runs:
        assert [m.step for m in client.get_metric_history(r.info.run_id, "train/loss")] == list(range(1, 51))


def test_an_experiment_another_job_created_meanwhile_is_used(tmp_path, monkeypatch):
    """Jobs on other hosts (a server's store) may create the experiment between this job's look-up and its
    creation."""
    from mlflow.tracking import MlflowClient

    from dislab.trackers.loggers import _mlflow_experiment

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    eid = client.create_experiment("dislab")
    monkeypatch.setattr(MlflowClient, "get_experiment_by_name", lambda self, name: None)  # looked before it existed
    _mlflow_experiment(uri, "dislab", None)
    monkeypatch.undo()
    assert [e.experiment_id for e in client.search_experiments() if e.name == "dislab"] == [eid]


@pytest.mark.parametrize("run_dir, home", [
    ("outputs/runs/2026-12-01_10-00-00_beta_vae", "outputs"),
    ("outputs/multirun/2026-12-01_10-00-00/3", "outputs"),
    ("/data/outputs/study/outputs/runs/x", "/data/outputs/study/outputs"),  # the nearest
    ("/scratch/me/x", "/scratch/me"),  # no outputs/ above it: its parent
    ("x", "."),
])
def test_trackers_share_the_nearest_outputs_folder_above_a_run_or_its_parent(run_dir, home, tmp_path, monkeypatch):
    from dislab.trackers.loggers import tracker_home

    monkeypatch.chdir(tmp_path)  # relative run directories: below a folder with no outputs/ above it
    assert tracker_home(run_dir) == Path(os.path.abspath(home))


def test_a_failed_run_is_marked_failed_and_its_resume_continues_the_same_mlflow_run(run_fast, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    def broken(*args, **kwargs):
        raise RuntimeError("pictures broke")

    with monkeypatch.context() as m:  # fails after fit(), where Lightning does not mark the loggers
        m.setattr("dislab.train.write_pictures", broken)
        with pytest.raises(RuntimeError, match="pictures broke"):
            run_fast("model=beta_vae", "logger=mlflow")
    run_dir = tmp_path / "run"
    uri = f"sqlite:///{tmp_path}/mlflow.db"  # beside the run directory (no outputs/ above it)
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("dislab").experiment_id])
    assert run.info.status == "FAILED" and (run_dir / "mlflow_run_id").read_text() == run.info.run_id + "\n"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "metrics/mig")] == [0]  # untrained only

    metrics, _ = run_fast("model=beta_vae", "logger=mlflow")  # the same command: resumes from the last checkpoint
    _check_mlflow(uri, metrics, run_dir, tmp_path / "download")  # one run, FINISHED, both segments' values


def test_wandb_online_without_credentials_logs_offline(tmp_path, monkeypatch, caplog):
    """W&B's settings are one place's (``dislab.trackers.wandb.defaults``) for every W&B run dislab writes: here the
    sweep's summary run and values added to a finished run; WANDB_MODE=online without credentials logs offline
    with a warning instead of asking for a login. With credentials (a netrc naming api.wandb.ai) it stays online."""
    from dislab.trackers.wandb import add_to_runs, defaults, log_run
    from wandb_files import read_runs

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))  # no credentials there
    run = tmp_path / "run"
    run.mkdir()
    monkeypatch.setenv("WANDB_MODE", "online")
    where = log_run(run, {"beta": 4}, {}, {"x": 1.0}, project="dislab-test", name="r")
    assert where.name.startswith("offline-run-") and "no W&B credentials: logging offline" in caplog.text
    monkeypatch.setenv("WANDB_MODE", "online")
    caplog.clear()
    assert add_to_runs({run: {"y": 2.0}}) == [run] and "no W&B credentials: logging offline" in caplog.text
    rec = read_runs(run)
    assert rec.complete and rec.summary["x"] == 1.0 and rec.summary["y"] == 2.0 and rec.name == "r"
    assert len(list((run / "wandb").glob("offline-run-*"))) == 2

    (tmp_path / "netrc").write_text("machine api.wandb.ai\n  login user\n  password secret\n")
    monkeypatch.setenv("WANDB_MODE", "online")
    defaults()
    assert os.environ["WANDB_MODE"] == "online"
