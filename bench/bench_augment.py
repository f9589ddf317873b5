"""Augmentation benchmarks and quality runs (not collected by pytest's default test paths).

Subcommands (``python -P bench/bench_augment.py CMD ...``):

* ``quality --data NAME --seeds N [--first-seed S] [--ablations] [--hops H] [--vae-epochs E] [--methods ...]
  [--augmenter-kwargs JSON] [--baseline-kwargs JSON] --json FILE``:
  the quality harness ``bench/quality/ablations.py`` on a dataset: no augmentation vs the
  latent-diffusion augmenter vs the baselines (default methods ``none oversample smote mixup
  vae diffusion``; ``--ablations`` adds ``no_hetero no_cond no_attach decoded_edges``), mean ±
  std of AUC, AP and Recall@k over seeds. ``--augmenter-kwargs`` configures the diffusion
  augmenter and its variants only; ``--baseline-kwargs '{"ratio": 3}'`` gives the baselines the
  same count as ``--augmenter-kwargs '{"ratio": 3}'``.
* ``hgt-epoch [--data reddit] [--epochs 3]``: one GraphVAE training epoch (full batch) with
  pygad's HGT encoder vs the same model with PyG's ``HGTConv`` layers; time per epoch.
* ``dgraph-epoch [--nodes 3700000] [--edges 4300000] [--batch-size 16384] [--max-batches B]``: a
  synthetic graph of DGraph's size (17 features, 11 relations), one mini-batch epoch (or its
  first B batches, extrapolated) with native neighbour sampling; time per batch, peak RSS, and
  the sampler's share of a batch (the same sampling timed alone).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

QUALITY_METHODS = ("none", "oversample", "smote", "mixup", "vae", "diffusion")
QUALITY_ABLATIONS = ("no_hetero", "no_cond", "no_attach", "decoded_edges")


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


def _quality_harness():
    """``bench/quality/ablations.py`` (bench/ is not a package; loaded by path)."""
    name = "bench_quality_ablations"
    if name not in sys.modules:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "quality", "ablations.py")
        spec = importlib.util.spec_from_file_location(name, path)
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


def cmd_quality(a) -> None:
    if a.ablations:
        a.methods = list(a.methods) + [m for m in QUALITY_ABLATIONS if m not in a.methods]
    _quality_harness().main_args(a)


def _vae_for(graph, impl_pyg: bool):
    import torch
    from torch import nn

    from pygad.models.vae import GraphVAE

    m = GraphVAE.from_graph(graph, latent_dim=16, hidden_channels=64, num_layers=2, heads=4, decoder_hidden=64)
    if impl_pyg:
        from torch_geometric.nn import HGTConv as PyGHGTConv

        enc = m.encoder

        class _PyGStack(nn.Module):
            def __init__(s):
                super().__init__()
                s.convs = nn.ModuleList([PyGHGTConv(64, 64, m.enc_metadata, heads=4) for _ in range(2)])

            def forward(s, h, ei):
                for conv in s.convs:
                    out = conv(h, ei)
                    h = {k: (out.get(k) if out.get(k) is not None else v) for k, v in h.items()}
                return h

        stack = _PyGStack()
        lin = enc.input_lin

        class _Enc(nn.Module):
            def __init__(s):
                super().__init__()
                s.input_lin, s.stack = lin, stack

            def forward(s, x_dict, ei):
                h = {k: torch.relu(s.input_lin[k](x)) for k, x in x_dict.items()}
                return s.stack(h, ei)

        m.encoder = _Enc()
    return m


def cmd_hgt_epoch(a) -> None:
    import torch

    from pygad.datasets import load
    from pygad.evaluation import stratified_split

    g = load(a.data)
    tr = stratified_split(g.y[g.target_type()], 0)[0]
    rows = []
    for rnd in range(a.rounds):
        for name in ("pygad", "pyg"):
            torch.manual_seed(0)
            m = _vae_for(g, name == "pyg")
            m.fit(g, tr, epochs=1, random_state=0, verbose=False)  # warm-up (structure, allocator)
            t0 = time.perf_counter()
            m.fit(g, tr, epochs=a.epochs, random_state=0, verbose=False)
            dt = (time.perf_counter() - t0) / a.epochs
            rows.append((rnd, name, dt))
            print(f"round {rnd} {name:<6} {dt * 1000:8.1f} ms/epoch (GraphVAE full batch, {g.name}, "
                  f"{g.num_edges()} edges, threads={torch.get_num_threads()})", flush=True)
    for name in ("pygad", "pyg"):
        ts = [r[2] for r in rows if r[1] == name]
        print(f"{name:<6} median {np.median(ts) * 1000:.1f} ms/epoch")
    p = np.median([r[2] for r in rows if r[1] == "pyg"]) / np.median([r[2] for r in rows if r[1] == "pygad"])
    print(f"speed-up pygad vs PyG HGTConv: {p:.2f}x")


def synthetic_dgraph(nodes: int, edges: int, relations: int = 11, features: int = 17, seed: int = 0):
    """A random graph of DGraph's shape: power-law-ish degrees, 11 directed relations, 17 features,
    ~1% anomalies (whose features are shifted)."""
    from pygad.data import HeteroGraph

    rng = np.random.default_rng(seed)
    y = (rng.random(nodes) < 0.013).astype(np.int8)
    x = rng.normal(size=(nodes, features)).astype(np.float32)
    x[y == 1] += 0.5
    per = np.diff(np.linspace(0, edges, relations + 1).astype(np.int64))
    ei = {}
    for r, e in enumerate(per):
        src = (rng.pareto(1.5, e) * 1000).astype(np.int64) % nodes
        dst = rng.integers(0, nodes, e)
        ei[("node", f"r{r}", "node")] = np.stack([src, dst])
    return HeteroGraph({"node": nodes}, ei, x={"node": x}, y={"node": y}, name="dgraph_synthetic")


def cmd_dgraph_epoch(a) -> None:
    import torch

    from pygad.models.vae import GraphVAE

    if a.threads:
        torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    g = synthetic_dgraph(a.nodes, a.edges)
    print(f"built {g!r} in {time.perf_counter() - t0:.1f}s; peak RSS {_peak_rss_gib():.2f} GiB", flush=True)
    tr = np.random.default_rng(0).random(a.nodes) < 0.4
    total_b = -(-a.nodes // a.batch_size)

    def fit(batches):
        m = GraphVAE.from_graph(g, latent_dim=16, hidden_channels=32, num_layers=2, heads=2, decoder_hidden=32)
        t = time.perf_counter()
        m.fit(g, tr, epochs=1, batch_size=a.batch_size, fanouts=tuple(a.fanouts), max_batches=batches,
              random_state=0, verbose=True)
        return time.perf_counter() - t, len(m.history_)

    # A fit's set-up (CSR/CSC of every relation over 3.7M nodes, scalers, degrees) is paid once
    # per fit, not per batch: time one fit of 1 batch and one of N, and charge the difference.
    nb = total_b if a.max_batches is None else min(int(a.max_batches), total_b)
    dt, nb = fit(nb)
    if nb < total_b and nb > 1:
        dt1, _ = fit(1)
        per = (dt - dt1) / (nb - 1)
        setup = dt1 - per
        print(f"{nb} mini-batches of {a.batch_size} seeds (fanouts {a.fanouts}): {per:.2f} s/batch after a "
              f"{setup:.1f} s set-up; full epoch = {total_b} batches, extrapolated {setup + per * total_b:.0f} s")
    else:
        print(f"{nb} mini-batches of {a.batch_size} seeds (fanouts {a.fanouts}) in {dt:.1f} s "
              f"({dt / nb:.2f} s/batch incl. set-up)" + (" = one full epoch" if nb == total_b else ""))
        per = dt / nb
    print(f"peak RSS {_peak_rss_gib():.2f} GiB (threads={torch.get_num_threads()})")
    # the sampler's share of a batch: the same sampling (all relations, both directions) alone
    from pygad.ops import NeighborSampler

    csr = {}
    for et in g.edge_types:
        csr[et] = g.csr(et)[:2]
        csr[(et[2], "rev_" + et[1], et[0])] = g.csc(et)[:2]
    sampler = NeighborSampler((csr, dict(g.num_nodes)), tuple(a.fanouts), a.batch_size, seed=0)
    t0, sizes = time.perf_counter(), []
    for b, mb in zip(range(nb), sampler):
        sizes.append((mb.nodes["node"].size, sum(e.shape[1] for e in mb.edges.values())))
    ds = (time.perf_counter() - t0) / max(1, len(sizes))
    print(f"native sampler alone: {ds * 1000:.0f} ms/batch ({100 * ds / per:.1f}% of a training batch); "
          f"sampled subgraph ~{np.mean([s[0] for s in sizes]):.0f} nodes, {np.mean([s[1] for s in sizes]):.0f} edges")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("quality")
    _quality_harness().add_arguments(q, default_methods=QUALITY_METHODS)
    q.add_argument("--ablations", action="store_true", help="add " + " ".join(QUALITY_ABLATIONS) + " to the methods")
    q.set_defaults(func=cmd_quality)
    h = sub.add_parser("hgt-epoch")
    h.add_argument("--data", default="reddit")
    h.add_argument("--epochs", type=int, default=3)
    h.add_argument("--rounds", type=int, default=2)
    h.set_defaults(func=cmd_hgt_epoch)
    d = sub.add_parser("dgraph-epoch")
    d.add_argument("--nodes", type=int, default=3_700_000)
    d.add_argument("--edges", type=int, default=4_300_000)
    d.add_argument("--batch-size", type=int, default=16384)
    d.add_argument("--fanouts", type=int, nargs="+", default=[10, 5])
    d.add_argument("--max-batches", type=int, default=None)
    d.add_argument("--threads", type=int, default=None, help="torch/OpenMP threads (default: torch's)")
    d.set_defaults(func=cmd_dgraph_epoch)
    a = p.parse_args(argv)
    if SHARED_DATA.is_dir():
        os.environ.setdefault("PYGAD_DATA", str(SHARED_DATA))
    a.func(a)


if __name__ == "__main__":
    main()
