"""Native ops against their pure-torch twins: forward, float64 gradients, opcheck, bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import pygad.ops as ops
from pygad.ops import _reference as ref
from pygad.ops.attention import _hetero_attention, _hetero_attention_backward
from pygad.ops.csr import _csr_transpose, _hetero_csr
from pygad.ops.segment import _neighbor_aggregate, _segment_softmax, _segment_softmax_backward, _segment_sum


def random_relations(seed=0, sizes=((30, 40, 200), (25, 40, 150), (10, 40, 0)), dst=40):
    g = torch.Generator().manual_seed(seed)
    eis, num_src = [], []
    for ns, nd, e in sizes:
        eis.append(torch.stack([torch.randint(0, ns, (e,), generator=g), torch.randint(0, nd, (e,), generator=g)]))
        num_src.append(ns)
    return eis, num_src, dst


def attention_problem(dtype=torch.float64, H=2, D=5, seed=0, small=False):
    sizes = ((6, 8, 20), (5, 8, 14), (3, 8, 0)) if small else ((30, 40, 200), (25, 40, 150), (10, 40, 0))
    eis, num_src, N = random_relations(seed, sizes, dst=8 if small else 40)
    rowptr, col, rel, _ = ops.hetero_csr(eis, num_src, N)
    M = sum(num_src)
    colptr, row, perm = ops.csr_transpose(rowptr, col, M)
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(N, H, D, dtype=dtype, generator=g)
    k = torch.randn(M, H, D, dtype=dtype, generator=g)
    v = torch.randn(M, H, D, dtype=dtype, generator=g)
    mu = torch.rand(len(eis), H, dtype=dtype, generator=g) + 0.5
    return q, k, v, mu, (rowptr, col, rel), (colptr, row, perm)


# ---- CSR ------------------------------------------------------------------------------------
def test_hetero_csr_matches_reference_and_is_stable():
    eis, num_src, N = random_relations()
    got = ops.hetero_csr(eis, num_src, N)
    want = ref.hetero_csr(eis, num_src, N)
    for a, b in zip(got, want):
        assert torch.equal(a, b)
    rowptr, col, rel, eid = got
    assert rowptr[-1] == sum(e.shape[1] for e in eis)
    # within each row, entries keep relation-major input order
    for i in range(N):
        seg = eid[rowptr[i]:rowptr[i + 1]]
        assert torch.all(seg[1:] > seg[:-1])


def test_csr_transpose_matches_reference():
    eis, num_src, N = random_relations(1)
    rowptr, col, rel, _ = ops.hetero_csr(eis, num_src, N)
    M = sum(num_src)
    for a, b in zip(ops.csr_transpose(rowptr, col, M), ref.csr_transpose(rowptr, col, M)):
        assert torch.equal(a, b)


def test_csr_accepts_numpy_and_returns_numpy():
    ei = np.array([[0, 1, 2, 2], [1, 0, 0, 2]], dtype=np.int64)
    rowptr, col, rel, eid = ops.hetero_csr([ei], [3], 3)
    assert isinstance(rowptr, np.ndarray)
    assert rowptr.tolist() == [0, 2, 3, 4] and col.tolist() == [1, 2, 0, 2]


def test_csr_non_contiguous_input():
    eis, num_src, N = random_relations(2)
    nc = [torch.stack([e[1], e[0]]).flip(0) for e in eis]  # flip() gives a non-contiguous-safe copy
    nc = [e.t().contiguous().t() for e in nc]               # transposed storage: not contiguous
    assert not nc[0].is_contiguous()
    for a, b in zip(ops.hetero_csr(nc, num_src, N), ops.hetero_csr(eis, num_src, N)):
        assert torch.equal(a, b)


@pytest.mark.parametrize("bad, message", [
    (torch.tensor([[0, 5], [0, 1]]), "source index 5"),
    (torch.tensor([[0, 1], [0, 9]]), "destination index 9"),
    (torch.tensor([[0, -1], [0, 1]]), "source index -1"),
])
def test_csr_out_of_range_names_argument(bad, message):
    with pytest.raises(ValueError, match=message) as err:
        ops.hetero_csr([torch.tensor([[0], [0]]), bad], [5, 5], 3)
    assert "edge_index[1]" in str(err.value)


def test_csr_bad_shape_and_dtype():
    with pytest.raises(ValueError, match=r"edge_index\[0\]"):
        ops.hetero_csr([torch.zeros(3, 4, dtype=torch.int64)], [5], 5)
    with pytest.raises(TypeError, match=r"edge_index\[0\].*int64"):
        ops.hetero_csr([torch.zeros(2, 4, dtype=torch.int32)], [5], 5)
    with pytest.raises(TypeError, match="edge_index"):
        ops.hetero_csr([[0, 1]], [5], 5)


# ---- segment ops ----------------------------------------------------------------------------
PTR = torch.tensor([0, 3, 3, 7, 12])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_segment_ops_match_reference(dtype):
    x = torch.randn(12, 3, dtype=dtype)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ops.segment_sum(x, PTR), ref.segment_sum(x, PTR), **tol)
    torch.testing.assert_close(ops.segment_softmax(x, PTR), ref.segment_softmax(x, PTR), **tol)
    rowptr, col = torch.tensor([0, 2, 2, 5]), torch.tensor([1, 0, 4, 4, 2])
    for reduce in ("sum", "mean", "max"):
        torch.testing.assert_close(ops.neighbor_aggregate(x[:5], rowptr, col, reduce),
                                   ref.neighbor_aggregate(x[:5], rowptr, col, reduce), **tol)


def test_segment_gradients_float64():
    x = torch.randn(12, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: ops.segment_sum(t, PTR), (x,))
    assert torch.autograd.gradcheck(lambda t: ops.segment_softmax(t, PTR), (x,))
    assert torch.autograd.gradgradcheck(lambda t: ops.segment_softmax(t, PTR), (x,))


def test_segment_bad_pointer():
    x = torch.randn(5, 2)
    with pytest.raises(ValueError, match="'ptr'.*decreases"):
        ops.segment_sum(x, torch.tensor([0, 3, 2, 5]))
    with pytest.raises(ValueError, match=r"'ptr'\[-1\] must equal 5"):
        ops.segment_sum(x, torch.tensor([0, 3, 4]))
    with pytest.raises(TypeError, match="'src' must be float32 or float64"):
        ops.segment_sum(torch.ones(5, 2, dtype=torch.int64), torch.tensor([0, 5]))
    with pytest.raises(ValueError, match="'reduce'"):
        ops.neighbor_aggregate(x, torch.tensor([0, 1]), torch.tensor([0]), "median")
    with pytest.raises(ValueError, match="'col' has index 7"):
        ops.neighbor_aggregate(x, torch.tensor([0, 1]), torch.tensor([7]), "sum")


# ---- fused attention ------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("H, D", [(1, 3), (2, 16), (4, 8)])
def test_attention_matches_reference(dtype, H, D):
    q, k, v, mu, csr, csc = attention_problem(dtype, H, D)
    for t in (q, k, v, mu):
        t.requires_grad_(True)
    got = ops.hetero_attention(q, k, v, mu, *csr, *csc)
    want = ref.hetero_attention(q, k, v, mu, *csr)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(got, want, **tol)
    grad = torch.randn_like(got)
    for a, b in zip(torch.autograd.grad(got, (q, k, v, mu), grad), torch.autograd.grad(want, (q, k, v, mu), grad)):
        torch.testing.assert_close(a, b, **tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_attention_interleaved_keys_values(dtype):
    """k [M, 2, H, D] holding keys and values (v=None): the same output as separate arrays and as
    the reference, and its gradient in the same interleaved layout."""
    q, k, v, mu, csr, csc = attention_problem(dtype, 4, 8)
    kv = torch.stack([k, v], 1).requires_grad_(True)
    q.requires_grad_(True)
    got = ops.hetero_attention(q, kv, None, mu, *csr, *csc)
    separate = ops.hetero_attention(q, k, v, mu, *csr, *csc)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(got, separate, rtol=0, atol=0)   # the same arithmetic, only the strides differ
    torch.testing.assert_close(got, ref.hetero_attention(q, kv, None, mu, *csr), **tol)
    grad = torch.randn_like(got)
    gq, gkv = torch.autograd.grad(got, (q, kv), grad)
    kr, vr = k.clone().requires_grad_(True), v.clone().requires_grad_(True)
    want_q, want_k, want_v = torch.autograd.grad(ref.hetero_attention(q, kr, vr, mu, *csr), (q, kr, vr), grad)
    assert gkv.shape == kv.shape
    torch.testing.assert_close(gq, want_q, **tol)
    torch.testing.assert_close(gkv[:, 0], want_k, **tol)
    torch.testing.assert_close(gkv[:, 1], want_v, **tol)


def test_attention_interleaved_gradcheck_float64():
    q, k, v, mu, csr, csc = attention_problem(torch.float64, 2, 3, small=True)
    args = (q.requires_grad_(True), torch.stack([k, v], 1).requires_grad_(True), mu.requires_grad_(True))
    assert torch.autograd.gradcheck(lambda a, b, c: ops.hetero_attention(a, b, None, c, *csr, *csc), args)


def test_attention_gradcheck_float64():
    q, k, v, mu, csr, csc = attention_problem(torch.float64, 2, 3, small=True)
    args = [t.requires_grad_(True) for t in (q, k, v, mu)]
    assert torch.autograd.gradcheck(lambda *a: ops.hetero_attention(*a, *csr, *csc), args)


@pytest.mark.parametrize("interleaved", [False, True], ids=["separate", "interleaved"])
def test_attention_backward_with_and_without_saved_entries(interleaved):
    """The CPU forward keeps each entry's q . k and alpha ([E, 2, H]) for the backward; the
    backward kernel also recomputes them when given none (the path CUDA takes), with the same
    gradients."""
    from pygad.ops import attention

    q, k, v, mu, csr, csc = attention_problem(torch.float64, 2, 4)
    if interleaved:
        k, v = torch.stack([k, v], 1), None
    scale = 0.5
    out, lse, saved = attention._forward_kernel(q, k, v, mu, *csr, scale)
    assert saved.shape == (csr[1].shape[0], 2, q.shape[1])
    grad = torch.randn_like(out)
    kept = attention._backward_kernel(grad, q, k, v, mu, *csr, *csc, scale, out, lse, saved)
    recomputed = attention._backward_kernel(grad, q, k, v, mu, *csr, *csc, scale, out, lse, saved[:0])
    for a, b in zip(kept, recomputed):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("interleaved", [False, True], ids=["separate", "interleaved"])
def test_attention_under_torch_compile_uses_the_registered_op(interleaved):
    """Eager calls take a plain autograd.Function; traced calls must go through the custom op
    (fake impl + registered autograd) and give the same values and gradients (also with keys
    and values interleaved, v=None, as HGTConv calls it)."""
    q, k, v, mu, csr, csc = attention_problem(torch.float64, 2, 4)
    if interleaved:
        args = [t.requires_grad_(True) for t in (q, torch.stack([k, v], 1), mu)]
        call = lambda a, b, c: ops.hetero_attention(a, b, None, c, *csr, *csc)   # noqa: E731
    else:
        args = [t.requires_grad_(True) for t in (q, k, v, mu)]
        call = lambda *a: ops.hetero_attention(*a, *csr, *csc)   # noqa: E731
    seen = []

    def backend(gm, example_inputs):   # record the traced graph's calls, then run it eagerly
        seen.extend(str(n.target) for n in gm.graph.nodes if n.op == "call_function")
        return gm.forward

    compiled = torch.compile(call, backend=backend, fullgraph=True)
    got = compiled(*args)
    assert any("pygad.hetero_attention" in t for t in seen), seen
    want = call(*args)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    for a, b in zip(torch.autograd.grad(got.square().sum(), args), torch.autograd.grad(want.square().sum(), args)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_attention_rows_without_edges_are_zero():
    q, k, v, mu, csr, csc = attention_problem()
    rowptr = csr[0]
    empty = (rowptr[1:] == rowptr[:-1]).nonzero().flatten()
    out = ops.hetero_attention(q, k, v, mu, *csr, *csc)
    if len(empty):
        assert torch.all(out[empty] == 0)


def test_attention_backward_is_deterministic():
    q, k, v, mu, csr, csc = attention_problem(torch.float64, 2, 4)
    args = [t.requires_grad_(True) for t in (q, k, v, mu)]
    grads = [torch.autograd.grad(ops.hetero_attention(*args, *csr, *csc).square().sum(), args) for _ in range(3)]
    for g in grads[1:]:
        for a, b in zip(g, grads[0]):
            assert torch.equal(a, b)


def test_attention_bad_input():
    q, k, v, mu, (rowptr, col, rel), csc = attention_problem(torch.float32)
    with pytest.raises(ValueError, match="'k' must have shape"):
        ops.hetero_attention(q, k[:, :1], v, mu, rowptr, col, rel, *csc)
    with pytest.raises(TypeError, match="'k' must have dtype"):
        ops.hetero_attention(q, k.double(), v, mu, rowptr, col, rel, *csc)
    bad_col = col.clone()
    bad_col[3] = k.shape[0] + 5
    with pytest.raises(ValueError, match="'col' has index"):
        ops.hetero_attention(q, k, v, mu, rowptr, bad_col, rel, *csc)
    bad_rel = rel.clone()
    bad_rel[0] = 7
    with pytest.raises(ValueError, match="'rel' has index 7"):
        ops.hetero_attention(q, k, v, mu, rowptr, col, bad_rel, *csc)
    with pytest.raises(ValueError, match="'rowptr' must have length"):
        ops.hetero_attention(q[:-1], k, v, mu, rowptr, col, rel, *csc)
    with pytest.raises(ValueError, match=r"with v=None, 'k' must hold keys and values as \[M, 2, H, D\]"):
        ops.hetero_attention(q, k, None, mu, rowptr, col, rel, *csc)
    # the kept per-entry values handed to the native boundary must be [E, 2, H] of q's dtype
    from pygad.ops._native import _C, desc
    out, lse = torch.empty_like(q), q.new_empty(q.shape[:2])
    base = [desc(t) for t in (q, k, v, mu, rowptr, col, rel)]
    E, H = col.shape[0], q.shape[1]
    for saved, exc, pattern in [(q.new_empty(E, H), ValueError, "'saved' must have shape"),
                                (q.new_empty(E, 2, H).double(), TypeError, "'saved' has dtype")]:
        with pytest.raises(exc, match=pattern):
            _C.hetero_attention_forward(*base, 0.5, desc(out), desc(lse), desc(saved), 1, 0)
    # interleaved k with a separate grad_v (or separate v without one) is a named error
    kv = torch.stack([k, v], 1)
    _C.hetero_attention_forward(desc(q), desc(kv), None, *base[3:], 0.5, desc(out), desc(lse), None, 1, 0)
    with pytest.raises(ValueError, match="'k' must have shape"):
        _C.hetero_attention_forward(desc(q), desc(torch.stack([k, v, v], 1)), None, *base[3:], 0.5, desc(out),
                                    desc(lse), None, 1, 0)
    grads = [desc(torch.empty_like(t)) for t in (q, kv, v, mu)]
    with pytest.raises(ValueError, match="'grad_v' must be given exactly when 'v' is"):
        _C.hetero_attention_backward(desc(torch.ones_like(out)), desc(q), desc(kv), None, *base[3:],
                                     *[desc(t) for t in csc], 0.5, desc(out), desc(lse), None, *grads, 1, 0)


def test_attention_non_contiguous_inputs():
    q, k, v, mu, csr, csc = attention_problem(torch.float64, 2, 4)
    qt = q.transpose(1, 2).contiguous().transpose(1, 2)
    assert not qt.is_contiguous()
    torch.testing.assert_close(ops.hetero_attention(qt, k, v, mu, *csr, *csc),
                               ops.hetero_attention(q, k, v, mu, *csr, *csc))




# ---- torch.library.opcheck ------------------------------------------------------------------
def opcheck_cases():
    q, k, v, mu, csr, csc = attention_problem(torch.float64, 2, 3)
    out, lse, saved = _hetero_attention(q, k, v, mu, *csr, *csc, 0.5)
    eis, num_src, N = random_relations(3)
    x = torch.randn(12, 3, dtype=torch.float64)
    y = ops.segment_softmax(x, PTR)
    return [
        (_hetero_attention, (q.requires_grad_(), k.requires_grad_(), v.requires_grad_(), mu.requires_grad_(), *csr,
                             *csc, 0.5)),
        (_hetero_attention_backward, (torch.randn_like(out), q.detach(), k.detach(), v.detach(), mu.detach(), *csr,
                                      *csc, 0.5, out.detach(), lse.detach(), saved.detach())),
        (_hetero_attention, (q.detach().requires_grad_(), torch.stack([k, v], 1).detach().requires_grad_(), None,
                             mu.detach().requires_grad_(), *csr, *csc, 0.5)),
        (_hetero_attention_backward, (torch.randn_like(out), q.detach(), torch.stack([k, v], 1).detach(), None,
                                      mu.detach(), *csr, *csc, 0.5, out.detach(), lse.detach(), saved.detach())),
        (_hetero_csr, (eis, [int(n) for n in np.cumsum([0] + num_src[:-1])], num_src, N)),
        (_csr_transpose, (csr[0], csr[1], k.shape[0])),
        (_segment_sum, (x.clone().requires_grad_(), PTR)),
        (_segment_softmax, (x.clone().requires_grad_(), PTR)),
        (_segment_softmax_backward, (y.detach(), torch.randn_like(y), PTR)),
        (_neighbor_aggregate, (x, torch.tensor([0, 2, 2, 5]), torch.tensor([1, 0, 4, 4, 2]), "mean")),
    ]


@pytest.mark.parametrize("case", range(10))
def test_opcheck(case):
    op, args = opcheck_cases()[case]
    torch.library.opcheck(op, args)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a usable CUDA device")
def test_cuda_array_without_cuda_is_a_clear_error():
    # No CUDA tensor can exist on a machine without a GPU, so describe one to the native
    # boundary directly: device 0, as the adapter would for a tensor on cuda:0. A CPU-only
    # build says it has no CUDA; a CUDA build says the device does not exist.
    from pygad import _C
    src = torch.randn(4, 2)
    ptr = torch.tensor([0, 4])
    out = torch.empty(1, 2)
    cuda_src = (src.data_ptr(), "float32", (4, 2), 0)
    with pytest.raises(ValueError, match="built without CUDA|CUDA device 0 but 0 CUDA device"):
        _C.segment_sum(cuda_src, (ptr.data_ptr(), "int64", (2,), 0), (out.data_ptr(), "float32", (1, 2), 0), 1, 0)


@pytest.mark.parametrize("width", [16, 32, 64, 33])
@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
def test_neighbor_aggregate_unrolled_widths(width, reduce):
    # 16/32/64 take compile-time-width kernels, 33 the generic one: all must match the twin
    g = torch.Generator().manual_seed(width)
    x = torch.randn(50, width, generator=g)
    rowptr = torch.tensor([0, 4, 4, 9, 30, 31])
    col = torch.randint(0, 50, (31,), generator=g)
    torch.testing.assert_close(ops.neighbor_aggregate(x, rowptr, col, reduce),
                               ref.neighbor_aggregate(x, rowptr, col, reduce))


# ---- structurally inconsistent input (in range, but not what the kernels assume) ------------
def _attention_backward_call(q, k, v, mu, csr, csc):
    from pygad.ops._native import _C, desc
    out, lse = torch.empty_like(q), q.new_empty(q.shape[:2])
    _C.hetero_attention_forward(*[desc(t) for t in (q, k, v, mu, *csr)], 0.5, desc(out), desc(lse), None, 1, 0)
    grads = [torch.empty_like(t) for t in (q, k, v, mu)]
    grad_out = torch.ones_like(out)                   # descriptors hold pointers only: keep it alive
    _C.hetero_attention_backward(desc(grad_out), *[desc(t) for t in (q, k, v, mu, *csr, *csc)], 0.5,
                                 desc(out), desc(lse), None, *[desc(g) for g in grads], 1, 0)
    return grads


def test_attention_backward_rejects_a_perm_that_is_not_a_permutation():
    # a bigger call first fills the per-thread scratch: a non-permutation must not read it
    big = attention_problem(torch.float64, 2, 4)
    _attention_backward_call(*big)
    q, k, v, mu, csr, (colptr, row, perm) = attention_problem(torch.float64, 2, 4, small=True)
    dup = perm.clone()
    dup[1] = dup[0]                                   # in range, but edge dup[0] twice
    with pytest.raises(ValueError, match="'perm' is not a permutation"):
        _attention_backward_call(q, k, v, mu, csr, (colptr, row, dup))
    col = csr[1]
    swapped = perm.clone()
    a, b = 0, perm.shape[0] - 1                       # first and last position: different columns
    assert col[perm[a]] != col[perm[b]]
    swapped[[a, b]] = swapped[[b, a]]                 # a permutation, but not the transpose
    with pytest.raises(ValueError, match="not the transpose"):
        _attention_backward_call(q, k, v, mu, csr, (colptr, row, swapped))
    bad_row = row.clone()
    bad_row[0] = (bad_row[0] + 1) % q.shape[0]
    with pytest.raises(ValueError, match="'row' is not the transpose"):
        _attention_backward_call(q, k, v, mu, csr, (colptr, bad_row, perm))
    # the consistent transpose still gives the reference gradients
    got = _attention_backward_call(q, k, v, mu, csr, (colptr, row, perm))
    args = [t.clone().requires_grad_(True) for t in (q, k, v, mu)]
    want = torch.autograd.grad(ops.hetero_attention(*args, *csr, colptr, row, perm, scale=0.5).sum(), args)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)


@pytest.mark.parametrize("op", ["precondition", "step"])
def test_edm_repeat_times_batch_overflow_is_a_clear_error(op):
    from pygad.ops._native import _C, desc
    b, d = 4, 3
    x, sigma = torch.randn(b, d), torch.rand(b) + 0.5
    repeat = 2**62                                    # repeat * b wraps around int64
    empty = torch.empty(0, d)
    with pytest.raises(ValueError, match="repeat \\* batch"):
        if op == "precondition":
            _C.edm_precondition(desc(x), desc(sigma), None, None, 1.0, 0.5, repeat, None, desc(empty),
                                desc(torch.empty(b)), 1, 0)
        else:
            _C.edm_step(desc(x), desc(torch.randn(b, d)), None, desc(sigma), desc(sigma * 0.5), 1.0, 0.5, repeat,
                        desc(torch.empty(b, d)), desc(torch.empty(b, d)), desc(empty), 1, 0)


def test_hetero_csr_offset_overflow_is_a_clear_error():
    from pygad.ops._native import _C, desc
    ei = torch.tensor([[0, 1], [0, 1]])
    rowptr, col, rel, eid = (torch.empty(3, dtype=torch.int64), torch.empty(4, dtype=torch.int64),
                             torch.empty(4, dtype=torch.int64), torch.empty(4, dtype=torch.int64))
    with pytest.raises(ValueError, match="overflows int64"):
        _C.hetero_csr([desc(ei), desc(ei)], [0, 2**63 - 2], [2, 2], 2, desc(rowptr), desc(col), desc(rel),
                      desc(eid), 1, 0)


def test_neighbor_aggregate_max_propagates_nan_anywhere_in_the_row():
    x = torch.tensor([[1.0, 2.0], [float("nan"), 0.0], [3.0, float("nan")]])
    rowptr = torch.tensor([0, 3])
    col = torch.tensor([0, 1, 2])
    got = ops.neighbor_aggregate(x, rowptr, col, "max")
    want = ref.neighbor_aggregate(x, rowptr, col, "max")
    assert torch.isnan(got).all() and torch.isnan(want).all()
