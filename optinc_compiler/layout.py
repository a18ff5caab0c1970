"""Netlist -> gdsfactory Component -> GDS / OASIS and PNG (DESIGN.md, layout stage).

Each layer's grid netlist (``optinc_compiler.netlist``) is drawn by placing one PDK cell
per instance, named as in the netlist, at (sum of the column lengths to its left,
``-mode * row_pitch``): the cells' ports coincide, so there is no optical routing and
``get_netlist`` finds every connection. Layers sit side by side in a die outline. The phase
settings do not change the geometry, so one cell per kind serves all instances.

Not drawn yet (next increment of the layout issue): I/O couplers, heater routing to
pads, die outline. gdsfactory is imported here, never on the compile path.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gdsfactory as gf

from optinc_compiler.errors import InputError
from optinc_compiler.netlist import Netlist, layer_netlist
from optinc_compiler.program import PhaseProgram, check_output_folder, mzi_id_prefix, write_atomic
from optinc_compiler.routing import Heater, RoutingPlan, plan_routing
from pdk import get_pdk, tech
from pdk.cells import GRID_CELLS

#: Space between the drawings of two layers, and from the drawings to the die edge.
LAYER_SPACING_UM = 300.0
DIE_MARGIN_UM = 100.0
#: Name of the top cell.
CHIP_CELL = "optinc_chip"


@dataclass(frozen=True)
class LayoutResult:
    """What ``write_layout`` wrote."""

    gds_path: Path
    png_path: Path | None
    n_instances: int
    size_um: tuple[float, float]


def activate_pdk(name: str = "optinc") -> None:
    """Activate the named PDK (the entry point's job; only ``optinc`` exists so far)."""
    if name != "optinc":
        raise InputError(f"unknown PDK {name!r}; allowed: optinc")
    get_pdk().activate()


def _fresh_component(name: str) -> gf.Component:
    """A new top cell called ``name``, replacing one left by an earlier build."""
    if gf.kcl.layout.has_cell(name):
        gf.kcl[name].delete()
    return gf.Component(name=name)


def _column_lengths(netlist: Netlist) -> list[float]:
    """x length of each grid column (the port-to-port length of its cells)."""
    lengths = [0.0] * netlist.n_columns
    for inst in netlist.instances:
        cell = GRID_CELLS[inst.component]()
        first, last = ("o2", "o3") if inst.component == "mzi" else ("o1", "o2")
        lengths[inst.column] = cell.ports[last].center[0] - cell.ports[first].center[0]
    return lengths


def layer_component(
    netlist: Netlist, *, row_pitch_um: float = tech.GRID.row_pitch_um, route: bool = True
) -> gf.Component:
    """Draw one layer's grid and (``route``) its heater wiring and pads; its ports are
    the netlist's ``in{j}`` / ``out{i}``."""
    c = _fresh_component(f"{mzi_id_prefix(netlist.name)}_grid")
    x_left = [0.0]
    for length in _column_lengths(netlist):
        x_left.append(x_left[-1] + length)
    refs = {}
    for inst in netlist.instances:
        ref = c.add_ref(GRID_CELLS[inst.component](), name=inst.name)
        anchor = ref.ports["o2" if inst.component == "mzi" else "o1"].center
        ref.move((x_left[inst.column] - anchor[0], -inst.mode * row_pitch_um - anchor[1]))
        refs[inst.name] = ref
    for port_name, target in netlist.ports:
        inst_name, inst_port = target.split(",")
        c.add_port(port_name, port=refs[inst_name].ports[inst_port])
    c.info["n_instances"] = len(netlist.instances)
    if route:
        plan = plan_routing(
            _heaters(netlist, refs),
            n_rows=netlist.n_modes,
            y_top_um=c.ymax + tech.ROUTING.pitch_um,
            y_bottom_um=c.ymin - tech.ROUTING.pitch_um,
            ground_label=f"GND_{mzi_id_prefix(netlist.name)}_",
        )
        _draw_plan(c, plan)
        c.info["n_pads"] = len(plan.pads)
    return c


#: Heaters of each cell: (signal port, return port, role suffix of the heater id).
HEATER_PORTS = {
    "mzi": (("e1", "e2", "theta"), ("e3", "e4", "phi")),
    "attenuator": (("e1", "e2", "theta"), ("e3", "e4", "phi")),
    "phase_shifter": (("e1", "e2", "phase"),),
}


def _heaters(netlist: Netlist, refs: dict[str, Any]) -> list[Heater]:
    """Every heater of the grid with its contacts' centres (ports sit on their north edges)."""
    half = tech.TERMINAL.size_um / 2
    out = []
    for inst in netlist.instances:
        for signal, ret, role in HEATER_PORTS.get(inst.component, ()):
            ps, pr = refs[inst.name].ports[signal], refs[inst.name].ports[ret]
            out.append(
                Heater(
                    heater_id=f"{inst.name}_{role}",
                    row=inst.mode,
                    x_signal_um=float(ps.center[0]),
                    x_return_um=float(pr.center[0]),
                    y_um=float(ps.center[1]) - half,
                )
            )
    return out


def _draw_plan(c: gf.Component, plan: RoutingPlan) -> None:
    """Wires as rectangles on M2 (each segment extended by half a width: square corners),
    pads as M2 squares with a passivation opening and a label."""
    w = tech.ROUTING.width_um / 2
    for wire in plan.wires:
        for (x0, y0), (x1, y1) in itertools.pairwise(wire.points):
            if (x0, y0) == (x1, y1):
                continue
            xa, xb, ya, yb = min(x0, x1) - w, max(x0, x1) + w, min(y0, y1) - w, max(y0, y1) + w
            c.add_polygon([(xa, ya), (xb, ya), (xb, yb), (xa, yb)], layer="M2")
    size, opening = tech.RULES.pad_size_um / 2, tech.RULES.pad_size_um / 2 - 5.0
    for pad in plan.pads:
        for layer, half in (("M2", size), ("PAD", size), ("PADOPEN", opening)):
            x, y = pad.x_um, pad.y_um
            c.add_polygon(
                [(x - half, y - half), (x + half, y - half), (x + half, y + half), (x - half, y + half)],
                layer=layer,
            )
        c.add_label(pad.label, position=(pad.x_um, pad.y_um), layer="TEXT")


def chip_component(
    program: PhaseProgram, *, layer_names: Sequence[str] = (), route: bool = True
) -> gf.Component:
    """All (or the named) layers of the program side by side, top edges aligned (their
    top pad rows form the die's top edge), inside a die outline on FLOORPLAN."""
    layers = [program.layer(n) for n in layer_names] if layer_names else list(program.layers)
    chip = _fresh_component(CHIP_CELL)
    x = 0.0
    for layer in layers:
        grid = layer_component(layer_netlist(layer), route=route)
        ref = chip.add_ref(grid, name=mzi_id_prefix(layer.name))
        ref.move((x - ref.xmin, -ref.ymax))
        x = ref.xmax + LAYER_SPACING_UM
        for port in ref.ports:
            chip.add_port(f"{mzi_id_prefix(layer.name)}_{port.name}", port=port)
    m = DIE_MARGIN_UM
    x0, y0, x1, y1 = chip.xmin - m, chip.ymin - m, chip.xmax + m, chip.ymax + m
    chip.add_polygon([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], layer="FLOORPLAN")
    return chip


def write_layout(
    program: PhaseProgram,
    gds_path: str | os.PathLike[str],
    *,
    png_path: str | os.PathLike[str] | None = None,
    layer_names: Sequence[str] = (),
    route: bool = True,
) -> LayoutResult:
    """Build the chip and write GDS (or OASIS for ``.oas``) and optionally a PNG.

    ``route=False`` draws the meshes without heater wiring and pads (for meshes too
    large for edge pads). Files are written next to their target under a temporary
    name, then renamed, so a failure leaves no partial file. Same program, same bytes
    (no timestamps).
    """
    gds, png = Path(gds_path), Path(png_path) if png_path is not None else None
    for path in (gds, png):
        if path is not None:
            check_output_folder(path)
    if gds.suffix.lower() not in (".gds", ".oas"):
        raise InputError(f"layout file {str(gds)!r} must end in .gds or .oas")
    activate_pdk()
    chip = chip_component(program, layer_names=layer_names, route=route)
    write_atomic(gds, lambda tmp: chip.write_gds(tmp, with_metadata=True))  # ports, for LVS
    if png is not None:
        aspect = chip.ysize / chip.xsize if chip.xsize > 0 else 1.0
        height_px = int(min(1600, max(300, 1600 * aspect)))
        write_atomic(png, lambda tmp: render_png(gds, tmp, width_px=1600, height_px=height_px))
    n_instances = sum(ref.cell.info.get("n_instances", 0) for ref in chip.insts)
    return LayoutResult(
        gds_path=gds, png_path=png, n_instances=int(n_instances), size_um=(chip.xsize, chip.ysize)
    )


def render_png(
    gds_path: Path,
    png_path: Path,
    *,
    width_px: int = 1600,
    height_px: int = 900,
    box_um: tuple[float, float, float, float] | None = None,
) -> None:
    """Headless render of a GDS file with klayout (all hierarchy levels): the whole
    chip, or the window ``box_um`` = (left, bottom, right, top)."""
    import klayout.lay as lay

    view = lay.LayoutView()
    view.load_layout(str(gds_path), True)
    view.set_config("text-visible", "false")  # pad labels: readable in KLayout, clutter here
    floorplan = tech.LAYERS["FLOORPLAN"]
    it = view.begin_layers()
    while not it.at_end():
        props = it.current()
        if (props.source_layer, props.source_datatype) == floorplan:
            props.dither_pattern = 1  # hollow: the die outline only
            view.set_layer_properties(it, props)
        it.next()
    view.max_hier()
    if box_um is None:
        view.zoom_fit()
    else:
        import klayout.db as kdb

        view.zoom_box(kdb.DBox(*box_um))
    view.save_image(str(png_path), width_px, height_px)
