"""The few-label protocols (``train_anomalies``/``train_normals``, ``label_rate``) and the
``auto`` augmentation of the evaluation harness and ``pygad evaluate``."""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

from pygad import evaluation as ev
from pygad.cli import main
from pygad.errors import PygadValueError
from pygad.metrics import average_precision
from pygad.registry import AUGMENTERS, make_augmenter, make_detector

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "models"))
from _augment_graphs import TINY, sym_graph  # noqa: E402


def _labels():
    y = np.r_[np.zeros(300, int), np.ones(60, int), -np.ones(40, int)]
    return np.random.default_rng(0).permutation(y)


@pytest.mark.parametrize("seed", [0, 3])
def test_counts_disjoint_and_rest_is_test(seed):
    y = _labels()
    tr, va, te = ev.few_label_split(y, seed, train_anomalies=20, train_normals=80)
    assert not (tr & va).any() and not (tr & te).any() and not (va & te).any()
    assert ((tr | va | te) == (y >= 0)).all()  # unlabelled nodes are in no part
    for m in (tr, va):
        assert (y[m] == 1).sum() == 20 and (y[m] == 0).sum() == 80
    assert (y[te] == 1).sum() == 20 and (y[te] == 0).sum() == 140


def test_determinism_per_seed():
    y = _labels()
    a = ev.few_label_split(y, 5, 10, 40)
    b = ev.few_label_split(y, 5, 10, 40)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    c = ev.few_label_split(y, 6, 10, 40)
    assert not np.array_equal(a[0], c[0])


def test_label_rate_is_stratified():
    y = _labels()
    tr, va, te = ev.few_label_split(y, 1, label_rate=0.1)
    for m in (tr, va):
        assert (y[m] == 1).sum() == 6 and (y[m] == 0).sum() == 30
    assert te.sum() == 360 - 72
    # a tiny rate still keeps one anomaly in training
    tr, _, _ = ev.few_label_split(y, 1, label_rate=0.001)
    assert (y[tr] == 1).sum() == 1 and (y[tr] == 0).sum() == 1


@pytest.mark.parametrize("kw, flag", [
    (dict(train_anomalies=30, train_normals=10), "--train-anomalies: 30 anomalies"),
    (dict(train_anomalies=5, train_normals=150), "--train-normals: 150 normal nodes"),
    (dict(train_anomalies=5), "--train-normals is missing"),
    (dict(train_anomalies=0, train_normals=5), "--train-anomalies must be an integer >= 1"),
    (dict(label_rate=0.5), "--label-rate must be in (0, 0.5)"),
    (dict(label_rate=0.1, train_anomalies=3, train_normals=3), "--label-rate excludes"),
])
def test_errors_name_the_flag(kw, flag):
    with pytest.raises(PygadValueError) as e:
        ev.few_label_split(_labels(), 0, **kw)
    assert flag in str(e.value)


def test_run_evaluation_records_protocol():
    g = sym_graph(1, n=200)
    r = ev.run_evaluation(g, detector="feature", seeds=2, verbose=False, train_anomalies=4, train_normals=20)
    assert r["config"]["protocol"] == {"kind": "few-label", "train_anomalies": 4, "train_normals": 20,
                                       "val_anomalies": 4, "val_normals": 20}
    assert r["config"]["split"] == "few-label per seed"
    r2 = ev.run_evaluation(g, detector="feature", seeds=2, verbose=False, train_anomalies=4, train_normals=20)
    assert r["runs"] == r2["runs"]  # deterministic per seed
    rr = ev.run_evaluation(g, detector="feature", seeds=1, verbose=False, label_rate=0.2)
    assert rr["config"]["protocol"]["kind"] == "label-rate" and rr["config"]["protocol"]["label_rate"] == 0.2
    assert ev.run_evaluation(g, detector="feature", seeds=1, verbose=False)["config"]["protocol"] == {"kind": "full"}
    with pytest.raises(PygadValueError, match="drop --split"):
        ev.run_evaluation(g, detector="feature", seeds=1, verbose=False, split=1, train_anomalies=2, train_normals=2)


def test_cli_few_label_json(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["evaluate", "--detector", "feature", "--seeds", "2", "--train-anomalies", "5",
                 "--train-normals", "20", "--json", str(out), "--quiet"]) == 0
    assert "protocol few-label: train 5 anomalies + 20 normal" in capsys.readouterr().out
    r = json.loads(out.read_text())
    assert r["config"]["protocol"]["kind"] == "few-label" and r["config"]["protocol"]["train_anomalies"] == 5
    assert [run["seed"] for run in r["runs"]] == [0, 1]


@pytest.mark.parametrize("argv, msg", [
    (["--train-anomalies", "20", "--train-normals", "80"], "--train-anomalies: 20 anomalies"),  # books has 28
    (["--train-anomalies", "3"], "--train-normals is missing"),
    (["--label-rate", "0.7"], "--label-rate must be in (0, 0.5)"),
])
def test_cli_errors(argv, msg, capsys):
    assert main(["evaluate", "--detector", "feature", "--seeds", "1", "--quiet", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pygad: error:") and msg in err


# ---- auto ------------------------------------------------------------------------------------
def test_auto_is_registered_and_never_worse_on_validation():
    assert "auto" in AUGMENTERS
    g = sym_graph(2, n=200)
    y = g.y["node"]
    chosen = set()
    for seed in (0, 1, 2):
        tr, va, te = ev.few_label_split(y, seed, 6, 30)
        auto = make_augmenter("auto", seed, **TINY)
        det, g_fit, info = auto.choose(g, tr, va, lambda: make_detector("feature", seed))
        assert info["metric"] == "ap" and set(info["val_ap"]) == {"none", "diffusion"}
        assert info["val_ap"][info["chosen"]] == max(info["val_ap"].values())
        # the returned detector is the one measured: its validation AP is the chosen option's
        s = np.asarray(det.decision_function(g_fit))[: g.num_nodes["node"]]
        assert average_precision(y[va], s[va]) == pytest.approx(info["val_ap"][info["chosen"]])
        # and at least that of a plain detector fitted the same way
        plain = make_detector("feature", seed).fit(g, tr, va)
        s0 = np.asarray(plain.decision_function(g))
        assert info["val_ap"][info["chosen"]] >= average_precision(y[va], s0[va]) - 1e-12
        assert (g_fit is g) == (info["chosen"] == "none")
        chosen.add(info["chosen"])
    with pytest.raises(PygadValueError, match="through"):
        make_augmenter("auto", 0).augment(g, tr)
    with pytest.raises(PygadValueError, match="needs a validation split"):
        make_augmenter("auto", 0).choose(g, tr, None, lambda: make_detector("feature", 0))


def test_auto_in_the_harness_records_the_choice():
    g = sym_graph(3, n=200)
    r = ev.run_evaluation(g, detector="feature", augment="auto", seeds=2, verbose=False, augment_kwargs=TINY,
                          train_anomalies=6, train_normals=30, details=True)
    for run in r["runs"]:
        assert run["augment_chosen"] in ("none", "diffusion")
        assert run["val_ap"][run["augment_chosen"]] == max(run["val_ap"].values())
        assert (run["n_synthetic"] > 0) == (run["augment_chosen"] == "diffusion")
    assert "auto:" in ev.format_table(r)


def test_cli_label_rate_and_help(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    text = capsys.readouterr().out
    for opt in ("--train-anomalies", "--train-normals", "--label-rate", "auto"):
        assert opt in text
    out = tmp_path / "r.json"
    assert main(["evaluate", "--detector", "feature", "--seeds", "1", "--label-rate", "0.2", "--json", str(out),
                 "--quiet"]) == 0
    p = json.loads(out.read_text())["config"]["protocol"]
    # books: 28 anomalies, 1,390 normal nodes
    assert p == {"kind": "label-rate", "label_rate": 0.2, "train_anomalies": 6, "train_normals": 278,
                 "val_anomalies": 6, "val_normals": 278}
