"""pygad.metrics against scikit-learn, plus edge cases and errors."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, roc_auc_score

from pygad.metrics import average_precision, evaluate, recall_at_k, roc_auc


@st.composite
def labelled_scores(draw):
    n = draw(st.integers(2, 60))
    y = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    if y.min() == y.max():
        y[0] = 1 - y[0]
    # few distinct values -> many ties
    s = np.array(draw(st.lists(st.integers(-3, 3), min_size=n, max_size=n)), dtype=np.float64)
    return y, s


@settings(max_examples=200, deadline=None)
@given(labelled_scores())
def test_match_sklearn_with_ties(ys):
    y, s = ys
    assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert average_precision(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-12)


def test_random_continuous_scores():
    rng = np.random.default_rng(0)
    y = (rng.random(5000) < 0.05).astype(int)
    s = rng.normal(size=5000) + y
    assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert average_precision(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-12)


def test_recall_at_k():
    y = np.array([1, 0, 1, 0, 0, 1])
    s = np.array([0.9, 0.8, 0.1, 0.3, 0.2, 0.7])
    # k = 3 anomalies; top-3 scores are items 0, 1, 5 -> 2 of 3 anomalies found
    assert recall_at_k(y, s) == pytest.approx(2 / 3)
    assert recall_at_k(y, s, k=6) == 1.0
    assert recall_at_k(y, -s, k=1) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="'k' must be in"):
        recall_at_k(y, s, k=0)


def test_perfect_and_inverted():
    y = np.array([0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.8, 0.9])
    assert evaluate(y, s) == {"auc": 1.0, "ap": 1.0, "rec_at_k": 1.0}
    assert roc_auc(y, -s) == 0.0
    assert roc_auc(y, np.zeros(4)) == 0.5


@pytest.mark.parametrize("y, s, match", [
    (np.array([0, 1, -1]), np.zeros(3), "labels 0 .* and 1 .* only"),
    (np.array([0, 0, 0]), np.zeros(3), "both anomalies and normal"),
    (np.array([0, 1]), np.zeros(3), "same length"),
    (np.array([0, 1]), np.array([0.0, np.nan]), "NaN"),
])
def test_errors(y, s, match):
    with pytest.raises(ValueError, match=match):
        evaluate(y, s)
