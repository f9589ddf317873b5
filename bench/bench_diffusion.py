"""Fused EDM diffusion steps vs torch eager, and whole-sampler throughput (pytest-benchmark).

Run:  python -P -m pytest bench/bench_diffusion.py --benchmark-only -s -p no:cacheprovider
      (add --benchmark-json=out.json to keep the numbers)

Groups (impl = reference | native | native-out; ``speedup_vs_reference`` in ``extra_info``, and
bench/conftest.py prints every entry's ratio to the ``native`` entry at the end; torch threads
from ``PYGAD_BENCH_THREADS``, default 2):
* step-B100k-d64: the arithmetic of one guided Heun sampler step on 100k latents of width 64
  (churn + preconditioning into a stacked [2B] network input, the guided Euler step with the
  next network input, the guided Heun correction), i.e. everything between the MLP calls.
  ``reference`` = the torch-eager twins (fresh tensors), ``native`` = the fused kernels with
  fresh outputs, ``native-out`` = the fused kernels writing into reused buffers (what the
  sampler does).
* train-B100k-d64: noising + weighted loss, forward and backward (the MLP replaced by identity).
* sample-*: ``LatentDiffusion.sample`` (50 Heun steps, guidance 2, so 2 x 99 MLP row-evaluations
  per latent) with ``impl=native`` (benchmarked) vs ``reference`` (timed interleaved, before
  each native round, ``PYGAD_BENCH_SAMPLE_ROUNDS`` rounds). The MLP dominates at width 512; the default
  sizes fit a 2-core machine. Override with ``PYGAD_BENCH_SAMPLE="latents:hidden,..."``, e.g.
  ``PYGAD_BENCH_SAMPLE=100000:512`` for the 100k-latent run (long on a CPU), and pick the device
  with ``PYGAD_BENCH_DEVICE=cuda``.
"""
from __future__ import annotations

import os
import statistics
import time

import pytest
import torch

from pygad import ops
from pygad.models.diffusion import LatentDiffusion
from pygad.ops import _reference as ref

RESULTS: dict = {}
DEVICE = os.environ.get("PYGAD_BENCH_DEVICE", "cpu")
QUICK = os.environ.get("PYGAD_BENCH_QUICK", "") not in ("", "0")  # bench/conftest.py: CI smoke sizes
B, D = (2_000 if QUICK else 100_000), 64
SAMPLE_SIZES = [tuple(int(v) for v in s.split(":"))
                for s in os.environ.get("PYGAD_BENCH_SAMPLE", "64:64" if QUICK else "256:512,8192:64").split(",") if s]
SAMPLE_ROUNDS = int(os.environ.get("PYGAD_BENCH_SAMPLE_ROUNDS", "2"))


def _sync():
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def _record(benchmark, group, impl):
    benchmark.extra_info["impl"] = impl  # bench/conftest.py prints ratios to the "native" entry
    t = benchmark.stats.stats.median
    RESULTS[(group, impl)] = t
    benchmark.extra_info["median_s"] = t
    base = RESULTS.get((group, "reference"))
    if base is not None and impl != "reference":
        benchmark.extra_info["speedup_vs_reference"] = base / t


# ---- one sampler step's arithmetic -------------------------------------------------------------
@pytest.fixture(scope="module")
def step_data():
    g = torch.Generator().manual_seed(0)
    t = lambda *s: torch.randn(*s, generator=g).to(DEVICE)  # noqa: E731
    return dict(x=t(B, D), eps=t(B, D), f=t(2 * B, D), f2=t(2 * B, D))


def _step(impl, p, bufs=None):
    """Arithmetic of one guided Heun step from sigma=1.3 (churned to 1.4) to 1.1."""
    s, s_hat, s_next, w, sd = 1.3, 1.4, 1.1, 2.0, 0.5
    o = bufs or {}
    x_hat, net_in, _ = impl.edm_precondition(p["x"], s, sd, repeat=2, sigma_hat=s_hat, eps=p["eps"], s_noise=1.003,
                                             out=o.get("pre"))
    f, f2 = p["f"], p["f2"]  # stand-ins for the two MLP evaluations (same shape as net_in)
    x_next, deriv, net_in2 = impl.edm_step(x_hat, f[:B], f[B:], s_hat, s_next, w, sd, repeat=2, out=o.get("step"))
    return impl.edm_heun(x_hat, deriv, x_next, f2[:B], f2[B:], s_hat, s_next, w, sd, out=o.get("heun"))


@pytest.mark.parametrize("impl", ["reference", "native", "native-out"])
def test_step(benchmark, step_data, impl):
    group = f"step-B{B // 1000}k-d{D}"
    benchmark.group = group
    if impl == "native-out":
        e = lambda *s: torch.empty(*s, device=DEVICE)  # noqa: E731
        bufs = dict(pre=(e(B, D), e(2 * B, D), e(B)), step=(e(B, D), e(B, D), e(2 * B, D)), heun=e(B, D))
        fn = lambda: _step(ops, step_data, bufs)  # noqa: E731
    else:
        mod = ref if impl == "reference" else ops
        fn = lambda: _step(mod, step_data)  # noqa: E731

    def run():
        fn()
        _sync()

    run()
    benchmark.pedantic(run, rounds=15, iterations=1, warmup_rounds=2)
    _record(benchmark, group, impl)
    # bytes the fused kernels must move: precondition 2 reads + 3 writes, step 3 + 4, heun 5 + 1
    benchmark.extra_info["GB_per_s_min_traffic"] = 18 * B * D * 4 / benchmark.stats.stats.median / 1e9


# ---- training-side arithmetic ------------------------------------------------------------------
@pytest.mark.parametrize("impl", ["reference", "native"])
def test_train_noise_loss(benchmark, step_data, impl):
    group = f"train-B{B // 1000}k-d{D}"
    benchmark.group = group
    mod = ref if impl == "reference" else ops
    z0, eps = step_data["x"], step_data["eps"]
    sigma = (torch.randn(B, generator=torch.Generator().manual_seed(1)) * 1.2 - 1.2).exp().to(DEVICE)
    f = step_data["f"][:B].clone().requires_grad_()

    def run():
        net_in, c_noise = mod.edm_noise(z0, eps, sigma, 0.5)
        loss = mod.edm_loss(f + net_in, z0, eps, sigma, 0.5).mean()  # "network" = identity + f
        loss.backward()
        f.grad = None
        _sync()

    run()
    benchmark.pedantic(run, rounds=10, iterations=1, warmup_rounds=1)
    _record(benchmark, group, impl)


# ---- whole sampler -----------------------------------------------------------------------------
_MODELS: dict = {}


def _model(hidden):
    """An (untrained) model: sampling cost does not depend on the weights."""
    if hidden not in _MODELS:
        m = LatentDiffusion(D, hidden=hidden, num_layers=4, device=DEVICE, random_state=0)
        z = torch.randn(64, D)
        y = torch.arange(64) % 2
        _MODELS[hidden] = m.fit(z, y, epochs=1, batch_size=64, verbose=False)
    return _MODELS[hidden]


@pytest.mark.parametrize("size", SAMPLE_SIZES, ids=lambda s: f"{s[0]}x-w{s[1]}")
def test_sample(benchmark, size):
    """Times ``impl=native`` (the benchmark) interleaved with ``impl=reference`` (timed in setup)."""
    latents, hidden = size
    group = f"sample-{latents}-w{hidden}"
    benchmark.group = group
    m = _model(hidden)
    ref_times = []

    def sample(impl):
        m.impl = impl
        m.sample(latents, label=1, guidance=2.0, steps=50, seed=0)
        _sync()

    def setup():  # the reference run before each native round: interleaved under the same load
        t = time.perf_counter()
        sample("reference")
        ref_times.append(time.perf_counter() - t)

    benchmark.pedantic(sample, args=("native",), setup=setup, rounds=SAMPLE_ROUNDS, iterations=1)
    m.impl = "native"
    RESULTS[(group, "reference")] = statistics.median(ref_times)
    _record(benchmark, group, "native")
    benchmark.extra_info["reference_median_s"] = RESULTS[(group, "reference")]
    benchmark.extra_info["latents_per_s"] = latents / benchmark.stats.stats.median
