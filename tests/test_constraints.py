"""constraints.txt (the pinned install) and scripts/lock.py, which writes it."""

from __future__ import annotations

import importlib.util
import re

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import ROOT

tomllib = pytest.importorskip("tomllib")


def _pins(text: str) -> dict[str, str]:
    return {canonicalize_name(n): v for n, v in re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)$", text, re.M)}


def _lock_module():
    spec = importlib.util.spec_from_file_location("lock_script", ROOT / "scripts" / "lock.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_pins_satisfy_pyproject_and_hold_no_local_build_label():
    """Every dependency pyproject declares is pinned, at a version its lower bound allows; torch is
    pinned without '+cpu', so the same file serves PyPI's CUDA build on a GPU machine."""
    text = (ROOT / "constraints.txt").read_text()
    pins = _pins(text)
    assert len(pins) == len([line for line in text.splitlines() if line and not line.startswith("#")])
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for line in [*project["dependencies"], *project["optional-dependencies"]["dev"]]:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not pinned in constraints.txt: run make lock"
        assert req.specifier.contains(pins[name], prereleases=True), (line, pins[name])
    assert "+" not in "".join(pins.values()) and "torch" in pins and "dislab" not in pins


def test_the_lock_script_walks_dislabs_requirements_deterministically(capsys):
    lock = _lock_module()
    lock.main()
    first = capsys.readouterr().out
    lock.main()
    assert capsys.readouterr().out == first
    pins = _pins(first)
    names = [line.split("==")[0].lower() for line in first.splitlines() if not line.startswith("#")]
    assert names == sorted(names)
    assert {"torch", "pytorch-lightning", "hydra-core", "pytest", "ruff", "antlr4-python3-runtime"} <= pins.keys()
    assert "dislab" not in pins and "pip" not in pins and "+" not in "".join(pins.values())
    found = lock.closure()
    assert all(pins[k] == d.version.split("+")[0] for k, d in found.items())  # the installed versions
