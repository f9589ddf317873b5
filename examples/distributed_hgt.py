"""Data-parallel training of an HGT node classifier with torch.distributed.

Run:  torchrun --standalone --nproc_per_node=2 examples/distributed_hgt.py [--steps 50]
      (gloo on CPU, NCCL when CUDA is available; plain ``python -P`` runs one process)

Every rank builds the same graph and model (replicas are broadcast from rank 0), trains on
its shard ``seeds[rank::world]`` of the labelled nodes, and averages gradients over ranks:
the run follows the single-process full-batch run, and the replicas stay identical.
"""
import argparse
import os

import torch
import torch.nn.functional as F
from torch import nn

from pygad.models import distributed as pgd
from pygad.nn import HGT

ap = argparse.ArgumentParser()
ap.add_argument("--steps", type=int, default=50)
ap.add_argument("--ddp", action="store_true", help="wrap in DistributedDataParallel")
args = ap.parse_args()

if "RANK" in os.environ:
    rank, world = pgd.init_distributed()              # rendezvous from torchrun's env
else:
    rank, world = 0, 1
dev = pgd.device_for_rank()
torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))

# a small synthetic heterogeneous graph: users -> items, items -> users
META = (["user", "item"], [("user", "buys", "item"), ("item", "rev_buys", "user")])
g = torch.Generator().manual_seed(0)
n_user, n_item, d = 400, 150, 16
x = {"user": torch.randn(n_user, d, generator=g), "item": torch.randn(n_item, d, generator=g)}
src = torch.randint(0, n_user, (3000,), generator=g)
dst = torch.randint(0, n_item, (3000,), generator=g)
ei = {("user", "buys", "item"): torch.stack([src, dst]),
      ("item", "rev_buys", "user"): torch.stack([dst, src])}
y = ((x["user"][:, 0] + 0.5 * torch.randn(n_user, generator=g)) > 1.2).float()
x = {k: v.to(dev) for k, v in x.items()}
ei = {k: v.to(dev) for k, v in ei.items()}
y = y.to(dev)
train_idx = torch.arange(0, 320, device=dev)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = HGT(d, 32, META, num_layers=2, heads=4)
        self.head = nn.Linear(32 + d, 1)

    def forward(self, x, ei):
        return self.head(torch.cat([self.encoder(x, ei)["user"], x["user"]], 1)).squeeze(-1)


torch.manual_seed(0)
model = Net().to(dev)
trainer = pgd.DataParallelTrainer(model, torch.optim.AdamW(model.parameters(), lr=5e-3),
                                  ddp=args.ddp)
mine = pgd.shard_seeds(train_idx)                    # this rank's labelled nodes
pos_weight = (1 - y[train_idx].mean()) / y[train_idx].mean()


def loss_fn(m):
    return F.binary_cross_entropy_with_logits(m(x, ei)[mine], y[mine], pos_weight=pos_weight)


for step in range(args.steps):
    loss = trainer.step(loss_fn)
    if rank == 0 and (step % 10 == 0 or step == args.steps - 1):
        print(f"step {step:3d}  loss {loss:.4f}  (world {world})", flush=True)
same = pgd.replicas_identical(model)
if rank == 0:
    print("replicas identical:", same)
pgd.shutdown()
