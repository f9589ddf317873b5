"""Label-conditioned decoders of :class:`pygad.models.GraphVAE`.

Each decoder reads latents ``z`` and label embeddings ``e(y)`` (0 normal, 1 anomaly, 2
unknown): :class:`FeatureDecoder` node features of one node type, :class:`PairScorer` the edge
logit of one relation, :class:`TimeDecoder` the normalised time of an edge of a temporal
relation.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["FeatureDecoder", "PairScorer", "TimeDecoder", "mlp"]


def mlp(i: int, h: int, o: int, layers: int = 2) -> nn.Sequential:
    """``layers`` linear layers ``i -> h -> ... -> o`` with SiLU between them."""
    mods: list = []
    d = i
    for _ in range(layers - 1):
        mods += [nn.Linear(d, h), nn.SiLU()]
        d = h
    mods.append(nn.Linear(d, o))
    return nn.Sequential(*mods)


class FeatureDecoder(nn.Module):
    """``x_hat = MLP([z, e(y)])`` for one node type (standardised features)."""

    def __init__(self, latent_dim: int, out_channels: int, hidden: int, label_dim: int):
        super().__init__()
        self.net = mlp(latent_dim + label_dim, hidden, out_channels, layers=3)

    def forward(self, z: Tensor, ey: Tensor) -> Tensor:
        """Standardised features from latents ``z`` and label embeddings ``ey``."""
        return self.net(torch.cat([z, ey], dim=-1))


class PairScorer(nn.Module):
    """Edge logit of a relation ``u -> v``: ``z_u^T W z_v + MLP([z_u*z_v, |z_u-z_v|, e(y_u), e(y_v)])``.

    The bilinear term is asymmetric (directed relations), the MLP sees the element-wise
    interaction of the two latents and both labels.
    """

    def __init__(self, latent_dim: int, hidden: int, label_dim: int):
        super().__init__()
        self.W = nn.Parameter(torch.zeros(latent_dim, latent_dim))
        self.mlp = mlp(2 * latent_dim + 2 * label_dim, hidden, 1, layers=2)
        nn.init.normal_(self.W, std=0.1 / math.sqrt(latent_dim))

    def bilinear(self, zu: Tensor, zv: Tensor) -> Tensor:
        """The cheap term for all pairs: [Nu, Nv] (used to shortlist candidates)."""
        return (zu @ self.W) @ zv.T

    def forward(self, zu: Tensor, zv: Tensor, eu: Tensor, ev: Tensor) -> Tensor:
        """Edge logits of the pairs ``(u, v)`` from their latents and label embeddings."""
        inter = torch.cat([zu * zv, (zu - zv).abs(), eu, ev], dim=-1)
        return ((zu @ self.W) * zv).sum(-1) + self.mlp(inter).squeeze(-1)


class TimeDecoder(nn.Module):
    """Normalised edge time in [0, 1] of a temporal relation from ``[z_u, z_v, e(y_u), e(y_v)]``."""

    def __init__(self, latent_dim: int, hidden: int, label_dim: int):
        super().__init__()
        self.net = mlp(2 * latent_dim + 2 * label_dim, hidden, 1, layers=2)

    def forward(self, zu, zv, eu, ev) -> Tensor:
        """Normalised edge times in [0, 1] of the pairs ``(u, v)``."""
        return torch.sigmoid(self.net(torch.cat([zu, zv, eu, ev], dim=-1)).squeeze(-1))
