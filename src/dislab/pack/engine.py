"""Many models, one step: a packed group's models trained together, each as its own single run would be.

The group's models are split into *lanes*: the models of one method with equal settings except the method's
``packable`` ones (``beta``, ``gamma``, ...), which become tensors of the lane's values. A lane's parameters are
stacked along a leading model axis (``torch.func.stack_module_state``) and its loss terms are computed for all
its models at once by ``torch.func.vmap`` over ``torch.func.functional_call`` of the method's own ``losses``
(the code a single run uses). One step: every lane's losses, one backward through their sum (each model's
gradient depends on its own loss only), one Adam update of all stacked parameters (``StackedAdam``: Adam is
elementwise, so it equals one Adam per model); a method with a discriminator on the codes (FactorVAE) then
steps its discriminators the same way, on the step's detached codes, as its single run does.

Each model draws what its single run draws: its batches come from its own seed (the caller's), and its step's
random tensors (``VAE.draws``: the reparameterisation noise, FactorVAE's permutation) from its own generator,
which starts where the single run's global generator stands when its training begins (``exact=True``, the
default on a CPU). On a GPU ``exact=False`` draws the whole lane's tensors in one call from one generator for
the group (statistically the same, not the single runs' numbers), instead of one small draw per model.

A model whose step is not finite (its loss or any of its gradients) is left as it was: its weights, its
optimizer state and its step count do not change, and the others' are not touched (``ok`` per model). The
caller reads the flags (``bad``) when it acts on them and may stop a model (``active``).
"""

from __future__ import annotations

import copy

import torch
from torch.func import functional_call, stack_module_state, vmap


class StackedAdam:
    """Adam (Kingma & Ba 2015, Algorithm 1; torch.optim.Adam's update with ``amsgrad=False``, ``maximize=False``,
    L2 ``weight_decay`` added to the gradient) over tensors stacked along a leading model axis: the learning
    rate and the step count are per model, and a model whose ``ok`` is False is not updated at all (weights,
    moments and step count stay as they were)."""

    def __init__(self, params: list[torch.Tensor], lr: torch.Tensor, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        self.params, self.lr = params, lr
        self.beta1, self.beta2 = (float(b) for b in betas)
        self.eps, self.weight_decay = float(eps), float(weight_decay)
        self.exp_avg = [torch.zeros_like(p) for p in params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in params]
        self.step_count = torch.zeros(len(lr), dtype=lr.dtype, device=lr.device)

    @torch.no_grad()
    def step(self, ok: torch.Tensor) -> None:
        """One update of the models where ``ok`` (k,) is True."""
        self.step_count += ok.to(self.step_count.dtype)
        t = self.step_count.clamp(min=1)
        step_size = torch.where(ok, self.lr / (1 - self.beta1 ** t), 0)
        bc2_sqrt = (1 - self.beta2 ** t).sqrt()
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq, strict=True):
            shape = (-1,) + (1,) * (p.dim() - 1)
            keep = ok.view(shape)
            g = torch.where(keep, p.grad, 0)
            if self.weight_decay:
                g = g + self.weight_decay * p
            m.copy_(torch.where(keep, m.lerp(g, 1 - self.beta1), m))
            v.copy_(torch.where(keep, v * self.beta2 + (1 - self.beta2) * g * g, v))
            denom = v.sqrt() / bc2_sqrt.view(shape) + self.eps
            p.copy_(torch.where(keep, p - step_size.view(shape) * m / denom, p))

    def state(self, i: int, names: list[str]) -> dict:
        """Model ``i``'s optimizer state (a checkpoint's): step and the two moments of each named tensor."""
        return {"step": float(self.step_count[i]),
                "exp_avg": {n: m[i].detach().cpu() for n, m in zip(names, self.exp_avg, strict=True)},
                "exp_avg_sq": {n: v[i].detach().cpu() for n, v in zip(names, self.exp_avg_sq, strict=True)}}

    @torch.no_grad()
    def load(self, i: int, names: list[str], state: dict) -> None:
        self.step_count[i] = state["step"]
        for n, m, v in zip(names, self.exp_avg, self.exp_avg_sq, strict=True):
            m[i].copy_(state["exp_avg"][n])
            v[i].copy_(state["exp_avg_sq"][n])


class _Call(torch.nn.Module):
    """What a lane maps over its models: the method's own code on one model's weights and settings."""

    def __init__(self, model):
        super().__init__()
        self.m = model

    def forward(self, x, draws: dict, hyper: dict, step, part: str = "model"):
        m = self.m
        if part == "encode":
            return m.net.encode(x)
        saved = {n: m.__dict__[n] for n in hyper}
        m.__dict__.update(hyper)
        m.pack_step = step
        try:
            if part == "discriminator":
                return m.discriminator_loss(x, u=draws.get("u"))
            terms = m.losses(x, eps=draws.get("eps"))
            return (terms, m._codes) if hasattr(m, "discriminator") else terms
        finally:
            m.__dict__.update(saved)
            m.pack_step = None


def lane_key(model) -> tuple:
    """Models with equal keys share a lane: the method and its settings, less those it packs."""
    plain = (int, float, str, bool, tuple, type(None))
    settings = sorted((k, v) for k, v in vars(model).items()
                      if not k.startswith("_") and isinstance(v, plain) and k not in model.packable)
    return type(model), tuple(settings)


class Lane:
    """The models of one method in a group (indices ``members`` of the group)."""

    def __init__(self, models: list, members: list[int], lrs: list[float], opt: dict, device, dtype):
        self.members, self.models = members, models
        template = copy.deepcopy(models[0]).to(device=device, dtype=dtype)
        self.call = _Call(template)
        self.adversarial = hasattr(template, "discriminator")
        for m in models:
            m.to(device=device, dtype=dtype)
        params, buffers = stack_module_state([_Call(m) for m in models])
        self.params = {k: v.detach().requires_grad_() for k, v in params.items()}
        self.buffers = buffers
        self.hyper = {n: torch.tensor([float(getattr(m, n)) for m in models], dtype=dtype, device=device)
                      for n in template.packable if len({getattr(m, n) for m in models}) > 1}
        self.ae_names = [k for k in self.params if not k.startswith("m.discriminator.")]
        self.d_names = [k for k in self.params if k.startswith("m.discriminator.")]
        lr = torch.tensor(lrs, dtype=dtype, device=device)
        self.opt = StackedAdam([self.params[k] for k in self.ae_names], lr, **opt)
        if self.adversarial:
            d_lr = torch.tensor([m.disc_lr for m in models], dtype=dtype, device=device)
            self.d_opt = StackedAdam([self.params[k] for k in self.d_names], d_lr, betas=template.disc_betas)
        self._loss = vmap(self._one, in_dims=(0, 0, 0, 0, 0, None), randomness="error")
        self._encode = vmap(self._one_encode, in_dims=(0, 0, None), randomness="error")
        self._d_loss = vmap(self._one_d, in_dims=(0, 0, 0, 0, None), randomness="error")

    def _one(self, params, buffers, hyper, x, draws, step):
        return functional_call(self.call, (params, buffers), (x, draws, hyper, step))

    def _one_encode(self, params, buffers, x):
        return functional_call(self.call, (params, buffers), (x, {}, {}, None, "encode"))

    def _one_d(self, params, buffers, codes, draws, step):
        return functional_call(self.call, (params, buffers), (codes, draws, {}, step, "discriminator"))

    def losses(self, x: torch.Tensor, draws: dict, step: torch.Tensor):
        """The loss terms (each (k,)) of the lane's models on their batches ``x`` (k, B, ...), and the codes
        (k, B, D) their discriminators train on (None without one)."""
        params = {k: (v.detach() if k in self.d_names else v) for k, v in self.params.items()}
        out = self._loss(params, self.buffers, self.hyper, x, draws, step)
        return out if self.adversarial else (out, None)

    def d_loss(self, codes: torch.Tensor, draws: dict, step: torch.Tensor) -> torch.Tensor:
        params = {k: self.params[k] for k in self.d_names}
        return self._d_loss(params, self.buffers, codes, draws, step)

    def state_dict(self, i: int) -> dict:
        """Model ``i`` of the lane as its own module's ``state_dict`` (keys without the lane's prefix)."""
        out = {k[2:]: v[i].detach().cpu().clone() for k, v in {**self.params, **self.buffers}.items()}
        return out

    @torch.no_grad()
    def load_state_dict(self, i: int, state: dict) -> None:
        for k, v in {**self.params, **self.buffers}.items():
            v[i].copy_(state[k[2:]])

    @torch.no_grad()
    def write_back(self) -> None:
        """Each model's module holds its stacked weights (for evaluation and pictures)."""
        for i, m in enumerate(self.models):
            m.load_state_dict(self.state_dict(i))


class SharedEncoder:
    """The group's encoders run together: when model i's evaluation encodes a batch x (``encode``/``represent``,
    numpy or tensor), every model of the group encodes it in one mapped pass, and the others' answers wait for
    their own evaluations, which (same metrics, same ``eval_seed``) ask for the same batches in the same order.
    A model whose request is not the next waiting batch (checked by a digest of x) encodes alone."""

    def __init__(self, pack: "Pack"):
        self.pack = pack
        self.waiting: list[list] = [[] for _ in range(pack.k)]
        self.passes = 0  # mapped passes computed (for tests)

    @staticmethod
    def _digest(x) -> tuple:
        import hashlib

        import numpy as np

        if isinstance(x, torch.Tensor):
            flat = x.detach().reshape(-1).double()
            w = torch.arange(1, flat.numel() + 1, device=flat.device, dtype=torch.float64)
            return tuple(x.shape), float(flat.sum()), float((flat * w).sum())
        a = np.ascontiguousarray(x)
        return a.shape, hashlib.blake2b(a.tobytes(), digest_size=16).hexdigest()

    def encode(self, i: int, x):
        import numpy as np

        key = self._digest(x)
        queue = self.waiting[i]
        if queue and queue[0][0] == key:
            return queue.pop(0)[1]
        queue.clear()  # another sequence than the one encoded for it: this model goes alone from here
        p = self.pack
        t = (x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))).to(p.device, p.dtype)
        self.passes += 1
        mine = None
        with torch.inference_mode():
            for lane in p.lanes:
                mu, lv = lane._encode(lane.params, lane.buffers, t)
                mu, lv = mu.cpu().numpy(), lv.cpu().numpy()
                for j, m in enumerate(lane.members):
                    if m == i:
                        mine = (mu[j], lv[j])
                    else:
                        self.waiting[m].append((key, (mu[j], lv[j])))
        return mine

    def install(self, models: list) -> None:
        """Each model's ``encode`` and ``represent`` go through the group (``uninstall`` undoes it)."""
        for i, m in enumerate(models):
            m.__dict__["encode"] = lambda x, i=i: self.encode(i, x)
            m.__dict__["represent"] = lambda x, i=i: self.encode(i, x)[0]

    @staticmethod
    def uninstall(models: list) -> None:
        for m in models:
            m.__dict__.pop("encode", None)
            m.__dict__.pop("represent", None)


def _finite(t: torch.Tensor) -> torch.Tensor:
    """(k,) whether each model's slice of ``t`` (k, ...) is finite."""
    return t.isfinite().reshape(len(t), -1).all(1)


class Pack:
    """``models``: the group's models, built as their single runs build them (weights initialised); ``gens``:
    each model's generator for its step's draws (``exact``), or None; ``lrs``: each model's learning rate;
    ``opt``: Adam's other settings (``betas``, ``eps``, ``weight_decay``), equal across the group."""

    def __init__(self, models: list, lrs: list[float], opt: dict, device="cpu", dtype=torch.float32,
                 gens: list[torch.Generator] | None = None, seed: int = 0):
        self.device, self.dtype, self.k = torch.device(device), dtype, len(models)
        self.gens = gens
        self.shared_gen = None if gens is not None else torch.Generator(self.device).manual_seed(seed)
        by_key: dict = {}
        for i, m in enumerate(models):
            by_key.setdefault(lane_key(m), []).append(i)
        self.lanes = [Lane([models[i] for i in idx], idx, [lrs[i] for i in idx], opt, self.device, dtype)
                      for idx in by_key.values()]
        self.active = torch.ones(self.k, dtype=torch.bool, device=self.device)
        self.bad = torch.zeros(self.k, dtype=torch.long, device=self.device)  # non-finite steps per model
        self.first_bad = torch.full((self.k,), -1, dtype=torch.long, device=self.device)
        self.step_index = 0
        self.cudagraphs = False
        self._terms: list[tuple[Lane, dict]] = []  # the last step's terms, per lane (each (k_lane,))

    def compile(self, mode: str = "default") -> None:
        """torch.compile each lane's loss (forward, and through AOTAutograd its backward) and optimizer steps:
        the whole step but its draws and its finiteness flags. ``reduce-overhead`` and ``max-autotune`` replay
        them as CUDA graphs on a GPU."""
        opts = {"mode": mode, "dynamic": False}
        for lane in self.lanes:
            lane._loss = torch.compile(lane._loss, **opts)
            lane.opt.step = torch.compile(lane.opt.step, **opts)
            if lane.adversarial:
                lane._d_loss = torch.compile(lane._d_loss, **opts)
                lane.d_opt.step = torch.compile(lane.d_opt.step, **opts)
        self.cudagraphs = self.device.type == "cuda" and mode in ("reduce-overhead", "max-autotune")

    def _draws(self, lane: Lane, b: int) -> dict:
        m = lane.call.m
        if self.gens is not None:
            each = [m.draws(b, generator=self.gens[i], device=self.device, dtype=self.dtype) for i in lane.members]
            return {k: torch.stack([d[k] for d in each]) for k in (each[0] if each else {})}
        k = len(lane.members)
        whole = m.draws(b * k, generator=self.shared_gen, device=self.device, dtype=self.dtype)
        return {name: t.reshape(k, b, *t.shape[1:]) for name, t in whole.items()}

    def step(self, x: torch.Tensor) -> None:
        """One training step of every model on its batch: ``x`` (k, B, ...) in the group's order."""
        if self.cudagraphs:  # a new iteration: the previous step's graph outputs may be overwritten
            torch.compiler.cudagraph_mark_step_begin()
        step = torch.tensor(self.step_index, device=self.device)
        per_lane = []
        total = 0
        for lane in self.lanes:
            draws = self._draws(lane, x.shape[1])
            xs = x if len(lane.members) == self.k else x[lane.members]
            terms, codes = lane.losses(xs, draws, step)
            per_lane.append((lane, draws, terms, codes))
            total = total + terms["loss"].sum()
        for lane in self.lanes:
            for p in lane.params.values():
                p.grad = None
        total.backward()
        ok = self.active.clone()
        for lane, _, terms, _ in per_lane:
            fine = _finite(terms["loss"])
            for name in lane.ae_names:
                fine &= _finite(lane.params[name].grad)
            ok[lane.members] &= fine
        for lane, _, _, _ in per_lane:
            lane.opt.step(ok[lane.members])
        for lane, draws, terms, codes in per_lane:
            if lane.adversarial:
                d = lane.d_loss(codes, draws, step)
                terms["disc_loss"] = d
                d.sum().backward()
                fine = _finite(d)
                for name in lane.d_names:
                    fine &= _finite(lane.params[name].grad)
                sub = ok[lane.members] & fine
                lane.d_opt.step(sub)
                ok[lane.members] = sub
        self._terms = [(lane, {k: v.detach() for k, v in terms.items()}) for lane, _, terms, _ in per_lane]
        failed = self.active & ~ok
        self.bad += failed
        self.first_bad = torch.where(failed & (self.first_bad < 0), self.step_index, self.first_bad)
        self.step_index += 1

    def terms(self) -> list[dict[str, float]]:
        """Each model's loss terms of the last step, read from the device (one read per lane)."""
        out: list[dict[str, float]] = [{} for _ in range(self.k)]
        for lane, terms in self._terms:
            names = list(terms)
            values = torch.stack([terms[n].float() for n in names], 1).tolist()
            for i, row in zip(lane.members, values, strict=True):
                out[i] = dict(zip(names, row, strict=True))
        return out

    def lane_of(self, i: int) -> tuple[Lane, int]:
        for lane in self.lanes:
            if i in lane.members:
                return lane, lane.members.index(i)
        raise IndexError(i)
