"""Every knob of conf/ refuses every invalid value in one line, with exit status 2, before anything
is written.

The knobs are enumerated, never listed: every leaf of every YAML under conf/ and every argument of
each ``dislab.*`` class or function a YAML names (``+net.hidden=...``, ``+model.recon=...``), less
those dislab passes itself. Hydra's own ``hydra.*`` keys (launchers, sweep callbacks) and
``_target_``-style keys are not knobs here. A knob without a rule in ``dislab.validate`` fails
here, naming the file and the table. Values are checked in-process on composed configs; a few
subprocesses check the command line.
"""

from __future__ import annotations

import copy
import functools
import importlib
import inspect
import os
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

import dislab.validate as V
from conftest import CONF, ROOT, compose
from dislab.cli import model_knobs, report_errors

PASSED_BY_DISLAB = {"data", "represent", "encode", "rng", "representations",  # metrics
                    "x_shape", "z_dim",                                       # nets
                    "net", "optimizer", "dataset_size"}                       # models
GROUPS = ("model", "dataset", "net", "metrics", "logger", "trainer")  # selected together, one option each
# invalid for every knob whatever its rule says (so that loosening a rule is caught, not only dropping it)
NO_KNOB_TAKES = (-10**9, {"not": "a value"})


def _is_global(path) -> bool:
    return path.parent == CONF or "# @package _global_" in path.read_text()


def _leaves(node: dict, prefix=""):
    for k, v in node.items():
        if k in ("defaults", "hydra") or str(k).startswith("_"):
            continue
        if isinstance(v, dict):
            yield from _leaves(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}"


def _targets(node: dict, prefix=""):
    """(key, target) of every node naming a dislab target (outside ``hydra``)."""
    for k, v in node.items():
        if isinstance(v, dict) and k != "hydra":
            t = v.get("_target_")
            if isinstance(t, str) and t.startswith("dislab."):
                yield f"{prefix}{k}", t
            yield from _targets(v, f"{prefix}{k}.")


def _load(path) -> dict:
    node = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    return node if isinstance(node, dict) else {}


def _arguments(target: str) -> dict:
    """A dislab target's user arguments with their defaults (through ``**kwargs`` to dislab bases)."""
    module, name = target.rsplit(".", 1)
    obj = getattr(importlib.import_module(module), name)
    out, chain = {}, [c for c in obj.__mro__ if c.__module__.startswith("dislab.")] if inspect.isclass(obj) else [obj]
    for c in chain:
        params = inspect.signature(c).parameters.values()
        out.update({p.name: p.default for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
                    and p.name not in PASSED_BY_DISLAB and p.name not in out})
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break
    return out


OPTIONS = {g: sorted(p.stem for p in (CONF / g).glob("*.yaml")) for g in GROUPS}


def _where(path):
    """(config name, group choices) of a composed config in which ``path`` is selected: the i-th
    option of every group at once (their knobs live in different subtrees), so that a handful of
    compositions covers every file."""
    if path.parent == CONF:
        return path.stem, ()
    group = path.parent.name
    if group not in GROUPS:
        return "train", ((group, path.stem),)
    i = OPTIONS[group].index(path.stem)
    return "train", tuple((g, OPTIONS[g][i]) for g in GROUPS if i < len(OPTIONS[g]))


def enumerate_knobs():
    """(file, key in the composed config, default or None) for every user knob of conf/."""
    found = {}
    for path in sorted(p for p in CONF.rglob("*.yaml") if p.relative_to(CONF).parts[0] != "hydra"):  # Hydra's own
        node = _load(path)
        prefix = "" if _is_global(path) else f"{path.parent.name}."
        for leaf in _leaves(node):
            found[path, prefix + leaf] = None
        targets = list(_targets(node, prefix))
        if prefix and str(node.get("_target_")).startswith("dislab."):
            targets.append((prefix[:-1], node["_target_"]))  # a file that is one target (dataset, net)
        for key, target in targets:
            for arg, default in _arguments(target).items():
                found[path, f"{key}.{arg}"] = default
    return [(path, key, default) for (path, key), default in found.items()]


KNOBS = enumerate_knobs()


def _id(k):
    return f"{k[0].relative_to(CONF)}:{k[1]}"


@functools.lru_cache(maxsize=None)
def _composed(config: str, choices: tuple) -> dict:
    """The config with ``choices`` (one option per group), resolved into plain dicts (as validate
    reads it; far faster to copy than a DictConfig)."""
    if config == "eval":
        cfg = compose(["run=/replaced/below"], config_name="eval")
    else:
        cfg = compose([f"{g}={o}" for g, o in choices])
    return OmegaConf.to_container(cfg, resolve=True)


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    """A file, a folder and a fake run directory for the knobs that name existing paths."""
    root = tmp_path_factory.mktemp("places")
    (root / "file").write_text("x")
    (root / "folder").mkdir()
    for p in (".hydra/config.yaml", "checkpoints/last.ckpt"):
        (root / "run" / p).parent.mkdir(parents=True, exist_ok=True)
        (root / "run" / p).write_text("")
    return root


def _valid(cfg: dict, places) -> dict:
    """A copy of ``cfg`` with its required paths set to existing ones of the kind they need."""
    cfg = copy.deepcopy(cfg)
    if "run" in cfg:
        cfg["run"] = str(places / "run")
    if "dataset" in cfg:
        node = cfg["dataset"]
        for k, rule in V.DATASETS.get(V.target_name(node), {}).items():
            if k in node and not rule.test(node[k]):
                node[k] = next(str(p) for p in (places / "file", places / "folder") if rule.test(str(p)))
    return cfg


def _set(cfg: dict, key: str, value) -> dict:
    cfg = copy.deepcopy(cfg)
    *parents, last = key.split(".")
    node = cfg
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return cfg


def _rule(cfg: dict, key: str):
    """The rule dislab.validate has for ``key`` of ``cfg`` (None: none)."""
    parts = key.split(".")
    if "model" not in cfg:
        return V.EVAL.get(key)
    model = V.target_name(cfg["model"])
    if len(parts) == 1:
        return V.SHARED.get(key) or (V.METHOD.get(key) if key in model_knobs().get(model, {}) else None)
    head, rest = parts[0], ".".join(parts[1:])
    if head == "model":
        return V.METHOD.get(rest) if rest in V.MODELS.get(model, ()) else None
    if head in ("net", "dataset"):
        return {"net": V.NETS, "dataset": V.DATASETS}[head].get(V.target_name(cfg[head]), {}).get(rest)
    if head in ("metrics", "metrics_during"):
        return V.METRICS.get(V.target_name(cfg[head][parts[1]]), {}).get(".".join(parts[2:]))
    if head == "logger":
        return V.LOGGERS.get(parts[1], {}).get(".".join(parts[2:]))
    return {"trainer": V.TRAINER, "optimizer": V.OPTIMIZER, "study": V.STUDY}.get(head, {}).get(rest)


def test_the_enumeration_reaches_every_kind_of_knob():
    keys = {k for _, k, _ in KNOBS}
    assert len(keys) > 90, len(keys)
    assert {"threads", "steps", "lr", "run_dir", "sweep_name", "beta", "estimator", "lambda_d", "model.recon",
            "net.hidden", "dataset.path", "dataset.variant", "dataset.background", "metrics.mig.num_bins",
            "metrics.mig_chen.exclude_factors", "trainer.devices", "trainer.strategy.process_group_backend",
            "optimizer.fused", "optimizer.betas", "logger.wandb.project", "run", "eval_seed"} <= keys


@pytest.mark.parametrize("knob", KNOBS, ids=map(_id, KNOBS))
def test_every_invalid_value_of_every_knob_gets_one_line_and_exit_status_2(knob, places, capsys):
    path, key, default = knob
    config, choices = _where(path)
    cfg = _valid(_composed(config, choices), places)
    rule = _rule(cfg, key)
    table = key.split(".")[0].upper() if "." in key else "SHARED/METHOD/EVAL"
    assert rule is not None, f"{path.relative_to(ROOT)}: knob '{key}' has no rule in dislab.validate ({table})"
    assert rule.bad, f"the rule of '{key}' names no invalid value to try"
    V.validate(cfg)  # the shipped value (and the defaults around it) pass
    if default is not None and default is not inspect.Parameter.empty:
        assert rule.test(list(default) if isinstance(default, tuple) else default), (key, default)
    for bad in (*rule.bad, *NO_KNOB_TAKES):
        with pytest.raises(SystemExit) as e, report_errors():
            V.validate(_set(cfg, key, bad))
        err = capsys.readouterr().err.strip()
        assert e.value.code == 2, (key, bad)
        assert err.count("\n") == 0 and err.startswith(f"error: {key}=") and " must be " in err, (key, bad, err)


@pytest.mark.parametrize("group, table", [("model", V.MODELS), ("net", V.NETS), ("dataset", V.DATASETS),
                                          ("metrics", V.METRICS)])
def test_each_table_lists_exactly_the_arguments_of_its_targets(group, table):
    """A rule for an argument a target no longer takes is as wrong as a missing one; every target
    a YAML names has a table entry."""
    for path in sorted((CONF / group).glob("*.yaml")):
        node = _load(path)
        for _, target in _targets(node) if group in ("metrics", "model") else [("", node["_target_"])]:
            name = target.split(".")[2]
            assert name in table, f"{path.relative_to(ROOT)}: {target} has no entry in dislab.validate"
            assert set(table[name]) == set(_arguments(target)), (name, set(table[name]) ^ set(_arguments(target)))


def test_choice_rules_match_the_code():
    from lightning_fabric.accelerators import ACCELERATOR_REGISTRY

    from dislab.data.mpi3d import VARIANTS
    from dislab.data.pairs import K_RULES
    from dislab.metrics.udr import VARIANTS as UDR
    from dislab.objectives.gaussian import ESTIMATORS
    from dislab.objectives.recon import RECON_LOSSES

    for rule, allowed in ((V.METHOD["estimator"], ESTIMATORS), (V.METHOD["recon"], RECON_LOSSES),
                          (V.METHOD["k_rule"], K_RULES),
                          (V.DATASETS["mpi3d"]["variant"], VARIANTS),
                          (V.TRAINER["accelerator"], ACCELERATOR_REGISTRY.available_accelerators())):
        assert all(rule.test(v) for v in allowed) and not rule.test("nonsense")
    assert V.METRICS["udr"]["variants"].test(list(UDR))


def test_a_key_a_dislab_target_does_not_take_is_refused():
    cfg = compose(["net=conv64", "+net.hidden=32"])
    with pytest.raises(V.ConfigError, match=r"^net=conv64 has no knob 'hidden' \(its knobs: none\)$"):
        V.validate(cfg)
    with pytest.raises(V.ConfigError, match="metrics.mig has no knob 'num_binz'"):
        V.validate(compose(["metrics=mig", "+metrics.mig.num_binz=3"]))
    with pytest.raises(V.ConfigError, match="model=vae has no knob 'beta'"):
        V.validate(compose(["model=vae", "+model.beta=3"]))


def test_knobs_that_depend_on_each_other():
    with pytest.raises(V.ConfigError, match="z_dim=6 is not allowed with model=infogan's codes"):
        V.validate(compose(["model=infogan", "z_dim=6"]))  # 1 categorical code of 3 + 4 continuous = 7
    V.validate(compose(["model=infogan", "z_dim=7"]))


def test_file_checks_wait_for_the_job_in_a_sweep(places):
    """Before a sweep is launched only the form of a path is checked (its jobs may run elsewhere)."""
    cfg = compose(["dataset=cars3d", "dataset.path=/only/on/the/compute/nodes"])
    V.validate(cfg, files=False)
    with pytest.raises(V.ConfigError, match="dataset.path='/only/on/the/compute/nodes' is not allowed"):
        V.validate(cfg)
    with pytest.raises(V.ConfigError, match="dataset.path=null is not allowed"):  # no path at all: refused anyway
        V.validate(compose(["dataset=cars3d"]), files=False)


def _cli(script, *args):
    env = {**os.environ, "WANDB_MODE": "offline"}
    return subprocess.run([sys.executable, script, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("script, args, says", [
    ("train.py", ["threads=-2"], "threads=-2 is not allowed; threads must be null or a positive integer"),
    ("train.py", ["-m", "model=beta_vae", "beta=1,4,-1", "seed=0,1"], "beta=-1 is not allowed"),
    ("train.py", ["dataset=mpi3d", "dataset.path=train.py", "dataset.variant=huge"],
     "dataset.variant='huge' is not allowed"),
    ("eval.py", ["run={out}/nothing"], "is not allowed; run must be a run directory"),
], ids=["train", "sweep", "dataset", "eval"])
def test_the_command_line_refuses_before_anything_is_written(tmp_path, script, args, says):
    out_dir = tmp_path / "out"
    args = [a.format(out=out_dir) for a in args]
    hydra_dirs = [f"hydra.run.dir={out_dir}/run", f"hydra.sweep.dir={out_dir}/sweep"] if script == "train.py" else []
    res = _cli(script, *args, *hydra_dirs)
    assert res.returncode == 2, res.stderr[-2000:]
    assert res.stderr.strip().count("\n") == 0 and says in res.stderr, res.stderr
    assert not out_dir.exists()  # no run directory, no .hydra/, no log
