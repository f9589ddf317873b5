"""Test helpers: the devices to run on and the real datasets (needs pytest).

* :data:`DEVICES` / :func:`with_devices`: parametrise a test over ``"cpu"`` and, when torch
  sees a GPU and this build of pygad has CUDA kernels, ``"cuda"`` (a test gets a ``device``
  argument); :data:`requires_cuda` skips a test without them.
* :func:`shared_data` / :func:`dataset_path`: the folder of real datasets used by quality
  tests (``$PYGAD_SHARED_DATA``, else ``../shared/data`` from the working directory). A fresh
  clone has none: the test skips with the reason, unless ``PYGAD_REQUIRE_SHARED_DATA=1`` (as
  in CI), when it fails.

Examples:
    >>> from pygad.testing import dataset_path, with_devices
    >>> @with_devices
    ... def test_forward(device):
    ...     ...
    >>> def test_on_reddit():
    ...     path = dataset_path("reddit.npz")    # skips (or fails in CI) if it is missing
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest


def cuda_available() -> bool:
    """True when torch sees a CUDA device and pygad was built with CUDA kernels."""
    import torch

    import pygad

    return bool(torch.cuda.is_available() and pygad.HAS_CUDA)


#: the devices tests run on: ``["cpu"]``, plus ``"cuda"`` when :func:`cuda_available`
DEVICES = ["cpu"] + (["cuda"] if cuda_available() else [])

#: skip marker for tests that need a CUDA device and a CUDA build
requires_cuda = pytest.mark.skipif(
    not cuda_available(), reason="needs a CUDA device and a CUDA build of pygad "
                                 "(torch.cuda.is_available() and pygad.HAS_CUDA)")


def with_devices(test):
    """Run ``test(device, ...)`` once per entry of :data:`DEVICES` (ids ``cpu``, ``cuda``)."""
    return pytest.mark.parametrize("device", DEVICES)(test)


def _data_root() -> Path:
    env = os.environ.get("PYGAD_SHARED_DATA")
    return Path(env) if env else Path.cwd().resolve().parent / "shared" / "data"


def _missing(what: str) -> None:
    if os.environ.get("PYGAD_REQUIRE_SHARED_DATA") == "1":
        pytest.fail(f"PYGAD_REQUIRE_SHARED_DATA=1 but {what} does not exist")
    pytest.skip(f"real datasets not found: {what} (a fresh clone has no ../shared/data; "
                "set PYGAD_SHARED_DATA to the folder)")


def shared_data() -> Path:
    """The real-datasets folder; skips the calling test (fails it in CI) when it is missing."""
    root = _data_root()
    if not root.is_dir():
        _missing(str(root))
    return root


def dataset_path(*parts: str) -> Path:
    """A file (or folder) inside :func:`shared_data`, e.g. ``dataset_path("reddit.npz")`` or ``dataset_path("nab")``.

    Skips (fails in CI) when it is missing.
    """
    path = shared_data().joinpath(*parts)
    if not path.exists():
        _missing(str(path))
    return path


__all__ = ["DEVICES", "cuda_available", "requires_cuda", "with_devices", "shared_data", "dataset_path"]
