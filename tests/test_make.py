"""The Makefile's install stamp: what decides the install is the content of pyproject.toml and
constraints.txt, not their file times, so a fresh clone of an installed checkout with its venv linked
in installs nothing (no network), and changing either file's content installs again. A fake venv
whose ``python`` logs its arguments stands in for pip: nothing is installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
FILES = ("Makefile", "pyproject.toml", "constraints.txt")


def _clone(where: Path) -> Path:
    """A fresh checkout as git leaves one: the files that decide the install, with new times."""
    where.mkdir(parents=True)
    for name in FILES:
        (where / name).write_bytes((ROOT / name).read_bytes())
    return where


def _venv(where: Path) -> Path:
    """A venv whose python records each call in calls.log instead of running pip."""
    (where / "bin").mkdir(parents=True)
    py = where / "bin" / "python"
    py.write_text('#!/bin/sh\necho "$*" >> "$(dirname "$0")/../calls.log"\n')
    py.chmod(0o755)
    return where


def _make(checkout: Path, *args, venv: str | Path = ".venv") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "TORCH", "VENV")}
    return subprocess.run(["make", "--no-print-directory", *args, f"VENV={venv}"], cwd=checkout, env=env,
                          capture_output=True, text=True, timeout=60)


def _pip_calls(venv: Path) -> int:
    log = venv / "calls.log"
    return log.read_text().count("-m pip install") if log.exists() else 0


def _earlier(path: Path, seconds: float = 3600) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_a_fresh_clone_with_an_installed_venv_installs_nothing_until_the_content_changes(tmp_path):
    first = _clone(tmp_path / "first")
    venv = _venv(first / ".venv")
    done = _make(first, "install")
    assert done.returncode == 0, done.stderr
    assert _pip_calls(venv) == 2  # torch, then dislab with its dev tools

    # a fresh clone (its files newer than the stamp) with the installed venv linked in, or named by VENV
    _earlier(venv / ".installed")
    clone = _clone(tmp_path / "clone")
    (clone / ".venv").symlink_to(venv)
    for where in (".venv", venv):
        assert _make(clone, "-q", "install", venv=where).returncode == 0  # up to date: nothing to run
        dry = _make(clone, "-n", "install", venv=where)
        assert "pip" not in dry.stdout and "Nothing to be done" in dry.stdout, dry.stdout
    assert _make(clone, "install").returncode == 0 and _pip_calls(venv) == 2
    assert len((venv / ".installed").read_text().strip()) == 64  # the sha256 of what decided the install

    # a change of content installs again, in either file; the stamp then holds the new content's hash
    for name in ("constraints.txt", "pyproject.toml"):
        calls = _pip_calls(venv)
        with open(clone / name, "a") as f:
            f.write("\n# changed\n")
        assert _make(clone, "-q", "install").returncode == 1
        assert "pip install" in _make(clone, "-n", "install").stdout
        assert _make(clone, "install").returncode == 0 and _pip_calls(venv) == calls + 2
        assert _make(clone, "-q", "install").returncode == 0


def test_another_torch_choice_installs_again(tmp_path):
    checkout = _clone(tmp_path / "c")
    venv = _venv(checkout / ".venv")
    assert _make(checkout, "install").returncode == 0
    assert _make(checkout, "-q", "install").returncode == 0
    assert _make(checkout, "-q", "install", "TORCH=torch==2.13.0+cpu").returncode == 1
    assert _pip_calls(venv) == 2
