"""Checks of command-line arguments, shared by every ``pygad`` subcommand.

Each raises a :mod:`pygad.errors` exception whose message is one line naming the flag, so the
command can print it and exit 2 before any work starts (a bad output path is found before a
long run, not after it). Cheap to import: torch is imported only by :func:`check_device`.
"""
from __future__ import annotations

import os
from typing import Optional

from .errors import PygadFileError, PygadValueError

__all__ = ["check_device", "check_writable_path", "parse_int_list", "check_int_range", "check_readable_file"]


def check_device(device: str, flag: str = "--device") -> str:
    """``device`` as a torch device string that exists on this machine (``cpu``, ``cuda``, ``cuda:N``).

    Raises PygadValueError for anything else (``toaster``, ``cuda:7`` on a machine with
    fewer GPUs, ``cuda`` without one, devices pygad has no kernels for).
    """
    import torch
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise PygadValueError(f"{flag} {device!r} is not a device; use cpu, cuda or cuda:N") from None
    if dev.type == "cpu":
        return "cpu"
    if dev.type != "cuda":
        raise PygadValueError(f"{flag} {device!r}: pygad runs on cpu or cuda, not {dev.type}")
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n == 0:
        raise PygadValueError(f"{flag} {device!r}: no CUDA device is available on this machine")
    if dev.index is not None and dev.index >= n:
        raise PygadValueError(f"{flag} {device!r}: there is no CUDA device {dev.index} "
                              f"({n} available: cuda:0..cuda:{n - 1})")
    import pygad
    if not pygad.HAS_CUDA:
        raise PygadValueError(f"{flag} {device!r}: this pygad was built without CUDA kernels "
                              "(reinstall with PYGAD_WITH_CUDA=ON)")
    return str(dev)


def check_writable_path(path, flag: str, *, directory: bool = False) -> str:
    """A path the command will write (a file, or with ``directory`` a folder it creates or fills).

    Its parent folder exists and is writable, and an existing target is of the right kind
    and writable. Raises PygadFileError naming the flag and the path.
    """
    p = os.fspath(path)
    if not p:
        raise PygadFileError(f"{flag}: empty path", p)
    parent = os.path.dirname(os.path.abspath(p))
    if os.path.exists(p):
        if directory and not os.path.isdir(p):
            raise PygadFileError(f"{flag} {p}: exists and is not a folder", p)
        if not directory and os.path.isdir(p):
            raise PygadFileError(f"{flag} {p}: is a folder, not a file", p)
        if not os.access(p, os.W_OK):
            raise PygadFileError(f"{flag} {p}: not writable", p)
        return p
    if not os.path.isdir(parent):
        raise PygadFileError(f"{flag} {p}: the folder {parent} does not exist", p)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PygadFileError(f"{flag} {p}: the folder {parent} is not writable", p)
    return p


def check_readable_file(path, flag: str) -> str:
    """An input file that exists, is a file and can be read. Raises PygadFileError."""
    p = os.fspath(path)
    if not os.path.exists(p):
        raise PygadFileError(f"{flag} {p}: no such file", p)
    if os.path.isdir(p):
        raise PygadFileError(f"{flag} {p}: is a folder, not a file", p)
    if not os.access(p, os.R_OK):
        raise PygadFileError(f"{flag} {p}: not readable", p)
    return p


def parse_int_list(text: str, flag: str, *, low: Optional[int] = None, high: Optional[int] = None) -> tuple:
    """``"0,1,7"`` -> ``(0, 1, 7)``: a non-empty comma-separated list of ints, each in ``[low, high]`` where given.

    Raises PygadValueError naming the flag.
    """
    rng = "" if low is None and high is None else f" in [{'-inf' if low is None else low}, " \
                                                  f"{'inf' if high is None else high}]"
    try:
        out = tuple(int(s) for s in str(text).split(","))
    except ValueError:
        raise PygadValueError(f"{flag} must be comma-separated integers{rng}, got {text!r}") from None
    if not out or any((low is not None and v < low) or (high is not None and v > high) for v in out):
        raise PygadValueError(f"{flag} must be comma-separated integers{rng}, got {text!r}")
    return out


def check_int_range(value: int, flag: str, *, low: Optional[int] = None, high: Optional[int] = None) -> int:
    """An int flag within ``[low, high]``. Raises PygadValueError naming the flag."""
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise PygadValueError(f"{flag} must be in [{lo}, {hi}], got {value}")
    return value
