"""``pygad augment`` and ``pygad demo``: archives that load back, the comparison engine, plots."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pygad.cli import build_parser, main
from pygad.data import HeteroGraph
from pygad.datasets import load, load_npz

TINY = dict(latent_dim=8, hidden_channels=16, num_layers=1, heads=2, decoder_hidden=16, vae_epochs=3,
            diffusion_hidden=32, diffusion_layers=1, diffusion_epochs=3, steps=4)


def test_subcommands_registered():
    p = build_parser()
    for argv in (["augment", "--out", "x.npz"], ["demo"]):
        args = p.parse_args(argv)
        assert callable(args.func)
    assert p.parse_args(["demo"]).out_dir == "pygad_demo_out"


def test_augment_cli_writes_loadable_archive(tmp_path, capsys):
    out = tmp_path / "books_aug.npz"
    rc = main(["augment", "--data", "books", "--method", "oversample", "--out", str(out), "--seed", "1"])
    assert rc == 0
    g0, g1 = load(), load_npz(out)
    n0 = g0.num_nodes["node"]
    n1 = g1.num_nodes["node"]
    assert n1 > n0
    assert np.array_equal(g1.x["node"][:n0], g0.x["node"])
    assert np.array_equal(g1.y["node"][:n0], g0.y["node"]) and (g1.y["node"][n0:] == 1).all()
    with np.load(out) as z:
        syn = z["synthetic_mask"]
        assert syn[n0:].all() and not syn[:n0].any()
        assert z["train_mask"][n0:].all() and not z["test_mask"][n0:].any() and not z["val_mask"][n0:].any()
        # the split's test nodes are untouched: no overlap with training nodes
        assert not (z["train_mask"] & z["test_mask"]).any()
    assert "+" in capsys.readouterr().out


def test_augment_cli_diffusion_and_saved_model(tmp_path):
    out = tmp_path / "aug.npz"
    rc = main(["augment", "--data", "books", "--method", "diffusion", "--epochs", "2", "--diffusion-epochs", "2",
               "--n", "5", "--out", str(out), "--save-model", str(tmp_path / "model"), "--quiet"])
    assert rc == 0
    g = load_npz(out)
    assert g.num_nodes["node"] == load().num_nodes["node"] + 5
    assert (tmp_path / "model" / "config.json").is_file() and (tmp_path / "model" / "weights.pt").is_file()
    cfg = json.loads((tmp_path / "model" / "config.json").read_text())
    assert cfg["params"]["n_synthetic"] == 5 and cfg["params"]["vae_epochs"] == 2
    assert "ablation" not in cfg   # the shipped configuration: nothing private to record


def test_augment_cli_errors(tmp_path, capsys):
    assert main(["augment", "--data", "no_such_dataset", "--out", str(tmp_path / "x.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pygad: error: dataset 'no_such_dataset' not found") and len(err.splitlines()) == 1
    assert main(["demo", "--seeds", "0"]) == 2


def _toy(seed=0, n=150):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.12).astype(np.int8)
    y[:8] = 1
    x = rng.normal(size=(n, 4)).astype(np.float32) + y[:, None]
    e = np.stack([rng.integers(0, n, 400), rng.integers(0, n, 400)])
    return HeteroGraph.homogeneous(e, n, x=x, y=y, name="toy")


def test_augment_cli_ratio(tmp_path, capsys):
    from pygad.evaluation import get_split

    out = tmp_path / "x3.npz"
    assert main(["augment", "--data", "books", "--method", "mixup", "--ratio", "3", "--out", str(out)]) == 0
    g = load()
    tr = get_split(g, "node", 0)[0]
    assert load_npz(out).num_nodes["node"] == g.num_nodes["node"] + 3 * int((tr & (g.y["node"] == 1)).sum())
    assert main(["augment", "--n", "4", "--ratio", "2", "--out", str(tmp_path / "y.npz")]) == 2
    assert "not both" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [dict(ratio=0), dict(ratio=-1.0), dict(ratio=float("nan")), dict(ratio="3"),
                                 dict(n_synthetic=0), dict(n_synthetic=2.5)])
@pytest.mark.parametrize("name", ["oversample", "smote", "mixup", "diffusion"])
def test_augmenters_reject_bad_counts_before_training(name, bad):
    from pygad.registry import make_augmenter

    g = _toy()
    with pytest.raises(ValueError, match="ratio|n_synthetic"):
        make_augmenter(name, random_state=0, **bad).fit(g, np.ones(g.num_nodes["node"], bool))


def test_demo_cli_ratio_applies_to_every_augmenter(tmp_path, monkeypatch):
    import pygad.evaluation as ev

    seen = {}

    def fake_compare(graph, methods, seeds, detector, augmenter_kwargs=None, baseline_kwargs=None, **kw):
        seen.update(akw=augmenter_kwargs, bkw=baseline_kwargs)
        raise ValueError("stop here")

    monkeypatch.setattr(ev, "compare", fake_compare)
    assert main(["demo", "--ratio", "3", "--vae-epochs", "2", "--quiet", "--out-dir", str(tmp_path)]) == 2
    assert seen == {"akw": {"vae_epochs": 2, "ratio": 3.0}, "bkw": {"ratio": 3.0}}
    assert main(["demo", "--ratio", "0"]) == 2


def test_compare_table_and_plots(tmp_path):
    from pygad.evaluation import compare, format_comparison, save_plots

    methods = ["none", "oversample", "vae", "diffusion"]
    res = compare(_toy(), methods, seeds=1, detector="feature", augmenter_kwargs=TINY, verbose=False)
    assert set(res["mean"]) == set(methods)
    assert res["runs"]["vae"][0]["n_synthetic"] == res["runs"]["diffusion"][0]["n_synthetic"]
    assert res["runs"]["none"][0]["n_synthetic"] == 0 and res["runs"]["diffusion"][0]["n_synthetic"] > 0
    table = format_comparison(res)
    assert "diffusion" in table and "AUC" in table
    paths = save_plots(res, tmp_path / "out")
    assert {p.split("/")[-1] for p in map(str, paths)} == {"pr_curves.png", "latents_pca.png"}
    assert all((tmp_path / "out" / f).stat().st_size > 1000 for f in ("pr_curves.png", "latents_pca.png"))


def test_compare_rejects_unknown_method():
    from pygad.evaluation import compare
    with pytest.raises(ValueError, match="unknown method"):
        compare(_toy(), ["bogus"], seeds=1)


def test_compare_baseline_kwargs_and_first_seed():
    from pygad.evaluation import compare, format_comparison
    from pygad.evaluation import get_split

    g = _toy()
    res = compare(g, ["oversample", "mixup"], seeds=1, detector="feature", baseline_kwargs={"ratio": 2},
                  first_seed=7, verbose=False)
    tr = get_split(g, "node", 7)[0]
    n_anom = int((tr & (g.y["node"] == 1)).sum())
    for m in ("oversample", "mixup"):
        assert [r["seed"] for r in res["runs"][m]] == [7]
        assert res["runs"][m][0]["n_synthetic"] == 2 * n_anom
    assert res["config"]["baseline_kwargs"] == {"ratio": 2} and res["config"]["first_seed"] == 7
    assert "baselines=ratio:2" in format_comparison(res).splitlines()[0]
    # without baseline_kwargs the baselines add one node per training anomaly
    res1 = compare(g, ["oversample"], seeds=1, detector="feature", first_seed=7, verbose=False)
    assert res1["runs"]["oversample"][0]["n_synthetic"] == n_anom
    with pytest.raises(ValueError, match="first_seed"):
        compare(g, ["none"], seeds=1, first_seed=-1, verbose=False)
