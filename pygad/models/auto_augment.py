"""The ``auto`` augmentation: augment only where the validation split says it helps.

Rule (per split and seed): fit the detector twice, on the training graph as it is and on the
graph augmented by the candidate augmenter (default ``diffusion``); score the *real*
validation nodes with each and keep the detector with the higher validation **average
precision** (AP; ties keep no augmentation). So on validation the chosen detector is never
worse than the one without augmentation, by construction. The price is a second detector fit
plus the augmenter fit, and a choice made on a small validation set can still be wrong on
test (the few-label protocols have as many validation labels as training labels).

Used through the harness (:func:`pygad.evaluation.run_evaluation` with ``augment="auto"``,
``pygad evaluate --augment auto``), which hands it the split and a detector factory; each run
records the chosen option (``augment_chosen``) and both validation APs (``val_ap``).
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from ..errors import PygadValueError
from ..metrics import average_precision

__all__ = ["AutoAugmenter"]


class AutoAugmenter:
    """Choose between no augmentation and ``candidate`` by validation AP of the given detector.

    Args:
        candidate: name of the augmenter tried (a key of :data:`pygad.registry.AUGMENTERS`).
        random_state: seed of the candidate augmenter.
        **settings: the candidate's settings (e.g. ``ratio=3``, ``vae_epochs=50``).

    Examples:
        >>> from pygad.registry import make_augmenter, make_detector
        >>> auto = make_augmenter("auto", 0)                                    # doctest: +SKIP
        >>> det, g_fit, info = auto.choose(graph, tr, va, lambda: make_detector("trees", 0))  # doctest: +SKIP
        >>> info["chosen"], info["val_ap"]                                      # doctest: +SKIP
        ('diffusion', {'none': 0.41, 'diffusion': 0.47})
    """

    def __init__(self, candidate: str = "diffusion", random_state: Optional[int] = None, **settings):
        if candidate in ("auto", "none"):
            raise PygadValueError(f"'candidate' must be an augmenter other than 'auto' and 'none', got {candidate!r}")
        self.candidate = candidate
        self.random_state = random_state
        self.settings = settings

    def choose(self, graph, train_mask, val_mask, new_detector: Callable[[], object], target: Optional[str] = None):
        """Fit ``new_detector()`` with and without the candidate augmentation; keep the better.

        Args:
            graph: the :class:`~pygad.data.HeteroGraph`.
            train_mask: boolean training mask of the target nodes.
            val_mask: boolean validation mask (must hold anomalies and normal nodes).
            new_detector: a callable returning an unfitted detector (``fit(graph, train, val)``,
                ``decision_function(graph)``).
            target: the target node type (default: the graph's labelled one).

        Returns:
            ``(detector, fit_graph, info)``: the fitted detector chosen, the graph it was fitted
            on (score it with this graph), and ``{"chosen": "none" | candidate, "val_ap":
            {"none": ap, candidate: ap}, "metric": "ap"}``.

        Raises:
            PygadValueError: without a validation split holding both classes.
        """
        from ..registry import make_augmenter

        tgt = graph.target_type(target)
        y = graph.y[tgt]
        n = graph.num_nodes[tgt]
        if val_mask is None:
            raise PygadValueError("augment='auto' needs a validation split; this split has none (use the "
                                  "stratified or a few-label protocol)")
        va = np.asarray(val_mask, dtype=bool)
        yv = y[va]
        if not ((yv == 1).any() and (yv == 0).any()):
            raise PygadValueError("augment='auto' needs validation anomalies and normal nodes to choose by AP; "
                                  f"the validation split has {int((yv == 1).sum())} anomalies of {int(va.sum())}")

        def val_ap(det, g):
            return average_precision(yv, np.asarray(det.decision_function(g))[:n][va])

        det0 = new_detector()
        det0.fit(graph, train_mask, va)
        ap0 = val_ap(det0, graph)
        aug = make_augmenter(self.candidate, self.random_state, **self.settings)
        g1, tr1 = aug.augment(graph, train_mask)
        n1 = g1.num_nodes[tgt]
        va1 = np.concatenate([va, np.zeros(n1 - n, dtype=bool)]) if n1 > n else va
        det1 = new_detector()
        det1.fit(g1, tr1, va1)
        ap1 = val_ap(det1, g1)
        info = {"metric": "ap", "val_ap": {"none": float(ap0), self.candidate: float(ap1)}}
        if ap1 > ap0:  # strictly better on validation, else keep the plain detector
            return det1, g1, dict(info, chosen=self.candidate)
        return det0, graph, dict(info, chosen="none")

    def augment(self, graph, train_mask):
        """Refused: ``auto`` needs the detector and the validation split to choose."""
        raise PygadValueError("augment='auto' chooses with the detector on the validation split: use it through "
                              "pygad.evaluation.run_evaluation or `pygad evaluate --augment auto`")
