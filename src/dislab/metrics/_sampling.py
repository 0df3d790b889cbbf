"""Helpers shared by the metrics: sampling (representation, factor) pairs, checking and normalising the
arrays, and running independent classifier fits side by side (discretising codes and mutual information:
``dislab.metrics.information``).

After disentanglement_lib ``evaluation/metrics/utils.py`` (``generate_batch_factor_code``,
``normalize_data``), with
arrays laid out (n_samples, n_latents) / (n_samples, n_factors) instead of transposed.

Speed: the model sees ``encode_batch`` points a call whatever ``batch_size`` says; ``batch_size`` keeps
disentanglement_lib's meaning for the sampling loop (how many points each ``data.sample`` call draws)
and for the intervention metrics (points per group). ``encode_batch=None`` picks 1,024 for a model on a
GPU and 64 otherwise: on a CPU, disentanglement_lib's conv encoder runs ~3x faster per image in
batches of 64 than of 128 or more (its activations then outgrow the cache).

Device: for a model on a GPU (``represent`` bound to it) the images are rendered there
(``dislab.data._device.paint_device``: unless ``dataset.device=cpu``) from the same draws of the
same generator, and ``represent`` gets them as a tensor on the device; on a CPU nothing changes.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Callable

import numpy as np

from dislab.data._device import draw, pack, paint_device, render_rows

Represent = Callable[[np.ndarray], np.ndarray]


def model_device(fn: Callable):
    """The device of the model ``fn`` is bound to (``model.represent``), else the CPU."""
    return getattr(getattr(fn, "__self__", None), "device", None) or "cpu"


def resolve_encode_batch(fn: Callable, encode_batch: int | None) -> int:
    """``encode_batch``, or for None 1,024 where ``fn`` is bound to a model on a GPU and 64 otherwise."""
    if encode_batch is not None:
        if encode_batch <= 0:
            raise ValueError(f"encode_batch={encode_batch} must be positive")
        return int(encode_batch)
    return 1024 if getattr(model_device(fn), "type", "cpu") != "cpu" else 64


def sample_codes(data, represent: Represent, num_points: int, rng: np.random.Generator,
                 batch_size: int = 16, encode_batch: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``num_points`` factor vectors uniformly (``batch_size`` per ``data.sample`` call, as
    disentanglement_lib's ``generate_batch_factor_code``), render them and encode them
    ``encode_batch`` at a time. Returns (codes (n, D) float64, factors (n, K) int64).

    Metrics that draw the same sample (same data, represent, generator state, num_points, batch_size
    and encode_batch — DCI, SAP, modularity, ... each start from a generator seeded with ``eval_seed``)
    share one encoding: a repeated request is served from a small cache when its first ``batch_size``
    points, encoded on their own, come out bit for bit as they did when the entry was made (so a model
    whose weights moved, or a sampled representation, is encoded afresh), and the generator is left
    in the state the draw would have left it. The values are the same with or without the cache."""
    if num_points <= 0 or batch_size <= 0:
        raise ValueError(f"num_points={num_points} and batch_size={batch_size} must be positive")
    encode_batch = resolve_encode_batch(represent, encode_batch)
    key = (id(data), _fn_id(represent), repr(rng.bit_generator.state), num_points, batch_size, encode_batch)
    probe = _probe(data, represent, rng, min(batch_size, num_points))
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is data and _same_fn(hit[1], represent) and all(
            np.array_equal(a, b) for a, b in zip(hit[2], probe, strict=True)):
        rng.bit_generator.state = hit[5]
        return hit[3].copy(), hit[4].copy()
    codes, factors, pending = [], [], []
    device = paint_device(data, model_device(represent))

    def flush():
        if pending:
            x = np.concatenate(pending)
            codes.append(np.asarray(represent(x if device is None else render_rows(data, x, device)), dtype=np.float64))
            pending.clear()

    held = 0
    for start in range(0, num_points, batch_size):
        n = min(batch_size, num_points - start)
        if device is None:
            f, x = data.sample(n, rng)
        else:  # the same draws, rendered on the device at the flush
            x = draw(data, n, rng)
            f = x[:, :data.num_factors].astype(np.int64)
        factors.append(f)
        pending.append(x)
        held += len(x)
        if held >= encode_batch:
            flush()
            held = 0
    flush()
    codes, factors = np.concatenate(codes), np.concatenate(factors).astype(np.int64)
    _CACHE[key] = (data, represent, probe, codes.copy(), factors.copy(), rng.bit_generator.state)
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    return codes, factors


def _probe(data, represent, rng, n):
    """The first draw of the sample (from a copy of ``rng``) and its codes, encoded on their own: equal
    probes mean the same data, generator state and encoder output."""
    copy = np.random.Generator(type(rng.bit_generator)())
    copy.bit_generator.state = rng.bit_generator.state
    f, x = data.sample(n, copy)
    return f, np.asarray(represent(x), dtype=np.float64)


_CACHE: dict = {}  # insertion-ordered; the oldest entry goes first
_CACHE_SIZE = 4


def _fn_id(fn) -> tuple:
    """Identity of a function, bound methods included (``model.represent`` is a new object each time)."""
    return (id(getattr(fn, "__self__", None)), id(getattr(fn, "__func__", fn)))


def _same_fn(a, b) -> bool:
    return getattr(a, "__self__", None) is getattr(b, "__self__", None) and \
        getattr(a, "__func__", a) is getattr(b, "__func__", b)


def encode_factors(data, fn: Callable, factors: np.ndarray, rng: np.random.Generator,
                   encode_batch: int | None = None):
    """Render ``factors`` (n, K) and apply ``fn`` (``represent`` or ``encode``) ``encode_batch`` rows at a
    time. Returns an array, or a tuple of arrays where ``fn`` returns a tuple (``encode``). Images are
    rendered ``RENDER_BATCH`` at a time (cache-sized pieces render faster than one large block)."""
    encode_batch = resolve_encode_batch(fn, encode_batch)
    device = paint_device(data, model_device(fn))
    outs = []
    for s in range(0, len(factors), encode_batch):
        chunk = factors[s:s + encode_batch]
        if device is None:
            x = np.concatenate([data.sample_observations_from_factors(chunk[r:r + RENDER_BATCH], rng)
                                for r in range(0, len(chunk), RENDER_BATCH)])
        else:  # the same draws, piece by piece, rendered on the device at once
            x = render_rows(data, np.concatenate([pack(p, data.random_params(p, rng)) for p in (
                chunk[r:r + RENDER_BATCH] for r in range(0, len(chunk), RENDER_BATCH))]), device)
        out = fn(x)
        outs.append(tuple(np.asarray(o, dtype=np.float64) for o in out) if isinstance(out, tuple)
                    else (np.asarray(out, dtype=np.float64),))
    joined = tuple(np.concatenate(parts) for parts in zip(*outs, strict=True))
    return joined if len(joined) > 1 else joined[0]


RENDER_BATCH = 256


def varying_factors(data) -> np.ndarray:
    """Indices of the factors with more than one value on the grid (dSprites' colour is excluded)."""
    idx = np.flatnonzero(np.asarray(data.factor_sizes) > 1)
    if not len(idx):
        raise ValueError(f"{type(data).__name__} has no factor with more than one value")
    return idx


def check_codes(codes, factors) -> tuple[np.ndarray, np.ndarray]:
    codes, factors = np.asarray(codes, dtype=np.float64), np.asarray(factors)
    if codes.ndim != 2 or factors.ndim != 2 or len(codes) != len(factors):
        raise ValueError(f"codes {codes.shape} and factors {factors.shape} must be (n, n_latents) and (n, n_factors)")
    if not np.isfinite(codes).all():
        raise ValueError("codes contain NaN or infinite values")
    return codes, factors


def check_split(codes, factors, test_codes, test_factors, train_fraction: float):
    """The kernels' train/test convention: explicit test arrays, or the first ``train_fraction`` of the
    rows for training and the rest for testing (disentanglement_lib's ``split_train_test``)."""
    codes, factors = check_codes(codes, factors)
    if (test_codes is None) != (test_factors is None):
        raise ValueError("give both test_codes and test_factors, or neither")
    if test_codes is None:
        if not 0 < train_fraction < 1:
            raise ValueError(f"train_fraction={train_fraction} must be in (0, 1)")
        n = int(np.ceil(len(codes) * train_fraction))
        if n >= len(codes):
            raise ValueError(f"{len(codes)} rows leave no test set at train_fraction={train_fraction}")
        return codes[:n], factors[:n], codes[n:], factors[n:]
    test_codes, test_factors = check_codes(test_codes, test_factors)
    if test_codes.shape[1] != codes.shape[1] or test_factors.shape[1] != factors.shape[1]:
        raise ValueError(f"test arrays {test_codes.shape}, {test_factors.shape} do not match {codes.shape}, "
                         f"{factors.shape}")
    return codes, factors, test_codes, test_factors


def varying_columns(factors: np.ndarray) -> np.ndarray:
    """Boolean mask of the factor columns that take more than one value in the sample."""
    f = np.asarray(factors)
    return (f != f[:1]).any(axis=0) if len(f) else np.zeros(f.shape[1], bool)


def keep_varying(factors: np.ndarray, *others: np.ndarray, what: str = "metric"):
    """Drop the factors constant in ``factors`` (and the same columns of ``others``)."""
    keep = varying_columns(factors)
    if not keep.any():
        raise ValueError(f"{what} needs at least one factor that varies in the sample")
    return (factors[:, keep], *(o[:, keep] for o in others))


def normalize(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Standardise both with the training mean and standard deviation. A constant latent is centred,
    not divided by zero (disentanglement_lib's ``normalize_data`` returns NaN there)."""
    mean, std = train.mean(0), train.std(0)
    std = np.where(std > 0, std, 1.0)
    return (train - mean) / std, (test - mean) / std


def seed_from(rng: np.random.Generator) -> int:
    """An int seed for a scikit-learn estimator, drawn from the metric's generator (so a fixed
    ``rng`` gives a fixed score; disentanglement_lib left some estimators unseeded)."""
    return int(rng.integers(2**31 - 1))


def parallel_map(fn: Callable, items, n_jobs: int | None = 1) -> list:
    """``[fn(i) for i in items]``, on ``n_jobs`` threads (scikit-learn's tree, liblinear and lbfgs fits
    release the GIL for most of their work, so threads avoid pickling the data to processes).
    Results come back in the order of ``items``."""
    items = list(items)
    if not n_jobs or n_jobs == 1 or len(items) < 2:
        return [fn(i) for i in items]
    from joblib import Parallel, delayed

    return Parallel(n_jobs=min(n_jobs, len(items)) if n_jobs > 0 else n_jobs, prefer="threads")(
        delayed(fn)(i) for i in items)


@contextmanager
def quiet_sklearn():
    """Around scikit-learn fits: one BLAS thread (the fits here are many small problems, on which
    multi-threaded BLAS spends more time synchronising than computing: logistic regression on
    10,000 x 10 codes runs ~8x faster on 2 cores with one BLAS thread), and no convergence
    warnings (the classifiers run with disentanglement_lib's settings, warts and all)."""
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield
