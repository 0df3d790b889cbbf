"""Train one model (or a sweep with -m): `python train.py model=beta_tcvae beta=6`."""

import hydra

from dislab.cli import check_overrides, report_errors


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
def main(cfg):
    from hydra.core.hydra_config import HydraConfig

    from dislab.sweep.pack import group_dir, run_group_dir
    from dislab.train import objective, run

    with report_errors():
        group = group_dir(HydraConfig.get().runtime.output_dir)
        if group is not None:  # a packed group of a pack=k sweep (dislab.sweep.pack)
            return run_group_dir(group)
        return objective(cfg, run(cfg))  # sweeper=optuna optimises one metric


if __name__ == "__main__":
    check_overrides()
    main()
