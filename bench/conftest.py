"""Benchmark plumbing shared by every suite in bench/.

Each suite puts its implementations of one workload in one pytest-benchmark ``group`` and
marks the pygad entry with ``benchmark.extra_info["impl"] = "pygad"`` (or ``"native"``). At
the end of the run this prints, per group, every entry's median time and its ratio to the
pygad entry (``>1`` means pygad is faster), so peers are compared in the same run.

Dataset names resolve through ``$PYGAD_DATA``; unset, it points at the real datasets in
``../shared/data`` beside the checkout (pygad itself only searches ``$PYGAD_DATA``, ``./data``
and its embedded dataset).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

BASELINE_IMPLS = ("pygad", "native")
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
QUICK = os.environ.get("PYGAD_BENCH_QUICK", "") not in ("", "0")


def _once(fixture_class):
    """A subclass of pytest-benchmark's fixture whose every call is one round of one iteration
    (the plugin checks that the fixture is an instance of its own class)."""

    class OnceBenchmarkFixture(fixture_class):
        def __call__(self, function_to_benchmark, *args, **kwargs):
            return super().pedantic(function_to_benchmark, args=args, kwargs=kwargs, rounds=1, iterations=1)

        def pedantic(self, target, args=(), kwargs=None, setup=None, rounds=1, warmup_rounds=0, iterations=1):
            return super().pedantic(target, args=args, kwargs=kwargs, setup=setup, rounds=1, iterations=1)

    return OnceBenchmarkFixture


if QUICK:
    @pytest.fixture
    def benchmark(benchmark):  # noqa: F811 - wraps the plugin's fixture of the same name
        benchmark.__class__ = _once(type(benchmark))
        return benchmark


def pytest_configure(config):
    if SHARED_DATA.is_dir():
        os.environ.setdefault("PYGAD_DATA", str(SHARED_DATA))
    threads = int(os.environ.get("PYGAD_BENCH_THREADS", "2"))
    torch.set_num_threads(threads)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or not getattr(session, "benchmarks", None):
        return
    groups: dict[str, list] = {}
    for bench in session.benchmarks:
        if bench.stats is None:
            continue
        groups.setdefault(bench.group or bench.name, []).append(bench)
    tr = terminalreporter
    tr.write_sep("=", "pygad ratios (median time of entry / median time of pygad entry)")
    for group, benches in groups.items():
        base = next((b for b in benches if b.extra_info.get("impl") in BASELINE_IMPLS), None)
        tr.write_line(f"[{group}]")
        for b in benches:
            med = b.stats.median
            info = ", ".join(f"{k}={v}" for k, v in b.extra_info.items() if k != "impl")
            ratio = f"{med / base.stats.median:8.2f}x" if base is not None and base.stats.median > 0 else "      -"
            tr.write_line(f"  {b.extra_info.get('impl', b.name):<22} median {med * 1e3:10.2f} ms  {ratio}  {info}")
