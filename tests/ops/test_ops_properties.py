"""Property-based: random shapes and indices thrown at every native op.

Each call must either raise ValueError/TypeError (never crash, never corrupt memory) or agree
with the pure-torch reference twin.
"""
from __future__ import annotations

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pygad.ops as ops
from pygad.ops import _reference as ref

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CLEAN = (ValueError, TypeError)


@st.composite
def index_arrays(draw, max_len=40):
    n = draw(st.integers(0, max_len))
    lo = draw(st.integers(-3, 0))
    hi = draw(st.integers(1, 30))
    return np.array(draw(st.lists(st.integers(lo, hi), min_size=n, max_size=n)), dtype=np.int64)


@st.composite
def pointers(draw, entries):
    """Mostly valid CSR pointers over `entries` rows, sometimes broken."""
    n = draw(st.integers(0, 8))
    cuts = sorted(draw(st.lists(st.integers(0, entries), min_size=n, max_size=n)))
    ptr = [0] + cuts + [entries]
    if draw(st.booleans()) and len(ptr) > 1:
        i = draw(st.integers(0, len(ptr) - 1))
        ptr[i] += draw(st.integers(-3, 3))
    return torch.tensor(ptr, dtype=torch.int64)


@SETTINGS
@given(data=st.data())
def test_hetero_csr_random(data):
    R = data.draw(st.integers(1, 3))
    num_dst = data.draw(st.integers(0, 12))
    eis, num_src = [], []
    for _ in range(R):
        e = data.draw(st.integers(0, 25))
        rows = data.draw(st.sampled_from([2, 2, 2, 1, 3]))
        eis.append(torch.tensor(np.array(data.draw(st.lists(st.integers(-2, 14), min_size=rows * e,
                                                            max_size=rows * e)), dtype=np.int64).reshape(rows, e)))
        num_src.append(data.draw(st.integers(0, 12)))
    try:
        got = ops.hetero_csr(eis, num_src, num_dst)
    except CLEAN:
        return
    want = ref.hetero_csr(eis, num_src, num_dst)
    for a, b in zip(got, want):
        assert torch.equal(a, b)
    M = sum(num_src)
    for a, b in zip(ops.csr_transpose(got[0], got[1], M), ref.csr_transpose(got[0], got[1], M)):
        assert torch.equal(a, b)


@SETTINGS
@given(data=st.data())
def test_segment_ops_random(data):
    E = data.draw(st.integers(0, 20))
    F = data.draw(st.integers(1, 4))
    dtype = data.draw(st.sampled_from([torch.float32, torch.float64, torch.int64]))
    src = (torch.randn(E, F) * 3).to(dtype)
    ptr = data.draw(pointers(E))
    for op, twin in ((ops.segment_sum, ref.segment_sum), (ops.segment_softmax, ref.segment_softmax)):
        try:
            got = op(src, ptr)
        except CLEAN:
            continue
        torch.testing.assert_close(got, twin(src, ptr), rtol=1e-4, atol=1e-5)


@SETTINGS
@given(data=st.data(), col=index_arrays())
def test_neighbor_aggregate_random(data, col):
    M = data.draw(st.integers(0, 25))
    x = torch.randn(M, 3)
    rowptr = data.draw(pointers(len(col)))
    reduce = data.draw(st.sampled_from(["sum", "mean", "max", "min"]))
    try:
        got = ops.neighbor_aggregate(x, rowptr, torch.from_numpy(col), reduce)
    except CLEAN:
        return
    torch.testing.assert_close(got, ref.neighbor_aggregate(x, rowptr, torch.from_numpy(col), reduce))


@SETTINGS
@given(data=st.data())
def test_hetero_attention_random(data):
    N = data.draw(st.integers(0, 6))
    M = data.draw(st.integers(0, 8))
    R = data.draw(st.integers(1, 3))
    H = data.draw(st.integers(1, 3))
    D = data.draw(st.sampled_from([1, 4, 16, 5]))
    E = data.draw(st.integers(0, 20))
    shape_bug = data.draw(st.sampled_from([None, None, None, "k", "mu", "v"]))
    q = torch.randn(N, H, D, dtype=torch.float64)
    k = torch.randn(M, H + (shape_bug == "k"), D, dtype=torch.float64)
    v = torch.randn(M + (shape_bug == "v"), H, D, dtype=torch.float64)
    mu = torch.rand(R, H + (shape_bug == "mu"), dtype=torch.float64)
    dst = torch.tensor(data.draw(st.lists(st.integers(-1, N), min_size=E, max_size=E)), dtype=torch.int64)
    src = torch.tensor(data.draw(st.lists(st.integers(-1, M), min_size=E, max_size=E)), dtype=torch.int64)
    rel = torch.tensor(data.draw(st.lists(st.integers(0, R), min_size=E, max_size=E)), dtype=torch.int64)
    valid = (dst >= 0) & (dst < N)
    order = torch.argsort(dst.clamp(0, max(N - 1, 0)), stable=True)
    rowptr = torch.zeros(N + 1, dtype=torch.int64)
    if N:
        rowptr[1:] = torch.cumsum(torch.bincount(dst[valid], minlength=N), 0)
    col, rel_s = src[order], rel[order]
    if not bool(valid.all()):
        col = col[: int(rowptr[-1])]
        rel_s = rel_s[: int(rowptr[-1])]
    if data.draw(st.booleans()) and shape_bug is None:   # keys and values interleaved: k [M, 2, H, D], v=None
        k, v = torch.stack([k, v], 1), None
    try:
        colptr, row, perm = ops.csr_transpose(rowptr, col, M)
        out = ops.hetero_attention(q, k, v, mu, rowptr, col, rel_s, colptr, row, perm)
    except CLEAN:
        return
    torch.testing.assert_close(out, ref.hetero_attention(q, k, v, mu, rowptr, col, rel_s), rtol=1e-9, atol=1e-9)
