"""PyMaxflow-compatible max-flow/min-cut on segengine's own solver.

Switch from PyMaxflow by changing the import::

    import segengine.maxflow as maxflow
    g = maxflow.Graph[float]()
    ids = g.add_grid_nodes((H, W))
    g.add_grid_edges(ids, weights=1.0, symmetric=True)
    g.add_grid_tedges(ids, source_caps, sink_caps)
    flow = g.maxflow()
    seg = g.get_grid_segments(ids)        # True: sink side

:func:`grid_maxflow` solves a whole grid problem at once on an implicit grid (neighbours
computed, not stored), which is the fastest and leanest path.
"""

from segengine.maxflow import fastmin
from segengine.maxflow.fastmin import abswap_grid, aexpansion_grid
from segengine.maxflow.graph import (Graph, GraphError, GraphFloat, GraphFloat32, GraphInt,
                                     GraphInt32, moore_structure, vonNeumann_structure)
from segengine.maxflow.grid import grid_maxflow

__all__ = ["Graph", "GraphFloat", "GraphInt", "GraphFloat32", "GraphInt32", "GraphError",
           "abswap_grid", "aexpansion_grid", "fastmin", "grid_maxflow", "moore_structure",
           "vonNeumann_structure"]
