"""``sweep=unsupervised_study``'s sweeper: the study presets of several methods (``conf/sweep/<method>_grid.yaml``)
as ONE multirun: one sweep directory, one summary (``SweepCallback``), one report.

Hydra's basic sweeper takes the cartesian product of one set of ``hydra.sweeper.params``; a study's methods
have grids of their own (β for some, γ or λ for others). This sweeper is the basic sweeper run once per
method: for each method of ``study.methods`` it reads that preset's ``hydra.sweeper.params`` (composing the
preset as Hydra would), lets the command line's own sweeps replace those of the same key (``seed='range(2)'``),
expands the product as the basic sweeper does, and prefixes every job with ``sweep=<method>_grid`` (so the job
is that preset: its model, budget, settings). The jobs of all methods are numbered in one sequence, in the
order of ``study.methods``, so the same command in the same ``sweep_name`` resumes: finished jobs are
skipped. Batching (``max_batch_size``) and launching are the basic sweeper's, with any launcher; with ``pack=k``
the jobs are trained in packed groups (``PackSweeper``).
Hydra takes sweepers only from the ``hydra_plugins`` namespace package."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import OmegaConf

from hydra_plugins.dislab_pack import PackSweeper

log = logging.getLogger("dislab")
GRID = "{}_grid"  # a method's study preset in the `sweep` group


def study_presets(config_loader) -> list[str]:
    """The methods that have a study preset (``sweep/<method>_grid``)."""
    names = config_loader.get_group_options("sweep")
    return sorted(n.removesuffix("_grid") for n in names if n.endswith("_grid"))


class StudySweeper(PackSweeper):
    def _methods(self) -> list[str]:
        methods = OmegaConf.select(self.config, "study.methods")
        methods = [methods] if isinstance(methods, str) else list(methods or [])
        known = study_presets(self.hydra_context.config_loader)
        bad = [m for m in methods if m not in known]
        if bad or not methods:
            what = f"study.methods={bad} has no study preset (conf/sweep/<method>_grid.yaml)" if bad else \
                "study.methods is empty"
            raise HydraException(f"{what}; methods with one: {', '.join(known)}")
        if len(set(methods)) < len(methods):
            raise HydraException(f"study.methods lists a method twice: {methods}")
        return methods

    def _grid(self, method: str, narrowed: dict[str, str]) -> list[str]:
        """``model=<the preset's>`` and the preset's sweeper params as overrides (``beta=1,2,4``), composed as
        Hydra composes the preset, with the values of ``+study.grid.<method>.<knob>=...`` in place of the preset's."""
        cfg = self.hydra_context.config_loader.load_configuration(
            config_name=self.config.hydra.job.config_name, overrides=[f"sweep={GRID.format(method)}"],
            run_mode=RunMode.MULTIRUN)
        params = {k: str(v) for k, v in (OmegaConf.select(cfg, "hydra.sweeper.params") or {}).items()}
        params.update(narrowed)
        model = OmegaConf.select(cfg, "hydra.runtime.choices.model") or method
        # model= as the preset chose it: `sweep` is bookkeeping (dislab.rundir), so this names the job's cell
        return [f"model={model}", *(f"{k}={v}" for k, v in params.items())]

    def job_overrides(self, arguments: list[str]) -> list[list[str]]:
        """Every job's overrides, method after method (before batching)."""
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        # the study's own choices (this preset, its method list, the report's settings) are the driver's, not a job's
        parsed = parser.parse_overrides(arguments)
        kept = [o.input_line for o in parsed if o.key_or_group != "sweep" and o.key_or_group.split(".")[0] != "study"]
        narrowed: dict[str, dict[str, str]] = {}  # +study.grid.<method>.<knob>=<values>
        for o in parsed:
            parts = o.key_or_group.split(".")
            if parts[:2] == ["study", "grid"] and len(parts) == 4:
                values = list(o.sweep_string_iterator()) if o.is_sweep_override() else [o.get_value_element_as_str()]
                narrowed.setdefault(parts[2], {})[parts[3]] = ",".join(values)
        methods = self._methods()
        if set(narrowed) - set(methods):
            raise HydraException(f"study.grid names {', '.join(sorted(set(narrowed) - set(methods)))}, not in "
                                 f"study.methods={methods}")
        jobs = []
        for method in methods:
            grid = self._grid(method, narrowed.get(method, {}))
            overrides = parser.parse_overrides([f"sweep={GRID.format(method)}", *grid, *kept])
            jobs += self.split_arguments(overrides, None)[0]
        return jobs

    def sweep_alone(self, arguments: list[str]):
        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        jobs = self.job_overrides(arguments)
        n = self.max_batch_size if self.max_batch_size not in (None, -1) else len(jobs)
        self.overrides = [jobs[i:i + n] for i in range(0, len(jobs), n)]
        log.info("study: %d jobs of %s", len(jobs), ", ".join(self._methods()))
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        returns, initial = [], 0
        while not self.is_done():
            batch = self.get_job_batch()
            tic = time.perf_counter()
            self.validate_batch_is_legal(batch)
            log.debug("validated %d jobs in %.2f s", len(batch), time.perf_counter() - tic)
            results = self.launcher.launch(batch, initial_job_idx=initial)
            for r in results:
                _ = r.return_value  # a failed job re-raises here, as under the basic sweeper
            initial += len(batch)
            returns.append(results)
        return returns
