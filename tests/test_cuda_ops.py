"""CUDA kernels of pygad.ops against the CPU kernels and the pure-torch reference twins.

Every op is run on the GPU and on the CPU with the same inputs: forwards, gradients (including
float64 gradcheck on the GPU), the stable orderings of the CSR builders (bitwise equal to the
CPU), index validation (a bad index is a ValueError, never a crash), streams and devices.
The whole module is skipped unless a GPU is visible and pygad was built with CUDA.
"""
from __future__ import annotations

import math

import pytest
import torch

from pygad import ops
from pygad.ops import _reference as ref
from pygad.ops.attention import _hetero_attention
from pygad.testing import requires_cuda

pytestmark = [pytest.mark.cuda, requires_cuda]

CUDA = torch.device("cuda")
FLOATS = [torch.float32, torch.float64]


def tol(dtype):
    return dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)


def random_csr(n, m, max_deg, seed, empty_every=4):
    """rowptr [n+1], col [E] on the CPU; every `empty_every`-th row is empty."""
    g = torch.Generator().manual_seed(seed)
    deg = torch.randint(0, max_deg + 1, (n,), generator=g)
    if empty_every:
        deg[::empty_every] = 0
    rowptr = torch.zeros(n + 1, dtype=torch.int64)
    rowptr[1:] = torch.cumsum(deg, 0)
    col = torch.randint(0, max(m, 1), (int(rowptr[-1]),), generator=g, dtype=torch.int64)
    return rowptr, col


def attention_problem(n, m, h, d, r, max_deg, seed, dtype, empty_every=4, csr=None):
    """CPU tensors of one attention problem, with its transpose; csr = (rowptr, col, rel) or random."""
    g = torch.Generator().manual_seed(seed)
    if csr is None:
        rowptr, col = random_csr(n, m, max_deg, seed, empty_every)
        rel = torch.randint(0, r, (col.numel(),), generator=g, dtype=torch.int64)
    else:
        rowptr, col, rel = (torch.tensor(t, dtype=torch.int64) for t in csr)
    q = torch.randn(n, h, d, generator=g, dtype=torch.float64).to(dtype)
    k = torch.randn(m, h, d, generator=g, dtype=torch.float64).to(dtype)
    v = torch.randn(m, h, d, generator=g, dtype=torch.float64).to(dtype)
    mu = (torch.rand(r, h, generator=g, dtype=torch.float64) + 0.5).to(dtype)
    colptr, row, perm = ops.csr_transpose(rowptr, col, m)
    return dict(q=q, k=k, v=v, mu=mu, rowptr=rowptr, col=col, rel=rel, colptr=colptr, row=row, perm=perm)


def to(p, device):
    return {name: t.to(device) for name, t in p.items()}


def attend(p, scale=None):
    return ops.hetero_attention(p["q"], p["k"], p["v"], p["mu"], p["rowptr"], p["col"], p["rel"], p["colptr"],
                                p["row"], p["perm"], scale)


def attention_grads(p, grad_out):
    leaves = {name: p[name].detach().clone().requires_grad_(True) for name in ("q", "k", "v", "mu")}
    out = attend({**p, **leaves})
    out.backward(grad_out)
    return out.detach(), [leaves[name].grad for name in ("q", "k", "v", "mu")]


# ---- segment ops -----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("f", [1, 7, 64])
def test_segment_sum_matches_cpu(dtype, f):
    ptr, _ = random_csr(300, 1, 9, seed=f)
    src = torch.randn(int(ptr[-1]), f, dtype=torch.float64).to(dtype)
    got = ops.segment_sum(src.to(CUDA), ptr.to(CUDA))
    torch.testing.assert_close(got.cpu(), ops.segment_sum(src, ptr), **tol(dtype))
    torch.testing.assert_close(got.cpu(), ref.segment_sum(src, ptr), **tol(dtype))
    assert (got.cpu()[::4] == 0).all()  # empty segments


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("h", [1, 4])
def test_segment_softmax_matches_cpu(dtype, h):
    ptr, _ = random_csr(200, 1, 12, seed=h)
    src = (3 * torch.randn(int(ptr[-1]), h, dtype=torch.float64)).to(dtype)
    got = ops.segment_softmax(src.to(CUDA), ptr.to(CUDA))
    torch.testing.assert_close(got.cpu(), ops.segment_softmax(src, ptr), **tol(dtype))
    torch.testing.assert_close(got.cpu(), ref.segment_softmax(src, ptr), **tol(dtype))

    gy = torch.randn_like(src)
    x_gpu = src.to(CUDA, copy=True).requires_grad_(True)
    ops.segment_softmax(x_gpu, ptr.to(CUDA)).backward(gy.to(CUDA))
    x_cpu = src.clone().requires_grad_(True)
    ops.segment_softmax(x_cpu, ptr).backward(gy)
    torch.testing.assert_close(x_gpu.grad.cpu(), x_cpu.grad, **tol(dtype))


def test_segment_softmax_gradcheck_cuda():
    ptr, _ = random_csr(9, 1, 4, seed=3)
    ptr = ptr.to(CUDA)
    x = torch.randn(int(ptr[-1]), 3, dtype=torch.float64, device=CUDA, requires_grad=True)
    fn = lambda t: ops.segment_softmax(t, ptr)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


def test_segment_sum_gradcheck_cuda():
    ptr, _ = random_csr(9, 1, 4, seed=5)
    ptr = ptr.to(CUDA)
    x = torch.randn(int(ptr[-1]), 3, dtype=torch.float64, device=CUDA, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: ops.segment_sum(t, ptr), (x,))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
def test_neighbor_aggregate_matches_cpu(dtype, reduce):
    rowptr, col = random_csr(250, 40, 10, seed=11)
    x = torch.randn(40, 13, dtype=torch.float64).to(dtype)
    got = ops.neighbor_aggregate(x.to(CUDA), rowptr.to(CUDA), col.to(CUDA), reduce)
    torch.testing.assert_close(got.cpu(), ops.neighbor_aggregate(x, rowptr, col, reduce), **tol(dtype))
    torch.testing.assert_close(got.cpu(), ref.neighbor_aggregate(x, rowptr, col, reduce), **tol(dtype))
    assert (got.cpu()[::4] == 0).all()


def test_segment_ops_empty_inputs():
    ptr = torch.zeros(5, dtype=torch.int64, device=CUDA)
    src = torch.empty(0, 3, device=CUDA)
    assert (ops.segment_sum(src, ptr) == 0).all()
    assert ops.segment_softmax(src, ptr).shape == (0, 3)
    x = torch.randn(6, 3, device=CUDA)
    col = torch.empty(0, dtype=torch.int64, device=CUDA)
    assert (ops.neighbor_aggregate(x, ptr, col, "max") == 0).all()


# ---- CSR construction --------------------------------------------------------------------------
def hetero_edges(sizes, num_src, num_dst, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.stack([torch.randint(0, max(s, 1), (e,), generator=g), torch.randint(0, max(num_dst, 1), (e,), generator=g)])
            for e, s in zip(sizes, num_src)]


@pytest.mark.parametrize("sizes,num_src,num_dst", [
    ([40, 0, 25, 7], [5, 3, 9, 2], 13),        # an empty relation inside, many duplicates per row
    ([30, 20, 0], [4, 6, 1], 1),               # one destination, empty last relation
    ([120_000, 80_000], [3000, 50_000], 70_000),  # > 16 key bits: several radix passes
])
def test_hetero_csr_matches_cpu(sizes, num_src, num_dst):
    edges = hetero_edges(sizes, num_src, num_dst, seed=len(sizes) + num_dst)
    offsets = [7 * r for r in range(len(sizes))]  # non-default, overlapping offsets are allowed
    want = ops.hetero_csr(edges, num_src, num_dst, src_offset=offsets)
    got = ops.hetero_csr([e.to(CUDA) for e in edges], num_src, num_dst, src_offset=offsets)
    for w, g_ in zip(want, got):
        assert g_.is_cuda
        assert torch.equal(g_.cpu(), w)  # bitwise: same stable order as the CPU
    for w, r in zip(want, ref.hetero_csr(edges, num_src, num_dst, src_offset=offsets)):
        assert torch.equal(w, r)


def test_hetero_csr_without_edges():
    edges = [torch.empty(2, 0, dtype=torch.int64, device=CUDA)]
    rowptr, col, rel, eid = ops.hetero_csr(edges, [4], 6)
    assert torch.equal(rowptr.cpu(), torch.zeros(7, dtype=torch.int64))
    assert col.numel() == rel.numel() == eid.numel() == 0


@pytest.mark.parametrize("n,m,max_deg", [(50, 9, 6), (1, 1, 30), (20_000, 100_000, 12), (3000, 1, 5)])
def test_csr_transpose_matches_cpu(n, m, max_deg):
    rowptr, col = random_csr(n, m, max_deg, seed=n + m)
    want = ops.csr_transpose(rowptr, col, m)
    got = ops.csr_transpose(rowptr.to(CUDA), col.to(CUDA), m)
    for w, g_ in zip(want, got):
        assert torch.equal(g_.cpu(), w)
    for w, r in zip(want, ref.csr_transpose(rowptr, col, m)):
        assert torch.equal(w, r)


def test_csr_transpose_without_entries():
    rowptr = torch.zeros(4, dtype=torch.int64, device=CUDA)
    colptr, row, perm = ops.csr_transpose(rowptr, torch.empty(0, dtype=torch.int64, device=CUDA), 5)
    assert torch.equal(colptr.cpu(), torch.zeros(6, dtype=torch.int64))
    assert row.numel() == perm.numel() == 0


# ---- fused attention ---------------------------------------------------------------------------
# Head widths cover every kernel layout: D <= 32 (1 column per lane, G = 1..32 lanes),
# D <= 64 (2 per lane), D <= 128 (4 per lane) and the generic D > 128 path.
WIDTHS = [1, 3, 16, 32, 48, 64, 100, 128, 160]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("d", WIDTHS)
@pytest.mark.parametrize("h", [1, 3])
def test_attention_forward_matches_cpu(dtype, d, h):
    p = attention_problem(n=70, m=50, h=h, d=d, r=3, max_deg=9, seed=d * 10 + h, dtype=dtype)
    args = lambda t: (t["q"], t["k"], t["v"], t["mu"], t["rowptr"], t["col"], t["rel"], t["colptr"],  # noqa: E731
                      t["row"], t["perm"], 1.0 / math.sqrt(d))
    out_cpu, lse_cpu, _ = _hetero_attention(*args(p))
    out_gpu, lse_gpu, _ = _hetero_attention(*args(to(p, CUDA)))
    torch.testing.assert_close(out_gpu.cpu(), out_cpu, **tol(dtype))
    torch.testing.assert_close(lse_gpu.cpu(), lse_cpu, **tol(dtype))
    assert torch.isneginf(lse_gpu[::4]).all() and (out_gpu[::4] == 0).all()  # empty rows
    want = ref.hetero_attention(p["q"], p["k"], p["v"], p["mu"], p["rowptr"], p["col"], p["rel"])
    torch.testing.assert_close(out_gpu.cpu(), want, **tol(dtype))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("d", [3, 32, 48, 100, 160])
def test_attention_gradients_match_cpu(dtype, d):
    # E > 2048 entries and several relations: grad_mu is reduced over several chunks.
    p = attention_problem(n=1200, m=300, h=2, d=d, r=3, max_deg=16, seed=d, dtype=dtype)
    assert p["col"].numel() > 2 * 2048
    grad_out = torch.randn(p["q"].shape, dtype=torch.float64).to(dtype)
    out_cpu, grads_cpu = attention_grads(p, grad_out)
    out_gpu, grads_gpu = attention_grads(to(p, CUDA), grad_out.to(CUDA))
    torch.testing.assert_close(out_gpu.cpu(), out_cpu, **tol(dtype))
    loose = dict(rtol=2e-4, atol=2e-4) if dtype == torch.float32 else dict(rtol=1e-9, atol=1e-10)
    for name, gg, gc in zip("q k v mu".split(), grads_gpu, grads_cpu):
        torch.testing.assert_close(gg.cpu(), gc, **loose, msg=lambda m: f"grad_{name}: {m}")


@pytest.mark.parametrize("dtype", FLOATS)
def test_attention_interleaved_keys_values_match_cpu(dtype):
    """k [M, 2, H, D] with v=None (HGTConv's layout): on CUDA the adapter splits it for the
    kernels and returns the gradient interleaved, equal to the CPU kernel's."""
    p = attention_problem(n=400, m=150, h=4, d=16, r=3, max_deg=12, seed=5, dtype=dtype)
    grad_out = torch.randn(p["q"].shape, dtype=torch.float64).to(dtype)
    results = []
    for dev in ("cpu", CUDA):
        q = p["q"].to(dev).requires_grad_(True)
        kv = torch.stack([p["k"], p["v"]], 1).to(dev).requires_grad_(True)
        rest = [p[name].to(dev) for name in ("rowptr", "col", "rel", "colptr", "row", "perm")]
        out = ops.hetero_attention(q, kv, None, p["mu"].to(dev), *rest)
        out.backward(grad_out.to(dev))
        results.append((out.detach().cpu(), q.grad.cpu(), kv.grad.cpu()))
    loose = dict(rtol=2e-4, atol=2e-4) if dtype == torch.float32 else dict(rtol=1e-9, atol=1e-10)
    for got, want in zip(results[1], results[0]):
        torch.testing.assert_close(got, want, **loose)


@pytest.mark.parametrize("d,h", [(3, 2), (40, 1), (130, 1)])  # 1 and 2 columns per lane, generic path
def test_attention_gradcheck_cuda(d, h):
    # An empty row, a row mixing both relations and a repeated source, a row of one relation.
    csr = ([0, 0, 4, 6], [0, 2, 1, 2, 2, 0], [0, 1, 1, 0, 1, 1])
    p = to(attention_problem(n=3, m=3, h=h, d=d, r=2, max_deg=0, seed=d, dtype=torch.float64, csr=csr), CUDA)
    leaves = [p[name].clone().requires_grad_(True) for name in ("q", "k", "v", "mu")]

    def fn(q, k, v, mu):
        return attend({**p, "q": q, "k": k, "v": v, "mu": mu})

    assert torch.autograd.gradcheck(fn, leaves)


def test_attention_backward_is_deterministic():
    p = to(attention_problem(n=2000, m=40, h=4, d=24, r=4, max_deg=30, seed=1, dtype=torch.float32), CUDA)
    grad_out = torch.randn(p["q"].shape, device=CUDA)
    _, first = attention_grads(p, grad_out)
    for _ in range(3):
        _, again = attention_grads(p, grad_out)
        for a, b in zip(first, again):
            assert torch.equal(a, b)


def test_attention_without_entries():
    p = to(attention_problem(n=6, m=3, h=2, d=5, r=2, max_deg=0, seed=0, dtype=torch.float64), CUDA)
    assert p["col"].numel() == 0
    out, lse, _ = _hetero_attention(p["q"], p["k"], p["v"], p["mu"], p["rowptr"], p["col"], p["rel"], p["colptr"],
                                 p["row"], p["perm"], 0.5)
    assert (out == 0).all() and torch.isneginf(lse).all()
    _, grads = attention_grads(p, torch.randn_like(p["q"]))
    for g in grads:
        assert (g == 0).all()


def test_attention_on_a_side_stream():
    p = attention_problem(n=300, m=200, h=2, d=16, r=2, max_deg=8, seed=4, dtype=torch.float64)
    grad_out = torch.randn(p["q"].shape, dtype=torch.float64)
    out_cpu, grads_cpu = attention_grads(p, grad_out)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        pg = to(p, CUDA)  # produced on the side stream: the kernels and checks must run after it
        out_gpu, grads_gpu = attention_grads(pg, grad_out.to(CUDA))
        csr = ops.hetero_csr([torch.stack([pg["col"], pg["rel"]])], [200], 2)
    torch.cuda.current_stream().wait_stream(side)
    torch.testing.assert_close(out_gpu.cpu(), out_cpu, **tol(torch.float64))
    for gg, gc in zip(grads_gpu, grads_cpu):
        torch.testing.assert_close(gg.cpu(), gc, rtol=1e-9, atol=1e-10)
    want = ops.hetero_csr([torch.stack([p["col"], p["rel"]])], [200], 2)
    for w, g_ in zip(want, csr):
        assert torch.equal(g_.cpu(), w)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_ops_on_a_non_current_device():
    dev = torch.device("cuda", 1)
    assert torch.cuda.current_device() == 0
    p = attention_problem(n=100, m=80, h=2, d=16, r=2, max_deg=6, seed=9, dtype=torch.float64)
    torch.testing.assert_close(attend(to(p, dev)).cpu(), attend(p), **tol(torch.float64))
    got = ops.csr_transpose(p["rowptr"].to(dev), p["col"].to(dev), 80)
    for w, g_ in zip(ops.csr_transpose(p["rowptr"], p["col"], 80), got):
        assert torch.equal(g_.cpu(), w)


# ---- validation on the device --------------------------------------------------------------------
def test_bad_indices_raise_value_errors():
    rowptr, col = random_csr(30, 10, 5, seed=2)
    rowptr, col = rowptr.to(CUDA), col.to(CUDA)
    x = torch.randn(10, 4, device=CUDA)

    bad_col = col.clone()
    bad_col[3] = 10
    with pytest.raises(ValueError, match="'col'"):
        ops.neighbor_aggregate(x, rowptr, bad_col, "sum")
    bad_col[3] = -1
    with pytest.raises(ValueError, match="'col'"):
        ops.csr_transpose(rowptr, bad_col, 10)

    bad_ptr = rowptr.clone()
    bad_ptr[5] = bad_ptr[6] + 1  # decreasing
    with pytest.raises(ValueError, match="'ptr'"):
        ops.segment_sum(torch.randn(col.numel(), 2, device=CUDA), bad_ptr)
    bad_end = rowptr.clone()
    bad_end[-1] += 1  # does not end at E
    with pytest.raises(ValueError, match="'rowptr'"):
        ops.neighbor_aggregate(x, bad_end, col, "max")

    edges = [torch.tensor([[0, 1, 2], [0, 1, 5]], device=CUDA)]
    with pytest.raises(ValueError, match="destination"):
        ops.hetero_csr(edges, [3], 5)
    with pytest.raises(ValueError, match="source"):
        ops.hetero_csr(edges, [2], 6)

    p = to(attention_problem(n=30, m=10, h=2, d=4, r=2, max_deg=5, seed=2, dtype=torch.float32), CUDA)
    p["rel"][0] = 2
    with pytest.raises(ValueError, match="'rel'"):
        attend(p)
    torch.cuda.synchronize()  # nothing was launched with the bad index: the context is healthy


def test_mixed_devices_raise():
    p = attention_problem(n=10, m=10, h=1, d=4, r=1, max_deg=3, seed=0, dtype=torch.float32)
    g = to(p, CUDA)
    g["k"] = p["k"]
    with pytest.raises(ValueError, match="device"):
        attend(g)
