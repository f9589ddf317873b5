"""How Python hands arrays to the native kernels.

The extension never sees a torch tensor: each array crosses the boundary as the descriptor
``(data_ptr, dtype, shape, device)`` (device -1 = CPU), plus the thread count and the CUDA
stream handle as plain integers. The native side checks shapes, dtypes, devices and index
ranges and raises ValueError/TypeError naming the argument.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

import pygad
from pygad import _C

_DTYPES = {torch.float32: "float32", torch.float64: "float64", torch.int64: "int64",
           torch.int32: "int32", torch.uint8: "uint8"}


def desc(a: Any) -> tuple:
    """The native descriptor of a contiguous torch tensor or NumPy array."""
    if isinstance(a, torch.Tensor):
        dtype = _DTYPES.get(a.dtype, str(a.dtype).removeprefix("torch."))
        device = a.device.index if a.is_cuda else -1
        if a.is_cuda and device is None:
            device = torch.cuda.current_device()
        return (a.data_ptr(), dtype, tuple(a.shape), device)
    if isinstance(a, np.ndarray):
        return (a.ctypes.data, a.dtype.name, tuple(a.shape), -1)
    raise TypeError(f"expected a torch.Tensor or numpy.ndarray, got {type(a).__name__}")


def threads() -> int:
    """Threads for CPU kernels: the same count torch uses (torch.set_num_threads)."""
    return torch.get_num_threads()


def stream(t: torch.Tensor) -> int:
    """The current CUDA stream handle for a CUDA tensor, 0 (unused) otherwise."""
    if isinstance(t, torch.Tensor) and t.is_cuda:
        return torch.cuda.current_stream(t.device).cuda_stream
    return 0


def as_tensor(a: Any, name: str, *, dtype: torch.dtype | None = None, floating: bool = False) -> torch.Tensor:
    """Check and convert one argument to a contiguous tensor (NumPy arrays are wrapped, not copied).

    Raises TypeError naming ``name`` for a wrong type or dtype, ValueError for a CUDA tensor on a
    CPU-only build.
    """
    if isinstance(a, np.ndarray):
        a = torch.from_numpy(np.ascontiguousarray(a))
    if not isinstance(a, torch.Tensor):
        raise TypeError(f"'{name}' must be a torch.Tensor or numpy.ndarray, got {type(a).__name__}")
    if floating and a.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"'{name}' must be float32 or float64, got {a.dtype}")
    if dtype is not None and a.dtype != dtype:
        raise TypeError(f"'{name}' must have dtype {dtype}, got {a.dtype}")
    if a.is_cuda and not pygad.HAS_CUDA:
        raise ValueError(f"'{name}' is a CUDA tensor but pygad was built without CUDA "
                         "(reinstall with PYGAD_WITH_CUDA=ON)")
    if a.device.type not in ("cpu", "cuda", "meta"):
        raise ValueError(f"'{name}' is on unsupported device {a.device}")
    return a.contiguous()


__all__ = ["desc", "threads", "stream", "as_tensor", "_C"]
