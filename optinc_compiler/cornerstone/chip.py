"""A mesh on CORNERSTONE's MPW die, its heaters routed on the one metal.

The plan (``plan_chip``) is computed before anything is drawn, so a program that needs
more pads or gratings than the die has is refused with the counts:

1. Columns from the layer's grid netlist: MZI, attenuator or phase-shifter columns of
   the ``cells`` cells, each as many heater slots wide as its deepest heater needs. Rows
   above a split route up, the rest down; a heater's *depth* is the number of heaters
   of its column between it and its edge, so its wires rise through slots where those
   rows hold plain waveguide: no wire crosses a heater or another wire.
2. Wires on PAD (the only metal, no via): each heater contact rises straight to the edge
   of the mesh, so on each side the risers run in x as one pair per heater. Heaters
   alternate which contact is the signal, so the returns of neighbouring heaters are
   neighbours and one bar along the mesh edge joins each two into one net (the planar
   sharing: any return further away would cross a signal). Above (below) the mesh a
   monotone staircase takes the wires, in x order, to a block of the die's pads: wires
   moving left turn lower the further left they are, wires moving right likewise, so
   nothing crosses.
3. I/O: each layer input and output to one of the die's grating couplers (the central
   ones of each side) on an S-bend of the foundry's ``bend_s`` and a straight; rows
   whose light no output reads end in a terminator (``cells.cs_terminator``).

Each used pad carries its net (heater id or ``GND_...``) as text drawn on LBL (100/0),
as polygons: the foundry's submission check refuses GDS text objects on 100/0 (cspdk
2.1 counts any text as outside the outline). ``lvs`` needs no label: it finds the cells
by grid position and traces the heaters to the pads ``plan_chip`` assigns.
"""

from __future__ import annotations

import math
import os
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optinc_compiler.cornerstone import tech
from optinc_compiler.errors import InputError
from optinc_compiler.netlist import TWO_ROW, Instance, Netlist, add_terminators, heater_roles, layer_netlist
from optinc_compiler.program import Layer, PhaseProgram
from pdk.tech import PORTS

#: Netlist cells this PDK draws: MZIs, attenuators, output phase shifters, their bypasses
#: (no crossings: segmented grids and permutations are for our PDK's larger dies).
DRAWN_CELLS = frozenset(
    {"mzi", "mzi_bypass", "attenuator", "attenuator_bypass", "phase_shifter", "phase_shifter_bypass"}
)
#: Cells with two heaters (phi in the first section, theta in the second).
TWO_HEATER_CELLS = frozenset({"mzi", "attenuator"})
#: Centre of the mesh on the die (the pad rows' centre in x).
MESH_CENTRE_UM = (tech.PAD_ROW_X0_UM, 0.0)
#: Clearance from the mesh's outermost row to the wires' first turn.
EDGE_CLEARANCE_UM = tech.ROW_PITCH_UM
#: Shortest x length of the I/O S-bends, and x length per um of their height: a square
#: Bezier S-bend's tightest radius is about a third of its height (93 um at the 285 um
#: of a 4-row mesh), far above the foundry's 10 um strip radius.
IO_MIN_DX_UM = 200.0
IO_DX_PER_DY = 1.0

Point = tuple[float, float]


@dataclass(frozen=True)
class Site:
    """Where one mesh cell goes: its cell parameters and its origin (o2 or o1 port)."""

    instance: Instance
    slots: int
    depth: int
    down: bool
    origin_um: Point


@dataclass(frozen=True)
class Wire:
    """A Manhattan centreline on PAD (``tech.WIRE_WIDTH_UM`` wide) ending in a pad."""

    net: str
    points: tuple[Point, ...]
    #: further straight segments of the net (a shared return's bar)
    branches: tuple[tuple[Point, Point], ...] = ()


@dataclass(frozen=True)
class PadUse:
    """A die pad and the net it carries."""

    net: str
    side: str  # "N" or "S"
    index: int
    centre_um: Point


@dataclass(frozen=True)
class ChipPlan:
    """Everything ``draw_chip`` draws for one layer."""

    layer: Layer
    netlist: Netlist
    sites: tuple[Site, ...]
    column_x_um: tuple[float, ...]
    row_y_um: tuple[float, ...]
    wires: tuple[Wire, ...]
    pads: tuple[PadUse, ...]
    #: (row, grating) of each layer input and output (rows without one stay dark)
    heater_nets: tuple[HeaterNets, ...]
    gratings_in: tuple[tuple[int, int], ...]
    gratings_out: tuple[tuple[int, int], ...]
    #: rows whose light leaves the mesh through no output: each ends in a terminator
    terminated_rows: tuple[int, ...] = ()


# --- the die's fixed geometry (cspdk.si220.cells.die_with_pads defaults) ----------------


def pad_x_um(index: int) -> float:
    """x of pad ``index`` (0 = west) of either pad row."""
    return tech.PAD_ROW_X0_UM + (index - (tech.PADS_PER_SIDE - 1) / 2) * tech.PAD_PITCH_UM


def pad_centre_y_um(side: str) -> float:
    """y of the pad row's centre."""
    y = tech.DIE_SIZE_UM[1] / 2 - tech.PAD_EDGE_UM - tech.PAD_SIZE_UM[1] / 2
    return y if side == "N" else -y


def grating_y_um(index: int) -> float:
    """y of grating ``index`` (0 = south) of either side."""
    return (index - (tech.GRATINGS_PER_SIDE - 1) / 2) * tech.GRATING_PITCH_UM


def usable_gratings() -> tuple[int, ...]:
    """The gratings of a side that are not part of the loopback, south to north."""
    return tuple(range(1, tech.GRATINGS_PER_SIDE - 1))


# --- the plan ---------------------------------------------------------------------------


def check_layer(layer: Layer) -> Netlist:
    """The layer's grid netlist, if this PDK draws it (InputError naming what it has)."""
    netlist = layer_netlist(layer)
    other = sorted({i.component for i in netlist.instances} - DRAWN_CELLS)
    if other:
        raise InputError(
            f"PDK {tech.NAME!r} draws MZIs, attenuators and output phase shifters; layer "
            f"{layer.name!r} also needs {', '.join(other)}; lay it out with --pdk optinc"
        )
    if netlist.n_modes > len(usable_gratings()):
        raise InputError(
            f"layer {layer.name!r} has {netlist.n_modes} rows; the {tech.NAME} die has "
            f"{len(usable_gratings())} grating couplers per side"
        )
    return netlist


def _heater_rows(netlist: Netlist) -> dict[int, list[Instance]]:
    """Instances with heaters per column."""
    by_column: dict[int, list[Instance]] = defaultdict(list)
    for inst in netlist.instances:
        if heater_roles(inst.component):
            by_column[inst.column].append(inst)
    return by_column


Splits = tuple[int, ...]


def column_splits(netlist: Netlist) -> Splits:
    """Per column, the row above which its heaters route up (north). Each column's
    heater cells are halved, which needs the fewest slots (the shortest column); where
    their count is odd, the middle one goes to the side with fewer heaters so far, so
    the two pad rows fill evenly (north on a tie)."""
    by_column = _heater_rows(netlist)
    balance = 0  # heaters north minus south
    splits = []
    for c in range(netlist.n_columns):
        cells = sorted(by_column.get(c, []), key=lambda i: i.mode)
        counts = [len(heater_roles(i.component)) for i in cells]

        def imbalance(up: int, counts: list[int] = counts) -> int:
            return sum(counts[:up]) - sum(counts[up:])

        k = len(cells)
        up = min(sorted({(k + 1) // 2, k // 2}, reverse=True), key=lambda u: abs(balance + imbalance(u)))
        balance += imbalance(up)
        splits.append(cells[up].mode if up < k else netlist.n_modes)
    return tuple(splits)


def depths(netlist: Netlist, splits: Splits) -> dict[str, int]:
    """Each heater-carrying instance's depth: the heaters of its column between its row
    and the edge it routes to (rows above the column's split route up)."""
    out = {}
    for c, column in _heater_rows(netlist).items():
        split = splits[c]
        rows = [i.mode for i in column]
        for inst in column:
            up = inst.mode < split
            same = [r for r in rows if (r < split) == up]
            out[inst.name] = sum(1 for r in same if (r < inst.mode if up else r > inst.mode))
    return out


def _column_kinds(netlist: Netlist) -> list[str]:
    kinds = ["mzi"] * netlist.n_columns
    for inst in netlist.instances:
        kinds[inst.column] = column_kind(inst.component)
    return kinds


def column_kind(component: str) -> str:
    """``phase_shifter`` (one section) or ``mzi`` (two sections: MZIs, attenuators)."""
    return "phase_shifter" if component.startswith("phase_shifter") else "mzi"


def _sites(netlist: Netlist, splits: Splits) -> tuple[list[Site], list[float], list[float]]:
    from optinc_compiler.cornerstone.cells import column_dx_um

    depth = depths(netlist, splits)
    slots = [1] * netlist.n_columns
    for inst in netlist.instances:
        if inst.name in depth:
            slots[inst.column] = max(slots[inst.column], depth[inst.name] + 1)
    kinds = _column_kinds(netlist)
    widths = [column_dx_um(kind, s) for kind, s in zip(kinds, slots, strict=True)]
    # centred on the pad rows, unless that would push an end into the I/O S-bends
    limit = tech.GRATING_PORT_X_UM - _io_dx_um(netlist.n_modes) - sum(widths) / 2
    centre = min(max(MESH_CENTRE_UM[0], -limit), limit) if limit >= 0 else MESH_CENTRE_UM[0]
    x0 = round(centre - sum(widths) / 2, 3)
    xs = [x0]
    for w in widths:
        xs.append(round(xs[-1] + w, 3))
    n = netlist.n_modes
    ys = [round(MESH_CENTRE_UM[1] + ((n - 1) / 2 - r) * tech.ROW_PITCH_UM, 3) for r in range(n)]
    sites = [
        Site(
            instance=inst,
            slots=slots[inst.column],
            depth=depth.get(inst.name, 0),
            down=inst.mode >= splits[inst.column],
            origin_um=(xs[inst.column], ys[inst.mode]),
        )
        for inst in netlist.instances
    ]
    return sites, xs, ys


def _cell(site: Site) -> Any:
    """The drawn cell of a site."""
    from optinc_compiler.cornerstone import cells

    kind = site.instance.component
    if kind == "mzi":
        return cells.cs_mzi(slots=site.slots, depth=site.depth, down=site.down)
    if kind == "phase_shifter":
        slot = site.slots - 1 - site.depth
        return cells.cs_phase_shifter(slots=site.slots, slot=slot, down=site.down)
    if kind == "attenuator":
        return cells.cs_attenuator(slots=site.slots, depth=site.depth, down=site.down)
    if kind == "mzi_bypass":
        return cells.cs_mzi_bypass(slots=site.slots)
    if kind == "attenuator_bypass":
        return cells.cs_attenuator_bypass(slots=site.slots)
    return cells.cs_phase_shifter_bypass(slots=site.slots)


def _anchor(kind: str) -> str:
    return PORTS.upper_in if kind in TWO_ROW else PORTS.through_in


def _contacts(site: Site) -> dict[str, Point]:
    """The site's heater contacts (``<role>_l`` / ``_r``) in chip coordinates: the outer
    edge centre of each contact pad."""
    cell = _cell(site)
    anchor = cell.ports[_anchor(site.instance.component)].center
    dx, dy = site.origin_um[0] - anchor[0], site.origin_um[1] - anchor[1]
    return {
        p.name: (round(p.center[0] + dx, 3), round(p.center[1] + dy, 3))
        for p in cell.ports
        if p.port_type == "electrical"
    }


@dataclass(frozen=True)
class HeaterNets:
    """The two nets of one heater: its signal (the heater id) and its return."""

    heater: str
    signal: str
    ground: str


Riser = tuple[str, str, list[Point], tuple[tuple[Point, Point], ...]]


def _heater_contacts(sites: Sequence[Site]) -> dict[str, list[tuple[str, Point, Point]]]:
    """Per side (``N``, ``S``): (heater id, west contact, east contact) of each heater,
    west to east."""
    out: dict[str, list[tuple[str, Point, Point]]] = {"N": [], "S": []}
    for site in sites:
        roles = heater_roles(site.instance.component)
        c = _contacts(site) if roles else {}
        for role in roles:
            heater = f"{site.instance.name}_{role}"
            out["S" if site.down else "N"].append((heater, c[f"{role}_l"], c[f"{role}_r"]))
    for heaters in out.values():
        heaters.sort(key=lambda h: h[1][0])
    return out


def _risers(sites: Sequence[Site], y_up: float, y_down: float) -> tuple[list[Riser], list[HeaterNets]]:
    """(side, net, points, branches) of each wire from its heater contact(s) to the mesh
    edge, and each heater's nets.

    Each contact rises straight to the edge, and on each side no riser lies between a
    heater's two (module docstring), so the risers run in x as pairs, one per heater.
    Heaters alternate which contact is the signal (west, east, west ...): the returns
    of heaters 2j and 2j + 1 are then neighbours, and a bar along the mesh edge joins
    them into one net and one pad without crossing a wire (a heater's polarity does not
    matter: P = V^2 / R). Pads per side: H + ceil(H / 2) for H heaters."""
    overlap = 10.0  # into the contact pad (its full height)
    risers: list[Riser] = []
    nets: list[HeaterNets] = []
    for side, heaters in _heater_contacts(sites).items():
        edge, sign = (y_up, 1.0) if side == "N" else (y_down, -1.0)

        def rise(point: Point, sign: float = sign, edge: float = edge) -> list[Point]:
            return [(point[0], point[1] - sign * overlap), (point[0], edge)]

        for k, (heater, west, east) in enumerate(heaters):
            signal, ground = (west, east) if k % 2 == 0 else (east, west)
            net = f"GND_{side}{k // 2}"
            nets.append(HeaterNets(heater=heater, signal=heater, ground=net))
            risers.append((side, heater, rise(signal), ()))
            if k % 2 == 0 and k + 1 == len(heaters):
                risers.append((side, net, rise(ground), ()))
            elif k % 2 == 1:  # this return joins the previous heater's, whose riser leads
                prev_east = heaters[k - 1][2]
                first = rise(prev_east)
                bar = ((prev_east[0], edge), (ground[0], edge))
                risers.append((side, net, first, ((rise(ground)[0], (ground[0], edge)), bar)))
    return risers, nets


def _fan_out(
    risers: list[tuple[str, list[Point], tuple[tuple[Point, Point], ...]]], side: str, y_start: float
) -> tuple[list[Wire], list[PadUse]]:
    """Wires from the risers' tops to a block of pads of one side (module docstring)."""
    sign = 1.0 if side == "N" else -1.0
    risers = sorted(risers, key=lambda r: r[1][-1][0])
    n = len(risers)
    if n == 0:
        return [], []
    xs = [points[-1][0] for _, points, _ in risers]
    median = xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2
    nearest = min(range(tech.PADS_PER_SIDE), key=lambda i: abs(pad_x_um(i) - median))
    first = min(max(nearest - n // 2, 0), tech.PADS_PER_SIDE - n)
    pad_y = pad_centre_y_um(side)
    pad_edge = pad_y - sign * tech.PAD_SIZE_UM[1] / 2
    wires, pads = [], []
    left = [k for k in range(n) if pad_x_um(first + k) < xs[k]]
    right = [k for k in range(n) if pad_x_um(first + k) > xs[k]]
    level = {k: j for j, k in enumerate(left)}  # leftmost turns first
    level.update({k: j for j, k in enumerate(reversed(right))})  # rightmost turns first
    for k, (net, points, branches) in enumerate(risers):
        px = round(pad_x_um(first + k), 3)
        end = (px, round(pad_edge + sign * tech.PAD_OVERLAP_UM, 3))
        if k in level:
            y = round(y_start + sign * level[k] * tech.WIRE_PITCH_UM, 3)
            path = [*points[:-1], (points[-1][0], y), (px, y), end]
        else:
            path = [*points[:-1], end]
        wires.append(Wire(net=net, points=tuple(path), branches=branches))
        pads.append(PadUse(net=net, side=side, index=first + k, centre_um=(px, pad_y)))
    return wires, pads


def pad_counts(netlist: Netlist, splits: Splits) -> tuple[int, int]:
    """Pads the layer needs on the (north, south) rows for the columns' ``splits``."""
    sites, _, ys = _sites(netlist, splits)
    risers, _ = _risers(sites, ys[0] + EDGE_CLEARANCE_UM, ys[-1] - EDGE_CLEARANCE_UM)
    north = sum(1 for side, *_ in risers if side == "N")
    return north, len(risers) - north


def _topology(layer: Layer) -> str:
    """``clements`` or ``reck``: the mesh of the layer's (unitary) stages."""
    meshes = [getattr(stage, "mesh", None) for block in layer.blocks for stage in block.stages]
    return next((m.topology for m in meshes if m is not None), "clements")


def _mesh_dx_um(netlist: Netlist, splits: Splits) -> float:
    _, xs, _ = _sites(netlist, splits)
    return xs[-1] - xs[0]


def _room_um(netlist: Netlist) -> float:
    """x length the die leaves the mesh between its gratings' I/O S-bends."""
    return 2 * (tech.GRATING_PORT_X_UM - _io_dx_um(netlist.n_modes))


def _fits(netlist: Netlist) -> bool:
    """Whether the die has the pads, gratings and length for the mesh."""
    if netlist.n_modes > len(usable_gratings()):
        return False
    splits = column_splits(netlist)
    return max(pad_counts(netlist, splits)) <= tech.PADS_PER_SIDE and _mesh_dx_um(
        netlist, splits
    ) <= _room_um(netlist)


def _largest_fitting(layer: Layer) -> int:
    """The largest square layer of the same method and mesh topology that fits the die
    (the cells a mesh draws do not depend on its phases)."""
    import numpy as np

    from optinc_compiler.compiler import CompileOptions, compile_layer

    best = 1
    for n in range(2, len(usable_gratings()) + 1):
        options = CompileOptions(method=layer.method, topology=_topology(layer))
        probe = compile_layer("probe", np.eye(n), options)
        if not _fits(layer_netlist(probe)):
            break
        best = n
    return best


def _fit_text(layer: Layer) -> str:
    """What fits instead, for the refusals."""
    fit = _largest_fitting(layer)
    what = "mesh" if layer.method == "unitary" else f"{layer.method} layer"
    return f"a {_topology(layer)} {what} of up to {fit} x {fit} fits"


def plan_chip(layer: Layer) -> ChipPlan:
    """The whole chip of one layer, or InputError when the die cannot take it."""
    netlist = check_layer(layer)
    splits = column_splits(netlist)
    sites, xs, ys = _sites(netlist, splits)
    north, south = pad_counts(netlist, splits)
    if max(north, south) > tech.PADS_PER_SIDE:
        raise InputError(
            f"layer {layer.name!r} needs {north + south} heater pads ({north} north, {south} south); "
            f"the {tech.NAME} die has {tech.PADS_PER_SIDE} per side ({2 * tech.PADS_PER_SIDE} in all): "
            + _fit_text(layer)
        )
    if xs[-1] - xs[0] > _room_um(netlist):
        raise InputError(
            f"layer {layer.name!r} is {xs[-1] - xs[0]:,.0f} um long; between the {tech.NAME} die's "
            f"gratings and their S-bends there are {_room_um(netlist):,.0f} um: " + _fit_text(layer)
        )
    gratings = _gratings(netlist.n_modes)
    y_io = max(abs(grating_y_um(g)) for g in gratings)
    rows = _port_rows(netlist)
    y_up = ys[0] + EDGE_CLEARANCE_UM
    y_down = ys[-1] - EDGE_CLEARANCE_UM
    risers, heater_nets = _risers(sites, y_up, y_down)
    wires, pads = [], []
    for side, edge in (("N", y_up), ("S", y_down)):
        sign = 1.0 if side == "N" else -1.0
        # the first turns one pitch beyond the return bars along the edge
        start = sign * max(abs(edge) + tech.WIRE_PITCH_UM, y_io + 2 * tech.WIRE_PITCH_UM)
        w, p = _fan_out([(net, pts, br) for s, net, pts, br in risers if s == side], side, start)
        wires += w
        pads += p
    return ChipPlan(
        layer=layer,
        netlist=netlist,
        sites=tuple(sites),
        column_x_um=tuple(xs),
        row_y_um=tuple(ys),
        wires=tuple(wires),
        pads=tuple(pads),
        heater_nets=tuple(heater_nets),
        gratings_in=tuple((row, gratings[row]) for row in rows["in"]),
        gratings_out=tuple((row, gratings[row]) for row in rows["out"]),
        terminated_rows=tuple(
            i.mode for i in add_terminators(netlist).instances if i.component == "terminator"
        ),
    )


def _port_rows(netlist: Netlist) -> dict[str, list[int]]:
    """The rows of the layer's inputs (``in``) and outputs (``out``), in port order."""
    by_name = {inst.name: inst for inst in netlist.instances}
    out: dict[str, list[int]] = {"in": [], "out": []}
    for port, target in netlist.ports:
        name, _ = target.split(",")
        inst = by_name[name]
        side = "in" if port.startswith("in") else "out"
        row = next(r for r in inst.rows if target == (inst.port_in(r) if side == "in" else inst.port_out(r)))
        out[side].append(row)
    return out


def _gratings(n_rows: int) -> tuple[int, ...]:
    """The central ``n_rows`` usable gratings, north first (row 0 is the top row)."""
    usable = usable_gratings()
    first = (len(usable) - n_rows) // 2
    return tuple(reversed(usable[first : first + n_rows]))


def _io_dx_um(n_rows: int) -> float:
    """x length of every I/O S-bend of a mesh of ``n_rows``."""
    ys = [round(((n_rows - 1) / 2 - r) * tech.ROW_PITCH_UM, 3) for r in range(n_rows)]
    largest = max(abs(y - grating_y_um(g)) for y, g in zip(ys, _gratings(n_rows), strict=True))
    return float(max(IO_MIN_DX_UM, math.ceil(IO_DX_PER_DY * largest)))


def heater_centres(plan: ChipPlan) -> dict[str, Point]:
    """Centre of every heater (by heater id ``{instance}_{role}``) on the chip."""
    out = {}
    for site in plan.sites:
        c = _contacts(site) if heater_roles(site.instance.component) else {}
        for role in heater_roles(site.instance.component):
            (xl, _), (xr, _) = c[f"{role}_l"], c[f"{role}_r"]
            out[f"{site.instance.name}_{role}"] = ((xl + xr) / 2, site.origin_um[1])
    return out


def crosstalk_links(plan: ChipPlan) -> tuple[tuple[str, str, float], ...]:
    """``(victim, aggressor, coefficient)`` of the heaters side by side on the chip: our
    PDK's distance model (``pdk.tech.THERMAL``: ``c exp(-(d - 30 um) / decay)`` up to
    ``cutoff_rows`` x 30 um) on the drawn distances. Heaters in other slots (200 um or
    more apart along the waveguide) get none. An assumption like the heater model: the
    foundry states no thermal crosstalk; a calibration file replaces it."""
    from pdk.tech import GRID, THERMAL

    centres = sorted(heater_centres(plan).items())
    reach = THERMAL.cutoff_rows * GRID.row_pitch_um
    links = []
    for victim, (xv, yv) in centres:
        for aggressor, (xa, ya) in centres:
            d = abs(yv - ya)
            if victim != aggressor and abs(xv - xa) < 1.0 and 0 < d <= reach:
                c = THERMAL.coefficient_at_pitch * math.exp(-(d - GRID.row_pitch_um) / THERMAL.decay_um)
                links.append((victim, aggressor, c))
    return tuple(links)


# --- drawing ----------------------------------------------------------------------------


def _fresh(name: str) -> Any:
    import gdsfactory as gf

    if gf.kcl.layout.has_cell(name):
        gf.kcl[name].delete()
    return gf.Component(name=name)


def _draw_wire(c: Any, wire: Wire) -> None:
    """Each segment as a rectangle on PAD, extended by half the width at both ends."""
    h = tech.WIRE_WIDTH_UM / 2
    segments = [*zip(wire.points, wire.points[1:], strict=False), *wire.branches]
    for (x0, y0), (x1, y1) in segments:
        if x0 != x1 and y0 != y1:
            raise AssertionError(f"wire {wire.net}: segment ({x0}, {y0}) -> ({x1}, {y1}) is not Manhattan")
        xa, xb, ya, yb = min(x0, x1) - h, max(x0, x1) + h, min(y0, y1) - h, max(y0, y1) + h
        c.add_polygon([(xa, ya), (xb, ya), (xb, yb), (xa, yb)], layer=tech.LAYERS["PAD"])


def terminator_name(layer: Layer, row: int) -> str:
    """Instance name of the terminator ending ``row`` (the netlist's ``add_terminators``)."""
    return f"{layer.id}_term_m{row}"


def mesh_cell_name(layer: Layer) -> str:
    """The cell holding the layer's mesh cells (so the chip says which layer it holds)."""
    return f"{layer.id}_mesh"


def top_cell_name(institution: str = tech.INSTITUTION) -> str:
    """``Cell0_<institution>``, the top cell the foundry asks for; InputError unless the
    institution is letters, digits and underscores (what its submission check accepts)."""
    if not isinstance(institution, str) or not re.fullmatch(r"\w{1,64}", institution, flags=re.ASCII):
        raise InputError(
            f"institution {institution!r}: allowed 1 to 64 letters, digits or underscores "
            "(the top cell is Cell0_<institution>)"
        )
    return f"Cell0_{institution}"


def draw_chip(plan: ChipPlan, *, institution: str = tech.INSTITUTION) -> Any:
    """The gdsfactory top cell ``tech.TOP_CELL`` of a plan."""
    from optinc_compiler.cornerstone import cells

    c_cells = cells._cells()
    chip = _fresh(top_cell_name(institution))
    die = chip.add_ref(c_cells.die_with_pads(), name="die")
    west = sorted(
        (p for p in die.ports if p.port_type == "optical" and p.center[0] < 0), key=lambda p: p.center[1]
    )
    east = sorted(
        (p for p in die.ports if p.port_type == "optical" and p.center[0] > 0), key=lambda p: p.center[1]
    )
    if abs(west[0].center[0]) != tech.GRATING_PORT_X_UM:
        raise AssertionError(
            f"die_with_pads' gratings at x = {west[0].center[0]}, not -{tech.GRATING_PORT_X_UM}"
        )
    lbl = tech.LAYERS["LBL"]
    mesh = _fresh(mesh_cell_name(plan.layer))
    refs = {}
    for site in plan.sites:
        ref = mesh.add_ref(_cell(site), name=site.instance.name)
        anchor = ref.ports[_anchor(site.instance.component)].center
        ref.dmove((site.origin_um[0] - anchor[0], site.origin_um[1] - anchor[1]))
        refs[site.instance.name] = ref
    chip.add_ref(mesh, name="mesh")  # at the origin: its coordinates are the chip's
    io_dx = _io_dx_um(plan.netlist.n_modes)
    by_port = dict(plan.netlist.ports)
    for side, gratings, ports in (("in", plan.gratings_in, west), ("out", plan.gratings_out, east)):
        for k, (row, g) in enumerate(gratings):
            target = by_port[f"{side}{k}"]
            name, port = target.split(",")
            mesh_port = refs[name].ports[port]
            die_port = ports[g - 1]  # the die's ports skip the loopback grating 0
            _io_route(chip, die_port, mesh_port, io_dx, name=f"io_{side}{row}")
    last = {r: i for i in plan.netlist.instances if i.column == plan.netlist.n_columns - 1 for r in i.rows}
    for row in plan.terminated_rows:
        end = last[row]
        term = mesh.add_ref(cells.cs_terminator(), name=terminator_name(plan.layer, row))
        term.connect("o1", refs[end.name].ports[end.port_out(row).split(",")[1]])
    for wire in plan.wires:
        _draw_wire(chip, wire)
    for pad in plan.pads:
        _pad_label(chip, pad, lbl)
    chip.info["n_instances"] = len(plan.sites)
    return chip


#: Height of the pad labels' letters (um); longer nets get smaller letters to fit the pad.
LABEL_SIZE_UM = 12.0


def _pad_label(chip: Any, pad: PadUse, layer: tuple[int, int]) -> None:
    """The pad's net as polygon text on LBL, rotated along the pad's long side."""
    import gdsfactory as gf

    size = min(LABEL_SIZE_UM, 0.8 * tech.PAD_SIZE_UM[1] / max(1, len(pad.net)) / 0.75)
    text = chip.add_ref(gf.components.text(text=pad.net, size=round(size, 1), layer=layer, justify="center"))
    text.rotate(90)
    text.dmove((pad.centre_um[0] - text.x, pad.centre_um[1] - text.y))


def _io_route(chip: Any, die_port: Any, mesh_port: Any, dx_um: float, *, name: str) -> None:
    """A grating and a mesh row joined: an S-bend at the grating, a straight to the mesh."""
    from optinc_compiler.cornerstone import cells

    c_cells = cells._cells()
    (gx, gy), (mx, my) = die_port.center, mesh_port.center
    lead = round(abs(mx - gx) - dx_um, 3)  # 0 when the mesh reaches the S-bends
    if mx > gx:  # an input: grating, bend, straight, mesh
        bend = chip.add_ref(c_cells.bend_s(size=(dx_um, round(my - gy, 3))), name=f"{name}_bend")
        bend.connect("o1", die_port)
        if lead > 0:
            chip.add_ref(c_cells.straight(length=lead), name=f"{name}_wg").connect("o1", bend.ports["o2"])
    else:  # an output: mesh, straight, bend, grating
        start = mesh_port
        if lead > 0:
            wg = chip.add_ref(c_cells.straight(length=lead), name=f"{name}_wg")
            wg.connect("o1", mesh_port)
            start = wg.ports["o2"]
        bend = chip.add_ref(c_cells.bend_s(size=(dx_um, round(gy - my, 3))), name=f"{name}_bend")
        bend.connect("o1", start)


def chip_component(
    program: PhaseProgram, *, layer_names: Sequence[str] = (), institution: str = tech.INSTITUTION
) -> Any:
    """The chip of the program's one layer (or the one named), top cell
    ``Cell0_<institution>``."""
    top_cell_name(institution)
    layers = [program.layer(n) for n in layer_names] if layer_names else list(program.layers)
    if len(layers) != 1:
        names = ", ".join(layer.name for layer in layers)
        raise InputError(
            f"the {tech.NAME} die takes one layer; the program has {len(layers)} ({names}): "
            "pick one (--layer NAME, or a design's layers:)"
        )
    plan = plan_chip(layers[0])
    from optinc_compiler.cornerstone.cells import activate

    activate()
    return draw_chip(plan, institution=institution)


def write_canonical(chip: Any, path: Path) -> None:
    """The chip written (GDS, or OASIS for ``.oas``) from a fresh layout whose cells are
    created children first, siblings by name, and whose layers are in (layer, datatype)
    order, without timestamps: the bytes depend on the chip alone, not on the order in
    which gdsfactory's process-wide library met its cells (other chips built before)."""
    import klayout.db as kdb

    src = chip.kcl.layout
    out = kdb.Layout()
    out.dbu = src.dbu
    order: list[int] = []

    def visit(index: int) -> None:
        if index in order:
            return
        for child in sorted(src.cell(index).each_child_cell(), key=lambda c: src.cell(c).name):
            visit(child)
        order.append(index)

    visit(chip.kdb_cell.cell_index())
    new = {index: out.create_cell(src.cell(index).name).cell_index() for index in order}
    infos = sorted(src.layer_indexes(), key=lambda i: (src.get_info(i).layer, src.get_info(i).datatype))
    layers = {i: out.layer(src.get_info(i).layer, src.get_info(i).datatype) for i in infos}
    for index in order:
        cell, target = src.cell(index), out.cell(new[index])
        for i, j in layers.items():
            target.shapes(j).insert(cell.shapes(i))
        for inst in cell.each_inst():
            array = inst.cell_inst.dup()
            array.cell_index = new[inst.cell_index]
            target.insert(array)
    options = kdb.SaveLayoutOptions()
    options.format = "OASIS" if path.suffix.lower() == ".oas" else "GDS2"
    options.gds2_write_timestamps = False
    out.write(str(path), options)


def write_chip(
    program: PhaseProgram,
    gds_path: str | os.PathLike[str],
    *,
    png_path: str | os.PathLike[str] | None = None,
    layer_names: Sequence[str] = (),
    institution: str = tech.INSTITUTION,
) -> Any:
    """Build the chip and write its GDS (and PNG) atomically; the LayoutResult."""
    from functools import partial

    from optinc_compiler.files import temporary_for, write_all_atomic
    from optinc_compiler.layout import LayoutResult, render_png

    gds, png = Path(gds_path), Path(png_path) if png_path is not None else None
    chip = chip_component(program, layer_names=layer_names, institution=institution)
    writers: list[Any] = [(gds, lambda tmp: write_canonical(chip, tmp))]
    if png is not None:
        render = partial(
            render_png, temporary_for(gds), width_px=1600, height_px=700, floorplan=tech.LAYERS["FLOORPLAN"]
        )
        writers.append((png, render))
    write_all_atomic(writers)
    return LayoutResult(
        gds_path=gds,
        png_path=png,
        n_instances=int(chip.info["n_instances"]),
        size_um=(chip.xsize, chip.ysize),
        warnings=(),
    )
