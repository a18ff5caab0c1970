"""Mesh cells on CORNERSTONE SOI 220, built only from the foundry's cells.

Every waveguide, bend, coupler and heater is an instance of a ``cspdk.si220.cells``
cell (``straight``, ``bend_s``, ``coupler``, ``straight_heater_metal``, and for the
terminator, which the foundry lacks, ``taper`` and ``bend_circular``); nothing is
redrawn. A cell spans one grid column; two-row cells put the upper row (mode m) at
y = 0 and the lower at y = -ROW_PITCH, with our port names (``pdk.tech.PORTS``:
o2 -> o3 upper, o1 -> o4 lower; one-row cells o1 -> o2, the attenuator's dark arm
between its row and the next).

Heaters sit in *slots* (``tech.SLOT_MARGIN_UM``, heated length, margin) so that the
wires of deeper heaters in a column rise through slots where the rows between hold
plain waveguide (``chip``): an MZI's phi heater takes slot ``slots - 1 - depth`` of its
first section, its theta heater slot ``depth`` of the second, so the depth-0 MZI's phi
and theta contacts face each other across the coupler and (routed up) share one return.
``down`` mirrors the heaters so their contacts face south (rows routed down).

Ports: optical as above; electrical ``<role>_l`` / ``<role>_r`` at the heater contacts'
outer edges (role ``phi``, ``theta`` or ``phase``), facing north (or south).
"""

from __future__ import annotations

import itertools
from typing import Any

import gdsfactory as gf

from optinc_compiler.cornerstone import tech
from optinc_compiler.cornerstone.geometry import geometry
from pdk.tech import PORTS


def activate() -> Any:
    """Activate the foundry's PDK and return it: every cell call does, as a process may
    switch between PDKs (our ``layout.activate_pdk`` activates ours)."""
    from cspdk.si220 import PDK

    PDK.activate()
    return PDK


def _cells() -> Any:
    """The foundry's cells, with its PDK active."""
    activate()
    from cspdk.si220 import cells

    return cells


def _straight(c: gf.Component, length_um: float, name: str) -> Any:
    return c.add_ref(_cells().straight(length=round(length_um, 3)), name=name)


def _heater(c: gf.Component, name: str, down: bool) -> Any:
    ref = c.add_ref(_cells().straight_heater_metal(length=tech.HEATER_LENGTH_UM), name=name)
    if down:
        ref.dmirror_y()
    return ref


def _chain(refs: list[Any]) -> None:
    """Join each part's o1 to the previous part's o2."""
    for prev, ref in itertools.pairwise(refs):
        ref.connect("o1", prev.ports["o2"])


def _heater_row(
    c: gf.Component, *, slots: int, slot: int, role: str, down: bool, prefix: str
) -> tuple[list[Any], Any]:
    """A row of ``slots`` slots with the heater ``role`` in ``slot``: the parts in order."""
    g = geometry()
    before = tech.SLOT_MARGIN_UM + slot * g.slot_um
    after = tech.SLOT_MARGIN_UM + (slots - 1 - slot) * g.slot_um
    heater = _heater(c, role, down)
    parts = [_straight(c, before, f"{prefix}_in"), heater, _straight(c, after, f"{prefix}_out")]
    return parts, heater


def _export_heater(c: gf.Component, heater: Any, role: str, down: bool) -> None:
    """The heater's two contacts as ``<role>_l`` / ``<role>_r`` (west, east)."""
    contacts = sorted((p for p in heater.ports if p.port_type == "electrical"), key=lambda p: p.center[0])
    for side, port in zip(("l", "r"), (contacts[0], contacts[-1]), strict=True):
        c.add_port(f"{role}_{side}", port=port)
    del down  # the mirrored heater's ports already face south


def _coupler_section(
    c: gf.Component, upper: Any, lower: Any, k: int, *, dy_um: float, dark_out: bool = False
) -> tuple[Any, Any]:
    """S-bends of height ``dy_um`` from the arms to the coupler, the foundry coupler,
    S-bends back; joined to the ``upper`` / ``lower`` parts before; returns the last
    parts. An attenuator's dark ports end in terminators: the coupler's lower input
    when ``lower`` is None, its lower output with ``dark_out`` (then None is returned)."""
    cells, g = _cells(), geometry()
    dx = tech.COUPLER_BEND_DX_UM
    coupler = c.add_ref(cells.coupler(length=g.coupler_length_um), name=f"coupler{k}")
    up_in = c.add_ref(cells.bend_s(size=(dx, -dy_um)), name=f"bend{k}_upper_in")
    up_in.connect("o1", upper.ports["o2"])
    coupler.connect("o2", up_in.ports["o2"])
    if lower is None:  # facing west, mirrored so that it curls away from the upper arm
        c.add_ref(cs_terminator(), name=f"terminator{k}_in").connect("o1", coupler.ports["o1"], mirror=True)
    else:
        c.add_ref(cells.bend_s(size=(dx, dy_um)), name=f"bend{k}_lower_in").connect("o1", lower.ports["o2"])
    up_out = c.add_ref(cells.bend_s(size=(dx, dy_um)), name=f"bend{k}_upper_out")
    up_out.connect("o1", coupler.ports["o3"])
    if dark_out:
        c.add_ref(cs_terminator(), name=f"terminator{k}_out").connect("o1", coupler.ports["o4"])
        return up_out, None
    lo_out = c.add_ref(cells.bend_s(size=(dx, -dy_um)), name=f"bend{k}_lower_out")
    lo_out.connect("o1", coupler.ports["o4"])
    return up_out, lo_out


@gf.cell
def cs_terminator() -> gf.Component:
    """Waveguide termination drawn within the foundry's rules (cspdk has none): its
    ``taper`` to ``tech.TERMINATOR_WIDTH_UM``, a curl of its ``bend_circular`` tightening
    through ``tech.TERMINATOR_RADII_UM`` (turning right, south when heading east) and a
    short ``straight``; port o1 (west) only."""
    cells = _cells()
    c = gf.Component()
    w = tech.TERMINATOR_WIDTH_UM
    parts = [c.add_ref(cells.taper(length=tech.TERMINATOR_TAPER_UM, width2=w), name="taper")]
    for k, radius in enumerate(tech.TERMINATOR_RADII_UM):
        bend = cells.bend_circular(radius=radius, width=w, allow_min_radius_violation=True)
        parts.append(c.add_ref(bend, name=f"curl{k}"))
        parts[-1].connect("o1", parts[-2].ports["o2"], mirror=True)
    parts.append(c.add_ref(cells.straight(length=tech.TERMINATOR_TIP_UM, width=w), name="tip"))
    parts[-1].connect("o1", parts[-2].ports["o2"])
    c.add_port("o1", port=parts[0].ports["o1"])
    return c


@gf.cell
def cs_mzi(slots: int = 1, depth: int = 0, down: bool = False) -> gf.Component:
    """MZI ``B P(theta) B P(phi)``: phi heater on the upper row, foundry coupler, theta
    heater on the upper arm, foundry coupler; the lower arm plain waveguide of the same
    length. ``depth`` (< ``slots``) picks the heaters' slots."""
    c = gf.Component()
    g = geometry()
    phi_parts, phi = _heater_row(c, slots=slots, slot=slots - 1 - depth, role="phi", down=down, prefix="phi")
    _chain(phi_parts)
    lower1 = _straight(c, slots * g.slot_um, "lower1")
    lower1.dmove((0, -tech.ROW_PITCH_UM))
    upper, lower = _coupler_section(c, phi_parts[-1], lower1, 1, dy_um=g.bend_dy_um)
    theta_parts, theta = _heater_row(c, slots=slots, slot=depth, role="theta", down=down, prefix="theta")
    theta_parts[0].connect("o1", upper.ports["o2"])
    _chain(theta_parts)
    lower2 = _straight(c, slots * g.slot_um, "lower2")
    lower2.connect("o1", lower.ports["o2"])
    upper, lower = _coupler_section(c, theta_parts[-1], lower2, 2, dy_um=g.bend_dy_um)
    c.add_port(PORTS.upper_in, port=phi_parts[0].ports["o1"])
    c.add_port(PORTS.lower_in, port=lower1.ports["o1"])
    c.add_port(PORTS.upper_out, port=upper.ports["o2"])
    c.add_port(PORTS.lower_out, port=lower.ports["o2"])
    _export_heater(c, phi, "phi", down)
    _export_heater(c, theta, "theta", down)
    return c


def _bypass_section(c: gf.Component, before: Any, k: int, dy_um: float) -> Any:
    """A bypass row across a coupler section: up on an S-bend, a straight the coupler's
    length, down again, with an MZI arm's phase (``geometry``)."""
    cells, g = _cells(), geometry()
    dx = tech.COUPLER_BEND_DX_UM
    parts = [
        before,
        c.add_ref(cells.bend_s(size=(dx, dy_um)), name=f"bend{k}_in"),
        _straight(c, g.coupler_dx_um, f"coupler{k}_bypass"),
        c.add_ref(cells.bend_s(size=(dx, -dy_um)), name=f"bend{k}_out"),
    ]
    _chain(parts)
    return parts[-1]


def _bypass(c: gf.Component, slots: int, dy_um: float) -> None:
    """Two plain sections and two bypass coupler sections, ports o1 -> o2."""
    g = geometry()
    first = _straight(c, slots * g.slot_um, "section1")
    end = _bypass_section(c, first, 1, dy_um)
    second = _straight(c, slots * g.slot_um, "section2")
    second.connect("o1", end.ports["o2"])
    end = _bypass_section(c, second, 2, dy_um)
    c.add_port(PORTS.through_in, port=first.ports["o1"])
    c.add_port(PORTS.through_out, port=end.ports["o2"])


@gf.cell
def cs_mzi_bypass(slots: int = 1) -> gf.Component:
    """The row of an MZI column that no MZI uses: its path and phase are an arm's."""
    c = gf.Component()
    _bypass(c, slots, geometry().bypass_dy_um)
    return c


@gf.cell
def cs_attenuator(slots: int = 1, depth: int = 0, down: bool = False) -> gf.Component:
    """Variable attenuator inside one row (o1 -> o2): ``cs_mzi``'s heaters and couplers
    with the lower arm ``tech.ATTENUATOR_ARM_PITCH_UM`` below the row and its two dark
    ports (the first coupler's lower input, the second's lower output) terminated
    (``cs_terminator``). Heaters: phi then theta, in the slots ``cs_mzi`` gives them."""
    c = gf.Component()
    g = geometry()
    dy = g.attenuator_dy_um
    phi_parts, phi = _heater_row(c, slots=slots, slot=slots - 1 - depth, role="phi", down=down, prefix="phi")
    _chain(phi_parts)
    upper, lower = _coupler_section(c, phi_parts[-1], None, 1, dy_um=dy)
    theta_parts, theta = _heater_row(c, slots=slots, slot=depth, role="theta", down=down, prefix="theta")
    theta_parts[0].connect("o1", upper.ports["o2"])
    _chain(theta_parts)
    arm = _straight(c, slots * g.slot_um, "lower2")
    arm.connect("o1", lower.ports["o2"])
    upper, _ = _coupler_section(c, theta_parts[-1], arm, 2, dy_um=dy, dark_out=True)
    c.add_port(PORTS.through_in, port=phi_parts[0].ports["o1"])
    c.add_port(PORTS.through_out, port=upper.ports["o2"])
    _export_heater(c, phi, "phi", down)
    _export_heater(c, theta, "theta", down)
    return c


@gf.cell
def cs_attenuator_bypass(slots: int = 1) -> gf.Component:
    """The row of an attenuator column without an attenuator: an attenuator's path and
    phase (its own bypass S-bends, ``geometry``)."""
    c = gf.Component()
    _bypass(c, slots, geometry().attenuator_bypass_dy_um)
    return c


@gf.cell
def cs_phase_shifter(slots: int = 1, slot: int = 0, down: bool = False) -> gf.Component:
    """An output phase shifter: the heater in ``slot`` of ``slots``."""
    c = gf.Component()
    parts, heater = _heater_row(c, slots=slots, slot=slot, role="phase", down=down, prefix="wg")
    _chain(parts)
    c.add_port(PORTS.through_in, port=parts[0].ports["o1"])
    c.add_port(PORTS.through_out, port=parts[-1].ports["o2"])
    _export_heater(c, heater, "phase", down)
    return c


@gf.cell
def cs_phase_shifter_bypass(slots: int = 1) -> gf.Component:
    """A row of a phase-shifter column without a heater."""
    c = gf.Component()
    wg = _straight(c, slots * geometry().slot_um, "wg")
    c.add_port(PORTS.through_in, port=wg.ports["o1"])
    c.add_port(PORTS.through_out, port=wg.ports["o2"])
    return c


def column_dx_um(kind: str, slots: int) -> float:
    """x extent of a column of ``kind`` (``phase_shifter``, or ``mzi`` for MZI and
    attenuator columns) cells."""
    g = geometry()
    if kind == "phase_shifter":
        return slots * g.slot_um
    return 2 * (slots * g.slot_um + g.section_dx_um)
