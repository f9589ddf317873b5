"""pygad: graph and stream anomaly detection with a native C++/CUDA core.

Subpackages: ``pygad.ops`` (native kernels as torch ops), ``pygad.nn`` (HGT encoder),
``pygad.data``/``pygad.datasets`` (graphs and loaders), ``pygad.models`` (detectors,
augmenters), ``pygad.stream`` (clipped-SGD stream estimators), ``pygad.metrics``; the error
family (:class:`PygadError` and its subclasses) in ``pygad.errors``.
"""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import InvalidArchiveError, PygadError, PygadFileError, PygadTypeError, PygadValueError

try:
    from . import _C  # the compiled extension (C++17, OpenMP, optional CUDA)
except ImportError as exc:  # pragma: no cover - only on a broken or source-only checkout
    raise ImportError(
        "pygad's compiled extension pygad._C is missing. Install the package "
        "(`pip install .` or `pip install -e .`) and run Python outside the source folder "
        "(or with `python -P`) so the installed copy is imported."
    ) from exc

#: True when the extension was built with CUDA kernels (PYGAD_WITH_CUDA).
HAS_CUDA: bool = bool(_C.build_info()["cuda"])


def build_config() -> dict:
    """What the native extension was built with: compiler, OpenMP, CUDA and its architectures."""
    info = dict(_C.build_info())
    info["version"] = __version__
    return info


__all__ = ["HAS_CUDA", "build_config", "__version__", "PygadError", "PygadValueError", "PygadTypeError",
           "PygadFileError", "InvalidArchiveError"]
