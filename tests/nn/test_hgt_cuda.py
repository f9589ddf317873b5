"""HGTConv / HGT and the models built on them, on a GPU: equal to PyG's HGTConv on the same
device and to pygad's own CPU results. Skipped unless a GPU is visible and pygad was built with
CUDA (run them on a GPU machine: ``bench/gpu_checks.sh``)."""
from __future__ import annotations

import pytest
import torch

from pygad.nn import HGT, HGTConv
from pygad.testing import requires_cuda
from test_hgt import METADATA, SIZES, make_graph, pyg_pair

pytestmark = [pytest.mark.cuda, requires_cuda]


def _grads(layer, x, ei, w):
    xs = {k: v.clone().requires_grad_() for k, v in x.items()}
    layer.zero_grad(set_to_none=True)
    out = layer(xs, ei)
    sum((o * w[nt]).sum() for nt, o in out.items()).backward()
    return ({nt: o.detach() for nt, o in out.items()},
            {nt: (t.grad if t.grad is not None else torch.zeros_like(t)) for nt, t in xs.items()},
            {n: p.grad.clone() for n, p in layer.named_parameters() if p.grad is not None})


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 2e-5), (torch.float64, 1e-11)])
@pytest.mark.parametrize("edges", [120, 6])
def test_cuda_layer_matches_pyg_and_cpu(dtype, tol, edges):
    theirs, ours = pyg_pair(dtype)
    x, ei = make_graph(dtype, edges=edges)
    g = torch.Generator().manual_seed(3)
    w = {nt: torch.randn(SIZES[nt], 16, generator=g, dtype=dtype) for nt in ("A", "B", "C")}
    cpu = _grads(ours, x, ei, w)
    dev = lambda d: {k: v.cuda() for k, v in d.items()}  # noqa: E731
    theirs, ours = theirs.cuda(), ours.cuda()
    pyg = _grads(theirs, dev(x), dev(ei), dev(w))
    gpu = _grads(ours, dev(x), dev(ei), dev(w))
    for part in (0, 1):  # outputs, input gradients
        for nt in gpu[part]:
            torch.testing.assert_close(gpu[part][nt].cpu(), cpu[part][nt], rtol=tol, atol=tol)
            torch.testing.assert_close(gpu[part][nt], pyg[part][nt], rtol=tol, atol=tol)
    for name, grad in gpu[2].items():
        torch.testing.assert_close(grad.cpu(), cpu[2][name], rtol=tol, atol=tol)


def test_cuda_encoder_forward_backward_and_determinism():
    x, ei = make_graph(width=8)
    torch.manual_seed(0)
    model = HGT({nt: 8 for nt in SIZES}, 32, METADATA, num_layers=3, heads=4)
    ref = model(x, ei)
    model = model.cuda()
    xc, eic = {k: v.cuda() for k, v in x.items()}, {k: v.cuda() for k, v in ei.items()}
    outs = []
    for _ in range(2):
        model.zero_grad(set_to_none=True)
        out = model(xc, eic)
        sum(o.square().sum() for o in out.values()).backward()
        outs.append(({k: v.detach().cpu() for k, v in out.items()},
                     [p.grad.detach().cpu().clone() for p in model.parameters() if p.grad is not None]))
    for nt in ref:
        torch.testing.assert_close(outs[0][0][nt], ref[nt].detach(), rtol=1e-4, atol=1e-5)
    # the CUDA backward accumulates with atomics: equal up to float rounding between runs
    for a, b in zip(outs[0][1], outs[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_cuda_compacted_relations_match_dense_layer():
    layer = HGTConv(16, 16, METADATA, heads=2).cuda()
    x, ei = make_graph(edges=6)
    xc, eic = {k: v.cuda() for k, v in x.items()}, {k: v.cuda() for k, v in ei.items()}
    out = layer(xc, eic)
    ref = HGTConv(16, 16, METADATA, heads=2, impl="reference")
    ref.load_state_dict(layer.state_dict())
    ref = ref.cuda()
    expect = ref(xc, eic)
    for nt in expect:
        torch.testing.assert_close(out[nt], expect[nt], rtol=1e-5, atol=1e-5)
