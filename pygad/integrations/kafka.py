r"""Score Kafka records per key with pygad stream estimators (confluent-kafka).

:class:`KafkaScorer` is a consumer loop: it reads records from an input topic, scores each
one prequentially with a keyed stream estimator (one estimator per input partition, one
state per record key inside it), produces ``{key, partition, offset, score, flag}`` to an
output topic, and checkpoints each partition's estimator state *together with* the offset
of the next record to read.

Guarantee (what is tested by killing the consumer with SIGKILL mid-stream):

* **Exactly-once state effect.** A partition checkpoint is one atomically written file
  holding the estimator archive (``to_bytes()``, no pickle) and the next input offset. On
  start (or when a partition is assigned) the estimator is restored from the checkpoint and
  the consumer seeks to *its* offset, so every record after the checkpoint is replayed into
  exactly the state it had not yet reached: a crash and restart neither loses nor
  double-counts an update. The group's committed offsets are written after each checkpoint
  for lag monitoring only; they are not the source of truth.
* **At-least-once output.** Scores of records processed after the last checkpoint are
  produced again after a crash. Replayed records get the same score (same state, same
  record); their flag may differ because thresholds are frozen per batch and batches may
  split differently. Each output record carries ``partition`` and ``offset`` of its input,
  so a consumer of the output can drop duplicates. Outputs are flushed (and their delivery
  checked) before the checkpoint that covers them is written, so none is ever lost.
* At-least-once input is what Kafka gives; the input topic must retain records since the
  last checkpoint.

Checkpoints go to a :class:`FileStateStore` (a folder; share it between hosts when
partitions move between consumers on different machines) or any object with the same
``load/save`` methods. Flags: a row is flagged when its score exceeds its key's adaptive
threshold as of the start of its batch.

Run it as a module too::

    python -m pygad.integrations.kafka --bootstrap localhost:9092 --input-topic events \
        --output-topic scores --state-dir /var/lib/pygad --estimator mean
"""
from __future__ import annotations

import json
import os
import signal
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..stream.state import save_atomic
from . import clone_estimator, require_engine, thresholds_before

__all__ = ["KafkaScorer", "FileStateStore", "decode_json", "encode_json"]

_CKPT_FORMAT = "pygad.kafka-checkpoint/1"


def _require_kafka():
    return require_engine("confluent_kafka", "kafka", "confluent-kafka")


# ----------------------------------------------------------------------------- state store
class FileStateStore:
    """Partition checkpoints as files ``<root>/<topic>-<partition>.ckpt.npz``.

    Each file is a ``.npz`` (loaded with ``allow_pickle=False``) holding the next input
    offset and the estimator archive; written to a temporary file, fsynced, renamed over the
    old one, and the folder fsynced: a reader sees the old or the new checkpoint, never a
    torn one.
    """

    def __init__(self, root):
        self.root = os.fspath(root)
        os.makedirs(self.root, exist_ok=True)

    def _path(self, topic: str, partition: int) -> str:
        return os.path.join(self.root, f"{topic}-{int(partition)}.ckpt.npz")

    def load(self, topic: str, partition: int):
        """``(next_offset, estimator_bytes)`` or ``None`` when there is no checkpoint."""
        path = self._path(topic, partition)
        if not os.path.exists(path):
            return None
        with np.load(path, allow_pickle=False) as z:
            if str(z["__format__"]) != _CKPT_FORMAT:
                raise ValueError(f"{path}: not a {_CKPT_FORMAT} file")
            return int(z["offset"]), z["estimator"].tobytes()

    def save(self, topic: str, partition: int, offset: int, blob: bytes) -> None:
        """Atomically write the checkpoint (offset and estimator archive) of one partition."""
        path = self._path(topic, partition)
        save_atomic(path, {"__format__": np.array(_CKPT_FORMAT), "offset": np.int64(offset),
                           "estimator": np.frombuffer(blob, np.uint8)})
        try:
            dfd = os.open(self.root, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:  # pragma: no cover - some filesystems refuse fsync on folders
            pass


# ----------------------------------------------------------------------------- codecs
def decode_json(msg):
    """Default decoder: key = the record key as UTF-8 text (``""`` when null).

    Value = JSON, either a list of numbers (the features) or ``{"x": [...], "y": label}``.

    Returns ``(key, x, y)`` with ``y`` None when absent.
    """
    k = msg.key()
    key = "" if k is None else k.decode("utf-8")
    v = json.loads(msg.value())
    if isinstance(v, dict):
        return key, v["x"], v.get("y")
    return key, v, None


def encode_json(key, partition, offset, score, flag) -> bytes:
    """Default encoder of an output record value (NaN score -> null)."""
    s = None if not np.isfinite(score) else float(score)
    return json.dumps({"key": key, "partition": int(partition), "offset": int(offset),
                       "score": s, "flag": int(flag)}).encode()


@dataclass
class _Partition:
    estimator: object
    next_offset: int
    dirty: bool = False
    since_ckpt: int = 0
    stats: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- the loop
class KafkaScorer:
    """Consume, score per key, produce, checkpoint (see the module docstring for the delivery guarantee).

    Args:
        estimator: a stream estimator used as a template (parameters only), its class, or a
            factory; one fresh copy per input partition, keyed by the record key.
        bootstrap_servers: Kafka bootstrap servers, ``"host:port,..."``.
        input_topic, output_topic: topics to read records from and write scores to.
        state_dir: folder of the :class:`FileStateStore`; or pass ``store``.
        store: an object with ``load(topic, partition)`` and ``save(topic, partition,
            offset, blob)``.
        group_id: consumer group (partition assignment and committed offsets for lag).
        partitions: input partitions to read (static assignment, no group rebalancing);
            ``None`` subscribes to the topic and restores partitions as they are assigned.
        decode: ``msg -> (key, x, y)``; default :func:`decode_json`.
        encode: ``(key, partition, offset, score, flag) -> bytes``; default
            :func:`encode_json`.
        batch_size: records per ``consume`` call (one ``process_many`` per partition).
        checkpoint_records, checkpoint_interval_s: checkpoint when either this many records
            or this many seconds passed since the last checkpoint (and on clean exit, and
            when partitions are revoked).
        start: where a partition without a checkpoint starts: ``"earliest"`` or ``"latest"``.
        consumer_config, producer_config: extra librdkafka settings (a cooperative
            ``partition.assignment.strategy`` is honoured with incremental assignment).

    A record that cannot be decoded, or that the estimator rejects (NaN/inf with
    ``on_invalid="raise"``), stops the loop with the error and without checkpointing it;
    construct the estimator with ``on_invalid="skip"`` to count and skip such records.
    """

    def __init__(self, estimator, bootstrap_servers, input_topic, output_topic, *,
                 state_dir=None, store=None, group_id="pygad-scorer", partitions=None,
                 decode=None, encode=None, batch_size=1000, checkpoint_records=10_000,
                 checkpoint_interval_s=5.0, start="earliest", consumer_config=None,
                 producer_config=None):
        if (state_dir is None) == (store is None):
            raise ValueError("pass exactly one of state_dir and store")
        if start not in ("earliest", "latest"):
            raise ValueError(f'start must be "earliest" or "latest", got {start!r}')
        self.template = estimator
        self.bootstrap_servers = bootstrap_servers
        self.input_topic = input_topic
        self.output_topic = output_topic
        self.store = store if store is not None else FileStateStore(state_dir)
        self.group_id = group_id
        self.partitions = None if partitions is None else [int(p) for p in partitions]
        self.decode = decode or decode_json
        self.encode = encode or encode_json
        self.batch_size = int(batch_size)
        self.checkpoint_records = int(checkpoint_records)
        self.checkpoint_interval_s = float(checkpoint_interval_s)
        self.start = start
        self.consumer_config = dict(consumer_config or {})
        self.producer_config = dict(producer_config or {})
        self.parts: dict[tuple, _Partition] = {}
        self.stats = {"records": 0, "batches": 0, "checkpoints": 0, "restored": 0,
                      "skipped_stale": 0}
        self._stop = False
        self._delivery_errors: list = []
        self._consumer = None
        self._producer = None
        self._last_ckpt = time.monotonic()

    # -- public
    def stop(self) -> None:
        """Ask :meth:`run` to finish its batch, checkpoint and return (signal-safe)."""
        self._stop = True

    def estimator(self, partition: int, topic=None):
        """The live estimator of an assigned input partition."""
        return self.parts[(topic or self.input_topic, int(partition))].estimator

    def run(self, max_records=None, idle_timeout_s=None, duration_s=None,
            poll_timeout_s=0.5) -> dict:
        """Run the consume-score-produce loop until a stop condition; return the stats.

        Consume until :meth:`stop`, ``max_records`` records, ``idle_timeout_s`` seconds
        without a record, or ``duration_s`` seconds; checkpoint; return the stats.
        """
        ck = _require_kafka()
        from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
        cconf = {"bootstrap.servers": self.bootstrap_servers, "group.id": self.group_id,
                 "enable.auto.commit": False, "enable.auto.offset.store": False,
                 "auto.offset.reset": self.start}
        cconf.update(self.consumer_config)
        pconf = {"bootstrap.servers": self.bootstrap_servers, "linger.ms": 5}
        pconf.update(self.producer_config)
        self._producer = Producer(pconf)
        self._consumer = Consumer(cconf)
        t0 = time.monotonic()
        last_rec = t0
        self._last_ckpt = t0
        try:
            if self.partitions is not None:
                tps = [ck.TopicPartition(self.input_topic, p) for p in self.partitions]
                self._consumer.assign(self._restore(tps))
            else:
                self._consumer.subscribe([self.input_topic], on_assign=self._on_assign,
                                         on_revoke=self._on_revoke, on_lost=self._on_lost)
            while not self._stop:
                now = time.monotonic()
                if duration_s is not None and now - t0 >= duration_s:
                    break
                if max_records is not None and self.stats["records"] >= max_records:
                    break
                n = self.batch_size
                if max_records is not None:
                    n = max(1, min(n, max_records - self.stats["records"]))
                msgs = self._consumer.consume(n, poll_timeout_s)
                good = []
                for m in msgs:
                    err = m.error()
                    if err is None:
                        good.append(m)
                    elif err.code() != KafkaError._PARTITION_EOF:
                        raise KafkaException(err)
                if good:
                    self._process(good)
                    last_rec = time.monotonic()
                elif idle_timeout_s is not None and time.monotonic() - last_rec >= idle_timeout_s:
                    break
                self._producer.poll(0)
                self._maybe_checkpoint()
            self.checkpoint()
        finally:
            try:
                self._consumer.close()
            finally:
                self._producer.flush(10)
                self._consumer = self._producer = None
        self.stats["elapsed_s"] = time.monotonic() - t0
        return dict(self.stats)

    # -- partitions
    def _restore(self, tps):
        from confluent_kafka import OFFSET_BEGINNING, OFFSET_END
        for tp in tps:
            key = (tp.topic, tp.partition)
            if key in self.parts and self.parts[key].next_offset >= 0:
                tp.offset = self.parts[key].next_offset   # still held (static re-assign)
                continue
            est = clone_estimator(self.template)
            ck = self.store.load(tp.topic, tp.partition)
            if ck is not None:
                offset, blob = ck
                est = type(est).from_bytes(blob)
                tp.offset = offset
                self.stats["restored"] += 1
                self.parts[key] = _Partition(est, offset)
            else:
                tp.offset = OFFSET_BEGINNING if self.start == "earliest" else OFFSET_END
                self.parts[key] = _Partition(est, -1)
        return tps

    def _incremental(self) -> bool:
        strat = str(self.consumer_config.get("partition.assignment.strategy", ""))
        return "cooperative" in strat or \
            str(self.consumer_config.get("group.protocol", "")).lower() == "consumer"

    def _on_assign(self, consumer, tps):
        tps = self._restore(tps)          # seek each partition to its checkpoint's offset
        if self._incremental():
            consumer.incremental_assign(tps)
        else:
            consumer.assign(tps)

    def _on_revoke(self, consumer, tps):
        keys = [(tp.topic, tp.partition) for tp in tps]
        self.checkpoint(keys)
        for k in keys:
            self.parts.pop(k, None)

    def _on_lost(self, consumer, tps):
        # the partitions may already be owned by another member: do not write their state
        for tp in tps:
            self.parts.pop((tp.topic, tp.partition), None)

    # -- processing
    def _process(self, msgs) -> None:
        by_tp: dict[tuple, list] = {}
        for m in msgs:
            by_tp.setdefault((m.topic(), m.partition()), []).append(m)
        produce = self._producer.produce
        for key, ms in by_tp.items():
            st = self.parts.get(key)
            if st is None:                      # not ours any more (rebalance in flight)
                continue
            if st.next_offset >= 0 and ms[0].offset() < st.next_offset:
                keep = [m for m in ms if m.offset() >= st.next_offset]
                self.stats["skipped_stale"] += len(ms) - len(keep)
                ms = keep
                if not ms:
                    continue
            dec = [self.decode(m) for m in ms]
            keys = [d[0] for d in dec]
            X = np.asarray([d[1] for d in dec], np.float64)
            if X.ndim == 1:
                X = X.reshape(len(dec), -1)
            ys = [d[2] for d in dec]
            y = None if all(v is None for v in ys) else np.asarray(ys, np.float64)
            est = st.estimator
            th = thresholds_before(est, keys)
            scores = est.process_many(X, y, keys=keys)
            flags = scores > th
            part = key[1]
            for m, k, s, f in zip(ms, keys, scores, flags):
                produce(self.output_topic, value=self.encode(k, part, m.offset(), s, f),
                        key=m.key(), on_delivery=self._on_delivery)
            self._producer.poll(0)
            st.next_offset = ms[-1].offset() + 1
            st.dirty = True
            st.since_ckpt += len(ms)
            self.stats["records"] += len(ms)
        self.stats["batches"] += 1

    def _on_delivery(self, err, msg):
        if err is not None:
            self._delivery_errors.append(err)

    # -- checkpoints
    def _maybe_checkpoint(self) -> None:
        pending = sum(st.since_ckpt for st in self.parts.values())
        if pending >= self.checkpoint_records or (
                pending and time.monotonic() - self._last_ckpt >= self.checkpoint_interval_s):
            self.checkpoint()

    def checkpoint(self, keys=None) -> None:
        """Checkpoint the dirty partitions: flush, save state and offsets, commit.

        Flush outputs, then atomically save the state + next offset of the dirty
        partitions (``keys``: a subset), then commit those offsets to the group.
        """
        from confluent_kafka import TopicPartition
        items = [(k, self.parts[k]) for k in (keys if keys is not None else list(self.parts))
                 if k in self.parts and self.parts[k].dirty]
        if not items:
            self._last_ckpt = time.monotonic()
            return
        left = self._producer.flush(30)
        if left:
            raise RuntimeError(f"{left} output records not delivered; checkpoint not written")
        if self._delivery_errors:
            err = self._delivery_errors[0]
            raise RuntimeError(f"output delivery failed ({err}); checkpoint not written")
        offsets = []
        for (topic, part), st in items:
            self.store.save(topic, part, st.next_offset, st.estimator.to_bytes())
            st.dirty = False
            st.since_ckpt = 0
            offsets.append(TopicPartition(topic, part, st.next_offset))
        self.stats["checkpoints"] += 1
        self._last_ckpt = time.monotonic()
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except Exception as exc:  # advisory only: the checkpoint holds the offsets
            warnings.warn(f"offset commit failed (checkpoint is intact): {exc}")


# ----------------------------------------------------------------------------- CLI
def _estimator_from_name(name: str, params: dict):
    from pygad.stream import ClippedSGDLinear, ClippedSGDLogistic, ClippedSGDMean
    cls = {"mean": ClippedSGDMean, "linear": ClippedSGDLinear,
           "logistic": ClippedSGDLogistic}[name]
    return cls(**params)


def main(argv=None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m pygad.integrations.kafka",
                                 description="Score a Kafka topic per key with a pygad "
                                             "stream estimator.")
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--input-topic", required=True)
    ap.add_argument("--output-topic", required=True)
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--group-id", default="pygad-scorer")
    ap.add_argument("--estimator", choices=["mean", "linear", "logistic"], default="mean")
    ap.add_argument("--params", default="{}", help="estimator parameters as JSON")
    ap.add_argument("--partitions", default=None, help="static assignment, e.g. 0,1")
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--checkpoint-records", type=int, default=10_000)
    ap.add_argument("--checkpoint-interval", type=float, default=5.0)
    ap.add_argument("--idle-timeout", type=float, default=None)
    ap.add_argument("--max-records", type=int, default=None)
    ap.add_argument("--consumer-config", default="{}", help="librdkafka settings as JSON")
    a = ap.parse_args(argv)
    parts = None if a.partitions is None else [int(p) for p in a.partitions.split(",")]
    scorer = KafkaScorer(_estimator_from_name(a.estimator, json.loads(a.params)), a.bootstrap,
                         a.input_topic, a.output_topic, state_dir=a.state_dir,
                         group_id=a.group_id, partitions=parts, batch_size=a.batch_size,
                         checkpoint_records=a.checkpoint_records,
                         checkpoint_interval_s=a.checkpoint_interval,
                         consumer_config=json.loads(a.consumer_config))
    signal.signal(signal.SIGTERM, lambda *_: scorer.stop())
    signal.signal(signal.SIGINT, lambda *_: scorer.stop())
    stats = scorer.run(max_records=a.max_records, idle_timeout_s=a.idle_timeout)
    print(json.dumps(stats), flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
