"""``python -m dislab.data.download``: each published set fetched from a real HTTP server on loopback (started
here, serving small files in the published formats), verified by size, checksum and the loader's structure
checks, placed atomically in the data directory, and read from there by ``dataset=<name>`` without a path.
No test touches the internet."""

from __future__ import annotations

import errno
import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, compose
from data_files import MPI_SMALL, cars3d_folder, dsprites_file, mpi3d_images, shapes3d_file, smallnorb_folder
from dislab.data import download as dl
from dislab.data import source as sources

DSPRITES = sources.PLACES["dsprites"]
HTML = b"<!DOCTYPE html><html><body>Sign in to continue</body></html>"


# ---- a loopback server ---------------------------------------------------------------------------------------------
class Server:
    """``routes[path]``: {"body": bytes, "type": Content-Type, "cut": bytes sent before the connection closes on
    the next ``cuts`` whole-file requests}; any other path answers 404. ``log``: (path, Range header) per request."""

    def __init__(self):
        self.routes, self.log = {}, []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                server.log.append((self.path, rng))
                route = server.routes.get(self.path)
                if route is None:
                    self.send_error(404, "Not Found")
                    return
                body, start = route["body"], 0
                if rng:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(body):
                        self.send_error(416, "Range Not Satisfiable")
                        return
                self.send_response(206 if rng else 200)
                self.send_header("Content-Type", route.get("type", "application/octet-stream"))
                self.send_header("Content-Length", str(len(body) - start))
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.end_headers()
                if route.get("cuts", 0) and not rng:
                    route["cuts"] -= 1
                    self.wfile.write(body[:route["cut"]])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def serve(self, path, body, **how) -> str:
        self.routes[path] = {"body": body, **how}
        return self.base + path


@pytest.fixture
def server():
    s = Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    d = tmp_path / "data"
    monkeypatch.setenv("DISLAB_DATA", str(d))
    return d


def _git_blob_id(body: bytes) -> str:
    """What `git hash-object` prints for a file holding ``body`` (git itself where installed)."""
    if shutil.which("git"):
        return subprocess.run(["git", "hash-object", "--stdin"], input=body, capture_output=True,
                              check=True).stdout.decode().strip()
    return hashlib.sha1(b"blob %d\0" % len(body) + body).hexdigest()


def _dsprites_bytes(tmp_path) -> bytes:
    dsprites_file(tmp_path / "d.npz")
    return (tmp_path / "d.npz").read_bytes()


def _one_file(name: str, urls, body: bytes | None = None, digest="git", size=None) -> dict:
    """The real set ``name`` with its one file served at ``urls`` and pinned by ``digest`` of ``body``."""
    real = dl.SETS[name]
    pin = {"git": lambda: f"git:{_git_blob_id(body)}", "sha256": lambda: f"sha256:{hashlib.sha256(body).hexdigest()}",
           None: lambda: None}[digest]()
    return {name: replace(real, files=(replace(real.files[0], urls=tuple(urls), digest=pin, size=size),))}


def _nothing_placed(data_dir: Path, name: str):
    assert not (data_dir / sources.PLACES[name]).exists()
    leftovers = [p for p in data_dir.rglob("*") if p.is_file() and p.name != dl.RECORD]
    assert leftovers == [], leftovers


# ---- the tests -------------------------------------------------------------------------------------------------------
def test_a_correct_file_is_verified_placed_and_a_second_download_does_nothing(server, data_dir, tmp_path):
    body = _dsprites_bytes(tmp_path)
    sets = _one_file("dsprites", [server.serve("/dsprites.npz", body)], body)
    out = io.StringIO()
    [placed] = dl.download(["dsprites"], sets=sets, out=out, tty=False)
    assert placed == data_dir / DSPRITES and placed.read_bytes() == body
    assert list((data_dir / dl.PARTIAL).iterdir()) == []  # no partial file left
    record = json.loads((data_dir / dl.RECORD).read_text())[DSPRITES]
    assert record == {"set": "dsprites", "url": server.base + "/dsprites.npz",
                      "sha256": hashlib.sha256(body).hexdigest(), "checked": sets["dsprites"].files[0].digest}
    assert f"got {len(body):,} bytes" in out.getvalue() and f"placed {placed}" in out.getvalue()
    requests = len(server.log)
    out = io.StringIO()
    assert dl.download(["dsprites"], sets=sets, out=out, tty=False) == [placed]
    assert len(server.log) == requests and out.getvalue() == f"dsprites: already in place: {placed}\n"


def test_a_progress_bar_on_a_terminal(server, data_dir, tmp_path):
    body = _dsprites_bytes(tmp_path)
    out = io.StringIO()
    dl.download(["dsprites"], sets=_one_file("dsprites", [server.serve("/d", body)], body), out=out, tty=True)
    assert "\r" in out.getvalue() and "100.0%" in out.getvalue() and "fetching" not in out.getvalue()


def test_a_corrupted_file_is_refused_by_its_checksum_and_never_placed(server, data_dir, tmp_path, capsys):
    body = _dsprites_bytes(tmp_path)
    bad = bytearray(body)
    bad[len(bad) // 2] ^= 0xFF
    url = server.serve("/dsprites.npz", bytes(bad))
    assert dl.main(["dsprites"], sets=_one_file("dsprites", [url], body)) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (f"dsprites: {url}: git blob id {_git_blob_id(bytes(bad))} is not the published "
                      f"{_git_blob_id(body)} (a corrupted or changed file)")
    assert err[1].startswith("error: dsprites: no address gave a verified") and str(data_dir / DSPRITES) in err[1]
    assert len(err) == 2
    _nothing_placed(data_dir, "dsprites")


def test_a_transfer_cut_short_resumes_with_a_range_request(server, data_dir, tmp_path):
    body = _dsprites_bytes(tmp_path)
    url = server.serve("/dsprites.npz", body, cut=len(body) // 3, cuts=1)
    out = io.StringIO()
    [placed] = dl.download(["dsprites"], sets=_one_file("dsprites", [url], body), out=out, tty=False)
    assert placed.read_bytes() == body
    assert server.log == [("/dsprites.npz", None), ("/dsprites.npz", f"bytes={len(body) // 3}-")]
    assert f"transfer cut at byte {len(body) // 3:,} of {len(body):,}; resuming" in out.getvalue()


def test_a_cut_transfer_is_kept_outside_the_final_name_and_the_next_run_resumes_it(server, data_dir, tmp_path,
                                                                                 monkeypatch):
    monkeypatch.setattr(dl, "TRIES", 1)
    body = _dsprites_bytes(tmp_path)
    cut = len(body) // 2
    sets = _one_file("dsprites", [server.serve("/dsprites.npz", body, cut=cut, cuts=1)], body)
    with pytest.raises(dl.DownloadError, match=f"{cut:,} bytes kept in .*dsprites.*\\.part to resume"):
        dl.download(["dsprites"], sets=sets, out=io.StringIO())
    assert not (data_dir / DSPRITES).exists()
    assert (data_dir / dl.PARTIAL / f"{DSPRITES}.part").stat().st_size == cut
    [placed] = dl.download(["dsprites"], sets=sets, out=io.StringIO())
    assert placed.read_bytes() == body and server.log[-1] == ("/dsprites.npz", f"bytes={cut}-")


def test_a_partial_file_the_server_cannot_resume_starts_again(server, data_dir, tmp_path):
    body = _dsprites_bytes(tmp_path)
    (data_dir / dl.PARTIAL).mkdir(parents=True)
    (data_dir / dl.PARTIAL / f"{DSPRITES}.part").write_bytes(body + b"stale")  # longer than the file: 416
    [placed] = dl.download(["dsprites"], sets=_one_file("dsprites", [server.serve("/d", body)], body),
                           out=io.StringIO(), err=(err := io.StringIO()))
    assert placed.read_bytes() == body and err.getvalue() == ""
    assert server.log == [("/d", f"bytes={len(body) + 5}-"), ("/d", None)]


def test_a_404_goes_on_to_the_next_mirror(server, data_dir, tmp_path):
    body = _dsprites_bytes(tmp_path)
    gone, mirror = server.base + "/moved/dsprites.npz", server.serve("/mirror/dsprites.npz", body)
    err = io.StringIO()
    [placed] = dl.download(["dsprites"], sets=_one_file("dsprites", [gone, mirror], body), out=io.StringIO(), err=err)
    assert placed.read_bytes() == body
    assert err.getvalue() == f"dsprites: {gone}: HTTP 404 Not Found\n"
    assert json.loads((data_dir / dl.RECORD).read_text())[DSPRITES]["url"] == mirror


def test_a_web_page_instead_of_the_file_is_refused(server, data_dir, tmp_path, capsys):
    body = _dsprites_bytes(tmp_path)
    page = server.serve("/login", HTML, type="text/html; charset=utf-8")
    disguised = server.serve("/disguised", HTML)  # a page served as application/octet-stream
    assert dl.main(["dsprites"], sets=_one_file("dsprites", [page, disguised], body)) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (f"dsprites: {page}: served a web page (text/html; charset=utf-8) instead of the file "
                      "(an error or sign-in page?)")
    assert err[1] == f"dsprites: {disguised}: served a web page instead of the file (an error or sign-in page?)"
    assert err[2].startswith("error: dsprites: no address gave a verified") and len(err) == 3
    _nothing_placed(data_dir, "dsprites")


def test_a_file_of_the_wrong_size_is_refused(server, data_dir, tmp_path, capsys):
    shapes3d_file(tmp_path / "3dshapes.h5")
    body = (tmp_path / "3dshapes.h5").read_bytes()
    url = server.serve("/3dshapes.h5", body)
    sets = _one_file("shapes3d", [url], body, digest="sha256", size=len(body) + 1000)
    assert dl.main(["shapes3d"], sets=sets) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"shapes3d: {url}: announces {len(body):,} bytes; the published file has {len(body) + 1000:,} " \
                     "(the wrong file?)"
    _nothing_placed(data_dir, "shapes3d")
    # the right size: placed, and the loader reads it
    dl.download(["shapes3d"], sets=_one_file("shapes3d", [url], body, digest="sha256", size=len(body)),
                out=io.StringIO())
    assert (data_dir / "3dshapes.h5").read_bytes() == body


def test_offline_each_address_is_named_with_the_manual_placement_path(data_dir, tmp_path, capsys):
    with socket.socket() as s:  # a port nothing listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    urls = [f"http://127.0.0.1:{port}/official.npz", f"http://127.0.0.1:{port}/mirror.npz"]
    assert dl.main(["dsprites"], sets=_one_file("dsprites", urls, b"x")) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3, err
    for line, url in zip(err, urls, strict=False):
        assert line.startswith(f"dsprites: {url}: cannot connect (") and "refused" in line, line
    assert err[2] == (f"error: dsprites: no address gave a verified {DSPRITES} (2 tried); run `python -m "
                      f"dislab.data.download dsprites` again later, or place the official {DSPRITES} at "
                      f"{data_dir / DSPRITES}")
    _nothing_placed(data_dir, "dsprites")


def test_a_full_disk_ends_in_one_line_and_leaves_nothing(server, data_dir, tmp_path, monkeypatch, capsys):
    body = _dsprites_bytes(tmp_path)
    writes = []

    def full(f, block):
        if writes:
            raise OSError(errno.ENOSPC, "No space left on device")
        writes.append(f.write(block))

    monkeypatch.setattr(dl, "_BLOCK", 4096)
    monkeypatch.setattr(dl, "_write", full)
    assert dl.main(["dsprites"], sets=_one_file("dsprites", [server.serve("/d.npz", body)], body)) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [f"error: dsprites: no space left on the device of {data_dir}; nothing placed (the partial download "
                   "is removed); free some space and run again"]
    _nothing_placed(data_dir, "dsprites")


def test_a_file_that_fails_the_loaders_structure_checks_is_never_placed(server, data_dir, tmp_path, capsys):
    dsprites_file(tmp_path / "d.npz", latents_classes=None)  # the right checksum of a file without latents_classes
    body = (tmp_path / "d.npz").read_bytes()
    assert dl.main(["dsprites"], sets=_one_file("dsprites", [server.serve("/d.npz", body)], body)) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: dsprites: the download fails dislab's check of its structure (")
    assert "missing field(s) latents_classes" in err[0] and "nothing placed" in err[0]
    _nothing_placed(data_dir, "dsprites")


def test_without_a_published_checksum_the_first_verified_download_is_trusted(server, data_dir, monkeypatch):
    monkeypatch.setattr("dislab.data.mpi3d.SIZES", MPI_SMALL)  # the loader's grid check, on a small file
    first, other = io.BytesIO(), io.BytesIO()
    np.savez(first, images=mpi3d_images())
    np.savez(other, images=mpi3d_images()[::-1])
    url = server.serve("/mpi3d_toy.npz", first.getvalue())
    sets = _one_file("mpi3d_toy", [url], digest=None)
    [placed] = dl.download(["mpi3d_toy"], sets=sets, out=io.StringIO())
    sha = hashlib.sha256(first.getvalue()).hexdigest()
    assert json.loads((data_dir / dl.RECORD).read_text())["mpi3d_toy.npz"]["sha256"] == sha
    placed.unlink()
    server.serve("/mpi3d_toy.npz", other.getvalue())  # the publisher's file changed since
    with pytest.raises(dl.DownloadError):
        dl.download(["mpi3d_toy"], sets=sets, out=io.StringIO(), err=(err := io.StringIO()))
    assert f"is not {sha}, the one recorded at its first verified download" in err.getvalue()
    _nothing_placed(data_dir, "mpi3d_toy")


def test_folder_sets_are_unpacked_checked_and_placed(server, data_dir, tmp_path):
    """smallNORB's six gzipped matrices and Cars3D's tarball become the folders their loaders read."""
    norb = smallnorb_folder(tmp_path / "norb", side=8)
    files = []
    for remote in dl.SETS["smallnorb"].files:
        body = gzip.compress((norb / remote.name.removesuffix(".gz")).read_bytes())
        files.append(replace(remote, urls=(server.serve(f"/norb/{remote.name}", body),), size=len(body),
                             digest=f"sha256:{hashlib.sha256(body).hexdigest()}"))
    cars = cars3d_folder(tmp_path / "cars", side=4)
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w:gz") as t:
        for f in sorted(cars.iterdir()):
            t.add(f, arcname=f"data/cars/{f.name}")
        t.add(cars / "car_001_mesh.mat", arcname="data/sprites/not_a_car.mat")  # elsewhere in the tarball: skipped
    sets = {"smallnorb": replace(dl.SETS["smallnorb"], files=tuple(files)),
            **_one_file("cars3d", [server.serve("/cars.tar.gz", tar.getvalue())], tar.getvalue(), digest="sha256")}
    norb_dir, cars_dir = dl.download(["all"], sets=sets, out=io.StringIO())
    assert norb_dir == data_dir / "smallnorb" and cars_dir == data_dir / "cars3d"
    assert sorted(p.name for p in norb_dir.iterdir()) == sorted(p.name for p in norb.iterdir())
    assert sorted(p.name for p in cars_dir.iterdir()) == sorted(p.name for p in cars.iterdir())
    assert list((data_dir / dl.PARTIAL).iterdir()) == []
    from hydra.utils import instantiate

    data = instantiate(compose(["dataset=smallnorb"]).dataset)  # no path: the data directory's folder
    assert data.source()["kind"] == "folder" and data.source()["path"] == str(norb_dir.resolve())


def test_a_data_set_without_a_path_reads_the_data_directory(data_dir, tmp_path):
    """dataset=<name> with path null: the data directory's copy when there, else the procedural rendering (saying
    how to fetch the real one), else a one-line refusal giving the download command; a given path still wins."""
    from hydra.utils import get_class, instantiate

    import dislab.validate as V
    from dislab.data.mpi3d import MPI3D

    cfg = compose(["dataset=dsprites"])
    procedural = instantiate(cfg.dataset)
    assert procedural.path is None and procedural.source()["kind"] == "procedural"
    assert sources.stand_in_warning(procedural.source()).endswith(
        f"or fetch it once into {data_dir}: python -m dislab.data.download dsprites")
    with pytest.raises(V.ConfigError) as e:
        V.validate(compose(["dataset=mpi3d", "dataset.variant=real"]), files=False)
    assert str(e.value) == ("dataset.path=null is not allowed; dataset.path must be the official mpi3d_<variant>.npz "
                            "(an existing file), or null once `python -m dislab.data.download mpi3d_real` has placed "
                            f"it in the data directory {data_dir}")
    with pytest.raises(FileNotFoundError, match=r"^mpi3d .*: no path given and none in the data directory "
                       f"{data_dir}; download it once with `python -m dislab.data.download mpi3d_realistic`, or"):
        MPI3D(variant="realistic")

    data_dir.mkdir()
    dsprites_file(data_dir / DSPRITES)
    np.savez(data_dir / "mpi3d_toy.npz", images=mpi3d_images())
    V.validate(cfg)
    data = instantiate(cfg.dataset)
    assert data.path == str(data_dir / DSPRITES) and data.factor_sizes == (3, 2, 3, 2, 2)
    expected = {"dataset": "dsprites", **sources.file_source(data_dir / DSPRITES)}
    assert data.source() == expected == get_class(cfg.dataset._target_).source_of(dict(cfg.dataset))
    assert sources.stand_in_warning(data.source()) is None
    mpi = compose(["dataset=mpi3d", f"+dataset.factor_sizes={list(MPI_SMALL)}"])
    V.validate(mpi)
    assert instantiate(mpi.dataset).path == data_dir / "mpi3d_toy.npz"
    # an explicit path wins
    dsprites_file(tmp_path / "mine.npz")
    mine = instantiate(compose(["dataset=color_dsprites", f"dataset.path={tmp_path / 'mine.npz'}"]).dataset)
    assert mine.path == str(tmp_path / "mine.npz")
    # scream_dsprites' background too
    Image.fromarray(np.zeros((100, 120, 3), np.uint8)).save(data_dir / "scream.jpg", format="JPEG")
    scream = compose(["dataset=scream_dsprites"])
    V.validate(scream)
    assert instantiate(scream.dataset).source()["background"]["path"] == str((data_dir / "scream.jpg").resolve())


def test_the_table_covers_every_published_set_with_a_pinned_or_recorded_checksum():
    assert set(dl.SETS) == set(sources.PLACES)
    assert {n for args in sources.PUBLISHED.values() for n in args.values() if "{" not in n} <= set(dl.SETS)
    assert {f"mpi3d_{v}" for v in ("toy", "realistic", "real")} <= set(dl.SETS)
    lengths = {"git": 40, "sha256": 64, "md5": 32}
    for name, s in dl.SETS.items():
        assert s.name == name and s.unpack in ("file", "gunzip", "cars") and s.files
        for r in s.files:
            assert r.urls and all(u.startswith(("https://", "http://")) for u in r.urls), name
            if r.digest is not None:
                kind, value = r.digest.split(":")
                assert len(value) == lengths[kind] and int(value, 16) >= 0, name
            else:
                assert "first" in s.checksums, name


def test_the_command_line(data_dir, capsys):
    assert dl.main(["dsprites", "nonsense"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown data set 'nonsense'; known: dsprites, ") and err.count("\n") == 1
    assert not data_dir.exists()
    res = subprocess.run([sys.executable, "-m", "dislab.data.download", "--list"], capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, "DISLAB_DATA": str(data_dir)}, timeout=120)
    assert res.returncode == 0 and f"data directory: {data_dir}" in res.stdout
    assert "https://huggingface.co/datasets/waleedgondal/mpi3d/resolve/main/mpi3d_real.npz" in res.stdout
