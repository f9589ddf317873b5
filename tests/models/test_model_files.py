"""Saved model folders (config.json + weights.pt) that were tampered with: errors name the
file, a weights file with objects is never executed, and no message advises weights_only=False."""
from __future__ import annotations

import json
import pickle

import pytest
import torch

import pygad
from pygad.datasets import load
from pygad.models.vae import GraphVAE


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    books = load()
    m = GraphVAE.from_graph(books, latent_dim=4, hidden_channels=8, num_layers=1, heads=1, decoder_hidden=8)
    folder = tmp_path_factory.mktemp("vae")
    m.save(folder)
    return folder


def _copy(src, dst, **files):
    dst.mkdir()
    for name in ("config.json", "weights.pt"):
        (dst / name).write_bytes(files[name] if name in files else (src / name).read_bytes())
    return dst


def test_round_trip(saved):
    GraphVAE.load(saved)


def test_tampered_weights(saved, tmp_path, capsys):
    folder = _copy(saved, tmp_path / "evil", **{"weights.pt": pickle.dumps({"w": _Evil()})})
    with pytest.raises(pygad.InvalidArchiveError) as info:
        GraphVAE.load(folder)
    msg = str(info.value)
    assert "weights.pt" in msg and "not a pygad model file" in msg and "weights_only" not in msg
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert "must never run" not in capsys.readouterr().out


@pytest.mark.parametrize("weights", [b"", b"PK\x03\x04garbage"])
def test_truncated_weights(saved, tmp_path, weights):
    folder = _copy(saved, tmp_path / "bad", **{"weights.pt": weights})
    with pytest.raises(pygad.InvalidArchiveError, match="weights.pt"):
        GraphVAE.load(folder)


def test_weights_of_another_model(saved, tmp_path):
    buf = tmp_path / "w.pt"
    torch.save({"not.a.parameter": torch.zeros(2)}, buf)
    folder = _copy(saved, tmp_path / "other", **{"weights.pt": buf.read_bytes()})
    with pytest.raises(pygad.InvalidArchiveError, match=str(folder)):
        GraphVAE.load(folder)


@pytest.mark.parametrize("config", [b"{not json", b"[1, 2]", json.dumps({"format": "other/1", "params": {}}).encode(),
                                    json.dumps({"format": "pygad.GraphVAE/1", "params": {"nope": 1}}).encode()])
def test_bad_config(saved, tmp_path, config):
    real = json.loads((saved / "config.json").read_text())
    if b"pygad.GraphVAE/1" in config:
        config = config.replace(b"pygad.GraphVAE/1", real["format"].encode())
    folder = _copy(saved, tmp_path / "cfg", **{"config.json": config})
    with pytest.raises(pygad.InvalidArchiveError) as info:
        GraphVAE.load(folder)
    assert str(folder) in str(info.value)


def test_missing_files(tmp_path):
    with pytest.raises(pygad.PygadFileError, match="config.json"):
        GraphVAE.load(tmp_path)
