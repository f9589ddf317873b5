"""Native neighbour sampler against its pure-Python twin; validity, determinism, distribution,
rank partitioning of the mini-batch loader, bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pygad.data import HeteroGraph
from pygad.ops import NeighborSampler, neighbor_sample
from pygad.ops.sampling import neighbor_sample_reference


def _csr(src, dst, n_dst):
    order = np.argsort(dst, kind="stable")
    rowptr = np.zeros(n_dst + 1, dtype=np.int64)
    np.add.at(rowptr, dst + 1, 1)
    return np.cumsum(rowptr), src[order].astype(np.int64)


def hetero_problem(seed=0, edges=(400, 250, 150), hub=True):
    """Two node types, three relations (one type to itself), skewed degrees, parallel edges."""
    rng = np.random.default_rng(seed)
    num = {"a": 60, "b": 40}
    rels = [("a", "x", "b"), ("b", "y", "a"), ("a", "z", "a")]
    csr, ei = {}, {}
    for et, e in zip(rels, edges):
        ns, nd = num[et[0]], num[et[2]]
        src = rng.integers(0, ns, e)
        dst = rng.integers(0, nd, e)
        if hub:  # a few high in-degree nodes, so fanouts bite
            dst[: e // 3] = rng.integers(0, 3, e // 3)
        csr[et] = _csr(src, dst, nd)
        ei[et] = np.stack([src, dst])
    return csr, num, ei


def _check_valid(csr, num, seeds, fanouts, out):
    nodes, edges, ncount, ecount = out
    for t, s in seeds.items():
        assert np.array_equal(nodes[t][: len(s)], s), "seeds come first, in order"
    for t, ids in nodes.items():
        assert np.unique(ids).size == ids.size, "a node appears once per type"
        assert ids.size == 0 or (ids.min() >= 0 and ids.max() < num[t])
        assert ncount[t][-1] == ids.size and np.all(np.diff(ncount[t]) >= 0)
    for et, e in edges.items():
        rowptr, col = csr[et]
        assert e.shape[0] == 2 and ecount[et][-1] == e.shape[1]
        gs, gd = nodes[et[0]][e[0]], nodes[et[2]][e[1]]
        # every sampled edge exists in the graph, at most as often as it occurs there
        pairs, cnt = np.unique(np.stack([gs, gd]), axis=1, return_counts=True)
        for (u, v), c in zip(pairs.T, cnt):
            assert c <= np.sum(col[rowptr[v]:rowptr[v + 1]] == u)
        for h, fan in enumerate(fanouts):
            lo, hi = ecount[et][h], ecount[et][h + 1]
            d = e[1, lo:hi]
            # hop h expands exactly the destination nodes first reached at hop h - 1
            t = et[2]
            assert np.all((d >= (0 if h == 0 else ncount[t][h - 1])) & (d < ncount[t][h]))
            per = np.bincount(d, minlength=nodes[t].size)
            deg = np.diff(rowptr)[nodes[t]]
            frontier = np.arange(0 if h == 0 else ncount[t][h - 1], ncount[t][h])
            want = deg[frontier] if fan < 0 else np.minimum(deg[frontier], fan)
            assert np.array_equal(per[frontier], want), "fanout respected; all taken when degree <= fanout"
            # sources of hop-h edges were reached by hop h
            assert np.all(e[0, lo:hi] < ncount[et[0]][h + 1])


@pytest.mark.parametrize("fanouts", [(3, 2), (-1, 1), (0, 4), (2, 2, 2), (80,)])
def test_matches_reference_and_is_valid(fanouts):
    csr, num, _ = hetero_problem(1, edges=(400, 250, 150) if fanouts != (80,) else (3000, 250, 150))
    seeds = {"a": np.array([5, 0, 17, 33]), "b": np.array([2, 1])}
    got = neighbor_sample(csr, num, seeds, fanouts, 7, return_counts=True)
    want = neighbor_sample_reference(csr, num, seeds, fanouts, 7, return_counts=True)
    for g, w in zip(got, want):
        assert g.keys() == w.keys()
        for k in g:
            assert g[k].dtype == np.int64 and np.array_equal(g[k], w[k]), k
    _check_valid(csr, num, seeds, fanouts, got)
    if fanouts == (80,):  # the large-fanout path (> 64 per node) really ran
        assert np.max(np.bincount(got[1][("a", "x", "b")][1])) == 80


def test_plain_return_and_torch_inputs():
    csr, num, _ = hetero_problem(2)
    seeds = {"b": np.array([0, 1, 2])}
    nodes, edges = neighbor_sample(csr, num, seeds, (4, 2), 3)
    tcsr = {et: (torch.from_numpy(rp), torch.from_numpy(c)) for et, (rp, c) in csr.items()}
    nodes2, edges2 = neighbor_sample(tcsr, num, {"b": torch.tensor([0, 1, 2])}, [4, 2], 3)
    assert set(nodes) == {"a", "b"} and set(edges) == set(csr)
    for k in nodes:
        assert np.array_equal(nodes[k], nodes2[k])
    for k in edges:
        assert np.array_equal(edges[k], edges2[k])


def test_deterministic_across_thread_counts_and_seed_sensitive():
    rng = np.random.default_rng(0)
    n, e = 20000, 200000  # big enough for the parallel loops to split the frontier
    src, dst = rng.integers(0, n, e), rng.integers(0, n, e)
    csr = {("v", "r", "v"): _csr(src, dst, n), ("v", "q", "v"): _csr(dst, src, n)}
    seeds = {"v": rng.choice(n, 5000, replace=False)}
    old = torch.get_num_threads()
    try:
        outs = []
        for th in (1, 2, 4):
            torch.set_num_threads(th)
            outs.append(neighbor_sample(csr, {"v": n}, seeds, (5, 3), 11, return_counts=True))
    finally:
        torch.set_num_threads(old)
    for o in outs[1:]:
        for a, b in zip(outs[0], o):
            for k in a:
                assert np.array_equal(a[k], b[k])
    other = neighbor_sample(csr, {"v": n}, seeds, (5, 3), 12)
    assert not np.array_equal(other[0]["v"], outs[0][0]["v"])


def test_without_replacement_and_uniform():
    # one destination with 10 distinct in-neighbours, fanout 4: each draw is a 4-subset
    deg, fan, trials = 10, 4, 4000
    src = np.arange(deg, dtype=np.int64)
    csr = {("v", "r", "v"): _csr(src, np.full(deg, deg, dtype=np.int64), deg + 1)}
    counts = np.zeros(deg)
    pair = np.zeros((deg, deg))
    for s in range(trials):
        nodes, edges = neighbor_sample(csr, {"v": deg + 1}, {"v": np.array([deg])}, (fan,), s)
        picked = nodes["v"][edges[("v", "r", "v")][0]]
        assert picked.size == fan and np.unique(picked).size == fan  # no repeats
        counts[picked] += 1
        pair[np.ix_(picked, picked)] += 1
    # each neighbour kept with probability fan / deg = 0.4: 1600 expected, sd ~31
    assert np.all(np.abs(counts - trials * fan / deg) < 5 * np.sqrt(trials * 0.4 * 0.6))
    # pairs kept together with probability fan (fan - 1) / (deg (deg - 1)) = 2/15 (sd ~21)
    off = pair[~np.eye(deg, dtype=bool)]
    expect = trials * fan * (fan - 1) / (deg * (deg - 1))
    assert np.all(np.abs(off - expect) < 5 * np.sqrt(expect))


def test_large_degree_hub_gets_distinct_neighbours():
    deg, fan = 5000, 100
    csr = {("v", "r", "v"): _csr(np.arange(deg, dtype=np.int64), np.zeros(deg, dtype=np.int64), deg)}
    nodes, edges = neighbor_sample(csr, {"v": deg}, {"v": np.array([0])}, (fan,), 0)
    src = edges[("v", "r", "v")][0]
    assert src.size == fan and np.unique(src).size == fan
    assert np.all(np.diff(nodes["v"][src]) > 0)  # CSR order within a node


# ---- the loader ------------------------------------------------------------------------------
def _graph():
    csr, num, ei = hetero_problem(3)
    x = {t: np.zeros((n, 2), np.float32) for t, n in num.items()}
    return HeteroGraph(num, ei, x=x)


@pytest.mark.parametrize("world,drop_last", [(1, False), (3, False), (3, True), (4, False), (7, True)])
def test_rank_partition(world, drop_last):
    g = _graph()
    M, bs = 100, 8
    per_rank = []
    for epoch in (0, 1):
        seen = []
        for r in range(world):
            s = NeighborSampler(g, (3, 2), bs, seed=5, rank=r, world_size=world, drop_last=drop_last)
            s.set_epoch(epoch)
            batches = list(s)
            assert len(batches) == len(s)
            per_rank.append(len(batches))
            ids = []
            for b in batches:
                assert sum(v.size for v in b.seeds.values()) <= bs
                for t, v in b.seeds.items():
                    assert np.array_equal(b.nodes[t][: v.size], v)
                    ids += [(t, int(i)) for i in v]
            assert len(ids) == len(set(ids)), "no seed twice on one rank"
            seen.append(ids)
        assert len(set(per_rank)) == 1, "every rank has the same number of batches"
        allids = [i for ids in seen for i in ids]
        universe = {(t, i) for t, n in g.num_nodes.items() for i in range(n)}
        if drop_last:
            assert len(allids) == len(set(allids)), "ranks are disjoint"
            assert len(allids) == world * ((M // world) // bs) * bs
        else:
            assert set(allids) == universe, "ranks cover every seed"
            assert len(allids) == world * -(-M // world)  # padding: < world repeats
            assert len(allids) - len(set(allids)) < world
        assert per_rank[0] == ((M // world) // bs if drop_last else math.ceil(math.ceil(M / world) / bs))
    # a new epoch reshuffles, the same epoch repeats
    s = NeighborSampler(g, (3, 2), bs, seed=5)
    first = [b.seeds for b in s]
    again = [b.seeds for b in s]
    s.set_epoch(1)
    other = [b.seeds for b in s]
    assert all(np.array_equal(a[t], b[t]) for a, b in zip(first, again) for t in a)
    assert any(not np.array_equal(a.get("a", []), b.get("a", [])) for a, b in zip(first, other))


def test_sampler_reverse_relations_and_no_shuffle():
    g = _graph()
    s = NeighborSampler(g, (2,), 10, shuffle=False, reverse=True, seed_nodes={"b": np.arange(10)})
    (b,) = list(s)
    assert np.array_equal(b.seeds["b"], np.arange(10)) and "a" not in b.seeds
    assert ("b", "rev_x", "a") in b.edges and len(s.csr) == 6


def test_bad_input_names_the_argument():
    csr, num, _ = hetero_problem(4)
    seeds = {"a": np.array([1, 2])}
    et = ("a", "x", "b")
    with pytest.raises(ValueError, match="fanouts"):
        neighbor_sample(csr, num, seeds, (3, -2))
    with pytest.raises(ValueError, match="fanouts"):
        neighbor_sample(csr, num, seeds, 3)
    with pytest.raises(ValueError, match="seeds"):
        neighbor_sample(csr, num, {"a": np.array([1, 60])}, (2,))
    with pytest.raises(ValueError, match="seeds.*twice"):
        neighbor_sample(csr, num, {"a": np.array([1, 4, 1])}, (2,))
    with pytest.raises(ValueError, match="seeds"):
        neighbor_sample(csr, num, {"c": np.array([1])}, (2,))
    with pytest.raises(ValueError, match="num_nodes"):
        neighbor_sample(csr, {"a": 60, "b": -1}, seeds, (2,))
    with pytest.raises(ValueError, match="csr"):
        neighbor_sample({("a", "x", "c"): csr[et]}, num, seeds, (2,))
    with pytest.raises(ValueError, match="rowptr"):
        neighbor_sample({et: (csr[et][0][:-1], csr[et][1])}, num, {"b": np.array([1])}, (2,))
    with pytest.raises(TypeError, match="seeds"):
        neighbor_sample(csr, num, {"a": np.array([1.5])}, (2,))
    # malformed content met while sampling: a source id out of range, a decreasing pointer
    rp, col = csr[et]
    bad_col = col.copy()
    bad_col[rp[1]:rp[2]] = 999
    with pytest.raises(ValueError, match=r"csr\[\('a', 'x', 'b'\)\]' col"):
        neighbor_sample({et: (rp, bad_col)}, num, {"b": np.array([1])}, (-1,))
    bad_rp = rp.copy()
    bad_rp[2] = rp[1] - 1 if rp[1] > 0 else len(col) + 5
    with pytest.raises(ValueError, match=r"csr\[\('a', 'x', 'b'\)\]' rowptr"):
        neighbor_sample({et: (bad_rp, col)}, num, {"b": np.array([1])}, (2,))
    with pytest.raises(ValueError, match="batch_size"):
        NeighborSampler((csr, num), (2,), 0)
    with pytest.raises(ValueError, match="rank"):
        NeighborSampler((csr, num), (2,), 4, rank=2, world_size=2)
    with pytest.raises(ValueError, match="world_size"):
        NeighborSampler((csr, num), (2,), 4, world_size=0)
    with pytest.raises(ValueError, match="seed_nodes"):
        NeighborSampler((csr, num), (2,), 4, seed_nodes={"a": np.array([1, 1])})
    with pytest.raises(TypeError, match="graph_or_csr"):
        NeighborSampler([1, 2, 3], (2,), 4)
