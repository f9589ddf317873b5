"""Rank body of the data-parallel test (a module, so torch.multiprocessing can spawn it)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pygad.integrations import distributed as pgd
from pygad.nn import HGT

METADATA = (["A", "B", "C", "D"],
            [("A", "ab", "B"), ("B", "ba", "A"), ("A", "aa", "A"), ("C", "ca", "A"),
             ("D", "dc", "C")])
SIZES = {"A": 40, "B": 25, "C": 15, "D": 6}
WIDTH, HIDDEN, STEPS = 8, 16, 4


class Net(nn.Module):
    """HGT encoder + head on the target's embedding and features (as GNNDetector builds)."""

    def __init__(self):
        super().__init__()
        self.encoder = HGT(WIDTH, HIDDEN, METADATA, num_layers=2, heads=2)
        self.head = nn.Sequential(nn.Linear(HIDDEN + WIDTH, HIDDEN), nn.ReLU(),
                                  nn.Linear(HIDDEN, 1))

    def forward(self, x, ei):
        h = self.encoder(x, ei)["A"]
        return self.head(torch.cat([h, x["A"]], 1)).squeeze(-1)


def setup(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = {nt: torch.randn(n, WIDTH, generator=g) for nt, n in SIZES.items()}
    ei = {et: torch.stack([torch.randint(0, SIZES[et[0]], (80,), generator=g),
                           torch.randint(0, SIZES[et[2]], (80,), generator=g)])
          for et in METADATA[1]}
    y = (torch.rand(SIZES["A"], generator=g) < 0.3).float()
    torch.manual_seed(seed)
    return Net(), x, ei, y, torch.arange(SIZES["A"])


def loss_of(model, x, ei, y, seeds):
    return F.binary_cross_entropy_with_logits(model(x, ei)[seeds], y[seeds])


def train(model, x, ei, y, seeds, ddp=False):
    trainer = pgd.DataParallelTrainer(model, torch.optim.Adam(model.parameters(), lr=1e-2),
                                      ddp=ddp)
    mine = pgd.shard_seeds(seeds)
    return [trainer.step(lambda m: loss_of(m, x, ei, y, mine)) for _ in range(STEPS)]


def worker(rank, world, init_file, out_dir):
    torch.set_num_threads(1)
    pgd.init_distributed("gloo", f"file://{init_file}", rank, world, timeout_s=120)
    try:
        result = {}
        for ddp in (False, True):
            model, x, ei, y, seeds = setup()
            if rank == 1:                      # a different init: the broadcast must fix it
                with torch.no_grad():
                    for p in model.parameters():
                        p.add_(1.0)
            losses = train(model, x, ei, y, seeds, ddp=ddp)
            result[ddp] = {"losses": losses, "same": pgd.replicas_identical(model),
                           "state": {k: v.clone() for k, v in model.state_dict().items()}}
        torch.save(result, f"{out_dir}/rank{rank}.pt")
    finally:
        pgd.shutdown()
