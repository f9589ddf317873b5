"""Graph-side helpers of the generative models (:mod:`pygad.models.vae`, :mod:`pygad.models.augment`).

Features for graphs without any, training masks, conditioning labels, degree targets, and neighbour
sampling for mini-batch training.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np

from ..data.graph import HeteroGraph

UNKNOWN = 2  #: the label index of unlabelled nodes (and of every node when not conditional)


def sample_neighbors(csr: Dict[tuple, tuple], num_nodes: Dict[str, int], seeds: Dict[str, np.ndarray],
                     fanouts: Sequence[int], rng: np.random.Generator) -> tuple:
    """Multi-hop heterogeneous neighbour sampling (GraphSAGE style) on destination-sorted CSRs.

    A thin wrapper of the native :func:`pygad.ops.neighbor_sample` that draws its seed from
    ``rng``.

    Args:
        csr: ``{edge_type: (rowptr [N_dst + 1], col [E])}``; ``col`` are source indices.
        num_nodes: node count per type.
        seeds: ``{node_type: int64 [B_t]}`` seed nodes (unique).
        fanouts: in-neighbours kept per node and relation at each hop (all of them when the
            degree is at most the fanout, else drawn without replacement).
        rng: NumPy generator.

    Returns:
        ``(nodes, edges)``: ``nodes[t]`` int64 global ids of the sampled nodes of type ``t``
        (the seeds first, in order), ``edges[et]`` int64 [2, E'] *local* indices into
        ``nodes[src]`` / ``nodes[dst]``.
    """
    from ..ops import neighbor_sample

    return neighbor_sample(csr, num_nodes, seeds, fanouts, int(rng.integers(0, 2**63)))


def _with_features(graph: HeteroGraph) -> HeteroGraph:
    if all(t in graph.x for t in graph.node_types):
        return graph
    from ..datasets import with_structural_features
    return with_structural_features(graph)


def _mask_to_bool(mask, n: int) -> np.ndarray:
    m = np.asarray(mask.detach().cpu().numpy() if hasattr(mask, "detach") else mask)
    if m.dtype == bool:
        if m.shape != (n,):
            raise ValueError(f"'train_mask' must be a boolean mask of length {n}, got shape {list(m.shape)}")
        return m
    if not np.issubdtype(m.dtype, np.integer):
        raise TypeError(f"'train_mask' must be a boolean mask or node indices, got dtype {m.dtype}")
    out = np.zeros(n, dtype=bool)
    out[m] = True
    return out


def node_labels(graph: HeteroGraph, train_mask, target: Optional[str], conditional: bool = True) -> dict:
    """Conditioning labels per node type: the target's training labels (0/1), 2 elsewhere."""
    out = {t: np.full(n, UNKNOWN, dtype=np.int64) for t, n in graph.num_nodes.items()}
    if train_mask is None or not conditional:
        return out
    tgt = graph.target_type(target)
    m = _mask_to_bool(train_mask, graph.num_nodes[tgt])
    y = graph.y[tgt]
    sel = m & (y >= 0)
    out[tgt][sel] = y[sel]
    return out


def node_degrees(graph: HeteroGraph, edge_types) -> dict:
    """``{type: float32 [N_t, 2R]}``: log1p in-degree (col 2r) and out-degree (col 2r+1) per relation."""
    out = {t: np.zeros((n, 2 * len(edge_types)), dtype=np.float32) for t, n in graph.num_nodes.items()}
    for j, et in enumerate(edge_types):
        ei = graph.edge_index[et]
        out[et[2]][:, 2 * j] = np.log1p(np.bincount(ei[1], minlength=graph.num_nodes[et[2]]))
        out[et[0]][:, 2 * j + 1] = np.log1p(np.bincount(ei[0], minlength=graph.num_nodes[et[0]]))
    return out
