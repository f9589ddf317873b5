"""Accept a graph in any form pygad's estimators take.

A :class:`HeteroGraph`, or a PyG ``HeteroData`` / ``Data`` (duck-typed; torch_geometric is
not imported).
"""
from __future__ import annotations

from .graph import HeteroGraph


def as_hetero_graph(graph, name: str = "graph") -> HeteroGraph:
    """``graph`` itself when it is a :class:`HeteroGraph`, else its :meth:`HeteroGraph.from_pyg` conversion.

    Args:
        graph: a HeteroGraph, a PyG ``HeteroData`` or a homogeneous PyG ``Data``.
        name: the converted graph's name (for printing).

    Returns:
        A :class:`HeteroGraph`.

    Raises:
        TypeError: for anything else.

    Examples:
        >>> from pygad.data import HeteroGraph
        >>> g = HeteroGraph.homogeneous([[0, 1], [1, 0]], 2)
        >>> as_hetero_graph(g) is g
        True
    """
    if isinstance(graph, HeteroGraph):
        return graph
    hetero = hasattr(graph, "node_types") and hasattr(graph, "edge_types")
    if hetero or (hasattr(graph, "edge_index") and hasattr(graph, "num_nodes")):
        return HeteroGraph.from_pyg(graph, name=name)
    raise TypeError(f"'graph' must be a pygad.data.HeteroGraph or a torch_geometric HeteroData / Data, got "
                    f"{type(graph).__name__} (convert with HeteroGraph.from_edges)")
