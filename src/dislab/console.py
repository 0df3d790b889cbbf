"""What a run prints: a summary at the start, a line per phase with its duration, the files at the end,
and the known library noise filtered by its message (nothing else is silenced).

Lines go through the ``dislab`` logger, so Hydra's job logging also writes them to ``train.log``.
Without a terminal (sweep jobs, SLURM, a pipe) each line starts with the job's name.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import time
import warnings
from pathlib import Path

from dislab.callbacks.progress import duration
from dislab.rundir import METRICS

log = logging.getLogger("dislab")

# (category, start of the message) of warnings that say nothing about a dislab run
NOISE_WARNINGS = (
    (UserWarning, "The `srun` command is available on your system but is not used"),  # Lightning, on any SLURM host
    (Warning, "`isinstance(treespec, LeafSpec)` is deprecated"),  # torch, about Lightning's own code
)
# logger name -> starts of INFO messages that advertise rather than inform
LIGHTNING = ("💡 Tip: For seamless",  # litlogger / litmodels adverts
             "`Trainer.fit` stopped: `max_steps=")  # said by "training done in ..."
# MLflow building or opening its SQLite store (alembic's lines reach the console when MLflow leaves its logging alone,
# MLFLOW_CONFIGURE_LOGGING=false)
MLFLOW_STORE = ("Creating initial MLflow database tables", "Updating database tables")
ALEMBIC = ("Context impl ", "Will assume ", "Running upgrade ", "setup plugin ")
NOISE_LOGS = {"pytorch_lightning.utilities.rank_zero": LIGHTNING, "lightning.pytorch.utilities.rank_zero": LIGHTNING,
              "mlflow.store.db.utils": MLFLOW_STORE, "alembic.runtime.migration": ALEMBIC,
              "alembic.runtime.plugins": ALEMBIC}


class _DropMessages(logging.Filter):
    def __init__(self, starts: tuple[str, ...]):
        super().__init__()
        self.starts = starts

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.starts)


def quiet_library_noise() -> None:
    """Filter ``NOISE_WARNINGS`` and ``NOISE_LOGS`` by their message; idempotent."""
    for category, start in NOISE_WARNINGS:
        warnings.filterwarnings("ignore", message=re.escape(start), category=category)
    for name, starts in NOISE_LOGS.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropMessages) for f in logger.filters):
            logger.addFilter(_DropMessages(starts))


def quiet_loggers(loggers) -> None:
    """Lightning's WandbLogger passes ``anonymous=None`` to ``wandb.init``, which then warns that the
    (deprecated) setting has no effect: leave the setting out when it was not asked for."""
    for lg in loggers:
        init = getattr(lg, "_wandb_init", None)
        if isinstance(init, dict) and init.get("anonymous") is None:
            init.pop("anonymous", None)


def interactive() -> bool:
    """A terminal that one job owns: a bar there; plain lines in a multirun job, under SLURM's batch
    scripts or when stdout or stderr is a file or a pipe."""
    from hydra.core.hydra_config import HydraConfig

    multirun = HydraConfig.initialized() and getattr(HydraConfig.get().mode, "name", None) == "MULTIRUN"
    batch = os.environ.get("SLURM_JOB_ID") and not os.environ.get("SLURM_PTY_PORT")
    return bool(sys.stdout.isatty() and sys.stderr.isatty() and not multirun and not batch)


class Console:
    """Lines for one run, prefixed by ``prefix`` (the job's name where there is no terminal)."""

    def __init__(self, prefix: str = ""):
        self.prefix = f"{prefix} " if prefix else ""
        self.started = time.monotonic()

    def info(self, msg: str, *args) -> None:
        from dislab.lock import is_other_rank

        if not is_other_rank():  # one voice under DDP
            log.info(self.prefix + msg, *args)

    @contextlib.contextmanager
    def phase(self, name: str, what: str = ""):
        """``<name>: <what> ...`` now and ``<name> done in <duration>`` when the block ends."""
        self.info("%s%s ...", name, f": {what}" if what else "")
        t = time.monotonic()
        yield
        self.info("%s done in %s", name, duration(time.monotonic() - t))

    def rows(self, rows: list[tuple[str, str]]) -> None:
        """``key  value`` lines, the values aligned (a summary)."""
        width = max((len(k) for k, _ in rows), default=0)
        for k, v in rows:
            self.info("%s  %s", k.ljust(width), v)

    def start(self, cfg, model, data, run_dir: Path, name: str, final: dict, during: dict, loggers) -> None:
        """A readable summary of what is about to run."""
        from hydra.core.hydra_config import HydraConfig

        from dislab.conf import model_knobs, short_name
        from dislab.data.source import describe, stand_in_warning

        hc = HydraConfig.get() if HydraConfig.initialized() else None
        choices = hc.runtime.choices if hc else {}
        kind = short_name(cfg.model)
        net = choices.get("net", short_name(cfg.net))
        dataset = choices.get("dataset", short_name(cfg.dataset))
        knobs = ", ".join(f"{k}={cfg.get(k)}" for k in model_knobs().get(kind, {}))
        params = sum(p.numel() for p in model.parameters())
        shape = "×".join(str(s) for s in data.x_shape)
        factors = ", ".join(f"{n} ({s})" for n, s in zip(data.factor_names, data.factor_sizes, strict=False))
        if not getattr(data, "has_factors", True):  # dataset=images: the index is no ground truth
            factors = f"none ({len(data):,} images, no ground truth)"
        trackers = [type(lg).__name__.replace("Logger", "") for lg in loggers]
        if any("Wandb" in t for t in trackers):
            trackers = [f"{t} ({os.environ.get('WANDB_MODE', 'offline')})" if "Wandb" in t else t for t in trackers]
        every = f"every {cfg.metrics_every:,} steps: {', '.join(during) or 'none'}"
        if not cfg.metrics_every or cfg.metrics_every >= cfg.steps:
            every = f"none (metrics_every={cfg.metrics_every})"
        rows = [
            ("run", name),
            ("model", f"{kind}{f' ({knobs})' if knobs else ''}, net {net} ({params:,} parameters), z_dim {cfg.z_dim}"),
            ("data", f"{dataset}: {shape} images; factors {factors or 'none'}; {describe(data.source())}"),
            ("training", f"{cfg.steps:,} steps of batch {cfg.batch_size}, lr {cfg.lr:g}, seed {cfg.seed}"),
            ("metrics", f"final: {', '.join(final) or 'none'}; during training: {every}"),
            ("logging", ", ".join(trackers) or "none"),
            ("run dir", str(run_dir)),
        ]
        warning = stand_in_warning(data.source())
        if warning:  # before the summary: a procedural stand-in's scores are not the published ones
            log.warning(self.prefix + "%s", warning)
        self.rows(rows)

    def end(self, run_dir: Path, values: dict, untrained: dict, pictures: dict, views=()) -> None:
        """The final metrics, then where everything is: the run directory, metrics.json, the pictures, when W&B
        logged offline the ``wandb sync`` command, and ``views``: what shows each other tracker's runs
        (``tensorboard --logdir ...``, ``mlflow ui ...``)."""
        for k, v in values.items():
            before = f"untrained {untrained[k]:.4f} -> " if k in untrained else ""
            self.info("%s: %strained %.4f", k, before, v)
        run_dir = Path(run_dir)
        self.info("done in %s; results in %s", duration(time.monotonic() - self.started), run_dir)
        self.info("  metrics   %s", run_dir / METRICS)
        names = sorted(p.name for p in (run_dir / "pictures").glob("*") if p.suffix in (".png", ".gif"))
        if names or pictures:
            self.info("  pictures  %s/ (%s)", run_dir / "pictures", ", ".join(names))
        offline = sorted((run_dir / "wandb").glob("offline-run-*"))
        if offline:  # a resumed run has a folder per segment, all of one W&B run
            where = offline[0] if len(offline) == 1 else offline[0].parent / "offline-run-*"
            self.info("  upload    wandb sync %s", where)
        for view in views:
            self.info("  view      %s", view)


@contextlib.contextmanager
def bar(desc: str, total: int, show: bool, interval: float = 1.0):
    """On a terminal (``show``): a bar over ``total`` items, ``<desc> 2/5 |███   | 0:42, <postfix>``, its
    elapsed time redrawn every ``interval`` seconds (a long item shows it is working) and lines logged
    meanwhile written above it. Yields the tqdm bar (``update``, ``set_postfix_str``); without a terminal
    a disabled one (nothing drawn: the phase lines say it all)."""
    import threading

    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    if not show:
        yield tqdm(total=total, disable=True)
        return
    progress = tqdm(total=total, desc=desc, file=sys.stderr, dynamic_ncols=True, leave=True,  # ", " before a postfix:
                    bar_format="{desc} {n_fmt}/{total_fmt} |{bar}| {elapsed}{postfix}")  # tqdm's
    stop = threading.Event()

    def tick():
        while not stop.wait(interval):
            progress.refresh()

    ticker = threading.Thread(target=tick, name="dislab-bar", daemon=True)
    ticker.start()
    try:
        with logging_redirect_tqdm():
            yield progress
    finally:
        stop.set()
        ticker.join()
        progress.close()
