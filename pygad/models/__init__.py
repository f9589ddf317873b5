"""Models: supervised detectors (and, later, the generative augmenter's parts).

Detectors follow the scikit-learn/PyGOD contract; see :mod:`pygad.models.detectors`.
"""
from .detectors import FeatureOnlyDetector, GNNDetector, TreeDetector, neighbor_features

__all__ = ["GNNDetector", "TreeDetector", "FeatureOnlyDetector", "neighbor_features"]
from .augment import (LatentDiffusionAugmenter, MixupAugmenter, RandomOversampler, SMOTEAugmenter,  # noqa: E402
                      SyntheticNodes)
from .vae import GraphVAE  # noqa: E402

__all__ += ["GraphVAE", "LatentDiffusionAugmenter", "RandomOversampler", "SMOTEAugmenter", "MixupAugmenter",
            "SyntheticNodes"]
