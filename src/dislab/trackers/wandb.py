"""Everything W&B: its settings (``defaults``: offline unless ``WANDB_MODE`` says otherwise, silent);
a run directory's W&B run (``run_id``, its segments' files, ``read_run`` to read one back without a server);
finishing a run so that its files are complete (``finish``); adding summary values to finished runs by
resuming them by their id (``add_to_runs``); and a run of its own holding tables and values (``log_run``:
the sweep's summary run).

Offline, a resumed run is a new segment: ``wandb/offline-run-<time>-<id>[-<n>]/run-<id>.wandb`` with the
same id; ``wandb sync <run>/wandb/offline-run-*`` uploads the segments into one W&B run, in order.

The file is a LevelDB-style log: a 7-byte header (b":W&B", 0xBEE1, version), then 32 KiB blocks of
records, each with a 7-byte header (crc32, length uint16, type: 1 full, 2 first, 3 middle, 4 last);
a payload is a serialized ``wandb.proto.wandb_internal_pb2.Record``. The file is complete only
after its ``exit`` record: check ``complete`` before trusting it.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("dislab")
BLOCK, HEADER = 32768, 7


def defaults() -> None:
    """Offline unless WANDB_MODE says otherwise, silent; online without credentials falls back to offline
    (with a warning) so nothing waits for a network or a login prompt."""
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    if os.environ["WANDB_MODE"] == "online" and not os.environ.get("WANDB_API_KEY"):
        netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
        if not (netrc.exists() and "api.wandb.ai" in netrc.read_text(errors="ignore")):
            log.warning("WANDB_MODE=online but no W&B credentials: logging offline (wandb sync uploads later)")
            os.environ["WANDB_MODE"] = "offline"


def finish() -> None:
    """Finish the current W&B run (if any) and return only once its files are complete.

    With wandb-core (wandb >= 0.19), ``wandb.finish()`` asks the service process to finish the run
    and returns; that process writes the run file's last block (the ``exit`` record) a few
    milliseconds later, or never, if the caller's process ends first (a SLURM job, a test reading
    the file back). ``wandb.teardown()`` shuts the service down and waits for it to exit, which
    flushes and closes every run file. A later run in the same process starts a new service.
    """
    import sys

    if "wandb" not in sys.modules:
        return
    import wandb

    try:
        if wandb.run is not None:
            wandb.finish()
    finally:
        wandb.teardown()


def _payloads(data: bytes):
    if data[:4] != b":W&B":
        raise ValueError("not a W&B run file (bad header)")
    pos, buf = HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        pos += HEADER
        if kind == 0 and length == 0:  # zero padding at the end of a block
            pos += left - HEADER
            continue
        chunk, pos = data[pos:pos + length], pos + length
        if kind == 1:
            yield chunk
        elif kind == 2:
            buf = chunk
        elif kind == 3:
            buf += chunk
        elif kind == 4:
            yield buf + chunk


@dataclass
class RunRecords:
    history: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    group: str = ""
    name: str = ""
    project: str = ""
    complete: bool = False


def read_run(path) -> RunRecords:
    """Parse ``run-*.wandb`` (or the ``offline-run-*`` directory holding it)."""
    from wandb.proto import wandb_internal_pb2 as pb

    path = Path(path)
    if path.is_dir():
        path = next(path.glob("run-*.wandb"))
    out = RunRecords()
    for payload in _payloads(path.read_bytes()):
        rec = pb.Record()
        rec.ParseFromString(payload)
        kind = rec.WhichOneof("record_type")
        if kind == "history":
            out.history.append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in rec.history.item})
        elif kind == "summary":
            out.summary.update({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in rec.summary.update})
        elif kind == "run":
            out.group, out.name, out.project = rec.run.run_group, rec.run.display_name, rec.run.project
            out.config.update({i.key: json.loads(i.value_json) for i in rec.run.config.update})
        elif kind == "config":
            out.config.update({i.key: json.loads(i.value_json) for i in rec.config.update})
        elif kind == "exit":
            out.complete = True
    return out


def _natural(path: Path):
    return [int(t) if t.isdigit() else t for t in path.parent.name.replace("-", " ").split()]


def segments(run_dir) -> list[Path]:
    """The ``run-<id>.wandb`` files under ``<run_dir>/wandb/``, oldest first (``offline-run-<time>-<id>``
    and, for a second segment started in the same second, ``...-<id>-1``)."""
    return sorted(Path(run_dir).glob("wandb/*run-*/run-*.wandb"), key=_natural)


def run_id(run_dir) -> str | None:
    """The id of the W&B run a run directory logged to (from its newest segment's file name), or None."""
    files = segments(run_dir)
    return files[-1].stem[len("run-"):] if files else None


def add_to_runs(updates: dict, config: dict | None = None) -> list[Path]:
    """Resume each run directory's W&B run by its id (``{run_dir: {summary key: value}}``) and set those
    summary values (and ``config``'s keys, where given); one W&B service for all of them, torn down at
    the end, so every file is complete on return. Run directories without a W&B run are left alone.
    W&B's settings: ``defaults``. Returns the run directories written to."""
    defaults()
    import wandb

    done = []
    try:
        for run_dir, values in updates.items():
            rid = run_id(run_dir)
            if rid is None or not values:
                continue
            first = read_run(segments(run_dir)[0])  # a segment names its run (group, name) as the first did
            run = wandb.init(id=rid, resume="allow", dir=str(run_dir), project=first.project or None,
                             group=first.group or None, name=first.name or None,
                             config={k: v for k, v in first.config.items() if k != "_wandb"})
            if config:
                run.config.update(config, allow_val_change=True)
            run.summary.update(dict(values))
            wandb.finish()
            done.append(Path(run_dir))
    finally:
        finish()
    return done


def log_run(folder: Path, config: dict, tables: dict[str, tuple[list, list]], values: dict, **init) -> Path:
    """A W&B run of its own under ``folder`` (``init``: ``wandb.init``'s project, entity, group, name, job_type)
    with ``config`` and one log of ``tables`` ({key: (columns, rows)}, as ``wandb.Table``) and ``values``; its
    file complete on return. W&B's settings: ``defaults``. Returns its local run directory."""
    defaults()
    import wandb

    try:
        run = wandb.init(dir=str(folder), config=config, **init)
        run.log({**{k: wandb.Table(columns=cols, data=rows) for k, (cols, rows) in tables.items()}, **values})
        return Path(run.dir).parent
    finally:
        finish()
