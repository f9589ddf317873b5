"""The latent denoiser of :class:`pygad.models.LatentDiffusion`: an MLP ``F(c_in x, c_noise, y)``.

EDM preconditioning (:mod:`pygad.ops.diffusion_step`) wraps it into the denoiser
``D(x; sigma, y) = c_skip x + c_out F(c_in x, c_noise, y)``; this module is only ``F``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as tF
from torch import Tensor, nn


class _ResidualBlock(nn.Module):
    """``h + W2 SiLU(W1 LayerNorm(h) + cond)``, the conditioning added inside each block."""

    def __init__(self, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.fc1 = nn.Linear(hidden, hidden)
        self.fc2 = nn.Linear(hidden, hidden)

    def forward(self, h: Tensor, cond: Tensor) -> Tensor:
        return h + self.fc2(tF.silu(self.fc1(self.norm(h)) + cond))


class LatentDenoiser(nn.Module):
    """MLP denoiser over latent vectors, conditioned on the noise level and a class label.

    The noise level enters as fixed sinusoidal (Fourier) features of ``c_noise`` followed by a
    two-layer MLP; the label through an embedding table with one extra *null* row (index
    ``num_classes``) used for unconditional evaluations and label dropout (classifier-free
    guidance). Their sum, projected once per block, shifts the hidden units of ``num_layers``
    pre-norm residual SiLU blocks. The output layer starts at zero (``F = 0``, so the EDM
    denoiser starts as ``c_skip x``).

    Args:
        dim: latent dimension d.
        hidden: width of the MLP.
        num_layers: residual blocks.
        num_classes: labels 0..num_classes-1; ``num_classes`` is the null label.
        label_dropout: probability with which :meth:`drop_labels` replaces a training label
            by the null label.
        noise_channels: sinusoidal features of ``c_noise`` (even).
        max_frequency: highest angular frequency of those features (lowest is 1).

    Shapes:
        ``forward(x [N, d], c_noise [N], y [N] int64 or None) -> [N, d]``.
    """

    def __init__(self, dim: int, hidden: int = 512, num_layers: int = 4, num_classes: int = 2,
                 label_dropout: float = 0.1, noise_channels: int = 128, max_frequency: float = 256.0):
        super().__init__()
        if dim < 1 or hidden < 1 or num_layers < 1 or num_classes < 1:
            raise ValueError("'dim', 'hidden', 'num_layers' and 'num_classes' must be positive")
        if noise_channels < 2 or noise_channels % 2:
            raise ValueError(f"'noise_channels' must be an even number >= 2, got {noise_channels}")
        if not 0.0 <= label_dropout < 1.0:
            raise ValueError(f"'label_dropout' must be in [0, 1), got {label_dropout}")
        self.dim, self.hidden, self.num_layers = dim, hidden, num_layers
        self.num_classes, self.label_dropout = num_classes, label_dropout
        self.noise_channels, self.max_frequency = noise_channels, max_frequency
        half = noise_channels // 2
        freqs = torch.exp(torch.linspace(0.0, math.log(max_frequency), half))
        self.register_buffer("freqs", freqs, persistent=False)
        self.noise_mlp = nn.Sequential(nn.Linear(noise_channels, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.label_emb = nn.Embedding(num_classes + 1, hidden)
        self.cond_proj = nn.Linear(hidden, num_layers * hidden)
        self.in_proj = nn.Linear(dim, hidden)
        self.blocks = nn.ModuleList(_ResidualBlock(hidden) for _ in range(num_layers))
        self.out_norm = nn.LayerNorm(hidden)
        self.out_proj = nn.Linear(hidden, dim)
        self.reset_parameters()

    @property
    def null_label(self) -> int:
        """The label index of the unconditional (dropped) label."""
        return self.num_classes

    def reset_parameters(self) -> None:
        """Re-initialise all weights (the output projection to zero)."""
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.LayerNorm, nn.Embedding)) and m is not self:
                m.reset_parameters()
        nn.init.normal_(self.label_emb.weight, std=0.02)
        nn.init.zeros_(self.out_proj.weight)
        nn.init.zeros_(self.out_proj.bias)

    def drop_labels(self, y: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``y`` with each entry replaced by the null label with probability ``label_dropout``."""
        if self.label_dropout <= 0:
            return y
        u = torch.rand(y.shape, generator=generator, device=y.device)
        return torch.where(u < self.label_dropout, torch.full_like(y, self.null_label), y)

    def _labels(self, y: Tensor | None, n: int, device) -> Tensor:
        if y is None:
            return torch.full((n,), self.null_label, dtype=torch.long, device=device)
        y = torch.as_tensor(y, device=device)
        if y.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"'y' must be an integer tensor of labels, got {y.dtype}")
        if y.numel() and (int(y.min()) < 0 or int(y.max()) > self.num_classes):
            raise ValueError(f"'y' must hold labels in [0, {self.num_classes}] ({self.num_classes} = null label)")
        return y.long()

    def condition(self, c_noise: Tensor, y: Tensor) -> Tensor:
        """Per-block shifts [..., num_layers * hidden] from ``c_noise`` [...] and labels [...]."""
        ang = c_noise.to(self.freqs.dtype)[..., None] * self.freqs
        emb = self.noise_mlp(torch.cat([ang.cos(), ang.sin()], dim=-1).to(self.in_proj.weight.dtype))
        return self.cond_proj(tF.silu(emb + self.label_emb(y)))

    def _trunk(self, x: Tensor, cond: Tensor) -> Tensor:
        h = self.in_proj(x)
        for k, block in enumerate(self.blocks):
            h = block(h, cond[..., k * self.hidden:(k + 1) * self.hidden])
        return self.out_proj(tF.silu(self.out_norm(h)))

    def forward(self, x: Tensor, c_noise: Tensor, y: Tensor | None = None) -> Tensor:
        """``F(x, c_noise, y)`` for network inputs x [N, d] (already scaled by c_in).

        Args:
            x: [N, d] preconditioned latents ``c_in * z``.
            c_noise: [N] noise conditioning ``ln(sigma) / 4`` (or one value for all rows).
            y: [N] labels in ``[0, num_classes]``; None means the null label for all rows.
        """
        n = x.shape[0]
        c_noise = torch.as_tensor(c_noise, dtype=x.dtype, device=x.device).reshape(-1).expand(n)
        return self._trunk(x, self.condition(c_noise, self._labels(y, n, x.device)))

    def forward_groups(self, x: Tensor, c_noise: float | Tensor, labels) -> Tensor:
        """``F`` for G equal row groups sharing one noise level and one label per group.

        The conditioning is computed once per group (not per row) and broadcast: how a sampler
        evaluates the stacked conditional/unconditional batch of classifier-free guidance.

        Args:
            x: [G * B, d] network inputs, group g in rows ``g*B:(g+1)*B``.
            c_noise: the shared noise conditioning (float or 0-dim/1-element tensor).
            labels: G labels (sequence or int64 tensor), ``num_classes`` for the null label.

        Returns:
            [G * B, d], the same as :meth:`forward` with per-row ``c_noise`` and labels.
        """
        y = self._labels(torch.as_tensor(labels, dtype=torch.long), len(labels), x.device)
        g = y.shape[0]
        if x.shape[0] % g:
            raise ValueError(f"'x' has {x.shape[0]} rows, not a multiple of the {g} groups")
        c = torch.as_tensor(c_noise, dtype=x.dtype, device=x.device).reshape(-1)[:1].expand(g)
        cond = self.condition(c, y)[:, None, :]                        # [G, 1, L*H]
        return self._trunk(x.reshape(g, -1, x.shape[1]), cond).reshape(x.shape[0], -1)

    def extra_repr(self) -> str:
        """The module's sizes for ``repr``."""
        return (f"dim={self.dim}, hidden={self.hidden}, num_layers={self.num_layers}, "
                f"num_classes={self.num_classes}, label_dropout={self.label_dropout}")
