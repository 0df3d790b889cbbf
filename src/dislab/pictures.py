"""A run's pictures: made from the model and the data set (``dislab.viz`` draws them), written to
``<run>/pictures/`` at the end of training (``write_pictures``) and made cheaply during training
(``training_pictures``: traversals and reconstructions); ``dislab.trackers.log.log_pictures`` logs them.

The numbers the pictures show are written beside them to ``pictures/pictures.json``: the traversal's
row order, per-latent KL and active set (UDR's, from ``representation.npz``), and the heat map's MIG,
its sample and the factors' best latents.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dislab import atomic
from dislab.metrics.udr import KL_ACTIVE
from dislab.viz.pictures import latent_plan, reconstructions, samples, traversal_images, traversal_picture

SEED_IMAGES = 3  # traversal blocks; reconstructions show 8 images
TRAINING_POINTS = 500  # KL (or a point encoder's code ranges) for the during-training traversals


def _seed_images(data, eval_seed: int) -> np.ndarray:
    return data.sample_observations(8, np.random.default_rng([eval_seed, 2]))


def _kl(model, rep) -> np.ndarray | None:
    """The per-latent KL of a Gaussian-posterior model; None for a point encoder (its log-variance head
    is untrained) or where ``rep`` has none."""
    if not getattr(model, "stochastic", True) or "kl" not in rep:
        return None
    return np.asarray(rep["kl"], dtype=np.float64)


def _traversals(model, x: np.ndarray, rep, kl_points: int):
    means = np.asarray(rep["means"])
    plan = latent_plan(means.shape[1], _kl(model, rep), means)
    images = traversal_images(model, x[:SEED_IMAGES], plan["values"])
    return plan, images, traversal_picture(images, x[:SEED_IMAGES], plan, kl_points=kl_points)


def training_pictures(model, data, eval_seed: int, num: int = TRAINING_POINTS) -> dict[str, np.ndarray]:
    """Traversals (KL on ``num`` evaluation points) and reconstructions of the same seed images as at the end."""
    from dislab.evaluate import representation

    x = _seed_images(data, eval_seed)
    _, _, trav = _traversals(model, x, representation(model, data, num, eval_seed, batch_size=64), num)
    return {"traversals": trav, "reconstructions": reconstructions(model, x)}


def mig_sample(metrics: dict | None, data, model, eval_seed: int):
    """(codes, factors, num_bins, description) that the run's ``mig`` metric scored: its own knobs and
    generator (``compute_metrics`` seeds each metric with ``eval_seed``), so the shared encoding's cache
    serves them; None where no ``mig`` runs."""
    from dislab.evaluate import metric_settings
    from dislab.metrics._sampling import sample_codes

    for kw in metric_settings(metrics or {}).values():
        if kw["function"] == "dislab.metrics.mig.mig":
            codes, factors = sample_codes(data, model.represent, kw["num_train"], np.random.default_rng(eval_seed),
                                          kw["batch_size"], kw["encode_batch"])
            return codes, factors, kw["num_bins"], (f"on the sample metrics/mig scored: {kw['num_train']:,} points, "
                                                    f"{kw['num_bins']} bins")
    return None


def write_pictures(model, data, run_dir, eval_seed: int, rep, metrics: dict | None = None) -> dict:
    """Write ``pictures/``: traversals.png and .gif, reconstructions.png, samples.png, kl.png (Gaussian
    posteriors), mi_heatmap.png (data with factors; on ``metrics``' ``mig`` sample where it has one,
    else on ``rep``'s), pictures.json. ``rep`` is the evaluation representation (``representation.npz``).
    Returns {name: uint8 picture, ``traversals_gif``: its path} for ``log_pictures``."""
    from dislab.viz.metric_pictures import kl_bars, mi_table, mutual_info_heatmap
    from dislab.viz.traversal_gif import traversal_frames, traversal_gif

    out_dir = Path(run_dir) / "pictures"
    n = len(rep["means"])
    x = _seed_images(data, eval_seed)
    plan, images, trav = _traversals(model, x, rep, n)
    prior = model.decode(model.sample_prior(64, np.random.default_rng([eval_seed, 4])))
    pics = {"traversals": trav, "reconstructions": reconstructions(model, x),
            "samples": samples(prior.reshape(8, 8, *prior.shape[1:]))}
    numbers = {"seed_images": SEED_IMAGES, "eval_seed": int(eval_seed), "traversals": {
        "rows": plan["order"].tolist(), "kl": None if plan["kl"] is None else plan["kl"].tolist(),
        "active": None if plan["active"] is None else plan["active"].tolist(), "kl_threshold": KL_ACTIVE,
        "kl_points": n, "values": plan["values"].tolist()}}
    if plan["kl"] is not None:
        pics["kl"] = kl_bars(plan["kl"], kl_points=n)
    if getattr(data, "has_factors", True) and np.asarray(rep["factors"]).shape[1]:
        sample = mig_sample(metrics, data, model, eval_seed) or (
            rep["means"], rep["factors"], 20, f"on the evaluation sample (representation.npz): {n:,} points, 20 bins")
        codes, factors, bins, where = sample
        table = mi_table(codes, factors, num_bins=bins)
        pics["mi_heatmap"] = mutual_info_heatmap(table, data.factor_names, sample=where)
        names = [data.factor_names[i] for i in table["factors"]]
        numbers["mi_heatmap"] = {"mig": table["mig"], "sample": where, "num_points": len(codes), "num_bins": bins,
                                 "gap": dict(zip(names, table["gap"].tolist(), strict=True)),
                                 "best": {f: (int(j) if j >= 0 else None) for f, j in zip(names, table["best"],
                                                                                          strict=True)}}
    for name, img in pics.items():
        atomic.write_png(out_dir / f"{name}.png", img)
    gif = traversal_gif(traversal_frames(images, x[:SEED_IMAGES], plan))
    pics["traversals_gif"] = atomic.write_bytes(out_dir / "traversals.gif", gif)
    atomic.write_json(out_dir / "pictures.json", numbers)
    return pics
