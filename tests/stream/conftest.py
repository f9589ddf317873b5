from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture
def mnist_path():
    p = DATA / "mnist_mlxtend5k.npz"
    if not p.exists():
        pytest.skip(f"shared data folder missing: {p} (expected ../shared/data beside the checkout)")
    return p


@pytest.fixture
def rng():
    return np.random.default_rng(0)
