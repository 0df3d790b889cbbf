"""Re-evaluate a finished run from its checkpoint: `python eval.py run=<run dir> metrics=all`."""

import hydra

from dislab.cli import check_overrides, report_errors


@hydra.main(config_path="conf", config_name="eval", version_base="1.3")
def main(cfg):
    import shutil
    from pathlib import Path

    from hydra.core.hydra_config import HydraConfig

    from dislab.rescore import rescore

    out = Path(HydraConfig.get().runtime.output_dir)
    try:
        with report_errors():  # what it prints goes through the dislab logger: the console and eval/<time>/eval.log
            values, _, _ = rescore(cfg, out)
            return values
    except BaseException:  # refused before it began (the run in use, a bad value): keep nothing Hydra made
        if out.is_dir() and not any(p.stat().st_size for p in out.rglob("*") if p.is_file()):
            shutil.rmtree(out)
            if not any(out.parent.iterdir()):
                out.parent.rmdir()
        raise


if __name__ == "__main__":
    check_overrides(config_name="eval")
    main()
