"""Measure a lent GPU in one command (at most 8 minutes) and write one JSON (``--out``), section by
section, so a run cut short still leaves what it measured.

Sections, in order; each runs in its own process with a time limit, and one that does not fit in
what is left of the budget is skipped, saying so in the JSON:

1. ``correctness``: the same 50 training steps (conv64 beta-TCVAE on dSprites, batch 64, default
   settings) on the CPU and on the GPU, from the same initial weights, batches and noise (the
   reparameterisation noise is drawn on the host for both; TF32 off): the per-step losses must agree
   within ``TOLERANCE`` (relative).
2. ``rate``: training steps/s of one run (``python train.py``) at batch 64 (conv64 beta-TCVAE on
   dSprites): eager with default settings, compiled (``compile=true compile_mode=reduce-overhead``: the
   whole step, replayed as CUDA graphs) and with ``trainer.precision=bf16-mixed``; peak GPU memory of each.
3. ``metrics``: the default metric suite's time with the model on the GPU.
4. ``packed``: model-steps/s of k models trained as one packed program, k = 1, 8, 32, 64
   (``packed_rates``).
5. ``processes``: aggregate model-steps/s of 4 and 8 such jobs as separate processes on the one GPU
   (started together, as ``launcher=gpus hydra.callbacks.gpus.jobs_per_gpu=k`` runs them), each job
   counting only the steps it ends inside a common window (a job that starts after it counts none).
6. ``full``: when the measured rate allows it within the budget, one full 300,000-step beta-TCVAE
   (beta=6) model on dSprites and its default metrics (MIG, DCI, ...); otherwise its projected time;
   and the projected time of the 180-model dSprites study (``projected_study``).
   Sections 1-4 take about 6 minutes, so in one call the model fits only above ~3,000 steps/s;
   ``--only full`` trains it alone in a second call (it fits in 8 minutes above ~800 steps/s).

The logger is CSV (W&B is not on the device image); metrics during training are off in the timed
runs and the full model (a default run scores ``metrics=fast`` every 500 steps; ``metrics_suite``
gives the cost of the larger default suite).

On the device, after ``scripts/prepare_device.sh`` here (it fills .whl/ with what the image lacks) and
with .whl/ copied beside the working tree (it is git-ignored: name it among the paths carried along):
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl &&
    PYTHONPATH=/tmp/site:src python3 scripts/device_check.py --out $OUT/device_check.json
    ... scripts/device_check.py --only full [--full-override compile=true ...] --out $OUT/full.json
Here, without a GPU, every section in miniature (toy data, tiny net, a few steps):
    PYTHONPATH=src .venv/bin/python scripts/device_check.py --cpu-smoke --out /tmp/device_check.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUDY = ["model=beta_tcvae", "beta=6", "net=conv64", "dataset=dsprites", "batch_size=64"]
TIMED = ["metrics=none", "metrics_every=0", "eval_untrained=false", "num_eval=64", "num_decomposition=0",
         "logger=csv", "+trainer.enable_progress_bar=false"]
SMOKE = ["dataset=toy", "+dataset.size=16", "net=mlp", "+net.hidden=32"]
TOLERANCE = {"first_step": 1e-5, "all_steps": 1e-3}  # relative loss difference, CPU vs GPU, float32
FULL_STEPS = 300_000
STUDY_MODELS = 180  # disentanglement_lib's dSprites study: 6 methods x 6 settings x 5 seeds
PACKED_K = (1, 8, 32, 64)


# -- children: one measurement each, run as ``device_check.py --child <kind> <spec json>`` ----------------

def _compose(overrides):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=list(overrides))


class _Done(Exception):
    """Raised by the meter to end a timed run without its final evaluation."""


def _meter(warmup: int, seconds: float, t0: float | None, t1: float | None, cuda: bool, launched: float):
    """A callback timing training steps: from the first step >= ``warmup`` (and wall time >= t0) for
    ``seconds`` (or until wall time t1), with the device synchronised at both ends; ``launched``:
    when the process was started (for its start-up time). A run whose first step >= ``warmup`` ends
    after t1 times no step: it was not training inside the window."""
    import torch
    from pytorch_lightning import Callback

    def sync():
        if cuda:
            torch.cuda.synchronize()

    class Meter(Callback):
        start = end = first_step_at = trained = None

        def on_train_end(self, trainer, *args):
            sync()
            self.trained = (time.time(), trainer.global_step)

        def on_train_batch_end(self, trainer, *args):
            step, now = trainer.global_step, time.time()
            if self.first_step_at is None:
                self.first_step_at = now
            if self.start is None:
                if step >= warmup and (t0 is None or now >= t0):
                    sync()
                    self.start = (time.time(), step)
                    if t1 is not None and self.start[0] >= t1:  # started after the window: no step inside it
                        self.end = self.start
                        raise _Done
                return
            if (t1 is not None and now >= t1) or (t1 is None and now - self.start[0] >= seconds):
                sync()
                self.end = (time.time(), step)
                raise _Done

    return Meter()


def child_rate(spec: dict) -> dict:
    """Steps/s of ``run()`` with ``spec['overrides']``; ``spec['window']``: a common wall-clock window."""
    import torch

    from dislab.train import run

    cuda = torch.cuda.is_available() and not spec.get("cpu")
    t0, t1 = spec.get("window") or (None, None)
    meter = _meter(spec["warmup"], spec["seconds"], t0, t1, cuda, spec["launched"])
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as d:
        cfg = _compose([*spec["overrides"], *TIMED, f"steps={spec['max_steps']}", f"run_dir={d}"])
        try:
            run(cfg, callbacks=(meter,))
        except _Done:
            pass
    if meter.end is None:
        raise RuntimeError(f"the run ended before its timing window closed (start {meter.start})")
    (ta, sa), (tb, sb) = meter.start, meter.end
    out = {"steps_per_s": (sb - sa) / (tb - ta) if tb > ta else 0.0, "timed_steps": sb - sa, "timed_s": tb - ta,
           "startup_s": meter.first_step_at - spec["launched"], "warmup_steps": sa}
    if cuda:
        out["peak_gpu_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    from torch._dynamo.utils import counters

    if counters["stats"]:  # a compiled run: what Dynamo traced (graphs once, no recompiles) and where it broke
        out["compiled"] = {"graphs": counters["stats"]["unique_graphs"], "frames_ok": counters["frames"]["ok"],
                           "graph_breaks": sum(counters["graph_break"].values())}
    return out


def child_correctness(spec: dict) -> dict:
    """The same ``steps`` steps on the CPU and on the GPU: per-step losses from history.csv."""
    import csv

    import torch

    from dislab.train import run

    if torch.cuda.is_available():
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    noise = torch.Generator()
    real = torch.randn_like

    def host_noise(t, *a, **k):  # the same reparameterisation noise on both devices
        return torch.randn(t.shape, generator=noise, dtype=t.dtype).to(t.device)

    torch.randn_like = host_noise
    losses = {}
    try:
        for name, trainer in (("cpu", "trainer=cpu"), ("gpu", spec["gpu_trainer"])):
            noise.manual_seed(1234)
            with tempfile.TemporaryDirectory() as d:
                cfg = _compose([*spec["overrides"], *TIMED, trainer, f"steps={spec['steps']}", f"run_dir={d}",
                                "+trainer.log_every_n_steps=1"])
                t = time.time()
                run(cfg)
                rows = list(csv.DictReader(open(Path(d) / "history.csv")))
                losses[name] = [float(r["train/loss"]) for r in rows if r.get("train/loss")]
                losses[name + "_s"] = time.time() - t
    finally:
        torch.randn_like = real
    cpu, gpu = losses["cpu"], losses["gpu"]
    if len(cpu) != spec["steps"] or len(gpu) != spec["steps"]:
        raise RuntimeError(f"expected {spec['steps']} logged losses, got {len(cpu)} (cpu) and {len(gpu)} (gpu)")
    rel = [abs(a - b) / max(abs(a), 1e-12) for a, b in zip(cpu, gpu, strict=True)]
    return {"steps": spec["steps"], "tolerance": TOLERANCE, "first_step_rel_diff": rel[0],
            "max_rel_diff": max(rel), "pass": rel[0] <= TOLERANCE["first_step"] and max(rel) <= TOLERANCE["all_steps"],
            "cpu_losses": cpu, "gpu_losses": gpu, "cpu_s": losses["cpu_s"], "gpu_s": losses["gpu_s"]}


def child_metrics(spec: dict) -> dict:
    """The metric suite's wall time on a freshly initialised model on the device (the time does not
    depend on training), one metric after another."""
    import torch
    from hydra.utils import instantiate

    from dislab.evaluate import compute_metrics
    from dislab.load import build_model

    cfg = _compose(spec["overrides"])
    data = instantiate(cfg.dataset)
    model = build_model(cfg, data)
    if torch.cuda.is_available() and not spec.get("cpu"):
        model = model.cuda()
    times, values = {}, {}
    t_all = time.time()
    for name, fn in (instantiate(cfg.metrics) or {}).items():
        t = time.time()
        values.update(compute_metrics({name: fn}, data, model, cfg.eval_seed))
        times[name] = time.time() - t
    return {"seconds": time.time() - t_all, "per_metric_s": times, "suite": sorted(times), "values_untrained": values}


def child_full(spec: dict) -> dict:
    """One full training run and its final metrics (metrics.json)."""
    import torch

    from dislab.train import run

    d = spec["run_dir"]
    cuda = torch.cuda.is_available() and not spec.get("cpu")
    meter = _meter(0, float("inf"), None, None, cuda, spec["launched"])
    metrics = run(_compose([*spec["overrides"], f"run_dir={d}"]), callbacks=(meter,))
    done = time.time()
    saved = json.loads((Path(d) / "metrics.json").read_text())
    (t_end, steps), t_first = meter.trained, meter.first_step_at
    return {"steps": saved["global_step"], "total_s": done - spec["launched"], "train_s": t_end - spec["launched"],
            "steps_per_s": (steps - 1) / (t_end - t_first), "final_evaluation_s": done - t_end, "metrics": metrics,
            "settings": {k: saved["settings"][k] for k in ("mig", "dci") if k in saved["settings"]}}


def child_packed(spec: dict) -> dict:
    """Model-steps/s of ``spec['k']`` jobs (seeds 0..k-1) trained as one packed group (``dislab.pack``), timed
    from step ``warmup`` for ``seconds`` with the device synchronised at both ends (the compiling, with
    ``compile=true``, falls in the warm-up); peak GPU memory."""
    import torch

    from dislab.pack import engine
    from dislab.pack.run import run_group

    cuda = torch.cuda.is_available() and not spec.get("cpu")
    k, warmup, seconds = spec["k"], spec["warmup"], spec["seconds"]
    real, times = engine.Pack.step, {}

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def timed(self, x):
        if self.step_index == warmup:
            sync()
            times["start"] = (time.time(), self.step_index)
        real(self, x)
        if "start" in times and time.time() - times["start"][0] >= seconds:
            sync()
            times["end"] = (time.time(), self.step_index)
            raise _Done

    engine.Pack.step = timed
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as d:
        jobs = [(_compose([*spec["overrides"], *TIMED, f"seed={i}", f"steps={10**7}", f"run_dir={d}/{i}"]), None)
                for i in range(k)]
        try:
            run_group(jobs)
        except _Done:
            pass
    if "end" not in times:
        raise RuntimeError("the group ended before its timing window closed")
    (ta, sa), (tb, sb) = times["start"], times["end"]
    out = {"k": k, "model_steps_per_s": k * (sb - sa) / (tb - ta), "steps_per_s": (sb - sa) / (tb - ta),
           "timed_steps": sb - sa}
    if cuda:
        out["peak_gpu_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


CHILDREN = {"packed": child_packed, "rate": child_rate,
            "correctness": child_correctness, "metrics": child_metrics, "full": child_full}


# -- the orchestrator ----------------------------------------------------------------------------------

class Check:
    """The budget, the JSON, and the children. ``scale`` stretches every section's time limit and
    estimate (a CPU smoke run on a busy machine starts its processes far slower than a GPU machine)."""

    def __init__(self, out: Path, budget: float, smoke: bool, scale: float = 1.0):
        self.out, self.budget, self.smoke, self.scale, self.t0 = out, budget, smoke, scale, time.time()
        self.res: dict = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                          "mode": "cpu-smoke" if smoke else "gpu", "budget_s": budget, "sections": {}}

    def left(self) -> float:
        return self.budget - (time.time() - self.t0)

    def save(self) -> None:
        self.res["elapsed_s"] = round(time.time() - self.t0, 1)
        tmp = self.out.with_name(f".{self.out.name}.tmp")
        tmp.write_text(json.dumps(self.res, indent=2) + "\n")
        os.replace(tmp, self.out)

    def note(self, name: str, status: str, seconds: float = 0.0, reason: str = "") -> None:
        self.res["sections"][name] = {"status": status, "seconds": round(seconds, 1), **({"reason": reason} if reason
                                                                                       else {})}
        print(f"[{time.time() - self.t0:6.1f} s] {name}: {status}{' (' + reason + ')' if reason else ''}", flush=True)
        self.save()

    def start(self, kind: str, spec: dict) -> subprocess.Popen:
        spec = {**spec, "launched": time.time()}
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "WANDB_MODE": "disabled",
               "GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824"}
        return subprocess.Popen([sys.executable, __file__, "--child", kind, json.dumps(spec)], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def collect(self, proc: subprocess.Popen, deadline: float) -> dict:
        try:
            out, err = proc.communicate(timeout=max(1.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise TimeoutError("ran past its time limit and was stopped") from None
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        if proc.returncode or not lines:
            raise RuntimeError(f"exit {proc.returncode}: {(err.strip().splitlines() or ['no output'])[-1][:300]}")
        return json.loads(lines[-1])

    def section(self, name: str, need: float, limit: float, kind: str, spec: dict):
        """Run one child if ``need`` seconds are left; give it at most ``limit``; returns its result or None."""
        need, limit = need * self.scale, limit * self.scale
        if self.left() < need:
            self.note(name, "skipped", reason=f"{need:.0f} s needed, {self.left():.0f} s left of the budget")
            return None
        t = time.time()
        try:
            res = self.collect(self.start(kind, spec), t + min(limit, self.left() - 5))
        except Exception as e:
            self.note(name, "failed", time.time() - t, f"{type(e).__name__}: {e}")
            return None
        self.note(name, "done", time.time() - t)
        return res

    def processes(self, jobs: int, overrides: list, startup: float, window: float, limit: float):
        """``jobs`` runs as separate processes at once; each counts the steps it ends inside one common window."""
        name = f"processes_{jobs}"
        limit = limit * self.scale
        if self.left() < limit:
            self.note(name, "skipped", reason=f"{limit:.0f} s needed, {self.left():.0f} s left of the budget")
            return None
        t = time.time()
        t0 = t + startup
        spec = {"overrides": overrides, "warmup": 0, "seconds": window, "window": [t0, t0 + window],
                "max_steps": 10**7, "cpu": self.smoke}
        procs = [self.start("rate", spec) for _ in range(jobs)]
        results, errors = [], []
        for p in procs:
            try:
                results.append(self.collect(p, t + limit))
            except Exception as e:
                errors.append(f"{type(e).__name__}: {e}")
        if errors:
            self.note(name, "failed", time.time() - t, f"{len(errors)} of {jobs} jobs: {errors[0]}")
            return None
        self.note(name, "done", time.time() - t)
        steps = sum(r["timed_steps"] for r in results)
        return {"jobs": jobs, "aggregate_steps_per_s": steps / window, "window_s": window,
                "jobs_in_window": sum(r["timed_steps"] > 0 for r in results),
                "per_job_steps_per_s": [r["steps_per_s"] for r in results],
                "peak_gpu_memory_mb_per_job": [r.get("peak_gpu_memory_mb") for r in results]}


def environment(smoke: bool) -> dict:
    import torch

    env = {"python": platform.python_version(), "torch": torch.__version__, "cpu_count": os.cpu_count()}
    try:
        import pytorch_lightning as pl

        env["pytorch_lightning"] = pl.__version__
    except ImportError as e:
        env["pytorch_lightning"] = f"missing: {e}"
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        env.update(gpu=torch.cuda.get_device_name(0), gpu_memory_gb=round(p.total_memory / 2**30, 1),
                   cuda=torch.version.cuda, capability=f"{p.major}.{p.minor}", gpus_visible=torch.cuda.device_count())
        try:
            env["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                           capture_output=True, text=True, timeout=20).stdout.strip()
        except Exception as e:  # informative only
            env["driver"] = f"unknown ({type(e).__name__})"
    else:
        env["gpu"] = None
    return env


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(os.environ.get("OUT", "."), "device_check.json"))
    ap.add_argument("--budget", type=float, default=470.0, help="seconds for everything (limit 480), x time-scale")
    ap.add_argument("--cpu-smoke", action="store_true", help="every section in miniature on the CPU (no GPU needed)")
    ap.add_argument("--time-scale", type=float, help="stretch every time limit (default 1; 10 with --cpu-smoke)")
    ap.add_argument("--only", choices=["full"], help="only the full 300,000-step model (a second call)")
    ap.add_argument("--full-override", action="append", default=[],
                    help="a Hydra override for the full model, e.g. compile=true (repeatable)")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        kind, spec = args.child
        print(json.dumps(CHILDREN[kind](json.loads(spec))))
        return 0

    smoke = args.cpu_smoke
    scale = args.time_scale or (10.0 if smoke else 1.0)
    check = Check(Path(args.out), args.budget * scale, smoke, scale)
    try:
        check.res["environment"] = env = environment(smoke)
    except Exception as e:
        check.res["error"] = f"cannot import the training stack: {type(e).__name__}: {e}"
        check.save()
        print(f"error: {check.res['error']}", file=sys.stderr)
        return 2
    if env["gpu"] is None and not smoke:
        check.res["error"] = "no CUDA device is visible (torch.cuda.is_available() is False); nothing measured"
        check.save()
        print(f"error: {check.res['error']}; use --cpu-smoke to try the script on a CPU", file=sys.stderr)
        return 2
    check.res["gpu"] = env["gpu"]
    print(f"device check on {env['gpu'] or 'CPU (smoke)'}, budget {check.budget:.0f} s, writing {args.out}", flush=True)
    base = [*STUDY[:2], *SMOKE] if smoke else STUDY
    trainer = "trainer=cpu" if smoke else "trainer=gpu"
    s = 0.05 if smoke else 1.0  # time scale of the smoke run
    if args.only != "full":
        run_sections(check, base, trainer, smoke, s)
    full(check, base, trainer, smoke, args.only == "full", args.full_override)
    check.save()
    print(json.dumps({k: v for k, v in check.res.items() if k not in ("correctness",)}, indent=1)[:3000])
    return 0


def run_sections(check: Check, base: list, trainer: str, smoke: bool, s: float) -> None:
    res = check.res
    res["correctness"] = check.section("correctness", 60 * s + 20, 120, "correctness", {
        "overrides": base, "steps": 50 if not smoke else 5, "gpu_trainer": trainer})
    if res["correctness"] is not None:
        print(f"  losses agree: {res['correctness']['pass']} (max relative difference "
              f"{res['correctness']['max_rel_diff']:.2e})", flush=True)
    rate = res["rate"] = {}
    variants = {"default": [], "compile": ["compile=true", "compile_mode=reduce-overhead"],
                "bf16": ["+trainer.precision=bf16-mixed"]}
    limits = {"default": 90, "compile": 180, "bf16": 90}
    for name, extra in variants.items():
        spec = {"overrides": [*base, trainer, *extra], "warmup": 200 if not smoke else 5,
                "seconds": 10 * s + (1 if smoke else 0), "max_steps": 10**7, "cpu": smoke}
        r = check.section(f"rate_{name}", 40 * s + 10, limits[name], "rate", spec)
        if r is not None:
            rate[name] = r
            print(f"  {name}: {r['steps_per_s']:.0f} steps/s", flush=True)
            check.save()
    mets = res["metrics_suite"] = check.section("metrics", 60 * s + 10, 120, "metrics", {
        "overrides": [*base, *(["metrics=mig", "++metrics.mig.num_train=512"] if smoke else [])], "cpu": smoke})
    if mets is not None:
        print(f"  default metric suite: {mets['seconds']:.1f} s", flush=True)
    default = rate.get("default")
    startup = (default["startup_s"] if default else 30.0) * 1.5 + (5 if smoke else 15)
    res["packed"] = packed_rates(check, base, trainer, smoke)
    check.save()
    res["processes"] = {}
    for jobs in ((2,) if smoke else (4, 8)):
        window = 3.0 if smoke else 15.0
        p = check.processes(jobs, [*base, trainer], startup, window, startup + window + (60 if smoke else 45))
        if p is not None:
            res["processes"][str(jobs)] = p
            print(f"  {jobs} processes: {p['aggregate_steps_per_s']:.0f} model-steps/s "
                  f"({p['jobs_in_window']} of {jobs} jobs inside the window)", flush=True)
            check.save()
    peaks = [r.get("peak_gpu_memory_mb") for r in rate.values()]
    peaks = [p for p in peaks if p is not None]
    res["peak_gpu_memory_mb"] = max(peaks) if peaks else None
    check.save()


# -- packed training: k models as one program ------------------------------------------------------------
def packed_rates(check: Check, base: list, trainer: str, smoke: bool, ks=PACKED_K) -> dict:
    """Model-steps/s of k models trained as one packed program (``pack=k``), eager for each k in ``ks`` and
    compiled (``compile=true compile_mode=reduce-overhead``: the group's loss and Adam as CUDA graphs) for the
    largest; ``{str(k) or "<k>_compiled": {"model_steps_per_s", ...}}`` (``projected_study`` reads it). A k
    that does not fit in GPU memory fails alone and says so."""
    out: dict = {}
    s = 0.05 if smoke else 1.0
    runs = [(str(k), k, []) for k in ((1, 2) if smoke else ks)]
    runs.append((f"{runs[-1][1]}_compiled", runs[-1][1], ["compile=true", "compile_mode=reduce-overhead"]))
    for name, k, extra in runs:
        spec = {"overrides": [*base, trainer, *extra], "k": k, "warmup": 3 if smoke else (30 if extra else 20),
                "seconds": 10 * s + (1 if smoke else -5), "cpu": smoke}
        r = check.section(f"packed_{name}", 30 * s + 10, 150 if extra else 60, "packed", spec)
        if r is not None:
            out[name] = r
            print(f"  packed k={name}: {r['model_steps_per_s']:.0f} model-steps/s", flush=True)
            check.save()
    return out


def projected_study(res: dict) -> dict | None:
    """The 180-model dSprites study (300,000 steps each) at the best measured rate: one run after another
    (``rate``), as separate processes (``processes``), packed (``packed``)."""
    rates = {f"single_{k}": v["steps_per_s"] for k, v in (res.get("rate") or {}).items() if v.get("steps_per_s")}
    rates.update({f"processes_{k}": v["aggregate_steps_per_s"] for k, v in (res.get("processes") or {}).items()
                  if v.get("aggregate_steps_per_s")})
    rates.update({f"packed_{k}": v["model_steps_per_s"] for k, v in (res.get("packed") or {}).items()
                  if isinstance(v, dict) and v.get("model_steps_per_s")})
    if not rates:
        return None
    best = max(rates, key=rates.get)
    hours = STUDY_MODELS * FULL_STEPS / rates[best] / 3600
    return {"models": STUDY_MODELS, "steps": FULL_STEPS, "best": best, "model_steps_per_s": rates[best],
            "training_hours": round(hours, 2), "by_setting_hours": {k: round(STUDY_MODELS * FULL_STEPS / v / 3600, 2)
                                                                    for k, v in rates.items()}}


def full(check: Check, base: list, trainer: str, smoke: bool, only: bool, more: list) -> None:
    """The projected time of a study model and, when it fits in what is left (or ``only``), the model
    itself, in the faster of the default and compiled settings measured."""
    res = check.res
    rates = {k: v["steps_per_s"] for k, v in (res.get("rate") or {}).items() if k in ("default", "compile")}
    best = max(rates, key=rates.get) if rates else None
    metrics_s = (res.get("metrics_suite") or {}).get("seconds")
    steps = 300 if smoke else FULL_STEPS
    if best:
        res["projected_300k_model_s"] = {"config": best, "steps_per_s": rates[best],
                                         "train_s": FULL_STEPS / rates[best], "final_metrics_s": metrics_s}
    res["projected_study"] = projected_study(res)
    check.save()
    if not (best or only):
        check.note("full", "skipped", reason="no measured rate to plan it with")
        return
    # training + final metrics (+ decomposition and pictures) + start-up, with a margin
    need = 0.0 if only else steps / rates[best] * 1.1 + (metrics_s or 60) * 1.5 + (15 if smoke else 60)
    extra = ["compile=true", "compile_mode=reduce-overhead"] if best == "compile" else []
    overrides = [*base, trainer, *extra, f"steps={steps}", "metrics_every=0", "eval_untrained=false", "logger=csv",
                 "+trainer.enable_progress_bar=false", *more]
    run_dir = tempfile.mkdtemp(prefix="dislab_full_")
    spec = {"overrides": overrides, "run_dir": run_dir, "cpu": smoke}
    r = check.section("full", need / check.scale, (check.left() - 5) / check.scale, "full", spec)
    if r is not None:
        res["full_run"] = {"overrides": overrides, **r}
        print(f"  full run: {r['steps']} steps at {r['steps_per_s']:.0f} steps/s, MIG {r['metrics'].get('mig')}, "
              f"DCI {r['metrics'].get('dci_disentanglement')}", flush=True)
    else:
        res["full_run"] = {"not_run": res["sections"]["full"].get("reason"), "needed_s": round(need)}


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception:
        traceback.print_exc()
        sys.exit(1)
