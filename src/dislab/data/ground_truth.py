"""The ground-truth data protocol (after disentanglement_lib's ``ground_truth_data.py``).

Numpy in, numpy out. ``rng`` is always a ``np.random.Generator``. Observations are float32
arrays of shape (n, C, H, W) with values in [0, 1]. Factors are integer indices into each
factor's grid, shape (n, K).

On a device (``dataset.device``; ``dislab.data._device``): ``random_params`` draws on the host the
few random numbers each image uses, exactly as the numpy renderer draws them, and ``paint`` renders
the images with torch on the device of its inputs; ``render(factors, rng, device)`` does both. The
numpy renderer is the reference each ``paint`` is tested against.

Where the images come from (procedural, or which file: ``dislab.data.source``) is ``source()``, from the
constructor arguments named by ``source_args``; a rendering that replaces a published file names it in
``stands_in_for``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dislab.data import source as sources
from dislab.data._device import pack, render_rows


class GroundTruthData:
    """Base class: subclasses set ``factor_names``, ``factor_sizes``, ``x_shape`` and
    implement ``sample_observations_from_factors``."""

    factor_names: tuple[str, ...] = ()
    factor_sizes: tuple[int, ...] = ()
    x_shape: tuple[int, int, int] = (1, 64, 64)
    has_factors: bool = True
    #: the ``dataset.device`` knob (``dislab.data._device.check_device``), set by the constructor
    device: str = "auto"
    #: whether ``paint`` renders with torch on a device; if not, ``render`` copies numpy images there. A class
    #: attribute, or a property where the instance decides (a memory-mapped file is read on the host). The contract
    #: of a data set that paints: from equal generators ``render`` gives ``sample_observations_from_factors``'
    #: images (noise aside: ``noisy_dsprites`` paints other noise of the same law) and leaves the generator where
    #: numpy's renderer leaves it; tests/test_datasets.py checks every data set of conf/dataset/ that paints.
    paints: bool = False
    #: the published file that the rendering without ``path`` stands in for; None: it stands in for nothing
    stands_in_for: str | None = None
    #: the constructor arguments naming what the images are read from: ``path`` (a file or a folder), then
    #: any other file (each recorded under its own name)
    source_args: tuple[str, ...] = ("path",)

    @classmethod
    def files_in(cls, folder: Path) -> list[Path]:
        """The files a folder-backed data set reads in ``folder`` (what its checksum covers): here every
        file below it that is not hidden; a data set that reads only some of them says which."""
        return sorted(p for p in folder.rglob("*") if p.is_file()
                      and not any(part.startswith(".") for part in p.relative_to(folder).parts))

    @classmethod
    def from_data_dir(cls, arg: str, value, **args):
        """``value`` when given; when null, the data directory's copy of the published set that argument ``arg``
        reads (``dislab.data.source.published``; ``args``: the other arguments, e.g. ``variant``) where it is
        there; else None."""
        if value is not None and str(value) != "":
            return value
        found = sources.placed(sources.published(cls.__module__.rsplit(".", 1)[-1], arg, args))
        return None if found is None else str(found)

    @classmethod
    def source_of(cls, args) -> dict:
        """Where ``cls(**args)`` reads its images from, without building it (``dislab.data.source``):
        procedural without a ``path`` (given, or in the data directory), else the file or the folder
        (``files_in``) with its size and sha256."""
        args = {**args, **{k: cls.from_data_dir(k, args.get(k), **args) for k in cls.source_args}}
        out = {"dataset": cls.__module__.rsplit(".", 1)[-1]}
        path = args.get("path") if "path" in cls.source_args else None
        if path is None or str(path) == "":
            out.update(kind="procedural", stands_in_for=cls.stands_in_for)
        elif Path(str(path)).expanduser().is_dir():
            out.update(sources.folder_source(path, cls.files_in(Path(str(path)).expanduser())))
        else:
            out.update(sources.file_source(path))
        for name in cls.source_args[1:]:
            if args.get(name) is not None:
                out[name] = sources.file_source(args[name])
        return out

    def source(self) -> dict:
        """Where this data set's images come from (``source_of`` its own arguments), computed once."""
        if "_source" not in self.__dict__:
            self._source = self.source_of({k: getattr(self, k, None) for k in self.source_args})
        return self._source

    @property
    def num_factors(self) -> int:
        return len(self.factor_sizes)

    def __len__(self) -> int:
        """Number of points on the factor grid (the training-set size N)."""
        return int(np.prod(self.factor_sizes, dtype=np.int64))

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n factor vectors drawn uniformly and independently from the grid, shape (n, K)."""
        sizes = np.asarray(self.factor_sizes, dtype=np.int64)
        return (rng.random((n, len(sizes))) * sizes).astype(np.int64)

    def sample_observations_from_factors(self, factors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def random_params(self, factors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The random numbers the images of ``factors`` use besides their factors, (n, P) float64,
        drawn from ``rng`` as ``sample_observations_from_factors`` draws them (leaving ``rng`` in the
        same state). P = 0 where the images are functions of the factors."""
        return np.zeros((len(factors), 0))

    def paint(self, factors: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """The images of ``factors`` (n, K) int64 with ``params`` (n, P) float64 (``random_params``),
        as float32 (n, C, H, W) on their device; where ``paints`` is True."""
        raise NotImplementedError(f"{type(self).__name__} does not render on a device")

    def render(self, factors: np.ndarray, rng: np.random.Generator, device) -> torch.Tensor:
        """``sample_observations_from_factors(factors, rng)`` as a float32 tensor on ``device``: painted
        there when ``paints``, else rendered by numpy and copied."""
        f = self.check_factors(factors)
        if not self.paints:
            return torch.from_numpy(self.sample_observations_from_factors(f, rng)).to(device)
        return render_rows(self, pack(f, self.random_params(f, rng)), device)

    def check_factors(self, factors) -> np.ndarray:
        """``factors`` as int64 (n, K), or ValueError naming what is wrong."""
        f = np.asarray(factors, dtype=np.int64)
        if f.ndim != 2 or f.shape[1] != self.num_factors:
            raise ValueError(f"factors must have shape (n, {self.num_factors}), got {f.shape}")
        if f.size and ((f < 0).any() or (f >= np.asarray(self.factor_sizes)).any()):
            raise ValueError(f"factors out of range for factor_sizes {self.factor_sizes}")
        return f

    def _device_index(self, factors: torch.Tensor) -> torch.Tensor:
        """``factors_to_index`` on the factors' device."""
        strides = np.cumprod((*self.factor_sizes[1:], 1)[::-1])[::-1].copy()
        return (factors * self._device_tensors("index", factors.device, lambda: {"s": strides})["s"]).sum(1)

    def _device_tensors(self, name: str, device: torch.device, make) -> dict[str, torch.Tensor]:
        """``make()`` (a dict of arrays) as tensors on ``device``, made once per name, device and instance."""
        cache = self.__dict__.setdefault("_on_device", {})
        if (name, device) not in cache:
            cache[name, device] = {k: torch.as_tensor(v).to(device) for k, v in make().items()}
        return cache[name, device]

    def __getstate__(self):  # device copies stay behind
        state = dict(self.__dict__)
        state.pop("_on_device", None)
        return state

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        factors = self.sample_factors(n, rng)
        return factors, self.sample_observations_from_factors(factors, rng)

    def sample_observations(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.sample(n, rng)[1]

    # index <-> factors: row-major over factor_sizes (the order of the published files)
    def factors_to_index(self, factors: np.ndarray) -> np.ndarray:
        return np.ravel_multi_index(tuple(np.asarray(factors, dtype=np.int64).T), self.factor_sizes)

    def index_to_factors(self, index: np.ndarray) -> np.ndarray:
        return np.stack(np.unravel_index(np.asarray(index, dtype=np.int64), self.factor_sizes), axis=-1)
