"""Rendering on the training device (``paint``), run here with CPU torch: each torch renderer
against its numpy reference on many random factor draws (dSprites also on the images closest to
its shapes' edges, where float32 arithmetic flips pixels), the draws of the random parameters
(the generator ends where numpy's renderer leaves it), the per-image noise, the batches of a run,
the metrics' samples, and the ``dataset.device`` knob."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import FAST, compose

RNG = np.random.default_rng
CPU = torch.device("cpu")

# dSprites images within 1e-7 px (relative, for ellipses) of an edge, or (hearts) a pixel within 1e-9
# rad of a vertex's ray; all found by a search over the whole grid. A float32 renderer gets the
# ellipses 1,5,12,12,16 / 1,4,32,11,21 / 1,5,27,19,16 and the hearts 2,2,14,10,22 / 2,2,25,21,22 /
# 2,5,19,6,19 / 2,5,20,25,19 wrong by a pixel.
HARD = [(0, 4, 2, 1, 24), (0, 4, 2, 7, 1), (0, 4, 37, 30, 24), (1, 5, 19, 0, 8), (1, 5, 20, 31, 23),
        (1, 5, 12, 12, 16), (1, 4, 32, 11, 21), (1, 5, 27, 19, 16), (2, 2, 14, 10, 22), (2, 2, 25, 21, 22),
        (2, 5, 19, 6, 19), (2, 5, 20, 25, 19), (2, 5, 12, 11, 19), (2, 5, 17, 22, 18), (2, 0, 24, 1, 1),
        (2, 5, 24, 1, 1), (2, 0, 15, 30, 1)]


def same_draws(data, factors, seed=5):
    """numpy images and painted images from equal generators, and whether the generators end equal."""
    a, b = RNG(seed), RNG(seed)
    x = data.sample_observations_from_factors(factors, a)
    y = data.render(factors, b, CPU)
    assert y.dtype == torch.float32 and y.shape == x.shape and y.is_contiguous()
    return x, y.numpy(), str(a.bit_generator.state) == str(b.bit_generator.state)


def test_dsprites_paints_every_image_bit_for_bit():
    from dislab.data.dsprites import DSprites

    d = DSprites()
    grid = np.array(list(itertools.product(range(3), range(6), range(40), [0, 31], [5])))  # every sprite, twice
    f = np.concatenate([np.array(HARD), grid, d.sample_factors(2500, RNG(0))])
    x, y, _ = same_draws(d, f)
    assert np.array_equal(x, y) and y.sum() > 50 * len(f)


def test_dsprites_hard_images_need_float64():
    """The guard above can fail: the same code in float32 gets some HARD images wrong."""
    from dislab.data import dsprites as ds

    d = ds.DSprites()
    f = np.array(HARD)
    g32 = {k: torch.as_tensor(v).to(torch.float32 if v.dtype == np.float64 else None) for k, v in d._geom.items()}
    x, y, row0, col0 = ds._frame(torch.from_numpy(f), g32, ds._TORCH)
    ref = d.sample_observations_from_factors(f)[:, 0] > 0
    wrong = [tuple(f[i]) for i in range(len(f)) if not np.array_equal(
        ds._inside(int(f[i, 0]), x[i], y[i], g32, ds._TORCH).numpy(),
        ref[i, int(row0[i]):int(row0[i]) + 28, int(col0[i]):int(col0[i]) + 28])]
    assert len(wrong) >= 4, wrong


def test_colour_and_scream_draw_like_numpy_and_paint_bit_for_bit(tmp_path):
    from dislab.data.color_dsprites import ColorDSprites
    from dislab.data.scream_dsprites import ScreamDSprites

    Image.fromarray(RNG(0).integers(0, 256, (90, 80, 3), dtype=np.uint8)).save(tmp_path / "pic.png")
    for d in (ColorDSprites(), ScreamDSprites(background=tmp_path / "pic.png")):
        f = d.sample_factors(300, RNG(1))
        x, y, same_state = same_draws(d, f)
        assert np.array_equal(x, y) and same_state, type(d).__name__
        assert len(np.unique(y.reshape(300, -1), axis=0)) == 300


def test_noisy_sprite_is_exact_and_noise_is_uniform_with_numpy_s_draws_left_intact():
    from dislab.data._device import uniform
    from dislab.data.dsprites import DSprites
    from dislab.data.noisy_dsprites import NoisyDSprites

    d = NoisyDSprites()
    f = d.sample_factors(64, RNG(1))
    x, y, same_state = same_draws(d, f)
    assert same_state  # the generator moved on as numpy's 64 x 3 x 4096 draws moved it
    sprite = np.broadcast_to(DSprites().sample_observations_from_factors(f) > 0, y.shape)
    assert (y[sprite] == 1).all() and np.array_equal(x == 1, sprite) and np.array_equal(y == 1, sprite)
    keys = d.random_params(f, RNG(5))
    assert np.array_equal(y[~sprite], uniform(torch.from_numpy(keys), (3, 64, 64)).numpy()[~sprite])
    noise = y[~sprite]
    assert np.all(noise * 2**24 == np.round(noise * 2**24))  # numpy's float32 grid
    counts = np.histogram(noise, 16, (0, 1))[0] / len(noise)
    assert np.abs(counts - 1 / 16).max() < 0.002 and 0.499 < noise.mean() < 0.501
    assert not np.array_equal(y, d.render(f, RNG(6), CPU).numpy())  # another generator state, other noise


def test_uniform_is_the_pcg_hash_of_each_element_and_its_image_keys():
    from dislab.data._device import uniform

    def pcg(v):  # Jarzynski & Olano 2020, pcg_hash, in plain integers
        state = (v * 747796405 + 2891336453) % 2**32
        word = (((state >> ((state >> 28) + 4)) ^ state) * 277803737) % 2**32
        return (word >> 22) ^ word

    keys = np.array([[0, 0], [2**32 - 1, 12345], [987654321, 2**31]])
    u = uniform(torch.from_numpy(keys), (2, 3)).numpy()
    want = [[(pcg(pcg(a ^ e) ^ b) >> 8) / 2**24 for e in range(6)] for a, b in keys]
    assert u.dtype == np.float32 and np.array_equal(u.reshape(3, 6), np.array(want, np.float32))
    big = uniform(torch.from_numpy(RNG(0).integers(0, 2**32, (50, 2))), (4096,)).numpy()
    assert abs(np.corrcoef(big[:, :-1].ravel(), big[:, 1:].ravel())[0, 1]) < 0.01  # neighbours independent
    assert abs(np.corrcoef(big[:-1].ravel(), big[1:].ravel())[0, 1]) < 0.01  # and images


@pytest.mark.parametrize("bit_generator", [np.random.PCG64, np.random.PCG64DXSM, np.random.MT19937])
def test_skip_float32_leaves_the_generator_as_drawing_would(bit_generator):
    from dislab.data._device import skip_float32

    for before, count in itertools.product((0, 1, 2, 3), (0, 1, 2, 3, 7, 12288, 12289)):
        a, b = np.random.Generator(bit_generator(5)), np.random.Generator(bit_generator(5))
        a.random(before, dtype=np.float32), b.random(before, dtype=np.float32)
        a.random(count, dtype=np.float32)
        skip_float32(b, count)
        assert str(a.bit_generator.state) == str(b.bit_generator.state), (before, count)
        assert a.random(3, dtype=np.float32).tolist() == b.random(3, dtype=np.float32).tolist()


def test_shapes3d_mixes_its_weight_maps_within_1e6(monkeypatch):
    from dislab.data import shapes3d

    table = RNG(0).random((480, 3, 4096), dtype=np.float32) * 0.6  # sums of three reach past 1: clipped
    monkeypatch.setitem(shapes3d._TABLES, (64, 2), (table, np.ones(480, bool)))
    d = shapes3d.Shapes3D()
    f = d.sample_factors(500, RNG(1))
    x, y, _ = same_draws(d, f)
    assert np.abs(x - y).max() <= 1e-6 and (x == 1).mean() > 0.05 and (x < 0.5).mean() > 0.05


@pytest.mark.parametrize("size,channels", [(16, 3), (64, 1)])
def test_toy_paints_every_point_bit_for_bit(size, channels):
    from dislab.data.toy import Toy

    d = Toy(size=size, channels=channels)
    grid = np.indices(d.factor_sizes).reshape(4, -1).T
    x, y, _ = same_draws(d, grid)
    assert np.array_equal(x, y)


def test_painted_batches_are_the_host_batches_across_chunks_and_resumes(monkeypatch):
    from dislab.data import datamodule
    from dislab.data.color_dsprites import ColorDSprites
    from dislab.data.datamodule import _Batches
    from dislab.data.toy import Toy

    monkeypatch.setattr(datamodule, "RENDER_IMAGES", 24)  # 3 steps of 8 painted together
    for d in (ColorDSprites(), Toy(size=16)):
        for start in (0, 5):
            host = list(itertools.islice(iter(_Batches(d, 8, seed=3, start=start)), 5))
            for prefetch in (0, 2):
                painted = list(itertools.islice(iter(_Batches(d, 8, 3, start, prefetch, device=CPU)), 5))
                pairs = list(zip(host, painted, strict=True))
                assert all(b.device == CPU and b.is_contiguous() and torch.equal(a, b) for a, b in pairs), start


def test_device_knob_resolves_against_the_consumer(monkeypatch):
    from dislab.data._device import check_device, paint_device, resolve
    from dislab.data.dsprites import DSprites
    from dislab.validate import ConfigError, validate

    for bad in ("gpu", "cuda:x", "CPU", None, 0):
        with pytest.raises(ValueError, match="dataset.device=.* is not allowed; use auto, cpu, cuda or cuda:<index>"):
            check_device(bad)
        with pytest.raises(ValueError, match="is not allowed"):
            DSprites(device=bad)
    with pytest.raises(ConfigError, match=r"^dataset.device='gpu' is not allowed; dataset.device must be auto, cpu, "
                                          r"cuda or cuda:<index> \(a GPU only where one is visible\)"):
        validate(compose(["dataset.device=gpu"]))
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="dataset.device='cuda' is not allowed; .*a GPU only where"):
            validate(compose(["dataset.device=cuda"]))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    want = {("auto", "cpu"): "cpu", ("auto", "cuda:1"): "cuda:1", ("cuda", "cuda:1"): "cuda:1",
            ("cuda", "cpu"): "cuda", ("cpu", "cuda:0"): "cpu", ("cuda:2", "cuda:0"): "cuda:2"}
    for (knob, consumer), device in want.items():
        assert resolve(knob, torch.device(consumer)) == torch.device(device)
    d = DSprites(device="auto")
    assert paint_device(d, torch.device("cuda:1")) == torch.device("cuda:1") and paint_device(d, CPU) is None
    d.paints = False  # a data set read from files on the host: rendered there, copied by Lightning
    assert paint_device(d, torch.device("cuda:1")) is None
    assert paint_device(DSprites(device="cpu"), torch.device("cuda:1")) is None
    from types import SimpleNamespace

    from dislab.data.datamodule import GroundTruthDataModule

    dm = GroundTruthDataModule(DSprites(), 8)
    assert dm.render_device() is None  # no trainer yet: the host
    dm.trainer = SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device("cuda:0")))  # trainer=gpu
    assert dm.render_device() == torch.device("cuda:0")
    assert GroundTruthDataModule(DSprites(), 8, device="cpu").render_device() is None


def _paint_on_cpu(monkeypatch):
    """Make every consumer paint on the CPU, as it would on a GPU."""
    from dislab import evaluate
    from dislab.data import datamodule
    from dislab.metrics import _sampling

    paint = lambda data, consumer: CPU if data.paints else None  # noqa: E731
    for module in (datamodule, _sampling, evaluate):
        monkeypatch.setattr(module, "paint_device", paint)


def test_metric_samples_drawn_for_the_device_are_numpy_s(monkeypatch, tmp_path):
    from dislab.data.noisy_dsprites import NoisyDSprites
    from dislab.data.scream_dsprites import ScreamDSprites
    from dislab.metrics import _sampling
    from dislab.metrics._sampling import _CACHE, encode_factors, sample_codes

    class Model:  # represent() is a bound method of something with a device, as a model's is
        device = CPU

        def represent(self, x):
            self.types.add(type(x))
            x = x.numpy() if isinstance(x, torch.Tensor) else x
            return x.reshape(len(x), -1)[:, ::97]

    monkeypatch.setattr(_sampling, "RENDER_BATCH", 10)  # encode_factors renders (and draws) 10 at a time
    Image.fromarray(RNG(0).integers(0, 256, (90, 80, 3), dtype=np.uint8)).save(tmp_path / "pic.png")
    for d in (ScreamDSprites(background=tmp_path / "pic.png"), NoisyDSprites()):
        out = {}
        for painted in (False, True):
            with monkeypatch.context() as patch:
                if painted:
                    _paint_on_cpu(patch)
                _CACHE.clear()
                m, rng = Model(), RNG(3)
                m.types = set()
                codes, factors = sample_codes(d, m.represent, 100, rng, batch_size=16, encode_batch=40)
                enc = encode_factors(d, m.represent, factors[:70], rng, encode_batch=32)
            out[painted] = codes, factors, enc, rng.random()
            assert (torch.Tensor in m.types) == painted
        (c0, f0, e0, r0), (c1, f1, e1, r1) = out[False], out[True]
        assert np.array_equal(f0, f1) and r0 == r1  # the same factors; the generator ends alike
        if isinstance(d, ScreamDSprites):
            assert np.array_equal(c0, c1) and np.array_equal(e0, e1)


@pytest.mark.parametrize("model", ["beta_vae", "ada_gvae"])  # ada_gvae: pairs painted on the device
def test_a_run_painting_its_batches_and_samples_gives_the_numpy_run_s_results(model, run_fast, tmp_path, monkeypatch):
    a, dir_a = run_fast(f"model={model}", run_dir=tmp_path / "a")
    _paint_on_cpu(monkeypatch)
    b, dir_b = run_fast(f"model={model}", run_dir=tmp_path / "b")
    assert a == b
    wa, wb = (torch.load(d / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"] for d in (dir_a, dir_b))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    ra, rb = np.load(dir_a / "representation.npz"), np.load(dir_b / "representation.npz")
    assert np.array_equal(ra["means"], rb["means"]) and np.array_equal(ra["kl"], rb["kl"])


def test_models_take_tensors_as_they_take_arrays():
    from hydra.utils import instantiate

    from dislab.load import build_model

    cfg = compose(FAST)
    data = instantiate(cfg.dataset)
    model = build_model(cfg, data)
    x = data.sample_observations(8, RNG(0))
    assert np.array_equal(model.represent(x), model.represent(torch.from_numpy(x)))
    mu, lv = model.encode(torch.from_numpy(x).double())
    assert mu.dtype == np.float32 and np.array_equal(mu, model.encode(x)[0])


@pytest.mark.gpu
def test_gpu_paints_as_numpy_and_the_batches_never_wait_for_the_host():
    """On a GPU: all 737,280 dSprites images bit for bit, the other sets as on the CPU, and the
    painted batches of a run without a host-device synchronisation."""
    from dislab.data.color_dsprites import ColorDSprites
    from dislab.data.datamodule import _Batches
    from dislab.data.dsprites import DSprites
    from dislab.data.noisy_dsprites import NoisyDSprites
    from dislab.data.shapes3d import Shapes3D
    from dislab.data.toy import Toy

    gpu = torch.device("cuda")
    d = DSprites()
    for s in range(0, len(d), 65536):
        f = d.index_to_factors(np.arange(s, min(len(d), s + 65536)))
        assert torch.equal(d.render(f, None, gpu).cpu(), torch.from_numpy(d.sample_observations_from_factors(f)))
    for d, tol in ((ColorDSprites(), 0), (Toy(), 0), (Shapes3D(), 1e-6)):
        f = d.sample_factors(1024, RNG(0))
        x = d.sample_observations_from_factors(f, RNG(1))
        assert np.abs(d.render(f, RNG(1), gpu).cpu().numpy() - x).max() <= tol, type(d).__name__
    d = NoisyDSprites()  # its noise is integer arithmetic: the same on every device
    f = d.sample_factors(256, RNG(0))
    assert torch.equal(d.render(f, RNG(1), gpu).cpu(), d.render(f, RNG(1), CPU))
    batches = iter(_Batches(ColorDSprites(), 64, seed=0, start=0, prefetch=2, device=gpu))
    next(batches)  # tables on the device once
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(40):
            assert next(batches).device.type == "cuda"
    finally:
        torch.cuda.set_sync_debug_mode("default")
