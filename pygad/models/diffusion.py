"""Class-conditional latent diffusion in the EDM form (Karras et al., NeurIPS 2022).

Used by the graph augmenter on the VAE encoder means: ``LatentDiffusion(dim).fit(z, y)`` then
``sample(n, label=1, guidance=w)`` draws synthetic (mostly anomalous) latents.

* Training: ``ln sigma ~ N(P_mean, P_std^2)``, ``z = z0 + sigma eps``, denoiser
  ``D = c_skip z + c_out F(c_in z, c_noise, y)`` (:class:`pygad.nn.LatentDenoiser`), loss
  ``lambda(sigma) ||D - z0||^2``; labels are replaced by the null label with probability
  ``label_dropout`` so one network is both conditional and unconditional.
* Sampling: Karras noise schedule, Heun's 2nd-order steps (Euler at the last step), optional
  stochastic churn, classifier-free guidance ``D = D_u + w (D_c - D_u)`` with the conditional
  and unconditional halves evaluated as one stacked batch.
* The per-step arithmetic (noising, loss, preconditioning, churn, guidance mix, Euler/Heun
  updates) runs in the fused native kernels of :mod:`pygad.ops.diffusion_step`
  (``impl="native"``) or in their torch twins (``impl="reference"``); the MLP is torch.

Noise levels (``P_mean``, ``sigma_min``, ``sigma_max``) are given, as in EDM, for data of scale
0.5, and are rescaled by ``sigma_data_ / 0.5``: the model behaves the same for latents of any
scale.
"""
from __future__ import annotations

import copy
import json
import math
import os
from typing import Optional

import numpy as np
import torch
from torch import Tensor

from ..nn.denoiser import LatentDenoiser
from ..ops import _reference
from ..ops import diffusion_step as _native_steps

from sklearn.base import BaseEstimator  # get_params/set_params/clone/repr (a dependency)

__all__ = ["LatentDiffusion", "karras_sigmas"]

_FORMAT = "pygad.LatentDiffusion/1"
_EDM_SIGMA_DATA = 0.5  # the data scale EDM's default noise levels are tuned for


def karras_sigmas(steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0) -> list[float]:
    """The Karras et al. noise levels ``sigma_0 > ... > sigma_{N-1}`` followed by ``sigma_N = 0``.

    ``sigma_i = (sigma_max^(1/rho) + i/(N-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho``.

    Returns:
        ``steps + 1`` Python floats (float64 arithmetic).
    """
    steps = int(steps)
    if steps < 1:
        raise ValueError(f"'steps' must be >= 1, got {steps}")
    if not 0 < sigma_min <= sigma_max:
        raise ValueError(f"need 0 < sigma_min <= sigma_max, got {sigma_min}, {sigma_max}")
    a, b = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    sig = [(a + (i / (steps - 1) if steps > 1 else 0.0) * (b - a)) ** rho for i in range(steps)]
    return sig + [0.0]


def _as_tensor(a, name: str, device, dtype=None) -> Tensor:
    if isinstance(a, np.ndarray):
        a = torch.from_numpy(a)
    if not isinstance(a, Tensor):
        a = torch.as_tensor(a)
    return a.to(device=device, dtype=dtype) if dtype is not None else a.to(device=device)


class LatentDiffusion(BaseEstimator):
    """EDM latent diffusion with a class-conditional MLP denoiser and classifier-free guidance.

    Args:
        dim: latent dimension d.
        hidden: MLP width of the denoiser.
        num_layers: residual blocks of the denoiser.
        num_classes: number of labels (0..num_classes-1); anomalies are label 1 by convention.
        label_dropout: probability of training on the null label instead of the true one.
        sigma_data: data scale of the EDM preconditioning; None estimates it in :meth:`fit` as
            the RMS of the (centered) latents.
        P_mean: mean of the log-normal training noise ``ln sigma ~ N(P_mean, P_std^2)`` (for
            data of scale 0.5; shifted by ``ln(sigma_data_ / 0.5)``).
        P_std: standard deviation of ``ln sigma`` in training.
        sigma_min: smallest noise level of the Karras sampling schedule (for data of scale 0.5;
            the schedule is scaled by ``sigma_data_ / 0.5``).
        sigma_max: largest noise level of the sampling schedule (same scale).
        rho: curvature of the schedule (larger: more steps spent at low noise).
        center: subtract the per-dimension mean of the training latents (added back to samples).
        ema_decay: exponential moving average of the weights used for sampling (with the usual
            ``(1 + t) / (10 + t)`` warm-up); 0 disables it.
        impl: ``"native"`` (the fused kernels) or ``"reference"`` (their pure-torch twins,
            e.g. where the extension is not built) for the step arithmetic.
        device: torch device of the network and of the returned samples.
        random_state: seed of the initialisation, the training noise and (unless ``seed`` or
            ``generator`` is given) the sampling noise.

    Attributes (after :meth:`fit`):
        denoiser_: the :class:`~pygad.nn.LatentDenoiser` used for sampling (the EMA weights).
        mean_: [d] mean removed from the latents.
        sigma_data_: the data scale used.
        conditional_: whether the model was trained with labels.
        loss_history_: mean training loss per epoch.

    Examples:
        >>> import torch
        >>> from pygad.models import LatentDiffusion
        >>> z = torch.randn(500, 8)                       # e.g. a VAE's encoder means
        >>> y = (torch.rand(500) < 0.1).long()            # 1 = anomaly
        >>> dm = LatentDiffusion(8, hidden=64, num_layers=2, random_state=0)
        >>> dm = dm.fit(z, y, epochs=20, verbose=False)
        >>> z_new = dm.sample(100, label=1, guidance=1.0, steps=18)   # [100, 8]
    """

    def __init__(self, dim: int, hidden: int = 512, num_layers: int = 4, num_classes: int = 2,
                 label_dropout: float = 0.1, sigma_data: Optional[float] = None, P_mean: float = -1.2,
                 P_std: float = 1.2, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0,
                 center: bool = True, ema_decay: float = 0.999, impl: str = "native", device="cpu",
                 random_state: Optional[int] = None):
        self.dim = dim
        self.hidden = hidden
        self.num_layers = num_layers
        self.num_classes = num_classes
        self.label_dropout = label_dropout
        self.sigma_data = sigma_data
        self.P_mean = P_mean
        self.P_std = P_std
        self.sigma_min = sigma_min
        self.sigma_max = sigma_max
        self.rho = rho
        self.center = center
        self.ema_decay = ema_decay
        self.impl = impl
        self.device = device
        self.random_state = random_state

    # ---- helpers ---------------------------------------------------------------------------
    def _ops(self):
        if self.impl == "native":
            return _native_steps
        if self.impl == "reference":
            return _reference
        raise ValueError(f"'impl' must be 'native' or 'reference', got {self.impl!r}")

    def _device(self) -> torch.device:
        return torch.device(self.device)

    def _generator(self, seed: Optional[int]) -> torch.Generator:
        g = torch.Generator(device=self._device())
        if seed is None:
            g.seed()
        else:
            g.manual_seed(int(seed))
        return g

    def _check_fitted(self) -> None:
        if not hasattr(self, "denoiser_"):
            raise RuntimeError("this LatentDiffusion is not fitted yet: call fit(z, y) or load_state_dict first")

    def _build_denoiser(self) -> LatentDenoiser:
        return LatentDenoiser(self.dim, hidden=self.hidden, num_layers=self.num_layers, num_classes=self.num_classes,
                              label_dropout=self.label_dropout).to(self._device())

    @property
    def sigma_scale_(self) -> float:
        """``sigma_data_ / 0.5``: the factor applied to EDM's default noise levels."""
        return self.sigma_data_ / _EDM_SIGMA_DATA

    def _check_data(self, z, y) -> tuple[Tensor, Optional[Tensor]]:
        z = _as_tensor(z, "z", self._device(), torch.float32)
        if z.dim() != 2 or z.shape[1] != self.dim:
            raise ValueError(f"'z' must have shape [N, {self.dim}], got {list(z.shape)}")
        if z.shape[0] == 0:
            raise ValueError("'z' has no rows")
        if not torch.isfinite(z).all():
            raise ValueError("'z' has non-finite values")
        if y is None:
            return z, None
        y = _as_tensor(y, "y", self._device())
        if y.is_floating_point() or y.dtype == torch.bool:
            if y.dtype != torch.bool and not torch.equal(y, y.round()):
                raise TypeError(f"'y' must hold integer labels, got dtype {y.dtype}")
        y = y.long().reshape(-1)
        if y.shape[0] != z.shape[0]:
            raise ValueError(f"'y' has {y.shape[0]} labels for {z.shape[0]} rows of 'z'")
        if int(y.min()) < 0 or int(y.max()) >= self.num_classes:
            raise ValueError(f"'y' must hold labels in [0, {self.num_classes})")
        return z, y

    def _batch_loss(self, net: LatentDenoiser, z0: Tensor, y: Optional[Tensor], gen: torch.Generator,
                    drop: bool, rows: Optional[slice] = None) -> Tensor:
        """Per-row EDM loss of a batch.

        ``rows`` keeps only those rows *after* the noise of the whole batch is drawn
        (data-parallel ranks then see the single-process draws).
        """
        ops, sd = self._ops(), self.sigma_data_
        b = z0.shape[0]
        p_mean = self.P_mean + math.log(self.sigma_scale_)
        sigma = (torch.randn(b, generator=gen, device=z0.device) * self.P_std + p_mean).exp()
        eps = torch.randn(z0.shape, generator=gen, device=z0.device)
        if y is None:
            y_in = torch.full((b,), net.null_label, dtype=torch.long, device=z0.device)
        else:
            y_in = net.drop_labels(y, gen) if drop else y
        if rows is not None:
            z0, eps, sigma, y_in = z0[rows], eps[rows], sigma[rows], y_in[rows]
        net_in, c_noise = ops.edm_noise(z0, eps, sigma, sd)
        f = net(net_in, c_noise, y_in)
        return ops.edm_loss(f, z0, eps, sigma, sd)

    # ---- training --------------------------------------------------------------------------
    def fit(self, z, y=None, *, epochs: int = 100, batch_size: int = 256, lr: float = 1e-3,
            weight_decay: float = 0.0, grad_clip: float = 1.0, verbose: bool = True,
            distributed: bool = False) -> "LatentDiffusion":
        """Train the denoiser on latents ``z`` [N, d] with labels ``y`` [N] (None: unconditional).

        Args:
            z: float tensor/array [N, dim] (e.g. the VAE encoder means).
            y: integer labels [N] in ``[0, num_classes)``, or None.
            epochs: passes over the data.
            batch_size: rows per Adam step.
            lr: AdamW learning rate.
            weight_decay: AdamW weight decay.
            grad_clip: max gradient norm (0 = no clipping).
            verbose: show a tqdm progress bar with the running loss.
            distributed: data-parallel training over the default ``torch.distributed``
                process group (:mod:`pygad.models.distributed`; no effect in a lone
                process). Rank 0's ``z``/``y`` are broadcast (every rank must pass the same
                shapes), all ranks share one random stream (``random_state``, or a seed
                drawn on rank 0), so they draw the same batch order and the same noise
                ``sigma, eps`` and label dropout for the *whole* batch, and each rank keeps
                the rows ``rank::world`` of every batch. Its loss is the sum of its rows'
                losses divided by the batch size, the gradients are summed over ranks before
                clipping and the step: each step is the single-process step up to float
                summation order, and the replicas (and EMA) stay bit-identical.

        Returns:
            self
        """
        from tqdm.auto import tqdm

        from . import distributed as pgd

        self._ops()
        rank, world = pgd.training_group(distributed)
        z, y = self._check_data(z, y)
        if world > 1:
            z = pgd.broadcast_tensor(z, name="z")
            has_y = pgd.allreduce_sum([y is not None])[0]
            if has_y not in (0, world):
                raise ValueError("some ranks passed labels 'y' and others None")
            if y is not None:
                y = pgd.broadcast_tensor(y, name="y")
        dev = self._device()
        self.mean_ = z.mean(0) if self.center else torch.zeros(self.dim, device=dev)
        z0 = z - self.mean_
        if self.sigma_data is None:
            rms = float(z0.pow(2).mean().sqrt())
            self.sigma_data_ = rms if math.isfinite(rms) and rms > 1e-8 else _EDM_SIGMA_DATA
        else:
            if not float(self.sigma_data) > 0:
                raise ValueError(f"'sigma_data' must be positive, got {self.sigma_data}")
            self.sigma_data_ = float(self.sigma_data)
        self.conditional_ = y is not None

        gen = self._generator(self.random_state if world == 1 else pgd.common_seed(self.random_state))
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=gen, device=dev)))
            net = self._build_denoiser()
        pgd.broadcast_parameters(net)  # no-op in a single process
        ema = copy.deepcopy(net).requires_grad_(False) if self.ema_decay > 0 else net
        opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
        n = z0.shape[0]
        batch_size = max(1, min(int(batch_size), n))
        self.loss_history_ = []
        step = 0
        bar = tqdm(range(int(epochs)), desc="LatentDiffusion", disable=not verbose or rank != 0, leave=False)
        net.train()
        mine = slice(rank, None, world)
        for _ in bar:
            perm = torch.randperm(n, generator=gen, device=dev)
            total, count = 0.0, 0
            for s in range(0, n, batch_size):
                idx = perm[s:s + batch_size]
                opt.zero_grad(set_to_none=True)
                if world == 1:
                    loss = self._batch_loss(net, z0[idx], None if y is None else y[idx], gen, drop=True).mean()
                    loss.backward()
                else:
                    per_row = self._batch_loss(net, z0[idx], None if y is None else y[idx], gen, drop=True,
                                               rows=mine)
                    # this rank's share of the batch mean; the gradients add up over ranks
                    loss = per_row.sum() / idx.shape[0]
                    if per_row.numel():
                        loss.backward()
                    pgd.allreduce_gradients(net.parameters(), average=False)
                if grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
                opt.step()
                if ema is not net:
                    decay = min(self.ema_decay, (1 + step) / (10 + step))
                    with torch.no_grad():
                        torch._foreach_lerp_(list(ema.parameters()), list(net.parameters()), 1.0 - decay)
                step += 1
                total += float(loss.detach()) * idx.shape[0]
                count += idx.shape[0]
            if world > 1:  # the ranks' shares of the batch means add up to the batch means
                total = pgd.allreduce_sum([total])[0]
            self.loss_history_.append(total / count)
            bar.set_postfix(loss=f"{self.loss_history_[-1]:.4f}")
        bar.close()
        self.denoiser_ = ema.eval()
        return self

    @torch.no_grad()
    def loss(self, z, y=None, *, seed: int = 0, batch_size: int = 4096) -> float:
        """Mean EDM loss of the fitted denoiser on ``z`` (fresh noise from ``seed``, no label dropout)."""
        self._check_fitted()
        z, y = self._check_data(z, y)
        if y is not None and not self.conditional_:
            y = None
        gen = self._generator(seed)
        z0 = z - self.mean_
        total = 0.0
        for s in range(0, z0.shape[0], batch_size):
            yb = None if y is None else y[s:s + batch_size]
            total += float(self._batch_loss(self.denoiser_, z0[s:s + batch_size], yb, gen, drop=False).sum())
        return total / z0.shape[0]

    # ---- sampling --------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, label: Optional[int] = 1, guidance: float = 1.0, steps: int = 50, *,
               churn: float = 0.0, s_tmin: float = 0.0, s_tmax: float = float("inf"), s_noise: float = 1.0,
               batch_size: int = 65536, seed: Optional[int] = None,
               generator: Optional[torch.Generator] = None) -> Tensor:
        """Draw ``n`` latents with the EDM Heun sampler (Karras et al. Alg. 2).

        Args:
            n: number of samples.
            label: class to condition on, or None for unconditional samples.
            guidance: classifier-free guidance scale w in ``D_u + w (D_c - D_u)``: 1 samples the
                conditional model (one network evaluation per step), > 1 pushes further toward
                ``label``, 0 is unconditional.
            steps: Karras schedule steps N (2N - 1 network evaluations, doubled when guided).
            churn: ``S_churn`` (0 = deterministic ODE sampler); the added noise per step is
                ``gamma = min(churn / steps, sqrt(2) - 1)`` for levels in ``[s_tmin, s_tmax]``.
            s_tmin: lower end of the churn window (in data-scale 0.5 units).
            s_tmax: upper end of the churn window (in data-scale 0.5 units).
            s_noise: noise inflation of the churn.
            batch_size: latents per chunk (bounds memory).
            seed: seed of the sampling noise (default: ``random_state``).
            generator: a torch.Generator on the model's device (overrides ``seed``).

        Returns:
            float32 tensor [n, dim] on the model's device.
        """
        self._check_fitted()
        ops, sd, net = self._ops(), self.sigma_data_, self.denoiser_
        dev = self._device()
        if label is not None:
            if not self.conditional_:
                raise ValueError("the model was fitted without labels: sample with label=None")
            if not 0 <= int(label) < self.num_classes:
                raise ValueError(f"'label' must be in [0, {self.num_classes}) or None, got {label}")
        if not math.isfinite(guidance):
            raise ValueError(f"'guidance' must be finite, got {guidance}")
        if generator is None:
            generator = self._generator(self.random_state if seed is None else seed)
        k = self.sigma_scale_
        sig = [s * k for s in karras_sigmas(steps, self.sigma_min, self.sigma_max, self.rho)]
        if label is None:
            groups = [net.null_label]
        elif guidance == 1.0:
            groups = [int(label)]
        elif guidance == 0.0:
            groups = [net.null_label]
        else:
            groups = [int(label), net.null_label]
        r = len(groups)
        gamma_max = min(churn / steps, math.sqrt(2) - 1) if churn > 0 else 0.0
        out = torch.empty((n, self.dim), device=dev)
        for start in range(0, n, max(1, int(batch_size))):
            b = min(int(batch_size), n - start)
            out[start:start + b] = self._sample_chunk(ops, net, sd, sig, groups, r, b, float(guidance), gamma_max,
                                                      s_tmin * k, s_tmax * k, s_noise, generator, dev)
        return out + self.mean_

    def _sample_chunk(self, ops, net, sd, sig, groups, r, b, w, gamma_max, s_tmin, s_tmax, s_noise, gen, dev):
        d = self.dim
        x = torch.randn((b, d), generator=gen, device=dev) * sig[0]
        x_hat, x_next, deriv, x_out = (torch.empty((b, d), device=dev) for _ in range(4))
        net_in, net_in2 = torch.empty((r * b, d), device=dev), torch.empty((r * b, d), device=dev)
        c_noise = torch.empty((b,), device=dev)

        def evaluate(inp, s):
            f = net.forward_groups(inp, math.log(s) / 4, groups)
            return (f[:b], f[b:]) if r == 2 else (f, None)

        for i in range(len(sig) - 1):
            s, s_next = sig[i], sig[i + 1]
            gamma = gamma_max if s_tmin <= s <= s_tmax else 0.0
            s_hat = s * (1 + gamma)
            if gamma > 0:
                eps = torch.randn((b, d), generator=gen, device=dev)
                ops.edm_precondition(x, s, sd, repeat=r, sigma_hat=s_hat, eps=eps, s_noise=s_noise,
                                     out=(x_hat, net_in, c_noise))
                xh = x_hat
            else:
                ops.edm_precondition(x, s, sd, repeat=r, out=(net_in, c_noise))
                xh = x
            fc, fu = evaluate(net_in, s_hat)
            if s_next > 0:
                ops.edm_step(xh, fc, fu, s_hat, s_next, w, sd, repeat=r, out=(x_next, deriv, net_in2))
                fc, fu = evaluate(net_in2, s_next)
                ops.edm_heun(xh, deriv, x_next, fc, fu, s_hat, s_next, w, sd, out=x_out)
                x, x_out = x_out, x  # ping-pong: the old x (never aliased by xh's buffer) is the next output
            else:
                ops.edm_step(xh, fc, fu, s_hat, s_next, w, sd, out=(x_next, deriv))
                x = x_next
        return x

    # ---- persistence -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Tensor]:
        """Fitted state as tensors only (loadable with ``torch.load(weights_only=True)``)."""
        self._check_fitted()
        state = {f"denoiser.{k}": v.detach().cpu() for k, v in self.denoiser_.state_dict().items()}
        state["mean_"] = self.mean_.detach().cpu()
        state["sigma_data_"] = torch.tensor(self.sigma_data_, dtype=torch.float64)
        state["conditional_"] = torch.tensor(bool(self.conditional_))
        return state

    def load_state_dict(self, state: dict[str, Tensor]) -> "LatentDiffusion":
        """Restore the fitted state written by :meth:`state_dict` (the config must match)."""
        net = self._build_denoiser()
        net.load_state_dict({k[len("denoiser."):]: v for k, v in state.items() if k.startswith("denoiser.")})
        self.denoiser_ = net.eval().requires_grad_(False)
        self.mean_ = state["mean_"].to(self._device(), torch.float32)
        self.sigma_data_ = float(state["sigma_data_"])
        self.conditional_ = bool(state["conditional_"])
        return self

    def save(self, path) -> None:
        """Write ``path/config.json`` (the constructor arguments) and ``path/weights.pt`` (tensors)."""
        self._check_fitted()
        os.makedirs(path, exist_ok=True)
        params = self.get_params() if hasattr(self, "get_params") else dict(vars(self))
        params["device"] = str(params["device"])
        if params.get("random_state") is not None:
            params["random_state"] = int(params["random_state"])
        with open(os.path.join(path, "config.json"), "w") as fh:
            json.dump({"format": _FORMAT, "params": params}, fh, indent=2)
        torch.save(self.state_dict(), os.path.join(path, "weights.pt"))

    @classmethod
    def load(cls, path, device=None) -> "LatentDiffusion":
        """Rebuild a model written by :meth:`save` (optionally onto another ``device``)."""
        from ._files import read_config, read_weights, rebuilding
        cfg = read_config(path, _FORMAT, "LatentDiffusion")
        with rebuilding(path):
            params = dict(cfg["params"])
            if device is not None:
                params["device"] = str(device)
            model = cls(**params)
            return model.load_state_dict(read_weights(path))
