"""Phase program -> Netlist: the one description of a layer's circuit (DESIGN.md).

Layout draws it and simulation evaluates it, with the same instance and port names.
A layer is a grid: ``M = max(out, in)`` rows (waveguides, mode 0 on top) and columns
in the order light meets them. Every grid cell holds exactly one instance:

* a mesh stage gives its MZI columns, then one column of output phase shifters;
* a diagonal stage gives one column of attenuators;
* rows a column does not use hold a bypass of the same cell length and optical length
  (``<cell>_bypass``), so every path through a column sees the same propagation phase.

Cells and their ports (``pdk.tech.PORTS``; the PDK draws them so)::

    mzi (2 rows):      o2 -> [upper, mode m]   -> o3       2-port cells:
                       o1 -> [lower, mode m+1] -> o4         o1 -> [cell] -> o2

Instance names: MZIs keep their phase-program ids (``fc1_U_c3_m5``); the others are
``{layer}_{stage}_ps_m{mode}`` (output phase shifters), ``{layer}_{stage}_att_m{mode}``
(attenuators) and ``{layer}_g{column}_m{mode}`` (bypasses). Layer ports are ``in{j}``
(mode j, j < in) and ``out{i}`` (mode i, i < out). Segmented layers are not laid out
yet (one netlist per block is the plan); they raise InputError.

I/O couplers are opt-in (``layer_netlist(layer, io=IoSpec("grating"))``; the default
netlist is the grid alone, which simulation uses): each layer port then passes through
a fan waveguide ``{layer}_fan_in{j}`` / ``{layer}_fan_out{i}`` (cell ``io_fan``: an
S-bend from the row pitch to the fibre pitch plus a straight lead) to a coupler
``{layer}_gc_in{j}`` (``grating_coupler``) or ``{layer}_ec_in{j}`` (``edge_coupler``),
and the layer port is the coupler's fibre side ``o2``. The I/O instances sit in
columns -2, -1 (inputs) and ``n_columns``, ``n_columns + 1`` (outputs), in light
order. Unused rows (modes >= in on the input side, >= out on the output side) get no
coupler: no light enters them, and what leaves them is not wanted.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from optinc_compiler.errors import InputError
from optinc_compiler.program import DiagonalStage, Layer, MeshStage, mzi_id_prefix
from pdk import tech
from pdk.tech import PORTS

#: The 2-port cells and the bypass that stands in for each on an unused row.
BYPASS = {"mzi": "mzi_bypass", "phase_shifter": "phase_shifter_bypass", "attenuator": "attenuator_bypass"}


@dataclass(frozen=True)
class Instance:
    """One cell of the grid.

    Attributes:
        name: unique instance name (MZI id for MZIs).
        component: PDK cell name (``mzi``, ``phase_shifter``, ``attenuator`` or a bypass).
        column: grid column, in light order.
        mode: top row the cell occupies (an MZI also occupies ``mode + 1``).
        settings: cell settings, e.g. ``(("theta_rad", 1.2), ("phi_rad", 0.3))``.
    """

    name: str
    component: str
    column: int
    mode: int
    settings: tuple[tuple[str, float], ...] = ()

    @property
    def rows(self) -> tuple[int, ...]:
        """Grid rows covered."""
        return (self.mode, self.mode + 1) if self.component == "mzi" else (self.mode,)

    def port_in(self, row: int) -> str:
        """``instance,port`` where light on ``row`` enters."""
        if self.component == "mzi":
            return f"{self.name},{PORTS.upper_in if row == self.mode else PORTS.lower_in}"
        return f"{self.name},{PORTS.through_in}"

    def port_out(self, row: int) -> str:
        """``instance,port`` where light on ``row`` leaves."""
        if self.component == "mzi":
            return f"{self.name},{PORTS.upper_out if row == self.mode else PORTS.lower_out}"
        return f"{self.name},{PORTS.through_out}"


#: I/O kind -> (coupler cell, instance-name tag).
IO_COUPLERS = {"grating": ("grating_coupler", "gc"), "edge": ("edge_coupler", "ec")}


@dataclass(frozen=True)
class IoSpec:
    """The I/O couplers of a layer (opt-in part of the netlist).

    Attributes:
        kind: ``grating`` (couplers at the fibre-array pitch) or ``edge`` (inverse
            tapers to the die edge).
        lead_in_um: straight lead between the input fan's S-bends and the grid; the
            layout sets it so the bends and couplers clear the pad wiring. The same for
            every input, so it adds one common phase and loss (likewise ``lead_out_um``).
        lead_out_um: the same on the output side.
    """

    kind: str
    lead_in_um: float = 0.0
    lead_out_um: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in IO_COUPLERS:
            raise InputError(f"unknown I/O coupler kind {self.kind!r}; allowed: {', '.join(IO_COUPLERS)}")
        for name in ("lead_in_um", "lead_out_um"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise InputError(f"{name} must be a finite length >= 0, got {value}")


@dataclass(frozen=True)
class Netlist:
    """Instances on a grid, their connections and the layer's external ports
    (``io``: the I/O couplers included, or None for the grid alone)."""

    name: str
    n_modes: int
    n_columns: int
    instances: tuple[Instance, ...]
    connections: tuple[tuple[str, str], ...]
    ports: tuple[tuple[str, str], ...]
    io: IoSpec | None = None

    def to_dict(self) -> dict[str, Any]:
        """sax / gdsfactory style: ``{"instances", "connections", "ports"}``."""
        return {
            "instances": {
                i.name: {"component": i.component, "settings": dict(i.settings)} for i in self.instances
            },
            "connections": dict(self.connections),
            "ports": dict(self.ports),
        }


def layer_netlist(layer: Layer, *, io: IoSpec | None = None) -> Netlist:
    """The grid netlist of one (non-segmented) layer; with ``io``, its I/O couplers too."""
    if layer.block_size is not None:
        raise InputError(
            f"layer {layer.name!r} is {layer.method}; layout and simulation of segmented "
            "layers are not supported yet (compile it with --method ud or svd)"
        )
    n = max(layer.shape)
    prefix = mzi_id_prefix(layer.name)
    columns = list(_stage_columns(layer, prefix))
    grid = [_fill_column(col, c, n, prefix) for c, col in enumerate(columns)]
    instances = tuple(inst for column in grid for inst in column)
    connections = []
    for left, right in itertools.pairwise(grid):
        for row in range(n):
            connections.append((_at(left, row).port_out(row), _at(right, row).port_in(row)))
    ports = [(f"in{j}", _at(grid[0], j).port_in(j)) for j in range(layer.shape[1])]
    ports += [(f"out{i}", _at(grid[-1], i).port_out(i)) for i in range(layer.shape[0])]
    netlist = Netlist(
        name=layer.name,
        n_modes=n,
        n_columns=len(grid),
        instances=instances,
        connections=tuple(connections),
        ports=tuple(ports),
    )
    return netlist if io is None else add_io(netlist, io)


def add_io(netlist: Netlist, io: IoSpec) -> Netlist:
    """``netlist`` (a grid without I/O) with a fan waveguide and a coupler on each port.

    Fan settings (``pdk.tech.fan_dx_um`` / ``fan_dy_um``): ``o2 - o1 = (dx + lead, dy)``
    with o1 on the coupler side for inputs and on the grid side for outputs."""
    if netlist.io is not None:
        raise InputError(f"netlist {netlist.name!r} already has I/O couplers")
    coupler, tag = IO_COUPLERS[io.kind]
    prefix = mzi_id_prefix(netlist.name)
    instances, connections, ports = list(netlist.instances), list(netlist.connections), []
    for side, lead, (fan_col, coupler_col) in (
        ("in", io.lead_in_um, (-1, -2)),
        ("out", io.lead_out_um, (netlist.n_columns, netlist.n_columns + 1)),
    ):
        targets = [(name, target) for name, target in netlist.ports if name.startswith(side)]
        dx = tech.fan_dx_um(len(targets))
        for k, (port_name, target) in enumerate(targets):
            dy = tech.fan_dy_um(k, len(targets))
            fan, io_cell = f"{prefix}_fan_{port_name}", f"{prefix}_{tag}_{port_name}"
            settings = (("dx_um", dx), ("dy_um", -dy if side == "in" else dy), ("lead_um", lead))
            instances += [
                Instance(name=fan, component="io_fan", column=fan_col, mode=k, settings=settings),
                Instance(name=io_cell, component=coupler, column=coupler_col, mode=k),
            ]
            if side == "in":
                connections += [(f"{io_cell},o1", f"{fan},o1"), (f"{fan},o2", target)]
            else:
                connections += [(target, f"{fan},o1"), (f"{fan},o2", f"{io_cell},o1")]
            ports.append((port_name, f"{io_cell},o2"))
    return dataclasses.replace(
        netlist, instances=tuple(instances), connections=tuple(connections), ports=tuple(ports), io=io
    )


def _stage_columns(layer: Layer, prefix: str) -> Iterator[tuple[str, list[Instance]]]:
    """Per grid column: the kind of cell and the active instances (column set later)."""
    for stage in layer.stages:
        if isinstance(stage, DiagonalStage):
            yield (
                "attenuator",
                [
                    Instance(
                        name=f"{prefix}_{stage.name}_att_m{m}",
                        component="attenuator",
                        column=0,
                        mode=m,
                        settings=(("amplitude", float(a)), ("phase_rad", float(p))),
                    )
                    for m, (a, p) in enumerate(zip(stage.amplitude, stage.phase_rad, strict=True))
                ],
            )
            continue
        yield from _mesh_columns(stage, prefix)


def _mesh_columns(stage: MeshStage, prefix: str) -> Iterator[tuple[str, list[Instance]]]:
    mesh = stage.mesh
    by_column: list[list[Instance]] = [[] for _ in range(mesh.depth)]
    for k in range(mesh.n_mzis):
        c = int(mesh.columns[k])
        by_column[c].append(
            Instance(
                name=stage.mzi_ids[k],
                component="mzi",
                column=c,
                mode=int(mesh.modes[k]),
                settings=(("theta_rad", float(mesh.theta_rad[k])), ("phi_rad", float(mesh.phi_rad[k]))),
            )
        )
    for column in by_column:
        yield "mzi", column
    yield (
        "phase_shifter",
        [
            Instance(
                name=f"{prefix}_{stage.name}_ps_m{m}",
                component="phase_shifter",
                column=0,
                mode=m,
                settings=(("phase_rad", float(p)),),
            )
            for m, p in enumerate(mesh.output_phases_rad)
        ],
    )


def _fill_column(
    kind_and_active: tuple[str, list[Instance]], column: int, n: int, prefix: str
) -> list[Instance]:
    """Place the active instances in ``column`` and fill the free rows with bypasses."""
    kind, active = kind_and_active
    placed = [
        Instance(name=i.name, component=i.component, column=column, mode=i.mode, settings=i.settings)
        for i in active
    ]
    used = {row for i in placed for row in i.rows}
    placed += [
        Instance(name=f"{prefix}_g{column}_m{row}", component=BYPASS[kind], column=column, mode=row)
        for row in range(n)
        if row not in used
    ]
    return sorted(placed, key=lambda i: i.mode)


def _at(column: list[Instance], row: int) -> Instance:
    for inst in column:
        if row in inst.rows:
            return inst
    raise AssertionError(f"row {row} is empty")  # _fill_column covers every row


def extracted_netlist(extracted: dict[str, Any], schematic: Netlist) -> Netlist:
    """A Netlist from a gdsfactory netlist dict extracted from a layout, for simulation.

    The drawing gives the instances, their cells and the optical connections (nets
    between ``o*`` ports); the phase settings come from the schematic instance of the
    same name and cell, so a misplaced or mis-wired cell simulates as drawn. Drawn
    instances unknown to the schematic keep their cells' default settings."""
    settings = {i.name: (i.component, i.settings) for i in schematic.instances}
    optical = {PORTS.upper_in, PORTS.upper_out, PORTS.lower_in, PORTS.lower_out}
    instances = []
    for name, spec in sorted(extracted.get("instances", {}).items()):
        component = str(spec["component"])
        known = settings.get(name)
        chosen = known[1] if known is not None and known[0] == component else ()
        instances.append(Instance(name=name, component=component, column=0, mode=0, settings=chosen))
    connections = tuple(
        sorted(
            (net["p1"], net["p2"])
            for net in extracted.get("nets", [])
            if net["p1"].rsplit(",", 1)[-1] in optical and net["p2"].rsplit(",", 1)[-1] in optical
        )
    )
    ports = tuple(
        sorted((k, v) for k, v in extracted.get("ports", {}).items() if k.startswith(("in", "out")))
    )
    return Netlist(
        name=schematic.name,
        n_modes=schematic.n_modes,
        n_columns=schematic.n_columns,
        instances=tuple(instances),
        connections=connections,
        ports=ports,
    )


#: The heaters of each cell kind, by their place in the cell (pad label suffix).
HEATER_ROLES: dict[str, tuple[str, ...]] = {
    "mzi": ("theta", "phi"),
    "attenuator": ("theta", "phi"),
    "phase_shifter": ("phase",),
}


def heater_roles(component: str) -> tuple[str, ...]:
    """The heaters of a cell kind (none for bypasses and waveguides)."""
    return HEATER_ROLES.get(component, ())


#: Cells between the layer's grid and the fibre: fans and couplers (2-port, reciprocal).
IO_CELLS = frozenset({"io_fan", *(cell for cell, _ in IO_COUPLERS.values())})


def strip_io(netlist: Netlist) -> Netlist:
    """The grid alone: I/O fans and couplers removed, each layer port moved to the grid
    port its chain of I/O cells leads to. The fans are not path-length matched, so their
    per-port phases belong to the I/O calibration, not to the layer's matrix."""
    kinds = {i.name: i.component for i in netlist.instances}
    other = {}
    for a, b in netlist.connections:
        other[a], other[b] = b, a

    def grid_port(port: str) -> str:
        for _ in range(len(netlist.instances) + 1):
            name, side = port.rsplit(",", 1)
            if kinds.get(name) not in IO_CELLS:
                return port
            through = PORTS.through_in if side == PORTS.through_out else PORTS.through_out
            nxt = other.get(f"{name},{through}")
            if nxt is None:
                raise InputError(f"netlist {netlist.name!r}: port {port} leads nowhere from the I/O")
            port = nxt
        raise InputError(f"netlist {netlist.name!r}: the I/O cells form a loop")

    def io_port(port: str) -> bool:
        return kinds.get(port.rsplit(",", 1)[0]) in IO_CELLS

    return dataclasses.replace(
        netlist,
        instances=tuple(i for i in netlist.instances if i.component not in IO_CELLS),
        connections=tuple(c for c in netlist.connections if not (io_port(c[0]) or io_port(c[1]))),
        ports=tuple((name, grid_port(port)) for name, port in netlist.ports),
        io=None,
    )
