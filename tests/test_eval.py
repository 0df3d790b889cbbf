"""``eval.py`` through its command line on a tiny finished run: a summary, a phase with its duration for
loading the checkpoint and for each metric, the values, all of it also in ``eval/<time>/eval.log``, and
``metrics.json`` recording the eval seed really used (the run's unless one is given); the bar over the
metrics that a terminal gets."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys

import pytest

from conftest import FAST, ROOT, compose

RUN_SEED = 5  # the run's eval_seed: not eval.py's default, so using 0 instead of it shows
METRICS = ["metrics=[mig,modularity]", "++metrics.mig.num_train=256",  # mig as the run scored it
           "++metrics.modularity.num_train=200", "++metrics.modularity.num_test=100"]
DURATION = r"([\d.]+ s|\d+:\d\d|\d+:\d\d:\d\d)"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished 4-step run (``job-3``) with eval_seed 5; returns (run dir, its final metrics)."""
    from dislab.train import run

    run_dir = tmp_path_factory.mktemp("eval") / "job-3"
    values = run(compose([*FAST, "model=beta_vae", f"eval_seed={RUN_SEED}", f"run_dir={run_dir}"]))
    return run_dir, values


def _eval(run_dir, name, *args):
    """``eval.py run=<run_dir>`` (output in ``eval/<name>``, no terminal): (stdout lines, out dir)."""
    out = run_dir / "eval" / name
    res = subprocess.run([sys.executable, "eval.py", f"run={run_dir}", *METRICS, *args, f"hydra.run.dir={out}"],
                         cwd=ROOT, env={**os.environ, "WANDB_MODE": "offline"}, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "\r" not in res.stdout + res.stderr  # no bar without a terminal
    return res.stdout.splitlines(), out


def _messages(lines):
    """The dislab logger's messages, without Hydra's ``[time][dislab][INFO] - `` (and the run's name)."""
    return [ln.split("] - ", 1)[1].removeprefix("job-3 ") for ln in lines if "][dislab][" in ln]


def test_eval_prints_a_phase_per_metric_with_the_values_and_logs_them_in_eval_log(trained):
    run_dir, values = trained
    lines, out = _eval(run_dir, "2026-01-01_00-00-01")
    msgs = _messages(lines)
    assert all(ln.split("] - ", 1)[1].startswith("job-3 ") for ln in lines if "][dislab][" in ln)  # the job's name

    phases = ["loading checkpoint", "mig", "modularity"]
    starts = [next(i for i, m in enumerate(msgs) if m.startswith(f"{p}: ") and m.endswith(" ...")) for p in phases]
    ends = [next(i for i, m in enumerate(msgs) if re.fullmatch(rf"{p} done in {DURATION}", m)) for p in phases]
    assert starts == sorted(starts) and all(s < e for s, e in zip(starts, ends, strict=True))
    assert all(e < s for e, s in zip(ends, starts[1:], strict=False))  # in order, none overlapping
    assert msgs[starts[1]] == "mig: metric 1 of 2 ..." and msgs[starts[2]] == "modularity: metric 2 of 2 ..."

    saved = json.loads((out / "metrics.json").read_text())
    assert saved["eval_seed"] == RUN_SEED  # the run's, not null
    assert saved["metrics"]["mig"] == values["mig"]  # scored on the run's seed: the training's value again
    assert set(saved["metrics"]) == {"mig", "modularity", "explicitness", "explicitness_train"}
    for key, v in saved["metrics"].items():  # each value after its metric's phase
        at = next(i for i, m in enumerate(msgs) if re.fullmatch(rf"{key} +{re.escape(f'{v:.4f}')}", m))
        assert ends[1 if key == "mig" else 2] < at
    assert re.fullmatch(rf"done in {DURATION}; written to {re.escape(str(out / 'metrics.json'))}", msgs[-1])

    summary = msgs[:starts[0]]
    for row in (f"run dir     {run_dir}", "model       beta_vae (beta=4), net mlp, z_dim 10; data toy",
                f"checkpoint  step 4: {run_dir / 'checkpoints' / 'last.ckpt'}", "metrics     mig, modularity",
                f"eval seed   {RUN_SEED} (the run's)", f"output      {out}"):
        assert row in summary, row

    log = (out / "eval.log").read_text().splitlines()  # Hydra's job log: the same lines, values included
    assert [ln for ln in log if "][dislab][" in ln] == [ln for ln in lines if "][dislab][" in ln]


def test_eval_scores_and_records_the_seed_it_is_given(trained):
    run_dir, values = trained
    lines, out = _eval(run_dir, "2026-01-01_00-00-02", "eval_seed=3")
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["eval_seed"] == 3
    assert saved["metrics"]["mig"] != values["mig"]  # other evaluation points: the given seed is used
    assert f"eval seed   3 (given; the run's is {RUN_SEED})" in _messages(lines)


@pytest.mark.parametrize("show", [True, False])
def test_a_bar_over_the_metrics_only_on_a_terminal_redrawn_while_one_runs(capsys, show):
    """On a terminal the bar's clock is redrawn while a metric runs (nothing else happens meanwhile here),
    and lines logged meanwhile are written above it; without one nothing is drawn."""
    import time

    from dislab.console import bar

    log = logging.getLogger("dislab.test_eval")
    err = ""
    with bar("scoring", 2, show, interval=0.01) as progress:
        progress.set_postfix_str("now mig")
        log.warning("mig: metric 1 of 2 ...")
        for _ in range(1000):  # wait (up to 10 s) for redraws that no update caused
            time.sleep(0.01)
            err += capsys.readouterr().err
            if err.count("scoring 0/2 |") >= 5:
                break
        progress.update(2)
    err += capsys.readouterr().err
    if not show:
        assert err == ""
        return
    assert err.count("scoring 0/2 |") >= 5 and "now mig" in err
    assert "mig: metric 1 of 2 ..." in re.split(r"[\r\n]", err)  # a line of its own, not inside the bar
    assert re.search(r"scoring 2/2 \|█+\| \d\d:\d\d, now mig\n$", err)  # left behind, complete
