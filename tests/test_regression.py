"""Pinned phases for fixed matrices: a change of nulling order, phase choice or id
scheme shows up here (regenerate deliberately with ``pytest --force-regen``)."""

from __future__ import annotations

import numpy as np
import pytest

from optinc_compiler.compiler import CompileOptions, compile_layer
from optinc_compiler.program import MeshStage

# Closed-form matrices (no random generator whose stream could change between versions).
DFT5 = np.exp(-2j * np.pi * np.outer(np.arange(5), np.arange(5)) / 5) / np.sqrt(5)
PHASED_PERMUTATION4 = np.eye(4)[[2, 0, 3, 1]] * np.exp(1j * np.array([0.1, 0.2, 0.3, 0.4]))


@pytest.mark.parametrize("topology", ["clements", "reck"])
@pytest.mark.parametrize(("name", "matrix"), [("dft5", DFT5), ("perm4", PHASED_PERMUTATION4)])
def test_pinned_phases(topology, name, matrix, data_regression, num_regression):
    layer = compile_layer(name, matrix, CompileOptions(method="unitary", topology=topology))
    (stage,) = layer.stages
    assert isinstance(stage, MeshStage)
    mesh = stage.mesh
    data_regression.check({"ids": list(stage.mzi_ids), "depth": mesh.depth})
    num_regression.check(
        {"theta": mesh.theta_rad, "phi": mesh.phi_rad},
        default_tolerance={"atol": 1e-12, "rtol": 0},
    )
    np.testing.assert_allclose(layer.matrix(), matrix, atol=1e-14)


DFT4 = np.exp(-2j * np.pi * np.outer(np.arange(4), np.arange(4)) / 4) / 2


def test_pinned_netlist_of_a_4x4_mesh(data_regression):
    """Instances, cells, grid places, settings (1e-9 rad), connections and ports of the
    Clements 4x4 DFT: what layout, LVS and simulation share."""
    from optinc_compiler.netlist import layer_netlist

    layer = compile_layer("dft4", DFT4, CompileOptions(method="unitary"))
    netlist = layer_netlist(layer, terminate=True)
    data_regression.check(
        {
            "instances": {
                i.name: {
                    "component": i.component,
                    "column": i.column,
                    "mode": i.mode,
                    "settings": {k: round(v, 9) for k, v in i.settings},
                }
                for i in netlist.instances
            },
            "connections": [list(c) for c in sorted(netlist.connections)],
            "ports": dict(netlist.ports),
        }
    )


def _cell_record(component) -> dict:
    """Ports (name, centre, orientation, width, layer, type), bounding box and our info
    keys of a drawn cell, rounded to the 1 nm grid."""
    ports = {
        p.name: {
            "center_um": [round(float(v), 3) for v in p.center],
            "orientation": round(float(p.orientation), 3),
            "width_um": round(float(p.width), 3),
            "layer": [p.layer_info.layer, p.layer_info.datatype],
            "port_type": p.port_type,
        }
        for p in component.ports
    }
    box = component.dbbox()
    ours = {k: round(float(v), 6) for k, v in component.info.model_dump().items() if k.endswith("_um")}
    return {
        "ports": ports,
        "bbox_um": [round(box.left, 3), round(box.bottom, 3), round(box.right, 3), round(box.top, 3)],
        "info": ours,
    }


def test_pinned_pdk_cells(data_regression):
    """Every PDK cell's ports, extent and lengths at its default settings: a geometry
    change in pdk/ shows up here (regenerate deliberately with ``--force-regen``)."""
    pytest.importorskip("gdsfactory")
    from optinc_compiler.layout import activate_pdk
    from pdk import cells

    activate_pdk()
    makers = {**cells.GRID_CELLS, **cells.IO_CELLS, **cells.PARTS}
    data_regression.check({name: _cell_record(make()) for name, make in sorted(makers.items())})


def test_pinned_structure_of_a_segmented_netlist(data_regression):
    """The grid of a 3x5 layer in 2x2 tiles with its terminators: fan chains, crossing
    columns, tiles, names, connections and ports (settings aside: the ud fit iterates)."""
    from optinc_compiler.netlist import layer_netlist

    w = np.arange(15, dtype=float).reshape(3, 5) / 15 + 0.1
    layer = compile_layer("seg", w, CompileOptions(method="ud-segmented", block_size=2))
    netlist = layer_netlist(layer, terminate=True)
    data_regression.check(
        {
            "instances": {i.name: [i.component, i.column, i.mode] for i in netlist.instances},
            "connections": [list(c) for c in sorted(netlist.connections)],
            "ports": dict(netlist.ports),
        }
    )
