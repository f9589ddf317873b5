"""``pygad stream detect``: CSV/Parquet in, scores/probability/flag out; input errors exit 2
with one line naming the row and write nothing; ``--state`` resumes exactly."""
from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest

from pygad.cli import main

START = np.datetime64("2024-03-01T00:00:00", "s")


def _rows(n=400, keys=None, seed=0, spike=None, step=300):
    """Rows (time ISO string, [key], value): a noisy daily-ish sine per key, keys interleaved."""
    rng = np.random.default_rng(seed)
    keys = keys or [None]
    out = []
    for i in range(n):
        for j, k in enumerate(keys):
            t = START + np.timedelta64(i * step + j, "s")
            v = 50 + 10 * np.sin(2 * np.pi * i / 48) + rng.normal(0, 1) + 5 * j
            if spike is not None and i == spike and j == 0:
                v += 80
            row = [str(t).replace("T", " ")] + ([k] if k is not None else []) + [f"{v:.4f}"]
            out.append(row)
    return out


def _write_csv(path, rows, header=("timestamp", "value"), key=False):
    if key:
        header = ("timestamp", "sensor", "value")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _read_out(path):
    with open(path, newline="") as f:
        r = list(csv.reader(f))
    return r[0], r[1:]


def _cols(header, rows, name):
    return [row[header.index(name)] for row in rows]


def _detect(file, out, *extra, time="timestamp", value=("value",)):
    return main(["stream", "detect", str(file), "--time", time, "--value", *value,
                 "--out", str(out), "--quiet", *extra])


def _scores(out):
    h, rows = _read_out(out)
    return (np.array(_cols(h, rows, "score"), float),
            np.array(_cols(h, rows, "probability"), float),
            np.array(_cols(h, rows, "flag"), int))


# ------------------------------------------------------------------------------ round trips
def test_csv_round_trip(tmp_path, capsys):
    rows = _rows(300)
    src = _write_csv(tmp_path / "in.csv", rows)
    out = tmp_path / "scores.csv"
    assert _detect(src, out) == 0
    summary = capsys.readouterr().out
    assert "300 rows" in summary and "rows/s" in summary and str(out) in summary
    h, got = _read_out(out)
    assert h == ["timestamp", "value", "score", "probability", "flag"]
    assert len(got) == 300
    assert [r[:2] for r in got] == rows                      # time and values as written
    s, p, f = _scores(out)
    assert np.isfinite(s).all() and ((p >= 0) & (p <= 1)).all()
    assert np.array_equal(f, (p >= 0.9997).astype(int))
    assert not [x for x in tmp_path.iterdir() if x.name.startswith(".tmp-")]


def test_parquet_matches_csv(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rows = _rows(250, keys=["a", "b"])
    src = _write_csv(tmp_path / "in.csv", rows, key=True)
    times = np.array([np.datetime64(r[0].replace(" ", "T"), "ns") for r in rows])
    table = pa.table({"timestamp": pa.array(times, pa.timestamp("ns")),
                      "sensor": [r[1] for r in rows],
                      "value": np.array([float(r[2]) for r in rows])})
    pq.write_table(table, tmp_path / "in.parquet")
    assert _detect(src, tmp_path / "a.csv", "--key", "sensor") == 0
    assert _detect(tmp_path / "in.parquet", tmp_path / "b.csv", "--key", "sensor") == 0
    sa, pa_, _ = _scores(tmp_path / "a.csv")
    sb, pb, _ = _scores(tmp_path / "b.csv")
    assert np.array_equal(sa, sb) and np.array_equal(pa_, pb)
    h, got = _read_out(tmp_path / "b.csv")
    assert _cols(h, got, "sensor") == [r[1] for r in rows]
    assert _cols(h, got, "timestamp")[1] == "2024-03-01T00:00:01"


def test_parquet_without_pyarrow_exits_2_with_hint(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    (tmp_path / "in.parquet").write_bytes(b"PAR1")
    assert _detect(tmp_path / "in.parquet", tmp_path / "o.csv") == 2
    err = capsys.readouterr().err.strip()
    assert "pygad[tables]" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o.csv").exists()


def test_keyed_equals_one_run_per_key(tmp_path):
    rows = _rows(300, keys=["a", "b", "c"])
    src = _write_csv(tmp_path / "in.csv", rows, key=True)
    assert _detect(src, tmp_path / "all.csv", "--key", "sensor") == 0
    h, got = _read_out(tmp_path / "all.csv")
    assert h == ["timestamp", "sensor", "value", "score", "probability", "flag"]
    assert [r[:3] for r in got] == rows
    s_all, p_all, _ = _scores(tmp_path / "all.csv")
    keys = np.array([r[1] for r in rows])
    for k in ("a", "c"):
        one = _write_csv(tmp_path / f"{k}.csv", [[r[0], r[2]] for r in rows if r[1] == k])
        assert _detect(one, tmp_path / f"{k}_out.csv") == 0
        s, p, _ = _scores(tmp_path / f"{k}_out.csv")
        assert np.array_equal(s, s_all[keys == k]) and np.array_equal(p, p_all[keys == k])


def test_stdlib_csv_reader_equals_pandas(tmp_path):
    pytest.importorskip("pandas")
    from pygad.stream import io
    rows = _rows(50, keys=["x", "y"])
    rows[3][0] = rows[3][0].replace(" ", "T") + "Z"           # ISO variants parse the same
    src = _write_csv(tmp_path / "in.csv", rows, key=True)
    a = io.read_table(src, "timestamp", ["value"], "sensor", use_pandas=True)
    b = io.read_table(src, "timestamp", ["value"], "sensor", use_pandas=False)
    assert a.time_kind == b.time_kind == "datetime"
    assert np.array_equal(a.time, b.time) and np.array_equal(a.values, b.values)
    assert np.array_equal(a.keys, b.keys)
    assert a.time[1] - a.time[0] == 1_000_000_000              # ns since the epoch


def test_numeric_time_column(tmp_path):
    rows = [[str(1_700_000_000 + 60 * i), f"{np.sin(i / 5):.5f}"] for i in range(200)]
    src = _write_csv(tmp_path / "in.csv", rows, header=("t", "value"))
    assert _detect(src, tmp_path / "o.csv", "--season", "hour", time="t") == 0
    h, got = _read_out(tmp_path / "o.csv")
    assert _cols(h, got, "t") == [r[0] for r in rows]


def test_multivariate_mean_detector(tmp_path):
    rng = np.random.default_rng(1)
    rows = [[str(i), f"{a:.4f}", f"{b:.4f}"] for i, (a, b) in enumerate(rng.normal(size=(1500, 2)))]
    rows[1250][1] = "40"
    src = _write_csv(tmp_path / "in.csv", rows, header=("i", "u", "v"))
    assert _detect(src, tmp_path / "o.csv", "--detector", "mean", time="i", value=("u", "v")) == 0
    h, _ = _read_out(tmp_path / "o.csv")
    assert h == ["i", "u", "v", "score", "probability", "flag"]
    s, _, f = _scores(tmp_path / "o.csv")
    assert int(np.argmax(s)) == 1250 and f[1250] == 1


def test_injected_spike_is_flagged(tmp_path):
    src = _write_csv(tmp_path / "in.csv", _rows(600, spike=450))
    out = tmp_path / "o.csv"
    assert _detect(src, out) == 0
    s, p, f = _scores(out)
    assert int(np.argmax(s)) == 450
    assert p[450] >= 0.9997 and f[450] == 1
    assert f[100:450].sum() == 0                    # no alarm on the clean series after warm-up


# ------------------------------------------------------------------------------ bad input
def _bad_file(tmp_path, case):
    rows = _rows(20, keys=["a", "b"])
    if case == "non-numeric":
        rows[6][2] = "12,5x"
    elif case == "empty":
        rows[6][2] = ""
    elif case == "duplicate":
        rows[8][0] = rows[6][0]                               # rows 7 and 9 are key "a"
    elif case == "decreasing":
        rows[9][0] = rows[5][0]                               # row 10 is key "b", row 6 too
    elif case == "bad-time":
        rows[4][0] = "yesterday"
    elif case == "empty-key":
        rows[11][1] = ""
    return _write_csv(tmp_path / "in.csv", rows, key=True)


@pytest.mark.parametrize("case, extra, needles", [
    ("missing-column", ["--value", "speed"], ["no column 'speed'",
                                              "available columns: 'timestamp', 'sensor', 'value'"]),
    ("non-numeric", [], ["data row 7", "column 'value'", "not a number", "12,5x"]),
    ("empty", [], ["data row 7", "column 'value'", "empty cell"]),
    ("duplicate", [], ["data row 9", "key 'a'", "duplicate time", "column 'timestamp'",
                       "data row 7"]),
    ("decreasing", [], ["data row 10", "key 'b'", "decreasing time", "data row 8"]),
    ("bad-time", [], ["data row 5", "column 'timestamp'", "yesterday"]),
    ("empty-key", [], ["data row 12", "column 'sensor'", "empty cell"]),
    ("ok", ["--detector", "nope"], ["unknown --detector 'nope'", "forecaster, mean"]),
    ("ok", ["--detector", "mean", "--lags", "3"], ["--lags applies to --detector forecaster"]),
    ("ok", ["--season", "1"], ["--season must be"]),
    ("ok", ["--alarm-proba", "1.5"], ["--alarm-proba must be in [0, 1]"]),
    ("ok", ["--key", "value"], ["named twice"]),
])
def test_bad_input_exits_2_names_the_row_and_writes_nothing(tmp_path, capsys, case, extra,
                                                            needles):
    src = _bad_file(tmp_path, case)
    out, state = tmp_path / "o.csv", tmp_path / "st.npz"
    argv = ["stream", "detect", str(src), "--time", "timestamp", "--key", "sensor",
            "--value", "value", "--out", str(out), "--state", str(state), "--quiet"]
    if extra[:1] == ["--value"]:
        argv[argv.index("--value") + 1] = extra[1]
        extra = extra[2:]
    if extra[:1] == ["--key"]:
        argv[argv.index("--key") + 1] = extra[1]
        extra = extra[2:]
    assert main(argv + extra) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err, (n, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]      # nothing written


def test_state_mismatch_exits_2_and_keeps_state(tmp_path, capsys):
    src = _write_csv(tmp_path / "in.csv", _rows(100))
    state = tmp_path / "st.npz"
    assert _detect(src, tmp_path / "o1.csv", "--state", str(state), "--lags", "4") == 0
    before = state.read_bytes()
    capsys.readouterr()
    later = _write_csv(tmp_path / "later.csv", [
        [str(START + np.timedelta64(10**6 + i, "s")).replace("T", " "), "1.0"] for i in range(5)])
    for extra, needle in [(["--lags", "6"], "--lags 6 does not match"),
                          (["--detector", "mean"], "holds a forecaster detector"),
                          (["--season", "week"], "--season week does not match"),
                          (["--season", "none"], "--season none does not match")]:
        assert _detect(later, tmp_path / "o2.csv", "--state", str(state), *extra) == 2
        err = capsys.readouterr().err.strip()
        assert needle in err and len(err.splitlines()) == 1, err
        assert not (tmp_path / "o2.csv").exists()
        assert state.read_bytes() == before
    # same options, or none: fine
    assert _detect(later, tmp_path / "o2.csv", "--state", str(state), "--lags", "4") == 0


def test_resume_rejects_timestamps_that_do_not_continue(tmp_path, capsys):
    rows = _rows(60, keys=["a", "b"])
    first = _write_csv(tmp_path / "first.csv", rows[:80], key=True)
    state = tmp_path / "st.npz"
    assert _detect(first, tmp_path / "o1.csv", "--key", "sensor", "--state", str(state)) == 0
    before = state.read_bytes()
    capsys.readouterr()
    again = _write_csv(tmp_path / "again.csv", rows[78:], key=True)   # rows 79, 80 repeat
    assert _detect(again, tmp_path / "o2.csv", "--key", "sensor", "--state", str(state)) == 2
    err = capsys.readouterr().err.strip()
    assert "data row 1 (key 'a')" in err and "the last one processed" in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "o2.csv").exists() and state.read_bytes() == before
    unkeyed = _write_csv(tmp_path / "u.csv", [[r[0], r[2]] for r in rows[80:]])
    assert _detect(unkeyed, tmp_path / "o2.csv", "--state", str(state)) == 2
    assert "was built with --key 'sensor'" in capsys.readouterr().err


def test_subspace_missing_exits_2(tmp_path, monkeypatch, capsys):
    import pygad.stream as ps
    monkeypatch.delattr(ps, "ClippedSGDSubspace", raising=False)
    src = _write_csv(tmp_path / "in.csv", _rows(30))
    assert _detect(src, tmp_path / "o.csv", "--detector", "subspace") == 2
    err = capsys.readouterr().err.strip()
    assert "ClippedSGDSubspace" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o.csv").exists()


def test_subspace_detector_runs_when_available(tmp_path):
    import pygad.stream as ps
    if not hasattr(ps, "ClippedSGDSubspace"):
        pytest.skip("this pygad has no ClippedSGDSubspace")
    rng = np.random.default_rng(2)
    z = rng.normal(size=(300, 1))
    X = np.hstack([z, 2 * z, -z]) + 0.05 * rng.normal(size=(300, 3))
    rows = [[str(i), *[f"{v:.4f}" for v in x]] for i, x in enumerate(X)]
    src = _write_csv(tmp_path / "in.csv", rows, header=("i", "a", "b", "c"))
    assert _detect(src, tmp_path / "o.csv", "--detector", "subspace", "--rank", "1",
                   time="i", value=("a", "b", "c")) == 0
    s, _, _ = _scores(tmp_path / "o.csv")
    assert s.shape == (300,) and np.isfinite(s).all()


# ------------------------------------------------------------------------------ resume
@pytest.mark.parametrize("extra, keyed", [
    ([], False),
    (["--season", "hour", "--lags", "3"], True),
    (["--season", "none"], False),
    (["--season", "24"], True),
    (["--detector", "mean"], True),
])
def test_resume_over_two_halves_equals_one_run(tmp_path, extra, keyed):
    rows = _rows(300, keys=["a", "b"] if keyed else None)
    kw = ["--key", "sensor"] if keyed else []
    whole = _write_csv(tmp_path / "whole.csv", rows, key=keyed)
    cut = len(rows) // 2 + 31                     # not a multiple of the key count
    h1 = _write_csv(tmp_path / "h1.csv", rows[:cut], key=keyed)
    h2 = _write_csv(tmp_path / "h2.csv", rows[cut:], key=keyed)
    assert _detect(whole, tmp_path / "w.csv", *kw, *extra, "--chunk-size", "97") == 0
    st = tmp_path / "st.npz"
    assert _detect(h1, tmp_path / "o1.csv", *kw, *extra, "--state", str(st)) == 0
    # the continuation needs no options: they come from the state
    assert _detect(h2, tmp_path / "o2.csv", *kw, "--state", str(st)) == 0
    s, p, f = _scores(tmp_path / "w.csv")
    s1, p1, f1 = _scores(tmp_path / "o1.csv")
    s2, p2, f2 = _scores(tmp_path / "o2.csv")
    assert np.array_equal(s, np.concatenate([s1, s2]))
    assert np.array_equal(p, np.concatenate([p1, p2]))
    assert np.array_equal(f, np.concatenate([f1, f2]))


# ------------------------------------------------------------------------------ plot, process
def test_plot_writes_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    rows = _rows(300, keys=["a", "b"], spike=200)
    src = _write_csv(tmp_path / "in.csv", rows, key=True)
    png = tmp_path / "p.png"
    assert _detect(src, tmp_path / "o.csv", "--key", "sensor", "--plot", str(png)) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    assert "plot written to" in capsys.readouterr().out


def test_plot_without_matplotlib_exits_2_before_processing(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    src = _write_csv(tmp_path / "in.csv", _rows(30))
    assert _detect(src, tmp_path / "o.csv", "--plot", str(tmp_path / "p.png")) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install matplotlib" in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_missing_output_folder_exits_2(tmp_path, capsys):
    src = _write_csv(tmp_path / "in.csv", _rows(30))
    assert _detect(src, tmp_path / "no" / "o.csv") == 2
    assert "does not exist" in capsys.readouterr().err


def test_subprocess_command_line(tmp_path):
    src = _write_csv(tmp_path / "in.csv", _rows(120, keys=["a", "b"]), key=True)
    out = tmp_path / "o.csv"
    cmd = [sys.executable, "-P", "-m", "pygad.cli", "stream", "detect", str(src),
           "--time", "timestamp", "--value", "value", "--key", "sensor", "--out", str(out)]
    r = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "240 rows" in r.stdout and "2 keys" in r.stdout
    assert len(_read_out(out)[1]) == 240
    bad = subprocess.run(cmd[:-2] + ["--out", str(tmp_path / "x.csv"), "--detector", "zzz"],
                         check=False, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "unknown --detector" in bad.stderr
    assert not (tmp_path / "x.csv").exists()


def test_csv_without_pandas_gives_the_same_output(tmp_path, monkeypatch):
    rows = _rows(200, keys=["a", "b"])
    rows[5][0] = rows[5][0].replace(" ", "T") + "+00:00"
    src = _write_csv(tmp_path / "in.csv", rows, key=True)
    assert _detect(src, tmp_path / "a.csv", "--key", "sensor") == 0
    monkeypatch.setitem(sys.modules, "pandas", None)
    assert _detect(src, tmp_path / "b.csv", "--key", "sensor") == 0
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_corrupt_state_exits_2(tmp_path, capsys):
    src = _write_csv(tmp_path / "in.csv", _rows(30))
    state = tmp_path / "st.npz"
    state.write_bytes(b"not an archive")
    assert _detect(src, tmp_path / "o.csv", "--state", str(state)) == 2
    err = capsys.readouterr().err.strip()
    assert "--state" in err and len(err.splitlines()) == 1
    assert state.read_bytes() == b"not an archive" and not (tmp_path / "o.csv").exists()


def test_state_saved_by_the_estimator_api_continues(tmp_path):
    import pygad.stream as ps
    rows = _rows(200)
    X = np.array([[float(r[1])] for r in rows])
    det = ps.ClippedSGDMean()
    det.process_many(X[:120])
    det.save(tmp_path / "st.npz")
    src = _write_csv(tmp_path / "in.csv", rows[120:])
    assert _detect(src, tmp_path / "o.csv", "--state", str(tmp_path / "st.npz")) == 0
    s, p, _ = _scores(tmp_path / "o.csv")
    s_ref, p_ref = det.process_many(X[120:], proba=True)
    assert np.array_equal(s, s_ref) and np.array_equal(p, p_ref)
