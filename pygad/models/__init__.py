"""Models: supervised detectors, the graph VAE, latent diffusion and the augmenters.

Detectors follow the scikit-learn/PyGOD contract (see :mod:`pygad.models.detectors`);
augmenters share ``fit(graph, train_mask)`` / ``augment(graph, train_mask)`` (see
:mod:`pygad.models.augment`).
"""
from .augment import (LatentDiffusionAugmenter, MixupAugmenter, RandomOversampler, SMOTEAugmenter,
                      SyntheticNodes)
from .detectors import FeatureOnlyDetector, GNNDetector, TreeDetector, load_detector, neighbor_features
from .diffusion import LatentDiffusion, karras_sigmas
from .vae import GraphVAE

__all__ = ["GNNDetector", "TreeDetector", "FeatureOnlyDetector", "neighbor_features", "load_detector", "GraphVAE",
           "LatentDiffusion", "karras_sigmas", "LatentDiffusionAugmenter", "RandomOversampler",
           "SMOTEAugmenter", "MixupAugmenter", "SyntheticNodes"]
