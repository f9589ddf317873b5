"""The detectors and augmenters known by name: one registry for the CLI, the demo and the harness.

* :data:`DETECTORS`: name -> factory ``(seed, device="cpu", verbose=True, **kwargs) -> detector``
  with ``fit(graph, train_mask, val_mask)`` and ``decision_function(graph)``.
* :data:`AUGMENTERS`: name -> factory ``(seed, **settings) -> augmenter`` (or None for
  ``"none"``) with ``augment(graph, train_mask) -> (graph, train_mask)``. An augmenter may append
  synthetic nodes of the target type *after* the original ones; it must not reorder or relabel
  those, nor touch validation/test nodes. Settings (e.g. ``ratio``) are passed only when a
  caller gives some, so a plug-in factory may take the seed alone.

Add your own with :func:`register_detector` and :func:`register_augmenter`; they then work
with ``pygad evaluate --detector/--augment NAME`` and :func:`pygad.evaluation.run_evaluation`.

Importing this module costs nothing: torch and the models load when a factory is called.

Examples:
    >>> from pygad.registry import make_augmenter
    >>> aug = make_augmenter("smote", 0, ratio=2)          # doctest: +SKIP
    >>> graph2, train2 = aug.augment(graph, train_mask)    # doctest: +SKIP
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional


# ---- detectors -------------------------------------------------------------------------------
def _gnn(seed, device="cpu", verbose=True, **kw):
    from .models import GNNDetector
    return GNNDetector(random_state=seed, device=device, verbose=verbose, **kw)


def _trees(seed, device="cpu", verbose=True, **kw):
    from .models import TreeDetector
    return TreeDetector(random_state=seed, device=device, **kw)


def _feature(seed, device="cpu", verbose=True, **kw):
    from .models import FeatureOnlyDetector
    return FeatureOnlyDetector(random_state=seed, device=device, **kw)


#: detector name -> factory(seed, device=..., verbose=..., **kwargs); ``gnn``: HGT encoder + MLP
#: head; ``trees``: gradient-boosted trees on multi-hop neighbour aggregates; ``feature``: the
#: same trees on node features only
DETECTORS: Dict[str, Callable[..., Any]] = {"gnn": _gnn, "trees": _trees, "feature": _feature}


def register_detector(name: str, factory: Callable[..., Any]) -> None:
    """Make detector ``name`` available: ``factory(seed, device=..., verbose=..., **kwargs)``."""
    DETECTORS[name] = factory


def make_detector(name: str, seed: int, device: str = "cpu", verbose: bool = True, **kwargs):
    """The detector registered as ``name``, seeded with ``seed``.

    Raises:
        ValueError: for an unknown name.
    """
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; choose one of {sorted(DETECTORS)}")
    return DETECTORS[name](seed, device=device, verbose=verbose, **kwargs)


# ---- augmenters ------------------------------------------------------------------------------
#: the class-balancing baselines (``pygad.models.augment``)
BASELINE_AUGMENTERS = ("oversample", "smote", "mixup")
#: the generative augmenters: the VAE alone (latents from training anomalies' posteriors) and
#: the full latent-diffusion model
GENERATIVE_AUGMENTERS = ("vae", "diffusion")


def _model_augmenter(name: str) -> Callable[..., Any]:
    def factory(seed=None, **settings):
        from .models import augment as A
        if name == "diffusion":
            return A.LatentDiffusionAugmenter(random_state=seed, **settings)
        if name == "vae":  # the same model, latents from the VAE posteriors (no diffusion prior)
            return A.LatentDiffusionAugmenter._configured(A._Ablation(diffusion=False), random_state=seed,
                                                          **settings)
        classes = {"oversample": A.RandomOversampler, "smote": A.SMOTEAugmenter, "mixup": A.MixupAugmenter}
        return classes[name](random_state=seed, **settings)
    factory.__name__ = factory.__qualname__ = f"make_{name}"
    return factory


#: augmenter name -> factory(seed, **settings) returning an object with augment(graph, train_mask),
#: or None (``"none"``: the training graph as it is)
AUGMENTERS: Dict[str, Callable[..., Any]] = {"none": lambda seed=None: None}
for _name in BASELINE_AUGMENTERS + GENERATIVE_AUGMENTERS:
    AUGMENTERS[_name] = _model_augmenter(_name)
del _name


def _auto(seed=None, **settings):
    from .models.auto_augment import AutoAugmenter
    return AutoAugmenter(random_state=seed, **settings)


#: ``auto``: fit the detector with and without ``diffusion`` and keep the one with the higher
#: validation AP (the harness runs it; settings go to the candidate, ``candidate=`` picks it)
AUGMENTERS["auto"] = _auto


def register_augmenter(name: str, factory: Callable[..., Any]) -> None:
    """Make augmenter ``name`` available (e.g. ``pygad evaluate --augment NAME``).

    ``factory(seed)`` returns an augmenter (or None); it must also accept keyword settings if
    it is to be used with settings (``augment_kwargs``, ``--augment-ratio``).
    """
    AUGMENTERS[name] = factory


def make_augmenter(name: str, random_state: Optional[int] = None, **settings):
    """The augmenter registered as ``name``, seeded with ``random_state``.

    Args:
        name: a key of :data:`AUGMENTERS`: ``none`` (returns None), ``oversample``, ``smote``,
            ``mixup``, ``vae``, ``diffusion``, ``auto`` (diffusion only where validation AP
            improves; see :mod:`pygad.models.auto_augment`), or a registered plug-in.
        random_state: seed of the augmenter.
        **settings: constructor arguments (e.g. ``ratio=3``, ``n_synthetic=50``,
            ``vae_epochs=50``).

    Raises:
        ValueError: for an unknown name, or settings given with ``none``.
    """
    if name not in AUGMENTERS:
        raise ValueError(f"unknown augmentation {name!r}; choose one of {sorted(AUGMENTERS)}")
    if not settings:
        return AUGMENTERS[name](random_state)
    if name == "none":
        raise ValueError(f"augmenter settings {sorted(settings)} given without an augmentation (augment='none')")
    return AUGMENTERS[name](random_state, **settings)


__all__ = ["DETECTORS", "AUGMENTERS", "BASELINE_AUGMENTERS", "GENERATIVE_AUGMENTERS", "register_detector",
           "register_augmenter", "make_detector", "make_augmenter"]
