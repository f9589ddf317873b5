"""Data-parallel training with torch.distributed (gloo, 2 ranks, file rendezvous).

Replicas must stay bit-identical, and the losses and weights must match a single-process
full-batch run on the same data (equal seed shards: averaged gradient = full-batch gradient).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import _dist_worker as W
from pygad.models.distributed import shard_seeds

pytestmark = pytest.mark.skipif(not torch.distributed.is_available() or
                                not torch.distributed.is_gloo_available(),
                                reason="torch.distributed with gloo is not available")


def test_shard_seeds_partitions_by_rank():
    seeds = np.arange(11)
    shards = [shard_seeds(seeds, r, 3) for r in range(3)]
    assert [s.tolist() for s in shards] == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    padded = [shard_seeds(seeds, r, 3, drop_last=False) for r in range(3)]
    assert sorted(np.concatenate(padded).tolist()) == sorted(list(range(11)) + [0])
    t = shard_seeds(torch.arange(8), 1, 2, shuffle=True, seed=4)
    assert isinstance(t, torch.Tensor) and t.shape == (4,)
    both = torch.cat([shard_seeds(torch.arange(8), r, 2, shuffle=True, seed=4) for r in (0, 1)])
    assert sorted(both.tolist()) == list(range(8))
    with pytest.raises(ValueError):
        shard_seeds(seeds, 3, 3)


@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory):
    """One 2-rank gloo group (file rendezvous) for the module: the toy model, then pygad's
    models with ``distributed=True``; each rank saves what it ended with."""
    import torch.multiprocessing as mp
    out = tmp_path_factory.mktemp("dist")
    mp.spawn(W.worker, args=(2, str(out / "rendezvous"), str(out)), nprocs=2, join=True)
    return out


@pytest.fixture(scope="module")
def single_process_models():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return W.fit_models(False)
    finally:
        torch.set_num_threads(n)


def test_two_ranks_match_single_process(two_rank_run):
    tmp_path = two_rank_run
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]

    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model, x, ei, y, seeds = W.setup()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    ref_losses = []
    for _ in range(W.STEPS):                      # single process, full batch
        opt.zero_grad()
        loss = W.loss_of(model, x, ei, y, seeds)
        loss.backward()
        opt.step()
        ref_losses.append(float(loss.detach()))
    ref_state = model.state_dict()
    torch.set_num_threads(n_threads)

    for ddp in (False, True):
        r0, r1 = ranks[0][ddp], ranks[1][ddp]
        assert r0["same"] and r1["same"], f"replicas diverged (ddp={ddp})"
        for k in r0["state"]:
            assert torch.equal(r0["state"][k], r1["state"][k]), k       # bit-identical
            torch.testing.assert_close(r0["state"][k], ref_state[k], rtol=1e-4, atol=1e-5)
        assert r0["losses"] == r1["losses"]
        np.testing.assert_allclose(r0["losses"], ref_losses, rtol=1e-5)


@pytest.mark.parametrize("name", ["gnn", "vae", "diffusion", "augmenter"])
def test_models_two_ranks_match_single_process(two_rank_run, single_process_models, name):
    """GNNDetector, GraphVAE, LatentDiffusion and the augmenter with ``distributed=True``:
    bit-identical replicas (rank 1 starts from other weights / other diffusion data, which
    rank 0's must replace), and the same losses and weights as one process on the same data
    (unequal shards, class weights, dropout and the noise draws included)."""
    r0, r1 = (torch.load(two_rank_run / f"models{r}.pt")[name] for r in (0, 1))
    ref = single_process_models[name]
    assert r0["same"] and r1["same"], f"{name}: replicas diverged"
    assert r0["history"] == r1["history"]
    assert set(r0["state"]) == set(ref["state"])
    for k, v in ref["state"].items():
        assert torch.equal(r0["state"][k], r1["state"][k]), k
        torch.testing.assert_close(r0["state"][k], v, rtol=1e-4, atol=1e-5, msg=f"{name}: {k}")
    if name == "gnn":
        assert [h["val_ap"] for h in r0["history"]] == pytest.approx([h["val_ap"] for h in ref["history"]])
        np.testing.assert_allclose([h["loss"] for h in r0["history"]], [h["loss"] for h in ref["history"]],
                                   rtol=1e-5)
        assert r0["best_epoch"] == ref["best_epoch"] and r0["threshold"] == r1["threshold"]
        assert r0["threshold"] == pytest.approx(ref["threshold"], rel=1e-4, abs=1e-5)
    else:
        np.testing.assert_allclose(r0["history"], ref["history"], rtol=1e-5)
    if name == "vae":  # every loss part, not only the total
        for a, b in zip(r0["parts"], ref["parts"]):
            assert set(a) == set(b)
            np.testing.assert_allclose([a[k] for k in sorted(a)], [b[k] for k in sorted(b)], rtol=1e-5, atol=1e-7)


def test_collectives_reject_mismatched_inputs(two_rank_run):
    """Ranks passing different seeds or different data shapes get a ValueError on every rank
    (not a hang, not silent garbage)."""
    for r in (0, 1):
        checks = torch.load(two_rank_run / f"checks{r}.pt")
        checks.pop("minibatch")
        assert checks == {"seed_mismatch": True, "shape_mismatch": True, "seed_broadcast": True}, r


def test_vae_minibatch_two_ranks(two_rank_run):
    """Mini-batch GraphVAE with ``distributed=True``: each rank samples its share of the seeds
    (74 nodes -> 37 per rank -> 3 batches of <= 16 per epoch, the same count on both ranks),
    gradients are averaged, and the replicas stay bit-identical."""
    m0, m1 = (torch.load(two_rank_run / f"checks{r}.pt")["minibatch"] for r in (0, 1))
    assert m0["same"] and m1["same"]
    assert len(m0["history"]) == 2 * 3 and m0["history"] == m1["history"]
    assert np.isfinite(m0["history"]).all()


def test_distributed_option_without_group_is_single_process(monkeypatch):
    """``distributed=True`` in a lone process trains exactly as ``False``; inside a
    multi-process launch whose group was never initialised it refuses."""
    from pygad.models.distributed import training_group
    from pygad.models import GNNDetector

    g, train, val = W.model_graph()
    kw = dict(W.GNN_KW, epochs=2)
    a = GNNDetector(distributed=True, **kw).fit(g, train, val)
    b = GNNDetector(**kw).fit(g, train, val)
    assert a.history_ == b.history_
    assert np.array_equal(a.decision_function(g), b.decision_function(g))
    assert training_group(False) == (0, 1) and training_group(True) == (0, 1)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(RuntimeError, match="init_distributed"):
        GNNDetector(distributed=True, **kw).fit(g, train, val)
    assert training_group(False) == (0, 1)


def test_torchrun_launch(tmp_path):
    """The example script under ``torchrun --standalone --nproc_per_node=2`` (real launcher,
    env:// rendezvous on loopback): both models train and end identical on the two ranks."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun is not installed")
    script = Path(__file__).resolve().parents[2] / "examples" / "distributed_detector.py"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONSAFEPATH="1")
    proc = subprocess.run([torchrun, "--standalone", "--nproc_per_node=2", str(script), "--epochs", "3",
                           "--vae-epochs", "2", "--diffusion-epochs", "2", "--nodes", "120"],
                          capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "GNNDetector (world 2)" in proc.stdout
    assert "GNNDetector replicas identical: True" in proc.stdout
    assert "augmenter replicas identical: True" in proc.stdout
