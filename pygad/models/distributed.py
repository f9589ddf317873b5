"""Data-parallel training of pygad's torch models with ``torch.distributed``.

Gloo on CPU, NCCL on GPU; launched by ``torchrun`` (rendezvous from the environment) or by
any spawner with an explicit ``init_method`` (``file://...`` or ``tcp://host:port``).

Scheme: every rank holds a full replica of the model (identical after
:func:`broadcast_parameters`) and of the graph; the training seeds (labelled target nodes)
are split by rank, ``seeds[rank::world]`` in equal shards (:func:`shard_seeds`); each rank
computes the mean loss of its shard, and the gradients are averaged over ranks before the
optimizer step. With equal shards the averaged gradient is exactly the gradient of the mean
loss over all seeds, so a ``world``-rank run follows the single-process full-batch run up to
floating-point summation order, and every replica applies the same update (they stay
bit-identical: :func:`replicas_identical` checks it). With a neighbour sampler, each rank
samples the subgraph of its own shard only; with full-batch message passing (as in
:class:`pygad.models.GNNDetector`), each rank runs the encoder on the whole graph and the
split saves the loss/head work.

pygad's models do this themselves with ``distributed=True``
(:class:`pygad.models.GNNDetector`, :class:`pygad.models.augment.LatentDiffusionAugmenter`,
``GraphVAE.fit``, ``LatentDiffusion.fit``): there the loss of each rank is its share of the
global mean (sum over its seeds / global count, so unequal shards and class weights are
exact) and the gradients are summed; random draws of a full batch come from one stream shared
by all ranks (:func:`common_seed`), so the run reproduces the single-process one.

Typical script for your own model (run with ``torchrun --nproc_per_node=2 train.py``)::

    from pygad.models import distributed as dist_pg

    rank, world = dist_pg.init_distributed()                     # env:// from torchrun
    model = build_model().to(dist_pg.device_for_rank())
    trainer = dist_pg.DataParallelTrainer(model, torch.optim.Adam(model.parameters()))
    my_seeds = dist_pg.shard_seeds(train_idx)                    # this rank's shard
    for epoch in range(epochs):
        loss = trainer.step(lambda m: loss_of(m, my_seeds))     # global mean loss
    dist_pg.shutdown()
"""
from __future__ import annotations

import datetime
import os
import zlib
from typing import Callable, Iterable, Optional

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

__all__ = ["init_distributed", "shutdown", "rank_and_world", "device_for_rank",
           "shard_seeds", "broadcast_parameters", "allreduce_gradients", "allreduce_mean",
           "allreduce_sum", "broadcast_scalar", "broadcast_tensor", "common_seed",
           "training_group", "replicas_identical", "DataParallelTrainer"]


def rank_and_world() -> tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` when no process group is initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def training_group(distributed: bool) -> tuple[int, int]:
    """``(rank, world_size)`` a model's ``fit(..., distributed=...)`` trains with.

    ``(0, 1)`` (plain single-process training) when ``distributed`` is False or when no
    process group is initialised in a lone process. Raises when ``distributed`` is asked for
    in a multi-process launch (``WORLD_SIZE`` > 1, as ``torchrun`` sets) whose group was
    never initialised: the ranks would silently train independent models.
    """
    if not distributed:
        return 0, 1
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise RuntimeError("distributed=True in a multi-process launch, but no process group is "
                           "initialised: call pygad.models.distributed.init_distributed() "
                           "first")
    return 0, 1


def _comm(t: torch.Tensor) -> torch.Tensor:
    """``t`` where the backend can reduce it (NCCL: on this rank's GPU)."""
    return t.cuda() if dist.get_backend() == "nccl" and t.device.type != "cuda" else t


def device_for_rank(device: Optional[str] = None) -> torch.device:
    """The device of this rank: ``cuda:LOCAL_RANK`` when CUDA is available (or asked for), else CPU."""
    if device is not None and not str(device).startswith("cuda"):
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if device is not None:
        raise RuntimeError(f"device {device!r} asked for, but CUDA is not available")
    return torch.device("cpu")


def init_distributed(backend: Optional[str] = None, init_method: Optional[str] = None,
                     rank: Optional[int] = None, world_size: Optional[int] = None,
                     timeout_s: float = 300.0) -> tuple[int, int]:
    """Join (or create) the default process group; returns ``(rank, world_size)``.

    Without ``init_method`` the rendezvous comes from the environment that ``torchrun`` sets
    (``MASTER_ADDR``, ``MASTER_PORT``, ``RANK``, ``WORLD_SIZE``). ``backend`` defaults to
    ``"nccl"`` when CUDA is available, else ``"gloo"``; with NCCL the current CUDA device is
    set to ``LOCAL_RANK``. A no-op returning the current group when already initialised.
    """
    if not dist.is_available():
        raise RuntimeError("this torch build has no torch.distributed")
    if dist.is_initialized():
        return rank_and_world()
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if init_method is None:
        init_method = "env://"
        if rank is None and "RANK" not in os.environ:
            raise RuntimeError("no rendezvous: launch with torchrun or pass init_method, rank "
                               "and world_size")
    if rank is None:
        rank = int(os.environ.get("RANK", "0"))
    if world_size is None:
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", str(rank))))
    dist.init_process_group(backend=backend, init_method=init_method, rank=rank,
                            world_size=world_size,
                            timeout=datetime.timedelta(seconds=timeout_s))
    return rank, world_size


def shutdown() -> None:
    """Destroy the default process group (if any)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shard_seeds(seeds, rank: Optional[int] = None, world_size: Optional[int] = None,
                shuffle: bool = False, seed: int = 0, drop_last: bool = True):
    """This rank's seeds: ``seeds[rank::world]`` in equal shards.

    Equal shards make the rank-averaged gradient equal the full-batch mean gradient:
    ``drop_last=True`` drops the last ``len(seeds) % world`` seeds, ``False`` pads by
    wrapping around (as ``DistributedSampler`` does; the padded seeds count twice).
    ``shuffle`` permutes with ``seed`` first (the same permutation on every rank; pass the
    epoch as ``seed`` to reshuffle each epoch). Accepts a NumPy array, a tensor or a list and
    returns the same kind (list -> NumPy).
    """
    r, w = rank_and_world()
    rank = r if rank is None else int(rank)
    world_size = w if world_size is None else int(world_size)
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} out of range for world_size {world_size}")
    is_tensor = isinstance(seeds, torch.Tensor)
    arr = seeds.cpu().numpy() if is_tensor else np.asarray(seeds)
    if arr.ndim != 1:
        raise ValueError(f"seeds must be 1-D, got shape {arr.shape}")
    if shuffle:
        arr = arr[np.random.default_rng(seed).permutation(arr.shape[0])]
    n = arr.shape[0]
    if drop_last:
        arr = arr[: n - n % world_size]
    elif n % world_size:
        arr = np.concatenate([arr, arr[: world_size - n % world_size]])
    out = np.ascontiguousarray(arr[rank::world_size])
    return torch.from_numpy(out).to(seeds.device) if is_tensor else out


@torch.no_grad()
def broadcast_parameters(module: nn.Module, src: int = 0) -> None:
    """Copy ``src``'s parameters and buffers to every rank (one flattened broadcast per dtype/device group)."""
    if rank_and_world()[1] == 1:
        return
    tensors = [t for t in list(module.parameters()) + list(module.buffers())]
    for group in _groups(tensors):
        flat = torch.cat([t.detach().reshape(-1) for t in group])
        dist.broadcast(flat, src)
        _unflatten_into(flat, group)


def _groups(tensors):
    out: dict = {}
    for t in tensors:
        out.setdefault((t.dtype, t.device), []).append(t)
    return list(out.values())


def _unflatten_into(flat, tensors):
    off = 0
    for t in tensors:
        n = t.numel()
        t.copy_(flat[off:off + n].view_as(t))
        off += n


@torch.no_grad()
def allreduce_gradients(params: Iterable[torch.nn.Parameter], average: bool = True) -> None:
    """Sum (``average``: mean) the gradients of ``params`` over ranks, in one flattened all-reduce per dtype/device.

    A parameter that has a gradient on some rank but not on this one counts as zero here
    (ranks whose subgraphs use different parameters still agree); one that has none on any
    rank keeps ``grad=None`` (the optimizer skips it, as in a single-process run).
    """
    _, world = rank_and_world()
    params = [p for p in params if p.requires_grad]
    if world == 1 or not params:
        return
    have = torch.tensor([0.0 if p.grad is None else 1.0 for p in params])
    if dist.get_backend() == "nccl":
        have = have.cuda()
    dist.all_reduce(have, op=dist.ReduceOp.MAX)
    used = []
    for p, h in zip(params, have.tolist()):
        if h > 0:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            used.append(p)
    params = used
    for group in _groups(params):
        flat = torch.cat([p.grad.reshape(-1) for p in group])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        if average:
            flat /= world
        _unflatten_into(flat, [p.grad for p in group])


def allreduce_mean(value) -> float:
    """Mean of a scalar (float or 0-d tensor) over ranks."""
    _, world = rank_and_world()
    t = torch.as_tensor(value, dtype=torch.float64).detach().reshape(1)
    if world == 1:
        return float(t)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t) / world


def allreduce_sum(values) -> list[float]:
    """Sums over ranks of a sequence of scalars, in float64 (one all-reduce); every rank gets the same values."""
    t = torch.as_tensor([float(v) for v in values], dtype=torch.float64)
    if rank_and_world()[1] > 1 and t.numel():
        t = _comm(t)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.cpu().tolist()


def broadcast_scalar(value, src: int = 0) -> float:
    """``src``'s value of a scalar on every rank.

    Decisions such as early stopping must be taken from one number, not from per-rank
    recomputations that may round differently.
    """
    t = torch.as_tensor(float(value), dtype=torch.float64).reshape(1)
    if rank_and_world()[1] > 1:
        t = _comm(t)
        dist.broadcast(t, src)
    return float(t.item())


def common_seed(seed: Optional[int]) -> int:
    """One integer seed shared by all ranks.

    ``seed`` itself (all ranks must pass the same one, checked), or when None a fresh one
    drawn on rank 0 and broadcast.
    """
    world = rank_and_world()[1]
    if seed is not None:
        seed = int(seed)
        if world > 1:
            t = _comm(torch.tensor([seed, -seed], dtype=torch.int64))
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            if int(t[0]) != seed or int(t[1]) != -seed:
                raise ValueError("ranks passed different random_state values; data-parallel "
                                 "training needs the same seed on every rank")
        return seed
    s = int(np.random.SeedSequence().entropy % 2**62)
    if world > 1:
        t = _comm(torch.tensor([s], dtype=torch.int64))
        dist.broadcast(t, 0)
        s = int(t.item())
    return s


def broadcast_tensor(t: torch.Tensor, src: int = 0, name: str = "tensor") -> torch.Tensor:
    """``src``'s copy of ``t`` on every rank.

    Same shape and dtype required, checked first, so a mismatch is a clear error on every rank
    rather than a hang or garbage.
    """
    _, world = rank_and_world()
    if world == 1:
        return t
    if t.dim() > 8:
        raise ValueError(f"'{name}' has {t.dim()} dimensions; at most 8 are supported")
    meta = [t.dim()] + list(t.shape) + [0] * (8 - t.dim()) + [zlib.crc32(str(t.dtype).encode())]
    mm = _comm(torch.tensor(meta + [-v for v in meta], dtype=torch.int64))
    dist.all_reduce(mm, op=dist.ReduceOp.MAX)
    n = len(meta)
    if mm[:n].tolist() != meta or (-mm[n:]).tolist() != meta:
        raise ValueError(f"'{name}' differs in shape or dtype between ranks (this rank: "
                         f"{list(t.shape)}, {t.dtype}); every rank must pass the same data")
    out = _comm(t.detach().clone().contiguous())
    dist.broadcast(out, src)
    return out.to(t.device)


@torch.no_grad()
def replicas_identical(module: nn.Module) -> bool:
    """True when every rank holds bit-identical parameters and buffers.

    Checked by comparing each rank's flattened state with rank 0's.
    """
    _, world = rank_and_world()
    if world == 1:
        return True
    ok = True
    for group in _groups(list(module.parameters()) + list(module.buffers())):
        flat = torch.cat([t.detach().reshape(-1) for t in group])
        ref = flat.clone()
        dist.broadcast(ref, 0)
        ok &= bool(torch.equal(flat.view(torch.uint8) if flat.dtype != torch.bool else flat,
                               ref.view(torch.uint8) if ref.dtype != torch.bool else ref))
    flag = torch.tensor([1.0 if ok else 0.0], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        flag = flag.cuda()
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item() == 1.0)


class DataParallelTrainer:
    """One optimizer step of data-parallel training per :meth:`step` call.

    Args:
        model: the replica on this rank (parameters are broadcast from rank 0 at
            construction, so replicas start identical).
        optimizer: its optimizer (every rank steps with the same averaged gradients).
        ddp: wrap the model in ``DistributedDataParallel`` (bucketed all-reduce overlapped
            with backward; ``find_unused_parameters=True`` because node types that are no
            relation's destination leave HGT parameters unused). Default False: one
            flattened all-reduce after backward, which also handles parameters a rank did
            not use.
        clip_grad_norm: optional max gradient norm, applied after the averaging (so every
            rank clips identically).
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, ddp: bool = False,
                 clip_grad_norm: Optional[float] = None):
        self.model = model
        self.optimizer = optimizer
        self.clip_grad_norm = clip_grad_norm
        self.rank, self.world_size = rank_and_world()
        broadcast_parameters(model)
        self.ddp = bool(ddp) and self.world_size > 1
        if self.ddp:
            from torch.nn.parallel import DistributedDataParallel
            p = next(model.parameters())
            ids = [p.device.index] if p.device.type == "cuda" else None
            self.module = DistributedDataParallel(model, device_ids=ids,
                                                  find_unused_parameters=True)
        else:
            self.module = model

    def step(self, loss_fn: Callable[[nn.Module], torch.Tensor]) -> float:
        """``loss_fn(module)`` -> this rank's mean loss over its shard.

        Backward, average the gradients over ranks, clip, step. Returns the mean loss over
        ranks.
        """
        self.module.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(self.module)
        loss.backward()
        if not self.ddp:
            allreduce_gradients(self.model.parameters())
        if self.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_grad_norm)
        self.optimizer.step()
        return allreduce_mean(loss.detach())
