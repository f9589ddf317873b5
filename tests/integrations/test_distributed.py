"""Data-parallel training with torch.distributed (gloo, 2 ranks, file rendezvous).

Replicas must stay bit-identical, and the losses and weights must match a single-process
full-batch run on the same data (equal seed shards: averaged gradient = full-batch gradient).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import _dist_worker as W
from pygad.integrations.distributed import shard_seeds

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


def test_two_ranks_match_single_process(tmp_path):
    import torch.multiprocessing as mp
    mp.spawn(W.worker, args=(2, str(tmp_path / "rendezvous"), str(tmp_path)), nprocs=2,
             join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]

    torch.set_num_threads(1)
    model, x, ei, y, seeds = W.setup()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    ref_losses = []
    for _ in range(W.STEPS):                      # single process, full batch
        opt.zero_grad()
        loss = W.loss_of(model, x, ei, y, seeds)
        loss.backward()
        opt.step()
        ref_losses.append(float(loss))
    ref_state = model.state_dict()

    for ddp in (False, True):
        r0, r1 = ranks[0][ddp], ranks[1][ddp]
        assert r0["same"] and r1["same"], f"replicas diverged (ddp={ddp})"
        for k in r0["state"]:
            assert torch.equal(r0["state"][k], r1["state"][k]), k       # bit-identical
            torch.testing.assert_close(r0["state"][k], ref_state[k], rtol=1e-4, atol=1e-5)
        assert r0["losses"] == r1["losses"]
        np.testing.assert_allclose(r0["losses"], ref_losses, rtol=1e-5)
