"""Train one model (or a sweep with -m): `python train.py model=beta_tcvae beta=6`."""

import hydra

from dislab.cli import check_overrides, report_errors


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
def main(cfg):
    from dislab.train import objective, run

    with report_errors():
        return objective(cfg, run(cfg))  # sweeper=optuna optimises one metric


if __name__ == "__main__":
    check_overrides()
    main()
