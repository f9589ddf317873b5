"""Shared test fixtures: where the real datasets live, and how their absence is handled.

The datasets sit in ``../shared/data`` beside the checkout. A user's fresh clone has none:
tests that need them skip with a clear reason. CI sets ``PYGAD_REQUIRE_SHARED_DATA=1`` so a
missing folder fails loudly instead of skipping quietly.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        if os.environ.get("PYGAD_REQUIRE_SHARED_DATA") == "1":
            pytest.fail(f"PYGAD_REQUIRE_SHARED_DATA=1 but {SHARED_DATA} does not exist")
        pytest.skip(f"real datasets not found at {SHARED_DATA} (a fresh clone has no ../shared/data)")
    return SHARED_DATA


@pytest.fixture(scope="module")
def single_torch_thread():
    """One torch/OpenMP thread for a module of many tiny cases (fast on a shared machine);
    modules opt in with ``pytestmark = pytest.mark.usefixtures("single_torch_thread")``."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
