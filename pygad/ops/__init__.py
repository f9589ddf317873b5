"""Native kernels as torch ops (``torch.library`` custom ops with autograd and fake kernels).

Every op has a pure-torch twin in :mod:`pygad.ops._reference` used by tests and as the
``impl="reference"`` path of the modules.
"""
from .attention import hetero_attention
from .csr import csr_transpose, hetero_csr
from .diffusion_step import edm_heun, edm_loss, edm_noise, edm_precondition, edm_step
from .sampling import NeighborSampler, neighbor_sample
from .segment import neighbor_aggregate, segment_softmax, segment_sum

__all__ = ["hetero_attention", "hetero_csr", "csr_transpose", "segment_sum", "segment_softmax",
           "neighbor_aggregate", "edm_precondition", "edm_step", "edm_heun", "edm_noise", "edm_loss",
           "neighbor_sample", "NeighborSampler"]
