"""Multi-hop heterogeneous neighbour sampling (native, CPU) and a mini-batch seed loader.

:func:`neighbor_sample` draws the sampled computation graph of a set of seed nodes (GraphSAGE
style, Hamilton et al., NeurIPS 2017) on destination-sorted CSRs, one per relation: at hop
``h`` every node first reached at hop ``h - 1`` (the seeds at hop 0) keeps, for each relation
ending in its type, all its in-neighbours when it has at most ``fanouts[h]`` of them, else
``fanouts[h]`` of them drawn uniformly *without* replacement. The randomness is a
splitmix64 stream keyed by ``(seed, hop, relation, destination node)``: the result depends on
the seed only, never on the thread count.

:class:`NeighborSampler` walks the seed nodes of one epoch in mini-batches, split across the
ranks of a data-parallel job, and samples each batch's subgraph.

:func:`neighbor_sample_reference` is the pure-Python twin (same draws, same output), for tests.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, Iterator, Mapping, Optional, Sequence

import numpy as np
import torch

from pygad.errors import PygadTypeError, PygadValueError

from ._native import _C, threads

__all__ = ["neighbor_sample", "neighbor_sample_reference", "NeighborSampler", "MiniBatch"]

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


def _prepare(csr, num_nodes, seeds, fanouts, seed):
    """Check the arguments and bring them to (types, relations, arrays) form."""
    if not isinstance(num_nodes, Mapping) or not num_nodes:
        raise PygadValueError("'num_nodes' must be a non-empty dict {node_type: count}")
    types = list(num_nodes)
    tidx = {t: i for i, t in enumerate(types)}
    counts = []
    for t in types:
        n = num_nodes[t]
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 0 <= n < 2**63:
            raise PygadValueError(f"'num_nodes[{t!r}]' must be a non-negative int (int64), got {n!r}")
        counts.append(int(n))
    if not isinstance(csr, Mapping):
        raise PygadValueError("'csr' must be a dict {(src_type, relation, dst_type): (rowptr, col)}")
    rels, rowptrs, cols = [], [], []
    for et, pair in csr.items():
        if not isinstance(et, tuple) or len(et) != 3 or et[0] not in tidx or et[2] not in tidx:
            raise PygadValueError(f"'csr' key {et!r} must be an edge type (src, relation, dst) over the node types "
                             f"{types}")
        if not isinstance(pair, (tuple, list)) or len(pair) < 2:
            raise PygadValueError(f"'csr[{et!r}]' must be a pair (rowptr, col)")
        rp, cl = (_host_int64(a, f"csr[{et!r}]") for a in pair[:2])
        if rp.ndim != 1 or rp.shape[0] != counts[tidx[et[2]]] + 1:
            raise PygadValueError(f"'csr[{et!r}]' rowptr must have shape [{counts[tidx[et[2]]] + 1}] "
                             f"(destination count + 1), got {list(rp.shape)}")
        if cl.ndim != 1:
            raise PygadValueError(f"'csr[{et!r}]' col must be 1-D, got shape {list(cl.shape)}")
        rels.append(tuple(et))
        rowptrs.append(rp)
        cols.append(cl)
    if not isinstance(seeds, Mapping):
        raise PygadValueError("'seeds' must be a dict {node_type: int64 node ids}")
    seed_arrays = [np.empty(0, dtype=np.int64) for _ in types]
    for t, s in seeds.items():
        if t not in tidx:
            raise PygadValueError(f"'seeds' has unknown node type {t!r} (known: {types})")
        a = _host_int64(s, f"seeds[{t!r}]")
        if a.ndim != 1:
            raise PygadValueError(f"'seeds[{t!r}]' must be 1-D, got shape {list(a.shape)}")
        seed_arrays[tidx[t]] = a
    if isinstance(fanouts, (int, np.integer)) or not all(
            isinstance(f, (int, np.integer)) and not isinstance(f, bool) for f in fanouts):
        raise PygadValueError(f"'fanouts' must be a sequence of ints (one per hop), got {fanouts!r}")
    fans = [int(f) for f in fanouts]
    if any(f < -1 or f >= 2**63 for f in fans):
        raise PygadValueError(f"'fanouts' must be int64 values >= 0 (or -1 for all neighbours), got {fans}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise PygadValueError(f"'seed' must be an int, got {seed!r}")
    return types, counts, rels, rowptrs, cols, seed_arrays, fans, int(seed) & _MASK


def _host_int64(a, name: str) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()  # CUDA structure is copied to the host: the sampler is CPU-only
    if not isinstance(a, np.ndarray):
        a = np.asarray(a)
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise PygadTypeError(f"'{name}' must hold integers, got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=np.int64)


def neighbor_sample(csr: Mapping[tuple, tuple], num_nodes: Mapping[str, int], seeds: Mapping[str, object],
                    fanouts: Sequence[int], seed: int = 0, *, return_counts: bool = False):
    """Sample the multi-hop neighbourhood of ``seeds`` (native, CPU, GIL released).

    Args:
        csr: ``{(src_type, relation, dst_type): (rowptr [N_dst + 1], col [E])}``, one
            destination-sorted CSR per relation (``col`` = source node ids), e.g. from
            :meth:`pygad.data.HeteroGraph.csr`. NumPy arrays or torch tensors (CUDA ones are
            copied to the host).
        num_nodes: ``{node_type: count}``.
        seeds: ``{node_type: int64 [B_t]}`` seed node ids, unique within a type.
        fanouts: neighbours kept per node and relation at each hop (``-1`` keeps all).
        seed: the random seed (any int; the same seed gives the same sample).
        return_counts: also return the per-hop counts.

    Returns:
        ``(nodes, edges)``: ``nodes[t]`` int64 global ids of the sampled nodes of type ``t``
        (the seeds first, in order, then the nodes first reached at hop 1, hop 2, ...; every
        type of ``num_nodes`` is present), ``edges[et]`` int64 [2, E'] *local* indices into
        ``nodes[src]`` / ``nodes[dst]`` (every relation of ``csr`` is present; edges in hop
        order, within a node in CSR order). A node appears once per type; an edge appears once
        per entry of the graph (parallel edges of the graph may both be drawn). With
        ``return_counts`` also ``node_counts[t]`` [L+1] (nodes after the seeds and after each
        hop) and ``edge_counts[et]`` [L+1] (0, then edges after each hop): the prefix of
        nodes within ``k`` hops of the seeds, and the edges into them, for layer-wise trimming.
        Arrays are NumPy.

    Raises:
        ValueError: malformed arguments, seeds out of range or repeated, or a malformed CSR
            entry met while sampling (naming the relation).
    """
    types, counts, rels, rowptrs, cols, seed_arrays, fans, seed = _prepare(csr, num_nodes, seeds, fanouts, seed)
    tidx = {t: i for i, t in enumerate(types)}
    d = lambda a: (a.ctypes.data, "int64", tuple(a.shape), -1)  # noqa: E731
    try:
        nodes, ncount, edges, ecount = _C.neighbor_sample(
            [d(a) for a in rowptrs], [d(a) for a in cols], [tidx[et[0]] for et in rels],
            [tidx[et[2]] for et in rels], counts, [d(a) for a in seed_arrays], fans, seed, threads())
    except ValueError as exc:  # name the relation / node type instead of the list position
        msg = re.sub(r"'(rowptr|col)\[(\d+)\]'", lambda m: f"'csr[{rels[int(m.group(2))]!r}]' {m.group(1)}",
                     str(exc))
        msg = re.sub(r"'seeds\[(\d+)\]'", lambda m: f"'seeds[{types[int(m.group(1))]!r}]'", msg)
        raise PygadValueError(msg) from None
    nodes = dict(zip(types, nodes))
    edges = dict(zip(rels, edges))
    if return_counts:
        return nodes, edges, dict(zip(types, ncount)), dict(zip(rels, ecount))
    return nodes, edges


# ---- the pure-Python twin --------------------------------------------------------------------
def _mix64(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def _sample_key(seed: int, hop: int, rel: int, node: int) -> int:
    h = _mix64((seed + _GOLDEN) & _MASK)
    h = _mix64(h ^ (((hop + 1) * 0xD1B54A32D192ED03) & _MASK))
    h = _mix64(h ^ (((rel + 1) * 0xABC98388FB8FAC03) & _MASK))
    return _mix64(h ^ node)


def _floyd(state: int, deg: int, k: int) -> list:
    """Draw k distinct positions of [0, deg) (Floyd's algorithm), sorted; the native draw order."""
    chosen: set = set()
    for j in range(deg - k, deg):
        state = (state + _GOLDEN) & _MASK
        t = (_mix64(state) * (j + 1)) >> 64
        chosen.add(j if t in chosen else t)
    return sorted(chosen)


def neighbor_sample_reference(csr, num_nodes, seeds, fanouts, seed: int = 0, *, return_counts: bool = False):
    """Plain-loop twin of :func:`neighbor_sample` (same arguments, same output; slow)."""
    types, counts, rels, rowptrs, cols, seed_arrays, fans, seed = _prepare(csr, num_nodes, seeds, fanouts, seed)
    nodes = {t: [] for t in types}
    local = {t: {} for t in types}
    for t, s in zip(types, seed_arrays):
        for g in s.tolist():
            if not 0 <= g < num_nodes[t]:
                raise PygadValueError(f"'seeds[{t!r}]' has node {g}, outside [0, {num_nodes[t]})")
            if g in local[t]:
                raise PygadValueError(f"'seeds[{t!r}]' has node {g} twice; seeds must be unique")
            local[t][g] = len(nodes[t])
            nodes[t].append(g)
    ncount = {t: [len(nodes[t])] for t in types}
    src_l = {et: [] for et in rels}
    dst_l = {et: [] for et in rels}
    ecount = {et: [0] for et in rels}
    lo = {t: 0 for t in types}
    for h, fan in enumerate(fans):
        hi = {t: len(nodes[t]) for t in types}
        drawn = {}
        for r, (et, rp, cl) in enumerate(zip(rels, rowptrs, cols)):
            t = et[2]
            got = []
            for i in range(lo[t], hi[t]):
                v = nodes[t][i]
                a, b = int(rp[v]), int(rp[v + 1])
                deg = b - a
                k = deg if fan < 0 else min(deg, fan)
                pos = range(k) if k == deg else _floyd(_sample_key(seed, h, r, v), deg, k)
                for p in pos:
                    u = int(cl[a + p])
                    if not 0 <= u < num_nodes[et[0]]:
                        raise PygadValueError(f"'csr[{et!r}]' col has source id {u}, outside [0, {num_nodes[et[0]]})")
                    got.append((u, i))
            drawn[et] = got
        for et in rels:  # number the newly reached sources in relation, then edge order
            s = et[0]
            for u, i in drawn[et]:
                if u not in local[s]:
                    local[s][u] = len(nodes[s])
                    nodes[s].append(u)
                src_l[et].append(local[s][u])
                dst_l[et].append(i)
            ecount[et].append(len(src_l[et]))
        lo = hi
        for t in types:
            ncount[t].append(len(nodes[t]))
    out_nodes = {t: np.asarray(v, dtype=np.int64) for t, v in nodes.items()}
    out_edges = {et: np.asarray([src_l[et], dst_l[et]], dtype=np.int64).reshape(2, -1) for et in rels}
    if return_counts:
        return (out_nodes, out_edges, {t: np.asarray(v, dtype=np.int64) for t, v in ncount.items()},
                {et: np.asarray(v, dtype=np.int64) for et, v in ecount.items()})
    return out_nodes, out_edges


# ---- mini-batches of one epoch ---------------------------------------------------------------
@dataclass
class MiniBatch:
    """One sampled mini-batch (all arrays int64 NumPy).

    ``seeds[t]`` the batch's seed ids; ``nodes``/``edges``/``node_counts``/``edge_counts`` as
    returned by :func:`neighbor_sample` (``nodes[t][:len(seeds[t])] == seeds[t]``).
    """
    seeds: Dict[str, np.ndarray]
    nodes: Dict[str, np.ndarray]
    edges: Dict[tuple, np.ndarray]
    node_counts: Dict[str, np.ndarray]
    edge_counts: Dict[tuple, np.ndarray]


class NeighborSampler:
    """Mini-batches of seed nodes with their sampled neighbourhoods, one epoch per iteration.

    Args:
        graph_or_csr: a :class:`~pygad.data.HeteroGraph` (its relations' CSRs are used, plus the
            reverse of each relation with ``reverse=True``) or a pair ``(csr, num_nodes)`` in
            the form of :func:`neighbor_sample`.
        fanouts: neighbours per node and relation at each hop (``-1`` = all).
        batch_size: seed nodes per mini-batch (of all types together).
        shuffle: visit the seeds in a fresh random order each epoch (``set_epoch``).
        seed: base random seed (shuffling and neighbour draws); the same on every rank.
        rank, world_size: this process's share of a data-parallel job.
        drop_last: see below.
        seed_nodes: ``{node_type: ids}`` to draw seeds from (default: every node of every type).
        reverse: with a graph, also sample along each relation reversed, as
            ``(dst, "rev_" + relation, src)`` (messages that flow both ways).

    Partitioning: every epoch, all ranks compute the same order of the ``M`` seeds (shuffled
    with ``(seed, epoch)``) and rank ``r`` takes positions ``r, r + world_size, ...``, so the
    ranks' seeds are disjoint and together cover all seeds. Every rank gets the same number of
    batches, so data-parallel ranks step in lockstep:

    * ``drop_last=False``: the order is padded to a multiple of ``world_size`` by repeating its
      first seeds (fewer than ``world_size`` seeds are then seen twice in the epoch), each rank
      has ``ceil(M / world_size)`` seeds and ``ceil(that / batch_size)`` batches, the last one
      possibly smaller (equally on every rank).
    * ``drop_last=True``: the last ``M mod world_size`` seeds of the order are left out of the
      epoch and so is each rank's final partial batch: ``floor(floor(M / world_size) /
      batch_size)`` full batches per rank.

    Within a batch the seeds are grouped by node type (order kept). Each batch is sampled with
    a seed derived from ``(seed, epoch, rank, batch index)``.
    """

    def __init__(self, graph_or_csr, fanouts: Sequence[int], batch_size: int, *, shuffle: bool = True,
                 seed: int = 0, rank: int = 0, world_size: int = 1, drop_last: bool = False,
                 seed_nodes: Optional[Mapping[str, object]] = None, reverse: bool = False):
        if isinstance(graph_or_csr, tuple) and len(graph_or_csr) == 2:
            csr, num_nodes = graph_or_csr
        elif hasattr(graph_or_csr, "edge_index") and hasattr(graph_or_csr, "num_nodes"):
            g = graph_or_csr
            num_nodes = dict(g.num_nodes)
            csr = {}
            for et in g.edge_types:
                csr[tuple(et)] = g.csr(et)[:2]
                if reverse:
                    csr[(et[2], "rev_" + et[1], et[0])] = g.csc(et)[:2]
        else:
            raise PygadTypeError("'graph_or_csr' must be a HeteroGraph or a pair (csr, num_nodes), got "
                            f"{type(graph_or_csr).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise PygadValueError(f"'batch_size' must be a positive int, got {batch_size!r}")
        if isinstance(world_size, bool) or not isinstance(world_size, (int, np.integer)) or world_size < 1:
            raise PygadValueError(f"'world_size' must be a positive int, got {world_size!r}")
        if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or not 0 <= rank < world_size:
            raise PygadValueError(f"'rank' must be an int in [0, world_size={world_size}), got {rank!r}")
        # validate the structure and fanouts once (an empty batch touches nothing)
        types, counts, rels, rowptrs, cols, _, fans, seed = _prepare(csr, num_nodes, {}, fanouts, seed)
        self.csr = {et: (rp, cl) for et, rp, cl in zip(rels, rowptrs, cols)}
        self.num_nodes = dict(zip(types, counts))
        self.fanouts, self.batch_size, self.shuffle, self.seed = fans, int(batch_size), bool(shuffle), seed
        self.rank, self.world_size, self.drop_last = int(rank), int(world_size), bool(drop_last)
        self.epoch = 0
        if seed_nodes is None:
            seed_nodes = {t: np.arange(n, dtype=np.int64) for t, n in self.num_nodes.items()}
        self._seed_type, self._seed_id = [], []
        for t, ids in seed_nodes.items():
            if t not in self.num_nodes:
                raise PygadValueError(f"'seed_nodes' has unknown node type {t!r} (known: {types})")
            a = _host_int64(ids, f"seed_nodes[{t!r}]").reshape(-1)
            if a.size and (a.min() < 0 or a.max() >= self.num_nodes[t]):
                raise PygadValueError(f"'seed_nodes[{t!r}]' has ids outside [0, {self.num_nodes[t]})")
            if np.unique(a).size != a.size:
                raise PygadValueError(f"'seed_nodes[{t!r}]' has repeated ids")
            self._seed_type.append(np.full(a.size, types.index(t), dtype=np.int64))
            self._seed_id.append(a)
        self._types = types
        self._seed_type = np.concatenate(self._seed_type) if self._seed_type else np.empty(0, np.int64)
        self._seed_id = np.concatenate(self._seed_id) if self._seed_id else np.empty(0, np.int64)

    @property
    def num_seeds(self) -> int:
        """Seed nodes per epoch over all ranks (before padding or dropping)."""
        return int(self._seed_id.size)

    def _per_rank(self) -> int:
        m, w = self.num_seeds, self.world_size
        return m // w if self.drop_last else -(-m // w)

    def __len__(self) -> int:
        n = self._per_rank()
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (its shuffle and draws); call it with the same value on every rank."""
        self.epoch = int(epoch)

    def rank_seeds(self) -> np.ndarray:
        """Positions (into the flattened seed list) that this rank visits this epoch, in order."""
        m = self.num_seeds
        order = (np.random.default_rng([self.seed & (2**63 - 1), self.epoch]).permutation(m) if self.shuffle
                 else np.arange(m))
        per = self._per_rank()
        total = per * self.world_size
        order = order[:total] if total <= m else np.resize(order, total)  # resize repeats the start
        mine = order[self.rank::self.world_size]
        if self.drop_last:
            mine = mine[:len(self) * self.batch_size]
        return mine

    def batch_seeds(self) -> Iterator[Dict[str, np.ndarray]]:
        """This rank's seed batches of the current epoch (no sampling)."""
        mine = self.rank_seeds()
        for b in range(len(self)):
            pos = mine[b * self.batch_size:(b + 1) * self.batch_size]
            typ, ids = self._seed_type[pos], self._seed_id[pos]
            yield {t: ids[typ == i] for i, t in enumerate(self._types) if np.any(typ == i)}

    def __iter__(self) -> Iterator[MiniBatch]:
        for b, seeds in enumerate(self.batch_seeds()):
            s = int(np.random.SeedSequence([self.seed, self.epoch, self.rank, b]).generate_state(1, np.uint64)[0])
            nodes, edges, nc, ec = neighbor_sample(self.csr, self.num_nodes, seeds, self.fanouts, s,
                                                   return_counts=True)
            yield MiniBatch(seeds, nodes, edges, nc, ec)

    def __repr__(self) -> str:
        return (f"NeighborSampler(seeds={self.num_seeds}, relations={len(self.csr)}, fanouts={self.fanouts}, "
                f"batch_size={self.batch_size}, batches={len(self)}, rank={self.rank}/{self.world_size})")
