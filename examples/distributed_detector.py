"""Data-parallel training of pygad's GNN detector and diffusion augmenter with torch.distributed.

Run:  torchrun --standalone --nproc_per_node=2 examples/distributed_detector.py [--epochs 40]
      (gloo on CPU, NCCL when CUDA is available; plain ``python -P`` runs one process)

Every rank loads the same graph; ``distributed=True`` makes the models start from rank 0's
weights, split the training nodes (and the augmenter's latent batches) by rank and sum the
gradients over ranks, so the fit follows the single-process one and every rank ends with the
same model. Rank 0 prints the results.
"""
import argparse
import os
import time

import numpy as np
import torch

from pygad.data import HeteroGraph
from pygad.models import distributed as pgd
from pygad.metrics import average_precision
from pygad.models import GNNDetector
from pygad.models.augment import LatentDiffusionAugmenter

ap = argparse.ArgumentParser()
ap.add_argument("--epochs", type=int, default=40, help="GNN detector epochs")
ap.add_argument("--vae-epochs", type=int, default=30)
ap.add_argument("--diffusion-epochs", type=int, default=30)
ap.add_argument("--nodes", type=int, default=600)
ap.add_argument("--threads", type=int, default=0, help="torch threads per rank (0: cores / ranks)")
args = ap.parse_args()

if "RANK" in os.environ:
    rank, world = pgd.init_distributed()              # rendezvous from torchrun's env
else:
    rank, world = 0, 1
dev = str(pgd.device_for_rank())                      # cuda:LOCAL_RANK with GPUs, else cpu
torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 1) // world))

# a synthetic graph (the same on every rank): anomalies receive edges from "marked" nodes
rng = np.random.default_rng(0)
n = args.nodes
y = (rng.random(n) < 0.1).astype(np.int8)
x = rng.normal(size=(n, 4)).astype(np.float32)
src, dst = [rng.integers(0, n, 4 * n)], [np.repeat(np.arange(n), 4)]
for i in np.flatnonzero(y):
    marked = rng.integers(0, n, 4)
    x[marked, 3] += 1.5
    src.append(marked)
    dst.append(np.full(4, i))
graph = HeteroGraph.homogeneous(np.stack([np.concatenate(src), np.concatenate(dst)]), n, x=x, y=y,
                                name="planted")
perm = rng.permutation(n)
train, val, test = (np.isin(np.arange(n), perm[a:b]) for a, b in ((0, n // 2), (n // 2, 3 * n // 4), (3 * n // 4, n)))

t0 = time.perf_counter()
det = GNNDetector(hidden_channels=32, epochs=args.epochs, patience=20, device=dev, random_state=0,
                  verbose=False, distributed=True).fit(graph, train, val)
t_det = time.perf_counter() - t0
det_same = pgd.replicas_identical(det.model_)
score = det.decision_function(graph)
if rank == 0:
    print(f"GNNDetector (world {world}): best epoch {det.best_epoch_}, val AP {det.best_val_ap_:.4f}, "
          f"test AP {average_precision(y[test], score[test]):.4f}, fit {t_det:.2f} s "
          f"({len(det.history_)} epochs)", flush=True)
    print("GNNDetector replicas identical:", det_same, flush=True)

t0 = time.perf_counter()
aug = LatentDiffusionAugmenter(latent_dim=8, hidden_channels=32, decoder_hidden=32, vae_epochs=args.vae_epochs,
                               diffusion_hidden=64, diffusion_layers=2, diffusion_epochs=args.diffusion_epochs,
                               steps=8, device=dev, random_state=0, distributed=True).fit(graph, train)
t_aug = time.perf_counter() - t0
aug_same = pgd.replicas_identical(torch.nn.ModuleList([aug.vae_, aug.diffusion_model_.denoiser_]))
if rank == 0:
    syn = aug.sample(10, label=1, seed=0)              # sampling needs no group: rank 0 alone
    print(f"augmenter (world {world}): VAE loss {aug.vae_.history_[-1]['loss']:.4f}, diffusion loss "
          f"{aug.diffusion_model_.loss_history_[-1]:.4f}, {len(syn)} synthetic anomalies, fit {t_aug:.2f} s", flush=True)
    print("augmenter replicas identical:", aug_same, flush=True)
if "RANK" in os.environ:
    pgd.shutdown()                                      # also a one-rank torchrun group
