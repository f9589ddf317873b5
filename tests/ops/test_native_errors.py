"""Named errors at the native boundary (issue #18's "unclear errors"), and the _C stub.

Each bad argument must raise a pygad error (PygadValueError / PygadTypeError, still a
ValueError / TypeError) whose message names the argument, before anything is allocated from
it; and pygad/_C.pyi must list exactly the functions and argument names of the extension.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import pygad
import pygad.ops as ops
from pygad import _C

PTR = torch.tensor([0, 2, 3])
COL = torch.tensor([0, 1, 1])


def _ei():
    return [torch.zeros(2, 0, dtype=torch.int64)]


CASES = [
    # (call, error type, text the message must contain)
    (lambda: ops.segment_sum(torch.zeros(3), PTR), pygad.PygadValueError, "'src'"),
    (lambda: ops.segment_sum(torch.zeros(3, 2), torch.tensor(0)), pygad.PygadValueError, "'ptr'"),
    (lambda: ops.segment_softmax(torch.zeros(3), PTR), pygad.PygadValueError, "'src'"),
    (lambda: ops.segment_sum(np.array([[1.0]], dtype=object), PTR), pygad.PygadTypeError, "'src'"),
    (lambda: ops.segment_sum(np.zeros((3, 1), np.complex64), PTR), pygad.PygadTypeError, "'src'"),
    (lambda: ops.neighbor_aggregate(torch.zeros(3), PTR, COL), pygad.PygadValueError, "'x'"),
    (lambda: ops.neighbor_aggregate(torch.zeros(3, 1), PTR, COL, "median"), pygad.PygadValueError, "'reduce'"),
    (lambda: ops.hetero_csr(_ei(), [3], -1), pygad.PygadValueError, "'num_dst'"),
    (lambda: ops.hetero_csr(_ei(), [3], 2**62), pygad.PygadValueError, "'num_dst'"),
    (lambda: ops.hetero_csr(_ei(), [3], 2**64), pygad.PygadValueError, "'num_dst'"),
    (lambda: ops.hetero_csr(_ei(), [3], 2.5), pygad.PygadTypeError, "'num_dst'"),
    (lambda: ops.hetero_csr(_ei(), [-3], 2), pygad.PygadValueError, "'num_src[0]'"),
    (lambda: ops.hetero_csr(_ei(), [2**63], 2), pygad.PygadValueError, "'num_src[0]'"),
    (lambda: ops.hetero_csr(_ei(), [3], 2, src_offset=[2**63 - 2]), pygad.PygadValueError, "'src_offset'"),
    (lambda: ops.csr_transpose(PTR, COL, -3), pygad.PygadValueError, "'num_cols'"),
    (lambda: ops.csr_transpose(PTR, COL, 2**62), pygad.PygadValueError, "'num_cols'"),
    (lambda: ops.csr_transpose(PTR, torch.tensor(1), 2), pygad.PygadValueError, "'col'"),
    (lambda: ops.edm_precondition(torch.zeros(2, 3), 1.0, repeat=-1), pygad.PygadValueError, "'repeat'"),
    (lambda: ops.edm_precondition(torch.zeros(2, 3), 1.0, repeat=2**62), pygad.PygadValueError, "'repeat'"),
    (lambda: ops.edm_precondition(torch.zeros(2, 3), 1.0, repeat=2**62,
                                  out=(torch.zeros(0, 3), torch.zeros(2))), pygad.PygadValueError, "'repeat"),
    (lambda: ops.edm_step(torch.zeros(2, 3), torch.zeros(2, 3), None, 1.0, 0.5, repeat=-2),
     pygad.PygadValueError, "'repeat'"),
    (lambda: ops.edm_precondition(torch.zeros(2, 3), 0.0), pygad.PygadValueError, "'sigma'"),
    (lambda: ops.edm_step(torch.zeros(2, 3), torch.zeros(2, 3), None, 0.0, 0.0), pygad.PygadValueError, "'sigma'"),
    (lambda: ops.edm_step(torch.zeros(2, 3), torch.zeros(2, 3), None, float("nan"), 0.0),
     pygad.PygadValueError, "'sigma'"),
    (lambda: ops.edm_step(torch.zeros(2, 3), torch.zeros(2, 3), None, 1.0, -0.1), pygad.PygadValueError,
     "'sigma_next'"),
    (lambda: ops.edm_noise(torch.zeros(2, 3), torch.zeros(2, 3), 0.0), pygad.PygadValueError, "'sigma'"),
    (lambda: ops.edm_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3), -1.0), pygad.PygadValueError,
     "'sigma'"),
    (lambda: ops.hetero_attention(torch.zeros(2, 1, 0), torch.zeros(2, 1, 0), torch.zeros(2, 1, 0),
                                  torch.ones(1, 1), PTR, COL, torch.zeros(3, dtype=torch.int64), PTR, COL,
                                  torch.arange(3)), pygad.PygadValueError, "'q'"),
    (lambda: ops.neighbor_sample({("a", "r", "a"): (np.array([0, 0]), np.array([], np.int64))}, {"a": 1},
                                 {"a": np.array([0])}, [2**63]), pygad.PygadValueError, "'fanouts'"),
    (lambda: ops.neighbor_sample({("a", "r", "a"): (np.array([0, 0]), np.array([], np.int64))}, {"a": 2**64},
                                 {"a": np.array([0])}, [1]), pygad.PygadValueError, "'num_nodes"),
]


@pytest.mark.parametrize("i", range(len(CASES)))
def test_named_error(i):
    call, kind, text = CASES[i]
    with pytest.raises(kind) as info:
        call()
    assert text in str(info.value)


def test_native_errors_are_the_family():
    with pytest.raises(pygad.PygadValueError, match="'ptr'"):
        ops.segment_sum(torch.zeros(3, 2), torch.tensor([0, 5, 3]))
    with pytest.raises(pygad.PygadTypeError, match="'src'"):
        _C.segment_sum((0, "float16", (0, 1), -1), (0, "int64", (1,), -1), (0, "float16", (0, 1), -1), 1, 0)


def test_valid_sigma_zero_where_allowed():
    """sigma_next = 0 is the last Euler step and must keep working."""
    x = torch.randn(3, 2, dtype=torch.float64)
    x_next, _ = ops.edm_step(x, x, None, 1.0, 0.0)
    assert torch.isfinite(x_next).all()
    out = ops.edm_heun(x, x, x_next, x, None, 1.0, 0.0)
    assert torch.equal(out, x_next)


def _stub_signatures() -> dict:
    tree = ast.parse((Path(pygad.__file__).parent / "_C.pyi").read_text())
    return {n.name: [a.arg for a in n.args.args] for n in tree.body if isinstance(n, ast.FunctionDef)}


def test_stub_matches_the_extension():
    stub = _stub_signatures()
    native = {name for name in dir(_C) if not name.startswith("_") and callable(getattr(_C, name))}
    assert set(stub) == native
    for name, args in stub.items():
        sig = getattr(_C, name).__doc__.splitlines()[0]     # pybind11: "name(a: T, b: U) -> R"
        got = re.findall(r"(\w+): ", sig[sig.index("(") + 1: sig.rindex(")")])
        assert got == args, name
