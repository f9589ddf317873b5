"""Torch modules: the HGT encoder on pygad's fused heterogeneous attention."""
from .hgt import HGT, HGTConv, HeteroStructure, clear_structure_cache

__all__ = ["HGT", "HGTConv", "HeteroStructure", "clear_structure_cache"]
