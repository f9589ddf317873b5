"""CSR construction and neighbour aggregation: pygad's native kernels vs scipy.sparse and torch.

Run (files in bench/ are collected when named explicitly)::

    python -P -m pytest bench/bench_csr.py --benchmark-group-by=group --benchmark-columns=mean,stddev,rounds

Groups (E = 1M and 10M random edges over N = E/10 nodes, int64 indices):

* ``csr-<E>``: COO -> destination-sorted CSR. ``native`` = ``pygad.ops.hetero_csr`` (counting
  sort), ``reference`` = its pure-torch twin (stable sort), ``scipy`` = ``coo_matrix(...).tocsr()``
  (also sums duplicates), ``torch`` = ``sparse_coo_tensor(...).to_sparse_csr()`` (coalesces).
* ``aggregate-<E>``: sum of neighbours' 32-float rows over a prebuilt CSR. ``native`` =
  ``pygad.ops.neighbor_aggregate``, ``scipy`` = ``csr @ X``, ``torch`` = ``torch.sparse.mm(csr, X)``.

Every benchmark stores ``ratio_vs_native`` (its mean time / native's mean time, > 1 = native
faster) in ``benchmark.extra_info``; ``test_ratio_summary`` prints the table. The native kernels
and torch use ``torch.get_num_threads()`` threads; scipy is single-threaded. Inputs are built
once per size and freed after (10M edges: 160 MB per [2, E] index array).
"""
from __future__ import annotations

import gc
import os

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from pygad.ops import _reference, hetero_csr, neighbor_aggregate

QUICK = os.environ.get("PYGAD_BENCH_QUICK", "") not in ("", "0")  # bench/conftest.py: CI smoke sizes
SIZES = {"1M": 20_000, "10M": 50_000} if QUICK else {"1M": 1_000_000, "10M": 10_000_000}
FEATURES = 32
IMPLS_CSR = ("native", "reference", "scipy", "torch")
IMPLS_AGG = ("native", "scipy", "torch")
_TIMES: dict = {}
_INPUTS: dict = {}


def _inputs(size: str) -> dict:
    if size not in _INPUTS:
        _INPUTS.clear()
        gc.collect()
        E = SIZES[size]
        N = E // 10
        rng = np.random.default_rng(0)
        ei = rng.integers(0, N, size=(2, E), dtype=np.int64)
        _INPUTS[size] = {"E": E, "N": N, "ei": ei, "ei_t": torch.from_numpy(ei)}
    return _INPUTS[size]


def _rounds(size):
    return (5, 1) if size == "1M" else (3, 1)


def _record(benchmark, group, impl):
    mean = benchmark.stats.stats.mean
    _TIMES[(group, impl)] = mean
    base = _TIMES.get((group, "native"))
    benchmark.extra_info["impl"] = impl
    benchmark.extra_info["threads"] = torch.get_num_threads() if impl != "scipy" else 1
    if base:
        benchmark.extra_info["ratio_vs_native"] = round(mean / base, 3)


@pytest.mark.parametrize("size, impl", [(s, i) for s in SIZES for i in IMPLS_CSR])
def test_csr_build(benchmark, size, impl):
    d = _inputs(size)
    E, N, ei, ei_t = d["E"], d["N"], d["ei"], d["ei_t"]
    group = f"csr-{size}"
    benchmark.group = group
    if impl == "native":
        fn = lambda: hetero_csr([ei_t], [N], N)  # noqa: E731
    elif impl == "reference":
        fn = lambda: _reference.hetero_csr([ei_t], [N], N)  # noqa: E731
    elif impl == "scipy":
        ones = np.ones(E, dtype=np.float32)
        fn = lambda: sp.coo_matrix((ones, (ei[1], ei[0])), shape=(N, N)).tocsr()  # noqa: E731
    else:
        ones_t = torch.ones(E, dtype=torch.float32)
        idx = ei_t.flip(0)
        fn = lambda: torch.sparse_coo_tensor(idx, ones_t, (N, N)).to_sparse_csr()  # noqa: E731
    rounds, warm = _rounds(size)
    out = benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=warm)
    if impl == "native":  # sanity: row pointer counts the in-degrees
        np.testing.assert_array_equal(np.diff(out[0].numpy()), np.bincount(ei[1], minlength=N))
    del out
    _record(benchmark, group, impl)


@pytest.mark.parametrize("size, impl", [(s, i) for s in SIZES for i in IMPLS_AGG])
def test_neighbor_aggregate(benchmark, size, impl):
    d = _inputs(size)
    N = d["N"]
    if "csr" not in d:
        rowptr, col, _, _ = hetero_csr([d["ei_t"]], [N], N)
        d["csr"] = (rowptr, col)
        d["x"] = torch.from_numpy(np.random.default_rng(1).standard_normal((N, FEATURES), dtype=np.float32))
    rowptr, col = d["csr"]
    x = d["x"]
    group = f"aggregate-{size}"
    benchmark.group = group
    if impl == "native":
        fn = lambda: neighbor_aggregate(x, rowptr, col, "sum")  # noqa: E731
    elif impl == "scipy":
        A = sp.csr_matrix((np.ones(col.shape[0], np.float32), col.numpy(), rowptr.numpy()), shape=(N, N))
        xn = x.numpy()
        fn = lambda: A @ xn  # noqa: E731
    else:
        A_t = torch.sparse_csr_tensor(rowptr, col, torch.ones(col.shape[0]), (N, N))
        fn = lambda: torch.sparse.mm(A_t, x)  # noqa: E731
    rounds, warm = _rounds(size)
    out = benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=warm)
    if impl != "native" and (group, "native") in _TIMES:  # same result as the native kernel (first rows)
        ref = neighbor_aggregate(x[:], rowptr, col, "sum")[:1000].numpy()
        got = out[:1000].numpy() if isinstance(out, torch.Tensor) else np.asarray(out[:1000])
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)
    del out
    _record(benchmark, group, impl)


def test_ratio_summary(capsys):
    if not _TIMES:
        pytest.skip("no benchmark ran (run the whole file)")
    lines = ["group            impl        mean [ms]   ratio vs native"]
    for (group, impl), t in _TIMES.items():
        base = _TIMES.get((group, "native"))
        lines.append(f"{group:<16} {impl:<10} {t * 1e3:>10.1f}   {t / base if base else float('nan'):>8.2f}")
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    _INPUTS.clear()
