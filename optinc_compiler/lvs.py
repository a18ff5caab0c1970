"""Layout versus schematic: the netlist extracted from a GDS file (gdsfactory's
``get_netlist`` on the imported cells; ports come from the GDS metadata that
``optinc layout`` writes) against the program's netlist (``optinc_compiler.netlist``):
same instances with the same cells, same connections, same ports, per layer; and the
heater wiring traced through the drawn metal: each heater's pad carries its id.

I/O couplers: a layer drawn with couplers (``optinc layout --io grating|edge``) is
compared with the schematic netlist that includes them (``layer_netlist(layer,
io=IoSpec(kind))``); the kind is read from the drawing (a ``grating_coupler`` or
``edge_coupler`` instance in the layer's cell), no coupler means ``--io none``. Cell
settings are not compared (the fans' lead lengths are the layout's choice).
"""

from __future__ import annotations

import dataclasses
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optinc_compiler.errors import InputError
from optinc_compiler.gds import read_layout
from optinc_compiler.guard import brief
from optinc_compiler.netlist import IO_COUPLERS, IoSpec, Netlist, layer_netlist
from optinc_compiler.program import Layer, PhaseProgram
from pdk.cells import GRID_CELLS


@dataclass(frozen=True)
class LvsResult:
    """Differences between the drawn and the schematic netlist of one layer."""

    layer: str
    n_instances: int
    n_connections: int
    missing_instances: tuple[str, ...] = ()
    extra_instances: tuple[str, ...] = ()
    wrong_cells: tuple[str, ...] = ()
    missing_connections: tuple[str, ...] = ()
    extra_connections: tuple[str, ...] = ()
    port_mismatches: tuple[str, ...] = ()
    wiring_mismatches: tuple[str, ...] = ()
    cell_mismatches: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Drawn equals schematic."""
        return not (
            self.missing_instances
            or self.extra_instances
            or self.wrong_cells
            or self.missing_connections
            or self.extra_connections
            or self.port_mismatches
            or self.wiring_mismatches
            or self.cell_mismatches
        )

    @property
    def first_difference(self) -> str:
        """One line naming the first difference (empty when equal)."""
        for label, items in (
            ("missing instance", self.missing_instances),
            ("extra instance", self.extra_instances),
            ("wrong cell", self.wrong_cells),
            ("missing connection", self.missing_connections),
            ("extra connection", self.extra_connections),
            ("port", self.port_mismatches),
            ("wiring", self.wiring_mismatches),
            ("geometry", self.cell_mismatches),
        ):
            if items:
                return f"{label} {items[0]}"
        return ""


def compare(schematic: Netlist, extracted: dict[str, Any]) -> LvsResult:
    """Compare one layer's schematic netlist with a gdsfactory netlist dict."""
    drawn = extracted.get("instances", {})
    names = {i.name: i.component for i in schematic.instances}
    nets = {frozenset(n) for n in schematic.connections}
    drawn_nets = {frozenset((n["p1"], n["p2"])) for n in extracted.get("nets", [])}
    ports = dict(schematic.ports)
    drawn_ports = extracted.get("ports", {})
    return LvsResult(
        layer=schematic.name,
        n_instances=len(drawn),
        n_connections=len(drawn_nets),
        missing_instances=tuple(sorted(set(names) - set(drawn))),
        extra_instances=tuple(sorted(set(drawn) - set(names))),
        wrong_cells=tuple(
            sorted(
                f"{n}: drawn {drawn[n]['component']}, schematic {c}"
                for n, c in names.items()
                if n in drawn and drawn[n]["component"] != c
            )
        ),
        missing_connections=tuple(sorted(" - ".join(sorted(n)) for n in nets - drawn_nets)),
        extra_connections=tuple(sorted(" - ".join(sorted(n)) for n in drawn_nets - nets)),
        port_mismatches=tuple(
            sorted(
                f"{p}: drawn {drawn_ports.get(p)}, schematic {ports.get(p)}"
                for p in set(ports) | set(drawn_ports)
                if ports.get(p) != drawn_ports.get(p)
            )
        ),
    )


@dataclass(frozen=True)
class ExtractedLayer:
    """One layer's grid as found in a GDS file, beside its schematic netlist (with the
    I/O couplers the drawing has)."""

    layer: Layer
    schematic: Netlist
    extracted: dict[str, Any]  # gdsfactory netlist dict of the grid cell
    grid: Any  # the imported grid cell (gdsfactory Component)


def extract_layers(
    gds_path: str | os.PathLike[str], program: PhaseProgram, *, layer_names: Sequence[str] = ()
) -> tuple[Any, tuple[ExtractedLayer, ...]]:
    """Import the GDS file and extract every chosen layer's grid netlist; returns the
    top cell and the layers. Call after building any reference cells: the import
    renames the file's cells that clash with cells already in memory (``name$1``)."""
    import gdsfactory as gf
    from gdsfactory.get_netlist import get_netlist

    from optinc_compiler.layout import activate_pdk

    activate_pdk()
    path = Path(gds_path)
    read_layout(path)  # one readable top cell of a sane size, before gdsfactory's import
    layers = [program.layer(n) for n in layer_names] if layer_names else list(program.layers)
    try:
        top = gf.import_gds(path)
    except Exception as exc:  # noqa: BLE001 -- gdsfactory/klayout raise several types
        raise InputError(f"{str(path)!r} is not a readable GDS/OASIS file ({exc})") from None
    grids = {ref.cell.name: ref.cell for ref in top.insts}
    out = []
    for layer in layers:
        cell = f"{layer.id}_grid"
        # an import next to cells of the same name (same process) gets "name$1"
        found = sorted(k for k in grids if k == cell or k.startswith(f"{cell}$"))
        if not found:
            raise InputError(_missing_layer_message(path, cell, layer, program, grids))
        grid = grids[found[-1]]
        # one level: instances are named by their cells' functions (a recursive netlist
        # numbers the cells of one function with different settings: io_fan2, ...)
        extracted = get_netlist(grid, on_dangling_port="ignore")
        schematic = layer_netlist(layer, io=drawn_io(extracted), terminate=True)
        out.append(ExtractedLayer(layer, schematic, extracted, grid))
    return top, tuple(out)


def _missing_layer_message(
    path: Path, cell: str, layer: Layer, program: PhaseProgram, grids: dict[str, Any]
) -> str:
    """The file lacks a layer's grid: name the program's layers it does draw, if any."""
    drawn = [x.name for x in program.layers if any(k.split("$")[0] == f"{x.id}_grid" for k in grids)]
    where = f"{str(path)!r} has no cell {cell!r} for layer {layer.name!r}"
    if not drawn:
        return f"{where}, nor any other layer of the program; is it this program's chip?"
    flags = " ".join(f"--layer {shlex.quote(name)}" for name in drawn)
    return f"{where}; it draws layer(s) {', '.join(drawn)} of the program: check those with {flags}"


def lvs_gds(
    gds_path: str | os.PathLike[str], program: PhaseProgram, *, layer_names: Sequence[str] = ()
) -> tuple[LvsResult, ...]:
    """Extract every layer's grid from the GDS file and compare it with the program."""
    from optinc_compiler.layout import activate_pdk

    activate_pdk()
    # built before the import, so they keep the plain cell names and the file's get "$1"
    references = {cell.name: cell for cell in (make() for make in GRID_CELLS.values())}
    top, layers = extract_layers(gds_path, program, layer_names=layer_names)
    cell_diffs = cell_geometry_mismatches(top, references)
    results = []
    for x in layers:
        result = compare(x.schematic, x.extracted)
        wiring = heater_wiring_mismatches(x.grid, x.schematic)
        results.append(dataclasses.replace(result, wiring_mismatches=wiring, cell_mismatches=cell_diffs))
    return tuple(results)


def drawn_io(extracted: dict[str, Any]) -> IoSpec | None:
    """The I/O couplers a layer's extracted netlist shows: the kind of its first coupler
    instance (by name), None without couplers."""
    kinds = {cell: kind for kind, (cell, _) in IO_COUPLERS.items()}
    instances = extracted.get("instances", {})
    found = sorted(kinds[i["component"]] for i in instances.values() if i["component"] in kinds)
    return IoSpec(found[0]) if found else None


def cell_geometry_mismatches(top: Any, references: dict[str, Any]) -> tuple[str, ...]:
    """Every PDK grid cell used in the file must have the PDK's shapes on every layer
    (an edit inside a cell changes every instance of it but no netlist). ``references``
    maps PDK cell names to freshly built cells."""
    import klayout.db as kdb

    from pdk import tech

    layout = top.kcl.layout
    used: dict[str, Any] = {}
    for grid in (ref.cell for ref in top.insts):
        for inst in grid.insts:
            base = inst.cell.name.split("$")[0]
            if base in references:
                used[base] = inst.cell
    out = []
    for name, drawn in sorted(used.items()):
        for layer_name, (layer, datatype) in tech.LAYERS.items():
            index = layout.find_layer(layer, datatype)
            if index is None:
                continue
            a = kdb.Region(drawn.kdb_cell.begin_shapes_rec(index)).merged()
            b = kdb.Region(references[name].kdb_cell.begin_shapes_rec(index)).merged()
            if not (a ^ b).is_empty():
                out.append(f"cell {name} differs from the PDK on {layer_name}")
    return tuple(out)


def heater_wiring_mismatches(grid: Any, schematic: Netlist) -> tuple[str, ...]:
    """Follow each heater's signal contact through the drawn metal (M2, PAD, BUMP) to its
    pad: the pad must carry that heater's id, so the lab drives the right heater."""
    import klayout.db as kdb

    from optinc_compiler.drc import _labels
    from optinc_compiler.layout import HEATER_PORTS
    from pdk import tech

    layout = grid.kcl.layout
    cell = grid.kdb_cell

    def region(name: str) -> kdb.Region:
        index = layout.find_layer(*tech.LAYERS[name])
        return kdb.Region() if index is None else kdb.Region(cell.begin_shapes_rec(index))

    nets = list((region("M2") + region("PAD") + region("BUMP")).merged().each())
    labels = _labels(layout, cell)
    dbu, half = layout.dbu, tech.TERMINAL.size_um / 2
    drawn = {inst.name: inst for inst in grid.insts}
    out = []
    for inst in schematic.instances:
        for signal, _, role in HEATER_PORTS.get(inst.component, ()):
            heater_id = f"{inst.name}_{role}"
            if inst.name not in drawn:
                continue  # reported as a missing instance
            x, y = drawn[inst.name].ports[signal].center
            contact = kdb.Point(round(x / dbu), round((y - half) / dbu))
            net = next((poly for poly in nets if poly.inside(contact)), None)
            pads = sorted(text for text, p in labels if net is not None and net.inside(p))
            if pads != [heater_id]:
                out.append(f"{heater_id} reaches pad(s) {brief(', '.join(pads)) or 'none'}")
    return tuple(sorted(out))
