"""The trackers a run logs to (W&B, TensorBoard, MLflow, CSV): their construction and the run's config
(``loggers``), what a run sends them (``log``: scalars, pictures) and everything W&B (``wandb``: its settings,
a run directory's W&B run, adding values to finished runs, the sweep's summary run)."""
