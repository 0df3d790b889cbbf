"""``sweeper=optuna``'s class: Hydra's Optuna sweeper, except that a search whose every trial failed ends as
a grid sweep whose every job failed does (``SweepCallback`` writes ``sweep_summary.csv`` naming each trial
and why, and the command exits 1) instead of stopping on optuna's "No trials are completed yet" when the
plugin asks for the best trial. Hydra takes sweepers only from the ``hydra_plugins`` namespace package."""

import logging
from pathlib import Path

from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper as _OptunaSweeper

log = logging.getLogger("dislab")


class OptunaSweeper(_OptunaSweeper):
    def setup(self, *, hydra_context, task_function, config) -> None:
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        self._sweep_dir = Path(config.hydra.sweep.dir)

    def sweep(self, arguments):
        try:
            return super().sweep(arguments)
        except ValueError as e:  # optuna's, from study.best_trial: the study holds no completed trial
            if str(e) != "No trials are completed yet." or any(self._sweep_dir.glob("*/metrics.json")):
                raise  # anything else (a search space the plugin refuses...) stays the plugin's error
            log.error("every trial failed: no best trial, no optimization_results.yaml")
