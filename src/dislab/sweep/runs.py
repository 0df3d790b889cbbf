"""Read finished (or failed) run directories back: what was run, how it ended, what it scored.

A run directory holds ``.hydra/config.yaml`` and ``.hydra/overrides.yaml`` (written by Hydra),
then ``metrics.json`` when it completed or ``error.txt`` (one line) when it did not. That line
starts with the status when it is not a plain failure (``STATUSES``): ``Interrupted: SIGTERM at
step 40...`` (written by the run), ``timed out: SLURM job 12_3 reached its time limit; ...`` (by
``dislab.sweep.slurm``). Nothing here imports torch or Lightning, so summaries and reports start fast.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from dislab.conf import short_name
from dislab.rundir import CONFIG, ERROR, HYDRA, METRICS, REFUSED, is_bookkeeping, override_key, rescores, what_trained

# how a job ended: done (metrics.json), else what error.txt's first line "<status>: ..." names (any other
# line: failed), else incomplete (no result, no error: still running, or killed without a word)
NAMED = ("cancelled", "timed out", "pre-empted", "interrupted", "cannot run")
STATUSES = ("done", "failed", *NAMED, "incomplete")

@dataclass
class Run:
    dir: Path
    overrides: list[str]
    config: dict              # .hydra/config.yaml as saved (interpolations unresolved)
    choices: dict             # config group -> option (.hydra/hydra.yaml runtime.choices)
    status: str               # one of STATUSES
    error: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    global_step: int | None = None
    rescored: list[Path] = field(default_factory=list)  # eval.py re-scores merged into ``metrics``

    @property
    def model(self) -> str:
        """``dislab.models.<name>.<Class>`` -> ``<name>`` (the YAML stem, by convention)."""
        return short_name(self.config.get("model") or {})

    @property
    def seed(self):
        return self.config.get("seed")


def cell_of(overrides: list[str]) -> tuple[str, ...]:
    """The sweep cell of a job: the overrides that decide what it trained, minus ``seed``."""
    return tuple(o for o in overrides if not is_bookkeeping(o) and override_key(o) != "seed")


def read_run(run_dir) -> Run:
    d = Path(run_dir)
    hydra = d / HYDRA
    overrides = list(OmegaConf.to_container(OmegaConf.load(hydra / "overrides.yaml"))) \
        if (hydra / "overrides.yaml").exists() else []
    config = OmegaConf.to_container(OmegaConf.load(hydra / CONFIG), resolve=False) \
        if (hydra / CONFIG).exists() else {}
    choices = {}
    if (hydra / "hydra.yaml").exists():
        node = OmegaConf.select(OmegaConf.load(hydra / "hydra.yaml"), "hydra.runtime.choices")
        choices = {k: v for k, v in OmegaConf.to_container(node).items() if not k.startswith("hydra/")} if node else {}
    run = Run(dir=d, overrides=[str(o) for o in overrides], config=config, choices=choices, status="incomplete")
    done, error, refused = d / METRICS, d / ERROR, d.parent / REFUSED / f"{d.name}.json"
    if refused.exists():  # this sweep's job was refused the directory (another run's, or in use): not its result
        said = json.loads(refused.read_text())
        return Run(dir=d, overrides=said["overrides"], config=said["config"], choices=said["choices"],
                   status="failed", error=said["error"])
    saved = json.loads(done.read_text()) if done.exists() else None
    if saved is not None and saved.get("overrides") is not None \
            and what_trained(saved["overrides"]) != what_trained(run.overrides):
        saved = None  # metrics.json is another run's (a directory written before run() refused such re-use)
    if saved is not None:
        run.status, run.metrics, run.global_step = "done", dict(saved.get("metrics", {})), saved.get("global_step")
        for path, again in rescores(d):
            run.metrics.update(again.get("metrics", {}))
            run.rescored.append(path.parent)
    elif error.exists():
        lines = error.read_text(errors="replace").strip().splitlines()
        run.error = lines[0] if lines else "failed (error.txt is empty)"
        said = run.error.split(":", 1)[0].lower()
        run.status = said if said in NAMED else "failed"
    return run


def run_dirs(root) -> list[Path]:
    """Run directories at or below ``root`` (a run or a sweep directory), in job order."""
    root = Path(root)
    found = [p.parent.parent / p.stem for p in root.rglob(f"{REFUSED}/*.json")]  # jobs refused their directory
    for cfg in root.rglob(".hydra/config.yaml"):
        d = cfg.parent.parent
        rel = d.relative_to(root).parts
        if any(p.startswith(".") or p in ("wandb", "report") for p in rel) or d in found:
            continue
        found.append(d)
    return sorted(found, key=lambda p: [int(s) if s.isdigit() else s for s in p.relative_to(root).parts])


def find_runs(paths) -> list[Run]:
    seen, runs = set(), []
    for p in paths:
        if not Path(p).is_dir():
            raise FileNotFoundError(f"{p} is not a directory")
        for d in run_dirs(p):
            if d.resolve() not in seen:
                seen.add(d.resolve())
                runs.append(read_run(d))
    return runs


def flatten(node, prefix: str = "") -> dict:
    out = {}
    if isinstance(node, dict):
        for k, v in node.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: node}


def value_of(run: Run, key: str):
    """A config group's option (``trainer`` -> ``ddp``) or a config value (``beta`` -> 4)."""
    if key in run.choices:
        return run.choices[key]
    return flatten(run.config).get(key)


def hyperparameters(runs: list[Run]) -> list[str]:
    """The axes of a comparison of one model's runs: keys the runs override (in the order typed)
    whose value differs between the runs, minus ``model``, ``seed`` and bookkeeping."""
    keys: list[str] = []
    for r in runs:
        for o in r.overrides:
            k = override_key(o)
            if k not in ("model", "seed") and not is_bookkeeping(o) and k not in keys:
                keys.append(k)
    return [k for k in keys if len({json.dumps(value_of(r, k), sort_keys=True, default=str) for r in runs}) > 1]


# the metrics shown first (in tables and on the console); the others follow alphabetically, UDR last
FIRST_METRICS = ("mig", "dci_disentanglement", "sap", "modularity", "factor_vae_score", "beta_vae_score", "irs")


def order_metrics(keys) -> list[str]:
    keys = set(keys)
    udr = [k for k in sorted(keys) if k.startswith("udr_")]
    rest = sorted(keys - set(FIRST_METRICS) - set(udr))
    return [k for k in FIRST_METRICS if k in keys] + rest + udr


def finite(values) -> list[float]:
    out = []
    for v in values:
        try:
            v = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(v):
            out.append(v)
    return out
