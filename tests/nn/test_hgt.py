"""HGTConv / HGT: equality with torch_geometric's HGTConv, structure, and bad input."""
from __future__ import annotations

import pytest
import torch

from pygad.nn import HGT, HGTConv

METADATA = (["A", "B", "C", "D"],
            [("A", "ab", "B"), ("B", "ba", "A"), ("A", "aa", "A"), ("A", "ac", "C"), ("C", "ca", "A"),
             ("D", "dc", "C")])
SIZES = {"A": 40, "B": 25, "C": 15, "D": 6}


def make_graph(dtype=torch.float32, width=16, seed=0, edges=120, edge_types=None):
    g = torch.Generator().manual_seed(seed)
    x = {nt: torch.randn(n, width, dtype=dtype, generator=g) for nt, n in SIZES.items()}
    ei = {et: torch.stack([torch.randint(0, SIZES[et[0]], (edges,), generator=g),
                           torch.randint(0, SIZES[et[2]], (edges,), generator=g)])
          for et in (edge_types if edge_types is not None else METADATA[1])}
    return x, ei


def pyg_pair(dtype, width=16, heads=4, in_channels=None):
    pyg_nn = pytest.importorskip("torch_geometric.nn", reason="torch_geometric is not installed")
    torch.manual_seed(0)
    theirs = pyg_nn.HGTConv(width if in_channels is None else in_channels, width, METADATA, heads=heads).to(dtype)
    with torch.no_grad():  # move away from the identity-like init so every weight matters
        for p in theirs.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return theirs, HGTConv.from_pyg(theirs)


def assert_same_outputs_and_input_grads(theirs, ours, x, ei, tol=1e-12):
    """Outputs and input gradients (of a squared-sum loss) of two layers on the same graph."""
    xa = {k: v.clone().requires_grad_() for k, v in x.items()}
    xb = {k: v.clone().requires_grad_() for k, v in x.items()}
    out_a, out_b = theirs(xa, ei), ours(xb, ei)
    out_b = {nt: o for nt, o in out_b.items() if o is not None}   # PyG 2.8 leaves those keys out
    assert sorted(out_a) == sorted(out_b)
    for nt in out_a:
        torch.testing.assert_close(out_b[nt], out_a[nt], rtol=tol, atol=tol)
    sum(o.square().sum() for o in out_a.values()).backward()
    sum(o.square().sum() for o in out_b.values()).backward()
    for nt in x:
        ga = xa[nt].grad if xa[nt].grad is not None else torch.zeros_like(x[nt])
        gb = xb[nt].grad if xb[nt].grad is not None else torch.zeros_like(x[nt])
        torch.testing.assert_close(gb, ga, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
@pytest.mark.parametrize("edges", [120, 6])   # 6: most relations reach few sources (compacted K/V)
def test_matches_pyg_outputs_and_gradients(dtype, tol, edges):
    theirs, ours = pyg_pair(dtype)
    x, ei = make_graph(dtype, edges=edges)
    if edges == 6:
        structure = ours.structure(x, ei)
        assert any(rows is not None for csr in structure.per_dst.values() for rows in csr.src_rows)
    xa = {k: v.clone().requires_grad_() for k, v in x.items()}
    xb = {k: v.clone().requires_grad_() for k, v in x.items()}
    out_a, out_b = theirs(xa, ei), ours(xb, ei)
    # D is no destination: None (PyG's documented contract; PyG 2.8 leaves the key out)
    assert out_b.pop("D") is None
    assert sorted(out_a) == sorted(out_b) == ["A", "B", "C"]
    for nt in out_a:
        torch.testing.assert_close(out_b[nt], out_a[nt], rtol=tol, atol=tol)
    w = {nt: torch.randn_like(o) for nt, o in out_a.items()}
    sum((o * w[nt]).sum() for nt, o in out_a.items()).backward()
    sum((o * w[nt]).sum() for nt, o in out_b.items()).backward()
    for nt in x:
        ga = xa[nt].grad if xa[nt].grad is not None else torch.zeros_like(x[nt])
        gb = xb[nt].grad if xb[nt].grad is not None else torch.zeros_like(x[nt])
        torch.testing.assert_close(gb, ga, rtol=tol, atol=tol)
    H, R, D = 4, len(METADATA[1]), 4
    torch.testing.assert_close(ours.k_rel.grad, theirs.k_rel.weight.grad.view(H, R, D, D).transpose(0, 1),
                               rtol=tol, atol=tol)
    torch.testing.assert_close(ours.v_rel.grad, theirs.v_rel.weight.grad.view(H, R, D, D).transpose(0, 1),
                               rtol=tol, atol=tol)
    for r, et in enumerate(METADATA[1]):
        torch.testing.assert_close(ours.p_rel.grad[r], theirs.p_rel["__".join(et)].grad.view(H), rtol=tol, atol=tol)
    for nt in SIZES:
        torch.testing.assert_close(ours.kqv_lin[nt].weight.grad, theirs.kqv_lin.lins[nt].weight.grad,
                                   rtol=tol, atol=tol)
    for i, nt in enumerate(METADATA[0]):
        if nt not in out_a:
            continue
        for ours_p, theirs_p in ((ours.out_lin[nt].weight, theirs.out_lin.lins[nt].weight),
                                 (ours.out_lin[nt].bias, theirs.out_lin.lins[nt].bias)):
            torch.testing.assert_close(ours_p.grad, theirs_p.grad, rtol=tol, atol=tol)
        torch.testing.assert_close(ours.skip.grad[i], theirs.skip[nt].grad.view(()), rtol=tol, atol=tol)


def test_fused_output_block_gradcheck_float64():
    """The output block's own backward (gelu, projection, gated skip in one node) against finite
    differences, for every input including the gate."""
    from pygad.ops.hgt_blocks import GatedOutput
    g = torch.Generator().manual_seed(1)
    args = [torch.randn(shape, dtype=torch.float64, generator=g).requires_grad_()
            for shape in ((7, 5), (7, 5), (5, 5), (5,), ())]
    assert torch.autograd.gradcheck(GatedOutput.apply, args)
    agg, x, w, b, gate = args
    expected = torch.lerp(x, torch.nn.functional.linear(torch.nn.functional.gelu(agg), w, b), gate.sigmoid())
    torch.testing.assert_close(GatedOutput.apply(*args), expected)


def test_matches_pyg_with_different_input_widths():
    """Node types of different input widths take the per-relation weight folding path."""
    widths = {"A": 16, "B": 8, "C": 12, "D": 5}
    theirs, ours = pyg_pair(torch.float64, in_channels=widths)
    g = torch.Generator().manual_seed(3)
    x = {nt: torch.randn(SIZES[nt], w, dtype=torch.float64, generator=g) for nt, w in widths.items()}
    _, ei = make_graph(torch.float64)
    assert_same_outputs_and_input_grads(theirs, ours, x, ei)
    for nt in x:
        torch.testing.assert_close(ours.kqv_lin[nt].weight.grad, theirs.kqv_lin.lins[nt].weight.grad,
                                   rtol=1e-12, atol=1e-12)


def test_empty_and_tiny_relations_match_pyg():
    """A relation with no edges and one reaching 3 sources (compacted) alongside dense ones."""
    theirs, ours = pyg_pair(torch.float64)
    x, ei = make_graph(torch.float64)
    ei[("A", "ab", "B")] = torch.empty(2, 0, dtype=torch.int64)
    ei[("A", "aa", "A")] = ei[("A", "aa", "A")][:, :3]
    assert_same_outputs_and_input_grads(theirs, ours, x, ei)


def test_destination_without_edges_keeps_defined_output():
    theirs, ours = pyg_pair(torch.float64)
    present = [et for et in METADATA[1] if et[2] != "B"]  # B is a destination type with no edges now
    x, ei = make_graph(torch.float64, edge_types=present)
    out_a, out_b = theirs(x, ei), ours(x, ei)
    assert torch.isfinite(out_b["B"]).all()
    torch.testing.assert_close(out_b["B"], out_a["B"])


def test_reference_impl_agrees_with_native():
    x, ei = make_graph(torch.float64)
    native = HGTConv(16, 16, METADATA, heads=2).double()
    reference = HGTConv(16, 16, METADATA, heads=2, impl="reference").double()
    reference.load_state_dict(native.state_dict())
    for nt, o in native(x, ei).items():
        torch.testing.assert_close(o, reference(x, ei)[nt])


def test_gradcheck_through_layer_float64():
    x, ei = make_graph(torch.float64, width=4, edges=20)
    conv = HGTConv(4, 4, METADATA, heads=2).double()
    xb = x["B"].clone().requires_grad_()  # B feeds A (relation ba) and receives from A

    def f(b):
        out = conv({**x, "B": b}, ei)
        return out["A"], out["B"]
    assert torch.autograd.gradcheck(f, (xb,), fast_mode=True)  # the op itself is checked in full mode


def test_structure_cache_follows_in_place_edits():
    x, ei = make_graph()
    conv = HGTConv(16, 16, METADATA, heads=2)
    before = conv(x, ei)["B"].detach().clone()
    ei[("A", "ab", "B")][1].fill_(0)  # in-place edit bumps the tensor version: structure is rebuilt
    after = conv(x, ei)["B"]
    assert not torch.allclose(before, after)


def test_repr_and_reset_parameters():
    conv = HGTConv({"A": 8, "B": 8, "C": 8, "D": 8}, 16, METADATA, heads=4)
    assert "HGTConv(" in repr(conv) and "heads=4" in repr(conv)
    with torch.no_grad():
        conv.p_rel.mul_(3)
    conv.reset_parameters()
    assert torch.all(conv.p_rel == 1)


@pytest.mark.parametrize("mutate, exc, pattern", [
    (lambda x, ei: x.update(E=torch.randn(3, 16)), ValueError, "unknown node type 'E'"),
    (lambda x, ei: ei.update({("A", "zz", "B"): torch.zeros(2, 1, dtype=torch.long)}), ValueError,
     "unknown edge type"),
    (lambda x, ei: x.update(A=torch.randn(40, 7)), ValueError, r"x_dict\['A'\].*shape \[N, 16\]"),
    (lambda x, ei: ei.update({("A", "ab", "B"): torch.tensor([[0, 99], [0, 1]])}), ValueError, "source index 99"),
    (lambda x, ei: ei.update({("A", "ab", "B"): torch.tensor([[0, 1, 2]])}), ValueError, r"shape \[2, E\]"),
    (lambda x, ei: ei.update({("A", "ab", "B"): torch.tensor([[0], [1]], dtype=torch.int32)}), TypeError, "int64"),
    (lambda x, ei: x.pop("B"), ValueError, "needs features for node type 'B'"),
])
def test_bad_input_is_a_clear_error(mutate, exc, pattern):
    x, ei = make_graph()
    mutate(x, ei)
    with pytest.raises(exc, match=pattern):
        HGTConv(16, 16, METADATA, heads=2)(x, ei)


def test_constructor_errors():
    with pytest.raises(ValueError, match="divisible"):
        HGTConv(16, 15, METADATA, heads=2)
    with pytest.raises(ValueError, match="edge type"):
        HGTConv(16, 16, (["A"], [("A", "x", "Z")]))


def test_hgt_encoder_four_hops_and_backward():
    x, ei = make_graph(width=8)
    model = HGT({nt: 8 for nt in SIZES}, 32, METADATA)  # defaults: 4 layers, 4 heads
    assert len(model.convs) == 4 and model.convs[0].heads == 4
    out = model(x, ei)
    assert set(out) == set(SIZES)  # node types that are no destination are carried through
    assert all(o.shape == (SIZES[nt], 32) for nt, o in out.items())
    sum(o.sum() for o in out.values()).backward()
    assert all(p.grad is not None for p in model.convs[0].kqv_lin["A"].parameters())
    assert "HGT(" in repr(model)


def test_homogeneous_graph_is_one_type_one_relation():
    md = (["n"], [("n", "to", "n")])
    x = {"n": torch.randn(30, 8)}
    ei = {("n", "to", "n"): torch.randint(0, 30, (2, 90))}
    out = HGT(8, 16, md, num_layers=2, heads=2)(x, ei)
    assert out["n"].shape == (30, 16)
