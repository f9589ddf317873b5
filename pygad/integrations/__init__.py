"""Adapters that run pygad inside engines users already operate.

* :mod:`pygad.integrations.spark` - keyed stream estimators in Spark Structured Streaming
  (one estimator per key in Spark's keyed state; extra ``pygad[spark]``).
* :mod:`pygad.integrations.kafka` - a confluent-kafka consumer loop that scores records per
  key, produces scores/flags, and checkpoints estimator state with the input offsets
  (extra ``pygad[kafka]``).

Nothing here is imported by ``import pygad``; each module imports its engine on first use
and raises an ``ImportError`` naming the extra to install when it is missing.
"""
from __future__ import annotations

import importlib

__all__ = ["spark", "kafka", "clone_estimator"]


def require_engine(module: str, extra: str, needs: str):
    """Import an optional engine package, or raise ImportError naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"pygad.integrations.{extra} needs {needs}: pip install 'pygad[{extra}]'") from exc


def clone_estimator(template):
    """A fresh, unfitted estimator with the parameters of ``template``.

    ``template`` is a stream estimator instance (its parameters are copied, never its state),
    an estimator class, or a zero-argument factory.
    """
    if isinstance(template, type):
        return template()
    if hasattr(template, "get_params") and hasattr(template, "to_bytes"):
        return type(template)(**template.get_params())
    if callable(template):
        return template()
    raise TypeError("estimator must be a pygad stream estimator, its class, or a factory; "
                    f"got {type(template).__name__}")


def thresholds_before(estimator, keys=None, n=None):
    """Per-row adaptive thresholds of ``keys`` (or of the un-keyed stream, ``n`` rows) in the estimator's current state.

    ``inf`` for unseen or warming-up keys (no flag).

    The adapters flag a row when its prequential score exceeds its key's threshold as of
    the start of the batch (thresholds are frozen within a batch, updated after it).
    """
    import numpy as np
    if keys is None:
        try:
            t = estimator.threshold_
        except AttributeError:          # nothing learned yet
            t = float("inf")
        return np.full(n, t)
    uniq, inv = np.unique(np.asarray(keys), return_inverse=True)
    th = np.empty(len(uniq))
    for i, k in enumerate(uniq):
        try:
            th[i] = estimator.key_state(k.item() if hasattr(k, "item") else k)["threshold"]
        except (KeyError, AttributeError):
            th[i] = np.inf
    return th[inv.reshape(-1)]
