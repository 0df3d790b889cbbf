"""What a run prints (``dislab.console``, ``dislab.callbacks.progress``): plain lines prefixed by the job's
name without a terminal (no carriage return), a bar with step/steps, loss, steps/s and ETA on one, a line
per phase, the files at the end, and the library noise filtered by message while other warnings show."""

from __future__ import annotations

import logging
import re
import warnings
from types import SimpleNamespace

import pytest
import torch
from pytorch_lightning import Callback

from conftest import FAST, compose

NUM = r"-?[\d.]+(?:e[+-]\d+)?"
PLAIN = re.compile(rf"^job-7 step (\d+)/20 \((\d+)%\) loss {NUM}( {NUM} steps/s( ETA \S+( s)?)?)?$")
NOISE = ("The `srun` command is available on your system but is not used",
         "`isinstance(treespec, LeafSpec)` is deprecated")


def _train(tmp_path, monkeypatch, *overrides, callbacks=()):
    from dislab.train import run

    fake = tmp_path / "bin"  # Lightning warns about an unused `srun` on every host that has one
    fake.mkdir()
    (fake / "srun").write_text("#!/bin/sh\n")
    (fake / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{__import__('os').environ['PATH']}")
    run_dir = tmp_path / "job-7"
    over = [o for o in FAST if not o.startswith(("steps=", "+trainer.enable_progress_bar"))]
    run(compose([*over, "steps=20", "metrics_every=0", f"run_dir={run_dir}", *overrides]), callbacks=callbacks)
    return run_dir


class Warns(Callback):
    """A callback that warns something dislab does not filter."""

    def on_train_start(self, trainer, pl_module):
        warnings.warn("an unrelated warning from a user's callback", UserWarning, stacklevel=1)


def test_a_run_without_a_terminal_prints_phases_plain_lines_and_where_its_files_are(tmp_path, monkeypatch, capfd,
                                                                                    caplog):
    caplog.set_level(logging.INFO)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # every warning, every time: the filter alone must hide the noise
        run_dir = _train(tmp_path, monkeypatch, "logger=wandb", callbacks=(Warns(),))
    out, err = capfd.readouterr()
    lines = [r.getMessage() for r in caplog.records if r.name == "dislab"]
    assert "\r" not in out + err + caplog.text
    assert all(m.startswith("job-7 ") for m in lines), lines  # each line names its job

    plain = [m for m in lines if " step " in m]
    steps = [int(PLAIN.match(m).group(1)) for m in plain]  # fails on a line of another format
    assert set(range(2, 21, 2)) <= set(steps) and steps == sorted(steps) and steps[-1] == 20  # every 20 // 10
    assert all(int(PLAIN.match(m).group(2)) == 100 * s // 20 for m, s in zip(plain, steps, strict=True))

    phases = ["untrained evaluation", "training", "final evaluation", "pictures"]
    starts = [next(i for i, m in enumerate(lines) if m.startswith(f"job-7 {p}: ") and m.endswith(" ..."))
              for p in phases]
    ends = [next(i for i, m in enumerate(lines) if re.fullmatch(rf"job-7 {p} done in ([\d.]+ s|\d+:\d\d)", m))
            for p in phases]
    assert starts == sorted(starts) and all(s < e for s, e in zip(starts, ends, strict=True))
    assert all(e < s for e, s in zip(ends, starts[1:], strict=False))  # phases in order, none overlapping
    assert starts[1] < lines.index(plain[0]) and lines.index(plain[-1]) < ends[1]  # plain lines during training

    summary = "\n".join(lines[:starts[0]])
    for row in ("run       job-7", "model     beta_tcvae (beta=6", "net mlp (", " parameters), z_dim 10",
                "data      toy: 1×64×64 images; factors posX (8), posY (8), scale (4), intensity (4)",
                "training  20 steps of batch 16", "metrics   final: mig;", "logging   History, Wandb (offline)",
                f"run dir   {run_dir}"):
        assert row in summary, row
    assert "{" not in summary  # no raw dict

    end = "\n".join(lines[ends[-1] + 1:])
    pictures = sorted(p.name for p in (run_dir / "pictures").iterdir() if p.suffix in (".png", ".gif"))
    assert {"traversals.png", "traversals.gif", "reconstructions.png", "samples.png"} <= set(pictures)
    assert f"results in {run_dir}" in end and f"metrics   {run_dir / 'metrics.json'}" in end
    assert f"pictures  {run_dir / 'pictures'}/ ({', '.join(pictures)})" in end
    offline = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert offline and f"upload    wandb sync {offline[-1]}" in end
    assert re.search(rf"mig: untrained {NUM} -> trained {NUM}", end)

    messages = [str(w.message) for w in caught]
    assert "an unrelated warning from a user's callback" in messages  # not blanket-silenced
    assert not [m for m in messages if m.startswith(NOISE)]
    for noise in ("anonymous setting has no effect", "Tip: For seamless", "`weights_only` was not set", "Epoch 0",
                  "v_num", "max_steps=20` reached", *NOISE):
        assert noise not in out + err + caplog.text, noise


def test_a_run_on_a_terminal_draws_a_bar_with_step_loss_rate_and_eta(tmp_path, monkeypatch, capsys, caplog):
    from dislab import console

    monkeypatch.setattr(console, "interactive", lambda: True)
    caplog.set_level(logging.INFO)
    _train(tmp_path, monkeypatch)
    err = capsys.readouterr().err
    frames = [f for f in err.split("\r") if f.strip()]
    last = [f for f in frames if f.startswith("training 20/20 |")][-1]
    assert re.search(rf"\| {NUM} steps/s, loss {NUM}, ETA 00:00\s*$", last), last
    assert "Epoch" not in err and "v_num" not in err
    lines = [r.getMessage() for r in caplog.records if r.name == "dislab"]
    assert not [m for m in lines if " step " in m]  # no plain lines beside the bar
    assert "training done in" in "\n".join(lines) and not [m for m in lines if m.startswith("job-7 ")]  # no prefix


def test_plain_lines_come_every_tenth_of_the_run_or_after_a_quiet_minute(monkeypatch, caplog):
    from dislab.callbacks import progress

    now = [1000.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    caplog.set_level(logging.INFO)
    bar = progress.ProgressBar("job", interactive=False)
    trainer = SimpleNamespace(max_steps=100, global_step=0)
    model = SimpleNamespace(last_terms={"loss": torch.tensor(2.5)})
    bar.on_train_start(trainer, model)
    for step in range(1, 101):
        trainer.global_step = step
        now[0] += 61.0 if step == 15 else 0.5  # a slow step: a line after 60 s without one
        bar.on_train_batch_end(trainer, model, None, None, step - 1)
    bar.on_train_end(trainer, model)
    steps = [int(r.getMessage().split()[2].split("/")[0]) for r in caplog.records]
    assert steps == [10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    # 10 -> 15: 5 steps in 2 + 61 s; 20 -> 30: 10 steps in 5 s, 70 steps left
    assert caplog.records[1].getMessage() == "job step 15/100 (15%) loss 2.5 0.0794 steps/s ETA 17:51"
    assert caplog.records[3].getMessage() == "job step 30/100 (30%) loss 2.5 2 steps/s ETA 35.0 s"
    assert caplog.records[-1].getMessage() == "job step 100/100 (100%) loss 2.5 2 steps/s"


def test_the_bar_redraws_on_a_clock_and_shows_the_last_step(monkeypatch):
    from dislab.callbacks import progress

    now = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    bar = progress.ProgressBar("job", interactive=True, interval=1.0)
    drawn = []
    monkeypatch.setattr(bar, "_draw", lambda step, loss: drawn.append((step, loss)))
    bar.bar, bar._next_time = SimpleNamespace(close=lambda: None), now[0] + 1.0
    trainer = SimpleNamespace(max_steps=10, global_step=0)
    model = SimpleNamespace(last_terms={"loss": torch.tensor(1.5)})
    for i in range(10):
        now[0] += 0.3  # 0.3 s a step: a redraw every fourth step
        trainer.global_step = i + 1
        bar.on_train_batch_end(trainer, model, None, None, i)
    bar.on_train_end(trainer, model)
    assert drawn == [(4, 1.5), (8, 1.5), (10, 1.5)]


@pytest.mark.parametrize("noise", NOISE)
def test_library_noise_is_filtered_by_its_message_and_nothing_else(noise):
    from dislab.console import quiet_library_noise

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_library_noise()
        warnings.warn(f"{noise} (and more words)", UserWarning, stacklevel=1)
        warnings.warn(f"a message that quotes: {noise}", UserWarning, stacklevel=1)  # not the library's
        warnings.warn("any other warning", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == [f"a message that quotes: {noise}", "any other warning"]


def test_lightning_adverts_are_dropped_and_its_other_lines_kept(caplog):
    from dislab.console import quiet_library_noise

    quiet_library_noise()
    caplog.set_level(logging.INFO)
    lightning = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    lightning.info("💡 Tip: For seamless cloud logging and experiment tracking, try installing [litlogger]")
    lightning.info("GPU available: False, used: False")
    assert [r.getMessage() for r in caplog.records] == ["GPU available: False, used: False"]


def test_durations_read_as_seconds_minutes_or_hours():
    from dislab.callbacks.progress import duration

    assert [duration(s) for s in (4.04, 59.94, 185, 3725)] == ["4.0 s", "59.9 s", "3:05", "1:02:05"]


@pytest.mark.parametrize("stdout, stderr, env, multirun, bar", [
    (True, True, {}, False, True),
    (False, True, {}, False, False),  # `> log`
    (True, False, {}, False, False),  # `2> log`
    (True, True, {"SLURM_JOB_ID": "7"}, False, False),  # a batch job's terminal-less output
    (True, True, {"SLURM_JOB_ID": "7", "SLURM_PTY_PORT": "1"}, False, True),  # srun --pty: a terminal
    (True, True, {}, True, False),  # parallel sweep jobs share one terminal
])
def test_a_bar_only_on_a_terminal_that_one_job_owns(monkeypatch, stdout, stderr, env, multirun, bar):
    from hydra.core.hydra_config import HydraConfig

    from dislab import console

    monkeypatch.setattr(console.sys, "stdout", SimpleNamespace(isatty=lambda: stdout))
    monkeypatch.setattr(console.sys, "stderr", SimpleNamespace(isatty=lambda: stderr))
    for k in ("SLURM_JOB_ID", "SLURM_PTY_PORT"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(HydraConfig, "initialized", staticmethod(lambda: True))
    mode = SimpleNamespace(name="MULTIRUN" if multirun else "RUN")
    monkeypatch.setattr(HydraConfig, "get", staticmethod(lambda: SimpleNamespace(mode=mode)))
    assert console.interactive() is bar
