"""Phase program -> Netlist: the one description of a layer's circuit (docs/architecture.md).

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
(mode j, j < in) and ``out{i}`` (mode i, i < out); in a segmented layer (below) they
sit on rows ``j R`` and ``i C``, between unused rows.

A segmented layer (``ud-segmented``: W tiled into k x k blocks, R block rows and C
block columns) is one grid too, in five sections (light order)::

    fan-out        permutation      tiles              permutation      fan-in
    in j -> R      (crossings)      D, U of every      (crossings)      C -> out i
    copies                          block side by side

* fan-out: input j enters row ``j R``; a chain of R-1 MZIs (``{layer}_FO_c{col}_m{row}``)
  leaves power 1/R on each of the rows ``j R .. j R + R - 1``;
* the first permutation brings copy r of input ``j = c k + l`` to input l of tile (r, c);
  the tiles sit in the order (r, c), each on ``max(shape)`` rows;
* the second brings output l of tile (r, c) to row ``i C + c`` (``i = r k + l``);
* fan-in: a chain of C-1 MZIs (``{layer}_FI_c{col}_m{row}``) adds the C tile outputs
  with weight 1/sqrt(C) each into row ``i C``, the port ``out{i}``; the other rows of
  the chain carry the rest of the power away.

A permutation is an odd-even transposition sort of the rows: columns of ``crossing``
cells (``{layer}_P1_x{col}_m{row}``) where two rows swap, bypasses elsewhere. The
fan-out and fan-in give each tile a constant phase; the tile's output phase screen
takes it out, so the grid realises ``sum_b embed(U_b D_b) / sqrt(R C)`` (the layer's
matrix without its scale, over the splitting loss ``10 log10(R C)`` dB).

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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from optinc_compiler.errors import InputError
from optinc_compiler.mzi import mzi_matrix
from optinc_compiler.program import (
    Block,
    DiagonalStage,
    Layer,
    MeshStage,
    Stage,
    segmented_tiling_problem,
)
from pdk import tech
from pdk.tech import PORTS

#: The cells and the bypass that stands in for each on an unused row.
BYPASS = {
    "mzi": "mzi_bypass",
    "phase_shifter": "phase_shifter_bypass",
    "attenuator": "attenuator_bypass",
    "crossing": "crossing_bypass",
}
#: Cells spanning two rows (upper = mode m, lower = m + 1), with an MZI's port names.
TWO_ROW = frozenset({"mzi", "crossing"})


@dataclass(frozen=True)
class Instance:
    """One cell of the grid.

    Attributes:
        name: unique instance name (MZI id for MZIs).
        component: PDK cell name (``mzi``, ``phase_shifter``, ``attenuator``,
            ``crossing`` or a bypass).
        column: grid column, in light order.
        mode: top row the cell occupies (an MZI or crossing also ``mode + 1``).
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
        return (self.mode, self.mode + 1) if self.component in TWO_ROW else (self.mode,)

    def port_in(self, row: int) -> str:
        """``instance,port`` where light on ``row`` enters."""
        if self.component in TWO_ROW:
            return f"{self.name},{PORTS.upper_in if row == self.mode else PORTS.lower_in}"
        return f"{self.name},{PORTS.through_in}"

    def port_out(self, row: int) -> str:
        """``instance,port`` where light on ``row`` leaves."""
        if self.component in TWO_ROW:
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
    (``io``: the I/O couplers included, or None for the grid alone). ``name`` is the
    layer's name, ``id`` its id (``Layer.id``), which the generated instance names and
    the layout's cells start with."""

    name: str
    id: str
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


def layer_netlist(layer: Layer, *, io: IoSpec | None = None, terminate: bool = False) -> Netlist:
    """The grid netlist of one layer; with ``terminate``, the terminators of its unused
    outputs, and with ``io``, its I/O couplers (the drawn chip has both)."""
    prefix = layer.id
    if layer.block_size is None:
        n = max(layer.shape)
        columns = [col for stage in layer.stages for col in _stage_columns(stage, prefix)]
        in_rows, out_rows = list(range(layer.shape[1])), list(range(layer.shape[0]))
    else:
        n, columns, in_rows, out_rows = _segmented_grid(layer, prefix)
    grid = [_fill_column(col, c, n, prefix) for c, col in enumerate(columns)]
    instances = tuple(inst for column in grid for inst in column)
    at = [_by_row(column) for column in grid]
    connections = []
    for left, right in itertools.pairwise(at):
        for row in range(n):
            connections.append((left[row].port_out(row), right[row].port_in(row)))
    ports = [(f"in{j}", at[0][row].port_in(row)) for j, row in enumerate(in_rows)]
    ports += [(f"out{i}", at[-1][row].port_out(row)) for i, row in enumerate(out_rows)]
    netlist = Netlist(
        name=layer.name,
        id=layer.id,
        n_modes=n,
        n_columns=len(grid),
        instances=instances,
        connections=tuple(connections),
        ports=tuple(ports),
    )
    if terminate:
        netlist = add_terminators(netlist)
    return netlist if io is None else add_io(netlist, io)


def add_terminators(netlist: Netlist) -> Netlist:
    """``netlist`` (a grid without I/O) with a terminator ``{layer}_term_m{row}`` (column
    ``n_columns``) on every row that leaves the last column through no layer port: the
    rows an svd or unitary layer does not read, the rest of each fan-in's power, a
    segmented grid's spare rows. On the input side, rows without a layer input get no
    light and stay open."""
    if netlist.io is not None or any(i.component == "terminator" for i in netlist.instances):
        raise InputError(f"netlist {netlist.name!r} already has its chip-edge cells")
    prefix = netlist.id
    used = {port for _, port in netlist.ports}
    instances, connections = list(netlist.instances), list(netlist.connections)
    for inst in netlist.instances:
        if inst.column != netlist.n_columns - 1:
            continue
        for row in inst.rows:
            if inst.port_out(row) not in used:
                name = f"{prefix}_term_m{row}"
                instances.append(
                    Instance(name=name, component="terminator", column=netlist.n_columns, mode=row)
                )
                connections.append((inst.port_out(row), f"{name},o1"))
    return dataclasses.replace(netlist, instances=tuple(instances), connections=tuple(connections))


def add_io(netlist: Netlist, io: IoSpec) -> Netlist:
    """``netlist`` (a grid without I/O) with a fan waveguide and a coupler on each port.

    Fan settings (``pdk.tech.fan_dx_um`` / ``fan_dy_um``): ``o2 - o1 = (dx + lead, dy)``
    with o1 on the coupler side for inputs and on the grid side for outputs."""
    if netlist.io is not None:
        raise InputError(f"netlist {netlist.name!r} already has I/O couplers")
    coupler, tag = IO_COUPLERS[io.kind]
    prefix = netlist.id
    instances, connections, ports = list(netlist.instances), list(netlist.connections), []
    row_of = {
        port: row
        for inst in netlist.instances
        for row in inst.rows
        for port in (inst.port_in(row), inst.port_out(row))
    }
    for side, lead, (fan_col, coupler_col) in (
        ("in", io.lead_in_um, (-1, -2)),
        ("out", io.lead_out_um, (netlist.n_columns, netlist.n_columns + 1)),
    ):
        targets = [(name, target) for name, target in netlist.ports if name.startswith(side)]
        rows = tuple(row_of[target] for _, target in targets)
        dx = tech.fan_dx_um(rows)
        for k, (port_name, target) in enumerate(targets):
            dy = tech.fan_dy_um(k, rows)
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


Column = tuple[str, list[Instance]]


def _stage_columns(
    stage: Stage, prefix: str, *, row: int = 0, phase_shift_rad: float = 0.0, depth: int | None = None
) -> list[Column]:
    """The grid columns of one stage (kind of cell, active instances; their column is set
    later) with its mode 0 on grid row ``row``: one attenuator column, or ``depth``
    (default: the mesh's) MZI columns and the output phase screen, every output phase
    plus ``phase_shift_rad`` (a constant phase of the whole stage)."""
    if isinstance(stage, DiagonalStage):
        return [
            (
                "attenuator",
                [
                    Instance(
                        name=f"{prefix}_{stage.name}_att_m{m}",
                        component="attenuator",
                        column=0,
                        mode=row + m,
                        settings=(("amplitude", float(a)), ("phase_rad", float(p))),
                    )
                    for m, (a, p) in enumerate(zip(stage.amplitude, stage.phase_rad, strict=True))
                ],
            )
        ]
    mesh = stage.mesh
    by_column: list[list[Instance]] = [[] for _ in range(mesh.depth if depth is None else depth)]
    for k in range(mesh.n_mzis):
        c = int(mesh.columns[k])
        by_column[c].append(
            Instance(
                name=stage.mzi_ids[k],
                component="mzi",
                column=c,
                mode=row + int(mesh.modes[k]),
                settings=(("theta_rad", float(mesh.theta_rad[k])), ("phi_rad", float(mesh.phi_rad[k]))),
            )
        )
    screen = [
        Instance(
            name=f"{prefix}_{stage.name}_ps_m{m}",
            component="phase_shifter",
            column=0,
            mode=row + m,
            settings=(("phase_rad", float(p + phase_shift_rad)),),
        )
        for m, p in enumerate(mesh.output_phases_rad)
    ]
    return [*(("mzi", column) for column in by_column), ("phase_shifter", screen)]


# --- segmented layers ---------------------------------------------------------------


@dataclass(frozen=True)
class _SegmentedPlan:
    """Rows of a segmented layer's grid: tiles in (r, c) order from ``offsets``, and the
    (from, to) row moves of the two crossing networks."""

    n_rows: int
    fan_out: int
    fan_in: int
    tiles: tuple[Block, ...]
    offsets: tuple[int, ...]
    to_tiles: tuple[tuple[int, int], ...]
    from_tiles: tuple[tuple[int, int], ...]


def _segmented_plan(layer: Layer) -> _SegmentedPlan:
    k = layer.block_size
    assert k is not None
    problem = segmented_tiling_problem(layer)
    if problem is not None:
        raise InputError(f"layer {layer.name!r}: {problem}")
    n_out, n_in = layer.shape
    fan_out, fan_in = block_grid(layer)
    tiles = tuple(sorted(layer.blocks, key=lambda b: (b.row_offset, b.col_offset)))
    offsets = tuple(itertools.accumulate((_block_rows(b) for b in tiles), initial=0))
    to_tiles, from_tiles = [], []
    for t, b in enumerate(tiles):
        r, c = b.row_offset // k, b.col_offset // k
        to_tiles += [((c * k + m) * fan_out + r, offsets[t] + m) for m in range(b.shape[1])]
        from_tiles += [(offsets[t] + m, (r * k + m) * fan_in + c) for m in range(b.shape[0])]
    return _SegmentedPlan(
        n_rows=max(n_in * fan_out, offsets[-1], n_out * fan_in),
        fan_out=fan_out,
        fan_in=fan_in,
        tiles=tiles,
        offsets=offsets,
        to_tiles=tuple(to_tiles),
        from_tiles=tuple(from_tiles),
    )


def segmented_counts(layer: Layer) -> tuple[int, int]:
    """(splitter and combiner MZIs, waveguide crossings) a segmented layer's chip adds
    to its tiles, without building the netlist: a transposition sort swaps each
    inverted pair of rows once."""
    plan = _segmented_plan(layer)
    fans = layer.shape[1] * (plan.fan_out - 1) + layer.shape[0] * (plan.fan_in - 1)
    crossings = sum(_inversions(_labels(moves, plan.n_rows)) for moves in (plan.to_tiles, plan.from_tiles))
    return fans, crossings


def _labels(moves: Sequence[tuple[int, int]], n: int) -> list[int]:
    """Each row's destination: the moves', and the free destinations in order for the
    rows without light (so those never cross each other)."""
    target = dict(moves)
    free = iter(sorted(set(range(n)) - set(target.values())))
    return [target[row] if row in target else next(free) for row in range(n)]


def _inversions(labels: list[int]) -> int:
    """Pairs i < j with labels[i] > labels[j] (a Fenwick tree, O(n log n))."""
    tree = [0] * (len(labels) + 1)
    count = 0
    for seen, label in enumerate(labels):
        i, below = label + 1, 0
        while i > 0:
            below += tree[i]
            i -= i & -i
        count += seen - below
        i = label + 1
        while i < len(tree):
            tree[i] += 1
            i += i & -i
    return count


def _segmented_grid(layer: Layer, prefix: str) -> tuple[int, list[Column], list[int], list[int]]:
    """Rows, columns, input rows and output rows of a segmented layer (module docstring)."""
    plan = _segmented_plan(layer)
    n, fan_out, fan_in, tiles, offsets = plan.n_rows, plan.fan_out, plan.fan_in, plan.tiles, plan.offsets
    n_out, n_in = layer.shape
    kinds = [type(s) for s in tiles[0].stages]
    if any([type(s) for s in b.stages] != kinds for b in tiles):
        raise InputError(f"layer {layer.name!r}: its blocks have different stage sequences")
    split, _ = split_chain(fan_out)
    merge, _ = merge_chain(fan_in)
    columns: list[Column] = []
    for col, (mode, theta) in enumerate(split):
        columns.append(
            ("mzi", [_fixed_mzi(prefix, "FO", col, j * fan_out + mode, theta) for j in range(n_in)])
        )
    columns += _permutation_columns(plan.to_tiles, n, prefix, "P1")
    shifts = tile_phase_shifts(layer)
    for i in range(len(kinds)):
        meshes = [s.mesh for b in tiles if isinstance(s := b.stages[i], MeshStage)]
        depth = max(m.depth for m in meshes) if meshes else None
        per_tile = []
        for t, b in enumerate(tiles):
            shift = shifts.get(b.stages[i].name, 0.0)
            per_tile.append(
                _stage_columns(b.stages[i], prefix, row=offsets[t], phase_shift_rad=shift, depth=depth)
            )
        for parts in zip(*per_tile, strict=True):
            columns.append((parts[0][0], [inst for _, insts in parts for inst in insts]))
    columns += _permutation_columns(plan.from_tiles, n, prefix, "P2")
    for col, (mode, theta) in enumerate(merge):
        columns.append(
            ("mzi", [_fixed_mzi(prefix, "FI", col, i * fan_in + mode, theta) for i in range(n_out)])
        )
    return n, columns, [j * fan_out for j in range(n_in)], [i * fan_in for i in range(n_out)]


def tile_phase_shifts(layer: Layer) -> dict[str, float]:
    """Segmented layers: the phase the netlist adds to the output screen of each tile's
    last mesh stage (by stage name), cancelling the tile's fan-out and fan-in phase;
    empty for other layers."""
    k = layer.block_size
    if k is None:
        return {}
    problem = segmented_tiling_problem(layer)
    if problem is not None:
        raise InputError(f"layer {layer.name!r}: {problem}")
    fan_out, fan_in = block_grid(layer)
    _, split_gain = split_chain(fan_out)
    _, merge_gain = merge_chain(fan_in)
    out = {}
    for b in layer.blocks:
        last_mesh = [s for s in b.stages if isinstance(s, MeshStage)][-1]
        gain = split_gain[b.row_offset // k] * merge_gain[b.col_offset // k]
        out[last_mesh.name] = -float(np.angle(gain))
    return out


def _block_rows(block: Block) -> int:
    """Grid rows of a tile: its widest stage."""
    return max(s.n_modes for s in block.stages)


def _fixed_mzi(prefix: str, tag: str, column: int, row: int, theta_rad: float) -> Instance:
    return Instance(
        name=f"{prefix}_{tag}_c{column}_m{row}",
        component="mzi",
        column=0,
        mode=row,
        settings=(("theta_rad", theta_rad), ("phi_rad", 0.0)),
    )


def split_chain(n: int) -> tuple[list[tuple[int, float]], npt.NDArray[np.complex128]]:
    """Fan-out of one input on local row 0 to rows 0..n-1: MZI ``col`` on rows (col,
    col+1) keeps 1/(n - col) of its upper input's power on the upper row
    (``sin^2(theta/2)``, mzi.py); returns (row, theta) per column and the amplitude on
    each row (all of modulus 1/sqrt(n))."""
    chain = [(col, 2 * math.asin(math.sqrt(1 / (n - col)))) for col in range(n - 1)]
    return chain, chain_transfer(chain, n)[:, 0]


def merge_chain(n: int) -> tuple[list[tuple[int, float]], npt.NDArray[np.complex128]]:
    """Fan-in of rows 0..n-1 into row 0, from the bottom up: MZI ``col`` on rows (n-2-col,
    n-1-col) adds its upper input with weight ``sin(theta/2) = 1/sqrt(col+2)`` to the sum
    of the col+1 rows below; returns (row, theta) per column and the weight of each row
    in row 0's output (all of modulus 1/sqrt(n))."""
    chain = [(n - 2 - col, 2 * math.asin(math.sqrt(1 / (col + 2)))) for col in range(n - 1)]
    return chain, chain_transfer(chain, n)[0]


def chain_transfer(
    chain: Sequence[tuple[int, float]],
    n: int,
    theta_rad: npt.ArrayLike | None = None,
    phi_rad: npt.ArrayLike | None = None,
) -> npt.NDArray[np.complex128]:
    """``(..., n, n)`` transfer matrix of a fan chain: its MZIs on rows (row, row + 1) in
    order, at the chain's thetas and phi = 0, or at ``theta_rad`` / ``phi_rad`` (``(...,
    len(chain))``: realised or noisy heater phases, batched)."""
    theta = np.array([t for _, t in chain], dtype=np.float64) if theta_rad is None else np.asarray(theta_rad)
    phi = np.zeros_like(theta) if phi_rad is None else np.asarray(phi_rad)
    t = mzi_matrix(theta, phi)  # (..., len(chain), 2, 2)
    transfer = np.broadcast_to(np.eye(n, dtype=np.complex128), (*t.shape[:-3], n, n)).copy()
    for k, (row, _) in enumerate(chain):
        transfer[..., row : row + 2, :] = t[..., k, :, :] @ transfer[..., row : row + 2, :]
    return transfer


def block_grid(layer: Layer) -> tuple[int, int]:
    """Block rows R and block columns C of a layer (1, 1 unless segmented)."""
    if layer.block_size is None:
        return 1, 1
    k = layer.block_size
    return -(-layer.shape[0] // k), -(-layer.shape[1] // k)


def combine_tiles(
    layer: Layer,
    tiles: Sequence[npt.NDArray[np.complex128]],
    split: npt.NDArray[np.complex128],
    merge: npt.NDArray[np.complex128],
) -> npt.NDArray[np.complex128]:
    """``(..., out, in)``: what the fan chains make of a segmented layer's tile matrices
    (``tiles[b]``: ``(..., h, w)`` in block order), ``sum_b merge[i, c] W_b[i, j]
    split[j, r]`` with ``split`` ``(..., in, R)`` each input's amplitudes on its copies and
    ``merge`` ``(..., out, C)`` each output's combiner weights; the tile phase of the
    netlist (:func:`tile_phase_shifts`) undone, so nominal chains give
    ``sum_b W_b / sqrt(R C)``."""
    k = layer.block_size
    assert k is not None
    n_rows, n_cols = block_grid(layer)
    _, split_nominal = split_chain(n_rows)
    _, merge_nominal = merge_chain(n_cols)
    out = np.zeros((*split.shape[:-2], *layer.shape), dtype=np.complex128)
    for block, tile in zip(layer.blocks, tiles, strict=True):
        (r, c), (h, w) = (block.row_offset, block.col_offset), block.shape
        rb, cb = r // k, c // k
        undo = np.exp(-1j * np.angle(split_nominal[rb] * merge_nominal[cb]))
        out[..., r : r + h, c : c + w] += (
            undo * merge[..., r : r + h, cb, None] * tile * split[..., None, c : c + w, rb]
        )
    return out


def fan_heater_ids(layer: Layer) -> tuple[list[list[str]], list[list[str]]]:
    """MZI names of each input's splitter chain and each output's combiner chain (in
    chain order) of a segmented layer; empty lists for the others."""
    if layer.block_size is None:
        return [], []
    prefix = layer.id
    fan_out, fan_in = block_grid(layer)
    split, _ = split_chain(fan_out)
    merge, _ = merge_chain(fan_in)
    inputs = [
        [f"{prefix}_FO_c{col}_m{j * fan_out + row}" for col, (row, _) in enumerate(split)]
        for j in range(layer.shape[1])
    ]
    outputs = [
        [f"{prefix}_FI_c{col}_m{i * fan_in + row}" for col, (row, _) in enumerate(merge)]
        for i in range(layer.shape[0])
    ]
    return inputs, outputs


def _permutation_columns(moves: Sequence[tuple[int, int]], n: int, prefix: str, tag: str) -> list[Column]:
    """Crossing columns that move the light on row ``a`` to row ``b`` for each (a, b):
    an odd-even transposition sort (at most n columns); rows without light keep their
    order, so they never cross each other."""
    labels = _labels(moves, n)
    columns: list[Column] = []
    for step in range(n + 1):
        if labels == sorted(labels):
            break
        swaps = [row for row in range(step % 2, n - 1, 2) if labels[row] > labels[row + 1]]
        for row in swaps:
            labels[row], labels[row + 1] = labels[row + 1], labels[row]
        if swaps:
            x = len(columns)
            columns.append(
                (
                    "crossing",
                    [
                        Instance(name=f"{prefix}_{tag}_x{x}_m{row}", component="crossing", column=0, mode=row)
                        for row in swaps
                    ],
                )
            )
    return columns


def _fill_column(kind_and_active: Column, column: int, n: int, prefix: str) -> list[Instance]:
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


def _by_row(column: list[Instance]) -> list[Instance]:
    """The instance on each row of a filled column (``_fill_column`` covers every row)."""
    return [inst for inst in column for _ in inst.rows]


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
        id=schematic.id,
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
#: Cells at the grid's edge that simulation leaves out: the I/O and the terminators.
EDGE_CELLS = IO_CELLS | {"terminator"}


def strip_io(netlist: Netlist) -> Netlist:
    """The grid alone: I/O fans, couplers and terminators removed, each layer port moved
    to the grid port its chain of I/O cells leads to. The fans are not path-length
    matched, so their per-port phases belong to the I/O calibration, not to the layer's
    matrix; terminators only shed light that no port reads."""
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
        return kinds.get(port.rsplit(",", 1)[0]) in EDGE_CELLS

    return dataclasses.replace(
        netlist,
        instances=tuple(i for i in netlist.instances if i.component not in EDGE_CELLS),
        connections=tuple(c for c in netlist.connections if not (io_port(c[0]) or io_port(c[1]))),
        ports=tuple((name, grid_port(port)) for name, port in netlist.ports),
        io=None,
    )
