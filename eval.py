"""Re-evaluate a finished run from its checkpoint: `python eval.py run=<run dir> metrics=all`."""

import hydra

from dislab.cli import check_overrides, report_errors


@hydra.main(config_path="conf", config_name="eval", version_base="1.3")
def main(cfg):
    from pathlib import Path

    from hydra.core.hydra_config import HydraConfig

    from dislab.evaluate import rescore

    with report_errors():
        values, out, logged = rescore(cfg, Path(HydraConfig.get().runtime.output_dir))
        width = max(map(len, values), default=0)
        for k, v in values.items():
            print(f"{k:<{width}}  {v:.4f}")
        print(f"written to {out}" + (" and to the run's W&B run (metrics/<key> in its summary)" if logged else ""))
        return values


if __name__ == "__main__":
    check_overrides(config_name="eval")
    main()
