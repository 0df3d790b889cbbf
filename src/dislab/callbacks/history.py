"""A Lightning logger that keeps every logged scalar and writes ``history.csv`` (one row per step)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from pytorch_lightning.loggers.logger import Logger, rank_zero_experiment
from pytorch_lightning.utilities import rank_zero_only

from dislab.atomic import write_text


class HistoryLogger(Logger):
    def __init__(self, path):
        super().__init__()
        self.path = Path(path)
        self.rows: dict[int, dict[str, float]] = {}
        if self.path.exists():  # a resumed run continues its history
            with open(self.path, newline="") as f:
                for row in csv.DictReader(f):
                    step = int(row.pop("step"))
                    self.rows[step] = {k: float(v) for k, v in row.items() if v != ""}

    name = "history"
    version = 0

    @property
    @rank_zero_experiment
    def experiment(self):
        return None

    @rank_zero_only
    def log_hyperparams(self, params, *args, **kwargs):
        pass

    @rank_zero_only
    def log_metrics(self, metrics, step=None):
        row = self.rows.setdefault(int(step or 0), {})
        row.update({k: float(v) for k, v in metrics.items() if k != "epoch"})

    def save(self):  # Lightning calls this after every log; the file is written by flush()
        pass

    @rank_zero_only
    def flush(self):
        keys = sorted({k for row in self.rows.values() for k in row})
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["step", *keys])
        for step in sorted(self.rows):
            row = self.rows[step]
            w.writerow([step, *(repr(row[k]) if k in row else "" for k in keys)])
        write_text(self.path, buf.getvalue())

    @rank_zero_only
    def finalize(self, status):
        self.flush()
