"""Real-time stream anomaly detection under drift: clipped-SGD estimators.

Implements Sankararaman & Narayanaswamy, "Online robust non-stationary estimation"
(NeurIPS 2023): clipped SGD on a strongly convex loss with learning rate ``lr * T**-alpha``
(doubling trick when the horizon is unknown) and a clip threshold adapted from the stream.

* :class:`ClippedSGDMean` - location + per-dimension scale; robust standardised distance.
* :class:`ClippedSGDForecaster` - the time-series detector: autoregressive forecast, change
  detection, novelty score.
* :class:`ClippedSGDSubspace` - robust streaming PCA (Oja-style): residual + in-subspace
  distance.
* :class:`ClippedSGDLinear` - least squares ``y`` given ``x``.
* :class:`ClippedSGDLogistic` - binary logistic regression.
* :class:`AdaptiveThreshold` - streaming quantile + margin turning scores into flags.

All estimators: ``learn_one/score_one/predict_one`` (river-style), ``learn_many/score_many/
process_many/predict_many`` (arrays, optional ``keys=`` for one state per key, processed in
parallel), ``state_dict/load_state_dict``, ``save/load``, ``to_bytes/from_bytes``, pickling.
Numba is imported on first use, not on import.
"""
from .estimators import (ClippedSGDForecaster, ClippedSGDLinear, ClippedSGDLogistic,
                         ClippedSGDMean, ClippedSGDSubspace)
from .threshold import AdaptiveThreshold

__all__ = ["ClippedSGDMean", "ClippedSGDForecaster", "ClippedSGDSubspace", "ClippedSGDLinear",
           "ClippedSGDLogistic", "AdaptiveThreshold"]
