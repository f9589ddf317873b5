"""LatentDiffusion (EDM, classifier-free guidance) and its LatentDenoiser.

One small model is fitted once per module on a labelled 2-D mixture of two Gaussians; the tests
check that conditional/guided samples land on the requested class, unconditional samples follow
the mixture weights, native and reference step kernels give the same samples for the same
seed, and that save/load round-trips. Torch runs single-threaded here (fast and stable on a
shared 2-core machine).
"""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch

from pygad.models.diffusion import LatentDiffusion, karras_sigmas
from pygad.nn.denoiser import LatentDenoiser

MODES = torch.tensor([[-2.0, 0.0], [2.0, 1.0]])
P_ANOMALY = 0.25


pytestmark = pytest.mark.usefixtures("single_torch_thread")


def mixture(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(n, generator=g) < P_ANOMALY).long()
    z = MODES[y] + 0.3 * torch.randn(n, 2, generator=g)
    return z, y


@pytest.fixture(scope="module")
def data():
    return mixture(1000)


@pytest.fixture(scope="module")
def model(data, single_torch_thread):
    z, y = data
    return LatentDiffusion(2, hidden=64, num_layers=2, random_state=0).fit(z, y, epochs=20, batch_size=128, lr=3e-3,
                                                                          verbose=False)


# ---- the fitted model ------------------------------------------------------------------------
def test_fitted_attributes(model, data):
    z, _ = data
    assert isinstance(model.denoiser_, LatentDenoiser)
    torch.testing.assert_close(model.mean_, z.mean(0))
    assert model.sigma_data_ == pytest.approx(float((z - z.mean(0)).pow(2).mean().sqrt()), rel=1e-5)
    assert model.conditional_ is True
    assert len(model.loss_history_) == 20
    assert model.loss_history_[-1] < 0.6 * model.loss_history_[0]


@pytest.mark.parametrize("label", [0, 1])
def test_conditional_samples_land_on_their_class(model, label):
    s = model.sample(600, label=label, guidance=1.0, steps=16, seed=1)
    assert s.shape == (600, 2) and s.dtype == torch.float32
    side = (s[:, 0] > 0).float().mean().item()
    assert (side > 0.9) if label == 1 else (side < 0.1)
    assert torch.linalg.vector_norm(s.mean(0) - MODES[label]) < 0.35
    assert 0.15 < s.std(0).mean() < 0.7


def test_guidance_sharpens_toward_the_label(model):
    plain = model.sample(600, label=1, guidance=1.0, steps=16, seed=2)
    guided = model.sample(600, label=1, guidance=2.5, steps=16, seed=2)
    assert (guided[:, 0] > 0).float().mean() >= max(0.97, float((plain[:, 0] > 0).float().mean()))
    # guidance pushes away from the unconditional mixture, i.e. further along +x
    assert guided[:, 0].mean() > plain[:, 0].mean()


def test_unconditional_samples_follow_the_mixture(model):
    s = model.sample(1500, label=None, steps=16, seed=3)
    frac = (s[:, 0] > 0).float().mean().item()
    assert abs(frac - P_ANOMALY) < 0.08
    assert torch.linalg.vector_norm(s[s[:, 0] > 0].mean(0) - MODES[1]) < 0.35
    assert torch.linalg.vector_norm(s[s[:, 0] <= 0].mean(0) - MODES[0]) < 0.35
    # guidance 0 is the unconditional model whatever the label
    torch.testing.assert_close(model.sample(200, label=1, guidance=0.0, steps=8, seed=4),
                               model.sample(200, label=None, steps=8, seed=4))


@pytest.mark.parametrize("churn", [0.0, 8.0])
def test_native_and_reference_give_the_same_samples(model, churn):
    kw = dict(n=300, label=1, guidance=2.0, steps=12, seed=5, churn=churn)
    try:
        model.impl = "native"
        a = model.sample(**kw)
        model.impl = "reference"
        b = model.sample(**kw)
    finally:
        model.impl = "native"
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_sampling_is_reproducible_and_chunked(model):
    a = model.sample(257, label=1, guidance=1.5, steps=6, seed=7)
    b = model.sample(257, label=1, guidance=1.5, steps=6, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    assert not torch.equal(a, model.sample(257, label=1, guidance=1.5, steps=6, seed=8))
    # chunks draw their noise in sequence: same model, different chunking -> valid but different draws
    c = model.sample(257, label=1, guidance=1.5, steps=6, seed=7, batch_size=100)
    assert c.shape == (257, 2) and torch.isfinite(c).all()
    assert model.sample(0, label=1).shape == (0, 2)


def test_loss_native_matches_reference(model, data):
    z, y = data
    a = model.loss(z, y, seed=0)
    try:
        model.impl = "reference"
        b = model.loss(z, y, seed=0)
    finally:
        model.impl = "native"
    assert math.isfinite(a) and a == pytest.approx(b, rel=1e-4)


def test_save_load_roundtrip(model, tmp_path):
    path = tmp_path / "diff"
    model.save(path)
    cfg = json.loads((path / "config.json").read_text())
    assert cfg["params"]["dim"] == 2 and cfg["params"]["hidden"] == 64
    state = torch.load(os.path.join(path, "weights.pt"), weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    loaded = LatentDiffusion.load(path)
    assert loaded.sigma_data_ == model.sigma_data_
    kw = dict(n=100, label=1, guidance=2.0, steps=8, seed=9)
    assert torch.equal(loaded.sample(**kw), model.sample(**kw))
    # state_dict/load_state_dict on a fresh estimator with the same config
    fresh = LatentDiffusion(2, hidden=64, num_layers=2).load_state_dict(model.state_dict())
    assert torch.equal(fresh.sample(**kw), model.sample(**kw))


def test_sklearn_params(model):
    from sklearn.base import clone

    c = clone(model)
    assert c.get_params()["hidden"] == 64 and not hasattr(c, "denoiser_")


# ---- training paths --------------------------------------------------------------------------
def test_training_native_matches_reference():
    z, y = mixture(200, seed=1)
    kw = dict(epochs=2, batch_size=64, verbose=False)
    a = LatentDiffusion(2, hidden=32, num_layers=1, random_state=3, impl="native").fit(z, y, **kw)
    b = LatentDiffusion(2, hidden=32, num_layers=1, random_state=3, impl="reference").fit(z, y, **kw)
    np.testing.assert_allclose(a.loss_history_, b.loss_history_, rtol=1e-4)


def test_unconditional_fit_and_numpy_input():
    z, _ = mixture(200, seed=2)
    m = LatentDiffusion(2, hidden=32, num_layers=1, sigma_data=1.0, center=False, ema_decay=0.0,
                        random_state=0).fit(z.numpy(), epochs=2, verbose=False)
    assert m.conditional_ is False and m.sigma_data_ == 1.0
    assert torch.equal(m.mean_, torch.zeros(2))
    assert m.sample(10, label=None, steps=4, seed=0).shape == (10, 2)
    with pytest.raises(ValueError, match="without labels"):
        m.sample(10, label=1)


def test_bad_arguments():
    z, y = mixture(50)
    m = LatentDiffusion(2, hidden=16, num_layers=1)
    with pytest.raises(RuntimeError, match="not fitted"):
        m.sample(3)
    with pytest.raises(ValueError, match="'z'"):
        m.fit(torch.randn(50, 3), y, epochs=1, verbose=False)
    with pytest.raises(ValueError, match="'y'"):
        m.fit(z, y[:10], epochs=1, verbose=False)
    with pytest.raises(ValueError, match="'y'"):
        m.fit(z, y + 5, epochs=1, verbose=False)
    with pytest.raises(ValueError, match="'impl'"):
        LatentDiffusion(2, impl="fast").fit(z, y, epochs=1, verbose=False)
    m.fit(z, y, epochs=1, verbose=False)
    with pytest.raises(ValueError, match="'label'"):
        m.sample(3, label=2)
    with pytest.raises(ValueError, match="'steps'"):
        m.sample(3, steps=0)


# ---- pieces ----------------------------------------------------------------------------------
def test_karras_sigmas():
    s = karras_sigmas(10, 0.002, 80.0, 7.0)
    assert len(s) == 11 and s[-1] == 0.0
    assert s[0] == pytest.approx(80.0) and s[-2] == pytest.approx(0.002)
    assert all(a > b for a, b in zip(s, s[1:]))
    assert karras_sigmas(1, 0.002, 80.0) == [80.0, 0.0]


def test_denoiser_groups_match_rows_and_output_starts_at_zero():
    torch.manual_seed(0)
    net = LatentDenoiser(3, hidden=16, num_layers=2, num_classes=2).double()
    x = torch.randn(10, 3, dtype=torch.float64)
    assert torch.equal(net(x, torch.zeros(10), torch.zeros(10, dtype=torch.long)), torch.zeros(10, 3, dtype=torch.float64))
    torch.nn.init.normal_(net.out_proj.weight)
    y = torch.tensor([1] * 5 + [2] * 5)  # label 1, then the null label (2)
    rows = net(x, torch.full((10,), 0.3, dtype=torch.float64), y)
    groups = net.forward_groups(x, 0.3, [1, 2])
    torch.testing.assert_close(groups, rows)
    assert torch.equal(net(x, torch.full((10,), 0.3), None), net(x, torch.full((10,), 0.3), torch.full((10,), 2)))
    with pytest.raises(ValueError, match="'y'"):
        net(x, torch.zeros(10), torch.full((10,), 3))
    dropped = LatentDenoiser(3, label_dropout=0.5).drop_labels(torch.zeros(2000, dtype=torch.long),
                                                               torch.Generator().manual_seed(0))
    assert 0.4 < (dropped == 2).float().mean() < 0.6
