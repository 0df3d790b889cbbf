"""``run_group(jobs)``: train a packed group of jobs in one process, as one program (``dislab.pack.engine``), each
job a normal run: its own run directory (``dislab.rundir``: accepted, locked, refused, skipped or resumed as a
single run is), ``.hydra/``, ``train.log``, ``history.csv``, trackers, ``checkpoints/last.ckpt``, untrained and
final evaluation, ``representation.npz``, pictures and ``metrics.json`` (whose ``packed`` field says it was
trained in a group, and with which runs).

A job is ``(cfg, hydra_cfg)``: its composed config and its Hydra config (``None`` outside Hydra: ``cfg.run_dir``
names the directory). What one job's single run would do with Hydra's global config is done with the job's
(``as_job``).

The loop is the single run's, without Lightning: batch t of a job is the one its single run draws
(``dislab.data.datamodule``: ``default_rng([seed, t])``), its noise comes from its own generator, started where
its single run's global generator stands at its first step, and everything a single run logs is logged at the
same steps (``train/<term>`` every ``trainer.log_every_n_steps``, ``during/<metric>`` every ``metrics_every``,
the untrained scores at 0, the final ones at the end). Checkpoints hold each job's weights (``state_dict``, as a
single run's), its optimizer state and its generator; a job resumes in a group. A job whose step is not finite
is handled as ``nan_policy`` says for it alone: ``stop`` ends that job (``error.txt``; its last checkpoint is
kept) and the others go on; ``skip`` leaves it unchanged for that step.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
import warnings
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate

from dislab import atomic
from dislab.evaluate import check_posterior_metrics
from dislab.rundir import (
    CHECKPOINT,
    ERROR,
    HISTORY,
    RunDirRefused,
    accept,
    begin_segment,
    finished,
    identity,
    record_refusal,
)

log = logging.getLogger("dislab")
#: what must be equal for jobs to be packed together; everything else a job's own (the model and its settings,
#: seed, lr) or bookkeeping
SHARED = ("net", "dataset", "z_dim", "batch_size", "steps", "trainer", "metrics", "metrics_during", "metrics_every",
          "eval_seed", "num_eval", "num_decomposition", "eval_untrained", "checkpoint_every", "nan_policy",
          "threads", "channels_last", "compile", "compile_mode")
ADAM = {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}


class GroupRefused(ValueError):
    """These jobs cannot train as one group; the message says why, in one line."""


@contextlib.contextmanager
def as_job(hydra_cfg):
    """Hydra's global config is this job's (``None``: left as it is) while the block runs."""
    if hydra_cfg is None:
        yield
        return
    hc = HydraConfig.instance()
    before = hc.cfg
    hc.set_config(hydra_cfg)
    try:
        yield
    finally:
        hc.cfg = before


def packable(cfg) -> str | None:
    """Why the job of ``cfg`` cannot be packed (one line), or None."""
    from hydra.utils import get_class

    from dislab.models.vae import VAE, PairVAE

    target = str(cfg.model._target_)
    cls = get_class(target)
    if not issubclass(cls, VAE) or issubclass(cls, PairVAE) or cls.pack_refusal:
        why = getattr(cls, "pack_refusal", None) or "it trains on pairs (weak supervision)"
        return f"model {target.rsplit('.', 1)[-1]} cannot be packed: {why}"
    opt = cfg.optimizer
    if str(opt._target_) != "torch.optim.Adam":
        return f"optimizer {opt._target_} cannot be packed: packed groups train with Adam"
    for knob in ("amsgrad", "maximize", "capturable", "differentiable"):
        if opt.get(knob):
            return f"optimizer.{knob}=true cannot be packed"
    if str(cfg.trainer.get("strategy", "auto")) not in ("auto", "None") or int(cfg.trainer.get("devices", 1) or 1) > 1:
        return "a multi-device trainer cannot be packed"
    if cfg.get("debug"):
        return "a debug run cannot be packed"
    precision = str(cfg.trainer.get("precision", "32"))
    if precision not in ("32", "32-true", "64", "64-true", "bf16-mixed"):
        return f"trainer.precision={precision} cannot be packed (packed: 32, 64, bf16-mixed)"
    return None


def group_key(cfg) -> str:
    """Jobs with equal keys may train as one group."""
    from omegaconf import OmegaConf

    parts = {k: OmegaConf.to_container(cfg[k], resolve=True) if OmegaConf.is_config(cfg[k]) else cfg[k]
             for k in SHARED if k in cfg}
    parts["adam"] = {k: OmegaConf.select(cfg, f"optimizer.{k}") for k in ADAM}
    return repr(sorted(parts.items()))


def _dtype(cfg) -> tuple[torch.dtype, bool]:
    """The group's float type and whether bf16 autocast is on, from ``trainer.precision``."""
    p = str(cfg.trainer.get("precision", "32"))
    if p.startswith("64"):
        return torch.float64, False
    return torch.float32, p.startswith("bf16")


def _device(cfg) -> torch.device:
    acc = str(cfg.trainer.get("accelerator", "auto"))
    if acc in ("gpu", "cuda") or (acc == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


class _Job:
    """One job of the group: its config, directory, model, generator, loggers and state."""

    def __init__(self, cfg, hydra_cfg):
        self.cfg, self.hydra_cfg = cfg, hydra_cfg
        self.run_dir: Path | None = None
        self.lock = None
        self.state = None  # new | resume | extend | done | refused | failed
        self.result: dict | None = None
        self.error: BaseException | None = None
        self.loggers: list = []
        self.history = None
        self.skipped = 0
        self.stopped = False

    def name(self) -> str:
        from dislab.train import run_name

        with as_job(self.hydra_cfg):
            return run_name(self.cfg)


def _refusal(job: _Job, e: BaseException) -> None:
    """A job refused its directory: recorded in the sweep directory, as a single job's is."""
    if job.hydra_cfg is not None and job.run_dir is not None:
        record_refusal(job.hydra_cfg.hydra, job.run_dir, e, job.cfg)


def _end_trackers(job: _Job, status: str) -> None:
    """The job's loggers finalized; its W&B run (one of several in this process) finished."""
    for lg in job.loggers:
        with contextlib.suppress(Exception):
            lg.finalize(status)
            if type(lg).__name__ == "WandbLogger" and lg._experiment is not None:
                lg._experiment.finish(exit_code=0 if status == "success" else 1)


def _fail(job: _Job, e: BaseException) -> None:
    job.state, job.error = "failed", e
    if job.run_dir is not None and job.lock is not None:
        try:
            atomic.write_text(job.run_dir / ERROR, f"{type(e).__name__}: {e}\n".replace("\n", " ").rstrip() + "\n")
        except OSError:
            pass
    _end_trackers(job, "failed")
    log.error("%s failed (the group goes on): %s: %s", job.run_dir, type(e).__name__, e)


def run_group(jobs: list[tuple], group_id: str = "") -> list[dict | BaseException]:
    """Train the jobs ``[(cfg, hydra_cfg), ...]`` as one packed group; returns each job's final metrics, or the
    exception that ended it (refused, failed). Jobs already finished are returned as a single run returns them."""
    from dislab.lock import RunLock
    from dislab.train import run_dir_of
    from dislab.validate import validate

    items = [_Job(cfg, hc) for cfg, hc in jobs]
    keys = {group_key(j.cfg) for j in items}
    if len(keys) > 1:
        raise GroupRefused("the jobs of a packed group must share net, dataset, batch_size, steps, trainer, metrics "
                           "and the evaluation settings")
    for job in items:
        why = packable(job.cfg)
        if why:
            raise GroupRefused(why)
    try:
        for job in items:
            with as_job(job.hydra_cfg):
                try:
                    validate(job.cfg)
                    job.run_dir = run_dir_of(job.cfg)
                    from dislab.train import _what_trained

                    if accept(job.cfg, job.run_dir, _what_trained()) == "done":
                        job.state, job.result = "done", finished(job.run_dir)
                        continue
                    job.run_dir.mkdir(parents=True, exist_ok=True)
                    job.lock = RunLock(job.run_dir).acquire()
                    job.state = accept(job.cfg, job.run_dir, _what_trained())
                    if job.state == "done":
                        job.result = finished(job.run_dir)
                        continue
                    (job.run_dir / ERROR).unlink(missing_ok=True)
                except Exception as e:  # noqa: BLE001 refused or invalid: this job only
                    from dislab.lock import RunDirInUse

                    job.state, job.error = ("refused" if isinstance(e, (RunDirRefused, RunDirInUse)) else "failed"), e
                    if job.state == "refused":
                        _refusal(job, e)
                    elif job.lock is not None:
                        _fail(job, e)
                    log.error("%s: %s", type(e).__name__, e)
        live = [j for j in items if j.state in ("new", "resume", "extend")]
        if live:
            try:
                _train(live, group_id)
            except BaseException:  # interrupted, or the group failed: the live jobs' trackers say so
                for job in live:
                    if job.state not in ("done", "failed"):
                        _end_trackers(job, "failed")
                raise
            finally:
                from dislab.trackers.wandb import finish as finish_wandb

                for job in live:
                    if job.history is not None:
                        job.history.flush()
                finish_wandb()  # every W&B run file complete before the process goes on
    finally:
        for job in items:
            if job.lock is not None:
                job.lock.release()
    return [j.result if j.result is not None else j.error for j in items]


def _train(jobs: list[_Job], group_id: str) -> None:
    import pytorch_lightning as pl

    from dislab.callbacks.checkpoint import Interrupted, _seen, catch_signals, chain_usr2
    from dislab.callbacks.history import HistoryLogger
    from dislab.console import quiet_library_noise, quiet_loggers
    from dislab.data._device import paint_device
    from dislab.data.datamodule import _Batches
    from dislab.evaluate import evaluation_scalars, untrained_scalars
    from dislab.load import build_model
    from dislab.pack.engine import Pack
    from dislab.rundir import job_log
    from dislab.trackers.log import log_scalars
    from dislab.trackers.loggers import make_loggers
    from dislab.train import _metrics_only, group_name, metrics_chosen, untrained_cache_dir
    from dislab.validate import validate_data

    warnings.filterwarnings("ignore", ".*IterableDataset.*__len__.*")
    quiet_library_noise()
    cfg0 = jobs[0].cfg
    if cfg0.get("threads"):
        torch.set_num_threads(int(cfg0.threads))
    device = _device(cfg0)
    dtype, bf16 = _dtype(cfg0)
    exact = device.type == "cpu"
    data = instantiate(cfg0.dataset)
    final_metrics, during = instantiate(cfg0.metrics) or {}, instantiate(cfg0.metrics_during) or {}
    with contextlib.ExitStack() as stack:
        models, gens, starts = [], [], []
        for job in list(jobs):
            try:
                with as_job(job.hydra_cfg):
                    hc = HydraConfig.get() if HydraConfig.initialized() else None
                    validate_data(job.cfg, data, final_metrics, metrics_chosen())
                    pl.seed_everything(job.cfg.seed, workers=True, verbose=False)
                    model = build_model(job.cfg, data)
                    check_posterior_metrics(model, {**final_metrics, **during})
                    gen = torch.Generator().manual_seed(0)
                    gen.set_state(torch.get_rng_state())  # where the single run's global generator stands
                    start, job.budgets = begin_segment(job.run_dir, job.cfg, hc, job.state == "extend",
                                                       packed=True)
                    stack.enter_context(job_log(job.run_dir, hc.job.name if hc else "train"))
                    job.history = HistoryLogger(job.run_dir / HISTORY)
                    job.loggers = [job.history, *make_loggers(job.cfg, job.run_dir, job.name(),
                                                              group_name(job.cfg), beside_others=True)]
                    quiet_loggers(job.loggers)
            except Exception as e:  # noqa: BLE001 this job only
                _fail(job, e)
                continue
            models.append(model)
            gens.append(gen)
            starts.append(start)
        jobs = [j for j in jobs if j.state != "failed"]
        if not jobs:
            return
        if len(set(starts)) > 1:
            raise GroupRefused(f"the jobs of a packed group must resume from the same step (these are at "
                               f"{sorted(set(starts))}); run them with pack=1 or in separate sweeps")
        start = starts[0]
        ckpts = [torch.load(j.run_dir / CHECKPOINT, map_location="cpu", weights_only=True) if start else None
                 for j in jobs]
        # the untrained scores, as a single run gets them (before training moves the models to the group's
        # device and precision): once per untrained network, shared with the sweep's other jobs
        for i, job in enumerate(jobs):
            job.untrained = _metrics_only(job.history.rows.get(0, {})) if start else {}
            if job.cfg.eval_untrained and not start:
                with as_job(job.hydra_cfg):
                    models[i].to(device)
                    scalars = untrained_scalars(job.cfg, models[i], data, final_metrics, untrained_cache_dir(job.cfg))
                log_scalars(job.loggers, scalars, 0)
                job.untrained = _metrics_only(scalars)
        lrs = [float(j.cfg.optimizer.lr) for j in jobs]
        o = jobs[0].cfg.optimizer
        opt = {"betas": tuple(o.get("betas", ADAM["betas"])), "eps": float(o.get("eps", ADAM["eps"])),
               "weight_decay": float(o.get("weight_decay", ADAM["weight_decay"]))}
        pack = Pack(models, lrs, opt, device, dtype, gens=gens if exact else None, seed=int(cfg0.seed))
        if cfg0.get("compile"):
            pack.compile(str(cfg0.get("compile_mode") or "default"))
        for i, c in enumerate(ckpts):
            if c is None:
                continue
            lane, j = pack.lane_of(i)
            lane.load_state_dict(j, c["state_dict"])  # in the group's precision
            st = c["packed"]["optimizer"]
            lane.opt.load(j, lane.ae_names, st["model"])
            if lane.adversarial:
                lane.d_opt.load(j, lane.d_names, st["discriminator"])
            if exact:
                gens[i].set_state(c["callbacks"]["AtomicCheckpoint"]["torch_rng"])
            jobs[i].skipped = int(c.get("callbacks", {}).get("NanGuard", {}).get("skipped", 0))
        pack.step_index = start
        k = len(jobs)
        log.info("packed group%s: %d models in one step on %s (%s)%s", f" {group_id}" if group_id else "", k,
                 device, str(dtype).replace("torch.", ""), f", resuming at step {start}" if start else "")
        for j in jobs:
            log.info("  %s -> %s", j.name(), j.run_dir)

        seeds = sorted({int(j.cfg.seed) for j in jobs})
        paint = paint_device(data, device) if str(cfg0.dataset.get("device", "auto")) != "cpu" else None
        streams = {s: iter(_Batches(data, int(cfg0.batch_size), s, start, device=paint)) for s in seeds}
        every_log = int(cfg0.trainer.get("log_every_n_steps", 50) or 50)
        every_ckpt, every_eval = int(cfg0.checkpoint_every or 0), int(cfg0.metrics_every or 0)
        steps, policy = int(cfg0.steps), str(cfg0.nan_policy)
        catch_signals()

        def save(idx):
            for i in idx:
                job = jobs[i]
                if job.stopped:
                    continue
                lane, j = pack.lane_of(i)
                opt_state = {"model": lane.opt.state(j, lane.ae_names)}
                if lane.adversarial:
                    opt_state["discriminator"] = lane.d_opt.state(j, lane.d_names)
                state = {"global_step": pack.step_index, "state_dict": lane.state_dict(j),
                         "callbacks": {"AtomicCheckpoint": {"identity": identity(job.cfg),
                                                            "torch_rng": gens[i].get_state() if exact else
                                                            torch.get_rng_state(), "budgets": job.budgets},
                                       "NanGuard": {"skipped": job.skipped}},
                         "packed": {"optimizer": opt_state, "group": [str(jj.run_dir) for jj in jobs]}}
                path = job.run_dir / CHECKPOINT
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".{path.name}.tmp")
                torch.save(state, tmp)
                os.replace(tmp, path)
                job.history.flush()

        def check():
            """Read the non-finite flags: stop (``nan_policy=stop``) or count (``skip``) per job."""
            bad, first = pack.bad.tolist(), pack.first_bad.tolist()
            for i, job in enumerate(jobs):
                if job.stopped or not bad[i]:
                    continue
                if policy == "stop":
                    from dislab.callbacks.nan_guard import NonFiniteError

                    job.stopped = True
                    pack.active[i] = False
                    _fail(job, NonFiniteError(f"non-finite loss or gradient at step {first[i]} (nan_policy=stop; "
                                              f"the last good checkpoint is kept)"))
                elif bad[i] != job.skipped:
                    job.skipped = bad[i]
                    log_scalars(job.loggers, {"train/skipped_steps": float(bad[i])}, pack.step_index)

        autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        t0, last_note = time.monotonic(), time.monotonic()
        for t in range(start, steps):
            by_seed = {s: next(streams[s]) for s in seeds}
            x = torch.stack([by_seed[int(j.cfg.seed)] for j in jobs]).to(device=device, dtype=dtype)
            with autocast:
                pack.step(x)
            done = t + 1
            if done % every_log == 0:
                terms = pack.terms()
                for i, job in enumerate(jobs):
                    if not job.stopped:
                        log_scalars(job.loggers, {f"train/{n}": v for n, v in terms[i].items()}, t)
            evaluate = bool(every_eval and done % every_eval == 0 and done < steps and during)
            save_now = (_seen[signal.SIGTERM] or _seen[signal.SIGUSR2]
                        or bool(every_ckpt and done % every_ckpt == 0 and done < steps))
            if done % every_log == 0 or evaluate or save_now:  # the flags, before what acts on them
                check()
            if evaluate:
                with evaluating(pack, models):
                    for i, job in enumerate(jobs):
                        if not job.stopped:
                            log_scalars(job.loggers, evaluation_scalars(
                                models[i], data, during, job.cfg.eval_seed, job.cfg.num_decomposition,
                                prefix="during"), done)
            if save_now:
                save(range(k))
            if _seen[signal.SIGTERM]:
                raise Interrupted(f"SIGTERM at step {done}: checkpoints saved; re-run the same command to resume")
            if _seen[signal.SIGUSR2]:  # a time limit near, or pre-emption: saved; then submitit's handler
                _seen[signal.SIGUSR2] = False
                log.warning("USR2 at step %d: the group's checkpoints saved", done)
                chain_usr2(done, "each job's checkpoints/last.ckpt")
            if time.monotonic() - last_note > 30:
                last_note = time.monotonic()
                log.info("packed group: step %d/%d (%.1f model-steps/s)", done, steps,
                         k * (done - start) / (last_note - t0))
        check()
        save(range(k))
        with evaluating(pack, models):
            for i, job in enumerate(jobs):
                if job.stopped:
                    continue
                try:
                    with as_job(job.hydra_cfg):
                        _finish(job, models[i], data, final_metrics, steps, group=[str(j.run_dir) for j in jobs])
                except Exception as e:  # noqa: BLE001 this job only
                    _fail(job, e)


@contextlib.contextmanager
def evaluating(pack, models: list):
    """The models hold their trained weights, on the group's device, and encode together (``SharedEncoder``)."""
    from dislab.pack.engine import SharedEncoder

    for lane in pack.lanes:
        lane.write_back()
    shared = SharedEncoder(pack)
    shared.install(models)
    try:
        yield shared
    finally:
        shared.uninstall(models)


def _finish(job: _Job, model, data, final_metrics: dict, steps: int, group: list[str]) -> None:
    from dislab.console import Console
    from dislab.trackers.log import log_final, log_pictures
    from dislab.trackers.loggers import tracker_views
    from dislab.train import write_results

    cfg, run_dir = job.cfg, job.run_dir
    con = Console(job.name())
    values, scalars, pics = write_results(cfg, run_dir, model, data, final_metrics, job.untrained, steps,
                                          job.budgets, con, packed={"group": group})
    try:
        log_final(job.loggers, scalars, job.untrained, steps)
        log_pictures(job.loggers, pics, steps)
    except Exception as e:  # noqa: BLE001 results are on disk
        log.warning("a logger failed after the results were written: %s", e)
    _end_trackers(job, "success")
    job.result = values
    job.state = "done"
    con.end(run_dir, values, job.untrained, pics, tracker_views(job.loggers, run_dir))
