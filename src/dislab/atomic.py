"""Atomic file writes: write a temporary file beside the target, then rename it over the target,
so a killed run never leaves a half-written result.

The temporary file is created with mode 0o666, so the kernel gives it the permissions any new
file of the user gets (the umask, or the folder's default ACL): colleagues read results as they
read the checkpoints. (``tempfile.mkstemp`` would make it 0o600, owner-only, and computing
0o666 & ~umask ourselves would need ``os.umask``, which is process-wide and racy with threads.)"""

from __future__ import annotations

import io
import json
import os
import secrets
from pathlib import Path


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new, empty file beside ``path``: (descriptor, its path), mode 0o666 less the umask."""
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666), tmp
        except FileExistsError:
            continue


def write_bytes(path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path, text: str) -> Path:
    return write_bytes(path, text.encode())


def write_json(path, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_npz(path, **arrays) -> Path:
    buf = io.BytesIO()
    import numpy as np

    np.savez_compressed(buf, **arrays)
    return write_bytes(path, buf.getvalue())


def to_png(image) -> bytes:
    """PNG bytes of a uint8 (H, W) or (H, W, 3) array."""
    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def write_png(path, image) -> Path:
    """``image``: uint8 array (H, W) or (H, W, 3)."""
    return write_bytes(path, to_png(image))
