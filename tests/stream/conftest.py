import numpy as np
import pytest

from pygad.testing import dataset_path

@pytest.fixture
def mnist_path():
    return dataset_path("mnist_mlxtend5k.npz")


@pytest.fixture
def rng():
    return np.random.default_rng(0)
