"""scripts/device_check.py's bookkeeping, without a GPU: each job counts only the steps it ends inside the common
window, and the study's projected time (the script itself runs with ``--cpu-smoke``)."""

from __future__ import annotations

import importlib.util
import time
from types import SimpleNamespace

import pytest

from conftest import ROOT


@pytest.fixture(scope="module")
def check():
    spec = importlib.util.spec_from_file_location("device_check", ROOT / "scripts" / "device_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_job_that_starts_after_its_window_counts_no_step(check):
    now = time.time()
    late = check._meter(0, 10.0, now - 20, now - 10, False, now - 30)  # the window closed before its first step
    with pytest.raises(check._Done):
        late.on_train_batch_end(SimpleNamespace(global_step=1))
    assert late.start == late.end

    inside = check._meter(0, 10.0, now - 1, now + 3600, False, now - 2)  # the window is open: steps count
    for step in (1, 2, 3):
        inside.on_train_batch_end(SimpleNamespace(global_step=step))
    assert inside.start[1] == 1 and inside.end is None


def test_the_study_is_projected_from_the_best_measured_rate(check):
    res = {"rate": {"default": {"steps_per_s": 500.0}, "compile": {"steps_per_s": 1000.0}},
           "processes": {"4": {"aggregate_steps_per_s": 1500.0}},
           "packed": {"8": {"model_steps_per_s": 6000.0}}}
    study = check.projected_study(res)
    assert study["best"] == "packed_8" and study["training_hours"] == pytest.approx(180 * 300_000 / 6000 / 3600,
                                                                                     abs=0.01)
    assert study["by_setting_hours"]["single_compile"] == pytest.approx(15.0)
    asked = []  # every packed section failing (a k that does not fit): nothing to project from
    failing = SimpleNamespace(section=lambda *a, **k: asked.append(a[0]), save=lambda: None)
    assert check.projected_study({"packed": check.packed_rates(failing, [], "", False)}) is None
    assert asked == ["packed_1", "packed_8", "packed_32", "packed_64", "packed_64_compiled"]
