r"""Keyed stream estimators in Spark Structured Streaming.

:func:`score_by_key` turns a streaming DataFrame of ``(key, order, features...)`` into one of
``(key, order, score, flag)``: one pygad stream estimator per key, held in Spark's keyed
state as its versioned archive (``to_bytes()``, no pickle; a few hundred bytes plus the
parameter vectors per key), restored across micro-batches and across restarts from the
query's checkpoint.

Two engines for the state:

* ``applyInPandasWithState`` (Spark >= 3.4; any state store provider);
* ``transformWithStateInPandas`` (Spark >= 4.0; needs the RocksDB state store provider).

``api="auto"`` uses ``transformWithStateInPandas`` when it exists *and* the session's state
store provider is RocksDB, else ``applyInPandasWithState``.

Semantics, per key and micro-batch:

* rows may arrive in several unordered chunks: they are gathered and sorted by ``order``;
* rows whose ``order`` is not greater than the last order already learned for the key
  (replays, duplicates, late events) are dropped and counted in the state, never learned
  twice; within a batch, duplicate orders keep the first row;
* ``score`` is prequential (the state before the row, then the row is learned), exactly as a
  single-process ``process_many`` over the key's rows in order;
* ``flag`` is 1 when the score exceeds the key's adaptive threshold as of the start of the
  micro-batch.

Example::

    from pygad.stream import ClippedSGDMean
    from pygad.integrations.spark import score_by_key

    events = spark.readStream.schema("key long, order long, f0 double, f1 double") \
        .parquet("/data/events")
    scores = score_by_key(events, ClippedSGDMean(), key="key", order="order")
    scores.writeStream.format("parquet").option("path", "/data/scores") \
        .option("checkpointLocation", "/data/ckpt").start()
"""
from __future__ import annotations

import numpy as np

from . import clone_estimator, require_engine, thresholds_before

__all__ = ["score_by_key", "resolve_api", "state_schema", "ROCKSDB_PROVIDER"]

ROCKSDB_PROVIDER = \
    "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"

#: Spark DDL of the per-key state: the estimator archive, the last learned order, and the
#: number of rows dropped as late/duplicate.
state_schema = "estimator binary, last_order long, n_dropped long"


def _require_spark():
    return require_engine("pyspark", "spark", "pyspark, pandas and pyarrow")


def _factory(estimator):
    """A picklable zero-argument factory of fresh estimators (parameters, never state)."""
    if hasattr(estimator, "get_params") and hasattr(estimator, "to_bytes") \
            and not isinstance(estimator, type):
        import functools
        return functools.partial(type(estimator), **estimator.get_params())
    return lambda: clone_estimator(estimator)


class _LiveCache:
    """Per-worker LRU of live estimators keyed by group key, each with the exact archive it was last saved as.

    A state blob equal to the cached one means the cached object *is* that state, so
    ``from_bytes`` is skipped; any other blob (a retried batch, another worker's state, a
    restart) is deserialised. Correctness never depends on a hit.
    """

    def __init__(self, max_entries: int):
        from collections import OrderedDict
        self.max_entries = max_entries
        self.items: "OrderedDict" = OrderedDict()

    def get(self, key, blob):
        hit = self.items.get(key)
        if hit is not None and hit[0] == blob:
            self.items.move_to_end(key)
            return hit[1]
        return None

    def put(self, key, blob, est):
        if self.max_entries <= 0:
            return
        self.items[key] = (blob, est)
        self.items.move_to_end(key)
        while len(self.items) > self.max_entries:
            self.items.popitem(last=False)


_CACHES: dict = {}


class _KeyScorer:
    """The per-key update shared by both state APIs (runs on the executors)."""

    def __init__(self, factory, key, order, features, label, cache_size=100_000):
        import uuid
        self.factory = factory
        self.key = key
        self.order = order
        self.features = list(features)
        self.label = label
        self.cache_size = int(cache_size)
        self.cache_id = uuid.uuid4().hex           # one cache per score_by_key call

    def _cache(self):
        c = _CACHES.get(self.cache_id)
        if c is None:
            c = _CACHES[self.cache_id] = _LiveCache(self.cache_size)
        return c

    def __call__(self, key_value, pdfs, state):
        """``state``: ``None`` or ``(blob, last_order, n_dropped)``.

        Returns ``(out_pdf or None, new_state or None)``.
        """
        import pandas as pd
        pdfs = [p for p in pdfs if len(p)]
        if not pdfs:
            return None, None
        pdf = pdfs[0] if len(pdfs) == 1 else pd.concat(pdfs, ignore_index=True)
        order = pdf[self.order].to_numpy(np.int64)
        idx = np.argsort(order, kind="stable")
        order = order[idx]
        keep = np.ones(order.shape[0], bool)
        keep[1:] = order[1:] != order[:-1]                 # duplicate orders: first wins
        cache = self._cache()
        ckey = key_value.item() if hasattr(key_value, "item") else key_value
        if state is not None:
            blob, last, dropped = state
            blob = bytes(blob)
            est = cache.get(ckey, blob)
            if est is None:
                est = type(self.factory()).from_bytes(blob)
            keep &= order > last
        else:
            est, last, dropped = self.factory(), None, 0
        dropped += int((~keep).sum())
        idx, order = idx[keep], order[keep]
        if idx.shape[0] == 0:
            blob = est.to_bytes()
            cache.put(ckey, blob, est)
            return None, (blob, last, dropped)
        X = np.empty((idx.shape[0], len(self.features)), np.float64)
        for j, c in enumerate(self.features):
            X[:, j] = pdf[c].to_numpy(np.float64)[idx]
        y = None if self.label is None else pdf[self.label].to_numpy(np.float64)[idx]
        th = thresholds_before(est, None, X.shape[0])
        scores = est.process_many(X, y)
        out = pd.DataFrame({self.key: np.repeat(key_value, order.shape[0]),
                            self.order: order, "score": scores,
                            "flag": (scores > th).astype(np.int32)})
        blob = est.to_bytes()
        cache.put(ckey, blob, est)
        return out, (blob, int(order[-1]), dropped)


def _apply_in_pandas_with_state(df, scorer, out_schema):
    from pyspark.sql.streaming.state import GroupStateTimeout

    def fn(key, pdfs, state):
        prev = state.get if state.exists else None
        out, new = scorer(key[0], pdfs, prev)
        if new is not None:
            state.update(new)
        if out is not None:
            yield out

    return df.groupBy(scorer.key).applyInPandasWithState(
        fn, out_schema, state_schema, "append", GroupStateTimeout.NoTimeout)


def _transform_with_state(df, scorer, out_schema):
    from pyspark.sql.streaming import StatefulProcessor

    class _Processor(StatefulProcessor):
        def init(self, handle):
            self.state = handle.getValueState("pygad_estimator", state_schema)

        def handleInputRows(self, key, rows, timerValues=None):
            prev = self.state.get() if self.state.exists() else None
            if prev is not None:
                prev = tuple(prev)
            out, new = scorer(key[0], rows, prev)
            if new is not None:
                self.state.update(new)
            if out is not None:
                yield out

        def close(self):
            pass

    return df.groupBy(scorer.key).transformWithStateInPandas(
        _Processor(), out_schema, "Append", "None")


def score_by_key(df, estimator, *, key="key", order="order", features=None, label=None,
                 api="auto"):
    """Score a streaming DataFrame per key with one pygad stream estimator per key.

    Args:
        df: streaming DataFrame with a key column, an integral event-order column
            (cast timestamps to long), numeric feature columns and optionally a label.
        estimator: a stream estimator used as a template (its parameters, not its state),
            its class, or a zero-argument factory.
        key: the key column (any type Spark can group by; one estimator per value).
        order: the event-order column (long): rows of a key are learned in this order.
        features: feature columns; default: every column but ``key``, ``order``, ``label``.
        label: label column for ``ClippedSGDLinear``/``ClippedSGDLogistic``.
        api: ``"auto"``, ``"applyInPandasWithState"`` or ``"transformWithState"``.

    Returns:
        A DataFrame ``(key, order, score double, flag int)`` in append mode: write it with a
        sink and a ``checkpointLocation`` to keep the per-key state across restarts.
    """
    _require_spark()
    from pyspark.sql.types import DoubleType, IntegerType, LongType, StructField, StructType
    cols = df.columns
    for c in [key, order] + ([label] if label else []):
        if c not in cols:
            raise ValueError(f"column {c!r} not in the DataFrame ({cols})")
    if features is None:
        features = [c for c in cols if c not in (key, order, label)]
    missing = [c for c in features if c not in cols]
    if missing or not features:
        raise ValueError(f"feature columns {missing or '[]'} not in the DataFrame ({cols})")
    key_type = df.schema[key].dataType
    out_schema = StructType([StructField(key, key_type), StructField(order, LongType()),
                             StructField("score", DoubleType()),
                             StructField("flag", IntegerType())])
    scorer = _KeyScorer(_factory(estimator), key, order, features, label)
    df = df.select(key, order, *features, *([label] if label else []))
    api = resolve_api(df.sparkSession, api)
    if api == "applyInPandasWithState":
        return _apply_in_pandas_with_state(df, scorer, out_schema)
    return _transform_with_state(df, scorer, out_schema)


def resolve_api(spark, api="auto") -> str:
    """The state API :func:`score_by_key` uses in session ``spark`` for ``api``.

    ``"auto"`` -> ``"transformWithState"`` on Spark >= 4.0 with the RocksDB state store
    provider configured, else ``"applyInPandasWithState"``.
    """
    from pyspark.sql.group import GroupedData
    has_tws = hasattr(GroupedData, "transformWithStateInPandas")
    if api == "auto":
        provider = spark.conf.get("spark.sql.streaming.stateStore.providerClass", None)
        return "transformWithState" if has_tws and provider == ROCKSDB_PROVIDER \
            else "applyInPandasWithState"
    if api == "transformWithState" and not has_tws:
        raise RuntimeError("transformWithStateInPandas needs Spark >= 4.0")
    if api not in ("applyInPandasWithState", "transformWithState"):
        raise ValueError(f'api must be "auto", "applyInPandasWithState" or '
                         f'"transformWithState", got {api!r}')
    return api
