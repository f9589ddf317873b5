"""`pygad evaluate` and the evaluation harness: table, JSON, splits, augmenter plug-in, errors."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from pygad.testing import dataset_path

from pygad import evaluation as ev
from pygad.cli import main
from pygad.data import HeteroGraph
from pygad.datasets import load



def test_cli_import_is_cheap():
    code = ("import sys, pygad.cli as c; c.build_parser(); "
            "print(any(m == 'torch' or m.startswith('torch.') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_help_lists_options(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    text = capsys.readouterr().out
    for opt in ("--data", "--detector", "--augment", "--seeds", "--split", "--json"):
        assert opt in text


def test_evaluate_embedded_default_json(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["evaluate", "--detector", "feature", "--seeds", "2", "--json", str(out), "--quiet"]) == 0
    table = capsys.readouterr().out
    assert "books" in table and "mean±std" in table and "AUC" in table and "Rec@k" in table
    r = json.loads(out.read_text())
    assert [run["seed"] for run in r["runs"]] == [0, 1]
    for run in r["runs"]:
        assert set(run) == {"seed", "auc", "ap", "rec_at_k"}
        assert all(0.0 <= run[k] <= 1.0 for k in ("auc", "ap", "rec_at_k"))
    for k in ("auc", "ap", "rec_at_k"):
        assert r["mean"][k] == pytest.approx(np.mean([run[k] for run in r["runs"]]))
        assert r["std"][k] >= 0.0


def test_evaluate_gnn_short(capsys):
    assert main(["evaluate", "--detector", "gnn", "--seeds", "1", "--epochs", "3", "--quiet"]) == 0
    assert "detector=gnn" in capsys.readouterr().out


@pytest.mark.parametrize("argv, msg", [
    (["--augment", "nope"], "unknown --augment 'nope'; choose one of"),
    (["--data", "no_such_dataset"], "dataset 'no_such_dataset' not found"),
    (["--split", "3"], "no stored split masks"),
    (["--seeds", "0"], "--seeds must be >= 1"),
    (["--detector", "trees", "--epochs", "3"], "--epochs applies to --detector gnn only"),
    (["--augment-ratio", "2"], "--augment-ratio needs --augment other than none"),
    (["--augment", "oversample", "--augment-ratio", "0", "--detector", "feature"], "'ratio' must be a finite"),
])
def test_cli_errors(argv, msg, capsys):
    rc = main(["evaluate", "--quiet", *argv])
    assert rc != 0
    assert msg in capsys.readouterr().err


def test_cli_bad_archive(tmp_path, capsys):
    p = tmp_path / "bad.npz"
    np.savez(p, y=np.array([0, 3]), edge_index=np.zeros((2, 1), np.int64))
    assert main(["evaluate", "--data", str(p), "--quiet"]) == 2
    assert "labels outside {-1, 0, 1}" in capsys.readouterr().err


# ---- harness pieces --------------------------------------------------------------------------
def test_stratified_split_properties():
    y = np.r_[np.zeros(95, int), np.ones(5, int), -np.ones(10, int)]
    tr, va, te = ev.stratified_split(y, seed=3)
    assert not (tr & va).any() and not (tr & te).any() and not (va & te).any()
    assert ((tr | va | te) == (y >= 0)).all()
    assert (y[tr] == 1).sum() == 2 and (y[va] == 1).sum() == 1 and (y[te] == 1).sum() == 2
    assert tr.sum() == 40 and va.sum() == 20
    a = ev.stratified_split(y, seed=3)
    np.testing.assert_array_equal(a[0], tr)
    assert not np.array_equal(ev.stratified_split(y, seed=4)[0], tr)


def test_stored_masks_are_used():
    n = 40
    y = np.zeros(n, int)
    y[[1, 5, 25, 29]] = 1
    trs = np.zeros((2, n), bool)
    trs[0, :20] = trs[1, 20:] = True
    g = HeteroGraph.homogeneous(np.array([[0], [1]]), n, y=y, masks={"train": trs, "test": ~trs})
    tr, va, te, how = ev.get_split(g, "node", seed=7)
    np.testing.assert_array_equal(tr, trs[0])
    assert va is None and how == "stored split 0 of 2"
    np.testing.assert_array_equal(ev.get_split(g, "node", seed=0, split=1)[0], trs[1])
    y2 = np.zeros(n, int)
    y2[[1, 5]] = 1
    with pytest.raises(ValueError, match="test split has no anomalies"):
        ev.get_split(g.replace(y={"node": y2}), "node", seed=0, split=0)
    with pytest.raises(ValueError, match="split 2 out of range"):
        ev.get_split(g, "node", seed=0, split=2)


class _DuplicateAnomalies:
    """A toy augmenter: appends a copy of every training anomaly (features, incoming edges)."""

    def __init__(self, seed):
        self.seed = seed

    def augment(self, graph, train_mask):
        y, x = graph.y["node"], graph.x["node"]
        src = np.flatnonzero(train_mask & (y == 1))
        n = graph.num_nodes["node"]
        new = np.arange(n, n + src.size)
        ei = graph.edge_index[("node", "to", "node")]
        sel = np.isin(ei[1], src)
        remap = dict(zip(src.tolist(), new.tolist()))
        extra = np.stack([ei[0, sel], np.array([remap[d] for d in ei[1, sel]], dtype=np.int64)])
        g = HeteroGraph.homogeneous(np.concatenate([ei, extra], axis=1), n + src.size,
                                    x=np.concatenate([x, x[src]]), y=np.concatenate([y, y[src]]), name=graph.name)
        return g, np.concatenate([train_mask, np.ones(src.size, bool)])


def test_augmenter_plugin(monkeypatch, capsys):
    monkeypatch.setitem(ev.AUGMENTERS, "dup", _DuplicateAnomalies)
    r = ev.run_evaluation(load(), detector="feature", augment="dup", seeds=1, verbose=False)
    assert r["config"]["augment"] == "dup" and len(r["runs"]) == 1
    assert main(["evaluate", "--augment", "dup", "--detector", "feature", "--seeds", "1", "--quiet"]) == 0
    assert "augment=dup" in capsys.readouterr().out


def test_augment_ratio_reaches_the_augmenter(monkeypatch, tmp_path):
    seen = []

    class Counting(_DuplicateAnomalies):
        def __init__(self, seed, **settings):
            super().__init__(seed)
            seen.append(settings)

    monkeypatch.setitem(ev.AUGMENTERS, "dup", Counting)
    out = tmp_path / "r.json"
    assert main(["evaluate", "--augment", "dup", "--augment-ratio", "3", "--detector", "feature", "--seeds", "2",
                 "--json", str(out), "--quiet"]) == 0
    assert seen == [{"ratio": 3.0}, {"ratio": 3.0}]
    assert json.loads(out.read_text())["config"]["augment_kwargs"] == {"ratio": 3.0}
    # no settings given: the factory is called with the seed alone (plug-ins need not take settings)
    ev.run_evaluation(load(), detector="feature", augment="dup", seeds=1, verbose=False)
    assert seen[-1] == {}
    # the built-in baselines get the count: ratio 2 oversampling adds twice the training anomalies
    aug = ev.make_augmenter("oversample", 0, ratio=2)
    g = load()
    tr = ev.get_split(g, "node", 0)[0]
    g2, _ = aug.augment(g, tr)
    assert g2.num_nodes["node"] - g.num_nodes["node"] == 2 * int((tr & (g.y["node"] == 1)).sum())
    with pytest.raises(ValueError, match="without an augmentation"):
        ev.make_augmenter("none", 0, ratio=2)


def test_run_evaluation_errors():
    with pytest.raises(ValueError, match="unknown detector 'svm'"):
        ev.run_evaluation(load(), detector="svm")
    g = load()
    y = g.y["node"].copy()
    y[y == 1] = 0
    y[0] = 1  # one anomaly: the stratified split cannot put it in training and test
    with pytest.raises(ValueError, match="split has no anomalies"):
        ev.run_evaluation(g.replace(y={"node": y}), detector="feature", seeds=1, verbose=False)


def test_evaluate_archive_with_stored_masks(tmp_path):
    out = tmp_path / "c.json"
    assert main(["evaluate", "--data", str(dataset_path("inj_cora.npz")), "--detector", "feature", "--seeds", "1",
                 "--json", str(out), "--quiet"]) == 0
    r = json.loads(out.read_text())
    assert r["config"]["split"] == "stored split 0 of 1"
