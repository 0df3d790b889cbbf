"""Crash-safe resume, SIGTERM, the NaN guard, and one clear line for each bad input."""

from __future__ import annotations

import csv
import errno
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import FAST, ROOT, compose
from dislab.cli import report_errors
from dislab.data.toy import Toy
from dislab.lock import RunDirInUse
from dislab.train import run
from dislab.validate import ConfigError

# 300 steps of a tiny MLP, checkpoint every 20, one thread: deterministic on CPU
RESUME = [o for o in FAST if not o.startswith(("steps=", "metrics_every="))] + [
    "steps=300", "checkpoint_every=20", "metrics_every=0", "eval_untrained=false", "threads=1", "model=beta_tcvae"]


def _weights(run_dir):
    state = torch.load(Path(run_dir) / "checkpoints" / "last.ckpt", weights_only=True)
    return state["state_dict"], state["optimizer_states"][0]["state"], state["global_step"]


def _start(run_dir):
    env = {**os.environ, "WANDB_MODE": "offline"}
    return subprocess.Popen([sys.executable, "train.py", *RESUME, f"run_dir={run_dir}"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for_checkpoint(proc, run_dir, timeout=120):
    ckpt = Path(run_dir) / "checkpoints" / "last.ckpt"
    end = time.time() + timeout
    while not ckpt.exists():
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        assert time.time() < end, "no checkpoint appeared"
        time.sleep(0.02)
    time.sleep(np.random.default_rng().uniform(0, 0.3))  # a random step after it


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    d = tmp_path_factory.mktemp("whole")
    metrics = run(compose([*RESUME, f"run_dir={d}"]))
    return metrics, _weights(d)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_run_resumes_to_the_same_weights(tmp_path, uninterrupted, sig):
    proc = _start(tmp_path)
    _wait_for_checkpoint(proc, tmp_path)
    with pytest.raises(RunDirInUse, match=f"in use by PID {proc.pid} on "):  # one writer at a time
        run(compose([*RESUME, f"run_dir={tmp_path}"]))
    proc.send_signal(sig)
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode != 0, out[-2000:]
    assert not (tmp_path / "metrics.json").exists()
    assert (tmp_path / ".lock").exists() == (sig == signal.SIGKILL)  # SIGTERM releases it; SIGKILL leaves it stale
    step = _weights(tmp_path)[2]
    assert 0 < step < 300
    if sig == signal.SIGTERM:
        assert "SIGTERM at step" in out and "checkpoint saved" in out  # saved on the signal itself
    metrics = run(compose([*RESUME, f"run_dir={tmp_path}"]))  # the same command again
    whole_metrics, (w_state, w_opt, w_step) = uninterrupted
    state, opt, final = _weights(tmp_path)
    assert final == w_step == 300 and not (tmp_path / ".lock").exists()
    assert all(torch.equal(state[k], w_state[k]) for k in w_state)
    assert all(torch.equal(opt[i]["exp_avg"], w_opt[i]["exp_avg"]) for i in w_opt)
    assert metrics == whole_metrics


def test_a_complete_run_is_not_trained_again(run_fast):
    metrics, run_dir = run_fast()
    stamp = (run_dir / "metrics.json").stat().st_mtime_ns
    again, _ = run_fast()
    assert again == metrics and (run_dir / "metrics.json").stat().st_mtime_ns == stamp


class NanToy(Toy):
    """Toy data whose third training batch is NaN."""

    calls = 0

    def sample_observations_from_factors(self, factors, rng=None):
        NanToy.calls += 1
        x = super().sample_observations_from_factors(factors, rng)
        return np.full_like(x, np.nan) if NanToy.calls == 3 else x


def _nan_run(tmp_path, policy, checkpoint_every=1, steps=5):
    NanToy.calls = 0
    over = [o for o in FAST if not o.startswith(("dataset=", "metrics_every=", "steps="))]
    cfg = compose([*over, "dataset=toy", f"dataset._target_={__name__}.NanToy", "metrics_every=0",
                   "eval_untrained=false", f"checkpoint_every={checkpoint_every}", f"steps={steps}",
                   f"nan_policy={policy}", f"run_dir={tmp_path}"])
    return run(cfg)


def test_nan_policy_stop_names_the_step_and_terms_and_keeps_the_checkpoint(tmp_path, capsys):
    with pytest.raises(SystemExit) as e, report_errors():
        _nan_run(tmp_path, "stop")
    assert e.value.code == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: non-finite loss or gradient at step 2:") and "recon=nan" in err
    assert err.count("\n") == 0
    state, _, step = _weights(tmp_path)
    assert step == 2 and all(torch.isfinite(v).all() for v in state.values())
    assert not (tmp_path / "metrics.json").exists()
    assert "NonFiniteError" in (tmp_path / "error.txt").read_text()


def test_nan_policy_skip_skips_and_counts(tmp_path):
    _nan_run(tmp_path, "skip")
    state, opt, step = _weights(tmp_path)
    assert step == 5 and all(torch.isfinite(v).all() for v in state.values())
    assert all(int(s["step"]) == 4 for s in opt.values())  # fused Adam skipped one of the five updates
    rows = list(csv.DictReader(io.StringIO((tmp_path / "history.csv").read_text())))
    assert [float(r["train/skipped_steps"]) for r in rows if r.get("train/skipped_steps")] == [1.0]


BAD = {
    "steps=0": "steps=0 is not allowed",
    "z_dim=-1": "z_dim=-1 is not allowed",
    "batch_size=0": "batch_size=0 is not allowed",
    "batch_size=5000": "batch_size=5000 is larger than the data set",
    "beta=-1": "beta=-1 is not allowed; beta must be a number >= 0",
    "beta=abc": "beta='abc' is not allowed",
    "lr=0": "lr=0 is not allowed",
    "nan_policy=ignore": "nan_policy='ignore' is not allowed",
    "compile=yes": "compile='yes' is not allowed; compile must be true or false",
    "+dataset.size=17": "dataset.size=17 is not allowed; dataset.size must be a positive multiple of 16",
    "metrics=udr": "udr is scored across the seeds of a sweep",
}


@pytest.mark.parametrize("override", BAD)
def test_bad_value_gets_one_line_and_no_results(tmp_path, capsys, override):
    cfg = compose([*FAST, "model=beta_tcvae", override, f"run_dir={tmp_path / 'run'}"])
    with pytest.raises(SystemExit) as e, report_errors():
        run(cfg)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and BAD[override] in err, err
    left = {p.name for p in (tmp_path / "run").rglob("*")} if (tmp_path / "run").exists() else set()
    assert left <= {"error.txt"}, left


def test_unwritable_output_directory(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SystemExit) as e, report_errors():
        run(compose([*FAST, f"run_dir={blocker / 'run'}"]))
    assert e.value.code == 2 and "cannot write the output directory" in capsys.readouterr().err


def test_checkpoint_of_another_model_is_refused(run_fast, tmp_path):
    with pytest.raises(ConfigError, match="differs in .*model._target_=dislab.models.beta_vae.BetaVAE"):
        d = tmp_path / "x"
        run_fast("model=beta_vae", run_dir=d)
        (d / "metrics.json").unlink()
        run_fast("model=vae", run_dir=d)


def test_a_full_disk_loses_nothing(run_fast, tmp_path, monkeypatch, capsys):
    from dislab import atomic

    real = atomic.write_bytes

    def full(path, data):
        if Path(path).name == "metrics.json":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, data)

    monkeypatch.setattr(atomic, "write_bytes", full)
    with pytest.raises(SystemExit) as e, report_errors():
        run_fast(run_dir=tmp_path / "r")
    assert e.value.code == 1 and "no space left on the device" in capsys.readouterr().err
    assert not (tmp_path / "r" / "metrics.json").exists() and not list((tmp_path / "r").rglob("*.tmp"))
    assert (tmp_path / "r" / "checkpoints" / "last.ckpt").exists()  # the trained weights are kept


def test_data_without_factors_runs_the_unsupervised_scores_and_refuses_asked_for_supervised_ones(tmp_path):
    from hydra.utils import instantiate
    from PIL import Image

    from dislab.validate import validate_data

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(40):
        pixels = np.random.default_rng(i).integers(0, 255, (80, 70, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.png")
    base = [o for o in FAST if "metrics" not in o] + ["metrics_every=0", "dataset=images", f"dataset.path={folder}"]
    metrics = run(compose([*base, "metrics=unsupervised", "++metrics.unsupervised.num_train=64",
                           f"run_dir={tmp_path / 'run'}"]))
    assert "gaussian_total_correlation" in metrics and "mig" not in metrics
    cfg = compose([*base, "metrics=mig"])
    data, chosen = instantiate(cfg.dataset), instantiate(cfg.metrics)
    validate_data(cfg, data, chosen, explicit_metrics=False)  # the default list: skipped with a log line
    with pytest.raises(ConfigError, match="metrics mig need ground-truth factors, which Images lacks"):
        validate_data(cfg, data, chosen, explicit_metrics=True)


def _guard_step(guard, params, step, terms=None, opt=None):
    from types import SimpleNamespace

    trainer = SimpleNamespace(global_step=step, loggers=[])
    module = SimpleNamespace(last_terms=terms or {})
    guard.on_before_optimizer_step(trainer, module, opt or torch.optim.SGD(params, lr=0.1))
    return trainer


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf"), None])
def test_nan_guard_sees_every_non_finite_gradient_and_no_overflowing_finite_one(bad):
    from dislab.callbacks.nan_guard import NanGuard, NonFiniteError

    params = [torch.nn.Parameter(torch.zeros(3)) for _ in range(3)]
    for p in params:
        p.grad = torch.full((3,), 3e38)  # finite, but their sum overflows float32
    if bad is not None:
        params[1].grad[2] = bad
    guard = NanGuard("stop")
    trainer = _guard_step(guard, params, 7)
    assert torch.equal(params[0].grad, torch.full((3,), 3e38))  # the check leaves gradients as they were
    if bad is None:
        guard.check(trainer)
    else:
        with pytest.raises(NonFiniteError, match="at step 7"):
            guard.check(trainer)


@pytest.fixture
def no_host_reads(monkeypatch):
    """Any read of a tensor's value on the host (what waits for a GPU) raises inside this fixture's scope."""
    def refuse(*a, **k):
        raise AssertionError("a host read of a tensor inside the training step")

    for name in ("item", "tolist", "__bool__", "__float__", "__int__", "__index__", "numpy"):
        monkeypatch.setattr(torch.Tensor, name, refuse)
    return monkeypatch


def test_nan_guard_stop_defers_the_read_and_names_the_first_bad_step_and_its_terms(no_host_reads):
    from dislab.callbacks.nan_guard import NanGuard, NonFiniteError

    p = torch.nn.Parameter(torch.zeros(2))
    guard, opt = NanGuard("stop"), torch.optim.SGD([p], lr=0.1)
    for step, g, loss in ((4, 1.0, 2.5), (5, float("nan"), 7.25), (6, float("inf"), 9.0), (7, 1.0, 1.0)):
        p.grad = torch.full((2,), g)
        trainer = _guard_step(guard, [p], step, {"loss": torch.tensor(loss), "recon": torch.tensor(loss - 1)}, opt)
    no_host_reads.undo()  # now the host reads: at step 8, it names step 5 and its terms
    with pytest.raises(NonFiniteError, match=r"at step 5: loss=7\.25, recon=6\.25 \(nan_policy=stop"):
        guard.check(trainer)


def test_nan_guard_skip_leaves_weights_and_fused_adam_state_exactly_unchanged_on_the_device(no_host_reads):
    from dislab.callbacks.nan_guard import NanGuard

    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(4)), torch.nn.Parameter(torch.randn(3))]
    opt = torch.optim.Adam(params, lr=0.1, fused=True)
    guard = NanGuard("skip")

    def step(i, grads):
        for p, g in zip(params, grads, strict=True):
            p.grad = g.clone()
        _guard_step(guard, params, i, opt=opt)
        opt.step()

    step(0, [torch.ones(4), torch.ones(3)])
    before = [p.detach().clone() for p in params], {k: v.clone() for k, v in opt.state[params[0]].items()}
    step(1, [torch.ones(4), torch.tensor([1.0, float("nan"), 1.0])])  # skipped: nothing changes
    after_skip = [p.detach().clone() for p in params], {k: v.clone() for k, v in opt.state[params[0]].items()}
    step(2, [torch.ones(4), torch.ones(3)])  # a finite step updates as usual
    no_host_reads.undo()
    assert all(torch.equal(p, q) for p, q in zip(after_skip[0], before[0], strict=True))
    assert all(torch.equal(v, after_skip[1][k]) for k, v in before[1].items())
    assert not torch.equal(params[0], before[0][0]) and int(opt.state[params[0]]["step"]) == 2
    logged = []
    from types import SimpleNamespace

    guard.check(SimpleNamespace(global_step=3, loggers=[SimpleNamespace(log_metrics=lambda m, step: logged.append(
        (m, step)))]))
    assert logged == [({"train/skipped_steps": 1}, 3)] and guard.state_dict() == {"skipped": 1}


def test_nan_guard_skip_without_a_fused_optimizer_drops_the_gradients():
    from dislab.callbacks.nan_guard import NanGuard

    params = [torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(2))]
    params[0].grad, params[1].grad = torch.ones(3), torch.tensor([0.0, float("nan")])
    guard = NanGuard("skip")
    trainer = _guard_step(guard, params, 0, opt=torch.optim.Adam(params))
    assert params[0].grad is None and params[1].grad is None
    guard.check(trainer)
    assert guard.state_dict() == {"skipped": 1}


def test_nan_guard_reads_a_full_buffer_at_once():
    from dislab.callbacks.nan_guard import NanGuard, NonFiniteError

    p = torch.nn.Parameter(torch.zeros(2))
    guard, opt = NanGuard("stop", capacity=3), torch.optim.SGD([p], lr=0.1)
    for step in range(3):
        p.grad = torch.full((2,), float("nan") if step == 1 else 0.0)
        _guard_step(guard, [p], step, opt=opt)
    p.grad = torch.zeros(2)
    with pytest.raises(NonFiniteError, match="at step 1: no loss terms recorded"):
        _guard_step(guard, [p], 3, opt=opt)


def test_nan_policy_stop_deferred_never_checkpoints_weights_after_the_bad_step(tmp_path, capsys):
    """The guard reads its flags at checkpoints, not every step: the step-4 checkpoint (weights after the
    NaN step 2) is refused, step 2's stays, and the error names step 2."""
    with pytest.raises(SystemExit) as e, report_errors():
        _nan_run(tmp_path, "stop", checkpoint_every=2, steps=8)
    assert e.value.code == 3
    assert capsys.readouterr().err.startswith("error: non-finite loss or gradient at step 2: loss=nan")
    state, _, step = _weights(tmp_path)
    assert step == 2 and all(torch.isfinite(v).all() for v in state.values())
