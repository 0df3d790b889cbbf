"""`make bench`: dislab's speed as ratios measured in one run (absolute numbers are noisy on shared
machines), printed and written as JSON (bench.json) to compare across commits.

0. the per-step cost of the framework itself (what bounds a GPU, where the network costs almost
   nothing): training steps/s of the default run with a tiny network (an MLP of 32 units on 16x16
   toy images, batch 64, W&B logging and the progress bar on, metrics off) / a bare PyTorch loop
   doing the same in the same process (render the step's batch, forward, backward, Adam), in
   interleaved rounds, the median of their ratios (target >= 0.8); ``--tiny-only`` measures this alone;
1. training steps/s of the default run (logging on, metrics off) / a bare PyTorch loop over the
   same network, batch, loss and optimizer on an in-memory tensor (target >= 0.95), and / the same
   bare loop with no tuning at all, at the same thread count (target >= 1.3; also reported at
   torch's default thread count);
2. images/s of each procedural data set / the training consumption (target >= 20);
3. metric encoding (images/s at the metric batch size, through ``represent``) / bare inference;
4. the default metric suite's wall time on a fixed representation, and each metric's share (and,
   with DISLAB_DLIB_PYTHON set to a Python that imports disentanglement_lib, its time on the same input);
5. peak memory (max RSS) of the default training run;
6. ``compile=true`` (the whole training step compiled: losses, backward, optimizer update) against the
   eager step: framework steps/s of each, after the warm-up steps that include the compiling, for the
   default network and the tiny one, in alternating processes (``--compile-only`` measures this alone).
7. packed training (``pack=k``): model-steps/s of a group of k beta-TCVAE models trained as one program /
   steps/s of one single run with the framework, with the tiny network (k = 16, eager and ``compile=true``:
   the group's loss and Adam compiled once, ~30 s, not timed; target >= 4) and with conv64
   (k = 2 and 4; packing is not the CPU default where it measures slower); ``--packed-only`` measures this
   alone.
Each training measurement runs in its own process, since the allocator tuning must be set
before a process starts.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TUNED = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824"


def _compose(overrides=()):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def _build(cfg, compile: bool = False):
    from hydra.utils import instantiate

    from dislab.load import build_model

    data = instantiate(cfg.dataset)
    return data, build_model(cfg, data, compile)


def bare_loop(steps: int, warmup: int, overrides, tuned: bool = True, default_threads: bool = False) -> dict:
    """The same network, loss and Adam on one in-memory batch, nothing else, at the run's thread count
    (``default_threads``: torch's own). ``tuned``: the run's settings (channels_last, fused Adam,
    compile; the allocator tuning comes from the environment); untuned: plain PyTorch (NCHW, the
    default Adam, the default allocator)."""
    import numpy as np
    import torch

    plain = ["channels_last=false", "optimizer.fused=false", "compile=false"]
    cfg = _compose([*overrides, *(() if tuned else plain)])
    if cfg.threads and not default_threads:
        torch.set_num_threads(int(cfg.threads))
    torch.manual_seed(0)
    data, model = _build(cfg, compile=bool(cfg.compile))
    x = torch.from_numpy(data.sample_observations(cfg.batch_size, np.random.default_rng(0)))
    opt = model.configure_optimizers()
    losses = model.losses
    if model.compile_mode:  # the step a compiled run takes (VAE.training_step)
        from dislab.models.vae import compile_step

        losses = model.compiled("losses", model.losses)
        compile_step(opt, model.compile_mode)
    for i in range(steps + warmup):
        if i == warmup:
            t0 = time.perf_counter()
        loss = losses(x)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return {"steps_per_s": steps / (time.perf_counter() - t0)}


TINY = ["dataset=toy", "+dataset.size=16", "net=mlp", "+net.hidden=32", "batch_size=64"]


def tiny(steps: int, warmup: int, rounds: int, overrides) -> dict:
    """The per-step cost of the framework with a network that costs almost nothing, interleaved in
    this one process so that both sides see the same machine load: one framework run (default
    trainer: progress bar and W&B logging on; metrics off) that, after every ``steps`` of its steps,
    hands the process to a bare loop for as many steps (batch t rendered from
    ``default_rng([seed, t])`` as the data module does, loss, backward, the run's Adam, on its own
    copy of the model). Each pair is a round: the median of the rounds' ratios and the pooled one."""
    import itertools
    import tempfile

    import numpy as np
    import torch
    from pytorch_lightning import Callback

    from dislab.train import run

    over = [*TINY, *overrides]
    cfg = _compose(over)
    data, model = _build(cfg, compile=bool(cfg.compile))
    opt = model.configure_optimizers()
    batch_ids = itertools.count()

    def bare(n: int) -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(n):
            rng = np.random.default_rng([cfg.seed, next(batch_ids)])
            loss = model.losses(torch.from_numpy(data.sample_observations(cfg.batch_size, rng)))["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return time.perf_counter() - t0, time.process_time() - c0

    class Interleave(Callback):
        """Framework time = from one training step's end to the next (data, hooks, step, logging);
        wall-clock, and CPU time of the whole process (all threads: rendering, W&B)."""

        def __init__(self):
            self.last, self.fw, self.rounds = (0.0, 0.0), [0.0, 0.0], []

        def on_train_batch_end(self, trainer, *args):
            step, now = trainer.global_step, (time.perf_counter(), time.process_time())
            if step < warmup:
                return
            if step > warmup:
                self.fw = [f + n - last for f, n, last in zip(self.fw, now, self.last, strict=True)]
            if step == warmup or (step - warmup) % steps == 0:
                wall, cpu = bare(steps if step > warmup else warmup)
                if step > warmup:
                    self.rounds.append({"framework": steps / self.fw[0], "bare": steps / wall,
                                        "ratio": wall / self.fw[0], "cpu_ratio": cpu / self.fw[1]})
                self.fw = [0.0, 0.0]
            self.last = (time.perf_counter(), time.process_time())

    clock = Interleave()
    with tempfile.TemporaryDirectory() as d:
        run(_compose([*over, f"steps={warmup + rounds * steps}", "metrics_every=0", "eval_untrained=false",
                      "metrics=none", "num_eval=64", "num_decomposition=0", f"run_dir={d}"]), callbacks=(clock,))
    mid = sorted(clock.rounds, key=lambda r: r["ratio"])[len(clock.rounds) // 2]
    cpu = sorted(r["cpu_ratio"] for r in clock.rounds)[len(clock.rounds) // 2]
    return {"rounds": clock.rounds, **mid, "cpu_ratio": cpu}


def framework(steps: int, warmup: int, overrides) -> dict:
    """``python train.py`` with the default model and W&B logging, metrics off, timed in-process."""
    import tempfile

    from pytorch_lightning import Callback

    from dislab.train import run

    class Clock(Callback):
        def on_train_batch_start(self, trainer, *a):
            if trainer.global_step == warmup:
                self.t0 = time.perf_counter()

        def on_train_batch_end(self, trainer, *a):
            self.t1 = time.perf_counter()

    clock = Clock()
    with tempfile.TemporaryDirectory() as d:
        cfg = _compose([*overrides, f"steps={steps + warmup}", "metrics_every=0", "eval_untrained=false",
                        "metrics=none", "num_eval=64", "num_decomposition=0", f"run_dir={d}",
                        "+trainer.enable_progress_bar=false", "+trainer.enable_model_summary=false"])
        run(cfg, callbacks=(clock,))
    return {"steps_per_s": steps / (clock.t1 - clock.t0)}


def encoding(overrides, batch_size=64, n=2048, rounds=3) -> dict:
    """``represent`` (numpy in, eval mode, inference_mode) against the net's encoder on a tensor, after
    a warm-up pass of each (kernels are created on first use); the median of ``rounds`` paired rounds."""
    import numpy as np
    import torch

    cfg = _compose(overrides)
    data, model = _build(cfg)
    x = data.sample_observations(n, np.random.default_rng(0))
    xt = torch.from_numpy(x)
    model.eval()

    def dislab():
        for s in range(0, n, batch_size):
            model.represent(x[s:s + batch_size])

    def bare():
        with torch.inference_mode():
            for s in range(0, n, batch_size):
                model.net.encode(xt[s:s + batch_size])

    def rate(fn):
        t0 = time.perf_counter()
        fn()
        return n / (time.perf_counter() - t0)

    dislab(), bare()
    pairs = sorted(((rate(dislab), rate(bare)) for _ in range(rounds)), key=lambda r: r[0] / r[1])
    return {"represent_images_per_s": pairs[rounds // 2][0], "bare_images_per_s": pairs[rounds // 2][1]}


def data_rates(batch_size=64, seconds=1.0) -> dict:
    """Images/s of every data set that needs no file (conf/dataset/*.yaml composed with defaults)."""
    import numpy as np
    from hydra.utils import instantiate

    out = {}
    for p in sorted((ROOT / "conf" / "dataset").glob("*.yaml")):
        try:
            data = instantiate(_compose([f"dataset={p.stem}"]).dataset)
        except Exception as e:  # needs a real file or a user-supplied path
            cause = e.__cause__ or e
            out[p.stem] = {"skipped": str(cause).splitlines()[0][:110]}
            continue
        rng = np.random.default_rng(0)
        # warm lazily built caches first: shapes3d renders its 480 geometries on first use (~9 s here);
        # 20,000 uniform draws miss one of them with probability 480 * (1 - 1/480)^20000 < 1e-15
        for _ in range(20):
            data.sample_observations(1_000, rng)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            data.sample_observations(batch_size, rng)
            n += batch_size
        out[p.stem] = {"images_per_s": n / (time.perf_counter() - t0)}
    return out


def packed(steps: int, warmup: int, ks: list[int], overrides) -> dict:
    """Model-steps/s of a packed group of k jobs (seeds 0..k-1, as a sweep's), timed over its training steps
    after ``warmup``, and steps/s of one such job run alone (``framework``)."""
    import tempfile

    from dislab.pack import engine
    from dislab.pack.run import run_group

    common = [*overrides, "model=beta_tcvae", "metrics_every=0", "eval_untrained=false", "metrics=none",
              "num_eval=64", "num_decomposition=0", "logger=csv"]
    single = framework(steps, warmup, common)["steps_per_s"]
    out = {"single_steps_per_s": single, "k": {}}
    real = engine.Pack.step
    for k, compiled in ks:
        times = {}

        def timed(self, x, times=times):
            if self.step_index == warmup:
                times["t0"] = time.perf_counter()
            real(self, x)
            times["t1"] = time.perf_counter()

        engine.Pack.step = timed
        with tempfile.TemporaryDirectory() as d:
            run_group([(_compose([*common, f"steps={steps + warmup}", f"seed={i}", f"run_dir={d}/{i}",
                                  f"compile={compiled}"]), None) for i in range(k)])
        engine.Pack.step = real
        rate = k * steps / (times["t1"] - times["t0"])
        name = f"{k}{' compiled' if compiled else ''}"
        out["k"][name] = {"model_steps_per_s": rate, "ratio_vs_single": rate / single}
    return out


def _child(kind: str, env_tuned: bool, args, extra=()) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    env["WANDB_MODE"] = env.get("WANDB_MODE", "offline")
    if env_tuned:
        env["GLIBC_TUNABLES"] = TUNED
    steps, rounds = (args.tiny_steps, args.tiny_rounds) if kind == "tiny" else (args.steps, args.rounds)
    override = [*args.override, *extra]
    if kind.startswith("packed"):  # packed_tiny | packed_conv64
        steps, override = args.packed_steps, [*(TINY if kind == "packed_tiny" else []), *override]
    cmd = [sys.executable, __file__, "--child", kind, "--steps", str(steps), "--warmup", str(args.warmup),
           "--rounds", str(rounds), *sum((["--override", o] for o in override), [])]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"bench child {kind} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def compile_rates(args) -> dict:
    """Framework steps/s with ``compile=true`` and ``compile=false`` (alternating processes, the median
    round's ratio) for the default network and the tiny one; the compiling falls in the warm-up steps."""
    out = {}
    for name, extra in (("default", []), ("tiny", TINY)):
        rounds = [(_child("framework", True, args, [*extra, "compile=false"]),
                   _child("framework", True, args, [*extra, "compile=true"])) for _ in range(args.compile_rounds)]
        ratios = sorted(c["steps_per_s"] / e["steps_per_s"] for e, c in rounds)
        out[name] = {"eager_steps_per_s": [e["steps_per_s"] for e, _ in rounds],
                     "compiled_steps_per_s": [c["steps_per_s"] for _, c in rounds],
                     "ratio": ratios[len(ratios) // 2]}
        print(f"compile   {name:<7} net: compiled / eager = {out[name]['ratio']:.3f} (median of "
              f"{args.compile_rounds} rounds: {', '.join(f'{r:.2f}' for r in ratios)}; eager "
              f"{sorted(out[name]['eager_steps_per_s'])[len(rounds) // 2]:.1f} steps/s)", flush=True)
    return out


def _packed(args) -> dict:
    """Section 7, printed as it is measured."""
    out = {}
    for kind, net, target in (("packed_tiny", "tiny net", " (target >= 4)"), ("packed_conv64", "conv64", "")):
        r = out[kind] = _child(kind, True, args)
        for k, v in r["k"].items():
            print(f"packed    {net:<8} k={k:<12} {v['model_steps_per_s']:8.1f} model-steps/s / single run "
                  f"{r['single_steps_per_s']:.1f} steps/s = {v['ratio_vs_single']:.2f}x{target}", flush=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300, help="timed training steps per measurement")
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=5, help="rounds of bare loop + framework")
    ap.add_argument("--override", action="append", default=[], help="a Hydra override for every measurement")
    ap.add_argument("--metrics-scale", type=float, default=0.2, help="metric sample sizes x this (time budget)")
    ap.add_argument("--tiny-steps", type=int, default=100, help="steps of each side per tiny-network round")
    ap.add_argument("--tiny-rounds", type=int, default=31, help="paired rounds of the tiny-network measurement")
    ap.add_argument("--tiny-only", action="store_true", help="measure the tiny-network ratio alone (~1-2 min)")
    ap.add_argument("--packed-steps", type=int, default=100, help="timed steps of each packed measurement")
    ap.add_argument("--packed-only", action="store_true", help="measure packed training alone (~3 min)")
    ap.add_argument("--compile-rounds", type=int, default=3, help="rounds of eager + compiled runs")
    ap.add_argument("--compile-only", action="store_true", help="measure compile=true against eager alone")
    ap.add_argument("--out", default="bench.json")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        if args.child == "framework":
            res = framework(args.steps, args.warmup, args.override)
        elif args.child == "tiny":
            res = tiny(args.steps, args.warmup, args.rounds, args.override)
        elif args.child == "packed_tiny":
            res = packed(args.steps, args.warmup, [(16, False), (16, True)], args.override)
        elif args.child == "packed_conv64":
            res = packed(args.steps, args.warmup, [(2, False), (4, False)], args.override)
        else:
            res = bare_loop(args.steps, args.warmup, args.override, tuned=args.child == "bare_tuned",
                            default_threads=args.child == "bare_untuned_default_threads")
        res["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(res))
        return

    t_start = time.perf_counter()
    res = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}, "steps": args.steps,
           "overrides": args.override}
    if args.compile_only:
        res["compile"] = compile_rates(args)
        Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
        return
    if args.packed_only:
        res["packed"] = _packed(args)
        Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
        return
    res["tiny"] = t = _child("tiny", True, args)
    tiny_rounds = ", ".join(f"{r['ratio']:.2f}" for r in t["rounds"])
    print(f"tiny net  framework {t['framework']:7.1f} steps/s | bare loop {t['bare']:7.1f}  framework / bare = "
          f"{t['ratio']:.3f} (target >= 0.8; median of {args.tiny_rounds} interleaved rounds of {args.tiny_steps} "
          f"steps: {tiny_rounds})\n          CPU time per step (all threads), bare / framework = {t['cpu_ratio']:.3f} "
          f"(the median round's; steadier than wall-clock on a loaded machine)", flush=True)
    if args.tiny_only:
        Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
        return
    res["bare_untuned"] = _child("bare_untuned", False, args)
    res["bare_untuned_default_threads"] = _child("bare_untuned_default_threads", False, args)
    # the overhead is a few percent against run-to-run swings of as much (the second core is shared):
    # alternate the two measurements and take the median of the per-round ratios
    rounds = [(_child("bare_tuned", True, args), _child("framework", True, args)) for _ in range(args.rounds)]
    res["rounds"] = [{"bare_tuned": b["steps_per_s"], "framework": f["steps_per_s"]} for b, f in rounds]
    mid = sorted(rounds, key=lambda bf: bf[1]["steps_per_s"] / bf[0]["steps_per_s"])[len(rounds) // 2]
    res["bare_tuned"], res["framework"] = mid
    fw, bare, untuned = (res[k]["steps_per_s"] for k in ("framework", "bare_tuned", "bare_untuned"))
    res["ratio_framework_vs_bare"] = fw / bare  # the median round's
    res["ratio_framework_vs_untuned_bare"] = fw / untuned
    consume = fw * _compose(args.override).batch_size
    res["data"] = data_rates()
    for v in res["data"].values():
        if "images_per_s" in v:
            v["ratio_vs_training"] = v["images_per_s"] / consume
    res["encoding"] = encoding(args.override)
    res["encoding"]["ratio"] = res["encoding"]["represent_images_per_s"] / res["encoding"]["bare_images_per_s"]
    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_metrics import bench as bench_metrics

    print(f"\nmetric suite (default, dsprites, sample sizes x{args.metrics_scale:g}):")
    res["metrics"] = bench_metrics("dsprites", "default", os.environ.get("DISLAB_DLIB_PYTHON"), args.metrics_scale)
    res["peak_memory_mb_training"] = max(f["max_rss_mb"] for _, f in rounds)
    print()
    res["compile"] = compile_rates(args)
    print()
    res["packed"] = _packed(args)
    res["bench_seconds"] = time.perf_counter() - t_start

    print(f"\ntiny net  framework / bare = {t['ratio']:.3f} (target >= 0.8; rounds {tiny_rounds})")
    per_round = ", ".join(f"{r['framework']:.2f}/{r['bare_tuned']:.2f}" for r in res["rounds"])
    print(f"training  framework {fw:6.2f} steps/s | bare loop {bare:6.2f} | bare untuned {untuned:6.2f}  "
          f"(the median of {args.rounds} rounds; framework/bare per round: {per_round})")
    print(f"          framework / bare          = {res['ratio_framework_vs_bare']:.3f}  (target >= 0.95)")
    print(f"          framework / bare untuned  = {res['ratio_framework_vs_untuned_bare']:.3f}  (target >= 1.3)")
    both = res["bare_untuned_default_threads"]["steps_per_s"]
    res["ratio_framework_vs_untuned_bare_default_threads"] = fw / both
    print(f"          framework / bare untuned at torch's {os.cpu_count()} threads ({both:.2f} steps/s) = "
          f"{fw / both:.3f}  (shared cores make this one swing)")
    for name, v in res["data"].items():
        if "images_per_s" in v:
            print(f"data      {name:<16} {v['images_per_s']:10.0f} images/s = {v['ratio_vs_training']:7.1f} "
                  f"x training consumption (target >= 20)")
        else:
            print(f"data      {name:<16} skipped: {v['skipped']}")
    e = res["encoding"]
    print(f"encoding  represent {e['represent_images_per_s']:.0f} images/s / bare {e['bare_images_per_s']:.0f} "
          f"= {e['ratio']:.3f}")
    m = res["metrics"]
    parts = {k[8:-2]: v for k, v in m.items() if k.endswith("_s") and "dlib" not in k and k != "metrics/total_s"}
    print(f"metrics   default suite {m['metrics/total_s']:.1f} s: " +
          ", ".join(f"{k} {v:.1f}s ({v / m['metrics/total_s']:.0%})" for k, v in parts.items()))
    if "metrics/dlib_over_dislab" in m:
        print(f"          disentanglement_lib / dislab = {m['metrics/dlib_over_dislab']:.1f} (target >= 10)")
    else:
        print("          (set DISLAB_DLIB_PYTHON to a Python with disentanglement_lib to time it on the same input)")
    print(f"memory    peak RSS of a training run {res['peak_memory_mb_training']:.0f} MB")
    Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    print(f"written to {args.out} in {res['bench_seconds']:.0f} s")


if __name__ == "__main__":
    main()
