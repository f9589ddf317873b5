"""Heterogeneous Graph Transformer (Hu et al., WWW 2020) on pygad's fused attention kernel.

The mathematics follow ``torch_geometric.nn.HGTConv`` so that weights move between the two
(:meth:`HGTConv.from_pyg`); the difference is how it runs: relation transforms are applied
per source *node* (never per edge) and the softmax-weighted aggregation over all relations of
a destination type is one native op that never builds an [E, H, D] tensor.
"""
from __future__ import annotations

import math
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, List, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ops import csr_transpose, hetero_attention, hetero_csr
from ..ops import _reference

NodeType = str
EdgeType = Tuple[str, str, str]
Metadata = Tuple[List[NodeType], List[EdgeType]]


# ---- graph structure: CSR per destination type, built once per graph ------------------------
@dataclass
class DestinationCSR:
    """All relations ending in one node type, merged into one CSR (and its transpose)."""
    relations: List[int]          # global edge-type index of each local relation
    sources: List[NodeType]       # source node type of each local relation
    num_src: List[int]            # source count of each local relation
    rowptr: Tensor
    col: Tensor                   # index into the concatenated source space
    rel: Tensor                   # local relation id per entry
    colptr: Tensor
    row: Tensor
    perm: Tensor


class HeteroStructure:
    """Destination-sorted CSR/CSC of a heterogeneous graph, for every destination node type."""

    def __init__(self, edge_index_dict: Dict[EdgeType, Tensor], num_nodes: Dict[NodeType, int],
                 edge_types: List[EdgeType]):
        index = {et: i for i, et in enumerate(edge_types)}
        per_dst: Dict[NodeType, List[EdgeType]] = {}
        for et in edge_index_dict:
            per_dst.setdefault(et[2], []).append(et)
        self.per_dst: Dict[NodeType, DestinationCSR] = {}
        for dst, ets in per_dst.items():
            eis = [edge_index_dict[et] for et in ets]
            num_src = [num_nodes[et[0]] for et in ets]
            rowptr, col, rel, _ = hetero_csr(eis, num_src, num_nodes[dst])
            colptr, row, perm = csr_transpose(rowptr, col, sum(num_src))
            self.per_dst[dst] = DestinationCSR([index[et] for et in ets], [et[0] for et in ets], num_src,
                                               rowptr, col, rel, colptr, row, perm)


class _StructureCache:
    """A few recently used structures, keyed by the identity and version of the edge tensors.

    Entries hold only weak references to the edge tensors: when one is freed its entry goes,
    and a new tensor that happens to reuse a freed id can never hit a stale entry.
    """

    def __init__(self, size: int = 8):
        self.size = size
        self.entries: "OrderedDict[tuple, tuple]" = OrderedDict()

    @staticmethod
    def _key(edge_index_dict, num_nodes):
        return tuple((et, id(t), t._version, t.device.type) for et, t in edge_index_dict.items()) + \
            tuple(sorted(num_nodes.items()))

    def get(self, edge_index_dict, num_nodes, edge_types) -> HeteroStructure:
        key = self._key(edge_index_dict, num_nodes)
        hit = self.entries.get(key)
        if hit is not None:
            refs, structure = hit
            if all(r() is t for r, t in zip(refs, edge_index_dict.values())):
                self.entries.move_to_end(key)
                return structure
        structure = HeteroStructure(edge_index_dict, num_nodes, edge_types)
        refs = [weakref.ref(t) for t in edge_index_dict.values()]
        for t in edge_index_dict.values():
            weakref.finalize(t, self.entries.pop, key, None)
        self.entries[key] = (refs, structure)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)
        return structure

    def clear(self):
        self.entries.clear()


_structure_cache = _StructureCache()


def clear_structure_cache() -> None:
    """Forget all cached graph structures (they are rebuilt on the next forward)."""
    _structure_cache.clear()


# ---- the layer -------------------------------------------------------------------------------
class HGTConv(nn.Module):
    r"""One Heterogeneous Graph Transformer layer.

    Per node type t: ``K, Q, V = split(x_t W^{kqv}_t + b)`` with H heads of width D. For each
    relation r = (s, r, t): ``K_s W^{att}_r``, ``V_s W^{msg}_r`` (per head, D x D) and prior
    ``mu_r`` (H). Each destination i attends over all incoming edges of all relations::

        alpha_ij = softmax_j( (Q_t[i] . K_s[j] W^att_r) * mu_r / sqrt(D) )
        h_i      = sum_j alpha_ij V_s[j] W^msg_r

    then ``y = W^out_t gelu(h) + b`` and, when the widths match, the gated skip
    ``sigmoid(s_t) y + (1 - sigmoid(s_t)) x``. Node types that are no relation's destination
    are left out of the output (as in PyG); a destination type without incoming edges in the
    given graph still gets a defined output (its aggregation is zero).

    Args:
        in_channels: input width, one int for all node types or a dict per node type.
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
        self.in_channels = dict(in_channels)
        self.out_channels = out_channels
        self.heads = heads
        self.node_types = node_types
        self.edge_types = edge_types
        self.dst_node_types = {et[2] for et in edge_types}
        self.impl = impl
        H, D, R = heads, out_channels // heads, len(edge_types)
        self.kqv_lin = nn.ModuleDict({nt: nn.Linear(self.in_channels[nt], 3 * out_channels) for nt in node_types})
        self.out_lin = nn.ModuleDict({nt: nn.Linear(out_channels, out_channels) for nt in node_types})
        self.k_rel = nn.Parameter(torch.empty(R, H, D, D))   # W^att per relation and head
        self.v_rel = nn.Parameter(torch.empty(R, H, D, D))   # W^msg per relation and head
        self.p_rel = nn.Parameter(torch.empty(R, H))         # prior mu per relation and head
        self.skip = nn.Parameter(torch.empty(len(node_types)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
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
            if nt not in self.in_channels:
                raise ValueError(f"unknown node type {nt!r} in 'x_dict' (known: {self.node_types})")
            if not isinstance(x, Tensor):
                raise TypeError(f"'x_dict[{nt!r}]' must be a torch.Tensor, got {type(x).__name__}")
            if x.dim() != 2 or x.shape[1] != self.in_channels[nt]:
                raise ValueError(f"'x_dict[{nt!r}]' must have shape [N, {self.in_channels[nt]}], "
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
            if not isinstance(ei, Tensor):
                raise TypeError(f"'edge_index_dict[{et}]' must be a torch.Tensor, got {type(ei).__name__}")
            if ei.dim() != 2 or ei.shape[0] != 2:
                raise ValueError(f"'edge_index_dict[{et}]' must have shape [2, E], got {list(ei.shape)}")
            if ei.dtype != torch.int64:
                raise TypeError(f"'edge_index_dict[{et}]' must be int64, got {ei.dtype}")
        return num_nodes

    def structure(self, x_dict, edge_index_dict) -> HeteroStructure:
        """The (cached) CSR structure of a graph; pass it to ``forward`` to skip the cache lookup."""
        num_nodes = self._check_inputs(x_dict, edge_index_dict)
        return _structure_cache.get({tuple(k): v for k, v in edge_index_dict.items()}, num_nodes, self.edge_types)

    # -- forward ---------------------------------------------------------------------------------
    def forward(self, x_dict: Dict[NodeType, Tensor], edge_index_dict: Dict[EdgeType, Tensor],
                structure: HeteroStructure | None = None) -> Dict[NodeType, Tensor]:
        if structure is None:
            structure = self.structure(x_dict, edge_index_dict)
        Fo = self.out_channels
        q_dict, kv_dict = self._project(x_dict, structure)
        type_index = {nt: i for i, nt in enumerate(self.node_types)}
        out_dict = {}
        for nt, x in x_dict.items():
            if nt not in self.dst_node_types:
                continue
            csr = structure.per_dst.get(nt)
            if csr is None:  # a destination type that received no edges in this graph
                agg = x.new_zeros((x.shape[0], Fo))
            else:
                agg = self._attend(q_dict[nt], kv_dict, csr).reshape(-1, Fo)
            out = self.out_lin[nt](F.gelu(agg))
            if out.shape[-1] == x.shape[-1]:
                gate = self.skip[type_index[nt]].sigmoid()
                out = gate * out + (1 - gate) * x
            out_dict[nt] = out
        return out_dict

    def _project(self, x_dict, structure: HeteroStructure):
        """Queries of destination types and relation-transformed keys/values, one GEMM per node type.

        ``(x W_k^T + b_k) blockdiag(W_att_r)`` equals ``x (W_k^T blockdiag(W_att_r)) + b_k blockdiag(W_att_r)``:
        folding each relation's per-head D x D matrices into the projection weight (a tiny
        in x F x F product) replaces per-relation batched matmuls over all source nodes.
        """
        Fo, H = self.out_channels, self.heads
        D = Fo // H
        outgoing: Dict[NodeType, List[int]] = {}
        for csr in structure.per_dst.values():
            for r, s in zip(csr.relations, csr.sources):
                outgoing.setdefault(s, []).append(r)
        q_dict, kv_dict = {}, {}
        for nt, x in x_dict.items():
            lin = self.kqv_lin[nt]
            w_k, w_q, w_v = torch.tensor_split(lin.weight, 3, dim=0)     # each [F, in]
            b_k, b_q, b_v = torch.tensor_split(lin.bias, 3, dim=0)
            ws, bs = [], []
            if nt in self.dst_node_types:
                ws.append(w_q.t())
                bs.append(b_q)
            rels = outgoing.get(nt, [])
            for r in rels:
                att = torch.block_diag(*self.k_rel[r])                    # [F, F]
                msg = torch.block_diag(*self.v_rel[r])
                ws += [w_k.t() @ att, w_v.t() @ msg]
                bs += [b_k @ att, b_v @ msg]
            if not ws:
                continue
            y = torch.addmm(torch.cat(bs), x, torch.cat(ws, dim=1))        # [N, F * (q? + 2 R_s)]
            parts = torch.split(y, Fo, dim=1)
            if nt in self.dst_node_types:
                q_dict[nt] = parts[0].reshape(-1, H, D)
                parts = parts[1:]
            for i, r in enumerate(rels):
                kv_dict[r] = (parts[2 * i], parts[2 * i + 1])
        return q_dict, kv_dict

    def _attend(self, q: Tensor, kv_dict, csr: DestinationCSR) -> Tensor:
        H = self.heads
        D = self.out_channels // H
        ks = [kv_dict[r][0] for r in csr.relations]
        vs = [kv_dict[r][1] for r in csr.relations]
        k = (torch.cat(ks, 0) if len(ks) > 1 else ks[0].contiguous()).view(-1, H, D)
        v = (torch.cat(vs, 0) if len(vs) > 1 else vs[0].contiguous()).view(-1, H, D)
        mu = self.p_rel[csr.relations]
        if self.impl == "reference":
            return _reference.hetero_attention(q, k, v, mu, csr.rowptr, csr.col, csr.rel)
        return hetero_attention(q, k, v, mu, csr.rowptr, csr.col, csr.rel, csr.colptr, csr.row, csr.perm)

    # -- interop ---------------------------------------------------------------------------------
    @classmethod
    def from_pyg(cls, pyg_conv, impl: str = "native") -> "HGTConv":
        """A pygad layer with the weights of a ``torch_geometric.nn.HGTConv`` (same outputs)."""
        node_types = list(pyg_conv.node_types)
        edge_types = [tuple(et) for et in pyg_conv.edge_types]
        in_channels = {nt: pyg_conv.kqv_lin.lins[nt].weight.shape[1] for nt in node_types
                       if nt in pyg_conv.kqv_lin.lins}
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
            for ours, theirs in ((self.kqv_lin[nt], pyg_conv.kqv_lin.lins[nt]), (self.out_lin[nt],
                                                                                 pyg_conv.out_lin.lins[nt])):
                ours.weight.copy_(theirs.weight)
                ours.bias.copy_(theirs.bias)
        # PyG keeps one [D, D] matrix per (head, relation) at index h * R + r.
        self.k_rel.copy_(pyg_conv.k_rel.weight.view(H, R, D, D).transpose(0, 1))
        self.v_rel.copy_(pyg_conv.v_rel.weight.view(H, R, D, D).transpose(0, 1))
        for r, et in enumerate(self.edge_types):
            self.p_rel[r].copy_(pyg_conv.p_rel["__".join(et)].view(H))
        for i, nt in enumerate(self.node_types):
            self.skip[i].copy_(pyg_conv.skip[nt].view(()))

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, heads={self.heads}, "
                f"node_types={len(self.node_types)}, edge_types={len(self.edge_types)}, impl={self.impl!r}")

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.extra_repr()})"


class HGT(nn.Module):
    """Multi-hop HGT encoder: per-type input projections, then ``num_layers`` HGTConv layers.

    Node types that are no relation's destination keep their projected features through the
    stack (an HGTConv alone drops them), so every node type has an output embedding.

    Args:
        in_channels: input width per node type (dict) or one int for all.
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
        self.in_channels = dict(in_channels)
        self.hidden_channels = hidden_channels
        self.num_layers = num_layers
        self.dropout = dropout
        self.input_lin = nn.ModuleDict({nt: nn.Linear(in_channels[nt], hidden_channels) for nt in node_types})
        self.convs = nn.ModuleList([HGTConv(hidden_channels, hidden_channels, metadata, heads=heads, impl=impl)
                                    for _ in range(num_layers)])

    def reset_parameters(self) -> None:
        for lin in self.input_lin.values():
            lin.reset_parameters()
        for conv in self.convs:
            conv.reset_parameters()

    def forward(self, x_dict: Dict[NodeType, Tensor], edge_index_dict: Dict[EdgeType, Tensor]) -> Dict[NodeType,
                                                                                                        Tensor]:
        for nt, x in x_dict.items():
            if nt not in self.input_lin:
                raise ValueError(f"unknown node type {nt!r} in 'x_dict' (known: {list(self.input_lin)})")
            if x.dim() != 2 or x.shape[1] != self.in_channels[nt]:
                raise ValueError(f"'x_dict[{nt!r}]' must have shape [N, {self.in_channels[nt]}], "
                                 f"got {list(x.shape)}")
        h = {nt: F.relu(self.input_lin[nt](x)) for nt, x in x_dict.items()}
        structure = self.convs[0].structure(h, edge_index_dict) if self.convs else None
        for conv in self.convs:
            if self.dropout > 0:
                h = {nt: F.dropout(v, self.dropout, self.training) for nt, v in h.items()}
            out = conv(h, edge_index_dict, structure=structure)
            h = {nt: out.get(nt, v) for nt, v in h.items()}
        return h

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(in_channels={self.in_channels}, hidden_channels={self.hidden_channels}, "
                f"num_layers={self.num_layers}, heads={self.convs[0].heads if self.convs else 0})")
