"""Re-evaluate a finished run from its checkpoint: `python eval.py run=<run dir> metrics=all`."""

import hydra

from dislab.cli import check_overrides, report_errors


@hydra.main(config_path="conf", config_name="eval", version_base="1.3")
def main(cfg):
    from pathlib import Path

    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate

    from dislab import io
    from dislab.evaluate import evaluate, metric_settings, rescore_to_wandb
    from dislab.lock import RunLock
    from dislab.train import versions
    from dislab.validate import validate

    with report_errors():
        validate(cfg)
        metrics = instantiate(cfg.metrics) or {}
        with RunLock(cfg.run):  # one writer: not while the run trains (or another eval writes its W&B run)
            values = evaluate(cfg.run, metrics, cfg.eval_seed)
            out = Path(HydraConfig.get().runtime.output_dir) / "metrics.json"
            io.write_json(out, {"metrics": values, "settings": metric_settings(metrics), "eval_seed": cfg.eval_seed,
                                "versions": versions()})
            logged = rescore_to_wandb(cfg.run)
        width = max(map(len, values), default=0)
        for k, v in values.items():
            print(f"{k:<{width}}  {v:.4f}")
        print(f"written to {out}" + (" and to the run's W&B run (metrics/<key> in its summary)" if logged else ""))
        return values


if __name__ == "__main__":
    check_overrides(config_name="eval")
    main()
