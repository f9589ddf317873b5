"""The rotated-digits drift experiment over several seeds (the protocol of docs/stream.md).

Runs :func:`pygad.stream.experiment.run_experiment` (what ``pygad stream drift`` runs once) for
each seed on a 28x28 MNIST archive (default: ``../shared/data/mnist_mlxtend5k.npz`` beside the
checkout) and prints each seed's table, then overall AUC / AP per method and seed and the mean
AUC::

    python -P bench/quality/stream_drift.py --seeds 0 1 2 [--data FILE] [--no-hst] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

SHARED_MNIST = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist_mlxtend5k.npz"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=SHARED_MNIST, help=f"MNIST .npz (default: {SHARED_MNIST})")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--segment-len", type=int, default=2000)
    p.add_argument("--no-hst", action="store_true", help="skip river's HalfSpaceTrees")
    p.add_argument("--json", type=Path, default=None, help="write every seed's results as JSON")
    a = p.parse_args(argv)
    if not a.data.is_file():
        raise SystemExit(f"stream_drift: data file not found: {a.data}")
    from pygad.stream import experiment as E

    per_seed = {}
    for seed in a.seeds:
        out = E.run_experiment(a.data, segment_len=a.segment_len, seed=seed, hst=not a.no_hst, progress=False)
        print(f"seed {seed}:\n{E.format_table(out)}\n", flush=True)
        per_seed[seed] = out["results"]
    methods = list(per_seed[a.seeds[0]])
    print("| method | " + " | ".join(f"seed {s}" for s in a.seeds) + " | mean AUC |")
    print("|---|" + "---|" * (len(a.seeds) + 1))
    for m in methods:
        cells = [f"{per_seed[s][m]['auc']:.3f} / {per_seed[s][m]['ap']:.3f}" for s in a.seeds]
        mean_auc = np.mean([per_seed[s][m]["auc"] for s in a.seeds])
        print(f"| {m} | " + " | ".join(cells) + f" | {mean_auc:.3f} |")
    if a.json:
        a.json.write_text(json.dumps({str(s): r for s, r in per_seed.items()}, indent=2))


if __name__ == "__main__":
    main()
