"""Where a data set's images come from, as a run records it (the console's ``data`` line, ``metrics.json``
``data``, every tracker's config ``data``, the report): a dict, ``GroundTruthData.source()``.

* ``{"kind": "procedural", "dataset", "stands_in_for"}``: rendered by dislab; ``stands_in_for`` names the
  published file the rendering replaces (``dsprites``, its variants and ``shapes3d`` without ``path`` or a
  downloaded copy), so its scores are not comparable with published ones; None where it stands in for
  nothing (``toy``).
* ``{"kind": "file", "dataset", "path", "bytes", "sha256"}``: read from that file (absolute path); ``sha256``
  of its bytes, as ``sha256sum`` prints it.
* ``{"kind": "folder", "dataset", "path", "files", "bytes", "sha256"}``: read from the data set's files in
  that folder (``smallnorb``, ``cars3d``, ``images``); ``sha256`` is a digest over them: the SHA-256 of one
  line ``<path relative to the folder>\\t<bytes>\\t<sha256 of the file>\\n`` per file, sorted by path.

A picture a data set also reads (``scream_dsprites``' ``background``) is a file source under its own key.

Hashing reads every byte once (a few seconds per GB): instant for dSprites, about a second for 3dshapes.h5,
10-30 s for an MPI3D file. A file (or folder) of ``CACHE_BYTES`` or more is hashed once: its digest is kept in
``$XDG_CACHE_HOME/dislab/sha256/`` (default ``~/.cache``), keyed by its absolute path, size and modification
time (a folder: by every file's), so later runs read it back; a smaller one is hashed by every run. Nothing
is written beside the data, which may be read-only or shared. Within a process each digest is computed once.

The published files live in one data directory (``data_dir()``): ``python -m dislab.data.download <set>``
places each set there under the name ``PLACES`` gives it, and a data set whose file argument is null reads
the copy there (``PUBLISHED``: which set each argument reads), or, where it has none, renders procedurally
(saying so: ``stand_in_warning``) or refuses.

Nothing here imports torch: the report and the command-line checks read these records too.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path

log = logging.getLogger("dislab")
CACHE_BYTES = 64 * 2**20
_BLOCK = 2**20
_MEMO: dict[str, str] = {}


DATA_ENV = "DISLAB_DATA"
#: where the download command places each published set in the data directory (a file or a folder), by set name
PLACES = {"dsprites": "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz", "shapes3d": "3dshapes.h5",
          "mpi3d_toy": "mpi3d_toy.npz", "mpi3d_realistic": "mpi3d_realistic.npz", "mpi3d_real": "mpi3d_real.npz",
          "smallnorb": "smallnorb", "cars3d": "cars3d", "scream": "scream.jpg"}
#: the published set each data set's file argument reads when null (``{variant}``: the data set's argument)
PUBLISHED = {"dsprites": {"path": "dsprites"}, "color_dsprites": {"path": "dsprites"},
             "noisy_dsprites": {"path": "dsprites"}, "scream_dsprites": {"path": "dsprites", "background": "scream"},
             "shapes3d": {"path": "shapes3d"}, "mpi3d": {"path": "mpi3d_{variant}"}, "smallnorb": {"path": "smallnorb"},
             "cars3d": {"path": "cars3d"}}


def _cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


def cache_dir() -> Path:
    """Where large files' digests are kept between runs."""
    return _cache_home() / "dislab" / "sha256"


def data_dir() -> Path:
    """The data directory: ``$DISLAB_DATA``, by default ``$XDG_CACHE_HOME/dislab/data`` (``~/.cache/dislab/data``)."""
    given = os.environ.get(DATA_ENV)
    return Path(given).expanduser() if given else _cache_home() / "dislab" / "data"


def published(dataset: str | None, arg: str, args: dict | None = None) -> str | None:
    """The published set that ``dataset``'s argument ``arg`` reads when null (None: none), e.g. ``mpi3d_toy``."""
    name = PUBLISHED.get(dataset or "", {}).get(arg)
    if name is None:
        return None
    try:
        name = name.format(**(args or {}))
    except (KeyError, IndexError, ValueError):  # an argument it names is not given
        return None
    return name if name in PLACES else None


def placed(name: str | None) -> Path | None:
    """The data directory's copy of the published set ``name``, or None where it is not there."""
    if name not in PLACES:
        return None
    p = data_dir() / PLACES[name]
    return p if p.exists() else None


def fetch_command(*names: str) -> str:
    """The command that downloads, verifies and places ``names`` in the data directory."""
    return " ".join(("python -m dislab.data.download", *names))


def _hash_bytes(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            h.update(block)
    return h.hexdigest()


def _digest(key: str, nbytes: int, what: Path, compute) -> str:
    """``compute()`` once per ``key`` in this process; from or into the cache when ``nbytes`` is large."""
    if key in _MEMO:
        return _MEMO[key]
    store = cache_dir() / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.txt" if nbytes >= CACHE_BYTES else None
    try:
        kept = store.read_text().strip() if store is not None else ""
    except OSError:
        kept = ""
    if re.fullmatch(r"[0-9a-f]{64}", kept):
        _MEMO[key] = kept
        return kept
    if store is not None:
        log.info("data: computing the sha256 of %s (%.1f GB) once; kept in %s", what, nbytes / 1e9, store.parent)
    digest = compute()
    if store is not None:
        try:
            from dislab import atomic

            atomic.write_text(store, digest + "\n")
        except OSError as e:  # a read-only home: hash again next time
            log.warning("data: cannot keep the sha256 of %s in %s (%s)", what, store.parent, e.strerror)
    _MEMO[key] = digest
    return digest


def file_source(path) -> dict:
    """``{"kind": "file", "path", "bytes", "sha256"}`` of the file at ``path``."""
    p = Path(str(path)).expanduser().resolve()
    st = p.stat()
    sha = _digest(f"file\n{p}\n{st.st_size}\n{st.st_mtime_ns}", st.st_size, p, lambda: _hash_bytes(p))
    return {"kind": "file", "path": str(p), "bytes": st.st_size, "sha256": sha}


def folder_source(folder, files) -> dict:
    """``{"kind": "folder", "path", "files", "bytes", "sha256"}`` over ``files`` (paths under ``folder``)."""
    base = Path(str(folder)).expanduser()
    root = base.resolve()
    listing = sorted((Path(f).relative_to(base).as_posix(), Path(f).stat()) for f in files)
    total = sum(st.st_size for _, st in listing)
    key = "folder\n" + str(root) + "".join(f"\n{name}\t{st.st_size}\t{st.st_mtime_ns}" for name, st in listing)

    def compute() -> str:
        lines = "".join(f"{name}\t{st.st_size}\t{_hash_bytes(base / name)}\n" for name, st in listing)
        return hashlib.sha256(lines.encode()).hexdigest()

    sha = _digest(key, total, root, compute)
    return {"kind": "folder", "path": str(root), "files": len(listing), "bytes": total, "sha256": sha}


def describe(source: dict | None) -> str:
    """One line: ``procedural``, ``procedural (dislab's re-rendering of the published 3dshapes.h5)``, or the
    file or folder with its size and sha256."""
    if not source:
        return "source not recorded"
    kind = source.get("kind")
    if kind == "procedural":
        stands_in = source.get("stands_in_for")
        text = f"procedural (dislab's re-rendering of the published {stands_in})" if stands_in else "procedural"
    elif kind == "file":
        text = f"file {source['path']} ({source['bytes']:,} bytes, sha256 {source['sha256']})"
    elif kind == "folder":
        text = (f"folder {source['path']} ({source['files']:,} files, {source['bytes']:,} bytes, "
                f"sha256 {source['sha256']} over their names, sizes and sha256s)")
    else:
        text = str(kind)
    extra = source.get("background")
    return text + (f"; background {describe(extra)}" if extra else "")


def stand_in_warning(source: dict | None) -> str | None:
    """The line a procedural stand-in for a published data set gets; None for anything else."""
    if not source or source.get("kind") != "procedural" or not source.get("stands_in_for"):
        return None
    name, file = source.get("dataset") or "this data set", source["stands_in_for"]
    fetch = published(source.get("dataset"), "path")
    return (f"data: {name} is procedural (dislab's re-rendering), not the published {file}: scores are not comparable "
            f"with published ones; give dataset.path=<{file}> for the published file"
            + (f", or fetch it once into {data_dir()}: {fetch_command(fetch)}" if fetch else ""))
