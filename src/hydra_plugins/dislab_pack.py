"""The sweeper of every dislab multirun (``conf/train.yaml``): Hydra's basic sweeper, which with ``pack=k`` (k > 1)
hands the launcher packed groups of jobs (``dislab.sweep.pack``) instead of one job per run. Hydra takes
sweepers only from the ``hydra_plugins`` namespace package."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

log = logging.getLogger("dislab.sweep")


class PackSweeper(BasicSweeper):
    """``job_overrides``: every job's overrides (the basic sweeper's product); ``sweep_alone``: the sweep
    without packing. A sweeper that numbers its jobs otherwise (``StudySweeper``) overrides both."""

    def job_overrides(self, arguments) -> list[list[str]]:
        params = self._parse_config()
        params.extend(arguments)
        overrides = OverridesParser.create(config_loader=self.hydra_context.config_loader).parse_overrides(params)
        return [list(ov) for batch in self.split_arguments(overrides, None) for ov in batch]

    def sweep_alone(self, arguments):
        return BasicSweeper.sweep(self, arguments)

    def sweep(self, arguments):
        k = self.config.get("pack", 1)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            print(f"error: pack={k} is not allowed; give a whole number >= 1 (jobs trained as one program)",
                  file=sys.stderr)
            raise SystemExit(2)
        if k == 1:
            return self.sweep_alone(arguments)
        from dislab.sweep.pack import member_config, plan

        overrides = self.job_overrides(arguments)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        loader = self.hydra_context.config_loader
        jobs = [(num, ov, member_config(loader, self.config, ov, num)) for num, ov in enumerate(overrides)]
        launch = plan(jobs, k, sweep_dir)
        results = self.launcher.launch(launch, initial_job_idx=len(jobs))
        for r in results:
            _ = r.return_value
        return [results]
