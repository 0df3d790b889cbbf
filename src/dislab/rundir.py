"""The run directory: what decides a run, and the one definition of a bookkeeping override.

A run directory holds ``.hydra/config.yaml``, ``hydra.yaml`` and ``overrides.yaml``. dislab writes them
itself (``write_hydra``, with ``hydra.output_subdir: null`` in ``conf/train.yaml``), once a command has
been accepted for the directory: a command that is refused (another run's settings, a resume with a
changed knob, a directory in use) leaves every file as it was.

*Bookkeeping* is what says where or how a run ran and what it logs, not what it trained or how it is
scored (``BOOKKEEPING``): the launcher, the run directory, threads, the trackers, checkpoint and
progress settings... Everything else decides the run: the model and its knobs, the network, the data
set, the seed, the step budget, the metrics and their settings. Run names, sweep cells, the report, the
re-use guard and the resume guard all use this one definition.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from dislab.validate import ConfigError

log = logging.getLogger("dislab")

HYDRA = ".hydra"
CONFIG, HYDRA_CONFIG, OVERRIDES = "config.yaml", "hydra.yaml", "overrides.yaml"
METRICS, ERROR, CHECKPOINT = "metrics.json", "error.txt", "checkpoints/last.ckpt"
HISTORY, REPRESENTATION = "history.csv", "representation.npz"
REFUSED = "refused"  # <sweep dir>/refused/<job>.json: a job refused its directory (in use, another run's), and why

# config keys (dotted; a key covers what is below it) and config groups that say where or how a run ran and what
# it logs: never part of what a run trained, of its name, of a sweep cell, or of a resume's comparison
BOOKKEEPING = ("hydra", "launcher", "sweeper", "sweep", "run_dir", "group", "sweep_name", "threads", "logger",
               "callbacks", "checkpoint_every", "metrics_every", "metrics_during", "eval_untrained", "resume",
               "extend", "pack", "objective", "compile", "compile_mode", "channels_last", "dataset.device",
               "trainer.enable_progress_bar", "trainer.enable_model_summary", "trainer.log_every_n_steps",
               "trainer.default_root_dir")


PACKAGES = ("dislab", "torch", "pytorch-lightning", "hydra-core", "numpy", "scikit-learn", "wandb")


def versions() -> dict[str, str]:
    """The installed versions of the packages a result depends on (``metrics.json`` records them)."""
    from importlib import metadata

    out = {}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            pass
    return out


class RunDirRefused(ConfigError):
    """The run directory holds a run of other settings (exit status 2); nothing was written."""


def override_key(override: str) -> str:
    """``+net.hidden=32`` -> ``net.hidden``; ``model=vae`` -> ``model``; ``metrics@metrics_during=x`` ->
    ``metrics_during``; ``hydra/launcher=x`` -> ``hydra.launcher``."""
    key = override.split("=", 1)[0].lstrip("+~")
    return key.split("@", 1)[1] if "@" in key else key.replace("/", ".")


def _covered(key: str) -> bool:
    return any(key == b or key.startswith(b + ".") for b in BOOKKEEPING)


def is_bookkeeping(override: str) -> bool:
    """Whether a command-line override only says where or how a run ran, or what it logs (``BOOKKEEPING``)."""
    return _covered(override_key(str(override)))


def what_trained(overrides) -> list[str]:
    """The overrides that decide what a run trained (its knobs and seed, not where or how it ran), sorted:
    ``metrics.json`` records them, so a job directory that a re-run would reuse for other knobs is caught."""
    return sorted(str(o) for o in overrides if not is_bookkeeping(str(o)))


def settings(config) -> dict:
    """A run's config as flat ``key -> value`` without bookkeeping: what decides the run (resolved)."""
    if not isinstance(config, DictConfig):
        config = OmegaConf.create(config)
    node = OmegaConf.masked_copy(config, [k for k in config if not _covered(str(k))])
    for key in [b for b in BOOKKEEPING if "." in b]:
        parent, leaf = key.rsplit(".", 1)
        sub = OmegaConf.select(node, parent, default=None)
        if isinstance(sub, DictConfig) and leaf in sub:
            sub.pop(leaf)  # (masked_copy copied it: the run's config is untouched)
    raw, flat = _flat(OmegaConf.to_container(node, resolve=False)), _flat(OmegaConf.to_container(node, resolve=True))
    return {k: v for k, v in flat.items() if not ("." in k and _COPY.match(str(raw.get(k, ""))))}


_COPY = re.compile(r"^\$\{[A-Za-z_]\w*\}$")  # a nested value that is a top-level knob (``model.beta: ${beta}``)


def _flat(node, prefix: str = "") -> dict:
    if isinstance(node, dict) and node:
        out = {}
        for k, v in node.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: node}


def saved_config(run_dir) -> DictConfig | None:
    path = Path(run_dir) / HYDRA / CONFIG
    return OmegaConf.load(path) if path.exists() else None


def differences(before: dict, now: dict) -> list[str]:
    """``key=<before> (now <now>)`` for each setting that differs, in the config's order."""
    def show(v):
        return json.dumps(v, default=str) if isinstance(v, (list, dict)) else v

    keys = list(dict.fromkeys([*before, *now]))
    return [f"{k}={show(before.get(k))} (now {show(now.get(k))})" for k in keys if before.get(k) != now.get(k)]


def write_hydra(run_dir, cfg, hydra_cfg=None) -> None:
    """``.hydra/config.yaml`` (the task's config), ``hydra.yaml`` and ``overrides.yaml`` as Hydra writes them,
    atomically; without Hydra, ``config.yaml`` alone."""
    from dislab import atomic

    out = Path(run_dir) / HYDRA
    atomic.write_text(out / CONFIG, OmegaConf.to_yaml(cfg))
    if hydra_cfg is not None:
        atomic.write_text(out / HYDRA_CONFIG, OmegaConf.to_yaml(OmegaConf.create({"hydra": hydra_cfg})))
        atomic.write_text(out / OVERRIDES, OmegaConf.to_yaml(hydra_cfg.overrides.task))


def rescores(run_dir) -> list[tuple[Path, dict]]:
    """What ``eval.py run=<run dir>`` wrote (``<run dir>/eval/<time>/metrics.json``), oldest first: a
    re-score's values replace the training's for the same key (and add the metrics it lacked) in
    ``sweep_summary.csv``, the report and the run's W&B summary."""
    out = []
    for path in sorted(Path(run_dir).glob("eval/*/metrics.json")):
        try:
            out.append((path, json.loads(path.read_text())))
        except (OSError, ValueError):
            continue
    return out


def identity(cfg) -> dict:
    """What a checkpoint's weights belong to; a resume with anything else is refused."""
    return {"model": cfg.model._target_, "net": OmegaConf.to_container(cfg.net, resolve=True), "z_dim": cfg.z_dim,
            "dataset": cfg.dataset._target_}


def resume_point(ckpt_path: Path, cfg, packed: bool = False) -> tuple[int, list[int]]:
    """The checkpoint's step and the step budgets its run trained with so far (one per extension); a checkpoint
    of other weights (``identity``), none readable, or one written by a packed group for a run alone (``packed``:
    this run is in a packed group; ``dislab.pack``) or the other way round, is refused in one line."""
    import torch

    try:
        state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        saved = state["callbacks"]["AtomicCheckpoint"]["identity"]
        budgets = list(state["callbacks"]["AtomicCheckpoint"].get("budgets") or [])
        step = int(state["global_step"])
    except Exception as e:
        why = type(e).__name__
        raise ConfigError(f"cannot resume from {ckpt_path}: not a readable dislab checkpoint ({why})") from e
    if ("packed" in state) != packed:
        raise RunDirRefused(f"{ckpt_path} was written by {'a packed group' if 'packed' in state else 'a run alone'}: "
                          f"resume it {'in a packed sweep (pack=k, k > 1)' if 'packed' in state else 'alone'} "
                          f"as it was trained, or delete it to train the run again from the start")
    mine = identity(cfg)
    diff = [k for k in mine if saved.get(k) != mine[k]]
    if diff:
        k = diff[0]
        raise ConfigError(f"{ckpt_path} was written with {k}={saved.get(k)}, not {mine[k]}; "
                          f"use the same config or another run directory")
    return step, budgets


def finished(run_dir: Path) -> dict[str, float]:
    """A finished run's final metrics (its ``metrics.json``), saying that it is skipped."""
    log.info("%s is complete; skipping (delete it, or extend=true with more steps, to train again)",
             run_dir / METRICS)
    return json.loads((run_dir / METRICS).read_text())["metrics"]


def accept(cfg, run_dir: Path, mine: list[str] | None) -> str:
    """What this command may do with ``run_dir``: ``new``, ``resume``, ``extend`` (more steps, with
    ``extend=true``) or ``done`` (finished with these settings). Raises ``RunDirRefused`` naming the settings
    that differ from those the directory's run was trained with; reads only. ``mine``: this command's overrides
    that decide the run (``what_trained``; None without Hydra), named in the refusal."""
    finished = (run_dir / METRICS).exists()
    before = saved_config(run_dir) if finished or (cfg.resume and (run_dir / CHECKPOINT).exists()) else None
    if before is None:
        if finished:  # an in-process run of another era: compare what metrics.json records
            saved = json.loads((run_dir / METRICS).read_text()).get("overrides")
            if None not in (saved, mine) and what_trained(saved) != mine:
                raise RunDirRefused(f"{run_dir / METRICS} holds a run of {' '.join(saved) or 'the defaults'}, not "
                                    f"of {' '.join(mine) or 'the defaults'}; use another sweep_name or run directory")
            return "done"
        return "new"
    diff = differences(settings(before), settings(cfg))
    if not diff:
        return "done" if finished else "resume"
    if cfg.get("extend") and all(d.startswith("steps=") for d in diff):
        if int(cfg.steps) > int(before.steps):
            return "extend"
        raise RunDirRefused(f"extend=true trains {run_dir} on beyond its steps={before.steps}: give more steps "
                            f"than that (steps={cfg.steps} is not)")
    saved = what_trained(OmegaConf.load(run_dir / HYDRA / OVERRIDES)) if (run_dir / HYDRA / OVERRIDES).exists() \
        else None
    what = "finished" if finished else "interrupted"
    said = ""
    if None not in (saved, mine) and saved != mine:
        said = f" of {' '.join(saved) or 'the defaults'}, not of {' '.join(mine) or 'the defaults'}"
    said = f" a run{said} ({what})"
    hint = ("re-run it with its own settings (that skips it), add extend=true to train it on to more steps,"
            if finished else "re-run it with its own settings to resume it,")
    raise RunDirRefused(f"{run_dir} holds{said}: it differs in {', '.join(diff[:4])}"
                        f"{' ...' if len(diff) > 4 else ''}; a run directory holds one configuration: {hint} "
                        f"or use another run directory (sweep_name=... or hydra.run.dir=...)")


@contextlib.contextmanager
def job_log(run_dir: Path, job: str = "train"):
    """``<run dir>/<job>.log`` (``train.log``): what the run prints through Python's logging, opened once
    the command has been accepted for the directory (``conf/hydra/job_logging/dislab.yaml`` has no file)."""
    handler = logging.FileHandler(run_dir / f"{job}.log", delay=True)
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    except BaseException as e:
        if handler.stream is not None and not isinstance(e, KeyboardInterrupt):  # a run that began: the traceback
            # goes to the file alone (the console gets one line); bad input before the run began writes no log
            handler.handle(logging.LogRecord("dislab", logging.ERROR, __file__, 0, "run failed: %s: %s",
                                             (type(e).__name__, e), (type(e), e, e.__traceback__)))
        raise
    finally:
        root.removeHandler(handler)
        handler.close()


def begin_segment(run_dir: Path, cfg, hydra_cfg, extend: bool, writer: bool = True, packed: bool = False
                  ) -> tuple[int, list[int]]:
    """Start this segment of the run in ``run_dir`` (``accept`` said so and the input is valid): an extended
    run's shorter result is kept as ``metrics.<step>.json`` and ``.hydra/`` is written (``writer``: not by the
    other DDP ranks). Returns the checkpoint's step (0: a new run) and the step budget of each segment."""
    ckpt = run_dir / CHECKPOINT
    resume = bool(cfg.resume) and ckpt.exists()
    previous = saved_config(run_dir) if resume else None  # read before it is rewritten
    point = resume_point(ckpt, cfg, packed) if resume else None  # a refusal before anything is written
    if writer:
        if extend and (run_dir / METRICS).exists():
            step = json.loads((run_dir / METRICS).read_text()).get("global_step")
            os.replace(run_dir / METRICS, run_dir / f"metrics.{step}.json")
        write_hydra(run_dir, cfg, hydra_cfg)
    if not resume:
        return 0, [int(cfg.steps)]
    step, before = point
    before = before or [int((previous or cfg).steps)]  # a checkpoint from before budgets were kept
    return step, before if before[-1] == cfg.steps else [*before, int(cfg.steps)]


def record_refusal(hydra_cfg, run_dir: Path, error: BaseException, config) -> None:
    """A sweep's job refused its directory (held by another process, or another run's): what and why, in the
    sweep directory (``<sweep>/refused/<job>.json``, read by the summary), never in the job's directory."""
    from dislab import atomic

    choices = OmegaConf.to_container(hydra_cfg.runtime.choices)
    atomic.write_json(Path(hydra_cfg.sweep.dir) / REFUSED / f"{Path(run_dir).name}.json", {
        "error": f"{type(error).__name__}: {error}".replace("\n", " "),
        "overrides": OmegaConf.to_container(hydra_cfg.overrides.task),
        "config": OmegaConf.to_container(config, resolve=False),
        "choices": {k: v for k, v in choices.items() if not k.startswith("hydra/")}})
