"""Variational autoencoder (Kingma & Welling 2014, "Auto-Encoding Variational Bayes", eq. 3 & 10)
and the base LightningModule every method subclasses.

loss = -E_q log p(x|z) + regularizer(KL, mu, logvar, z), where the reconstruction term is summed
over pixels and averaged over the batch, and KL = KL(q(z|x) || N(0, I)) summed over latents and
averaged over the batch (closed form). A method overrides ``regularizer`` only; the plain VAE's
regulariser is the KL itself.

Weakly-supervised methods (``pairs`` set: the data module's pair-sampler options) train on pairs:
a batch is (images (B, 2, C, H, W), changed factors (B, K)); both images are encoded, the method's
``pair_posteriors`` replaces the latents it takes as shared by an average of the two posteriors,
and the loss is the same sum over the 2B images' posteriors, averaged: recon = (recon1 + recon2) / 2
and KL = (KL1 + KL2) / 2 (disentanglement_lib ``methods/weak/weak_vae.py``).

The shared bases: ``PairVAE`` (the weakly-supervised methods) and ``CodeDiscriminatorVAE`` (FactorVAE and AAE: a
discriminator on the codes, its training step and optimizers).
"""

from __future__ import annotations

import contextlib
from functools import partial

import numpy as np
import pytorch_lightning as pl
import torch

from dislab.objectives.gaussian import gaussian_kl
from dislab.objectives.recon import RECON_LOSSES, reconstruction_loss
from dislab.objectives.weak import adaptive_changed, labelled_changed, pair_kl, share


def _float32(device_type: str):
    """Autocast off (a float32 region) where it is on; nothing otherwise."""
    if torch.is_autocast_enabled(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


def _wide(t: torch.Tensor) -> torch.Tensor:
    """A half-precision tensor (bf16 autocast's outputs) in float32; float32 and float64 as they are."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


#: attributes set on every training step (Lightning's hook bookkeeping, the terms the NaN guard names,
#: a discriminator's codes): plain values, never a parameter, buffer or module
_PER_STEP_ATTRS = frozenset({"_current_fx_name", "last_terms", "_codes"})


class VAE(pl.LightningModule):
    #: whether z is sampled from q(z|x) during training (False: deterministic autoencoder)
    stochastic = True
    #: a weakly-supervised method's pair-sampler options (``dislab.data.pairs.PairSampler``); None: single images
    pairs: dict | None = None
    #: the numeric settings that may differ between the models of one packed group (``dislab.pack``): each
    #: becomes a tensor of the group's values; every other setting of the method must be equal within a group
    packable: tuple[str, ...] = ()
    #: why a packed group cannot hold this method (None: it can)
    pack_refusal: str | None = None
    #: the step a packed group is taking (``dislab.pack`` sets it); None: Lightning's ``global_step``
    pack_step = None

    def current_step(self):
        """The training step being taken: Lightning's ``global_step``, or a packed group's (a 0-d tensor)."""
        return self.global_step if self.pack_step is None else self.pack_step

    def __setattr__(self, name, value):
        """``nn.Module.__setattr__`` checks every value against parameters, buffers and modules (with
        Python-level isinstance hooks); Lightning sets ``_current_fx_name`` twice around every hook
        call, ~2 % of a tiny network's step (py-spy). These names skip the checks."""
        if name in _PER_STEP_ATTRS:
            self.__dict__[name] = value
        else:
            super().__setattr__(name, value)

    def __init__(self, net: torch.nn.Module, optimizer: partial | None = None, recon: str = "bernoulli",
                 dataset_size: int | None = None):
        super().__init__()
        if recon not in RECON_LOSSES:
            raise ValueError(f"recon={recon!r} is not a reconstruction loss; allowed: {', '.join(RECON_LOSSES)}")
        self.net = net
        self.optimizer_factory = optimizer or partial(torch.optim.Adam, lr=1e-4)
        self.recon = recon
        self.dataset_size = dataset_size
        self.automatic_optimization = False  # the lean step below (training_step)
        self.cudagraphs = False  # set by build_model when the step is compiled into CUDA graphs
        #: set by build_model (``compile=true``): the torch.compile mode the training step runs in; None: eager
        self.compile_mode = None
        self._compiled = {}  # name -> the compiled function (``compiled``)

    # -- the hook --------------------------------------------------------------------------
    def regularizer(self, kl, mu, logvar, z) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Return (regulariser loss, extra scalars to log). ``kl`` is the batch-mean KL summed
        over latents; ``mu``, ``logvar``, ``z`` are (B, D)."""
        return kl, {}

    def pair_posteriors(self, mu, logvar, changed) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Pair methods: the posteriors (B, 2, D) of each pair with its shared latents averaged, and the
        mean number of latents taken as shared per pair (logged). ``changed``: (B, K) changed factors."""
        raise NotImplementedError(f"{type(self).__name__} does not train on pairs")

    # -- training --------------------------------------------------------------------------
    def draws(self, b: int, generator: torch.Generator | None = None, device=None, dtype=None) -> dict:
        """The random tensors one training step of ``b`` images uses, drawn in the order the step uses them
        (the global torch generator when ``generator`` is None): the reparameterisation noise ``eps`` (b, z_dim).
        A packed group (``dislab.pack``) draws each model's from that model's own generator."""
        return {"eps": torch.randn(b, self.net.z_dim, generator=generator, device=device, dtype=dtype)} \
            if self.stochastic else {}

    def losses(self, x: torch.Tensor, changed: torch.Tensor | None = None, eps: torch.Tensor | None = None
               ) -> dict[str, torch.Tensor]:
        """The loss terms of a batch of images, or (with ``changed``) of pairs x (B, 2, C, H, W); ``eps``: the
        reparameterisation noise (``draws``; None: drawn here from the global generator). Under
        bf16 autocast (``trainer.precision=bf16-mixed``) only the network runs in bf16: its outputs are
        taken to float32, and z, the pair averaging, the reconstruction loss, the KL and the regulariser
        are computed in float32 with autocast off (no-ops without autocast)."""
        pairs = {}
        b = len(x)
        if changed is not None:
            x = x.flatten(0, 1)
        mu, logvar = (_wide(t) for t in self.net.encode(x))
        if changed is not None:
            with _float32(x.device.type):
                mu, logvar, pairs["shared"] = self.pair_posteriors(mu.reshape(b, 2, -1), logvar.reshape(b, 2, -1),
                                                                   changed)
            mu, logvar = mu.flatten(0, 1), logvar.flatten(0, 1)
        if self.stochastic:
            z = mu + (torch.randn_like(mu) if eps is None else eps) * torch.exp(0.5 * logvar)
        else:
            z = mu
        logits = _wide(self.net.decode(z))
        with _float32(x.device.type):
            recon = reconstruction_loss(logits, x, self.recon)
            kl = gaussian_kl(mu, logvar).sum(1).mean()
            reg, logs = self.regularizer(kl, mu, logvar, z)
        terms = {"loss": recon + reg, "recon": recon, "kl": kl, "elbo": -(recon + kl), **pairs, **logs}
        return terms

    # -- the compiled step (``compile=true``) ----------------------------------------------
    def compiled(self, name: str, fn):
        """``fn`` under torch.compile in ``compile_mode``, made once per ``name`` (Dynamo traces it at its first
        call; a loss function compiles to a forward and a backward graph through AOTAutograd)."""
        c = self._compiled.get(name)
        if c is None:
            c = self._compiled[name] = torch.compile(fn, mode=self.compile_mode)
        return c

    def step_draws(self, batch) -> dict:
        """A compiled step's random tensors (``draws``), drawn eagerly from the global generator in the order the
        eager step draws them, so that compiled and eager runs train on the same noise (inside a compiled graph
        torch's random ops draw other numbers). The eager step draws its own: {}."""
        if self.compile_mode is None:
            return {}
        x = batch[0] if self.pairs is not None else batch
        dtype = next(self.net.parameters()).dtype
        return self.draws(len(x) * (2 if self.pairs is not None else 1), device=x.device,
                          dtype=dtype if dtype in (torch.float32, torch.float64) else torch.float32)

    def step_losses(self, batch, draws: dict) -> dict[str, torch.Tensor]:
        """``losses`` of a training batch: eager, or compiled with the step's ``draws``. A compiled step reads
        the training step as a 0-d tensor (``current_step``): an int would be a constant of the graph."""
        args = batch if self.pairs is not None else (batch,)
        if self.compile_mode is None:
            return self.losses(*args)
        outer = self.pack_step
        if outer is None:  # filled on the device: no copy from the host
            self.pack_step = torch.full((), self.global_step, dtype=torch.int64, device=args[0].device)
        try:
            return self.compiled("losses", self.losses)(*args, eps=draws.get("eps"))
        finally:
            self.pack_step = outer

    def kept_terms(self, terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The step's loss terms as the NaN guard keeps them (read on later steps): detached, and copied out of
        the CUDA graph's memory, which the next replay overwrites."""
        return {k: v.detach().clone() if self.cudagraphs else v.detach() for k, v in terms.items()}

    def on_train_start(self):
        """A compiled step's optimizers (restored from a checkpoint by now) step compiled (``compile_step``)."""
        if self.compile_mode is not None:
            for opt in self.trainer.optimizers:
                compile_step(opt, self.compile_mode)

    def training_step(self, batch, batch_idx):
        """One iteration under Lightning's manual optimization. The automatic loop does the same work
        inside a closure with four more hook dispatches per step, which cost more than a small
        network's step on a GPU (``make bench``, tiny network). Hooks, precision plugin and
        ``global_step`` (one per ``opt.step()``) are Lightning's as before. Compiled (``compile_mode``): the
        losses with their backward, and the optimizer's update."""
        opt = self.optimizers()
        terms = self.step_losses(batch, self.step_draws(batch))
        self.last_terms = self.kept_terms(terms)  # named by the NaN guard
        opt.zero_grad(set_to_none=True)
        self.manual_backward(terms["loss"])
        opt.step()
        self.log_terms(terms)

    def on_train_batch_start(self, batch, batch_idx):
        if self.cudagraphs:  # a new iteration: the previous step's graph outputs may be overwritten
            torch.compiler.cudagraph_mark_step_begin()

    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        """A batch is one image tensor: moved as such (a no-op when it was rendered on the device),
        not through Lightning's walk over collections."""
        if isinstance(batch, torch.Tensor):
            return batch.to(device, non_blocking=True)
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def log_terms(self, terms: dict[str, torch.Tensor]) -> None:
        """Write ``train/<term>`` to the loggers on the steps Lightning writes (every
        ``trainer.log_every_n_steps``, under the step number Lightning uses), reading the values from
        the device on those steps only. ``self.log`` would fill Lightning's result collection, which
        Lightning then walks on every later step (py-spy: ~4 % of a tiny network's step)."""
        trainer = self._trainer
        if trainer is None or not trainer._logger_connector.should_update_logs:
            return
        values = torch.stack([v.detach().float() for v in terms.values()]).tolist()  # one host read
        row = {f"train/{k}": v for k, v in zip(terms, values, strict=True)}
        for lg in trainer.loggers:
            lg.log_metrics(row, step=trainer.fit_loop.epoch_loop._batches_that_stepped)

    def configure_optimizers(self):
        return self.optimizer_factory(self.parameters())

    def on_load_checkpoint(self, checkpoint):
        """A checkpoint written before this step was manual counts its steps in Lightning's automatic
        loop: they are carried over, so such a run resumes at its step instead of at 0."""
        loops = checkpoint.get("loops", {}).get("fit_loop", {})
        auto = loops.get("epoch_loop.automatic_optimization.optim_progress", {}).get("optimizer", {}).get("step")
        manual = loops.get("epoch_loop.manual_optimization.optim_step_progress")
        if auto and manual and not manual["total"]["completed"] and auto["total"]["completed"]:
            manual.update({k: dict(auto[k]) for k in ("total", "current")})

    # -- inference -------------------------------------------------------------------------
    def _infer(self, fn, x: np.ndarray | torch.Tensor):
        """``fn`` on ``x`` (numpy, or a tensor such as images rendered on the model's device) in eval
        mode without gradients."""
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode():
                dtype = self.dtype if self.dtype in (torch.float32, torch.float64) else torch.float32
                if isinstance(x, torch.Tensor):
                    return fn(x.to(self.device, dtype))
                return fn(torch.as_tensor(np.asarray(x), device=self.device, dtype=dtype))
        finally:
            self.train(was_training)

    def encode(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and log-variance of q(z|x) for a numpy batch."""
        mu, logvar = self._infer(self.net.encode, x)
        return mu.cpu().numpy(), logvar.cpu().numpy()

    def represent(self, x: np.ndarray) -> np.ndarray:
        """The representation scored by metrics: the posterior mean, shape (n, z_dim)."""
        return self._infer(lambda t: self.net.encode(t)[0], x).cpu().numpy()

    def sample_prior(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` codes from the prior p(z) = N(0, I), for ``decode`` (pictures of samples)."""
        return rng.standard_normal((n, self.net.z_dim)).astype(np.float32)

    def decode(self, z: np.ndarray) -> np.ndarray:
        """Mean image sigmoid(logits) for latent codes, shape (n, C, H, W)."""
        return self._infer(lambda t: torch.sigmoid(self.net.decode(t)), z).cpu().numpy()


def compile_step(opt: torch.optim.Optimizer, mode: str) -> None:
    """``opt.step`` with its update compiled (torch.compile in ``mode``); Lightning's closure (its hooks: the
    NaN guard reads the gradients in ``on_before_optimizer_step``) still runs first, eagerly. A fused
    Adam runs its foreach form, which the compiler fuses itself (Dynamo does not trace the fused kernel);
    the NaN guard's ``skip`` then drops a bad step's gradients on the host (its fallback for unfused optimizers)."""
    if getattr(opt, "_dislab_compiled", False):
        return
    for group in (opt.defaults, *opt.param_groups):  # the NaN guard reads ``defaults``, Adam its groups
        if group.get("fused"):
            group["fused"] = False
    update = torch.compile(opt.step, mode=mode)

    def step(closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        update()
        return loss

    opt.step, opt._dislab_compiled = step, True


class PairVAE(VAE):
    """The weakly-supervised methods' shared body (``ada_gvae``, ``ada_ml_vae``, ``group_vae``, ``ml_vae``):
    pairs drawn as ``k``/``k_rule`` say, loss recon + beta * KL (both averaged over the pair), and the
    shared latents replaced by ``average`` of the two posteriors. Which latents are shared: the adaptive
    rule on the per-latent KL between the two posteriors, or (``labelled``) every latent but those of the
    changed factors. A method is its ``average`` and ``labelled``."""

    #: latent j stands for factor j (``dislab.validate.validate_data`` checks z_dim >= K)
    labelled = False
    #: ``dislab.objectives.weak.arithmetic_mean`` or ``product_of_experts``
    average = None

    def __init__(self, beta: float = 1.0, k: int = -1, k_rule: str = "one_or_k", **kwargs):
        super().__init__(**kwargs)
        self.beta = float(beta)
        self.pairs = {"k": k, "k_rule": k_rule}

    def regularizer(self, kl, mu, logvar, z):
        return self.beta * kl, {}

    def pair_posteriors(self, mu, logvar, changed):
        mask = (labelled_changed(changed, mu.shape[-1]) if self.labelled
                else adaptive_changed(pair_kl(mu[:, 0], logvar[:, 0], mu[:, 1], logvar[:, 1])))
        return share(mu, logvar, mask, type(self).average)


class CodeDiscriminatorVAE(VAE):
    """A method with a discriminator on the codes (FactorVAE, AAE). A subclass builds
    ``self.discriminator`` after ``super().__init__`` and defines ``regularizer`` (which reads D and
    keeps the detached codes in ``self._codes``) and ``discriminator_loss``. D has its own Adam
    (``disc_lr``, ``disc_betas``).

    One training iteration, under Lightning manual optimization: the autoencoder's loss is stepped
    first, then D's loss on the detached codes. No graph is reused after an optimizer step. D's
    gradients from the first backward are discarded by ``opt_d.zero_grad()``. Only the autoencoder
    step goes through Lightning's counted step, so ``global_step`` counts iterations; D is stepped
    through the strategy (precision, callbacks such as the NaN guard still apply)."""

    def __init__(self, disc_lr: float = 1e-4, disc_betas=(0.5, 0.9), **kwargs):
        super().__init__(**kwargs)
        self.automatic_optimization = False
        self.disc_lr, self.disc_betas = float(disc_lr), tuple(disc_betas)
        self._codes = None

    def training_step(self, batch, batch_idx):
        opt_ae, opt_d = self.optimizers()
        draws = self.step_draws(batch)
        terms = self.step_losses(batch, draws)
        self.last_terms = self.kept_terms(terms)  # named by the NaN guard
        opt_ae.zero_grad()
        self.manual_backward(terms["loss"])
        opt_ae.step()
        if self.compile_mode is None:
            d_loss = self.discriminator_loss(self._codes)
        else:
            u = {"u": draws["u"]} if "u" in draws else {}
            d_loss = self.compiled("discriminator_loss", self.discriminator_loss)(self._codes, **u)
        terms["disc_loss"] = d_loss
        self.last_terms.update(self.kept_terms({"disc_loss": d_loss}))  # named by the NaN guard
        opt_d.zero_grad()
        self.manual_backward(d_loss)
        self.trainer.strategy.optimizer_step(opt_d.optimizer, closure=lambda: None)
        self.log_terms(terms)

    def configure_optimizers(self):
        opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=self.disc_lr, betas=self.disc_betas)
        return [self.optimizer_factory(self.net.parameters()), opt_d]
