"""What a run sends its trackers: scalars (``log_scalars``) to every logger, and pictures (``log_pictures``:
uint8 arrays, and the traversal GIF's path) to every logger that takes pictures, the one place that knows how
each takes them."""

from __future__ import annotations

from pathlib import Path


def log_scalars(loggers, values: dict[str, float], step: int):
    for logger in loggers:
        logger.log_metrics(values, step=step)


def log_final(loggers, scalars: dict[str, float], untrained: dict[str, float], step: int):
    """The final scalars, and the untrained network's scores as ``untrained/<metric>`` beside them: logged at the
    final step, so that a tracker's summary (W&B's: each key's last value) holds both the trained ``metrics/<key>``
    and the untrained ``untrained/<key>`` (the untrained ones are also ``metrics/<key>`` at step 0)."""
    log_scalars(loggers, {**scalars, **{f"untrained/{k}": float(v) for k, v in untrained.items()}}, step)


def takes_pictures(loggers) -> bool:
    return any(_picture_path(lg) is not None for lg in loggers)


def _picture_path(lg):
    """How ``lg`` takes a picture: a function (logger, name, uint8 array or GIF path, step), or None."""
    if hasattr(lg, "log_image"):  # Lightning's WandbLogger (and NeptuneLogger, CometLogger...)
        return _wandb_picture
    kind = type(lg).__name__
    return {"TensorBoardLogger": _tensorboard_picture, "MLFlowLogger": _mlflow_picture}.get(kind)


def _wandb_picture(lg, name: str, pic, step):
    """An image (``log_image``); the GIF as a video (``log_video``: W&B takes a GIF file as it is)."""
    if isinstance(pic, (str, Path)):
        if hasattr(lg, "log_video"):
            lg.log_video(key=f"pictures/{name}", videos=[str(pic)], step=step)
    else:
        lg.log_image(key=f"pictures/{name}", images=[pic], step=step)


def _tensorboard_picture(lg, name: str, pic, step):
    """An image summary; the GIF as an image summary holding the GIF's bytes (what ``add_video`` writes, without
    moviepy: TensorBoard's image dashboard plays it)."""
    writer = lg.experiment
    if not isinstance(pic, (str, Path)):
        writer.add_image(f"pictures/{name}", pic, step, dataformats="HWC")
        return
    from PIL import Image
    from tensorboard.compat.proto.summary_pb2 import Summary

    with Image.open(pic) as gif:
        width, height = gif.size
    image = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=Path(pic).read_bytes())
    writer._get_file_writer().add_summary(Summary(value=[Summary.Value(tag=f"pictures/{name}", image=image)]), step)


def _mlflow_picture(lg, name: str, pic, step):
    """An artifact ``pictures/step_<step>/<name>.png`` (the GIF as ``traversals.gif``)."""
    folder = f"pictures/step_{step}"
    if isinstance(pic, (str, Path)):
        lg.experiment.log_artifact(lg.run_id, str(pic), artifact_path=folder)
    else:
        lg.experiment.log_image(lg.run_id, pic, artifact_file=f"{folder}/{name}.png")


def log_pictures(loggers, pictures: dict, step: int | None = None) -> None:
    """Log ``pictures`` ({name: uint8 array, or the GIF's path}) as ``pictures/<name>`` to every logger that
    takes pictures, each its own way (``_picture_path``)."""
    for lg in loggers:
        path = _picture_path(lg)
        if path is not None:
            for name, pic in pictures.items():
                path(lg, name, pic, step)
