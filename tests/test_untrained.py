"""The untrained network's scores: computed once per network, seed, data set and metric settings and shared by the
jobs of a sweep (``dislab.evaluate.untrained_scalars``); evaluations run on the device the run trains on."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import FAST, compose


@pytest.fixture
def scored(monkeypatch):
    """The calls of ``dislab.evaluate.evaluation_scalars`` that score an untrained network (the final
    evaluation and the metrics during training call the names ``dislab.train`` and ``dislab.callbacks.metrics``
    imported first)."""
    import dislab.callbacks.metrics  # noqa: F401  (bind the real function before it is wrapped)
    import dislab.evaluate
    import dislab.train  # noqa: F401

    calls, real = [], dislab.evaluate.evaluation_scalars
    monkeypatch.setattr(dislab.evaluate, "evaluation_scalars", lambda *a, **k: calls.append(a) or real(*a, **k))
    return calls


def _sweep_job(sweep_dir, run_dir, overrides):
    """``run()`` as a job of a multirun with ``hydra.sweep.dir=sweep_dir`` hands it to the task."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from dislab.train import run

    cfg = compose([*FAST, *overrides, f"run_dir={run_dir}", "hydra.mode=MULTIRUN", f"hydra.sweep.dir={sweep_dir}"],
                  return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    try:
        run(cfg)
    finally:
        HydraConfig.instance().cfg = None
    return json.loads((run_dir / "metrics.json").read_text())["untrained"]


def test_jobs_sharing_network_seed_and_data_score_the_untrained_network_once(tmp_path, scored):
    """beta_vae and vae of one seed share their untrained network: the second job reads the first one's scores
    from ``<sweep dir>/untrained/``; another seed is scored again; a run outside a sweep scores its own, the
    same, and trains the same weights as the job whose scores came from the cache."""
    from dislab.train import run

    sweep = tmp_path / "sweep"
    first = _sweep_job(sweep, sweep / "0", ["model=beta_vae", "beta=4"])
    assert len(scored) == 1 and first and len(list((sweep / "untrained").glob("*.json"))) == 1
    assert _sweep_job(sweep, sweep / "1", ["model=vae"]) == first and len(scored) == 1  # from the cache
    other_seed = _sweep_job(sweep, sweep / "2", ["model=vae", "seed=1"])
    assert len(scored) == 2 and other_seed != first and len(list((sweep / "untrained").glob("*.json"))) == 2

    run(compose([*FAST, "model=vae", f"run_dir={tmp_path / 'alone'}"]))  # no sweep: no cache
    assert len(scored) == 3 and json.loads((tmp_path / "alone" / "metrics.json").read_text())["untrained"] == first
    cached, alone = (torch.load(d / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
                     for d in (sweep / "1", tmp_path / "alone"))
    assert all(torch.equal(cached[k], alone[k]) for k in alone)


def test_untrained_scores_are_keyed_by_what_they_depend_on(tmp_path, scored):
    """Same key: read back (no scoring, torch's global generator untouched either way); metric settings,
    eval_seed or the data set change the key."""
    from hydra.utils import instantiate

    from dislab.evaluate import untrained_key, untrained_scalars
    from dislab.load import build_model

    def scores(*over, cache=tmp_path):
        cfg = compose([*FAST, "model=beta_vae", *over])
        data = instantiate(cfg.dataset)
        torch.manual_seed(cfg.seed)
        model = build_model(cfg, data)
        metrics = instantiate(cfg.metrics)
        state = torch.random.get_rng_state()
        out = untrained_scalars(cfg, model, data, metrics, cache)
        assert torch.equal(torch.random.get_rng_state(), state)
        return out, untrained_key(cfg, model, data, metrics)

    (a, key), (b, same) = scores(), scores("model=factor_vae")
    assert a == b and key == same and len(scored) == 1
    assert scores("model=factor_vae", cache=None)[0] == a and len(scored) == 2  # its own network: the same scores
    for over in (["++metrics.mig.num_train=128"], ["eval_seed=3"], ["+dataset.size=32"], ["num_decomposition=32"]):
        _, other = scores(*over)
        assert other != key, over
    assert len(scored) == 6 and len(list(tmp_path.glob("*.json"))) == 5


def test_evaluations_run_on_the_training_device(tmp_path, monkeypatch):
    """The untrained evaluation runs after the model is moved to the trainer's device, and the final evaluation,
    representation.npz and pictures after it is moved back there from where Lightning's teardown left it."""
    import pytorch_lightning as pl

    import dislab.callbacks.metrics
    import dislab.evaluate
    import dislab.train
    from dislab.train import evaluation_device, run

    events = []
    real_to, real_cpu = pl.LightningModule.to, pl.LightningModule.cpu
    monkeypatch.setattr(pl.LightningModule, "to", lambda self, *a, **k: events.append(("to", *a)) or real_to(
        self, *a, **k))
    monkeypatch.setattr(pl.LightningModule, "cpu", lambda self: events.append(("cpu",)) or real_cpu(self))
    for module, name in ((dislab.evaluate, "evaluation_scalars"), (dislab.callbacks.metrics, "evaluation_scalars"),
                         (dislab.train, "evaluation_scalars"), (dislab.train, "representation"),
                         (dislab.train, "write_pictures")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _n=name, _r=real, **k: events.append((_n,)) or _r(*a, **k))

    class Where(pl.Callback):
        def on_fit_start(self, trainer, pl_module):
            events.append(("fit", evaluation_device(trainer)))

    run(compose([*FAST, "model=vae", "metrics_every=0", f"run_dir={tmp_path}"]), callbacks=(Where(),))
    device = next(e[1] for e in events if e[0] == "fit")
    moves = [i for i, e in enumerate(events) if e[0] in ("to", "cpu")]
    evals = [i for i, e in enumerate(events) if e[0] in ("evaluation_scalars", "representation", "write_pictures")]
    assert [events[i][0] for i in evals] == ["evaluation_scalars", "evaluation_scalars", "representation",
                                             "write_pictures"]
    fit = events.index(("fit", device))
    assert evals[0] < fit < evals[1]  # the untrained evaluation before training, the rest after it
    assert any(events[i] == ("cpu",) for i in moves if fit < i < evals[1])  # Lightning's teardown
    for i in evals:
        assert events[max(m for m in moves if m < i)] == ("to", device), (i, events)
