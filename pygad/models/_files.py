"""Reading saved model folders (``config.json`` + ``weights.pt``) with errors that name the file.

``weights.pt`` is read with ``torch.load(weights_only=True)``: a file holding anything but
tensors and plain containers is refused and never executed. The refusal is reported as "not a
pygad model file" (torch's own message suggests ``weights_only=False``, which would execute
whatever the file holds: never the right advice for a file of unknown origin).
"""
from __future__ import annotations

import contextlib
import json
import os
import pickle
import warnings
import zipfile

from ..errors import InvalidArchiveError, PygadError, PygadFileError


def read_config(folder, fmt: str, what: str) -> dict:
    """``folder/config.json`` as a dict whose ``format`` is ``fmt`` (a saved ``what``)."""
    path = os.path.join(os.fspath(folder), "config.json")
    if not os.path.isfile(path):
        raise PygadFileError(f"{path}: no such file (is {os.fspath(folder)!r} a folder written by "
                             f"{what}.save?)", path)
    try:
        with open(path, encoding="utf-8") as fh:
            cfg = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidArchiveError(f"{path}: not valid JSON ({exc})", path) from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("params"), dict):
        raise InvalidArchiveError(f"{path}: not a saved {what} (expected an object with 'format' and 'params')",
                                  path)
    if cfg.get("format") != fmt:
        raise InvalidArchiveError(f"{path}: not a saved {what} (format {cfg.get('format')!r}, expected {fmt!r})",
                                  path)
    return cfg


def read_weights(folder) -> dict:
    """``folder/weights.pt``: a dict of tensors, loaded without executing anything."""
    import torch

    path = os.path.join(os.fspath(folder), "weights.pt")
    if not os.path.isfile(path):
        raise PygadFileError(f"{path}: no such file", path)
    try:
        with warnings.catch_warnings():   # torch warns about pickle protocols before refusing
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError, TypeError,
            AttributeError, ImportError, KeyError, IndexError, OSError):
        # `from None`: torch's message advises weights_only=False, i.e. running the file's code
        raise InvalidArchiveError(f"{path}: not a pygad model file (expected tensors saved by pygad; the file "
                                  "is truncated, corrupt, or holds Python objects, which pygad does not load)",
                                  path) from None
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise InvalidArchiveError(f"{path}: not a pygad model file (not a dict of named tensors)", path)
    return state


@contextlib.contextmanager
def rebuilding(folder):
    """Turn errors while rebuilding a model from a folder into InvalidArchiveError.

    Errors while rebuilding a model from a folder's config and weights (missing keys, wrong
    parameter names, tensors of the wrong shape) become InvalidArchiveError naming the folder.
    """
    try:
        yield
    except PygadError:
        raise
    except (KeyError, TypeError, IndexError, RuntimeError, AttributeError) as exc:
        raise InvalidArchiveError(f"{os.fspath(folder)}: config.json and weights.pt do not describe a valid model "
                                  f"({type(exc).__name__}: {exc})", os.fspath(folder)) from None
