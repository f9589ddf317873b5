"""HGT layer speed and memory: pygad (fused kernel) vs torch_geometric.nn.HGTConv vs pygad's
pure-torch reference, on the synthetic 3-node-type / 5-relation graph of the shared check.

    python -P -m pytest bench/bench_hgt.py --benchmark-only                    # all sizes
    python -P -m pytest bench/bench_hgt.py --benchmark-only -k small           # 10k / 100k
    PYGAD_BENCH_DEVICE=cuda python -P -m pytest bench/bench_hgt.py -k gpu      # GPU sizes

Memory: each implementation runs in a fresh process that reports its peak RSS growth over
one warmed-up forward+backward from /proc/self/status ``VmHWM`` (the high-water mark of the
process's own address space; ``ru_maxrss`` would include the parent's peak inherited across
``execve``).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

QUICK = os.environ.get("PYGAD_BENCH_QUICK", "") not in ("", "0")  # bench/conftest.py: CI smoke sizes
SIZES = ({"small": (500, 2_000), "large": (1_000, 5_000), "gpu": (20_000, 200_000)} if QUICK else
         {"small": (10_000, 100_000), "large": (100_000, 1_000_000), "gpu": (1_000_000, 10_000_000)})
NODE_FRAC = {"A": 0.5, "B": 0.3, "C": 0.2}
EDGE_TYPES = [("A", "ab", "B"), ("B", "ba", "A"), ("A", "aa", "A"), ("A", "ac", "C"), ("C", "ca", "A")]
HIDDEN, HEADS = 64, 4
IMPLS = ["pygad", "pyg", "reference"]
DEVICE = os.environ.get("PYGAD_BENCH_DEVICE", "cpu")


def make_graph(size: str, device: str = "cpu", seed: int = 0):
    num_nodes, num_edges = SIZES[size]
    rng = np.random.default_rng(seed)
    n = {k: int(round(num_nodes * f)) for k, f in NODE_FRAC.items()}
    per = num_edges // len(EDGE_TYPES)
    ei = {(s, r, d): torch.from_numpy(np.stack([rng.integers(0, n[s], per), rng.integers(0, n[d], per)])).to(device)
          for s, r, d in EDGE_TYPES}
    x = {k: torch.from_numpy(rng.standard_normal((v, HIDDEN), dtype=np.float32)).to(device) for k, v in n.items()}
    return x, ei, (list(n), EDGE_TYPES)


def make_layers(impl: str, layers: int, metadata, device: str = "cpu"):
    if impl == "pyg":
        from torch_geometric.nn import HGTConv as PygHGTConv
        convs = [PygHGTConv(HIDDEN, HIDDEN, metadata, heads=HEADS) for _ in range(layers)]
    else:
        from pygad.nn import HGTConv
        convs = [HGTConv(HIDDEN, HIDDEN, metadata, heads=HEADS, impl="native" if impl == "pygad" else "reference")
                 for _ in range(layers)]
    return torch.nn.ModuleList(convs).to(device)


def run(convs, x, ei, backward: bool):
    convs.zero_grad(set_to_none=True)
    with torch.set_grad_enabled(backward):
        h = x
        for conv in convs:
            h = conv(h, ei)
        if backward:
            sum(o.sum() for o in h.values()).backward()
    if x["A"].is_cuda:
        torch.cuda.synchronize()


def proc_status_mb(field: str) -> float:
    """A memory field of /proc/self/status (``VmHWM``, ``VmRSS``) in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _memory_child(impl: str, size: str, layers: int) -> None:
    torch.set_num_threads(2)
    x, ei, md = make_graph(size)
    convs = make_layers(impl, layers, md)
    run(convs, x, ei, True)  # warm: lazy init, structure cache, allocator
    base = proc_status_mb("VmRSS")
    # VmHWM cannot be reset from user space without privileges, so measure the growth of the
    # high-water mark above the steady-state RSS after the warm step.
    run(convs, x, ei, True)
    print(json.dumps({"extra_mb": max(proc_status_mb("VmHWM") - base, 0.0)}))


@pytest.fixture(scope="module")
def memory_cache():
    return {}


def peak_extra_mb(cache, impl, size, layers) -> float:
    key = (impl, size, layers)
    if key not in cache:
        out = subprocess.run([sys.executable, "-P", __file__, "--memory", impl, size, str(layers)],
                             capture_output=True, text=True, check=True).stdout
        cache[key] = json.loads(out.strip().splitlines()[-1])["extra_mb"]
    return cache[key]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("mode", ["fwd", "fwd+bwd"])
@pytest.mark.parametrize("layers", [1, 2, 4])
@pytest.mark.parametrize("size", ["small", "large"])
def test_hgt_cpu(benchmark, memory_cache, size, layers, mode, impl):
    if DEVICE != "cpu":
        pytest.skip("CPU benchmark (PYGAD_BENCH_DEVICE=cpu)")
    pytest.importorskip("torch_geometric")
    if impl == "reference" and size == "large" and layers == 4:
        pytest.skip("the per-edge reference needs several GB at 1M edges x 4 layers")
    x, ei, md = make_graph(size)
    torch.manual_seed(0)
    convs = make_layers(impl, layers, md)
    backward = mode == "fwd+bwd"
    run(convs, x, ei, backward)
    benchmark.group = f"hgt {size} L={layers} {mode}"
    benchmark.extra_info["impl"] = impl
    if backward and not QUICK:  # a child process per entry: not worth it for a smoke run
        benchmark.extra_info["peak_extra_mb"] = round(peak_extra_mb(memory_cache, impl, size, layers), 1)
    rounds = 5 if size == "small" else 2
    benchmark.pedantic(run, args=(convs, x, ei, backward), rounds=rounds, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("impl", ["pygad", "pygad-kv", "gather"])
@pytest.mark.parametrize("size", ["small", "large", "gpu"])
def test_attention_vs_gather_floor(benchmark, size, impl):
    """The fused attention forward against a plain gather of the same K/V rows (the floor):
    small/large on the CPU, the gpu size with ``PYGAD_BENCH_DEVICE=cuda``. ``pygad-kv`` reads
    keys and values interleaved in one [M, 2, H, D] buffer (``v=None``), as HGTConv does."""
    if (size == "gpu") != (DEVICE == "cuda"):
        pytest.skip("small/large run on the CPU, the gpu size with PYGAD_BENCH_DEVICE=cuda")
    import pygad.ops as ops
    num_nodes, num_edges = SIZES[size]
    g = torch.Generator().manual_seed(0)
    src = torch.randint(0, num_nodes, (num_edges,), generator=g)
    dst = torch.randint(0, num_nodes, (num_edges,), generator=g)
    rowptr, col, rel, _ = ops.hetero_csr([torch.stack([src, dst])], [num_nodes], num_nodes)
    csc = ops.csr_transpose(rowptr, col, num_nodes)
    D = HIDDEN // HEADS
    q, k, v = (torch.randn(num_nodes, HEADS, D, generator=g) for _ in range(3))
    mu = torch.ones(1, HEADS)
    if DEVICE == "cuda":
        q, k, v, mu, rowptr, col, rel = (t.cuda() for t in (q, k, v, mu, rowptr, col, rel))
        csc = tuple(t.cuda() for t in csc)
    kf, vf = k.view(num_nodes, -1), v.view(num_nodes, -1)
    # Reused outputs for the gather: the floor should not pay page faults the kernel avoids.
    gk, gv = (torch.empty(num_edges, HIDDEN, device=k.device) for _ in range(2))

    def gather():
        torch.index_select(kf, 0, col, out=gk)
        torch.index_select(vf, 0, col, out=gv)
        if k.is_cuda:
            torch.cuda.synchronize()

    kv = torch.stack([k, v], 1) if impl == "pygad-kv" else None

    def attention():
        with torch.no_grad():
            if kv is None:
                ops.hetero_attention(q, k, v, mu, rowptr, col, rel, *csc)
            else:
                ops.hetero_attention(q, kv, None, mu, rowptr, col, rel, *csc)
        if k.is_cuda:
            torch.cuda.synchronize()

    benchmark.group = f"attention vs gather {size}"
    benchmark.extra_info["impl"] = impl
    benchmark.extra_info["bytes_gathered_mb"] = round(2 * num_edges * HIDDEN * 4 / 2**20, 1)
    benchmark.pedantic(gather if impl == "gather" else attention, rounds=7 if size != "gpu" else 20, iterations=1,
                       warmup_rounds=1)


@pytest.mark.parametrize("impl", ["pygad", "pyg"])
def test_hgt_gpu(benchmark, impl):
    """1M nodes / 10M edges, one layer, forward+backward on a GPU (PYGAD_BENCH_DEVICE=cuda)."""
    if DEVICE != "cuda" or not torch.cuda.is_available():
        pytest.skip("needs PYGAD_BENCH_DEVICE=cuda and a GPU")
    pytest.importorskip("torch_geometric")
    x, ei, md = make_graph("gpu", "cuda")
    convs = make_layers(impl, 1, md, "cuda")
    run(convs, x, ei, True)
    torch.cuda.reset_peak_memory_stats()
    run(convs, x, ei, True)
    benchmark.group = "hgt gpu 1M/10M L=1 fwd+bwd"
    benchmark.extra_info["impl"] = impl
    benchmark.extra_info["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    benchmark.pedantic(run, args=(convs, x, ei, True), rounds=5, iterations=1, warmup_rounds=1)


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "--memory":
    _memory_child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
