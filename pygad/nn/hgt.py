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
from typing import Dict, List, Optional, Tuple, Union

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
    num_src: List[int]            # source count of each local relation (after compaction)
    src_rows: List[Optional[Tensor]]   # per relation: the source rows that have edges, or None = all
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
            eis, num_src, src_rows = [], [], []
            for et in ets:
                ei, n, rows = _compact_sources(edge_index_dict[et], num_nodes[et[0]])
                eis.append(ei)
                num_src.append(n)
                src_rows.append(rows)
            rowptr, col, rel, _ = hetero_csr(eis, num_src, num_nodes[dst])
            colptr, row, perm = csr_transpose(rowptr, col, sum(num_src))
            self.per_dst[dst] = DestinationCSR([index[et] for et in ets], [et[0] for et in ets], num_src, src_rows,
                                               rowptr, col, rel, colptr, row, perm)


# The native layer's output block runs as one autograd node (_GatedOutput); False = plain
# torch ops (the reference layer always uses those), for A/B measurements.
_FUSED_OUTPUT = True

# A relation whose edges touch fewer than this fraction of its source type's nodes gets its
# keys/values computed for those sources only (sampled mini-batch subgraphs: each of many
# relations reaches a small part of every node type).
_COMPACT_BELOW = 0.5


def _compact_sources(ei: Tensor, num_src: int) -> Tuple[Tensor, int, Optional[Tensor]]:
    """``(edge_index, num_src, rows)``: sources renumbered to the rows that have edges when they
    are few (``rows`` = their original ids), else the input unchanged with ``rows=None``."""
    if ei.shape[1] >= _COMPACT_BELOW * num_src:   # cannot be sparse enough: skip the unique
        return ei, num_src, None
    rows, inverse = torch.unique(ei[0], sorted=True, return_inverse=True)
    out_of_range = rows.numel() > 0 and (int(rows[0]) < 0 or int(rows[-1]) >= num_src)
    if out_of_range or rows.numel() >= _COMPACT_BELOW * num_src:
        return ei, num_src, None   # (bad indices: left for hetero_csr to report)
    return torch.stack([inverse, ei[1]]), int(rows.numel()), rows


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


# ---- key/value projections -------------------------------------------------------------------
class _KeyValueProjection(torch.autograd.Function):
    """Keys and values of all relations into one destination type, in one [M, 2F] buffer in the
    kernel's concatenated source order: row block r is ``x_{s_r}[rows_r] @ [Wk_r | Wv_r] + [bk_r | bv_r]``,
    so each source row's key sits next to its value (the attention op's interleaved layout).

    One GEMM per relation writes straight into its rows (no ``torch.cat``; x is read once for
    both keys and values), and the backward reads the gradient's rows as views: one GEMM for the
    input gradient and one for the weight gradient per relation, and one input gradient per
    distinct source tensor (relations sharing a source type, or using a compacted subset
    ``rows_r`` of it, accumulate into it in place instead of each returning a full-size gradient
    for autograd to add up).

    Called as ``apply(src, rows, x_1..x_S, w_1..w_n, b_1..b_n)``: ``src[r]`` is the index of
    relation r's source tensor among the S tensors ``x``, ``rows[r]`` its source rows (int64) or
    None for all; weights [in, 2F], biases [2F].
    """

    @staticmethod
    def forward(ctx, src, rows, *args):
        n = len(src)
        S = len(args) - 2 * n
        xs, ws, bs = args[:S], args[S:S + n], args[S + n:]
        counts = [xs[src[r]].shape[0] if rows[r] is None else rows[r].numel() for r in range(n)]
        kv = xs[0].new_empty((sum(counts), ws[0].shape[1]))
        o = 0
        for r, m in enumerate(counts):
            x = xs[src[r]] if rows[r] is None else xs[src[r]].index_select(0, rows[r])
            torch.addmm(bs[r], x, ws[r], out=kv[o:o + m])
            o += m
        ctx.src, ctx.rows, ctx.counts, ctx.S = src, rows, counts, S
        ctx.save_for_backward(*xs, *ws)
        return kv

    @staticmethod
    def backward(ctx, grad_kv):
        src, rows, counts, S = ctx.src, ctx.rows, ctx.counts, ctx.S
        n = len(src)
        saved = ctx.saved_tensors
        xs, ws = saved[:S], saved[S:]
        need = ctx.needs_input_grad[2:]
        gx = [None] * S
        gw, gb = [None] * n, [None] * n
        g_all = grad_kv.contiguous()
        o = 0
        for r, m in enumerate(counts):
            g = g_all[o:o + m]
            o += m
            s = src[r]
            if need[s]:
                if rows[r] is None:       # accumulate straight into the source's gradient
                    if gx[s] is None:
                        gx[s] = g @ ws[r].t()
                    else:
                        gx[s].addmm_(g, ws[r].t())
                else:                     # a compacted subset: scatter its rows in place
                    if gx[s] is None:
                        gx[s] = torch.zeros_like(xs[s])
                    gx[s].index_add_(0, rows[r], g @ ws[r].t())
            if need[S + r]:
                x = xs[s] if rows[r] is None else xs[s].index_select(0, rows[r])
                gw[r] = x.t() @ g
            if need[S + n + r]:
                gb[r] = g.sum(0)
        return (None, None, *gx, *gw, *gb)


# ---- output block: gelu, output projection and gated skip in one autograd node ---------------
class _GatedOutput(torch.autograd.Function):
    """``out = s * (gelu(agg) W^T + b) + (1 - s) * x`` with ``s = sigmoid(gate)``.

    The same value as ``torch.lerp(x, linear(gelu(agg)), s)``, computed with fewer passes over
    [N, F] memory (on small graphs an HGT step is bound by memory traffic, not FLOPs): the
    forward writes ``(1 - s) x + s b`` once and lets the GEMM accumulate into it; the backward
    needs no ``y - x`` tensor because ``sum(grad * (y - x)) = <W, grad^T h> + <b, colsum(grad)>
    - <grad, x>``, and ``grad^T h`` is the weight gradient's GEMM anyway.
    """

    @staticmethod
    def forward(ctx, agg, x, weight, bias, gate):
        s = torch.sigmoid(gate)
        h = F.gelu(agg)
        out = torch.lerp(x, bias, s)                 # (1 - s) x + s b
        out.addmm_(h, (weight * s).t())              # + s h W^T
        ctx.save_for_backward(agg, h, x, weight, bias, s)
        return out

    @staticmethod
    def backward(ctx, grad):
        agg, h, x, weight, bias, s = ctx.saved_tensors
        need_agg, need_x, need_w, need_b, need_gate = ctx.needs_input_grad
        grad = grad.contiguous()
        g_agg = g_x = g_w = g_b = g_gate = None
        if need_agg:
            g_agg = torch.ops.aten.gelu_backward(grad @ (weight * s), agg)
        if need_x:
            g_x = grad * (1 - s)
        if need_w or need_b or need_gate:
            colsum = grad.sum(0)
            prod = grad.t() @ h                      # [F_out, F_in]: grad^T h
            g_w = prod * s if need_w else None
            g_b = colsum * s if need_b else None
            if need_gate:
                g_s = (weight * prod).sum() + torch.dot(bias, colsum) - torch.dot(grad.view(-1), x.reshape(-1))
                g_gate = g_s * s * (1 - s)
        return g_agg, g_x, g_w, g_b, g_gate


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
                agg = self._attend(q_dict[nt], kv_dict[nt], csr).reshape(-1, Fo)
            lin = self.out_lin[nt]
            if Fo != x.shape[-1]:                    # no skip connection across different widths
                out = lin(F.gelu(agg))
            elif self.impl == "native" and _FUSED_OUTPUT:
                out = _GatedOutput.apply(agg, x, lin.weight, lin.bias, self.skip[type_index[nt]])
            else:
                out = torch.lerp(x, lin(F.gelu(agg)), self.skip[type_index[nt]].sigmoid())
            out_dict[nt] = out
        return out_dict

    def _project(self, x_dict, structure: HeteroStructure):
        """Queries per destination type, and per destination type the keys/values of all its
        relations stacked in the kernel's concatenated source order.

        ``(x W_k^T + b_k) blockdiag(W_att_r)`` equals ``x (W_k^T blockdiag(W_att_r)) + b_k blockdiag(W_att_r)``:
        folding each relation's per-head D x D matrices into the projection weight (a tiny
        in x F x F product, batched over all relations) replaces per-relation matmuls over all
        source nodes. :class:`_KeyValueProjection` then writes each relation's GEMM straight
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
            kv = _KeyValueProjection.apply(src, csr.src_rows, *(x_dict[t] for t in types),
                                           *(wkv[r] for r in rs), *(bkv[r] for r in rs))
            kv_dict[nt] = kv.view(-1, 2, H, D)                    # [M, 2, H, D]: key, then value, per row
        return q_dict, kv_dict

    def _fold_weights(self, structure: HeteroStructure):
        """Query weights per destination type ([F, in], [F]) and, per relation, the key and value
        weights side by side ([in, 2F]) and biases ([2F]) with the relation's attention / message
        matrices folded in. With one input width for all node types this is a handful of batched
        ops for the whole layer (few autograd nodes: that overhead dominates small graphs)."""
        Fo, H, R = self.out_channels, self.heads, len(self.edge_types)
        D = Fo // H
        dsts = list(structure.per_dst)
        lins = [self.kqv_lin[nt] for nt in self.node_types]
        mats = torch.cat([self.k_rel, self.v_rel])                               # [2R, H, D, D]
        if len({lin.weight.shape[1] for lin in lins}) == 1:
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
        else:   # node types of different input widths: per relation
            fw, fb = [], []
            for r, et in enumerate(self.edge_types):
                lin = self.kqv_lin[et[0]]
                ws, bs = [], []
                for part, m in ((0, mats[r]), (2, mats[R + r])):     # key, then value
                    w = lin.weight[part * Fo:(part + 1) * Fo]
                    ws.append(torch.matmul(w.view(H, D, -1).transpose(-1, -2), m).transpose(0, 1).reshape(-1, Fo))
                    bs.append(torch.matmul(lin.bias[part * Fo:(part + 1) * Fo].view(H, 1, D), m).view(Fo))
                fw.append(torch.cat(ws, 1))
                fb.append(torch.cat(bs))
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
