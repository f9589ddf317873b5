"""KafkaScorer on a real Kafka-protocol broker (tansu, memory storage, loopback).

The central check: SIGKILL the consumer process mid-stream (after it produced scores it had
not yet checkpointed), restart it on the same state folder, and compare the final per-key
state and every produced score with one uninterrupted single-process ``process_many`` run.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from _engines import require

from pygad.stream import ClippedSGDMean

D = 4
N_KEYS = 12


def _admin(bs):
    from confluent_kafka.admin import AdminClient, NewTopic
    return AdminClient({"bootstrap.servers": bs}), NewTopic


def _create_topics(bs, spec):
    admin, NewTopic = _admin(bs)
    fs = admin.create_topics([NewTopic(t, n, 1) for t, n in spec.items()])
    for f in fs.values():
        f.result(15)


def _produce(bs, topic, rng, n, start):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bs, "linger.ms": 5})
    for i in range(start, start + n):
        k = i % N_KEYS
        x = rng.normal(k, 1.0 + 0.1 * k, D)
        if rng.random() < 0.02:
            x = x + 40.0                    # corruptions
        p.produce(topic, key=f"k{k}".encode(), value=json.dumps(x.tolist()).encode())
    assert p.flush(15) == 0


def _read_all(bs, topic, n_parts, expect=None, timeout=30.0):
    """All records of ``topic`` as {partition: [(offset, key, value)]} (waits for ``expect``)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bs, "group.id": "reader", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(n_parts)])
    out = {p: [] for p in range(n_parts)}
    n = 0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            highs = [c.get_watermark_offsets(TopicPartition(topic, p), 5)[1]
                     for p in range(n_parts)]
            if expect is None and all(len(out[p]) >= highs[p] for p in range(n_parts)):
                break
            if expect is not None and n >= expect:
                break
            for m in c.consume(1000, 0.3):
                if m.error():
                    continue
                out[m.partition()].append((m.offset(), m.key(), m.value()))
                n += 1
    finally:
        c.close()
    return out


def _reference(records):
    """Uninterrupted single-process run: one keyed estimator, records in offset order."""
    est = ClippedSGDMean()
    scores = {}
    for p, recs in sorted(records.items()):
        recs = sorted(recs)
        X = np.asarray([json.loads(v) for _, _, v in recs], np.float64)
        keys = [k.decode() for _, k, _ in recs]
        s = est.process_many(X, keys=keys)
        for (o, _, _), si in zip(recs, s):
            scores[(p, o)] = si
    return est, scores


def _consumer_cmd(bs, state_dir, extra=()):
    return [sys.executable, "-P", "-m", "pygad.integrations.kafka", "--bootstrap", bs,
            "--input-topic", "events", "--output-topic", "scores", "--state-dir",
            str(state_dir), "--partitions", "0,1", "--batch-size", "100",
            "--checkpoint-records", "500", "--checkpoint-interval", "1000", *extra]


def test_file_state_store_roundtrip(tmp_path):
    from pygad.integrations.kafka import FileStateStore
    est = ClippedSGDMean()
    est.process_many(np.random.default_rng(0).normal(size=(50, 3)), keys=["a", "b"] * 25)
    store = FileStateStore(tmp_path)
    assert store.load("t", 0) is None
    store.save("t", 0, 123, est.to_bytes())
    off, blob = store.load("t", 0)
    back = ClippedSGDMean.from_bytes(blob)
    assert off == 123
    assert np.array_equal(back.key_state("a")["theta"], est.key_state("a")["theta"])
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp-")]


def test_kill_and_restart_exactly_once_state(kafka_broker, tmp_path):
    require("confluent_kafka", "kafka")
    bs = kafka_broker
    _create_topics(bs, {"events": 2, "scores": 1})
    rng = np.random.default_rng(7)
    _produce(bs, "events", rng, 1200, 0)
    state = tmp_path / "state"
    with open(tmp_path / "run1.log", "wb") as log1:
        proc = subprocess.Popen(_consumer_cmd(bs, state), stdout=log1, stderr=subprocess.STDOUT)
        try:
            got = _read_all(bs, "scores", 1, expect=1200, timeout=90)
            assert sum(map(len, got.values())) >= 1200, (tmp_path / "run1.log").read_text()
        finally:
            proc.send_signal(signal.SIGKILL)          # crash: no final checkpoint
            proc.wait(30)
    from pygad.integrations.kafka import FileStateStore
    store = FileStateStore(state)
    ck = [store.load("events", p) for p in (0, 1)]
    checkpointed = sum(c[0] for c in ck if c is not None)
    assert 0 < checkpointed < 1200, "the kill must leave processed, un-checkpointed records"

    _produce(bs, "events", rng, 1200, 1200)
    out = subprocess.run(_consumer_cmd(bs, state, ["--idle-timeout", "3"]),
                         capture_output=True, timeout=120)
    assert out.returncode == 0, out.stdout.decode() + out.stderr.decode()
    stats = json.loads(out.stdout.decode().strip().splitlines()[-1])
    assert stats["restored"] == 2
    assert stats["records"] == 2400 - checkpointed        # replayed from the checkpoint

    records = _read_all(bs, "events", 2)
    assert sum(map(len, records.values())) == 2400
    ref, ref_scores = _reference(records)
    for p in (0, 1):
        offset, blob = store.load("events", p)
        assert offset == len(records[p])
        live = ClippedSGDMean.from_bytes(blob)
        for _, k, _ in records[p]:
            a, b = live.key_state(k.decode()), ref.key_state(k.decode())
            assert a["n_seen"] == b["n_seen"]
            assert np.array_equal(a["theta"], b["theta"])
            assert a["threshold"] == b["threshold"]

    outs = _read_all(bs, "scores", 1)[0]
    seen = {}
    for _, _, v in outs:
        r = json.loads(v)
        seen.setdefault((r["partition"], r["offset"]), []).append(r["score"])
    assert set(seen) == set(ref_scores)                    # nothing lost
    assert len(outs) > 2400                                # replayed outputs exist...
    for po, ss in seen.items():                            # ...and repeat the same score
        assert all(s == pytest.approx(ref_scores[po], rel=0, abs=0) for s in ss), po


def test_group_subscription_scores_all(kafka_broker, tmp_path):
    """Group mode (subscribe + rebalance callbacks) on its own topic, in process."""
    require("confluent_kafka", "kafka")
    from pygad.integrations.kafka import KafkaScorer
    bs = kafka_broker
    _create_topics(bs, {"ev2": 2, "sc2": 1})
    _produce(bs, "ev2", np.random.default_rng(1), 300, 0)
    scorer = KafkaScorer(ClippedSGDMean(), bs, "ev2", "sc2", state_dir=tmp_path,
                         group_id="g2", batch_size=64,
                         consumer_config={"session.timeout.ms": 6000,
                                          "max.poll.interval.ms": 7000,
                                          "heartbeat.interval.ms": 500})
    stats = scorer.run(idle_timeout_s=20, duration_s=60, max_records=300)
    assert stats["records"] == 300
    outs = _read_all(bs, "sc2", 1, expect=300)[0]
    assert len(outs) == 300
    records = _read_all(bs, "ev2", 2)
    ref, _ = _reference(records)
    from pygad.integrations.kafka import FileStateStore
    for p in (0, 1):
        ck = FileStateStore(tmp_path).load("ev2", p)
        if not records[p]:
            continue
        live = ClippedSGDMean.from_bytes(ck[1])
        k = records[p][0][1].decode()
        assert np.array_equal(live.key_state(k)["theta"], ref.key_state(k)["theta"])


class _Msg:
    def __init__(self, key, value):
        self._k, self._v = key, value

    def key(self):
        return self._k

    def value(self):
        return self._v


def test_json_codecs():
    from pygad.integrations.kafka import decode_json, encode_json
    assert decode_json(_Msg(b"u1", b"[1, 2.5]")) == ("u1", [1, 2.5], None)
    assert decode_json(_Msg(None, b'{"x": [1], "y": 0}')) == ("", [1], 0)
    r = json.loads(encode_json("u1", 3, 17, float("nan"), True))
    assert r == {"key": "u1", "partition": 3, "offset": 17, "score": None, "flag": 1}
