"""Stream anomaly detection under drift with pygad.stream (rotated-MNIST protocol).

Run:  python -P examples/stream_drift.py [--plot drift.png]

1. the whole experiment of the README table (same as ``pygad stream``);
2. the estimator API on the same stream: prequential ingestion, flags, keyed state, saving.
"""
import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

import pygad.stream as ps
from pygad.stream import experiment as E

parser = argparse.ArgumentParser()
parser.add_argument("--data", type=Path, default=E.DEFAULT_DATA)
parser.add_argument("--plot", type=Path, default=Path("stream_drift.png"))
parser.add_argument("--no-hst", action="store_true")
args = parser.parse_args()
if not args.data.exists():
    sys.exit(f"data not found: {args.data}")

# 1. the experiment
out = E.run_experiment(args.data, hst=not args.no_hst)
print(E.format_table(out))
E.plot(out, args.plot)
print("plot:", args.plot)

# 2. the API
X, is_anomaly, digit, change_points = E.make_stream(args.data, seed=1)
det = ps.ClippedSGDMean()                       # defaults: no tuning, no feature scaling
scores = det.process_many(X)                    # score each sample, then learn it
flags = det.predict_many(X[-500:])              # pure: flags against the current threshold
print(f"threshold now {det.threshold_:.3f}; flagged {flags.mean():.1%} of the last 500 "
      f"({is_anomaly[-500:].mean():.1%} are anomalies)")

# one state per key (e.g. per account), processed in parallel, added on the fly
keys = np.arange(len(X)) % 4
keyed = ps.ClippedSGDMean()
keyed.process_many(X, keys=keys)
print("keys:", keyed.n_keys_, "samples:", keyed.n_seen_)

# persist and resume: bit-identical continuation
with tempfile.TemporaryDirectory() as tmp:
    det.save(Path(tmp) / "det.npz")
    again = ps.ClippedSGDMean.load(Path(tmp) / "det.npz")
    assert np.array_equal(again.score_many(X[:10]), det.score_many(X[:10]))
print("per-key state blob:", len(det.to_bytes()), "bytes at d=784")
