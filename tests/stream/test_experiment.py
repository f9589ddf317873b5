import json
import subprocess
import sys

import pytest


def test_cli_module_is_cheap_to_import():
    code = "import sys, pygad.stream.cli; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_cli_registers_stream_subcommand():
    import argparse

    from pygad.stream import cli
    p = argparse.ArgumentParser()
    cli.add_parser(p.add_subparsers(dest="command"))
    args = p.parse_args(["stream", "--segment-len", "100", "--no-hst"])
    assert args.func is cli.run and args.segment_len == 100


def test_small_experiment_runs(mnist_path, tmp_path):
    from pygad.stream import cli
    import argparse
    p = argparse.ArgumentParser()
    cli.add_parser(p.add_subparsers())
    args = p.parse_args(["stream", "--data", str(mnist_path), "--segment-len", "300",
                         "--no-hst", "--quiet", "--plot", str(tmp_path / "p.png"),
                         "--json", str(tmp_path / "r.json")])
    assert args.func(args) == 0
    res = json.loads((tmp_path / "r.json").read_text())
    assert set(res["results"]) >= {"pygad ClippedSGDMean()", "SGD 1/t (no clip)"}
    assert len(res["results"]["pygad ClippedSGDMean()"]["segments"]) == 4
    assert (tmp_path / "p.png").stat().st_size > 10_000


@pytest.mark.slow
def test_default_mean_beats_every_baseline(mnist_path):
    pytest.importorskip("river")
    from pygad.stream import experiment as E
    out = E.run_experiment(mnist_path, progress=False)
    res = out["results"]
    ours = res["pygad ClippedSGDMean()"]
    for name, r in res.items():
        if name != "pygad ClippedSGDMean()":
            assert ours["auc"] > r["auc"], name
            assert ours["ap"] > r["ap"], name


@pytest.mark.parametrize("argv, message", [
    (["--anomaly-rate", "2"], "--anomaly-rate must be in (0, 1)"),
    (["--anomaly-rate", "0"], "--anomaly-rate must be in (0, 1)"),
    (["--digits", "a,b"], "--digits must be comma-separated digits"),
    (["--digits", "1,12"], "--digits must be comma-separated digits"),
    (["--segment-len", "0"], "--segment-len must be >= 1"),
])
def test_cli_bad_settings_exit_2_with_one_line(argv, message, mnist_path, capsys):
    from pygad.cli import main
    assert main(["stream", "--data", str(mnist_path), "--no-hst", "--quiet", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
