"""Saved detectors: round trips (also in a fresh process), tampered files, other versions, schema checks."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from pygad.data import HeteroGraph
from pygad.errors import PygadFileError, PygadValueError
from pygad.models import FeatureOnlyDetector, GNNDetector, TreeDetector, load_detector
from pygad.models import persist

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def _graph(tables, drop_rel=None, rename_rel=None):
    t = dict(tables)
    edges = {"transfers": ("account", "account", t["transfers"]), "uses": ("account", "device", t["uses"])}
    if drop_rel:
        edges.pop(drop_rel)
    if rename_rel:
        edges[rename_rel[1]] = edges.pop(rename_rel[0])
    return HeteroGraph.from_pandas({"account": t["accounts"], "device": t["devices"]}, edges, label="is_fraud",
                                   time="time", weight="weight", require_anomaly=False)


@pytest.fixture(scope="module")
def graphs(synthetic_tables):
    tables, _ = synthetic_tables(seed=0)
    new_tables, _ = synthetic_tables(n=200, seed=3, id_offset=5000)
    g = _graph(tables)
    y = g.y["account"]
    rng = np.random.default_rng(0)
    tr = (y >= 0) & (rng.random(y.shape[0]) < 0.7)
    return g, tr, (y >= 0) & ~tr, tables, new_tables


@pytest.fixture(scope="module")
def fitted(graphs):
    g, tr, va, *_ = graphs
    return {"trees": TreeDetector(random_state=0, max_iter=60, add_reverse=True).fit(g, tr, va),
            "feature": FeatureOnlyDetector(random_state=0, max_iter=40).fit(g, tr, va),
            "gnn": GNNDetector(random_state=0, epochs=4, hidden_channels=16, heads=2, verbose=False).fit(g, tr, va)}


@pytest.mark.parametrize("name", ["trees", "feature", "gnn"])
def test_round_trip_same_process(fitted, graphs, tmp_path, name):
    g, *_, new_tables = graphs
    det = fitted[name]
    det.save(tmp_path / "m", info={"note": "x"})
    cfg = json.loads((tmp_path / "m" / persist.CONFIG_NAME).read_text())
    assert cfg["format_version"] == persist.FORMAT_VERSION and cfg["detector"] == type(det).__name__
    assert cfg["schema"]["relations"] == [["account", "transfers", "account"], ["account", "uses", "device"]]
    assert cfg["schema"]["features"]["account"] == ["amount", "age", "txn"]
    back = type(det).load(tmp_path / "m")
    assert type(back) is type(det) and back.threshold_ == det.threshold_ and back.saved_info_ == {"note": "x"}
    np.testing.assert_array_equal(back.decision_function(g), det.decision_function(g))
    # inductive: a graph of new accounts (same schema) scores the same with both
    g_new = _graph(new_tables)
    s_new = back.decision_function(g_new)
    assert s_new.shape == (200,)
    np.testing.assert_array_equal(s_new, det.decision_function(g_new))
    # a loaded detector can be saved again
    back.save(tmp_path / "m2")
    np.testing.assert_array_equal(load_detector(tmp_path / "m2").decision_function(g), det.decision_function(g))


def test_tree_ensemble_equals_sklearn(fitted, graphs):
    g = graphs[0]
    det = fitted["trees"]
    X, _ = det._features(g, det.target_)
    X[::7, 3] = np.nan  # missing values take the side the trees learnt (or the default)
    ens = persist.TreeEnsemble(persist.tree_arrays(det.model_))
    np.testing.assert_array_equal(ens.decision_function(X, chunk=50), det.model_.decision_function(X))


_FRESH = """
import sys, numpy as np
sys.path.insert(0, {tests!r})
from conftest import _synthetic_tables
from pygad.data import HeteroGraph
from pygad.models import load_detector
t, _ = _synthetic_tables(seed=0)
g = HeteroGraph.from_pandas({{"account": t["accounts"], "device": t["devices"]}},
    {{"transfers": ("account", "account", t["transfers"]), "uses": ("account", "device", t["uses"])}},
    label="is_fraud", time="time", weight="weight")
for d in sys.argv[1:]:
    np.save(d + ".scores.npy", load_detector(d).decision_function(g))
"""


def test_round_trip_fresh_process(fitted, graphs, tmp_path):
    g = graphs[0]
    dirs = []
    for name in ("trees", "gnn"):
        fitted[name].save(tmp_path / name)
        dirs.append(str(tmp_path / name))
    tests = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-P", "-c", _FRESH.format(tests=tests), *dirs], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    for name, d in zip(("trees", "gnn"), dirs):
        np.testing.assert_array_equal(np.load(d + ".scores.npy"), fitted[name].decision_function(g))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_tampered_and_foreign_directories(fitted, tmp_path):
    det = fitted["trees"]
    d = tmp_path / "m"
    det.save(d)
    with open(d / "trees.npz", "r+b") as f:  # flip one byte of the weights
        f.seek(200)
        b = f.read(1)
        f.seek(200)
        f.write(bytes([b[0] ^ 1]))
    with pytest.raises(PygadFileError, match=r"trees\.npz.*SHA-256 does not match"):
        TreeDetector.load(d)
    det.save(d)  # replaces the damaged directory
    cfg = json.loads((d / persist.CONFIG_NAME).read_text())
    cfg["format_version"] = 99
    (d / persist.CONFIG_NAME).write_text(json.dumps(cfg))
    with pytest.raises(PygadFileError, match="format version 99.*reads version 1"):
        load_detector(d)
    (d / persist.CONFIG_NAME).write_text("{not json")
    with pytest.raises(PygadFileError, match="not valid JSON"):
        load_detector(d)
    with pytest.raises(PygadFileError, match="no such model directory"):
        load_detector(tmp_path / "nothing")
    fitted["gnn"].save(tmp_path / "g")
    with pytest.raises(PygadFileError, match="holds a GNNDetector"):
        TreeDetector.load(tmp_path / "g")
    # a pickle in place of the weights (hash updated to match, as an attacker would): refused, not run
    import pickle

    class Boom:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    wp = tmp_path / "g" / "weights.pt"
    wp.write_bytes(pickle.dumps({"w": Boom()}))
    cfg = json.loads((tmp_path / "g" / persist.CONFIG_NAME).read_text())
    cfg["files"]["weights.pt"] = persist._sha256(str(wp))
    (tmp_path / "g" / persist.CONFIG_NAME).write_text(json.dumps(cfg))
    with pytest.raises(PygadFileError, match="weights.pt: not a readable weights file"):
        load_detector(tmp_path / "g")
    assert not (tmp_path / "pwned").exists()
    # a folder with other files is never replaced
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("x")
    with pytest.raises(PygadFileError, match="refusing to replace"):
        det.save(tmp_path / "other")


@pytest.mark.parametrize("name", ["trees", "gnn"])
def test_schema_mismatch_is_a_clear_error(fitted, graphs, name):
    tables = graphs[3]
    det = fitted[name]
    with pytest.raises(PygadValueError, match="relation 'pays'.*was not in the graph the detector was fitted on"):
        det.decision_function(_graph(tables, rename_rel=("uses", "pays")))
    with pytest.raises(PygadValueError, match="no relation 'uses'"):
        det.decision_function(_graph(tables, drop_rel="uses"))
    t = dict(tables)
    t["accounts"] = t["accounts"].drop(columns="age")
    with pytest.raises(PygadValueError, match="lacks the feature column 'age'"):
        det.decision_function(_graph(t))
    # columns in another order are matched by name
    t = dict(tables)
    t["accounts"] = t["accounts"][["txn", "id", "age", "is_fraud", "amount"]]
    np.testing.assert_array_equal(det.decision_function(_graph(t)), det.decision_function(graphs[0]))
