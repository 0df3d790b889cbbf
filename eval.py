"""Re-evaluate a finished run from its checkpoint: `python eval.py run=<run dir> metrics=all`."""

import hydra

from dislab.cli import check_overrides, report_errors


@hydra.main(config_path="conf", config_name="eval", version_base="1.3")
def main(cfg):
    from pathlib import Path

    from hydra.core.hydra_config import HydraConfig

    from dislab.evaluate import rescore

    with report_errors():  # what it prints goes through the dislab logger: the console and eval/<time>/eval.log
        values, _, _ = rescore(cfg, Path(HydraConfig.get().runtime.output_dir))
        return values


if __name__ == "__main__":
    check_overrides(config_name="eval")
    main()
