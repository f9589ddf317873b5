"""Neighbour sampling: pygad's native sampler vs the vectorised NumPy sampler it replaced.

Run (files in bench/ are collected when named explicitly)::

    python -P -m pytest bench/bench_sampling.py --benchmark-group-by=group --benchmark-columns=median,rounds

Group ``sample-dgraph``: one mini-batch of 4096 random seeds, fanouts (10, 5), on the synthetic
DGraph-size graph of ``bench_augment.py`` (3.7M nodes, 4.3M edges, 11 relations, sampled both
ways = 22 CSRs, ~120k sampled nodes). ``native`` = :func:`pygad.ops.neighbor_sample` (without
replacement, ``torch.get_num_threads()`` threads), ``numpy`` = a vectorised NumPy
sampler (with replacement then de-duplicated; kept below as the speed peer). Group ``sample-small``: 64 seeds on a 20k-node graph, native vs
the pure-Python loop twin :func:`pygad.ops.sampling.neighbor_sample_reference` (same output).
The terminal summary prints each entry's ratio to ``native`` (> 1 = native faster).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Dict, Sequence

import numpy as np
import pytest

from pygad.ops import neighbor_sample
from pygad.ops.sampling import neighbor_sample_reference

_GRAPHS: dict = {}


def numpy_sample_neighbors(csr: Dict[tuple, tuple], num_nodes: Dict[str, int], seeds: Dict[str, np.ndarray],
                           fanouts: Sequence[int], rng: np.random.Generator) -> tuple:
    """The vectorised NumPy sampler pygad used before the native one (with replacement; pairs
    de-duplicated through one int64 key), kept as the benchmark peer."""
    nodes = {t: [np.asarray(s, dtype=np.int64)] for t, s in seeds.items()}
    known = {t: np.asarray(s, dtype=np.int64) for t, s in seeds.items()}
    frontier = dict(known)
    raw_edges: Dict[tuple, list] = {}
    for fan in fanouts:
        new_front: Dict[str, list] = {}
        for et, (rowptr, col) in csr.items():
            dst = frontier.get(et[2])
            if dst is None or dst.size == 0:
                continue
            deg = rowptr[dst + 1] - rowptr[dst]
            d, dg = dst[deg > 0], deg[deg > 0]
            if d.size == 0:
                continue
            rep = np.repeat(np.arange(d.size), fan)
            src = col[rowptr[d[rep]] + (rng.random(rep.size) * dg[rep]).astype(np.int64)]
            nd = np.int64(num_nodes[et[2]])
            key = np.unique(src * nd + d[rep])
            pair = np.stack([key // nd, key % nd])
            raw_edges.setdefault(et, []).append(pair)
            new_front.setdefault(et[0], []).append(pair[0])
        frontier = {}
        for t, lst in new_front.items():
            cand = np.unique(np.concatenate(lst))
            seen = known.get(t, np.empty(0, np.int64))
            fresh = cand[~np.isin(cand, seen)]
            known[t] = np.concatenate([seen, fresh])
            nodes.setdefault(t, []).append(fresh)
            frontier[t] = fresh
    nodes = {t: np.concatenate(v) for t, v in nodes.items()}
    lookup = {t: (ids[np.argsort(ids, kind="stable")], np.argsort(ids, kind="stable")) for t, ids in nodes.items()}
    edges = {}
    for et, lst in raw_edges.items():
        nd = np.int64(num_nodes[et[2]])
        key = np.unique(np.concatenate([p[0] * nd + p[1] for p in lst]))
        e = np.stack([key // nd, key % nd])
        loc = [lookup[t][1][np.searchsorted(lookup[t][0], e[row])] for row, t in ((0, et[0]), (1, et[2]))]
        edges[et] = np.stack(loc)
    return nodes, edges


QUICK = os.environ.get("PYGAD_BENCH_QUICK", "") not in ("", "0")  # bench/conftest.py: CI smoke sizes


def _dgraph():
    if "dgraph" not in _GRAPHS:
        sys.path.insert(0, str(Path(__file__).parent))
        from bench_augment import synthetic_dgraph

        g = synthetic_dgraph(*((50_000, 60_000) if QUICK else (3_700_000, 4_300_000)))
        csr = {}
        for et in g.edge_types:
            csr[et] = g.csr(et)[:2]
            csr[(et[2], "rev_" + et[1], et[0])] = g.csc(et)[:2]
        _GRAPHS["dgraph"] = (csr, dict(g.num_nodes))
    return _GRAPHS["dgraph"]


def _small():
    if "small" not in _GRAPHS:
        rng = np.random.default_rng(1)
        n, e = 20_000, 100_000
        csr = {}
        for r in range(3):
            src, dst = rng.integers(0, n, e), rng.integers(0, n, e)
            order = np.argsort(dst, kind="stable")
            rowptr = np.concatenate([[0], np.cumsum(np.bincount(dst, minlength=n))]).astype(np.int64)
            csr[("v", f"r{r}", "v")] = (rowptr, src[order].astype(np.int64))
        _GRAPHS["small"] = (csr, {"v": n})
    return _GRAPHS["small"]


@pytest.mark.parametrize("impl", ["native", "numpy"])
def test_sample_dgraph(benchmark, impl):
    csr, num = _dgraph()
    seeds = {"node": np.random.default_rng(0).choice(num["node"], 4096, replace=False)}
    benchmark.group = "sample-dgraph"
    benchmark.extra_info["impl"] = impl
    if impl == "native":
        out = benchmark.pedantic(neighbor_sample, args=(csr, num, seeds, (10, 5), 0), rounds=10, warmup_rounds=1)
    else:
        rng = np.random.default_rng(0)
        out = benchmark.pedantic(numpy_sample_neighbors, args=(csr, num, seeds, (10, 5), rng), rounds=10,
                                 warmup_rounds=1)
    benchmark.extra_info["sampled_nodes"] = int(out[0]["node"].size)
    benchmark.extra_info["sampled_edges"] = int(sum(e.shape[1] for e in out[1].values()))


@pytest.mark.parametrize("impl", ["native", "reference"])
def test_sample_small(benchmark, impl):
    csr, num = _small()
    seeds = {"v": np.arange(0, 20_000, 20_000 // 64)[:64]}
    benchmark.group = "sample-small"
    benchmark.extra_info["impl"] = impl
    fn = neighbor_sample if impl == "native" else neighbor_sample_reference
    out = benchmark.pedantic(fn, args=(csr, num, seeds, (10, 5), 0), rounds=5 if impl == "native" else 2,
                             warmup_rounds=1 if impl == "native" else 0)
    benchmark.extra_info["sampled_nodes"] = int(out[0]["v"].size)
