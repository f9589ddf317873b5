"""Graph data: the :class:`HeteroGraph` container (validation, cached CSR/CSC, PyG/NumPy/pandas interop).

Dataset loaders live in :mod:`pygad.datasets`.
"""
from .graph import DEFAULT_EDGE_TYPE, DEFAULT_NODE_TYPE, EdgeType, HeteroGraph, NodeType

__all__ = ["HeteroGraph", "NodeType", "EdgeType", "DEFAULT_NODE_TYPE", "DEFAULT_EDGE_TYPE"]
