"""Finish a W&B run so that its files are complete (``finish``), and read back what it logged from
its offline run file (``run-<id>.wandb``) without a server (``read_run``).

The file is a LevelDB-style log: a 7-byte header (b":W&B", 0xBEE1, version), then 32 KiB blocks of
records, each with a 7-byte header (crc32, length uint16, type: 1 full, 2 first, 3 middle, 4 last);
a payload is a serialized ``wandb.proto.wandb_internal_pb2.Record``. The file is complete only
after its ``exit`` record: check ``complete`` before trusting it.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

BLOCK, HEADER = 32768, 7


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
            out.group, out.name = rec.run.run_group, rec.run.display_name
            out.config.update({i.key: json.loads(i.value_json) for i in rec.run.config.update})
        elif kind == "config":
            out.config.update({i.key: json.loads(i.value_json) for i in rec.config.update})
        elif kind == "exit":
            out.complete = True
    return out
