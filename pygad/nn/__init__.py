"""Torch modules: the HGT encoder on pygad's fused heterogeneous attention, the latent denoiser."""
from .denoiser import LatentDenoiser
from .hgt import HGT, HGTConv, HeteroStructure, clear_structure_cache

__all__ = ["HGT", "HGTConv", "HeteroStructure", "LatentDenoiser", "clear_structure_cache"]
