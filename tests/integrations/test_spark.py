"""score_by_key on a local Spark (local[2], UI off) over a bounded file source.

Per-key scores and flags must equal a single-process ``process_many`` run over the same
micro-batches; a restart on (a copy of) the checkpoint must resume the per-key state exactly.
"""
from __future__ import annotations

import os
import shutil
import sys

import numpy as np
import pytest

from _engines import require, require_java

from pygad.integrations import thresholds_before
from pygad.stream import ClippedSGDMean

N_KEYS, PER_FILE, D = 16, 240, 3
FEATURES = [f"f{j}" for j in range(D)]


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    require("pyspark", "spark")
    require("pyarrow", "spark")
    require_java()
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    # Spark's Python workers run `python -m pyspark.daemon` in the driver's working directory;
    # from a source checkout that would put the source folder (no compiled _C) first on
    # sys.path. PYTHONSAFEPATH=1 is `python -P` for them: they import the installed pygad.
    os.environ["PYTHONSAFEPATH"] = "1"
    from pyspark.sql import SparkSession
    tmp = tmp_path_factory.mktemp("spark")
    session = (SparkSession.builder.master("local[2]").appName("pygad-tests")
               .config("spark.ui.enabled", "false")
               .config("spark.sql.shuffle.partitions", "2")
               .config("spark.default.parallelism", "2")
               .config("spark.sql.execution.arrow.maxRecordsPerBatch", "16")  # many chunks
               .config("spark.sql.streaming.stateStore.stateSchemaCheck", "true")
               .config("spark.driver.memory", "1g")
               .config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.driver.host", "127.0.0.1")
               .config("spark.local.dir", str(tmp))
               .config("spark.sql.warehouse.dir", str(tmp / "wh"))
               .config("spark.driver.extraJavaOptions",
                       "-XX:+UseSerialGC -XX:TieredStopAtLevel=1")
               .config("spark.python.worker.reuse", "true")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _make_files(folder, rng, n_files, start_file=0, order_base=None):
    """Parquet files, one micro-batch each: every key continues its order sequence, rows
    shuffled inside a file (unordered chunks)."""
    import pandas as pd
    order_base = order_base if order_base is not None else np.zeros(N_KEYS, np.int64)
    frames = []
    for f in range(start_file, start_file + n_files):
        keys = rng.integers(0, N_KEYS, PER_FILE)
        orders = np.empty(PER_FILE, np.int64)
        for k in range(N_KEYS):
            m = keys == k
            orders[m] = order_base[k] + np.arange(m.sum())
            order_base[k] += m.sum()
        X = rng.normal(keys[:, None] * 0.5, 1.0, (PER_FILE, D))
        X[rng.random(PER_FILE) < 0.03] += 25.0
        pdf = pd.DataFrame({"key": keys.astype(np.int64), "order": orders,
                            **{c: X[:, j] for j, c in enumerate(FEATURES)}})
        pdf = pdf.sample(frac=1.0, random_state=int(rng.integers(1 << 30))).reset_index(drop=True)
        frames.append(pdf)
        path = os.path.join(folder, f"part-{f:03d}.parquet")
        pdf.to_parquet(path, index=False)
        os.utime(path, (1_700_000_000 + f, 1_700_000_000 + f))   # file source reads by mtime
    return frames, order_base


def _reference(frames):
    """Single process: one keyed estimator, each file a batch, rows sorted by (key, order)."""
    import pandas as pd
    est = ClippedSGDMean()
    out = []
    for pdf in frames:
        pdf = pdf.sort_values(["key", "order"]).drop_duplicates(["key", "order"])
        keys = pdf["key"].to_numpy(np.int64)
        X = np.ascontiguousarray(pdf[FEATURES].to_numpy(np.float64))
        th = thresholds_before(est, keys)
        s = est.process_many(X, keys=keys)
        out.append(pd.DataFrame({"key": keys, "order": pdf["order"].to_numpy(),
                                 "score": s, "flag": (s > th).astype(np.int32)}))
    return est, pd.concat(out, ignore_index=True)


def _run(spark, src, out, ckpt, api):
    from pygad.integrations.spark import score_by_key
    schema = "key long, order long, " + ", ".join(f"{c} double" for c in FEATURES)
    events = spark.readStream.schema(schema).option("maxFilesPerTrigger", 1).parquet(str(src))
    scored = score_by_key(events, ClippedSGDMean(), key="key", order="order", api=api)
    q = (scored.writeStream.format("parquet").option("path", str(out))
         .option("checkpointLocation", str(ckpt)).trigger(availableNow=True).start())
    q.awaitTermination(300)
    assert q.exception() is None, q.exception()
    return q


def _read(spark, out):
    return spark.read.parquet(str(out)).toPandas().sort_values(["key", "order"]) \
        .reset_index(drop=True)


def _read_files(out):
    import pandas as pd
    files = sorted(str(p) for p in out.glob("part-*.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True) \
        .sort_values(["key", "order"]).reset_index(drop=True)


def _check(got, ref):
    ref = ref.sort_values(["key", "order"]).reset_index(drop=True)
    assert len(got) == len(ref)
    np.testing.assert_array_equal(got["key"].to_numpy(), ref["key"].to_numpy())
    np.testing.assert_array_equal(got["order"].to_numpy(), ref["order"].to_numpy())
    np.testing.assert_array_equal(got["score"].to_numpy(), ref["score"].to_numpy())
    np.testing.assert_array_equal(got["flag"].to_numpy(), ref["flag"].to_numpy())


@pytest.mark.parametrize("api", ["applyInPandasWithState"])
def test_scores_equal_process_many_and_restart_resumes(spark, tmp_path, api):
    import pandas as pd
    rng = np.random.default_rng(3)
    src = tmp_path / "in"
    src.mkdir()
    frames, base = _make_files(src, rng, 2)
    _run(spark, src, tmp_path / "out1", tmp_path / "ckpt", api)
    _, ref_a = _reference(frames)
    _check(_read(spark, tmp_path / "out1"), ref_a)

    # more data arrives, plus replayed (already learned) rows that must be dropped
    frames2, _ = _make_files(src, rng, 1, start_file=2, order_base=base)
    last = frames2[0]
    pd.concat([last, frames[0].iloc[:5]], ignore_index=True) \
        .to_parquet(src / "part-002.parquet", index=False)
    os.utime(src / "part-002.parquet", (1_700_000_002, 1_700_000_002))
    # restart from a copy of the checkpoint (another path: the state must come from disk)
    shutil.copytree(tmp_path / "ckpt", tmp_path / "ckpt2")
    _run(spark, src, tmp_path / "out2", tmp_path / "ckpt2", api)
    _, ref = _reference(frames + [last])
    # the new sink folder holds batch 2 only (its log starts at batch 2: read the files)
    _check(_read_files(tmp_path / "out2"), ref.iloc[len(ref_a):])


def test_transform_with_state_matches(spark, tmp_path):
    """Spark 4.x state API v2 (RocksDB state store): same scores across micro-batches."""
    from pyspark.sql.group import GroupedData
    if not hasattr(GroupedData, "transformWithStateInPandas"):
        pytest.skip("transformWithStateInPandas needs Spark >= 4.0")
    require("google.protobuf", "spark")
    from pygad.integrations.spark import ROCKSDB_PROVIDER, resolve_api
    key = "spark.sql.streaming.stateStore.providerClass"
    old = spark.conf.get(key, None)
    assert resolve_api(spark, "auto") == "applyInPandasWithState"
    spark.conf.set(key, ROCKSDB_PROVIDER)
    try:
        assert resolve_api(spark, "auto") == "transformWithState"
        rng = np.random.default_rng(5)
        src = tmp_path / "in"
        src.mkdir()
        frames, _ = _make_files(src, rng, 2)
        _run(spark, src, tmp_path / "out", tmp_path / "ckpt", "auto")
        _, ref = _reference(frames)
        _check(_read(spark, tmp_path / "out"), ref)
    finally:
        if old is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, old)


def test_key_scorer_orders_chunks_drops_replays_and_caches():
    """The per-key update alone (no Spark): unordered chunks, duplicates, late rows, and a
    state blob that does not match the worker cache (e.g. a retried batch)."""
    import pandas as pd
    from pygad.integrations.spark import _factory, _KeyScorer
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, D))
    pdf = pd.DataFrame({"key": 7, "order": np.arange(60), **{c: X[:, j]
                                                             for j, c in enumerate(FEATURES)}})
    sc = _KeyScorer(_factory(ClippedSGDMean()), "key", "order", FEATURES, None)
    ref = ClippedSGDMean()
    ref_scores = ref.process_many(X)
    a = pdf.iloc[:30].sample(frac=1.0, random_state=1)
    chunks = [a.iloc[:11], a.iloc[11:], a.iloc[3:5]]           # unordered + duplicate rows
    out1, st1 = sc(np.int64(7), chunks, None)
    assert out1["order"].tolist() == list(range(30)) and st1[1] == 29 and st1[2] == 2
    b = pd.concat([pdf.iloc[30:], pdf.iloc[25:28]])            # replays of learned rows
    out2, st2 = sc(np.int64(7), [b], st1)
    assert out2["order"].tolist() == list(range(30, 60)) and st2[2] == 5
    got = np.concatenate([out1["score"], out2["score"]])
    np.testing.assert_array_equal(got, ref_scores)
    # a retried batch 2 arrives with the state after batch 1: the cache (holding the state
    # after batch 2) must not be used, and the same result must come out
    out2b, st2b = sc(np.int64(7), [b], st1)
    np.testing.assert_array_equal(out2b["score"], out2["score"])
    assert st2b[0] == st2[0]
    assert np.array_equal(ClippedSGDMean.from_bytes(st2[0]).theta_, ref.theta_)
