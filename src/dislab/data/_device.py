"""Rendering on the training device: the ``dataset.device`` knob, the host-to-device upload of
factor draws, and the per-image noise of the torch renderers.

Every batch is drawn on the host and painted on the device: the factors and the few random numbers
each image uses (a colour, a crop position, a noise key) are drawn with numpy from the same
generator, in the same order, as the numpy renderer draws them, packed into one (n, K + P) float64
array (integers below 2^53 are exact in float64) and sent over in one small copy; the device then
paints the images (``GroundTruthData.paint``).
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
import torch

DEVICES = "auto, cpu, cuda or cuda:<index>"


def check_device(device) -> str:
    """The ``dataset.device`` knob: ``auto`` (the device of whatever consumes the batches: the
    trainer's, or the model's when scoring), ``cpu`` (the host, numpy renderer) or a GPU."""
    if isinstance(device, str) and (device in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", device)):
        return device
    raise ValueError(f"dataset.device={device!r} is not allowed; use {DEVICES}")


def resolve(knob: str, consumer: torch.device) -> torch.device:
    """The device batches are rendered on for a consumer (a trainer or a model) on ``consumer``:
    ``auto`` is the consumer's device, ``cuda`` the consumer's GPU when it has one."""
    knob = check_device(knob)
    consumer = torch.device(consumer)
    if knob == "auto" or (knob == "cuda" and consumer.type == "cuda"):
        out = consumer
    else:
        out = torch.device(knob)
    if out.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"dataset.device={knob} but no GPU is visible (torch.cuda.is_available() is False); "
                         f"use auto or cpu")
    return out


def paint_device(data, consumer) -> torch.device | None:
    """Where ``data`` renders for a consumer (a trainer, a model) on ``consumer``: for a consumer on
    a GPU, the device ``data.device`` resolves to, if that is a GPU and the data set paints there
    (``data.paints``); else None: the host's numpy renderer (a consumer on the CPU always gets it: on
    a CPU the numpy renderers are faster than the torch ones, README, Performance)."""
    consumer = torch.device(consumer or "cpu")
    if consumer.type == "cpu" or not data.paints:
        return None
    device = resolve(getattr(data, "device", "auto"), consumer)
    return None if device.type == "cpu" else device


def draw(data, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` factor vectors and their images' random parameters, (n, K + P) float64, drawn from
    ``rng`` exactly as ``data.sample(n, rng)`` draws them (``rng`` ends in the same state)."""
    f = data.sample_factors(n, rng)
    return pack(f, data.random_params(f, rng))


def pack(factors: np.ndarray, params: np.ndarray) -> np.ndarray:
    """Factors (n, K) and random parameters (n, P) as one (n, K + P) float64 array."""
    return np.concatenate([np.asarray(factors, np.float64), params], 1)


def upload(rows: np.ndarray, device: torch.device) -> torch.Tensor:
    """A small host array on ``device`` without making the host wait: from pinned memory, asynchronous
    (the pinned block is recycled only after its copy is done: torch's caching host allocator)."""
    t = torch.from_numpy(np.ascontiguousarray(rows))
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def paint_rows(data, rows: torch.Tensor) -> torch.Tensor:
    """Images of packed rows (n, K + P) float64 on their device."""
    k = data.num_factors
    return data.paint(rows[:, :k].long(), rows[:, k:])


def render_rows(data, rows: np.ndarray, device) -> torch.Tensor:
    return paint_rows(data, upload(rows, torch.device(device)))


# -- per-image noise -------------------------------------------------------------------------------
_M32 = 0xFFFFFFFF


def _pcg_hash(x: torch.Tensor) -> torch.Tensor:
    """A permutation of 32-bit integers (held in int64, every product below 2^63): ``pcg_hash`` of
    Jarzynski & Olano (2020), "Hash Functions for GPU Rendering", JCGT 9(3), the PCG RXS-M-XS step."""
    state = (x * 747796405 + 2891336453) & _M32
    word = (((state >> ((state >> 28) + 4)) ^ state) * 277803737) & _M32
    return (word >> 22) ^ word


def uniform(keys: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Noise U[0, 1) as float32 (n, *shape) on ``keys``' device, on numpy's float32 grid (multiples
    of 2^-24): element e of image i is a hash of (e, keys[i]); ``keys`` (n, 2) hold 32-bit integers.
    Integer arithmetic only, so every device gives the same numbers."""
    keys = keys.long()
    e = torch.arange(int(np.prod(shape)), device=keys.device)
    h = _pcg_hash(_pcg_hash(keys[:, :1] ^ e) ^ keys[:, 1:])
    return ((h >> 8).float() * 2.0**-24).view(len(keys), *shape)


def noise_keys(rng: np.random.Generator, n: int, count: int) -> np.ndarray:
    """Keys (n, 2) for ``uniform``, taken from ``rng``'s state without drawing from it; then ``rng``
    is moved on as ``rng.random(count, dtype=np.float32)`` would move it (the numpy renderer's noise),
    so later draws from it (factors, other metrics' samples) are the numpy renderer's."""
    digest = hashlib.sha256(repr(rng.bit_generator.state).encode()).digest()
    keys = np.random.default_rng(np.frombuffer(digest, np.uint32)).integers(0, 2**32, (n, 2), dtype=np.int64)
    skip_float32(rng, count)
    return keys


def skip_float32(rng: np.random.Generator, count: int) -> None:
    """Leave ``rng`` as ``rng.random(count, dtype=np.float32)`` leaves it. PCG64 (numpy's default) and
    PCG64DXSM jump ahead: each float32 takes one 32-bit half of a 64-bit output, the high half kept
    for the next (``has_uint32``); other generators draw and discard."""
    bg = rng.bit_generator
    if not isinstance(bg, (np.random.PCG64, np.random.PCG64DXSM)):
        rng.random(count, dtype=np.float32)
        return
    if count <= 0:
        return
    state = bg.state
    c = count - state["has_uint32"]  # the first one is the kept half
    draws, odd = divmod(c, 2)
    draws += odd  # 64-bit outputs used
    kept = state["uinteger"]
    if draws > 0:
        bg.advance(draws - 1)
        kept = int(bg.random_raw()) >> 32
    state = bg.state
    state["has_uint32"], state["uinteger"] = odd, kept
    bg.state = state
