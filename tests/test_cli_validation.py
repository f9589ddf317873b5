"""Command-line arguments checked before any work: one line on stderr, exit 2, no traceback."""
from __future__ import annotations

import numpy as np
import pytest

import pygad
from pygad import _validate as V
from pygad.cli import main


def _run(capsys, argv):
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    return rc, err


@pytest.mark.parametrize("argv, text", [
    (["stream", "--anomaly-rate", "2"], "--anomaly-rate"),
    (["stream", "drift", "--anomaly-rate", "2"], "--anomaly-rate"),
    (["stream", "drift", "--digits", "a,b"], "--digits"),
    (["stream", "drift", "--segment-len", "0"], "--segment-len"),
    (["stream", "drift", "--json", "/no/such/folder/out.json"], "--json"),
    (["stream", "drift", "--plot", "/no/such/folder/p.png"], "--plot"),
    (["evaluate", "--device", "toaster"], "--device"),
    (["evaluate", "--device", "cuda:7"], "--device"),
    (["evaluate", "--json", "/no/such/folder/r.json"], "--json"),
    (["augment", "--out", "/no/such/folder/a.npz"], "--out"),
    (["augment", "--out", "OUT", "--save-model", "/no/such/folder/m"], "--save-model"),
    (["augment", "--out", "OUT", "--device", "toaster"], "--device"),
])
def test_bad_flag_exits_2_with_one_line(capsys, tmp_path, argv, text):
    argv = [str(tmp_path / "a.npz") if a == "OUT" else a for a in argv]
    rc, err = _run(capsys, argv)
    assert rc == 2
    assert text in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_non_archive_data(capsys, tmp_path):
    bad = tmp_path / "digits.npz"
    bad.write_text("not an archive")
    rc, err = _run(capsys, ["stream", "drift", "--data", str(bad), "--segment-len", "10", "--no-hst", "--quiet"])
    assert rc == 2 and str(bad) in err and len(err.splitlines()) == 1
    npy = tmp_path / "digits.npy"
    np.save(npy, np.zeros(3))
    rc, err = _run(capsys, ["stream", "drift", "--data", str(npy), "--segment-len", "10", "--no-hst", "--quiet"])
    assert rc == 2 and ".npy" in err


def test_validators():
    assert V.check_device("cpu") == "cpu"
    with pytest.raises(pygad.PygadValueError, match="--device"):
        V.check_device("toaster")
    assert V.parse_int_list("0,1,7", "--digits", low=0, high=9) == (0, 1, 7)
    for bad in ("a,b", "", "1,,2", "1,12"):
        with pytest.raises(pygad.PygadValueError, match="--digits"):
            V.parse_int_list(bad, "--digits", low=0, high=9)
    with pytest.raises(pygad.PygadFileError, match="is a folder"):
        V.check_writable_path("/", "--out")
    assert V.check_writable_path("/tmp", "--save-model", directory=True) == "/tmp"
