"""Time a metric suite on a fixed representation, and disentanglement_lib on the same input.

    python scripts/bench_metrics.py [--dataset toy|dsprites] [--suite default|fast|all]
                                    [--dlib PYTHON] [--scale S] [--encoder linear|conv64] [--rounds R]

The representation is a fixed random linear encoder (pixels @ W, 10 latents, W seeded), so the
timings are the metrics' own cost plus rendering, or with ``--encoder conv64`` disentanglement_lib's
conv encoder, randomly initialised with a fixed seed (about 1 ms per image on a CPU), where batching
the model calls matters. Each metric is timed alone, in the suite's order, as ``compute_metrics``
runs them (DCI, SAP, modularity and the unsupervised scores share one encoding, so the first of them
pays for it). Each side runs in a fresh process each round, so DCI's time includes loading its
compiled trees from numba's disk cache (a subprocess fills the cache first where it is empty). ``--scale``
multiplies every sample size (0.1 for a quick look). With ``--dlib`` (a Python that can import
disentanglement_lib, see tests/test_metric_dlib.py) the same suite runs through
disentanglement_lib's own functions with the study's gin settings, on the same data set and encoder
(its own random draws), and the ratio of its time to dislab's is reported; ``--rounds`` takes turns
and reports medians. ``bench()`` returns the numbers as a flat dict for ``make bench``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SIZE_KNOBS = ("num_train", "num_test", "num_eval", "num_variance_estimate", "num_samples", "max_points")
DLIB_NAMES = {"mig": "mig", "dci": "dci", "sap": "sap_score", "modularity": "modularity_explicitness",
              "unsupervised": "unsupervised_metrics", "irs": "irs", "beta_vae_score": "beta_vae_sklearn",
              "factor_vae_score": "factor_vae_score"}


def make_data(name: str):
    if name == "toy":
        from dislab.data.toy import Toy

        return Toy()
    if name == "dsprites":
        from dislab.data.dsprites import DSprites

        return DSprites()
    raise SystemExit(f"unknown dataset {name!r}")


def linear_encoder(x_shape, z_dim: int = 10, seed: int = 0):
    """(represent, encode) of a fixed random linear map of the pixels."""
    w = (np.random.default_rng(seed).normal(size=(int(np.prod(x_shape)), z_dim)) / np.sqrt(np.prod(x_shape)) * 8)
    w = w.astype(np.float32)

    def represent(x):
        return np.asarray(x, dtype=np.float32).reshape(len(x), -1) @ w

    def encode(x):
        m = represent(x)
        return m, np.full(m.shape, -2.0, dtype=np.float32)

    return represent, encode


def conv_encoder(x_shape, z_dim: int = 10, seed: int = 0):
    """(represent, encode) of disentanglement_lib's conv encoder (dislab.nets.conv64), randomly
    initialised with a fixed seed: the cost of a real model on this machine."""
    import torch

    from dislab.nets.conv64 import Conv64

    torch.manual_seed(seed)
    net = Conv64(tuple(x_shape), z_dim).eval()

    def encode(x):
        with torch.inference_mode():
            mu, logvar = net.encode(torch.as_tensor(np.asarray(x, dtype=np.float32)))
        return mu.numpy(), logvar.numpy()

    return (lambda x: encode(x)[0]), encode


def make_encoder(kind: str, data):
    """The encoder, standardised (fixed affine map) on 256 fixed images so its codes are O(1)."""
    represent, encode = {"linear": linear_encoder, "conv64": conv_encoder}[kind](data.x_shape)
    x = data.sample_observations_from_factors(data.sample_factors(256, np.random.default_rng(123)),
                                              np.random.default_rng(124))
    z = np.asarray(represent(x), dtype=np.float64)
    mean, std = z.mean(0), np.where(z.std(0) > 0, z.std(0), 1.0)

    def enc(x):
        m, lv = encode(x)
        return (m - mean) / std, lv - 2 * np.log(std)

    return (lambda x: (represent(x) - mean) / std), enc


def suite_settings(suite: str, scale: float = 1.0) -> dict[str, tuple[str, dict]]:
    """{metric: (target, knobs)} from conf/metrics/<suite>.yaml (``evaluate.metric_settings``: the
    function's defaults updated by the config), sample sizes multiplied by ``scale``."""
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from dislab.evaluate import metric_settings

    with initialize_config_dir(config_dir=str(ROOT / "conf" / "metrics"), version_base="1.3"):
        cfg = compose(suite)
    out = {}
    for name, knobs in metric_settings(instantiate(cfg)).items():
        target = knobs.pop("function")
        for k in SIZE_KNOBS:
            if knobs.get(k) is not None:
                knobs[k] = max(2, int(knobs[k] * scale))
        out[name] = (target, knobs)
    return out


def time_dislab(dataset: str, settings: dict, encoder: str = "linear") -> tuple[dict, dict]:
    """Each metric alone through ``evaluate.compute_metrics``, as a run scores it, in a fresh process
    (as disentanglement_lib's side runs): what a run pays once per process, such as loading DCI's
    compiled trees, is counted; the process's start and imports are not."""
    return _in_subprocess(sys.executable, "--dislab-worker", {"dataset": dataset, "encoder": encoder,
                                                              "settings": settings})


def _dislab_worker(spec_path: str, out_path: str, eval_seed: int = 0):
    from functools import partial
    from types import SimpleNamespace

    from hydra.utils import get_method

    from dislab.evaluate import compute_metrics

    spec = json.loads(Path(spec_path).read_text())
    data = make_data(spec["dataset"])
    represent, encode = make_encoder(spec["encoder"], data)
    model = SimpleNamespace(represent=represent, encode=encode)
    times, values = {}, {}
    for name, (target, knobs) in spec["settings"].items():
        fn = partial(get_method(target), **knobs)
        t = time.perf_counter()
        values.update(compute_metrics({name: fn}, data, model, eval_seed))
        times[name] = time.perf_counter() - t
    Path(out_path).write_text(json.dumps({"times": times, "values": values}))


def time_dlib(python: str, dataset: str, settings: dict, encoder: str = "linear") -> tuple[dict, dict]:
    knobs = {n: k for n, (_, k) in settings.items() if n in DLIB_NAMES}
    return _in_subprocess(python, "--worker", {"dataset": dataset, "encoder": encoder, "metrics": knobs})


def _in_subprocess(python: str, flag: str, spec: dict) -> tuple[dict, dict]:
    """(times, values) from this script's worker ``flag`` run by ``python`` on ``spec``."""
    with tempfile.TemporaryDirectory() as tmp:
        spec_path, out = Path(tmp) / "spec.json", Path(tmp) / "out.json"
        spec_path.write_text(json.dumps(spec))
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        done = subprocess.run([python, __file__, flag, str(spec_path), str(out)], env=env, capture_output=True,
                              text=True)
        if done.returncode:
            raise RuntimeError(f"{python} {flag} failed:\n{done.stderr[-3000:]}")
        res = json.loads(out.read_text())
    return res["times"], res["values"]


def _worker(spec_path: str, out_path: str):
    """Runs under disentanglement_lib's Python: the study's functions on a dislab data set."""
    import types

    sys.modules["gin.tf"] = types.ModuleType("gin.tf")
    import gin
    from disentanglement_lib.evaluation.metrics import (
        beta_vae,
        dci,
        factor_vae,
        irs,
        mig,
        modularity_explicitness,
        sap_score,
        unsupervised_metrics,
        utils,
    )

    gin.bind_parameter("discretizer.discretizer_fn", utils._histogram_discretize)
    gin.bind_parameter("discretizer.num_bins", 20)
    gin.bind_parameter("prune_dims.threshold", 0.05)
    spec = json.loads(Path(spec_path).read_text())
    data = make_data(spec["dataset"])
    represent, _ = make_encoder(spec["encoder"], data)
    varying = np.flatnonzero(np.asarray(data.factor_sizes) > 1)

    class Adapter:  # disentanglement_lib's data protocol (RandomState) over a dislab data set, constant factors dropped
        num_factors = len(varying)
        factors_num_values = [data.factor_sizes[i] for i in varying]
        observation_shape = data.x_shape

        @staticmethod
        def _g(rs):
            return np.random.default_rng(rs.randint(2**31 - 1))

        def sample_factors(self, n, rs):
            return data.sample_factors(n, self._g(rs))[:, varying]

        def sample_observations_from_factors(self, f, rs):
            full = np.zeros((len(f), data.num_factors), dtype=np.int64)
            full[:, varying] = f
            return data.sample_observations_from_factors(full, self._g(rs))

        def sample(self, n, rs):
            f = self.sample_factors(n, rs)
            return f, self.sample_observations_from_factors(f, rs)

        def sample_observations(self, n, rs):
            return self.sample(n, rs)[1]

    calls = {
        "mig": lambda d, k, rs: {"mig": mig.compute_mig(d, represent, rs, num_train=k["num_train"])["discrete_mig"]},
        "dci": lambda d, k, rs: dci.compute_dci(d, represent, rs, num_train=k["num_train"], num_test=k["num_test"]),
        "sap": lambda d, k, rs: sap_score.compute_sap(d, represent, rs, num_train=k["num_train"],
                                                      num_test=k["num_test"], continuous_factors=False),
        "modularity": lambda d, k, rs: modularity_explicitness.compute_modularity_explicitness(
            d, represent, rs, num_train=k["num_train"], num_test=k["num_test"]),
        "unsupervised": lambda d, k, rs: unsupervised_metrics.unsupervised_metrics(d, represent, rs,
                                                                                   num_train=k["num_train"]),
        "irs": lambda d, k, rs: irs.compute_irs(d, represent, rs, num_train=k["num_train"], batch_size=16),
        "beta_vae_score": lambda d, k, rs: beta_vae.compute_beta_vae_sklearn(
            d, represent, rs, batch_size=k["batch_size"], num_train=k["num_train"], num_eval=k["num_eval"]),
        "factor_vae_score": lambda d, k, rs: factor_vae.compute_factor_vae(
            d, represent, rs, batch_size=k["batch_size"], num_train=k["num_train"], num_eval=k["num_eval"],
            num_variance_estimate=k["num_variance_estimate"]),
    }
    times, values = {}, {}
    for name, knobs in spec["metrics"].items():
        t = time.perf_counter()
        res = calls[name](Adapter(), knobs, np.random.RandomState(0))
        times[name] = time.perf_counter() - t
        values.update({f"{name}:{k}": float(v) for k, v in res.items() if np.ndim(v) == 0})
    Path(out_path).write_text(json.dumps({"times": times, "values": values}))


def bench(dataset: str = "toy", suite: str = "default", dlib_python: str | None = None, scale: float = 1.0,
          encoder: str = "linear", rounds: int = 1, verbose: bool = True) -> dict[str, float]:
    """Flat results: ``metrics/<name>_s`` per metric, ``metrics/total_s`` and, with ``dlib_python``,
    ``metrics/dlib_<name>_s``, ``metrics/dlib_total_s`` and ``metrics/dlib_over_dislab`` (time ratio).
    With ``rounds`` > 1 the two sides take turns and each figure is the median over the rounds (the
    ratio: the median of the rounds' ratios), as shared machines swing from one minute to the next."""
    data = make_data(dataset)
    settings = suite_settings(suite, scale)
    if "dci" in settings:  # numba compiles DCI's trees once per install (make install); not timed
        subprocess.run([sys.executable, "-c", "from dislab.metrics._gbt import warm_up; warm_up()"], check=True)
    runs, refs = [], []
    for _ in range(rounds):
        times, values = time_dislab(dataset, settings, encoder)
        runs.append(times)
        if dlib_python:
            ref, ref_values = time_dlib(dlib_python, dataset, settings, encoder)
            refs.append(ref)
    times = {n: float(np.median([r[n] for r in runs])) for n in runs[0]}
    total = float(np.median([sum(r.values()) for r in runs]))
    out = {f"metrics/{n}_s": t for n, t in times.items()}
    out["metrics/total_s"] = total
    ref = None
    if dlib_python:
        ref = {n: float(np.median([r[n] for r in refs])) for n in refs[0]}
        same = [n for n in ref if n in times]
        ratios = [sum(r[n] for n in same) / sum(d[n] for n in same) for r, d in zip(refs, runs, strict=True)]
        out.update({f"metrics/dlib_{n}_s": t for n, t in ref.items()})
        out["metrics/dlib_total_s"] = float(np.median([sum(r[n] for n in same) for r in refs]))
        out["metrics/dlib_over_dislab"] = float(np.median(ratios))
    if verbose:
        print(f"metric suite '{suite}' on {dataset} ({type(data).__name__}, {len(data)} grid points), "
              f"fixed random {encoder} encoder, sample sizes x{scale:g}"
              + (f", median of {rounds} rounds" if rounds > 1 else ""))
        head = f"{'metric':18s} {'dislab s':>9s} {'share':>6s}"
        print(head + (f" {'dlib s':>9s} {'dlib/dislab':>11s}" if ref else ""))
        for n, t in times.items():
            row = f"{n:18s} {t:9.2f} {t / total:6.1%}"
            if ref and n in ref:
                row += f" {ref[n]:9.2f} {ref[n] / t:11.1f}x"
            print(row)
        print(f"{'total':18s} {total:9.2f} {1:6.1%}" + (
            f" {out['metrics/dlib_total_s']:9.2f} {out['metrics/dlib_over_dislab']:11.1f}x" if ref else ""))
        if ref and rounds > 1:
            print("dlib/dislab by round:", ", ".join(f"{r:.1f}" for r in ratios))
        print("values:", {k: round(v, 4) for k, v in values.items()})
        if ref:
            print("disentanglement_lib values:", {k: round(v, 4) for k, v in ref_values.items()})
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="toy", choices=["toy", "dsprites"])
    p.add_argument("--suite", default="default")
    p.add_argument("--dlib", default=None, help="a Python that can import disentanglement_lib")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every sample size")
    p.add_argument("--encoder", default="linear", choices=["linear", "conv64"])
    p.add_argument("--rounds", type=int, default=1, help="take turns this many times; report medians")
    p.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    p.add_argument("--dislab-worker", nargs=2, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        return _worker(*a.worker)
    if a.dislab_worker:
        return _dislab_worker(*a.dislab_worker)
    return bench(a.dataset, a.suite, a.dlib, a.scale, a.encoder, a.rounds)


if __name__ == "__main__":
    main()
