"""HeteroGraph.from_pandas and the table reader: conversions, and every bad-input message."""
from __future__ import annotations

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from pygad.data import HeteroGraph  # noqa: E402
from pygad.data import tables as T  # noqa: E402
from pygad.errors import PygadError, PygadFileError, PygadValueError  # noqa: E402


def _acc(**over):
    d = {"id": ["a", "b", "c", "d"], "amount": ["1.5", "2", "-3", "4e2"], "age": ["1", "2", "3", "4"],
         "fraud": ["0", "1", "", "0"]}
    d.update(over)
    return pd.DataFrame(d)


def _dev():
    return pd.DataFrame({"id": [10, 11], "risk": [0.5, 0.1]})


def _tx(**over):
    d = {"src": ["a", "b", "c"], "dst": ["b", "c", "a"], "t": ["2024-01-01T00:00:00Z", "2024-01-01T00:00:10Z",
                                                             "2024-01-02"], "w": ["1", "2.5", "0"]}
    d.update(over)
    return pd.DataFrame(d)


def _graph(**kw):
    return HeteroGraph.from_pandas({"account": _acc(), "device": _dev()},
                                   {"pays": ("account", "account", _tx()),
                                    "uses": ("account", "device", pd.DataFrame({"src": ["a", "d"], "dst": [10, 11]}))},
                                   label="fraud", time="t", weight="w", **kw)


def test_from_pandas_builds_the_graph():
    g = _graph()
    assert g.num_nodes == {"account": 4, "device": 2}
    assert g.edge_types == [("account", "pays", "account"), ("account", "uses", "device")]
    np.testing.assert_array_equal(g.x["account"], np.array([[1.5, 1], [2, 2], [-3, 3], [400, 4]], np.float32))
    assert g.feature_names == {"account": ["amount", "age"], "device": ["risk"]}
    assert g.y["account"].tolist() == [0, 1, -1, 0]
    assert "device" not in g.y
    np.testing.assert_array_equal(g.edge_index[("account", "pays", "account")], [[0, 1, 2], [1, 2, 0]])
    np.testing.assert_array_equal(g.edge_index[("account", "uses", "device")], [[0, 3], [0, 1]])
    t = g.edge_time[("account", "pays", "account")]
    assert t[1] - t[0] == 10.0 and t[0] == 1704067200.0          # ISO times -> seconds since 1970 UTC
    assert ("account", "uses", "device") not in g.edge_time       # tables without the column: no times
    np.testing.assert_array_equal(g.edge_attr[("account", "pays", "account")], [1, 2.5, 0])
    assert g.node_ids["account"].tolist() == ["a", "b", "c", "d"]
    assert g.node_ids["device"].tolist() == ["10", "11"]          # ints compared as text: 10 == "10"
    assert g.target_type() == "account"


def test_one_node_type_infers_the_endpoints_and_typed_columns():
    acc = pd.DataFrame({"id": [1, 2, 3], "f": [0.5, 1.0, 2.0], "y": [np.nan, 1.0, 0.0], "note": ["x", "y", "z"]})
    g = HeteroGraph.from_pandas({"n": acc}, {"to": pd.DataFrame({"src": [1.0, 2.0], "dst": ["3", "1"]})},
                                label="y", exclude=["note"])
    assert g.edge_types == [("n", "to", "n")] and g.y["n"].tolist() == [-1, 1, 0]
    np.testing.assert_array_equal(g.edge_index[("n", "to", "n")], [[0, 1], [2, 0]])
    g2 = HeteroGraph.from_pandas({"n": acc}, None, label="y", features={"n": ["f"]})
    assert g2.feature_names == {"n": ["f"]}


def _err(fn, *parts, cls=PygadValueError):
    with pytest.raises(cls) as ei:
        fn()
    msg = str(ei.value)
    for p in parts:
        assert p in msg, msg
    assert "\n" not in msg
    return msg


def test_unknown_edge_id_names_table_column_row():
    tx = _tx(dst=["b", "zz", "a"])
    _err(lambda: HeteroGraph.from_pandas({"account": _acc()}, {"pays": tx}, label="fraud"),
         "edges['pays']", "'dst'", "'zz'", "data row 2", "'account'")


def test_duplicate_ids():
    _err(lambda: HeteroGraph.from_pandas({"account": _acc(id=["a", "b", "a", "d"])}, {}, label="fraud"),
         "nodes['account']", "'id'", "'a' twice", "data rows 1 and 3")


def test_empty_id():
    _err(lambda: HeteroGraph.from_pandas({"account": _acc(id=["a", "", "c", "d"])}, {}, label="fraud"),
         "'id'", "empty cell", "data row 2")


def test_non_numeric_feature_is_named():
    _err(lambda: HeteroGraph.from_pandas({"account": _acc(age=["1", "2", "old", "x"])}, {}, label="fraud"),
         "feature column 'age' is not numeric", "data row 3", "'old'", "(and 1 more row)", "exclude=['age']")
    _err(lambda: HeteroGraph.from_pandas({"account": _acc(age=["1", "", "3", "4"])}, {}, label="fraud"),
         "feature column 'age'", "empty cell", "data row 2")


@pytest.mark.parametrize("bad", ["2", "-1", "yes", "0.5"])
def test_labels_outside_0_1_blank(bad):
    _err(lambda: HeteroGraph.from_pandas({"account": _acc(fraud=["0", "1", bad, ""])}, {}, label="fraud"),
         "label column 'fraud'", repr(bad), "data row 3", "1 (anomaly), 0 (normal) or blank")


def test_endpoint_naming_an_unknown_node_type():
    _err(lambda: HeteroGraph.from_pandas({"account": _acc()}, {"uses": ("account", "device", _tx())}, label="fraud"),
         "edges['uses']", "'device'", "no node table")
    _err(lambda: HeteroGraph.from_pandas({"account": _acc(), "device": _dev()}, {"uses": _tx()}, label="fraud"),
         "edges['uses']", "must name its endpoints")


def test_no_labelled_anomaly():
    _err(lambda: HeteroGraph.from_pandas({"account": _acc(fraud=["0", "0", "", "0"])}, {}, label="fraud"),
         "nodes['account']", "'fraud'", "no anomaly")
    # the scoring path may have no labels at all
    g = HeteroGraph.from_pandas({"account": _acc(fraud=["", "", "", ""])}, {}, label="fraud", require_anomaly=False)
    assert g.y["account"].tolist() == [-1] * 4


def test_missing_columns_and_label():
    _err(lambda: HeteroGraph.from_pandas({"account": _acc()}, {}, id="key", label="fraud"), "no id column 'key'")
    _err(lambda: HeteroGraph.from_pandas({"account": _acc()}, {}, label="is_bad"), "label column 'is_bad'")
    _err(lambda: HeteroGraph.from_pandas({"account": _acc()}, {"p": _tx()}, label="fraud", time="when"),
         "time column 'when'")
    _err(lambda: HeteroGraph.from_pandas({"account": _acc()}, {"p": _tx().drop(columns="src")}, label="fraud"),
         "edges['p']", "'src'")
    _err(lambda: HeteroGraph.from_pandas({"account": _acc()}, {}, label="fraud", features={"account": ["zz"]}),
         "no column 'zz'")
    _err(lambda: HeteroGraph.from_pandas({"account": _acc()}, {"p": _tx(t=["1", "x", "2"])}, label="fraud",
                                         time="t"), "time column 't'", "data row 2", "'x'")
    _err(lambda: HeteroGraph.from_pandas({"account": _acc()}, {"p": _tx(t=["2024-01-01", "soon", "2024-01-02"])},
                                         label="fraud", time="t"), "time column 't'", "data row 2", "'soon'")
    _err(lambda: HeteroGraph.from_pandas({"a": _acc(), "b": _acc()}, {}, label="fraud"), "several node tables")


def test_files_name_the_path(tmp_path):
    acc = tmp_path / "accounts.csv"
    _acc(id=["007", "b", "c", "7"]).to_csv(acc, index=False)
    _dev().to_parquet(tmp_path / "devices.parquet", index=False)
    bad = tmp_path / "pays.csv"
    _tx(src=["007", "7", "q"]).to_csv(bad, index=False)
    nodes = T.parse_node_specs([str(acc), f"device={tmp_path / 'devices.parquet'}"])
    assert list(nodes) == ["accounts", "device"]
    edges = T.parse_edge_specs([f"pays={bad}"], ["accounts"])
    assert edges["pays"][:2] == ("accounts", "accounts")
    msg = _err(lambda: T.read_graph({"accounts": str(acc)}, edges, label="fraud"),
               str(bad), "'src'", "'q'", "data row 3", str(acc))
    assert "007" not in msg                       # '007' (kept as text) and '7' both matched
    good = tmp_path / "ok.csv"
    _tx(src=["007", "7", "c"], dst=["b", "c", "7"]).to_csv(good, index=False)
    nodes["accounts"] = nodes.pop("accounts")
    g = T.read_graph(nodes, {"pays": ("accounts", "accounts", str(good))}, label="fraud")
    assert g.edge_index[("accounts", "pays", "accounts")][0].tolist() == [0, 3, 2]
    _err(lambda: T.parse_edge_specs([f"uses=accounts:gadget:{good}"], ["accounts", "device"]),
         "'gadget'", "no --nodes table")
    _err(lambda: T.parse_edge_specs([f"uses={good}"], ["accounts", "device"]), "REL=SRC_TYPE:DST_TYPE:FILE")
    _err(lambda: T.read_table(tmp_path / "nope.csv"), "nope.csv", "no such file", cls=PygadFileError)
    (tmp_path / "empty.csv").write_text("")
    _err(lambda: T.read_table(tmp_path / "empty.csv"), "empty.csv", cls=PygadFileError)
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    _err(lambda: T.read_table(tmp_path / "bad.parquet"), "bad.parquet", "Parquet", cls=PygadFileError)
    assert issubclass(PygadFileError, OSError) and issubclass(PygadValueError, (ValueError, PygadError))
