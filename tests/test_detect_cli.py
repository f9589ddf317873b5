"""``pygad detect`` and ``pygad score`` end to end on synthetic tables: outputs, exit codes, nothing written on error."""
from __future__ import annotations

import csv
import os
import subprocess
import sys

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from pygad.cli import main  # noqa: E402

pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module")
def files(synthetic_tables, tmp_path_factory):
    d = tmp_path_factory.mktemp("tables")
    t, _ = synthetic_tables(seed=0)
    t["accounts"].to_csv(d / "accounts.csv", index=False)
    t["devices"].to_parquet(d / "devices.parquet", index=False)
    t["transfers"].to_csv(d / "transfers.csv", index=False)
    t["uses"].to_csv(d / "uses.csv", index=False)
    new, _ = synthetic_tables(n=150, seed=7, id_offset=9000)
    new["accounts"].to_csv(d / "new_accounts.csv", index=False)
    new["transfers"].to_csv(d / "new_transfers.csv", index=False)
    new["uses"].to_csv(d / "new_uses.csv", index=False)
    return d


def _args(d, *extra, nodes=None, edges=None):
    nodes = nodes or [f"account={d / 'accounts.csv'}", f"device={d / 'devices.parquet'}"]
    edges = edges or [f"transfers=account:account:{d / 'transfers.csv'}", f"uses=account:device:{d / 'uses.csv'}"]
    a = ["detect"]
    for n in nodes:
        a += ["--nodes", n]
    for e in edges:
        a += ["--edges", e]
    return a + ["--id", "id", "--label", "is_fraud", "--time", "time", "--weight", "weight", *extra]


def _read(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


@pytest.fixture(scope="module")
def detected(files, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    rc = main(_args(files, "--out", str(out / "scores.csv"), "--save-model", str(out / "model"),
                    "--plot", str(out / "plot.png"), "--seed", "1", "--quiet"))
    assert rc == 0
    return out


def test_detect_writes_scores_model_and_plot(files, detected, capsys):
    rows = _read(detected / "scores.csv")
    assert rows[0] == ["id", "score", "rank", "flag"]
    body = rows[1:]
    accounts = pd.read_csv(files / "accounts.csv", dtype=str)
    assert [r[0] for r in body] == accounts["id"].tolist()          # every account, table order
    scores = np.array([float(r[1]) for r in body])
    ranks = np.array([int(r[2]) for r in body])
    flags = np.array([int(r[3]) for r in body])
    assert sorted(ranks.tolist()) == list(range(1, len(body) + 1))
    assert np.all(np.diff(scores[np.argsort(ranks)]) <= 0)          # rank 1 = highest score
    assert set(flags.tolist()) <= {0, 1} and 0 < flags.sum() < len(body)
    assert scores[flags == 1].min() >= scores[flags == 0].max() - 1e-12
    assert (detected / "model" / "pygad-model.json").is_file()
    assert (detected / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in os.listdir(detected) if p.startswith(".tmp-")]
    # the report states the metrics and the flag rule
    out = tmp = detected / "again.csv"
    assert main(_args(files, "--out", str(out))) == 0
    text = capsys.readouterr().out
    assert "validation: AUC" in text and "AP" in text and "Rec@k" in text
    assert "flag = 1 where score >=" in text and "maximises F1 on the validation nodes" in text
    assert tmp.is_file()


def test_augment_from_the_registry(files, tmp_path, capsys):
    assert main(_args(files, "--augment", "oversample", "--out", str(tmp_path / "s.csv"))) == 0
    assert "+ oversample augmentation" in capsys.readouterr().out
    assert len(_read(tmp_path / "s.csv")) == 301  # the user's nodes only, no synthetic ones


def test_augment_auto_chooses_on_validation(files, tmp_path, capsys, monkeypatch):
    from pygad import evaluation as ev
    from pygad.models.auto_augment import AutoAugmenter
    # a cheap candidate keeps the test fast; the choice logic is the same as with diffusion
    monkeypatch.setitem(ev.AUGMENTERS, "auto", lambda seed=None: AutoAugmenter("oversample", random_state=seed))
    assert main(_args(files, "--augment", "auto", "--out", str(tmp_path / "s.csv"))) == 0
    assert len(_read(tmp_path / "s.csv")) == 301


def test_score_new_nodes_and_same_tables(files, detected, tmp_path, capsys):
    out = tmp_path / "new.csv"
    rc = main(["score", "--model", str(detected / "model"), "--nodes", f"account={files / 'new_accounts.csv'}",
               "--nodes", f"device={files / 'devices.parquet'}", "--edges", f"transfers={files / 'new_transfers.csv'}",
               "--edges", f"uses={files / 'new_uses.csv'}", "--out", str(out)])
    assert rc == 0
    rows = _read(out)
    assert rows[0] == ["id", "score", "rank", "flag"] and len(rows) == 151 and rows[1][0] == "acc9000"
    assert "labelled nodes in these tables" in capsys.readouterr().out
    # the training tables again: exactly the scores and flags detect wrote
    out2 = tmp_path / "same.csv"
    rc = main(["score", "--model", str(detected / "model"), "--nodes", f"account={files / 'accounts.csv'}",
               "--nodes", f"device={files / 'devices.parquet'}", "--edges", f"transfers={files / 'transfers.csv'}",
               "--edges", f"uses={files / 'uses.csv'}", "--out", str(out2), "--quiet"])
    assert rc == 0
    assert _read(out2) == _read(detected / "scores.csv")


def _fails(capsys, argv, *parts):
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pygad: error: "), err
    for p in parts:
        assert p in lines[0], lines[0]
    return lines[0]


def _bad_tables(files, tmp_path, **changes):
    """Copies of the tables with one DataFrame changed."""
    t = {"accounts": pd.read_csv(files / "accounts.csv", dtype=str, keep_default_na=False),
         "transfers": pd.read_csv(files / "transfers.csv", dtype=str, keep_default_na=False)}
    for k, fn in changes.items():
        t[k] = fn(t[k])
    for k, df in t.items():
        df.to_csv(tmp_path / f"{k}.csv", index=False)
    return [f"account={tmp_path / 'accounts.csv'}", f"device={files / 'devices.parquet'}"], \
        [f"transfers=account:account:{tmp_path / 'transfers.csv'}", f"uses=account:device:{files / 'uses.csv'}"]


def _set(col, row, value):
    def fn(df):
        df = df.copy()
        df.loc[row, col] = value
        return df
    return fn


@pytest.mark.parametrize("case, change, parts", [
    ("unknown id", {"transfers": _set("dst", 4, "ghost")}, ["transfers.csv", "'dst'", "'ghost'", "data row 5"]),
    ("duplicate id", {"accounts": _set("id", 9, "acc3")}, ["accounts.csv", "'acc3' twice", "data rows 4 and 10"]),
    ("non-numeric", {"accounts": _set("age", 2, "old")}, ["accounts.csv", "feature column 'age'", "data row 3",
                                                         "--exclude age"]),
    ("bad label", {"accounts": _set("is_fraud", 6, "2")}, ["accounts.csv", "label column 'is_fraud'", "'2'",
                                                          "data row 7"]),
    ("no anomaly", {"accounts": lambda df: df.assign(is_fraud=df["is_fraud"].replace("1", "0"))},
     ["accounts.csv", "'is_fraud'", "no anomaly"]),
])
def test_bad_tables_exit_2_and_write_nothing(files, tmp_path, capsys, case, change, parts):
    nodes, edges = _bad_tables(files, tmp_path, **change)
    out = tmp_path / "o"
    out.mkdir()
    _fails(capsys, _args(files, "--out", str(out / "s.csv"), "--save-model", str(out / "m"), "--plot",
                         str(out / "p.png"), nodes=nodes, edges=edges), *parts)
    assert os.listdir(out) == []


def test_bad_options_exit_2_before_any_work(files, tmp_path, capsys):
    _fails(capsys, _args(files, "--out", str(tmp_path / "missing" / "s.csv")), "--out", "does not exist")
    _fails(capsys, _args(files, "--out", str(files / "accounts.csv")), "would overwrite the input table")
    _fails(capsys, _args(files, "--out", str(tmp_path / "s.csv"),
                         edges=[f"uses=account:gadget:{files / 'uses.csv'}"]), "'gadget'", "no --nodes table")
    _fails(capsys, _args(files, "--out", str(tmp_path / "s.csv"), "--augment", "magic"), "unknown augmentation")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("keep")
    _fails(capsys, _args(files, "--out", str(tmp_path / "s.csv"), "--save-model", str(tmp_path / "full")),
           "refusing to replace")
    assert sorted(os.listdir(tmp_path)) == ["full"]


def test_score_errors(files, detected, tmp_path, capsys):
    base = ["score", "--model", str(detected / "model"), "--nodes", f"device={files / 'devices.parquet'}",
            "--out", str(tmp_path / "s.csv")]
    acc = ["--nodes", f"account={files / 'new_accounts.csv'}"]
    tr = ["--edges", f"transfers={files / 'new_transfers.csv'}"]
    _fails(capsys, base + acc + tr + ["--edges", f"shares=account:device:{files / 'new_uses.csv'}"],
           "relation 'shares'", "not in the graph the detector was fitted on")
    pd.read_csv(files / "new_accounts.csv").drop(columns="txn").to_csv(tmp_path / "a.csv", index=False)
    _fails(capsys, base + ["--nodes", f"account={tmp_path / 'a.csv'}"] + tr + ["--edges", f"uses={files / 'new_uses.csv'}"],
           "a.csv", "no column 'txn'")
    _fails(capsys, ["score", "--model", str(tmp_path / "nomodel")] + base[3:] + acc, "no such model directory")
    assert not (tmp_path / "s.csv").exists()


def test_gnn_and_fresh_process(files, tmp_path):
    """One small GNN run through `python -m pygad` (a fresh process), then `pygad score` on its model."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-P", "-m", "pygad"]
    r = subprocess.run(cmd + _args(files, "--detector", "gnn", "--epochs", "3", "--out", str(tmp_path / "g.csv"),
                                   "--save-model", str(tmp_path / "gm")), env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert "validation: AUC" in r.stdout
    r = subprocess.run(cmd + ["score", "--model", str(tmp_path / "gm"), "--nodes", f"account={files / 'accounts.csv'}",
                              "--nodes", f"device={files / 'devices.parquet'}",
                              "--edges", f"transfers={files / 'transfers.csv'}", "--edges", f"uses={files / 'uses.csv'}",
                              "--out", str(tmp_path / "g2.csv"), "--quiet"], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert _read(tmp_path / "g2.csv") == _read(tmp_path / "g.csv")
    r = subprocess.run(cmd + ["detect", "--nodes", str(files / "nope.csv"), "--label", "y", "--out",
                              str(tmp_path / "x.csv")], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.strip() == f"pygad: error: {files / 'nope.csv'}: no such file"
    r = subprocess.run([sys.executable, "-P", "-c", "import sys, pygad.cli.detect, pygad.cli.score; "
                        "print('torch' in sys.modules, 'pandas' in sys.modules)"], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.stdout.split() == ["False", "False"], r.stderr
