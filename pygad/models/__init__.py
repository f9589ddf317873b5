"""Models: supervised detectors (and, later, the generative augmenter's parts).

Detectors follow the scikit-learn/PyGOD contract; see :mod:`pygad.models.detectors`.
"""
from .detectors import FeatureOnlyDetector, GNNDetector, TreeDetector, neighbor_features

__all__ = ["GNNDetector", "TreeDetector", "FeatureOnlyDetector", "neighbor_features"]
