"""Fuzz campaign at the native boundary: in-range but structurally inconsistent inputs.

Every native op (the functions of csrc/bindings.cpp, reached through pygad.ops) gets inputs
whose values are in range but whose structure is wrong: non-permutations and non-transposes
for the attention backward (after a bigger call filled the per-thread scratch), decreasing or
short CSR pointers, counts and offsets near the int64 limit, output buffers of the wrong
shape, zero/negative/NaN noise levels. Each call must either raise a *named* pygad error
(PygadValueError / PygadTypeError, whose message quotes an argument) or return exactly what
the pure-torch reference twin returns. Run under the sanitizer build (.ci/sanitize.sh), any
out-of-bounds access is a failure too.

Examples per test: 25 by default (CI); ``PYGAD_FUZZ_EXAMPLES=N`` for a longer campaign.
"""
from __future__ import annotations

import os
import re

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pygad
import pygad.ops as ops
from pygad.ops import _reference as ref
from pygad.ops.sampling import neighbor_sample_reference

pytestmark = pytest.mark.usefixtures("single_torch_thread")

EXAMPLES = int(os.environ.get("PYGAD_FUZZ_EXAMPLES") or 25)
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
NAMED = (pygad.PygadValueError, pygad.PygadTypeError)
BIG = [2**31, 2**32 + 1, 2**62, 2**63 - 2, 2**63 - 1]
# counts that size an output: too big to address (small ones that merely need GBs would really
# be allocated, which is the caller's right, not a bug)
HUGE_SIZE = [2**61, 2**62, 2**63 - 2, 2**63 - 1]


def _named(exc: Exception) -> None:
    """A clean rejection: a pygad error whose message quotes the argument it is about."""
    assert isinstance(exc, NAMED), f"{type(exc).__name__}: {exc}"
    assert re.search(r"'[A-Za-z_][^']*'|--\w", str(exc)), f"message names no argument: {exc}"


def _call(fn, *args, **kw):
    """fn(...) or None when it raised a named error (anything else fails the test)."""
    try:
        return fn(*args, **kw)
    except Exception as exc:  # noqa: BLE001 - the assertion below is the point
        _named(exc)
        return None


# ---- hetero_attention backward: inconsistent transposes after a bigger call -----------------
def _graph(rng, N, M, E, R):
    dst = np.sort(rng.integers(0, N, E)) if N else np.zeros(0, np.int64)
    col = rng.integers(0, M, E) if M else np.zeros(0, np.int64)
    rowptr = np.zeros(N + 1, np.int64)
    if N:
        rowptr[1:] = np.cumsum(np.bincount(dst, minlength=N))
    rel = rng.integers(0, R, E)
    return (torch.from_numpy(rowptr), torch.from_numpy(col.astype(np.int64)), torch.from_numpy(rel.astype(np.int64)))


def _attention_inputs(rng, N, M, H, D, R, dtype=torch.float64):
    g = torch.Generator().manual_seed(int(rng.integers(2**31)))
    q = torch.randn(N, H, D, dtype=dtype, generator=g, requires_grad=True)
    k = torch.randn(M, H, D, dtype=dtype, generator=g, requires_grad=True)
    v = torch.randn(M, H, D, dtype=dtype, generator=g, requires_grad=True)
    mu = torch.rand(R, H, dtype=dtype, generator=g).add(0.5).requires_grad_()
    return q, k, v, mu


def _grads(out, inputs, seed):
    w = torch.randn(out.shape, dtype=out.dtype, generator=torch.Generator().manual_seed(seed))
    return torch.autograd.grad((out * w).sum(), inputs)


MUTATIONS = ["none", "dup_perm", "swap_perm", "reverse_perm", "row_off", "row_swap", "colptr_shift",
             "perm_out_of_range", "colptr_short"]


@SETTINGS
@given(data=st.data())
def test_attention_backward_inconsistent_transpose(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    H, D, R = data.draw(st.integers(1, 3)), data.draw(st.sampled_from([1, 3, 8, 33, 130])), data.draw(st.integers(1, 3))
    # a bigger problem first: its backward fills the per-thread scratch with larger positions
    bN, bM, bE = 40, 30, 300
    rowptr, col, rel = _graph(rng, bN, bM, bE, R)
    colptr, row, perm = ops.csr_transpose(rowptr, col, bM)
    q, k, v, mu = _attention_inputs(rng, bN, bM, H, D, R)
    _grads(ops.hetero_attention(q, k, v, mu, rowptr, col, rel, colptr, row, perm), (q, k, v, mu), 0)

    N, M, E = data.draw(st.integers(1, 8)), data.draw(st.integers(1, 8)), data.draw(st.integers(2, 30))
    rowptr, col, rel = _graph(rng, N, M, E, R)
    colptr, row, perm = (t.clone() for t in ops.csr_transpose(rowptr, col, M))
    how = data.draw(st.sampled_from(MUTATIONS))
    i, j = (int(x) for x in rng.integers(0, E, 2))
    if how == "dup_perm":
        perm[i] = perm[j]
    elif how == "swap_perm":
        perm[[i, j]] = perm[[j, i]]
    elif how == "reverse_perm":
        perm = perm.flip(0).contiguous()
    elif how == "row_off":
        row[i] = (row[i] + 1) % N
    elif how == "row_swap":
        row[[i, j]] = row[[j, i]]
    elif how == "colptr_shift" and M > 1:
        c = int(rng.integers(1, M))
        colptr[c] = min(max(int(colptr[c]) + int(rng.choice([-1, 1])), int(colptr[c - 1])), int(colptr[c + 1]))
    elif how == "perm_out_of_range":
        perm[i] = E + int(rng.integers(0, 3))
    elif how == "colptr_short":
        colptr[-1] = E - 1
    q, k, v, mu = _attention_inputs(rng, N, M, H, D, R)
    out = _call(ops.hetero_attention, q, k, v, mu, rowptr, col, rel, colptr, row, perm)
    if out is None:
        return
    got = _call(_grads, out, (q, k, v, mu), 1)
    if got is None:
        return
    # accepted: the mutation kept a valid transpose, so the gradients are the reference's
    want = _grads(ref.hetero_attention(q, k, v, mu, rowptr, col, rel), (q, k, v, mu), 1)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


# ---- segment ops and neighbor_aggregate: malformed pointers --------------------------------
@st.composite
def bad_pointers(draw, entries):
    n = draw(st.integers(0, 8))
    cuts = sorted(draw(st.lists(st.integers(0, entries), min_size=n, max_size=n)))
    ptr = [0] + cuts + [entries]
    how = draw(st.sampled_from(["none", "decrease", "start", "end", "huge", "unsorted"]))
    if how == "decrease" and len(ptr) > 2:
        i = draw(st.integers(1, len(ptr) - 2))
        ptr[i] = ptr[i - 1] - 1
    elif how == "start":
        ptr[0] = draw(st.sampled_from([-1, 1, 2**62]))
    elif how == "end":
        ptr[-1] = entries + draw(st.sampled_from([-1, 1, 2**40]))
    elif how == "huge":
        ptr[draw(st.integers(0, len(ptr) - 1))] = draw(st.sampled_from(BIG))
    elif how == "unsorted":
        ptr = [0] + sorted(cuts, reverse=True) + [entries]
    return torch.tensor(ptr, dtype=torch.int64)


@SETTINGS
@given(data=st.data())
def test_segment_ops_malformed(data):
    E, F = data.draw(st.integers(0, 30)), data.draw(st.integers(1, 4))
    src = torch.randn(E, F, dtype=torch.float64, requires_grad=True)
    ptr = data.draw(bad_pointers(E))
    got = _call(ops.segment_sum, src, ptr)
    if got is not None:
        torch.testing.assert_close(got, ref.segment_sum(src, ptr))
    got = _call(ops.segment_softmax, src, ptr)
    if got is not None:
        torch.testing.assert_close(got, ref.segment_softmax(src, ptr))
        g = torch.randn_like(got)
        (a,) = torch.autograd.grad((got * g).sum(), src)        # segment_softmax_backward
        (b,) = torch.autograd.grad((ref.segment_softmax(src, ptr) * g).sum(), src)
        torch.testing.assert_close(a, b)


@SETTINGS
@given(data=st.data())
def test_neighbor_aggregate_malformed(data):
    E, M = data.draw(st.integers(0, 30)), data.draw(st.integers(0, 12))
    x = torch.randn(M, 3)
    col = torch.tensor(data.draw(st.lists(st.integers(0, max(M - 1, 0)), min_size=E, max_size=E)),
                       dtype=torch.int64)
    if E and data.draw(st.booleans()):
        col[data.draw(st.integers(0, E - 1))] = data.draw(st.sampled_from([-1, M, M + 1] + BIG))
    rowptr = data.draw(bad_pointers(E))
    reduce = data.draw(st.sampled_from(["sum", "mean", "max"]))
    got = _call(ops.neighbor_aggregate, x, rowptr, col, reduce)
    if got is not None:
        torch.testing.assert_close(got, ref.neighbor_aggregate(x, rowptr, col, reduce))


# ---- hetero_csr / csr_transpose: overflow-sized counts and offsets --------------------------
@SETTINGS
@given(data=st.data())
def test_csr_overflow_counts(data):
    R = data.draw(st.integers(1, 3))
    eis, num_src = [], []
    for _ in range(R):
        e = data.draw(st.integers(0, 12))
        n = data.draw(st.integers(1, 8))
        src = data.draw(st.lists(st.integers(0, n - 1), min_size=e, max_size=e))
        dst = data.draw(st.lists(st.integers(0, 5), min_size=e, max_size=e))
        eis.append(torch.tensor([src, dst], dtype=torch.int64).reshape(2, e))
        num_src.append(n)
    num_dst = 6
    src_offset = None
    how = data.draw(st.sampled_from(["none", "num_src", "offset", "num_dst", "negative"]))
    if how == "num_src":
        num_src[data.draw(st.integers(0, R - 1))] = data.draw(st.sampled_from(BIG))
    elif how == "offset":
        src_offset = [data.draw(st.sampled_from([0] + BIG)) for _ in range(R)]
    elif how == "num_dst":
        num_dst = data.draw(st.sampled_from(HUGE_SIZE + [2**63, 2**64]))
    elif how == "negative":
        num_dst = -data.draw(st.integers(1, 2**63))
    got = _call(ops.hetero_csr, eis, num_src, num_dst, src_offset)
    if got is None:
        return
    want = ref.hetero_csr(eis, num_src, num_dst, src_offset)
    for a, b in zip(got, want):
        assert torch.equal(a, b)
    fit = int(got[1].max()) + 1 if got[1].numel() else 0
    if fit > 10**6:   # sources offset by 2**31 and more: a right-sized transpose would need GBs
        fit = 0
    num_cols = data.draw(st.sampled_from([fit, 1, 0, -1] + HUGE_SIZE))
    t = _call(ops.csr_transpose, got[0], got[1], num_cols)
    if t is not None:
        for a, b in zip(t, ref.csr_transpose(got[0], got[1], num_cols)):
            assert torch.equal(a, b)


# ---- EDM steps: wrong buffers, overflowing repeats, bad noise levels ------------------------
LEVELS = [1.0, 0.3, 0.0, -1.0, float("nan"), float("inf")]


@SETTINGS
@given(data=st.data())
def test_edm_ops_inconsistent(data):
    B, d = data.draw(st.integers(0, 6)), data.draw(st.integers(1, 5))
    g = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31)))
    x, f, fu, eps = (torch.randn(B, d, dtype=torch.float64, generator=g) for _ in range(4))
    sigma = torch.tensor(data.draw(st.lists(st.sampled_from(LEVELS[:2] * 3 + LEVELS), min_size=B, max_size=B)),
                         dtype=torch.float64).reshape(B)
    sigma_next = torch.tensor(data.draw(st.lists(st.sampled_from(LEVELS[:3] * 3 + LEVELS), min_size=B, max_size=B)),
                              dtype=torch.float64).reshape(B)
    repeat = data.draw(st.sampled_from([1, 1, 2, 0, -1] + HUGE_SIZE))
    out_rows = data.draw(st.sampled_from(["right", "zero", "short"]))

    def buf(rows):
        return {"right": torch.empty(rows, d, dtype=torch.float64), "zero": torch.empty(0, d, dtype=torch.float64),
                "short": torch.empty(max(rows - 1, 0), d, dtype=torch.float64)}[out_rows]

    # precondition with caller buffers: repeat * B must be checked before anything is written
    net_rows = repeat * B if 0 < repeat < 100 else B
    got = _call(ops.edm_precondition, x, sigma, repeat=repeat, out=(buf(net_rows), torch.empty(B, dtype=torch.float64)))
    if got is not None:
        want = ref.edm_precondition(x, sigma, repeat=repeat)
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, equal_nan=True)
    got = _call(ops.edm_step, x, f, fu, sigma, sigma_next, 1.5, repeat=max(min(repeat, 3), 0))
    if got is not None:
        for a, b in zip(got, ref.edm_step(x, f, fu, sigma, sigma_next, 1.5, repeat=max(min(repeat, 3), 0))):
            torch.testing.assert_close(a, b)
    got = _call(ops.edm_heun, x, f, x, f, fu, sigma, sigma_next, 1.5)
    if got is not None:
        torch.testing.assert_close(got, ref.edm_heun(x, f, x, f, fu, sigma, sigma_next, 1.5))
    got = _call(ops.edm_noise, x, eps, sigma)
    if got is not None:
        for a, b in zip(got, ref.edm_noise(x, eps, sigma)):
            torch.testing.assert_close(a, b)
    got = _call(ops.edm_loss, f, x, eps, sigma)
    if got is not None:
        torch.testing.assert_close(got, ref.edm_loss(f, x, eps, sigma))


# ---- neighbour sampling: CSR inconsistent with the node counts -----------------------------
@SETTINGS
@given(data=st.data())
def test_neighbor_sample_inconsistent(data):
    n = data.draw(st.integers(1, 10))
    E = data.draw(st.integers(0, 25))
    col = np.array(data.draw(st.lists(st.integers(0, n - 1), min_size=E, max_size=E)), np.int64)
    cuts = sorted(data.draw(st.lists(st.integers(0, E), min_size=n - 1, max_size=n - 1)))
    rowptr = np.array([0] + cuts + [E], np.int64)
    how = data.draw(st.sampled_from(["none", "col_range", "ptr_decrease", "ptr_end", "seed_dup", "seed_range",
                                     "fanout_big", "num_nodes_big"]))
    seeds = np.array(sorted(set(data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n)))), np.int64)
    fanouts = [data.draw(st.sampled_from([-1, 0, 1, 3]))] * data.draw(st.integers(1, 3))
    num_nodes = {"a": n}
    if how == "col_range" and E:
        col[data.draw(st.integers(0, E - 1))] = data.draw(st.sampled_from([n, n + 5] + BIG))
    elif how == "ptr_decrease" and n > 1:
        rowptr[1] = rowptr[0] - 1
    elif how == "ptr_end":
        rowptr[-1] = E + 2
    elif how == "seed_dup":
        seeds = np.r_[seeds, seeds[:1]]
    elif how == "seed_range":
        seeds = np.r_[seeds, [data.draw(st.sampled_from([n, -1] + BIG))]].astype(np.int64)
    elif how == "fanout_big":
        fanouts = [data.draw(st.sampled_from(BIG + [2**63]))]
    elif how == "num_nodes_big":
        num_nodes = {"a": data.draw(st.sampled_from(HUGE_SIZE + [2**63]))}
    csr = {("a", "r", "a"): (rowptr, col)}
    got = _call(ops.neighbor_sample, csr, num_nodes, {"a": seeds}, fanouts, 7)
    if got is None:
        return
    want = neighbor_sample_reference(csr, num_nodes, {"a": seeds}, fanouts, 7)
    for t in got[0]:
        np.testing.assert_array_equal(got[0][t], want[0][t])
    for et in got[1]:
        np.testing.assert_array_equal(got[1][et], want[1][et])


# ---- the native boundary itself: descriptors that lie about dtype/ndim ---------------------
@SETTINGS
@given(data=st.data())
def test_raw_descriptors_rejected(data):
    """_C functions called directly with wrong dtype names, negative dims, null pointers."""
    from pygad import _C
    src = np.zeros((3, 2), np.float32)
    ptr = np.array([0, 1, 3], np.int64)
    out = np.zeros((2, 2), np.float32)
    d = lambda a: (a.ctypes.data, a.dtype.name, a.shape, -1)  # noqa: E731
    how = data.draw(st.sampled_from(["dtype", "negdim", "null", "ndim", "device"]))
    s = list(d(src))
    if how == "dtype":
        s[1] = data.draw(st.sampled_from(["float16", "complex64", "object", ""]))
    elif how == "negdim":
        s[2] = (-1, 2)
    elif how == "null":
        s[0] = 0
    elif how == "ndim":
        s[2] = (6,)
    elif how == "device":
        s[3] = data.draw(st.sampled_from([0, 7]))
    with pytest.raises(NAMED):
        _C.segment_sum(tuple(s), d(ptr), d(out), 1, 0)
