"""The training step: Lightning's loop trains exactly what a bare PyTorch loop trains, bf16 autocast
covers the network and not the loss terms and the compile mode reaches
torch.compile (the progress bar: test_console.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import FAST, compose

BARE = [o for o in FAST if not o.lstrip("+").startswith(("steps=", "metrics"))] + [
    "steps=3", "metrics=none", "metrics_every=0", "eval_untrained=false", "num_decomposition=0", "threads=1"]


@pytest.mark.parametrize("policy", ["stop", "skip"])
def test_framework_trains_bit_for_bit_what_a_bare_loop_trains(tmp_path, policy):
    """Same seed, same batches (batch t from default_rng([seed, t])), same noise: Lightning's step,
    the NaN guard's check (and, with skip, the fused Adam's found_inf) change no bit of the weights."""
    import pytorch_lightning as pl
    from hydra.utils import instantiate

    from dislab.load import build_model
    from dislab.train import run

    cfg = compose([*BARE, "model=beta_tcvae", f"nan_policy={policy}", f"run_dir={tmp_path}"])
    run(cfg)
    trained = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]

    pl.seed_everything(cfg.seed, verbose=False)
    data = instantiate(cfg.dataset)
    model = build_model(cfg, data)
    opt = model.configure_optimizers()
    for t in range(cfg.steps):
        x = torch.from_numpy(data.sample_observations(cfg.batch_size, np.random.default_rng([cfg.seed, t])))
        loss = model.losses(x)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    bare = model.state_dict()
    assert trained.keys() == bare.keys()
    assert all(torch.equal(trained[k], bare[k]) for k in bare)


@pytest.mark.parametrize("model", ["dip_vae_i", "beta_tcvae"])
def test_loss_terms_are_float32_under_bf16_autocast(model):
    """With the network's outputs fixed, autocast must not change a single loss term: the terms
    (DIP's covariance is a matrix product, which autocast would run in bf16) are computed in float32."""
    from hydra.utils import instantiate

    from dislab.load import build_model

    cfg = compose([*FAST, f"model={model}"])
    data = instantiate(cfg.dataset)
    m = build_model(cfg, data)
    gen = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(16, 10, generator=gen), torch.randn(16, 10, generator=gen) * 0.3
    logits = torch.randn(16, *data.x_shape, generator=gen)
    m.net.encode = lambda x: (mu, logvar)
    m.net.decode = lambda z: logits + z.sum() * 0  # depends on z, as a decoder does
    x = torch.from_numpy(data.sample_observations(16, np.random.default_rng(0)))
    torch.manual_seed(1)
    plain = m.losses(x)
    torch.manual_seed(1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = m.losses(x)
    for k in plain:
        assert mixed[k].dtype == torch.float32 and torch.allclose(mixed[k], plain[k], rtol=1e-6, atol=0), k


def test_bf16_precision_runs_the_step_under_autocast_and_keeps_float32_weights(tmp_path):
    import pytorch_lightning as pl

    from dislab.train import run

    seen = []

    class Probe(pl.Callback):
        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"),
                         {v.dtype for v in pl_module.last_terms.values()}))

    metrics = run(compose([*FAST, "model=beta_tcvae", "+trainer.precision=bf16-mixed", f"run_dir={tmp_path}"]),
                  callbacks=(Probe(),))
    assert seen and all(s == (True, torch.bfloat16, {torch.float32}) for s in seen)
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert 0 <= metrics["mig"] <= 1
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in state.values())


def test_compile_compiles_the_losses_with_their_backward_and_the_optimizer_update(tmp_path):
    """A real compiled run (inductor): Dynamo has traced the loss function (forward and backward through
    AOTAutograd) before the first optimizer step and the optimizer's update at it, and nothing after (no
    recompiles); the NaN guard still sees the gradients and skips a step made non-finite (nan_policy=skip);
    the losses equal the eager run's; global_step and the checkpoint's names are the eager run's."""
    import csv

    import pytorch_lightning as pl
    from torch._dynamo.utils import counters

    from dislab.train import run

    def graphs():
        return counters["stats"]["unique_graphs"]

    class Probe(pl.Callback):
        def __init__(self):
            self.seen = []

        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            grads = [p.grad is not None for g in optimizer.param_groups for p in g["params"]]
            self.seen.append(("opt", trainer.global_step, graphs(), all(grads),
                              counters["aot_autograd"]["total"]))

        def on_train_batch_end(self, trainer, *args):
            self.seen.append(("end", trainer.global_step, graphs()))

        def on_after_backward(self, trainer, pl_module):
            if trainer.global_step == 1:  # a non-finite gradient: the guard must skip this step
                next(pl_module.net.parameters()).grad.view(-1)[0] = float("nan")

    losses, states, seen = {}, {}, {}
    for compiled in (True, False):
        torch._dynamo.reset()
        counters.clear()
        probe, d = Probe(), tmp_path / str(compiled)
        run(compose([*BARE, "model=beta_tcvae", f"compile={compiled}", "nan_policy=skip",
                     "+trainer.log_every_n_steps=1", f"run_dir={d}"]), callbacks=(probe,))
        losses[compiled] = [float(r["train/loss"]) for r in csv.DictReader(open(d / "history.csv"))
                            if r.get("train/loss")]
        states[compiled] = torch.load(d / "checkpoints" / "last.ckpt", weights_only=True)
        seen[compiled] = probe.seen
    assert [s[:2] for s in seen[True]] == [("opt", 0), ("end", 1), ("opt", 1), ("end", 2), ("opt", 2), ("end", 3)]
    assert graphs() == 0  # the eager run traced nothing
    (_, _, loss_graphs, grads, aot), (_, _, after_step, *_) = seen[True][:2]
    assert loss_graphs >= 1 and aot >= 1 and grads  # the losses, compiled with their backward; gradients for the guard
    assert after_step > loss_graphs  # the optimizer's update
    assert all(s[2] == after_step for s in seen[True][2:])  # traced once: no recompiles
    assert losses[True] == pytest.approx(losses[False], rel=1e-5) and len(losses[True]) == 3
    assert states[True]["global_step"] == states[False]["global_step"] == 3
    assert states[True]["state_dict"].keys() == states[False]["state_dict"].keys()
    assert all(torch.isfinite(v).all() for v in states[True]["state_dict"].values())
    assert states[True]["callbacks"]["NanGuard"]["skipped"] == states[False]["callbacks"]["NanGuard"]["skipped"] == 1


def test_compile_mode_reaches_the_step_and_marks_cuda_graph_steps():
    from hydra.utils import instantiate

    from dislab.load import build_model

    for mode, graphs in (("default", False), ("reduce-overhead", True), ("max-autotune-no-cudagraphs", False)):
        cfg = compose([*FAST, "compile=true", f"compile_mode={mode}"])
        model = build_model(cfg, instantiate(cfg.dataset), compile=True)
        assert model.compile_mode == mode and model.cudagraphs == graphs
        assert model.compiled("losses", model.losses) is model.compiled("losses", model.losses)  # made once
    assert build_model(cfg, instantiate(cfg.dataset)).compile_mode is None


def test_a_checkpoint_from_the_automatic_loop_resumes_at_its_step(tmp_path):
    """Checkpoints written before the step was manual count steps in Lightning's automatic loop."""
    from dislab.train import run

    over = [*BARE, "model=beta_vae", "checkpoint_every=2", f"run_dir={tmp_path}"]
    run(compose([*over, "steps=2"]))
    path = tmp_path / "checkpoints" / "last.ckpt"
    state = torch.load(path, weights_only=True)
    loops = state["loops"]["fit_loop"]
    manual = loops["epoch_loop.manual_optimization.optim_step_progress"]
    loops["epoch_loop.automatic_optimization.optim_progress"]["optimizer"]["step"] = {
        k: dict(manual[k]) for k in ("total", "current")}
    manual.update(total={"ready": 0, "completed": 0}, current={"ready": 0, "completed": 0})
    torch.save(state, path)
    (tmp_path / "metrics.json").unlink()
    run(compose([*over, "steps=5", "extend=true"]))
    state = torch.load(path, weights_only=True)
    assert state["global_step"] == 5  # three more steps, not five
    assert all(int(s["step"]) == 5 for s in state["optimizer_states"][0]["state"].values())
