"""logger=tensorboard and logger=mlflow: what they received, read back from TensorBoard's event files and from a
real ``mlflow server`` on loopback (and MLflow's default store in the run directory): the same scalars as
metrics.json, the run's config, and the pictures (equal, pixel for pixel, to those in ``pictures/``)."""

from __future__ import annotations

import io
import json
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


def _check_mlflow(uri: str, metrics: dict, run_dir: Path, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("dislab")
    (run,) = client.search_runs([exp.experiment_id])
    rid = run.info.run_id
    assert run.info.status == "FINISHED" and run.info.run_name == run_dir.name
    assert run.data.params["beta"] == "4" and run.data.params["model_name"] == "beta_vae"
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


def test_mlflow_server_receives_params_metrics_and_pictures(run_fast, mlflow_server, tmp_path):
    metrics, run_dir = run_fast("model=beta_vae", "logger=mlflow", f"logger.mlflow.tracking_uri={mlflow_server}")
    assert not (run_dir / "mlflow.db").exists()
    _check_mlflow(mlflow_server, metrics, run_dir, tmp_path / "download")


def test_mlflow_default_store_is_in_the_run_directory(run_fast, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may land in the working directory
    metrics, run_dir = run_fast("model=beta_vae", "logger=mlflow")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert (run_dir / "mlflow.db").is_file() and (run_dir / "mlartifacts").is_dir()
    _check_mlflow(f"sqlite:///{run_dir}/mlflow.db", metrics, run_dir, tmp_path / "download")


def test_a_failed_run_is_marked_failed_and_its_resume_continues_the_same_mlflow_run(run_fast, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    def broken(*args, **kwargs):
        raise RuntimeError("pictures broke")

    with monkeypatch.context() as m:  # fails after fit(), where Lightning does not mark the loggers
        m.setattr("dislab.train.write_pictures", broken)
        with pytest.raises(RuntimeError, match="pictures broke"):
            run_fast("model=beta_vae", "logger=mlflow")
    run_dir = tmp_path / "run"
    uri = f"sqlite:///{run_dir}/mlflow.db"
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("dislab").experiment_id])
    assert run.info.status == "FAILED" and (run_dir / "mlflow_run_id").read_text() == run.info.run_id + "\n"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "metrics/mig")] == [0]  # untrained only

    metrics, _ = run_fast("model=beta_vae", "logger=mlflow")  # the same command: resumes from the last checkpoint
    _check_mlflow(uri, metrics, run_dir, tmp_path / "download")  # one run, FINISHED, both segments' values
