import json
import subprocess
import sys

import pytest

from pygad.stream import experiment as E


def test_cli_module_is_cheap_to_import():
    code = "import sys, pygad.cli.stream; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_cli_registers_stream_subcommands():
    import argparse

    from pygad.cli import stream as cli
    p = argparse.ArgumentParser()
    cli.add_parser(p.add_subparsers(dest="command"))
    args = p.parse_args(["stream", "drift", "--segment-len", "100", "--no-hst"])
    assert args.func is cli.run_drift and args.segment_len == 100 and args.data is None
    args = p.parse_args(["stream", "detect", "x.csv", "--time", "t", "--value", "v",
                         "--out", "o.csv"])
    assert args.func is cli.run_detect and args.value == ["v"]
    # `pygad stream [drift options]` stays an alias of `pygad stream drift`
    args = p.parse_args(["stream", "--segment-len", "100", "--no-hst"])
    assert args.func is cli.run and args.segment_len == 100


def test_bare_stream_prints_both_helps_and_exits_2(capsys):
    from pygad.cli import main
    assert main(["stream"]) == 2
    out = capsys.readouterr().out
    assert "usage: pygad stream detect" in out and "usage: pygad stream drift" in out


def _run_drift(argv, tmp_path):
    from pygad.cli import main
    assert main([*argv, "--segment-len", "150", "--no-hst", "--quiet",
                 "--plot", str(tmp_path / "p.png"), "--json", str(tmp_path / "r.json")]) == 0
    res = json.loads((tmp_path / "r.json").read_text())
    assert set(res["results"]) >= {E.SUBSPACE, "SGD 1/t (no clip)"}
    assert len(res["results"][E.SUBSPACE]["segments"]) == 4
    assert (tmp_path / "p.png").stat().st_size > 10_000
    return res


def test_default_data_ships_with_the_install(tmp_path):
    """No ../shared needed: the default is scikit-learn's bundled 8x8 digits."""
    res = _run_drift(["stream", "drift"], tmp_path)
    assert "scikit-learn" in res["config"]["data"] and res["config"]["n_features"] == 64
    assert res["results"][E.SUBSPACE]["auc"] > 0.7


def test_alias_runs_the_drift_experiment(tmp_path, capsys):
    res = _run_drift(["stream"], tmp_path)
    assert res["config"]["n"] == 600
    assert "rotated digits from scikit-learn 8x8 digits" in capsys.readouterr().out


def test_small_experiment_runs(mnist_path, tmp_path):
    res = _run_drift(["stream", "drift", "--data", str(mnist_path)], tmp_path)
    assert res["config"]["n_features"] == 784


def test_missing_data_file_exits_2(tmp_path, capsys):
    from pygad.cli import main
    assert main(["stream", "drift", "--data", str(tmp_path / "none.npz"), "--no-hst"]) == 2
    assert "data file not found" in capsys.readouterr().err


@pytest.mark.slow
def test_subspace_beats_every_baseline_on_mnist(mnist_path):
    """Seed 0 of the drift table in docs/stream.md: the Subspace ahead of every baseline in
    AUC and AP; the Mean with the baselines' capped score no worse than before the floors
    (0.858)."""
    pytest.importorskip("river")
    out = E.run_experiment(mnist_path, progress=False)
    res = out["results"]
    ours = res[E.SUBSPACE]
    for name, r in res.items():
        if name != E.SUBSPACE:
            assert ours["auc"] > r["auc"], name
            assert ours["ap"] > r["ap"], name
    assert ours["auc"] > 0.91
    assert res[E.MEAN]["auc"] > 0.855


@pytest.mark.parametrize("argv, message", [
    (["--anomaly-rate", "2"], "--anomaly-rate must be in (0, 1)"),
    (["--anomaly-rate", "0"], "--anomaly-rate must be in (0, 1)"),
    (["--digits", "a,b"], "--digits must be comma-separated digits"),
    (["--digits", "1,12"], "--digits must be comma-separated digits"),
    (["--segment-len", "0"], "--segment-len must be >= 1"),
])
@pytest.mark.parametrize("sub", [["drift"], []])          # [] = the `pygad stream` alias
def test_cli_bad_settings_exit_2_with_one_line(argv, message, sub, capsys):
    from pygad.cli import main
    assert main(["stream", *sub, "--no-hst", "--quiet", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
