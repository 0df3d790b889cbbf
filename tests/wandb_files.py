"""A run directory's W&B run read back from its offline run files, every segment merged (``read_runs``); one
segment's file is ``dislab.trackers.wandb.read_run``'s."""

from __future__ import annotations

from pathlib import Path

from dislab.trackers.wandb import RunRecords, read_run, segments


def read_runs(run_dir) -> RunRecords:
    """Every segment of the run directory's W&B run, merged in order as ``wandb sync`` uploads them: the
    history concatenated, later summary and config values over earlier ones; ``complete`` when all are."""
    out = RunRecords(complete=True)
    files = segments(run_dir)
    if not files:
        raise FileNotFoundError(f"no W&B run files under {Path(run_dir) / 'wandb'}")
    for f in files:
        rec = read_run(f)
        out.history += rec.history
        out.summary.update(rec.summary)
        out.config.update(rec.config)
        out.group, out.name, out.project = out.group or rec.group, out.name or rec.name, out.project or rec.project
        out.complete = out.complete and rec.complete
    return out
