"""Torch modules: the HGT encoder on pygad's fused heterogeneous attention, the GraphVAE decoders, the latent denoiser."""
from .decoders import FeatureDecoder, PairScorer, TimeDecoder
from .denoiser import LatentDenoiser
from .hgt import HGT, HGTConv, HeteroStructure, clear_structure_cache

__all__ = ["HGT", "HGTConv", "HeteroStructure", "LatentDenoiser", "FeatureDecoder", "PairScorer", "TimeDecoder",
           "clear_structure_cache"]
