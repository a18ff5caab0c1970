"""Heater routing plan: every heater's signal end to its own bond pad, returns to
shared ground pads (pure geometry, no gdsfactory; ``layout`` draws the plan).

What was found to work (docs/architecture.md, "Heater routing"), made deterministic:

1. Heaters with the same x (one role in one grid column) form a region. The upper half
   of the rows routes up, the lower half down.
2. In a region, each heater gets its own vertical track beside it: a short stub along
   its row from the signal contact to the track, then straight to the grid edge.
   Tracks are assigned monotonically (further rows get tracks further from the
   contacts), so no stub crosses a track (docs/architecture.md: one track per terminal).
3. The return contacts of a region share x: one vertical ground line through all of
   them, from grid edge to grid edge, ends in a ground pad, at the top for every
   other region and at the bottom for the rest (pad rows of about equal length).
4. Above (below) the grid, a monotone fan-out takes the wires, in x order, to a row of
   pads at the pad pitch: wires moving right turn lower the further right they are,
   wires moving left likewise, so no two wires cross.

Pads are labelled with the heater id (``{instance}_{theta|phi|phase}``) or
``GND_{layer}_{k}``. Edge pads refuse regions with more heaters than tracks fit between
two contacts (grids above 16 rows); those take the flip-chip area array instead
(``plan_bumps``): every heater gets a bump over itself, on its signal contact's M2
landing or one short stub away (``pdk.tech.Bump``: staggered by row parity), and each
region's ground line ends in a ground bump just above the grid. No wire leaves its
heater's row, so nothing crosses and the plan is linear in the number of heaters.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from optinc_compiler.errors import InputError
from pdk import tech

Point = tuple[float, float]


@dataclass(frozen=True)
class Heater:
    """A heater on the drawn grid: contact centres in um."""

    heater_id: str
    row: int
    x_signal_um: float
    x_return_um: float
    y_um: float


@dataclass(frozen=True)
class Wire:
    """A Manhattan centreline on the routing metal; ``net`` is the pad label it reaches."""

    net: str
    points: tuple[Point, ...]


@dataclass(frozen=True)
class Pad:
    """A bond pad (``kind`` "pad") or flip-chip bump ("bump") centred at (x, y)."""

    label: str
    x_um: float
    y_um: float
    kind: str = "pad"


@dataclass(frozen=True)
class RoutingPlan:
    """Wires and pads of one grid."""

    wires: tuple[Wire, ...]
    pads: tuple[Pad, ...]

    @property
    def n_signal_pads(self) -> int:
        """Pads wired to one heater each."""
        return sum(not p.label.startswith("GND") for p in self.pads)


def plan_routing(
    heaters: Sequence[Heater], *, n_rows: int, y_top_um: float, y_bottom_um: float, ground_label: str = "GND"
) -> RoutingPlan:
    """Plan the wires and pads of one grid whose rows span ``y_bottom_um .. y_top_um``;
    ground pads are labelled ``{ground_label}{k}`` (make it unique per grid)."""
    regions: dict[float, list[Heater]] = defaultdict(list)
    for h in heaters:
        regions[h.x_signal_um].append(h)
    top: list[tuple[float, Wire]] = []  # (x where the wire leaves the grid, wire so far)
    bottom: list[tuple[float, Wire]] = []
    for k, x_signal in enumerate(sorted(regions)):
        members = regions[x_signal]
        up = sorted((h for h in members if 2 * h.row < n_rows), key=lambda h: h.row)
        down = sorted((h for h in members if 2 * h.row >= n_rows), key=lambda h: -h.row)
        top += _tracks(up, y_top_um)
        bottom += _tracks(down, y_bottom_um)
        x_return = members[0].x_return_um
        if k % 2 == 0:  # ground lines alternate between the edges: pad rows of equal length
            top.append((x_return, Wire(net="", points=((x_return, y_bottom_um), (x_return, y_top_um)))))
        else:
            bottom.append((x_return, Wire(net="", points=((x_return, y_top_um), (x_return, y_bottom_um)))))
    wires, pads = _fan_out(top, y_top_um, direction=1.0, ground_prefix=f"{ground_label}t")
    wires_b, pads_b = _fan_out(bottom, y_bottom_um, direction=-1.0, ground_prefix=f"{ground_label}b")
    return RoutingPlan(wires=tuple(wires + wires_b), pads=tuple(pads + pads_b))


def edge_pads_fit(heaters: Sequence[Heater], *, n_rows: int) -> bool:
    """Do the tracks of every column half fit between its contacts (``plan_routing``)?"""
    halves: dict[tuple[float, bool], list[Heater]] = defaultdict(list)
    for h in heaters:
        halves[(h.x_signal_um, 2 * h.row < n_rows)].append(h)
    return all(len(members) <= _track_capacity(members[0]) for members in halves.values())


def _track_capacity(h: Heater) -> int:
    """How many vertical tracks fit between a heater's signal and return contacts."""
    r, t = tech.ROUTING, tech.TERMINAL
    space = r.pitch_um - r.width_um
    first = h.x_signal_um + t.size_um / 2 + space + r.width_um / 2
    last = h.x_return_um - t.size_um / 2 - space - r.width_um / 2
    return int((last - first) // r.pitch_um) + 1


def plan_bumps(heaters: Sequence[Heater], *, y_top_um: float, ground_label: str = "GND") -> RoutingPlan:
    """Flip-chip plan: a bump per heater over the heater and a ground bump per region
    (heaters sharing a return x) at the top end of its ground line, ``y_top_um`` being
    the grid's top edge; ground bumps are labelled ``{ground_label}f{k}``."""
    b = tech.BUMP
    wires, pads = [], []
    returns: dict[float, float] = {}  # return x -> lowest contact y
    for h in heaters:
        x_bump = h.x_signal_um + (b.even_offset_um if h.row % 2 == 0 else b.odd_offset_um)
        wires.append(Wire(net=h.heater_id, points=((h.x_signal_um, h.y_um), (x_bump, h.y_um))))
        pads.append(Pad(label=h.heater_id, x_um=x_bump, y_um=h.y_um, kind="bump"))
        returns[h.x_return_um] = min(h.y_um, returns.get(h.x_return_um, h.y_um))
    y_ground = y_top_um + b.ground_gap_um + b.size_um / 2
    for k, x in enumerate(sorted(returns)):
        label = f"{ground_label}f{k}"
        wires.append(Wire(net=label, points=((x, returns[x]), (x, y_ground))))
        pads.append(Pad(label=label, x_um=x, y_um=y_ground, kind="bump"))
    return RoutingPlan(wires=tuple(wires), pads=tuple(pads))


def _tracks(heaters: list[Heater], y_edge_um: float) -> list[tuple[float, Wire]]:
    """Stub plus vertical track for each heater, nearest row first (monotone)."""
    if not heaters:
        return []
    r, t = tech.ROUTING, tech.TERMINAL
    first = heaters[0].x_signal_um + t.size_um / 2 + (r.pitch_um - r.width_um) + r.width_um / 2
    capacity = _track_capacity(heaters[0])
    if len(heaters) > capacity:
        raise InputError(
            f"{len(heaters)} heaters share one column half at x = {heaters[0].x_signal_um:.1f} um; edge "
            f"pads fit {capacity} (grids up to 16 rows): larger meshes need the flip-chip area array "
            "(optinc layout --pads bumps, or --pads auto)"
        )
    out = []
    for k, h in enumerate(heaters):
        x_track = first + k * r.pitch_um
        wire = Wire(
            net=h.heater_id, points=((h.x_signal_um, h.y_um), (x_track, h.y_um), (x_track, y_edge_um))
        )
        out.append((x_track, wire))
    return out


def _fan_out(
    leaving: list[tuple[float, Wire]], y_edge_um: float, *, direction: float, ground_prefix: str
) -> tuple[list[Wire], list[Pad]]:
    """Take the wires leaving one edge to a row of pads, in x order, without crossings."""
    if not leaving:
        return [], []
    r = tech.ROUTING
    pitch, size = tech.RULES.pad_pitch_um, tech.RULES.pad_size_um
    leaving = sorted(leaving, key=lambda item: item[0])
    xs = [x for x, _ in leaving]
    centre = (xs[0] + xs[-1]) / 2
    pad_x = [centre + (k - (len(xs) - 1) / 2) * pitch for k in range(len(xs))]
    right = [k for k, (x, px) in enumerate(zip(xs, pad_x, strict=True)) if px > x]
    left = [k for k, (x, px) in enumerate(zip(xs, pad_x, strict=True)) if px < x]
    y0 = y_edge_um + direction * 2 * r.pitch_um
    level = {k: len(right) - i for i, k in enumerate(right)}  # rightmost turns first
    level.update({k: i + 1 for i, k in enumerate(left)})  # leftmost turns first
    n_levels = max([0, *level.values()])
    y_pad = y0 + direction * ((n_levels + 1) * r.pitch_um + size / 2)
    wires, pads, n_ground = [], [], 0
    for k, (x, wire) in enumerate(leaving):
        label = wire.net
        if not label:
            label, n_ground = f"{ground_prefix}{n_ground}", n_ground + 1
        y_turn = y0 + direction * level.get(k, 0) * r.pitch_um
        tail = ((x, y_turn), (pad_x[k], y_turn), (pad_x[k], y_pad))
        wires.append(Wire(net=label, points=wire.points + tail))
        pads.append(Pad(label=label, x_um=pad_x[k], y_um=y_pad))
    return wires, pads
