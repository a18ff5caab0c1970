"""LVS of a CORNERSTONE chip: the drawn mesh and its heater wiring against the program.

Read from the GDS with ``klayout.db`` (no label needed):

* the mesh: the layer's mesh cell (``chip.mesh_cell_name``: the chip says which layer it
  holds) and every ``cs_*`` cell in it, its kind and slots from
  the cell's name and its grid position from its origin (columns by x, rows by y);
  columns must abut (each column starts where the previous one ends); a terminator at
  the end of every row that no output reads, and nowhere else;
* the wiring: each heater (merged HEATER polygon inside a cell, phi before theta) traced
  over the merged PAD nets to the die's pads (``drc.die_pads``).

Compared with the plan of the same program (``chip.plan_chip``): the cell at each grid
position, and the pair of pads each heater reaches. The result gives the extracted
netlist with the program's settings (and the cells' slots), which ``verify`` simulates.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path

import klayout.db as kdb

from optinc_compiler.cornerstone.chip import (
    TWO_HEATER_CELLS,
    ChipPlan,
    Site,
    column_kind,
    mesh_cell_name,
    plan_chip,
)
from optinc_compiler.errors import InputError
from optinc_compiler.gds import read_layout
from optinc_compiler.netlist import Instance, Netlist, heater_roles
from optinc_compiler.program import Layer

_CELL = re.compile(
    r"^cs_(mzi_bypass|mzi|attenuator_bypass|attenuator|phase_shifter_bypass|phase_shifter)_S(\d+)"
)
_TERMINATOR = "cs_terminator"


@dataclass(frozen=True)
class CornerstoneLvs:
    """What the drawing holds against the plan."""

    layer: str
    n_cells: int
    n_heaters: int
    mismatches: tuple[str, ...]
    netlist: Netlist  # the extracted grid, with the program's settings and the cells' slots

    @property
    def equal(self) -> bool:
        """The drawing is the program's chip."""
        return not self.mismatches


@dataclass(frozen=True)
class _Drawn:
    kind: str
    slots: int
    x_dbu: int
    y_dbu: int


def _drawn_cells(top: kdb.Cell, mesh_name: str) -> tuple[list[_Drawn], set[tuple[int, int]]] | None:
    """The cells of the mesh cell ``mesh_name`` in chip coordinates, and the ports (o1)
    of its terminators (None: no such mesh)."""
    meshes = [inst for inst in top.each_inst() if inst.cell.name == mesh_name]
    if len(meshes) != 1:
        return None
    out, terminators = [], set()
    for inst in meshes[0].cell.each_inst():
        d = (meshes[0].trans * inst.trans).disp
        match = _CELL.match(inst.cell.name)
        if match:
            out.append(_Drawn(match.group(1), int(match.group(2)), d.x, d.y))
        elif inst.cell.name == _TERMINATOR:
            terminators.add((d.x, d.y))
    return out, terminators


def extract(path: str | os.PathLike[str], layer: Layer) -> CornerstoneLvs:
    """Extract the chip in ``path`` and compare it with ``layer``'s plan."""
    layout, top = read_layout(Path(path))
    plan = plan_chip(layer)
    found = _drawn_cells(top, mesh_cell_name(layer))
    if found is None:
        names = (i.cell.name for i in top.each_inst())
        held = sorted(name.removesuffix("_mesh") for name in names if name.endswith("_mesh"))
        raise InputError(
            f"{str(path)!r} holds no mesh of layer {layer.name!r} (cell {mesh_cell_name(layer)!r}); "
            f"it holds: {', '.join(held) or 'no mesh'}"
        )
    drawn, terminators = found
    dbu = layout.dbu
    mismatches: list[str] = []
    xs = sorted({d.x_dbu for d in drawn})
    ys = sorted({d.y_dbu for d in drawn}, reverse=True)
    expected_x = [round(x / dbu) for x in plan.column_x_um[:-1]]
    expected_y = [round(y / dbu) for y in plan.row_y_um]
    if xs != expected_x:
        mismatches.append(
            f"{len(xs)} drawn columns at x = {_um(xs, dbu)}; the program's at {_um(expected_x, dbu)}"
        )
    if ys != expected_y:
        mismatches.append(
            f"{len(ys)} drawn rows at y = {_um(ys, dbu)}; the program's at {_um(expected_y, dbu)}"
        )
    at = {(d.x_dbu, d.y_dbu): d for d in drawn}
    instances = []
    for site in plan.sites:
        key = (round(site.origin_um[0] / dbu), round(site.origin_um[1] / dbu))
        cell = at.pop(key, None)
        inst = site.instance
        where = f"column {inst.column}, row {inst.mode}"
        if cell is None:
            mismatches.append(f"{inst.name} ({inst.component}, {where}): no cell drawn there")
            continue
        if (cell.kind, cell.slots) != (inst.component, site.slots):
            mismatches.append(
                f"{inst.name} ({where}): drawn {cell.kind} of {cell.slots} slots, the program's is "
                f"{inst.component} of {site.slots}"
            )
        instances.append(dataclasses.replace(inst, settings=(*inst.settings, ("slots", float(cell.slots)))))
    for (x, y), cell in sorted(at.items()):
        mismatches.append(
            f"a {cell.kind} cell at ({x * dbu:.3f}, {y * dbu:.3f}) um that the program does not have"
        )
    end_x = round(plan.column_x_um[-1] / dbu)
    for row in plan.terminated_rows:
        key = (end_x, round(plan.row_y_um[row] / dbu))
        if key not in terminators:
            mismatches.append(f"row {row}: no terminator at the mesh's end, where no output reads its light")
        terminators.discard(key)
    for x, y in sorted(terminators):
        mismatches.append(f"a terminator at ({x * dbu:.3f}, {y * dbu:.3f}) um that the program does not have")
    wiring, n_heaters = _wiring_mismatches(layout, top, plan)
    mismatches.extend(wiring)
    netlist = dataclasses.replace(plan.netlist, instances=tuple(instances))
    return CornerstoneLvs(layer.name, len(drawn), n_heaters, tuple(mismatches), netlist)


def _um(values: list[int], dbu: float) -> str:
    shown = ", ".join(f"{v * dbu:.3f}" for v in values[:6])
    return shown + (" ..." if len(values) > 6 else "")


def _wiring_mismatches(layout: kdb.Layout, top: kdb.Cell, plan: ChipPlan) -> tuple[list[str], int]:
    """Each heater's two nets must reach exactly the pads the plan gives its nets."""
    from optinc_compiler.cornerstone.drc import _region, die_pads

    dbu = layout.dbu
    heaters = list(_region(layout, top, "HEATER").each())
    nets = [kdb.Region(p) for p in _region(layout, top, "PAD").each()]
    pads = die_pads(dbu)
    pad_of_net = {pad.net: f"{pad.side}{pad.index}" for pad in plan.pads}
    ground_of = {nets.heater: nets.ground for nets in plan.heater_nets}

    def reached(region: kdb.Region) -> set[str]:
        return {
            name
            for name, box in pads
            if region.bbox().overlaps(box) and not (region & kdb.Region(box)).is_empty()
        }

    out = []
    found = 0
    for site in plan.sites:
        roles = heater_roles(site.instance.component)
        if not roles:
            continue
        x0, y0 = round(site.origin_um[0] / dbu), round(site.origin_um[1] / dbu)
        row = kdb.Box(x0, y0 - round(6 / dbu), x0 + round(_cell_dx(site) / dbu), y0 + round(6 / dbu))
        mine = sorted((h for h in heaters if row.contains(h.bbox().center())), key=lambda h: h.bbox().left)
        order = ("phi", "theta") if site.instance.component in TWO_HEATER_CELLS else ("phase",)
        if len(mine) != len(order):
            out.append(f"{site.instance.name}: {len(mine)} heaters drawn, the cell has {len(order)}")
            continue
        for role, poly in zip(order, mine, strict=True):
            found += 1
            heater_id = f"{site.instance.name}_{role}"
            hr = kdb.Region(poly)
            got = sorted(
                ",".join(sorted(reached(n))) or "none"
                for n in nets
                if n.bbox().overlaps(poly.bbox()) and not (n & hr).is_empty()
            )
            want = sorted((pad_of_net[heater_id], pad_of_net[ground_of[heater_id]]))
            if got != want:
                drawn = " and ".join(got) or "none"
                out.append(
                    f"heater {heater_id}: wired to pads {drawn}; the program's are {' and '.join(want)}"
                )
    return out, found


def _cell_dx(site: Site) -> float:
    from optinc_compiler.cornerstone.cells import column_dx_um

    return column_dx_um(column_kind(site.instance.component), site.slots)


def plan_instances(plan: ChipPlan) -> tuple[Instance, ...]:
    """The plan's instances with their slots, as ``extract`` returns them."""
    return tuple(
        dataclasses.replace(s.instance, settings=(*s.instance.settings, ("slots", float(s.slots))))
        for s in plan.sites
    )
