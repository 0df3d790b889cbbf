"""Download, verify and place the published ground-truth data sets in the data directory::

    python -m dislab.data.download dsprites shapes3d mpi3d_toy      # or: all; --list shows every set

Each set's files come from its official address, then the known mirrors (``SETS``, which also says where each
address and checksum was found). A transfer goes to ``<data dir>/.partial/<file>.part`` (never the final name),
resumes from there with an HTTP Range request when cut short (in this run, or the next), and is checked for
its size and pinned checksum (SHA-256, MD5, or the git blob id of a file served from a git repository; where
none is published, the SHA-256 of the first verified download, kept in ``<data dir>/downloads.json``, checks
later downloads: trust on first use). It is then unpacked where needed and must pass the structure checks of
the data set's own loader (keys, shapes, dtypes, the factor grid) before ``os.replace`` puts it under its final
name (``dislab.data.source.PLACES``) in one step. A file that fails any check is never placed: each failed
address gets one line saying which check failed, and the set ends with one line giving the path to place a
copy by hand. A set already in place is left alone (nothing is fetched).

The data directory is ``$DISLAB_DATA`` (default ``~/.cache/dislab/data``, under ``$XDG_CACHE_HOME``); a data
set whose ``path`` is null reads its copy there.
"""

from __future__ import annotations

import argparse
import errno
import gzip
import hashlib
import http.client
import json
import os
import shutil
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from dislab import atomic
from dislab.data.source import DATA_ENV, PLACES, data_dir, fetch_command

RECORD = "downloads.json"  # in the data directory: where each placed file came from, and its sha256
PARTIAL = ".partial"       # in the data directory: transfers under way or cut short, and sets being unpacked
TIMEOUT = 60               # seconds without a byte before a transfer counts as cut short
TRIES = 4                  # transfers of one address (the later ones resuming) before the next address
_BLOCK = 2**20


@dataclass(frozen=True)
class Remote:
    """One file as its publisher serves it."""

    name: str                 # its name as served (and of its partial download)
    urls: tuple[str, ...]     # the official address first, then known mirrors
    size: int | None = None   # bytes, where published
    digest: str | None = None  # "sha256:<hex>", "md5:<hex>" or "git:<blob id>"; None: trust on first use


@dataclass(frozen=True)
class Published:
    """A published set: its files, how they become what the loader reads, and that loader's check."""

    name: str                  # what the command takes (``dislab.data.source.PLACES``' key)
    title: str
    files: tuple[Remote, ...]
    unpack: str                # "file": placed as served; "gunzip": each file unzipped into a folder;
                               # "cars": the .mat files of the tarball's data/cars/ in a folder
    check: Callable            # check(path): the loader's structure checks; raises ValueError or OSError
    checksums: str             # where the checksums were found (--list, the README)
    manual: str                # what to place by hand at the final path


class DownloadError(Exception):
    """A set that could not be downloaded, verified or placed: one line."""


class _Refused(Exception):
    """An address whose answer is not the file (HTTP error, a web page, wrong size or checksum)."""


class _Cut(Exception):
    """A transfer cut short or never started (the partial file is kept, to resume)."""


# ---- the loaders' checks (imported when used: they import torch) -------------------------------------------
def _dsprites(p):
    from dislab.data.dsprites import DSprites

    DSprites(path=p, device="cpu")


def _shapes3d(p):
    from dislab.data.shapes3d import Shapes3D

    Shapes3D(path=p, device="cpu")._file.close()


def _mpi3d(variant):
    def check(p):
        from dislab.data.mpi3d import MPI3D

        MPI3D(path=p, variant=variant, device="cpu")
    return check


def _smallnorb(p):
    from dislab.data.smallnorb import SmallNORB

    SmallNORB(path=p, device="cpu")


def _cars3d(p):
    from dislab.data.cars3d import Cars3D

    Cars3D(path=p, device="cpu")


def _scream(p):
    from dislab.data.scream_dsprites import load_background

    load_background(p)


# ---- the published sets --------------------------------------------------------------------------------------
_DSPRITES = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
_HF_MPI3D = "https://huggingface.co/datasets/waleedgondal/mpi3d/resolve/main/"
_NORB = "https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/"
_NORB_FILES = (  # (name, bytes, sha256), from tensorflow_datasets' url_checksums/smallnorb.txt
    ("smallnorb-5x46789x9x18x6x2x96x96-training-dat.mat.gz", 131896188,
     "5ffd6272a07d32695ee1082a26a41a93a37aab8c28da047f8c34ed348d214873"),
    ("smallnorb-5x46789x9x18x6x2x96x96-training-cat.mat.gz", 348,
     "2784e542c1922060691090952b6cd6278879a216c90f81476f0f00256d42cdaa"),
    ("smallnorb-5x46789x9x18x6x2x96x96-training-info.mat.gz", 71052,
     "de7eb932ebe7a4ee16217fead60660d0eb3d23632c2f4d1c51f88c501c17bf32"),
    ("smallnorb-5x01235x9x18x6x2x96x96-testing-dat.mat.gz", 130799817,
     "cf7104eed3e51174d2f65b66d1e5878b9da233b886f161b0d88f4510ba2c7474"),
    ("smallnorb-5x01235x9x18x6x2x96x96-testing-cat.mat.gz", 347,
     "ecaf6d5bb8c3bc5eab9cf0258f6d2198dd474e016e374836fc097f2e5ff509ff"),
    ("smallnorb-5x01235x9x18x6x2x96x96-testing-info.mat.gz", 10428,
     "16adf314226327ee006d1a44db8cfef52773c06c829951d5653a9f6f310248a2"),
)


def _mpi3d_set(variant: str, mirrors: tuple[str, ...]) -> Published:
    return Published(
        f"mpi3d_{variant}", f"MPI3D {variant} (Gondal et al. 2019)",
        (Remote(f"mpi3d_{variant}.npz", (_HF_MPI3D + f"mpi3d_{variant}.npz", *mirrors)),),
        "file", _mpi3d(variant),
        "none published: the first verified download's sha256 is recorded (trust on first use)",
        f"the official mpi3d_{variant}.npz")


SETS: dict[str, Published] = {s.name: s for s in (
    Published(
        # the data set's git repository (deepmind, now google-deepmind); the blob id is `git ls-tree`'s
        "dsprites", "dSprites (Matthey et al. 2017)",
        (Remote(_DSPRITES, (f"https://github.com/google-deepmind/dsprites-dataset/raw/master/{_DSPRITES}",
                            f"https://raw.githubusercontent.com/deepmind/dsprites-dataset/master/{_DSPRITES}"),
                digest="git:d98996d3f8ee1550e06b9d4ed78d0beb478910d5"),),
        "file", _dsprites, "git blob id of the file in github.com/google-deepmind/dsprites-dataset",
        f"the official {_DSPRITES}"),
    Published(
        # the address of github.com/google-deepmind/3d-shapes; size and sha256 as tensorflow_datasets pins them
        "shapes3d", "3D Shapes (Burgess & Kim 2018)",
        (Remote("3dshapes.h5", ("https://storage.googleapis.com/3d-shapes/3dshapes.h5",), 267573662,
                "sha256:0a0f6ed98baff276a50f3a081a7434d788da63cb135a98189b2a5b5769be1785"),),
        "file", _shapes3d, "size and sha256 from tensorflow_datasets (url_checksums/shapes3d.txt)",
        "the official 3dshapes.h5"),
    # github.com/rr-learning/disentanglement_dataset's README: Hugging Face since April 2025 (mpi3d_real re-uploaded
    # there, corrected); before, storage.googleapis.com/mpi3d_disentanglement_dataset/data/ (May 2024) and
    # storage.googleapis.com/disentanglement_dataset/Final_Dataset/
    _mpi3d_set("toy", ("https://storage.googleapis.com/mpi3d_disentanglement_dataset/data/mpi3d_toy.npz",
                       "https://storage.googleapis.com/disentanglement_dataset/Final_Dataset/mpi3d_toy.npz")),
    _mpi3d_set("realistic", (
        "https://storage.googleapis.com/mpi3d_disentanglement_dataset/data/mpi3d_realistic.npz",
        "https://storage.googleapis.com/disentanglement_dataset/Final_Dataset/mpi3d_realistic.npz")),
    _mpi3d_set("real", ()),
    Published(
        # the data set's page, as disentanglement_lib's bin/dlib_download_data fetches it
        "smallnorb", "smallNORB (LeCun et al. 2004)",
        tuple(Remote(n, (_NORB + n,), size, f"sha256:{sha}") for n, size, sha in _NORB_FILES),
        "gunzip", _smallnorb, "size and sha256 of each file from tensorflow_datasets (url_checksums/smallnorb.txt)",
        "a folder holding the six uncompressed smallnorb-5x*-{training,testing}-{dat,cat,info}.mat files"),
    Published(
        # scottreed.info as disentanglement_lib fetches it, and its earlier home at umich.edu; the md5 as both
        # disent (_groundtruth__cars3d.py, 'full') and latte (MD5_CHECKSUM) pin it
        "cars3d", "Cars3D (Reed et al. 2015)",
        (Remote("nips2015-analogy-data.tar.gz",
                ("http://www.scottreed.info/files/nips2015-analogy-data.tar.gz",
                 "http://www-personal.umich.edu/~reedscot/files/nips2015-analogy-data.tar.gz"),
                digest="md5:4e866a7919c1beedf53964e6f7a23686"),),
        "cars", _cars3d, "md5 of the tarball as disent and latte pin it",
        "a folder holding the 183 car_*_mesh.mat files of the tarball's data/cars/"),
    Published(
        # the picture disentanglement_lib's bin/dlib_download_data fetches for scream_dsprites
        "scream", "The Scream (Munch), scream_dsprites' background",
        (Remote("The_Scream.jpg", ("https://upload.wikimedia.org/wikipedia/commons/f/f4/The_Scream.jpg",)),),
        "file", _scream, "none published: the first verified download's sha256 is recorded (trust on first use)",
        "a picture (disentanglement_lib's is The Scream)"),
)}


# ---- one file ------------------------------------------------------------------------------------------------
class _Progress:
    """A bar redrawn in place on a terminal; otherwise one line when a transfer starts, one at each tenth of a
    file of known size, and one when it ends."""

    def __init__(self, out, tty: bool, label: str):
        self.out, self.tty, self.label, self.shown, self.drawn = out, tty, label, 0.0, False

    def begin(self, url: str, have: int, total: int | None):
        self.have0, self.start = have, time.monotonic()
        self.tenth = int(10 * have / total) + 1 if total else 11
        if not self.tty:
            size = f" ({total:,} bytes)" if total else ""
            resume = f", resuming at byte {have:,}" if have else ""
            print(f"{self.label}: fetching {url}{size}{resume}", file=self.out, flush=True)

    def update(self, have: int, total: int | None, last: bool = False):
        now = time.monotonic()
        if not self.tty:
            if total and self.tenth < 10 and 10 * have >= self.tenth * total:
                self.tenth = int(10 * have / total) + 1
                print(f"{self.label}: {have:,} of {total:,} bytes", file=self.out, flush=True)
            return
        if not last and now - self.shown < 0.2:
            return
        self.shown = now
        rate = (have - self.have0) / max(now - self.start, 1e-6) / 1e6
        if total:
            filled = int(30 * have / total)
            bar = (f"[{'#' * filled}{'.' * (30 - filled)}] {100 * have / total:5.1f}% "
                   f"{have / 1e6:,.1f}/{total / 1e6:,.1f} MB")
        else:
            bar = f"{have / 1e6:,.1f} MB"
        print(f"\r{self.label} {bar} {rate:.1f} MB/s", end="\n" if last else "", file=self.out, flush=True)
        self.drawn = not last

    def stop(self):
        """End a bar left mid-line (before a line saying why)."""
        if self.drawn:
            print(file=self.out, flush=True)
            self.drawn = False

    def end(self, have: int, url: str):
        if not self.tty:
            print(f"{self.label}: got {have:,} bytes from {url}", file=self.out, flush=True)


def _write(f, block: bytes) -> None:
    f.write(block)


def _looks_like_html(head: bytes) -> bool:
    return head.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html"))


def _transfer(url: str, part: Path, size: int | None, progress: _Progress) -> None:
    """Bring ``part`` to the whole file at ``url``, resuming with a Range request from what it holds."""
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:
        part.unlink()
        have = 0
    if size is not None and have == size:
        return
    headers = {"User-Agent": "dislab", **({"Range": f"bytes={have}-"} if have else {})}
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # the part holds the whole file or more: start again
            part.unlink()
            return _transfer(url, part, size, progress)
        raise _Refused(f"HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", None) or e
        raise _Cut(f"cannot connect ({reason})") from None
    with response:
        kind = response.headers.get("Content-Type", "")
        if "html" in kind.lower():
            raise _Refused(f"served a web page ({kind}) instead of the file (an error or sign-in page?)")
        if response.status == 206:
            start = response.headers.get("Content-Range", "").removeprefix("bytes ").split("-")[0]
            if start != str(have):
                raise _Refused(f"answered a resume at byte {have:,} with the range {start!r}")
        else:
            have = 0  # the whole file: start again
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else size
        if size is not None and total != size:
            raise _Refused(f"announces {total:,} bytes; the published file has {size:,} (the wrong file?)")
        progress.begin(url, have, total)
        try:
            with open(part, "ab" if have else "wb") as f:
                while block := response.read(_BLOCK):
                    if not have and _looks_like_html(block[:64]):
                        raise _Refused("served a web page instead of the file (an error or sign-in page?)")
                    _write(f, block)
                    have += len(block)
                    progress.update(have, total)
        except (OSError, http.client.HTTPException) as e:
            if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise _Cut(f"transfer cut at byte {have:,} ({e})") from None
        progress.update(have, total, last=True)
        if total is not None and have < total:
            raise _Cut(f"transfer cut at byte {have:,} of {total:,}")
        progress.end(have, url)


def _digests(path: Path, digest: str | None) -> tuple[str, str | None]:
    """(sha256, the pinned kind's digest) of the file at ``path``, read once."""
    sha = hashlib.sha256()
    kind = digest.split(":")[0] if digest else None
    other = None
    if kind == "git":
        other = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    elif kind and kind != "sha256":
        other = hashlib.new(kind)
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            sha.update(block)
            if other is not None:
                other.update(block)
    return sha.hexdigest(), (other.hexdigest() if other is not None else sha.hexdigest() if kind else None)


_KIND = {"git": "git blob id", "sha256": "sha256", "md5": "md5"}


def _verify(remote: Remote, part: Path, first_seen: str | None) -> str:
    """The file's sha256, once its size and checksum (pinned, or recorded at its first download) are right."""
    got = part.stat().st_size
    if remote.size is not None and got != remote.size:
        raise _Refused(f"is {got:,} bytes; the published file has {remote.size:,}")
    sha, pinned = _digests(part, remote.digest)
    if remote.digest:
        kind, want = remote.digest.split(":", 1)
        if pinned != want:
            raise _Refused(f"{_KIND[kind]} {pinned} is not the published {want} (a corrupted or changed file)")
    elif first_seen and sha != first_seen:
        raise _Refused(f"sha256 {sha} is not {first_seen}, the one recorded at its first verified download "
                       f"({RECORD}); if its publisher changed the file, delete that entry and run again")
    return sha


def _fetch_file(s: Published, remote: Remote, work: Path, record: dict, out, err, tty: bool,
                final: Path) -> tuple[Path, str, str]:
    """(the verified file, its sha256, the address it came from), trying each address in turn."""
    part = work / f"{remote.name}.part"
    first_seen = record.get(remote.name, {}).get("sha256") if not remote.digest else None
    progress = _Progress(out, tty, f"{s.name}: {remote.name}")

    def say(line, stream=err):
        progress.stop()
        print(line, file=stream, flush=True)

    for url in remote.urls:
        tries = 0
        while True:
            tries += 1
            before = part.stat().st_size if part.exists() else 0
            try:
                _transfer(url, part, remote.size, progress)
                return part, _verify(remote, part, first_seen), url
            except _Refused as e:
                part.unlink(missing_ok=True)
                say(f"{s.name}: {url}: {e}")
                break
            except _Cut as e:
                grew = (part.stat().st_size if part.exists() else 0) > before
                if tries < TRIES and grew:
                    say(f"{s.name}: {url}: {e}; resuming", out)
                    continue
                say(f"{s.name}: {url}: {e}")
                break
    kept = part.stat().st_size if part.exists() else 0
    resume = f"; {kept:,} bytes kept in {part} to resume" if kept else ""
    raise DownloadError(f"{s.name}: no address gave a verified {remote.name} ({len(remote.urls)} tried{resume}); "
                        f"run `{fetch_command(s.name)}` again later, or place {s.manual} at {final}")


# ---- unpacking ------------------------------------------------------------------------------------------------
def _copy(src, dst_path: Path) -> None:
    with open(dst_path, "wb") as dst:
        while block := src.read(_BLOCK):
            _write(dst, block)


def _unpack(s: Published, files: list[Path], work: Path) -> Path:
    """What the loader reads, beside the final name: the file itself, or a folder in ``work``."""
    if s.unpack == "file":
        return files[0]
    folder = work / f"{s.name}.unpack"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    try:
        if s.unpack == "gunzip":
            for f in files:
                with gzip.open(f, "rb") as src:
                    _copy(src, folder / f.name.removesuffix(".part").removesuffix(".gz"))
        elif s.unpack == "cars":
            with tarfile.open(files[0], "r:*") as tar:
                for m in tar:
                    parts = m.name.removeprefix("./").split("/")
                    if m.isfile() and len(parts) == 3 and parts[:2] == ["data", "cars"] and parts[2].endswith(".mat"):
                        _copy(tar.extractfile(m), folder / parts[2])
        else:
            raise ValueError(f"unknown unpacking {s.unpack!r}")
    except (gzip.BadGzipFile, tarfile.TarError, EOFError, zlib.error) as e:
        shutil.rmtree(folder, ignore_errors=True)
        raise DownloadError(f"{s.name}: cannot unpack the download ({e}); nothing placed") from None
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


# ---- a set -----------------------------------------------------------------------------------------------------
def _place(s: Published, root: Path, out, err, tty: bool) -> Path:
    def say(line):
        print(line, file=out, flush=True)

    final = root / PLACES[s.name]
    if final.exists():
        say(f"{s.name}: already in place: {final}")
        return final
    work = root / PARTIAL
    record_path = root / RECORD
    got: list[tuple[Path, str, str]] = []
    staged = None
    try:
        work.mkdir(parents=True, exist_ok=True)
        try:
            record = json.loads(record_path.read_text()) if record_path.exists() else {}
        except ValueError as e:
            raise DownloadError(f"{s.name}: {record_path} is not readable JSON ({e}); repair or delete it") from None
        for remote in s.files:
            got.append(_fetch_file(s, remote, work, record, out, err, tty, final))
        staged = _unpack(s, [p for p, _, _ in got], work)
        try:
            s.check(staged)
        except (ValueError, OSError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DownloadError(f"{s.name}: the download fails dislab's check of its structure ({first}); "
                                f"nothing placed; place {s.manual} at {final} by hand if you trust it") from None
        os.replace(staged, final)
        staged = None
        for remote, (_, sha, url) in zip(s.files, got, strict=True):
            record[remote.name] = {"set": s.name, "url": url, "sha256": sha,
                                   "checked": remote.digest or "first download"}
        atomic.write_json(record_path, record)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            for r in s.files:
                (work / f"{r.name}.part").unlink(missing_ok=True)
            raise DownloadError(f"{s.name}: no space left on the device of {root}; nothing placed (the partial "
                                "download is removed); free some space and run again") from None
        raise DownloadError(f"{s.name}: {e.strerror or e}: {e.filename or root}; nothing placed") from None
    except DownloadError:
        if got and len(got) == len(s.files):  # every file arrived but the set failed: none is kept
            for p, _, _ in got:
                p.unlink(missing_ok=True)
        raise
    finally:
        if staged is not None:
            _remove(staged)
    for p, _, _ in got:
        p.unlink(missing_ok=True)
    say(f"{s.name}: placed {final}")
    return final


def download(names, *, sets: dict[str, Published] | None = None, out=None, err=None,
             tty: bool | None = None) -> list[Path]:
    """Download, verify and place each set of ``names`` (``all``: every set) in the data directory; return
    their paths. ``sets``: the table (default ``SETS``). Progress goes to ``out`` (default stdout; a bar where
    ``tty``, default: where it is a terminal), each failed address to ``err`` (default stderr). Raises
    DownloadError (one line) for the last set that fails, after trying the others (each earlier failure: a line
    on ``err``)."""
    table = SETS if sets is None else sets
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    tty = out.isatty() if tty is None else tty
    wanted = list(table) if "all" in names else list(dict.fromkeys(names))
    unknown = [n for n in wanted if n not in table]
    if unknown:
        raise ValueError(f"unknown data set {unknown[0]!r}; known: {', '.join(table)}, or all")

    placed, failed = [], []
    for name in wanted:
        try:
            placed.append(_place(table[name], data_dir(), out, err, tty))
        except DownloadError as e:
            failed.append(e)
    if failed:
        for e in failed[:-1]:
            print(f"error: {e}", file=err, flush=True)
        raise failed[-1]
    return placed


def describe(sets: dict[str, Published] | None = None) -> str:
    """The table ``--list`` prints: each set, where it goes, its addresses and its checksum guarantee."""
    table = SETS if sets is None else sets
    lines = [f"data directory: {data_dir()} (${DATA_ENV})"]
    for s in table.values():
        final = data_dir() / PLACES[s.name]
        lines.append(f"{s.name}: {s.title}; {'in place' if final.exists() else 'not downloaded'}: {final}")
        lines.append(f"    checksum: {s.checksums}")
        for r in s.files:
            lines += [f"    {r.name}: {u}" for u in r.urls]
    return "\n".join(lines)


def main(argv=None, sets: dict[str, Published] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dislab.data.download", description=__doc__.split("::")[0])
    parser.add_argument("names", nargs="*", metavar="set", help=f"{', '.join(SETS if sets is None else sets)}, or all")
    parser.add_argument("--list", action="store_true", help="show every set, its addresses and checksums, and stop")
    args = parser.parse_args(argv)
    if args.list or not args.names:
        print(describe(sets))
        return 0
    try:
        download(args.names, sets=sets)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except DownloadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
