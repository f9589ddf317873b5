"""How Python hands arrays to the native kernels.

The extension never sees a torch tensor: each array crosses the boundary as the descriptor
``(data_ptr, dtype, shape, device)`` (device -1 = CPU), plus the thread count and the CUDA
stream handle as plain integers. The native side checks shapes, dtypes, devices and index
ranges and raises :class:`pygad.PygadValueError` / :class:`pygad.PygadTypeError` naming the
argument. What the wrappers must allocate before the native call (outputs sized by a count or
by an input's shape) is checked here first, so a bad count is a named error too, never a
torch allocation error.
"""
from __future__ import annotations

import operator
from typing import Any

import numpy as np
import torch

import pygad
from pygad import _C
from pygad.errors import PygadTypeError, PygadValueError

_INT64_MAX = 2**63 - 1

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
    raise PygadTypeError(f"expected a torch.Tensor or numpy.ndarray, got {type(a).__name__}")


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

    Raises PygadTypeError naming ``name`` for a wrong type or dtype (object, complex or other
    arrays torch cannot wrap included), PygadValueError for a CUDA tensor on a CPU-only build.
    """
    if isinstance(a, np.ndarray):
        if a.dtype.kind not in "biuf":
            raise PygadTypeError(f"'{name}' must be a numeric array (int or float), got NumPy dtype {a.dtype}")
        try:
            a = torch.from_numpy(np.ascontiguousarray(a))
        except TypeError as exc:   # e.g. uint16/uint32 on older torch
            raise PygadTypeError(f"'{name}' has NumPy dtype {a.dtype}, which torch cannot wrap") from exc
    if not isinstance(a, torch.Tensor):
        raise PygadTypeError(f"'{name}' must be a torch.Tensor or numpy.ndarray, got {type(a).__name__}")
    if floating and a.dtype not in (torch.float32, torch.float64):
        raise PygadTypeError(f"'{name}' must be float32 or float64, got {a.dtype}")
    if dtype is not None and a.dtype != dtype:
        raise PygadTypeError(f"'{name}' must have dtype {dtype}, got {a.dtype}")
    if a.is_cuda and not pygad.HAS_CUDA:
        raise PygadValueError(f"'{name}' is a CUDA tensor but pygad was built without CUDA "
                              "(reinstall with PYGAD_WITH_CUDA=ON)")
    if a.device.type not in ("cpu", "cuda", "meta"):
        raise PygadValueError(f"'{name}' is on unsupported device {a.device}")
    return a.contiguous()


def check_count(v: Any, name: str, *, low: int = 0, high: int = _INT64_MAX) -> int:
    """An integer argument (a count, a size, a repeat) as a Python int in ``[low, high]``.

    Raises PygadTypeError for a non-integer (floats, bools, strings), PygadValueError naming
    ``name`` outside the range (by default the non-negative int64 range).
    """
    if isinstance(v, bool):
        raise PygadTypeError(f"'{name}' must be an int, got {v!r}")
    try:
        n = operator.index(v)
    except TypeError:
        raise PygadTypeError(f"'{name}' must be an int, got {type(v).__name__} {v!r}") from None
    if not low <= n <= high:
        raise PygadValueError(f"'{name}' must be an int in [{low}, {high}], got {n}")
    return n


def check_ndim(t: torch.Tensor, name: str, ndim: int, shape: str, *, min_rows: int = 0) -> None:
    """Check that ``t`` has ``ndim`` dimensions and at least ``min_rows`` rows.

    ``t`` has ``ndim`` dimensions (``shape`` says which, e.g. ``"[E, F]"``) and at least
    ``min_rows`` entries along dim 0 (a CSR pointer has at least one).
    """
    if t.dim() != ndim or (ndim and t.shape[0] < min_rows):
        raise PygadValueError(f"'{name}' must have shape {shape}, got {list(t.shape)}")


def check_alloc(name: str, value: Any, *shape: int) -> None:
    """An output of ``shape`` sized by argument ``name`` must fit int64 elements.

    A clear error instead of torch's allocation failure or a wrapped-around size.
    """
    n = 1
    for s in shape:
        n *= int(s)
    if n > _INT64_MAX // 8:
        raise PygadValueError(f"'{name}' = {value} asks for an output of shape {list(shape)} "
                              f"({n} elements), more than can be addressed")


def new_empty(like: torch.Tensor, shape: tuple, name: str, value: Any, dtype: torch.dtype | None = None):
    """``like.new_empty(shape)`` for an output sized by argument ``name``.

    A size that cannot be allocated is a PygadValueError naming the argument, not torch's
    allocator error.
    """
    check_alloc(name, value, *shape)
    try:
        return like.new_empty(shape, dtype=dtype)
    except (RuntimeError, MemoryError) as exc:
        raise PygadValueError(f"'{name}' = {value} needs an output of shape {list(shape)}, which cannot be "
                              f"allocated ({str(exc).splitlines()[0]})") from None


__all__ = ["desc", "threads", "stream", "as_tensor", "check_count", "check_ndim", "check_alloc", "new_empty", "_C"]
