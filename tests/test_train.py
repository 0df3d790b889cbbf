"""Training runs, in-process on the toy data set: every model YAML (by glob), the run directory,
and what W&B logged, read back from its offline run file."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from conftest import CONF, FAST, compose
from dislab.trackers.wandb import read_run, segments

MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))


@pytest.mark.parametrize("model", MODELS)
def test_every_model_trains_a_few_steps(run_fast, model):
    metrics, run_dir = run_fast(f"model={model}")
    assert 0 <= metrics["mig"] <= 1
    hist = (run_dir / "history.csv").read_text().splitlines()
    assert hist[0].startswith("step,") and "metrics/mig" in hist[0]
    assert (run_dir / "checkpoints" / "last.ckpt").stat().st_size > 0
    pictures = json.loads((run_dir / "pictures" / "pictures.json").read_text())
    point_encoder = model in ("ae", "aae", "infogan")  # stochastic = False: no KL, no kl.png
    assert (pictures["traversals"]["kl"] is None) == point_encoder
    assert (run_dir / "pictures" / "kl.png").exists() != point_encoder
    assert pictures["mi_heatmap"]["mig"] == metrics["mig"]


def test_run_directory_holds_every_result(run_fast):
    metrics, run_dir = run_fast("model=beta_tcvae", "z_dim=3", "+trainer.log_every_n_steps=1")
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["metrics"] == metrics and saved["global_step"] == 4
    assert saved["settings"]["mig"]["num_bins"] == 20 and saved["settings"]["mig"]["num_train"] == 256
    assert "torch" in saved["versions"] and "mig" in saved["untrained"]
    rep = np.load(run_dir / "representation.npz")
    assert rep["means"].shape == (128, 3) and rep["kl"].shape == (3,) and rep["factors"].shape == (128, 4)
    assert (rep["kl"] >= 0).all() and int(rep["eval_seed"]) == 0
    for name in ("traversals.png", "reconstructions.png", "samples.png", "kl.png", "mi_heatmap.png", "traversals.gif"):
        assert np.asarray(Image.open(run_dir / "pictures" / name).convert("RGB")).std() > 10, name  # not blank
    assert Image.open(run_dir / "pictures" / "traversals.gif").n_frames == 2 * 9 - 2
    pictures = json.loads((run_dir / "pictures" / "pictures.json").read_text())
    trav = pictures["traversals"]  # rows by the KL of representation.npz, active as UDR decides
    assert trav["rows"] == sorted(range(3), key=lambda j: -rep["kl"][j]) and trav["kl"] == rep["kl"].tolist()
    assert trav["active"] == (rep["kl"] > 0.01).tolist() and trav["kl_points"] == 128
    heat = pictures["mi_heatmap"]  # on the sample metrics/mig scored (256 points), not representation.npz's 128
    assert heat["mig"] == metrics["mig"] and heat["num_points"] == 256 and heat["num_bins"] == 20
    assert set(heat["best"]) == set(heat["gap"]) == {"posX", "posY", "scale", "intensity"}
    assert all((j is not None) == (heat["gap"][f] >= 0.1) for f, j in heat["best"].items())
    header = (run_dir / "history.csv").read_text().splitlines()[0].split(",")
    assert {"train/loss", "train/recon", "train/kl", "train/mi_mws", "train/tc_mws", "train/dwkl_mws"} <= set(header)
    assert not list(run_dir.rglob("*.tmp")), "temporary files left behind"


def test_same_seed_same_result(run_fast, tmp_path):
    a, _ = run_fast("model=beta_vae", run_dir=tmp_path / "a")
    b, _ = run_fast("model=beta_vae", run_dir=tmp_path / "b")
    c, _ = run_fast("model=beta_vae", "seed=1", run_dir=tmp_path / "c")
    assert a == b and a != c


def test_wandb_offline_run_holds_the_same_mig_as_metrics_json(run_fast):
    """Final metrics (metrics.json) are the summary's ``metrics/*`` and nothing else is; estimates scored during
    training (here also a metric the final list lacks) are ``during/*``, with their sample sizes in the config."""
    metrics, run_dir = run_fast("model=beta_vae", "logger=wandb", "group=test-group",
                                "metrics@metrics_during=[mig,unsupervised]",
                                "++metrics_during.unsupervised.num_train=96")
    files = list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1
    rec = read_run(files[0])
    assert rec.complete and rec.group == "test-group"
    saved = json.loads((run_dir / "metrics.json").read_text())
    final = {k[len("metrics/"):]: v for k, v in rec.summary.items() if k.startswith("metrics/")}
    assert final == saved["metrics"] == metrics  # exactly: no stale during-training value under a final name
    by_step = {}  # name -> [(step, value)]
    for h in rec.history:
        for k, v in h.items():
            if k.startswith(("metrics/", "during/")):
                by_step.setdefault(k, []).append((h["trainer/global_step"], v))
    assert by_step["metrics/mig"] == [(0, saved["untrained"]["mig"]), (4, metrics["mig"])]  # untrained, final
    assert [s for s, _ in by_step["during/mig"]] == [s for s, _ in by_step["during/gaussian_total_correlation"]] == [2]
    assert set(by_step) == {"metrics/mig", *(f"during/{k}" for k in ("mig", "gaussian_total_correlation",
                                                                      "gaussian_wasserstein_correlation",
                                                                      "gaussian_wasserstein_correlation_norm",
                                                                      "mutual_info_score"))}, set(by_step)
    settings = rec.config["settings"]
    assert settings["metrics"]["mig"]["num_train"] == 256 and settings["metrics"]["mig"]["num_bins"] == 20
    assert settings["during"]["mig"]["num_train"] == 128 and settings["during"]["unsupervised"]["num_train"] == 96
    assert rec.config["metrics_every"] == 2 and settings["metrics"] == saved["settings"]
    assert rec.config["beta"] == 4 and rec.config["model"]["_target_"] == "dislab.models.beta_vae.BetaVAE"
    pictures = {}  # name -> [trainer/global_step of each logging]
    for h in rec.history:
        for k, v in h.items():
            if k.startswith("pictures/") and k.endswith("/_type"):
                pictures.setdefault(k[len("pictures/"):-len("/_type")], []).append((v, h.get("trainer/global_step")))
    final = [("images/separated", 4)]
    assert pictures["traversals"] == pictures["reconstructions"] == [("images/separated", 2), *final]  # also during
    assert pictures["samples"] == pictures["kl"] == pictures["mi_heatmap"] == final
    assert pictures["traversals_gif"] == [("videos", 4)]  # the GIF, as a video
    (video,) = next(h["pictures/traversals_gif/videos"] for h in rec.history if "pictures/traversals_gif/videos" in h)
    assert video["_type"] == "video-file" and Image.open(files[0].parent / "files" / video["path"]).n_frames == 16


def test_eval_reproduces_the_final_metrics_from_the_checkpoint(run_fast):
    from hydra.utils import instantiate

    from dislab.evaluate import evaluate

    metrics, run_dir = run_fast("model=beta_vae")
    assert evaluate(run_dir, instantiate(compose(FAST).metrics)) == metrics


def test_eval_rescores_reach_the_runs_wandb_run_the_sweep_summary_and_the_report(run_fast):
    """eval.py's work (``rescore``, in-process) re-scores mig on another sample size and adds modularity:
    the run's own W&B run (resumed by its id) holds them as its summary, and sweep_summary.csv and the
    report's runs read them back, with the re-score's settings."""
    from dislab.report import study
    from dislab.rescore import rescore
    from dislab.sweep.summary import summarize
    from wandb_files import read_runs

    trained, run_dir = run_fast("model=beta_vae", "logger=wandb")
    cfg = compose([f"run={run_dir}", "metrics=[mig,modularity]", "++metrics.mig.num_train=200",
                   "++metrics.modularity.num_train=200", "++metrics.modularity.num_test=100"], config_name="eval")
    values, written, logged = rescore(cfg, run_dir / "eval" / "2026-01-02_03-04-05")
    assert logged and written.exists() and not (run_dir / ".lock").exists()
    (saved,) = run_dir.glob("eval/*/metrics.json")
    again = json.loads(saved.read_text())["metrics"]
    assert again == values
    assert {"mig", "modularity", "explicitness"} <= set(again) and again["mig"] != trained["mig"]
    assert json.loads((run_dir / "metrics.json").read_text())["metrics"] == trained  # the training's record stays
    rec = read_runs(run_dir)
    assert rec.complete and len(list((run_dir / "wandb").glob("offline-run-*"))) == 2
    assert {k[len("metrics/"):]: v for k, v in rec.summary.items() if k.startswith("metrics/")} == again
    assert rec.config["rescores"][saved.parent.name]["settings"]["mig"]["num_train"] == 200
    last = read_run(segments(run_dir)[-1])  # the resumed segment alone still names the run and its config
    assert last.config["beta"] == 4 and last.name == rec.name and last.group == rec.group != ""
    (row,) = summarize(run_dir)["table"]
    assert row["mig"] == again["mig"] and row["modularity"] == again["modularity"]
    assert row["rescored"] == f"eval/{saved.parent.name}"
    (r,) = study.load([run_dir])
    assert r.metrics == again and r.settings["mig"]["num_train"] == 200 and r.settings["modularity"]["num_test"] == 100


def test_channels_last_changes_the_layout_not_the_numbers():
    """The NHWC layout is a speed setting: conv weights change layout, the loss does not."""
    import torch
    from hydra.utils import instantiate

    from dislab.load import build_model

    losses = {}
    for cl in (False, True):
        cfg = compose(["dataset=toy", f"channels_last={str(cl).lower()}"])
        data = instantiate(cfg.dataset)
        torch.manual_seed(0)
        model = build_model(cfg, data)
        conv = model.net.encoder[2].weight  # 32 -> 32 channels: the two layouts differ
        assert conv.is_contiguous(memory_format=torch.channels_last) == cl and conv.is_contiguous() == (not cl)
        x = torch.from_numpy(data.sample_observations(8, np.random.default_rng(0)))
        torch.manual_seed(1)
        losses[cl] = model.losses(x)["loss"].item()
    assert losses[True] == pytest.approx(losses[False], rel=1e-5)


def test_compiled_net_trains_and_keeps_its_checkpoint_names(run_fast):
    import torch

    metrics, run_dir = run_fast("model=vae", "compile=true")
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert 0 <= metrics["mig"] <= 1 and state and not any("_orig_mod" in k for k in state)


def test_train_scalars_reach_the_history_every_log_every_n_steps(run_fast):
    """train/* is handed to Lightning only on the steps it writes; none of those steps may be lost."""
    import csv

    _, run_dir = run_fast("model=vae", "steps=6", "metrics_every=0", "+trainer.log_every_n_steps=2")
    rows = list(csv.DictReader(open(run_dir / "history.csv")))
    assert [int(r["step"]) for r in rows if r.get("train/loss")] == [1, 3, 5]
