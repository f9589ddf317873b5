"""Fused EDM diffusion steps (Karras et al. 2022) over a batch of latents [B, d].

Per row with noise level ``s`` and data scale ``sd = sigma_data``::

    c_skip = sd^2 / (s^2 + sd^2)    c_out = s sd / sqrt(s^2 + sd^2)
    c_in   = 1 / sqrt(s^2 + sd^2)   c_noise = ln(s) / 4
    D(x)   = c_skip x + c_out F,    F = F_u + w (F_c - F_u)  (classifier-free guidance)

Each function is one native kernel (one pass over its [B, d] operands, OpenMP on the CPU, a CUDA
kernel on the GPU); the denoiser network between the calls stays in torch. Sampling functions
(:func:`edm_precondition` with churn, :func:`edm_step`, :func:`edm_heun`) accept preallocated
``out`` tensors so a sampler reuses its buffers across steps; the training functions
(:func:`edm_noise`, :func:`edm_loss`) and plain :func:`edm_precondition` are differentiable.
Noise levels are per row: pass a [B] tensor or a Python float (broadcast). Random noise ``eps``
is always an argument (drawn with torch's RNG), so native and reference results agree.

The pure-torch twins live in :mod:`pygad.ops._reference` under the same names.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from pygad.errors import PygadValueError

from ._native import _C, as_tensor, check_count, desc, new_empty, stream, threads

__all__ = ["edm_precondition", "edm_step", "edm_heun", "edm_noise", "edm_loss"]


def _opt(t: Optional[Tensor]):
    return None if t is None else desc(t)


def _c_in(sigma: Tensor, sigma_data: float) -> Tensor:
    return (sigma * sigma + sigma_data * sigma_data).rsqrt()


# ---- preconditioning (functional, differentiable in x) -------------------------------------
@torch.library.custom_op("pygad::edm_precondition", mutates_args=())
def _edm_precondition(x: Tensor, sigma: Tensor, sigma_data: float, repeat: int) -> tuple[Tensor, Tensor]:
    net_in = new_empty(x, (repeat * x.shape[0], x.shape[1]), "repeat", repeat)
    c_noise = x.new_empty((x.shape[0],))
    _C.edm_precondition(desc(x), desc(sigma), None, None, 1.0, sigma_data, repeat, None, desc(net_in),
                        desc(c_noise), threads(), stream(x))
    return net_in, c_noise


@_edm_precondition.register_fake
def _(x, sigma, sigma_data, repeat):
    return x.new_empty((repeat * x.shape[0], x.shape[1])), x.new_empty((x.shape[0],))


def _edm_precondition_setup(ctx, inputs, output):
    x, sigma, sigma_data, repeat = inputs
    ctx.save_for_backward(sigma)
    ctx.sigma_data, ctx.repeat = sigma_data, repeat


def _edm_precondition_backward(ctx, grad_net_in, grad_c_noise):
    (sigma,) = ctx.saved_tensors
    if grad_net_in is None:
        return None, None, None, None
    b = sigma.shape[0]
    g = grad_net_in.reshape(ctx.repeat, b, -1).sum(0)
    return g * _c_in(sigma, ctx.sigma_data)[:, None], None, None, None


_edm_precondition.register_autograd(_edm_precondition_backward, setup_context=_edm_precondition_setup)


# ---- preconditioning with churn, into given buffers (sampling) -----------------------------
@torch.library.custom_op("pygad::edm_precondition_out", mutates_args=("x_hat", "net_in", "c_noise"))
def _edm_precondition_out(x: Tensor, sigma: Tensor, sigma_hat: Optional[Tensor], eps: Optional[Tensor],
                          s_noise: float, sigma_data: float, repeat: int, x_hat: Optional[Tensor], net_in: Tensor,
                          c_noise: Tensor) -> None:
    _C.edm_precondition(desc(x), desc(sigma), _opt(sigma_hat), _opt(eps), s_noise, sigma_data, repeat, _opt(x_hat),
                        desc(net_in), desc(c_noise), threads(), stream(x))


@_edm_precondition_out.register_fake
def _(x, sigma, sigma_hat, eps, s_noise, sigma_data, repeat, x_hat, net_in, c_noise):
    return None


# ---- Euler step and Heun correction (sampling) ---------------------------------------------
@torch.library.custom_op("pygad::edm_step_out", mutates_args=("x_next", "deriv", "net_in_next"))
def _edm_step_out(x: Tensor, f_cond: Tensor, f_uncond: Optional[Tensor], sigma: Tensor, sigma_next: Tensor,
                  guidance: float, sigma_data: float, repeat: int, x_next: Tensor, deriv: Tensor,
                  net_in_next: Optional[Tensor]) -> None:
    _C.edm_step(desc(x), desc(f_cond), _opt(f_uncond), desc(sigma), desc(sigma_next), guidance, sigma_data, repeat,
                desc(x_next), desc(deriv), _opt(net_in_next), threads(), stream(x))


@_edm_step_out.register_fake
def _(x, f_cond, f_uncond, sigma, sigma_next, guidance, sigma_data, repeat, x_next, deriv, net_in_next):
    return None


@torch.library.custom_op("pygad::edm_heun_out", mutates_args=("out",))
def _edm_heun_out(x_hat: Tensor, deriv: Tensor, x_next: Tensor, f_cond: Tensor, f_uncond: Optional[Tensor],
                  sigma_hat: Tensor, sigma_next: Tensor, guidance: float, sigma_data: float, out: Tensor) -> None:
    _C.edm_heun(desc(x_hat), desc(deriv), desc(x_next), desc(f_cond), _opt(f_uncond), desc(sigma_hat),
                desc(sigma_next), guidance, sigma_data, desc(out), threads(), stream(x_hat))


@_edm_heun_out.register_fake
def _(x_hat, deriv, x_next, f_cond, f_uncond, sigma_hat, sigma_next, guidance, sigma_data, out):
    return None


# ---- training: noised input and weighted loss ----------------------------------------------
@torch.library.custom_op("pygad::edm_noise", mutates_args=())
def _edm_noise(z0: Tensor, eps: Tensor, sigma: Tensor, sigma_data: float) -> tuple[Tensor, Tensor]:
    net_in = torch.empty_like(z0)
    c_noise = z0.new_empty((z0.shape[0],))
    _C.edm_noise(desc(z0), desc(eps), desc(sigma), sigma_data, desc(net_in), desc(c_noise), threads(), stream(z0))
    return net_in, c_noise


@_edm_noise.register_fake
def _(z0, eps, sigma, sigma_data):
    return torch.empty_like(z0), z0.new_empty((z0.shape[0],))


def _edm_noise_setup(ctx, inputs, output):
    z0, eps, sigma, sigma_data = inputs
    ctx.save_for_backward(sigma)
    ctx.sigma_data = sigma_data


def _edm_noise_backward(ctx, grad_net_in, grad_c_noise):
    (sigma,) = ctx.saved_tensors
    if grad_net_in is None:
        return None, None, None, None
    c_in = _c_in(sigma, ctx.sigma_data)[:, None]
    g_z0 = grad_net_in * c_in if ctx.needs_input_grad[0] else None
    g_eps = grad_net_in * (c_in * sigma[:, None]) if ctx.needs_input_grad[1] else None
    return g_z0, g_eps, None, None


_edm_noise.register_autograd(_edm_noise_backward, setup_context=_edm_noise_setup)


@torch.library.custom_op("pygad::edm_loss", mutates_args=())
def _edm_loss(f: Tensor, z0: Tensor, eps: Tensor, sigma: Tensor, sigma_data: float) -> Tensor:
    loss = f.new_empty((f.shape[0],))
    _C.edm_loss(desc(f), desc(z0), desc(eps), desc(sigma), sigma_data, desc(loss), threads(), stream(f))
    return loss


@_edm_loss.register_fake
def _(f, z0, eps, sigma, sigma_data):
    return f.new_empty((f.shape[0],))


@torch.library.custom_op("pygad::edm_loss_backward", mutates_args=())
def _edm_loss_backward(grad_loss: Tensor, f: Tensor, z0: Tensor, eps: Tensor, sigma: Tensor,
                       sigma_data: float) -> Tensor:
    grad_f = torch.empty_like(f)
    _C.edm_loss_backward(desc(grad_loss), desc(f), desc(z0), desc(eps), desc(sigma), sigma_data, desc(grad_f),
                         threads(), stream(f))
    return grad_f


@_edm_loss_backward.register_fake
def _(grad_loss, f, z0, eps, sigma, sigma_data):
    return torch.empty_like(f)


def _edm_loss_setup(ctx, inputs, output):
    f, z0, eps, sigma, sigma_data = inputs
    ctx.save_for_backward(f, z0, eps, sigma)
    ctx.sigma_data = sigma_data


def _edm_loss_grad(ctx, grad_loss):
    f, z0, eps, sigma = ctx.saved_tensors
    sd = ctx.sigma_data
    grad_f = _edm_loss_backward(grad_loss.contiguous(), f, z0, eps, sigma, sd)
    g_z0 = g_eps = None
    if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
        # Every gradient is proportional to the residual: dL/dz0 = grad_f (c_skip - 1) / c_out,
        # dL/deps = grad_f c_skip sigma / c_out.
        v = sigma * sigma + sd * sd
        c_skip = sd * sd / v
        c_out = sigma * sd / v.sqrt()
        if ctx.needs_input_grad[1]:
            g_z0 = grad_f * ((c_skip - 1) / c_out)[:, None]
        if ctx.needs_input_grad[2]:
            g_eps = grad_f * (c_skip * sigma / c_out)[:, None]
    return (grad_f if ctx.needs_input_grad[0] else None), g_z0, g_eps, None, None


_edm_loss.register_autograd(_edm_loss_grad, setup_context=_edm_loss_setup)


# ---- user-facing functions -----------------------------------------------------------------
def _rows(sigma, name: str, like: Tensor) -> Tensor:
    """A per-row noise level [B]: tensors are checked, Python numbers broadcast."""
    if isinstance(sigma, (int, float)):
        return torch.full((like.shape[0],), float(sigma), dtype=like.dtype, device=like.device)
    return as_tensor(sigma, name, dtype=like.dtype)


def _sd(sigma_data) -> float:
    sd = float(sigma_data)
    if not sd > 0:
        raise PygadValueError(f"'sigma_data' must be positive, got {sigma_data}")
    return sd


def _x(x, name: str) -> Tensor:
    x = as_tensor(x, name, floating=True)
    if x.dim() != 2:
        raise PygadValueError(f"'{name}' must have shape [B, d], got {list(x.shape)}")
    return x


def _out(out, n: int, name: str = "out") -> tuple:
    if out is None:
        return (None,) * n
    if isinstance(out, Tensor):
        out = (out,)
    if len(out) != n:
        raise PygadValueError(f"'{name}' must hold {n} tensors, got {len(out)}")
    for t in out:
        if not isinstance(t, Tensor) or not t.is_contiguous():
            raise PygadValueError(f"'{name}' must hold contiguous tensors")
    return tuple(out)


def edm_precondition(x, sigma, sigma_data: float = 0.5, *, repeat: int = 1, sigma_hat=None, eps=None,
                     s_noise: float = 1.0, out=None):
    """Network input of the EDM denoiser, optionally after churn noise.

    Without churn: ``net_in = c_in(sigma) x`` repeated ``repeat`` times along the rows (row
    ``r*B + i`` is a copy of row i: the stacked conditional/unconditional batch of classifier-free
    guidance), and ``c_noise = ln(sigma) / 4``. With churn (``sigma_hat`` and ``eps`` given), first
    ``x_hat = x + sqrt(sigma_hat^2 - sigma^2) * s_noise * eps`` (Karras et al. Alg. 2, the
    square root clamped at 0), then the preconditioning of ``x_hat`` at level ``sigma_hat``.

    Args:
        x: float tensor [B, d] of latents at noise level ``sigma``.
        sigma: [B] noise levels (> 0) or a float.
        sigma_data: data scale of the EDM preconditioning (> 0).
        repeat: copies of the network input (>= 1).
        sigma_hat: [B] raised noise levels or a float, with ``eps`` (churn); ``None`` for none.
        eps: [B, d] standard normal noise (drawn by the caller) for the churn.
        s_noise: churn noise inflation ``S_noise``.
        out: preallocated outputs in the order returned (reused buffers for a sampler).

    Returns:
        ``(net_in [repeat*B, d], c_noise [B])``, or with churn ``(x_hat [B, d], net_in, c_noise)``.
        Without churn and ``out`` the result is differentiable in ``x``.
    """
    x = _x(x, "x")
    sd = _sd(sigma_data)
    sigma = _rows(sigma, "sigma", x)
    repeat = check_count(repeat, "repeat", low=1)
    churn = sigma_hat is not None or eps is not None
    if churn and (sigma_hat is None or eps is None):
        raise PygadValueError("churn needs both 'sigma_hat' and 'eps'")
    if not churn and out is None:
        return _edm_precondition(x, sigma, sd, repeat)
    b, d = x.shape
    if churn:
        sigma_hat = _rows(sigma_hat, "sigma_hat", x)
        eps = as_tensor(eps, "eps", dtype=x.dtype)
        x_hat, net_in, c_noise = _out(out, 3)
        x_hat = x.new_empty((b, d)) if x_hat is None else x_hat
    else:
        net_in, c_noise = _out(out, 2)
        x_hat = None
    net_in = new_empty(x, (repeat * b, d), "repeat", repeat) if net_in is None else net_in
    c_noise = x.new_empty((b,)) if c_noise is None else c_noise
    _edm_precondition_out(x, sigma, sigma_hat, eps, float(s_noise), sd, repeat, x_hat, net_in, c_noise)
    return (x_hat, net_in, c_noise) if churn else (net_in, c_noise)


def edm_step(x, f_cond, f_uncond, sigma, sigma_next, guidance: float = 1.0, sigma_data: float = 0.5, *,
             repeat: int = 0, out=None):
    """One Euler step of the EDM probability-flow ODE, with classifier-free guidance.

    ``D = c_skip x + c_out F`` with ``F = f_uncond + guidance (f_cond - f_uncond)`` (or ``f_cond``
    when ``f_uncond`` is None), ``deriv = (x - D) / sigma`` and
    ``x_next = x + (sigma_next - sigma) deriv``. With ``repeat > 0`` the kernel also writes the
    next network input ``c_in(sigma_next) x_next`` (``repeat`` stacked copies) for Heun's
    second evaluation.

    Args:
        x: float tensor [B, d] at level ``sigma`` (after churn: ``x_hat`` at ``sigma_hat``).
        f_cond: [B, d] network output for the conditional labels.
        f_uncond: [B, d] network output for the null label, or None.
        sigma: [B] current noise levels (> 0) or a float.
        sigma_next: [B] next noise levels (>= 0) or a float.
        guidance: guidance scale w (1 = conditional, 0 = unconditional).
        sigma_data: data scale of the preconditioning.
        repeat: copies of the next network input to write (0 = none).
        out: preallocated ``(x_next, deriv[, net_in_next])``.

    Returns:
        ``(x_next [B, d], deriv [B, d])`` plus ``net_in_next [repeat*B, d]`` when ``repeat > 0``.
        Not differentiable (sampling).
    """
    x = _x(x, "x")
    f_cond = as_tensor(f_cond, "f_cond", dtype=x.dtype)
    f_uncond = None if f_uncond is None else as_tensor(f_uncond, "f_uncond", dtype=x.dtype)
    sigma, sigma_next = _rows(sigma, "sigma", x), _rows(sigma_next, "sigma_next", x)
    repeat = check_count(repeat, "repeat")
    outs = _out(out, 3 if repeat > 0 else 2)
    x_next = torch.empty_like(x) if outs[0] is None else outs[0]
    deriv = torch.empty_like(x) if outs[1] is None else outs[1]
    net_in = None
    if repeat > 0:
        net_in = new_empty(x, (repeat * x.shape[0], x.shape[1]), "repeat", repeat) if outs[2] is None else outs[2]
    _edm_step_out(x, f_cond, f_uncond, sigma, sigma_next, float(guidance), _sd(sigma_data), repeat, x_next, deriv,
                  net_in)
    return (x_next, deriv, net_in) if repeat > 0 else (x_next, deriv)


def edm_heun(x_hat, deriv, x_next, f_cond, f_uncond, sigma_hat, sigma_next, guidance: float = 1.0,
             sigma_data: float = 0.5, *, out=None):
    """Heun's 2nd-order correction of an Euler step ``x_hat -> x_next`` (:func:`edm_step`).

    ``deriv2 = (x_next - D(x_next)) / sigma_next`` with D guided as in :func:`edm_step`, and
    ``out = x_hat + (sigma_next - sigma_hat) (deriv + deriv2) / 2``. Rows whose ``sigma_next``
    is 0 return ``x_next`` unchanged (the last step is Euler).

    Args:
        x_hat: [B, d] start of the step (level ``sigma_hat``).
        deriv: [B, d] the Euler derivative returned by :func:`edm_step`.
        x_next: [B, d] the Euler end point (level ``sigma_next``).
        f_cond: [B, d] conditional network output at ``x_next``.
        f_uncond: [B, d] unconditional network output at ``x_next``, or None.
        sigma_hat: [B] noise level of ``x_hat``, or a float.
        sigma_next: [B] noise level of ``x_next``, or a float.
        guidance: guidance scale w.
        sigma_data: data scale of the preconditioning.
        out: preallocated [B, d] output (must not alias the inputs).

    Returns:
        [B, d] corrected latents. Not differentiable (sampling).
    """
    x_hat = _x(x_hat, "x_hat")
    deriv, x_next, f_cond = (as_tensor(t, n, dtype=x_hat.dtype)
                             for t, n in ((deriv, "deriv"), (x_next, "x_next"), (f_cond, "f_cond")))
    f_uncond = None if f_uncond is None else as_tensor(f_uncond, "f_uncond", dtype=x_hat.dtype)
    sigma_hat, sigma_next = _rows(sigma_hat, "sigma_hat", x_hat), _rows(sigma_next, "sigma_next", x_hat)
    (o,) = _out(out, 1)
    o = torch.empty_like(x_hat) if o is None else o
    _edm_heun_out(x_hat, deriv, x_next, f_cond, f_uncond, sigma_hat, sigma_next, float(guidance),
                  _sd(sigma_data), o)
    return o


def edm_noise(z0, eps, sigma, sigma_data: float = 0.5):
    """Noised, preconditioned training input: ``net_in = c_in (z0 + sigma eps)``, ``c_noise = ln(sigma)/4``.

    Args:
        z0: float tensor [B, d] of clean latents.
        eps: [B, d] standard normal noise.
        sigma: [B] noise levels (> 0), e.g. ``exp(P_mean + P_std * randn)``, or a float.
        sigma_data: data scale of the preconditioning.

    Returns:
        ``(net_in [B, d], c_noise [B])``; differentiable in ``z0`` and ``eps``.
    """
    z0 = _x(z0, "z0")
    eps = as_tensor(eps, "eps", dtype=z0.dtype)
    return _edm_noise(z0, eps, _rows(sigma, "sigma", z0), _sd(sigma_data))


def edm_loss(f, z0, eps, sigma, sigma_data: float = 0.5):
    """EDM-weighted denoising loss per row.

    With ``z = z0 + sigma eps`` and the network output ``f = F(c_in z, c_noise, y)``::

        loss[i] = lambda_i * mean_j (c_skip z + c_out f - z0)[i, j]^2,
        lambda  = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2

    Args:
        f: float tensor [B, d] network output.
        z0: [B, d] clean latents.
        eps: [B, d] the noise used to build the network input (see :func:`edm_noise`).
        sigma: [B] noise levels (> 0) or a float.
        sigma_data: data scale of the preconditioning.

    Returns:
        [B] per-row loss (take ``.mean()``); differentiable in ``f``, ``z0`` and ``eps``
        (not in ``sigma``).
    """
    f = _x(f, "f")
    z0 = as_tensor(z0, "z0", dtype=f.dtype)
    eps = as_tensor(eps, "eps", dtype=f.dtype)
    return _edm_loss(f, z0, eps, _rows(sigma, "sigma", f), _sd(sigma_data))
