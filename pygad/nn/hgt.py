"""Heterogeneous Graph Transformer (Hu et al., WWW 2020) on pygad's fused attention kernel.

The mathematics follow ``torch_geometric.nn.HGTConv`` so that weights move between the two
(:meth:`HGTConv.from_pyg`); the difference is how it runs: relation transforms are applied
per source *node* (never per edge) and the softmax-weighted aggregation over all relations of
a destination type is one native op that never builds an [E, H, D] tensor.
"""
from __future__ import annotations

import math
from typing import Dict, List, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parameter import UninitializedParameter

from ..ops import _reference, hetero_attention
from ..ops.hgt_blocks import GatedOutput, KeyValueProjection
from ._structure import DestinationCSR, HeteroStructure, adjacency_shape, cached_structure, clear_structure_cache

NodeType = str
EdgeType = Tuple[str, str, str]
Metadata = Tuple[List[NodeType], List[EdgeType]]


def _linear(in_features: int, out_features: int) -> nn.Module:
    """``nn.Linear``, or ``nn.LazyLinear`` for ``in_features=-1`` (width taken from the first input)."""
    return nn.LazyLinear(out_features) if in_features == -1 else nn.Linear(in_features, out_features)


def _is_lazy(lin: nn.Module) -> bool:
    return isinstance(lin.weight, UninitializedParameter)


def _materialize(lins: nn.ModuleDict, x_dict: Dict[NodeType, Tensor]) -> None:
    """Give the still-lazy linear layers of the node types in ``x_dict`` their input widths."""
    for nt, x in x_dict.items():
        if x is not None and nt in lins and _is_lazy(lins[nt]) and isinstance(x, Tensor) and x.dim() == 2:
            lins[nt](x[:0])   # LazyLinear materialises (and initialises) on its first call


def pyg_inputs(data) -> Tuple[Dict[NodeType, Tensor], Dict[EdgeType, Tensor]]:
    """``(x_dict, edge_index_dict)`` of a PyG ``HeteroData`` or ``Data``.

    ``(x_dict, edge_index_dict)`` of a PyG ``HeteroData`` or ``Data`` (duck-typed), with the
    node / edge type names :meth:`pygad.data.HeteroGraph.from_pyg` gives them. The stored tensors
    themselves are returned (no copy), so the structure cache hits on every forward.
    """
    from ..data.graph import DEFAULT_EDGE_TYPE, DEFAULT_NODE_TYPE

    if hasattr(data, "node_types") and hasattr(data, "edge_types"):   # HeteroData
        x_dict = {nt: data[nt].x for nt in data.node_types if getattr(data[nt], "x", None) is not None}
        ei = {tuple(et): data[et].edge_index for et in data.edge_types}
        return x_dict, ei
    if hasattr(data, "edge_index") and getattr(data, "x", None) is not None:   # homogeneous Data
        return {DEFAULT_NODE_TYPE: data.x}, {DEFAULT_EDGE_TYPE: data.edge_index}
    raise TypeError(f"expected x_dict and edge_index_dict, or a PyG HeteroData / Data with node features 'x', "
                    f"got {type(data).__name__}")


# ---- the layer -------------------------------------------------------------------------------
class HGTConv(nn.Module):
    r"""One Heterogeneous Graph Transformer layer.

    Per node type t: ``K, Q, V = split(x_t W^{kqv}_t + b)`` with H heads of width D. For each
    relation r = (s, r, t): ``K_s W^{att}_r``, ``V_s W^{msg}_r`` (per head, D x D) and prior
    ``mu_r`` (H). Each destination i attends over all incoming edges of all relations::

        alpha_ij = softmax_j( (Q_t[i] . K_s[j] W^att_r) * mu_r / sqrt(D) )
        h_i      = sum_j alpha_ij V_s[j] W^msg_r

    then ``y = W^out_t gelu(h) + b`` and, when the widths match, the gated skip
    ``sigmoid(s_t) y + (1 - sigmoid(s_t)) x``.

    A drop-in for ``torch_geometric.nn.HGTConv``: the same arguments, weights
    (:meth:`from_pyg`), outputs and ``repr``; lazy input widths (``-1``); each value of
    ``edge_index_dict`` a ``[2, E]`` edge index or a transposed sparse adjacency ``adj_t`` of
    shape ``[N_dst, N_src]`` (``torch.sparse`` CSR/CSC/COO, ``torch_sparse.SparseTensor``).
    A node type of ``x_dict`` that is no relation's destination maps to ``None`` in the output
    (PyG's contract: it receives no message); a destination type whose relations are all
    absent from ``edge_index_dict`` gets a defined output (zero aggregation, as PyG computes).
    ``None`` values in ``x_dict`` are ignored, so layers stack as in PyG.

    Args:
        in_channels: input width, one int for all node types or a dict per node type; ``-1``
            (for all or for some types) takes the width from the first forward.
        out_channels: output width F (divisible by ``heads``).
        metadata: ``(node_types, edge_types)`` with edge types as ``(src, rel, dst)``.
        heads: number of attention heads H.
        impl: ``"native"`` (fused kernel) or ``"reference"`` (per-edge pure torch, for tests).
    """

    def __init__(self, in_channels: Union[int, Dict[NodeType, int]], out_channels: int, metadata: Metadata,
                 heads: int = 1, impl: str = "native"):
        super().__init__()
        if out_channels % heads != 0:
            raise ValueError(f"'out_channels' ({out_channels}) must be divisible by 'heads' ({heads})")
        if impl not in ("native", "reference"):
            raise ValueError(f"'impl' must be 'native' or 'reference', got {impl!r}")
        node_types, edge_types = list(metadata[0]), [tuple(et) for et in metadata[1]]
        for et in edge_types:
            if len(et) != 3 or et[0] not in node_types or et[2] not in node_types:
                raise ValueError(f"edge type {et} in 'metadata' must be (src, rel, dst) over the node types "
                                 f"{node_types}")
        if not isinstance(in_channels, dict):
            in_channels = {nt: int(in_channels) for nt in node_types}
        missing = [nt for nt in node_types if nt not in in_channels]
        if missing:
            raise ValueError(f"'in_channels' has no entry for node types {missing}")
        bad = {nt: c for nt, c in in_channels.items() if int(c) != -1 and int(c) <= 0}
        if bad:
            raise ValueError(f"'in_channels' must be positive or -1 (lazy), got {bad}")
        self.in_channels = {nt: int(c) for nt, c in in_channels.items()}
        self.out_channels = out_channels
        self.heads = heads
        self.node_types = node_types
        self.edge_types = edge_types
        self.dst_node_types = {et[2] for et in edge_types}
        self.impl = impl
        H, D, R = heads, out_channels // heads, len(edge_types)
        self.kqv_lin = nn.ModuleDict({nt: _linear(self.in_channels[nt], 3 * out_channels) for nt in node_types})
        self.out_lin = nn.ModuleDict({nt: nn.Linear(out_channels, out_channels) for nt in node_types})
        self.k_rel = nn.Parameter(torch.empty(R, H, D, D))   # W^att per relation and head
        self.v_rel = nn.Parameter(torch.empty(R, H, D, D))   # W^msg per relation and head
        self.p_rel = nn.Parameter(torch.empty(R, H))         # prior mu per relation and head
        self.skip = nn.Parameter(torch.empty(len(node_types)))
        self._lazy = any(_is_lazy(lin) for lin in self.kqv_lin.values())
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise the projections, relation matrices, priors and skip gates."""
        for lin in list(self.kqv_lin.values()) + list(self.out_lin.values()):
            lin.reset_parameters()
        bound = 1.0 / math.sqrt(self.out_channels // self.heads)
        nn.init.uniform_(self.k_rel, -bound, bound)
        nn.init.uniform_(self.v_rel, -bound, bound)
        nn.init.ones_(self.p_rel)
        nn.init.ones_(self.skip)

    # -- validation ------------------------------------------------------------------------------
    def _check_inputs(self, x_dict, edge_index_dict) -> Dict[NodeType, int]:
        if not isinstance(x_dict, dict) or not isinstance(edge_index_dict, dict):
            raise TypeError("'x_dict' and 'edge_index_dict' must be dicts keyed by node / edge type")
        num_nodes = {}
        for nt, x in x_dict.items():
            if x is None:   # a type the previous layer sent no message to (PyG's None)
                continue
            if nt not in self.in_channels:
                raise ValueError(f"unknown node type {nt!r} in 'x_dict' (known: {self.node_types})")
            if not isinstance(x, Tensor):
                raise TypeError(f"'x_dict[{nt!r}]' must be a torch.Tensor, got {type(x).__name__}")
            w = self.kqv_lin[nt].weight
            width = -1 if isinstance(w, UninitializedParameter) else w.shape[1]
            if x.dim() != 2 or (width != -1 and x.shape[1] != width):
                raise ValueError(f"'x_dict[{nt!r}]' must have shape [N, {width if width != -1 else 'F'}], "
                                 f"got {list(x.shape)}")
            if not x.is_floating_point():
                raise TypeError(f"'x_dict[{nt!r}]' must be floating point, got {x.dtype}")
            num_nodes[nt] = x.shape[0]
        known = set(self.edge_types)
        for et, ei in edge_index_dict.items():
            et = tuple(et)
            if et not in known:
                raise ValueError(f"unknown edge type {et} in 'edge_index_dict' (known: {self.edge_types})")
            for nt in (et[0], et[2]):
                if nt not in num_nodes:
                    raise ValueError(f"edge type {et} needs features for node type {nt!r} in 'x_dict'")
            if not isinstance(ei, Tensor) or ei.layout != torch.strided:
                shape = adjacency_shape(ei)
                if shape is None:
                    raise TypeError(f"'edge_index_dict[{et}]' must be a torch.Tensor [2, E] or a transposed sparse "
                                    f"adjacency, got {type(ei).__name__}")
                want = (num_nodes[et[2]], num_nodes[et[0]])
                if shape != want:
                    raise ValueError(f"'edge_index_dict[{et}]' as a transposed adjacency must have shape "
                                     f"[N_dst, N_src] = {list(want)}, got {list(shape)}")
                continue
            if ei.dim() != 2 or ei.shape[0] != 2:
                raise ValueError(f"'edge_index_dict[{et}]' must have shape [2, E], got {list(ei.shape)}")
            if ei.dtype != torch.int64:
                raise TypeError(f"'edge_index_dict[{et}]' must be int64, got {ei.dtype}")
        return num_nodes

    def structure(self, x_dict, edge_index_dict) -> HeteroStructure:
        """The (cached) CSR structure of a graph; pass it to ``forward`` to skip the cache lookup."""
        num_nodes = self._check_inputs(x_dict, edge_index_dict)
        return cached_structure({tuple(k): v for k, v in edge_index_dict.items()}, num_nodes, self.edge_types)

    # -- forward ---------------------------------------------------------------------------------
    def forward(self, x_dict: Dict[NodeType, Tensor], edge_index_dict: Dict[EdgeType, Tensor],
                structure: HeteroStructure | None = None) -> Dict[NodeType, Tensor]:
        """One HGT layer: new features per node type from ``x_dict`` and the edges of ``edge_index_dict``."""
        if self._lazy:
            _materialize(self.kqv_lin, x_dict)
            self._lazy = any(_is_lazy(lin) for lin in self.kqv_lin.values())
        if structure is None:
            structure = self.structure(x_dict, edge_index_dict)
        Fo = self.out_channels
        q_dict, kv_dict = self._project(x_dict, structure)
        type_index = {nt: i for i, nt in enumerate(self.node_types)}
        out_dict = {}
        for nt, x in x_dict.items():
            if x is None:
                continue
            if nt not in self.dst_node_types:
                out_dict[nt] = None   # receives no message (PyG's contract)
                continue
            csr = structure.per_dst.get(nt)
            if csr is None:  # a destination type that received no edges in this graph
                agg = x.new_zeros((x.shape[0], Fo))
            else:
                agg = self._attend(q_dict[nt], kv_dict[nt], csr).reshape(-1, Fo)
            lin = self.out_lin[nt]
            if Fo != x.shape[-1]:                    # no skip connection across different widths
                out = lin(F.gelu(agg))
            elif self.impl == "native":
                out = GatedOutput.apply(agg, x, lin.weight, lin.bias, self.skip[type_index[nt]])
            else:
                out = torch.lerp(x, lin(F.gelu(agg)), self.skip[type_index[nt]].sigmoid())
            out_dict[nt] = out
        return out_dict

    def _project(self, x_dict, structure: HeteroStructure):
        """Queries per destination type and the stacked keys/values of its relations.

        Queries per destination type, and per destination type the keys/values of all its
        relations stacked in the kernel's concatenated source order.

        ``(x W_k^T + b_k) blockdiag(W_att_r)`` equals ``x (W_k^T blockdiag(W_att_r)) + b_k blockdiag(W_att_r)``:
        folding each relation's per-head D x D matrices into the projection weight (a tiny
        in x F x F product, batched over all relations) replaces per-relation matmuls over all
        source nodes. :class:`KeyValueProjection` then writes each relation's GEMM straight
        into its rows of the stacked K/V.
        """
        Fo, H = self.out_channels, self.heads
        D = Fo // H
        wq, bq, wkv, bkv = self._fold_weights(structure)
        q_dict, kv_dict = {}, {}
        for nt, csr in structure.per_dst.items():
            q_dict[nt] = F.linear(x_dict[nt], wq[nt], bq[nt]).view(-1, H, D)
            types = list(dict.fromkeys(csr.sources))             # distinct source types, in order
            src = [types.index(s) for s in csr.sources]
            rs = csr.relations
            kv = KeyValueProjection.apply(src, csr.src_rows, *(x_dict[t] for t in types),
                                           *(wkv[r] for r in rs), *(bkv[r] for r in rs))
            kv_dict[nt] = kv.view(-1, 2, H, D)                    # [M, 2, H, D]: key, then value, per row
        return q_dict, kv_dict

    def _fold_weights(self, structure: HeteroStructure):
        """Query, key and value weights per type and relation, relation matrices folded in.

        Query weights per destination type ([F, in], [F]) and, per relation, the key and value
        weights side by side ([in, 2F]) and biases ([2F]) with the relation's attention / message
        matrices folded in. With one input width for all node types this is a handful of batched
        ops for the whole layer (few autograd nodes: that overhead dominates small graphs).
        """
        Fo, H, R = self.out_channels, self.heads, len(self.edge_types)
        D = Fo // H
        dsts = list(structure.per_dst)
        lins = [self.kqv_lin[nt] for nt in self.node_types]
        mats = torch.cat([self.k_rel, self.v_rel])                               # [2R, H, D, D]
        if not self._lazy and len({lin.weight.shape[1] for lin in lins}) == 1:
            t_of = {nt: i for i, nt in enumerate(self.node_types)}
            w3 = torch.stack([lin.weight for lin in lins]).view(-1, Fo, lins[0].weight.shape[1])   # [3T, F, in]
            b3 = torch.stack([lin.bias for lin in lins]).view(-1, Fo)                            # [3T, F]
            # rows of w3: 3 t + 0 / 1 / 2 = key / query / value weights of node type t
            kv_rows = [3 * t_of[et[0]] for et in self.edge_types] + [3 * t_of[et[0]] + 2 for et in self.edge_types]
            kv_rows = torch.tensor(kv_rows, device=w3.device)
            w, b = w3.index_select(0, kv_rows), b3.index_select(0, kv_rows)
            fw = torch.matmul(w.view(2 * R, H, D, -1).transpose(-1, -2), mats)          # [2R, H, in, D]
            # -> [R, in, 2F]: relation r's key columns, then its value columns
            fw = fw.view(2, R, H, -1, D).permute(1, 3, 0, 2, 4).reshape(R, -1, 2 * Fo).unbind(0)
            fb = torch.matmul(b.view(2 * R, H, 1, D), mats).view(2, R, Fo).transpose(0, 1).reshape(R, 2 * Fo)
            fb = fb.unbind(0)
            q_rows = torch.tensor([3 * t_of[nt] + 1 for nt in dsts], device=w3.device)
            wq = dict(zip(dsts, w3.index_select(0, q_rows).unbind(0)))
            bq = dict(zip(dsts, b3.index_select(0, q_rows).unbind(0)))
        else:   # node types of different (or not yet known) input widths: per relation in the graph
            fw, fb = [None] * R, [None] * R
            for r in sorted({r for csr in structure.per_dst.values() for r in csr.relations}):
                lin = self.kqv_lin[self.edge_types[r][0]]
                ws, bs = [], []
                for part, m in ((0, mats[r]), (2, mats[R + r])):     # key, then value
                    w = lin.weight[part * Fo:(part + 1) * Fo]
                    ws.append(torch.matmul(w.view(H, D, -1).transpose(-1, -2), m).transpose(0, 1).reshape(-1, Fo))
                    bs.append(torch.matmul(lin.bias[part * Fo:(part + 1) * Fo].view(H, 1, D), m).view(Fo))
                fw[r], fb[r] = torch.cat(ws, 1), torch.cat(bs)
            wq = {nt: self.kqv_lin[nt].weight[Fo:2 * Fo] for nt in dsts}
            bq = {nt: self.kqv_lin[nt].bias[Fo:2 * Fo] for nt in dsts}
        return wq, bq, fw, fb

    def _attend(self, q: Tensor, kv: Tensor, csr: DestinationCSR) -> Tensor:
        mu = self.p_rel[csr.relations]
        if self.impl == "reference":
            return _reference.hetero_attention(q, kv, None, mu, csr.rowptr, csr.col, csr.rel)
        return hetero_attention(q, kv, None, mu, csr.rowptr, csr.col, csr.rel, csr.colptr, csr.row, csr.perm)

    # -- interop ---------------------------------------------------------------------------------
    @classmethod
    def from_pyg(cls, pyg_conv, impl: str = "native") -> "HGTConv":
        """A pygad layer with the weights of a ``torch_geometric.nn.HGTConv`` (same outputs)."""
        node_types = list(pyg_conv.node_types)
        edge_types = [tuple(et) for et in pyg_conv.edge_types]
        in_channels = {nt: -1 if _is_lazy(pyg_conv.kqv_lin.lins[nt]) else pyg_conv.kqv_lin.lins[nt].weight.shape[1]
                       for nt in node_types if nt in pyg_conv.kqv_lin.lins}
        conv = cls(in_channels, pyg_conv.out_channels, (node_types, edge_types), heads=pyg_conv.heads, impl=impl)
        ref = pyg_conv.k_rel.weight
        conv.to(device=ref.device, dtype=ref.dtype)
        conv.load_pyg_state(pyg_conv)
        return conv

    @torch.no_grad()
    def load_pyg_state(self, pyg_conv) -> None:
        """Copy the weights of a ``torch_geometric.nn.HGTConv`` with the same metadata into this layer."""
        if [tuple(et) for et in pyg_conv.edge_types] != self.edge_types:
            raise ValueError("the PyG layer's edge types differ from this layer's metadata")
        H, R = self.heads, len(self.edge_types)
        D = self.out_channels // H
        for nt in self.node_types:
            theirs = pyg_conv.kqv_lin.lins[nt]
            if not _is_lazy(theirs):   # a lazy PyG layer not run yet has no input weights to copy
                if _is_lazy(self.kqv_lin[nt]):
                    self.kqv_lin[nt](theirs.weight.new_empty(0, theirs.weight.shape[1]))
                self.kqv_lin[nt].weight.copy_(theirs.weight)
                self.kqv_lin[nt].bias.copy_(theirs.bias)
            self.out_lin[nt].weight.copy_(pyg_conv.out_lin.lins[nt].weight)
            self.out_lin[nt].bias.copy_(pyg_conv.out_lin.lins[nt].bias)
        self._lazy = any(_is_lazy(lin) for lin in self.kqv_lin.values())
        # PyG keeps one [D, D] matrix per (head, relation) at index h * R + r.
        self.k_rel.copy_(pyg_conv.k_rel.weight.view(H, R, D, D).transpose(0, 1))
        self.v_rel.copy_(pyg_conv.v_rel.weight.view(H, R, D, D).transpose(0, 1))
        for r, et in enumerate(self.edge_types):
            self.p_rel[r].copy_(pyg_conv.p_rel["__".join(et)].view(H))
        for i, nt in enumerate(self.node_types):
            self.skip[i].copy_(pyg_conv.skip[nt].view(()))

    def __repr__(self) -> str:
        # PyG's form (its input width is always printed as -1); the pure-torch twin says so
        impl = "" if self.impl == "native" else f", impl={self.impl!r}"
        return f"{self.__class__.__name__}(-1, {self.out_channels}, heads={self.heads}{impl})"


class HGT(nn.Module):
    """Multi-hop HGT encoder: per-type input projections, then ``num_layers`` HGTConv layers.

    Node types that are no relation's destination keep their projected features through the
    stack (an HGTConv alone maps them to ``None``), so every node type has an output embedding.

    ``forward`` takes ``(x_dict, edge_index_dict)`` or a PyG ``HeteroData`` / ``Data`` (node and
    edge types named as :meth:`pygad.data.HeteroGraph.from_pyg` names them).

    Args:
        in_channels: input width per node type (dict) or one int for all; ``-1`` takes it
            from the first forward.
        hidden_channels: width of every layer (and of the output).
        metadata: ``(node_types, edge_types)``.
        num_layers: number of HGT layers (hops); 4 by default.
        heads: attention heads per layer.
        dropout: dropout on the hidden features between layers.
        impl: ``"native"`` or ``"reference"`` (see :class:`HGTConv`).
    """

    def __init__(self, in_channels: Union[int, Dict[NodeType, int]], hidden_channels: int, metadata: Metadata,
                 num_layers: int = 4, heads: int = 4, dropout: float = 0.0, impl: str = "native"):
        super().__init__()
        node_types = list(metadata[0])
        if not isinstance(in_channels, dict):
            in_channels = {nt: int(in_channels) for nt in node_types}
        self.in_channels = {nt: int(c) for nt, c in in_channels.items()}
        self.hidden_channels = hidden_channels
        self.num_layers = num_layers
        self.dropout = dropout
        self.input_lin = nn.ModuleDict({nt: _linear(self.in_channels[nt], hidden_channels) for nt in node_types})
        self.convs = nn.ModuleList([HGTConv(hidden_channels, hidden_channels, metadata, heads=heads, impl=impl)
                                    for _ in range(num_layers)])

    def reset_parameters(self) -> None:
        """Re-initialise the input projections and every layer."""
        for lin in self.input_lin.values():
            lin.reset_parameters()
        for conv in self.convs:
            conv.reset_parameters()

    def forward(self, x_dict, edge_index_dict: Dict[EdgeType, Tensor] | None = None) -> Dict[NodeType, Tensor]:
        """Node embeddings per type from ``x_dict`` and ``edge_index_dict`` (or a PyG ``HeteroData``/``Data``)."""
        if edge_index_dict is None:
            x_dict, edge_index_dict = pyg_inputs(x_dict)
        _materialize(self.input_lin, x_dict)
        for nt, x in x_dict.items():
            if nt not in self.input_lin:
                raise ValueError(f"unknown node type {nt!r} in 'x_dict' (known: {list(self.input_lin)})")
            w = self.input_lin[nt].weight
            if x.dim() != 2 or x.shape[1] != w.shape[1]:
                raise ValueError(f"'x_dict[{nt!r}]' must have shape [N, {w.shape[1]}], got {list(x.shape)}")
        h = {nt: F.relu(self.input_lin[nt](x)) for nt, x in x_dict.items()}
        structure = self.convs[0].structure(h, edge_index_dict) if self.convs else None
        for conv in self.convs:
            if self.dropout > 0:
                h = {nt: F.dropout(v, self.dropout, self.training) for nt, v in h.items()}
            out = conv(h, edge_index_dict, structure=structure)
            h = {nt: v if out.get(nt) is None else out[nt] for nt, v in h.items()}
        return h

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(in_channels={self.in_channels}, hidden_channels={self.hidden_channels}, "
                f"num_layers={self.num_layers}, heads={self.convs[0].heads if self.convs else 0})")


__all__ = ["HGT", "HGTConv", "HeteroStructure", "clear_structure_cache", "pyg_inputs"]
