"""Rank body of the data-parallel test (a module, so torch.multiprocessing can spawn it)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pygad.models import distributed as pgd
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
        # pygad's models with distributed=True, in the same group (one spawn for the module)
        models = fit_models(True, rank)
        for v in models.values():
            v["same"] = pgd.replicas_identical(v.pop("module"))
            v["state"] = {k: t.detach().clone() for k, t in v["state"].items()}
        torch.save(models, f"{out_dir}/models{rank}.pt")
        checks = {}
        try:
            pgd.common_seed(rank)                  # different seeds per rank
            checks["seed_mismatch"] = False
        except ValueError:
            checks["seed_mismatch"] = True
        try:
            pgd.broadcast_tensor(torch.zeros(3 + rank))
            checks["shape_mismatch"] = False
        except ValueError:
            checks["shape_mismatch"] = True
        s = pgd.common_seed(None)                  # drawn on rank 0, the same everywhere
        lo_hi = torch.tensor([s, -s])
        torch.distributed.all_reduce(lo_hi, op=torch.distributed.ReduceOp.MAX)
        checks["seed_broadcast"] = lo_hi.tolist() == [s, -s]
        # mini-batch VAE: the native sampler splits the seeds by rank, gradients are averaged
        from pygad.models.vae import GraphVAE
        g, tr_mask, _ = model_graph()
        torch.manual_seed(rank)
        vae = GraphVAE.from_graph(g, **VAE_KW)
        vae.fit(g, tr_mask, "user", batch_size=16, fanouts=(3, 2), epochs=2, random_state=1, verbose=False,
                distributed=True)
        checks["minibatch"] = {"same": pgd.replicas_identical(vae), "history": [h["loss"] for h in vae.history_]}
        torch.save(checks, f"{out_dir}/checks{rank}.pt")
    finally:
        pgd.shutdown()


# ---- pygad's own models with distributed=True -----------------------------------------------
GNN_KW = dict(hidden_channels=8, num_layers=1, heads=2, dropout=0.2, epochs=6, patience=3, random_state=0,
              verbose=False)
VAE_KW = dict(latent_dim=4, hidden_channels=8, num_layers=1, heads=2, decoder_hidden=8)
VAE_FIT = dict(epochs=4, random_state=1, verbose=False)
DM_KW = dict(dim=4, hidden=16, num_layers=1, ema_decay=0.9, random_state=2)
DM_FIT = dict(epochs=3, batch_size=16, verbose=False)
AUG_KW = dict(latent_dim=4, hidden_channels=8, num_layers=1, heads=2, decoder_hidden=8, vae_epochs=3,
              diffusion_hidden=16, diffusion_layers=1, diffusion_epochs=2, steps=2, random_state=3)


def model_graph(seed=0, nu=61, np_=13):
    """Users (labelled) and products; a temporal review relation and user-user edges (odd
    sizes, so the rank shards are unequal)."""
    import numpy as np

    from pygad.data import HeteroGraph

    rng = np.random.default_rng(seed)
    y = (rng.random(nu) < 0.2).astype(np.int8)
    y[:4] = 1
    y[4:8] = 0
    xu = rng.normal(size=(nu, 5)).astype(np.float32) + y[:, None]
    xp = rng.normal(size=(np_, 3)).astype(np.float32)
    rev = np.stack([rng.integers(0, nu, 150), rng.integers(0, np_, 150)])
    uu = np.stack([rng.integers(0, nu, 70), rng.integers(0, nu, 70)])
    g = HeteroGraph({"user": nu, "product": np_},
                    {("user", "review", "product"): rev, ("user", "follows", "user"): uu},
                    x={"user": xu, "product": xp}, y={"user": y},
                    edge_time={("user", "review", "product"): rng.uniform(100.0, 200.0, 150)})
    idx = rng.permutation(nu)
    train = np.zeros(nu, bool)
    train[idx[:40]] = True
    train[[0, 1, 4, 5]] = True
    val = ~train
    val[[2, 3, 6, 7]] = True
    return g, train, val


def diffusion_data(shift=0.0):
    g = torch.Generator().manual_seed(5)
    return torch.randn(41, 4, generator=g) + shift, (torch.rand(41, generator=g) < 0.3).long()


def fit_models(distributed, rank=0):
    """Fit each model once; ``rank`` perturbs the per-rank starting points (initial weights,
    the diffusion's data) that a distributed fit must replace by rank 0's."""
    from pygad.models import GNNDetector, LatentDiffusion
    from pygad.models.augment import LatentDiffusionAugmenter
    from pygad.models.vae import GraphVAE

    g, train, val = model_graph()
    out = {}
    gnn = GNNDetector(distributed=distributed, **GNN_KW).fit(g, train, val)
    out["gnn"] = {"history": gnn.history_, "state": gnn.model_.state_dict(), "threshold": gnn.threshold_,
                  "best_epoch": gnn.best_epoch_, "module": gnn.model_}
    torch.manual_seed(rank)                       # a different init on each rank
    vae = GraphVAE.from_graph(g, **VAE_KW)
    vae.fit(g, train, "user", distributed=distributed, **VAE_FIT)
    out["vae"] = {"history": [h["loss"] for h in vae.history_], "parts": vae.history_,
                  "state": vae.state_dict(), "module": vae}
    z, y = diffusion_data(shift=float(rank))      # rank 0's data must win
    dm = LatentDiffusion(**DM_KW).fit(z, y, distributed=distributed, **DM_FIT)
    out["diffusion"] = {"history": dm.loss_history_, "state": dm.denoiser_.state_dict(),
                        "module": dm.denoiser_}
    aug = LatentDiffusionAugmenter(distributed=distributed, **AUG_KW).fit(g, train)
    out["augmenter"] = {"history": [h["loss"] for h in aug.vae_.history_] + aug.diffusion_model_.loss_history_,
                        "state": {**{f"vae.{k}": v for k, v in aug.vae_.state_dict().items()},
                                  **{f"dm.{k}": v for k, v in aug.diffusion_model_.denoiser_.state_dict().items()}},
                        "module": torch.nn.ModuleList([aug.vae_, aug.diffusion_model_.denoiser_])}
    return out

