"""Netlist -> gdsfactory Component -> GDS / OASIS and PNG (docs/architecture.md, "Data flow").

Each layer's grid netlist (``optinc_compiler.netlist``) is drawn by placing one PDK cell
per instance, named as in the netlist, at (sum of the column lengths to its left,
``-mode * row_pitch``): the cells' ports coincide, so there is no optical routing and
``get_netlist`` finds every connection. The phase settings do not change the geometry,
so one cell per kind serves all instances.

Above and below the grid, every heater is wired to its own bond pad and the returns to
ground pads (``optinc_compiler.routing``); grids whose heaters do not fit edge pad rows
(above 16 rows) get a flip-chip bump over each heater instead (``pads="auto"``; "edge"
or "bumps" force one). West and east of the wiring, the layer's
inputs and outputs reach their I/O couplers (``io="grating"``, the default, or
``"edge"``): fan waveguides of the netlist's ``io_fan`` cells run straight out of the
grid at the row pitch, past the pads' x extent, then S-bend to the 127 um fibre pitch,
so no waveguide passes under the metal. Layers sit side by side inside a die outline on
FLOORPLAN; edge couplers need their facets on the die edge, so they take one layer
(the west edge for inputs, the east edge for outputs). gdsfactory is imported here,
never on the compile path.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import gdsfactory as gf

from optinc_compiler.errors import InputError
from optinc_compiler.files import check_output, temporary_for, write_all_atomic
from optinc_compiler.gds import LAYOUT_SUFFIXES
from optinc_compiler.limits import die_warnings, enforce, report_progress
from optinc_compiler.netlist import TWO_ROW, IoSpec, Netlist, add_io, add_terminators, layer_netlist, strip_io
from optinc_compiler.program import PhaseProgram
from optinc_compiler.routing import Heater, RoutingPlan, edge_pads_fit, plan_bumps, plan_routing
from pdk import get_pdk, tech
from pdk.cells import GRID_CELLS, IO_CELLS, io_fan
from pdk.tech import PORTS

#: Space between the drawings of two layers, and from the drawings to the die edge.
LAYER_SPACING_UM = 300.0
DIE_MARGIN_UM = 100.0
#: Heater pads: rows at the die edge, flip-chip bumps over the heaters, or edge pads
#: where they fit and bumps where not (per layer).
PAD_KINDS = ("auto", "edge", "bumps")
#: I/O options: grating couplers, edge couplers, or the grid's bare ports.
IO_KINDS = ("grating", "edge", "none")
#: x distance from the heater wiring and pads to the fan waveguides' S-bends.
IO_CLEARANCE_UM = 50.0
#: Name of the top cell.
CHIP_CELL = "optinc_chip"


@dataclass(frozen=True)
class LayoutResult:
    """What ``write_layout`` wrote."""

    gds_path: Path
    png_path: Path | None
    n_instances: int
    size_um: tuple[float, float]
    #: size warnings (``optinc_compiler.limits``): the die beyond one reticle field
    warnings: tuple[str, ...] = ()


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
        first, last = (
            (PORTS.upper_in, PORTS.upper_out)
            if inst.component in TWO_ROW
            else (PORTS.through_in, PORTS.through_out)
        )
        lengths[inst.column] = cell.ports[last].center[0] - cell.ports[first].center[0]
    return lengths


def layer_component(
    netlist: Netlist,
    *,
    row_pitch_um: float = tech.GRID.row_pitch_um,
    route: bool = True,
    io: str = "none",
    pads: str = "auto",
) -> gf.Component:
    """Draw one layer's grid netlist and (``route``) its heater wiring and pads (``pads``:
    edge pad rows, flip-chip bumps, or ``auto``: edge pads where they fit), and
    (``io`` = grating or edge) its I/O couplers; its ports are the netlist's ``in{j}`` /
    ``out{i}`` (the couplers' fibre sides with I/O). Unused outputs always get their
    terminators (a netlist that has them already is drawn the same)."""
    _check_io(io)
    _check_pads(pads)
    if netlist.io is not None:
        raise InputError(f"draw the grid netlist of {netlist.name!r}; the layout adds the I/O itself")
    netlist = strip_io(netlist)  # the grid; the layout adds the terminators itself
    c = _fresh_component(f"{netlist.id}_grid")
    x_left = [0.0]
    for length in _column_lengths(netlist):
        x_left.append(x_left[-1] + length)
    refs = {}
    for inst in netlist.instances:
        ref = c.add_ref(GRID_CELLS[inst.component](), name=inst.name)
        anchor = ref.ports[PORTS.upper_in if inst.component in TWO_ROW else PORTS.through_in].center
        ref.move((x_left[inst.column] - anchor[0], -inst.mode * row_pitch_um - anchor[1]))
        refs[inst.name] = ref
    c.info["n_instances"] = len(netlist.instances)
    if route:
        heaters, ground = _heaters(netlist, refs), f"GND_{netlist.id}_"
        y_top, y_bottom = c.ymax + tech.ROUTING.pitch_um, c.ymin - tech.ROUTING.pitch_um
        if pads == "bumps" or (pads == "auto" and not edge_pads_fit(heaters, n_rows=netlist.n_modes)):
            plan = plan_bumps(heaters, y_top_um=y_top, ground_label=ground)
        else:
            plan = plan_routing(
                heaters, n_rows=netlist.n_modes, y_top_um=y_top, y_bottom_um=y_bottom, ground_label=ground
            )
        _draw_plan(c, plan)
        c.info["n_pads"] = len(plan.pads)
    full = add_terminators(netlist)
    if io != "none":
        lead_in, lead_out = x_left[0] - c.xmin + IO_CLEARANCE_UM, c.xmax - x_left[-1] + IO_CLEARANCE_UM
        full = add_io(full, IoSpec(io, lead_in_um=round(lead_in, 3), lead_out_um=round(lead_out, 3)))
    _draw_io(c, full, refs)
    c.info["n_instances"] = len(full.instances)
    for port_name, target in full.ports:
        inst_name, inst_port = target.split(",")
        c.add_port(port_name, port=refs[inst_name].ports[inst_port])
    return c


def _check_pads(pads: str) -> None:
    if pads not in PAD_KINDS:
        raise InputError(f"unknown pad option {pads!r}; allowed: {', '.join(PAD_KINDS)}")


def _check_io(io: str) -> None:
    if io not in IO_KINDS:
        raise InputError(f"unknown I/O option {io!r}; allowed: {', '.join(IO_KINDS)}")


def _draw_io(c: gf.Component, netlist: Netlist, refs: dict[str, Any]) -> None:
    """Place the fans, couplers and terminators of ``netlist`` (added to ``refs``), each
    joined to the port its connection names: inputs west of the grid, outputs east."""
    io_instances = [i for i in netlist.instances if i.component in IO_CELLS]
    partner = {}
    for a, b in netlist.connections:
        partner[a], partner[b] = b, a
    # fans first (they join the grid), then couplers (they join the fans)
    for inst in sorted(io_instances, key=lambda i: i.component != "io_fan"):
        west = inst.column < 0
        if inst.component == "io_fan":
            s = dict(inst.settings)
            cell = io_fan(dx_um=s["dx_um"], dy_um=s["dy_um"], lead_um=s["lead_um"], bend_first=west)
            own = "o2" if west else "o1"
        else:
            cell, own = IO_CELLS[inst.component](), "o1"
        ref = c.add_ref(cell, name=inst.name)
        if inst.component != "io_fan" and west:
            ref.rotate(180)  # the coupler's waveguide port faces east, towards the grid
        other_inst, other_port = partner[f"{inst.name},{own}"].split(",")
        target, mine = refs[other_inst].ports[other_port].center, ref.ports[own].center
        ref.move((target[0] - mine[0], target[1] - mine[1]))
        refs[inst.name] = ref


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
    bump = tech.BUMP.size_um / 2
    for pad in plan.pads:
        shapes = (
            (("M2", bump), ("BUMP", bump))
            if pad.kind == "bump"
            else (("M2", size), ("PAD", size), ("PADOPEN", opening))
        )
        for layer, half in shapes:
            x, y = pad.x_um, pad.y_um
            c.add_polygon(
                [(x - half, y - half), (x + half, y - half), (x + half, y + half), (x - half, y + half)],
                layer=layer,
            )
        c.add_label(pad.label, position=(pad.x_um, pad.y_um), layer="TEXT")


def chip_component(
    program: PhaseProgram,
    *,
    layer_names: Sequence[str] = (),
    route: bool = True,
    io: str = "grating",
    pads: str = "auto",
) -> gf.Component:
    """All (or the named) layers of the program side by side, top edges aligned (their
    top pad rows form the die's top edge), inside a die outline on FLOORPLAN; with edge
    couplers (one layer only) the die's west and east edges run through their facets."""
    _check_io(io)
    layers = [program.layer(n) for n in layer_names] if layer_names else list(program.layers)
    if io == "edge" and len(layers) > 1:
        raise InputError(
            f"edge couplers need the layer's facets on the die edge: lay out one of the {len(layers)} "
            "layers at a time (--layer NAME) or use --io grating"
        )
    chip = _fresh_component(CHIP_CELL)
    x = 0.0
    for k, layer in enumerate(layers):
        report_progress("layout", layer.name, layer.n_mzis, k, len(layers))
        grid = layer_component(layer_netlist(layer), route=route, io=io, pads=pads)
        ref = chip.add_ref(grid, name=layer.id)
        ref.move((x - ref.xmin, -ref.ymax))
        x = ref.xmax + LAYER_SPACING_UM
        for port in ref.ports:
            chip.add_port(f"{layer.id}_{port.name}", port=port)
    m, mx = DIE_MARGIN_UM, 0.0 if io == "edge" else DIE_MARGIN_UM
    x0, y0, x1, y1 = chip.xmin - mx, chip.ymin - m, chip.xmax + mx, chip.ymax + m
    chip.add_polygon([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], layer="FLOORPLAN")
    return chip


def write_layout(
    program: PhaseProgram,
    gds_path: str | os.PathLike[str],
    *,
    png_path: str | os.PathLike[str] | None = None,
    layer_names: Sequence[str] = (),
    route: bool = True,
    io: str = "grating",
    pads: str = "auto",
    strict: bool = False,
) -> LayoutResult:
    """Build the chip and write GDS (or OASIS for ``.oas``) and optionally a PNG.

    ``route=False`` draws the meshes without heater wiring and pads (for meshes too
    large for edge pads); ``pads`` picks edge pad rows, flip-chip bumps or ``auto`` (edge
    pads where they fit, per layer); ``io`` the I/O couplers (grating, edge or none). Files
    are written next to their target under a temporary name, then renamed, so a
    failure leaves no partial file. Same program, same bytes (no timestamps). A die
    beyond one reticle field is a warning in the result, or with ``strict`` a
    ``LimitError`` before anything is written.
    """
    gds, png = Path(gds_path), Path(png_path) if png_path is not None else None
    for path in (gds, png):
        if path is not None:
            check_output(path)
    if gds.suffix.lower() not in LAYOUT_SUFFIXES:
        raise InputError(f"layout file {str(gds)!r} must end in .gds or .oas")
    _check_io(io)
    _check_pads(pads)
    activate_pdk()
    chip = chip_component(program, layer_names=layer_names, route=route, io=io, pads=pads)
    warnings = enforce(die_warnings(chip.xsize, chip.ysize), strict=strict)
    aspect = chip.ysize / chip.xsize if chip.xsize > 0 else 1.0
    height_px = int(min(1600, max(300, 1600 * aspect)))

    writers: list[tuple[Path, Callable[[Path], object]]] = [
        (gds, lambda tmp: chip.write_gds(tmp, with_metadata=True))  # ports, for LVS
    ]
    if png is not None:  # rendered from the GDS's temporary: both files or neither
        render = partial(render_png, temporary_for(gds), width_px=1600, height_px=height_px)
        writers.append((png, render))
    write_all_atomic(writers)
    n_instances = sum(ref.cell.info.get("n_instances", 0) for ref in chip.insts)
    return LayoutResult(
        gds_path=gds,
        png_path=png,
        n_instances=int(n_instances),
        size_um=(chip.xsize, chip.ysize),
        warnings=warnings,
    )


def render_png(
    gds_path: Path,
    png_path: Path,
    *,
    width_px: int = 1600,
    height_px: int = 900,
    box_um: tuple[float, float, float, float] | None = None,
    floorplan: tuple[int, int] = tech.LAYERS["FLOORPLAN"],
) -> None:
    """Headless render of a GDS file with klayout (all hierarchy levels): the whole
    chip, or the window ``box_um`` = (left, bottom, right, top); ``floorplan``: the die
    outline's layer, drawn hollow."""
    import klayout.lay as lay

    view = lay.LayoutView()
    view.load_layout(str(gds_path), True)
    view.set_config("text-visible", "false")  # pad labels: readable in KLayout, clutter here
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
