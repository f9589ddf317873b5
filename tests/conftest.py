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


# pygad.testing finds the real datasets through this variable, wherever pytest is started
os.environ.setdefault("PYGAD_SHARED_DATA", str(SHARED_DATA))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real-datasets folder (skips, or fails under PYGAD_REQUIRE_SHARED_DATA=1, without it)."""
    from pygad.testing import shared_data as _shared_data

    return _shared_data()


@pytest.fixture(scope="module")
def single_torch_thread():
    """One torch/OpenMP thread for a module of many tiny cases (fast on a shared machine);
    modules opt in with ``pytestmark = pytest.mark.usefixtures("single_torch_thread")``."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _synthetic_tables(n: int = 300, n_dev: int = 40, seed: int = 0, id_offset: int = 0, frac: float = 0.12):
    """Account/device tables where anomalies differ in features, pay each other and share devices:
    ``{"accounts", "devices", "transfers", "uses"}`` DataFrames (CSV-like text cells) and the true labels."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    y = (rng.random(n) < frac).astype(int)
    y[:2] = 1  # at least two anomalies whatever the seed
    ids = np.array([f"acc{i + id_offset}" for i in range(n)], dtype=object)
    lab = np.where(rng.random(n) < 0.25, "", y.astype(str))
    accounts = pd.DataFrame({"id": ids, "amount": (rng.normal(size=n) + 1.2 * y).round(4),
                             "age": rng.normal(size=n).round(4), "txn": (rng.exponential(size=n) * (1 + y)).round(4),
                             "is_fraud": lab})
    an = np.flatnonzero(y)
    src = np.r_[rng.integers(0, n, 3 * n), an[rng.integers(0, an.size, 3 * an.size)]]
    dst = np.r_[rng.integers(0, n, 3 * n), an[rng.integers(0, an.size, 3 * an.size)]]
    transfers = pd.DataFrame({"src": ids[src], "dst": ids[dst], "time": rng.uniform(0, 1e6, src.size).round(1),
                              "weight": rng.exponential(size=src.size).round(3)})
    devices = pd.DataFrame({"id": [f"d{j}" for j in range(n_dev)], "risk": rng.normal(size=n_dev).round(3)})
    who = rng.integers(0, n, 2 * n)
    dev = np.where(y[who] == 1, rng.integers(0, 4, who.size), rng.integers(0, n_dev, who.size))
    uses = pd.DataFrame({"src": ids[who], "dst": [f"d{j}" for j in dev]})
    return {"accounts": accounts, "devices": devices, "transfers": transfers, "uses": uses}, y


@pytest.fixture(scope="session")
def synthetic_tables():
    """A factory ``(n=300, n_dev=40, seed=0, id_offset=0) -> (tables, y)``; see :func:`_synthetic_tables`."""
    pytest.importorskip("pandas")
    return _synthetic_tables
