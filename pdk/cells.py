r"""Cells of the OptINC PDK (gdsfactory), each with a model of the same name in
``pdk.models``. Lengths in um; row 0 of a cell is at y = 0, rows go down by the pitch.

The mesh cells tile a grid: every cell of a column has the same length, and a cell's
bypass follows the same bends as the cell's upper arm, so every row has the same path
length (``pdk.tech.mzi_path_um`` and friends; tested against the drawn geometry), and
the same loss: a bypass's straight carries the replaced cell's excess loss in
lateral-offset joints (``pdk.tech.LossMatch``, ``loss_match_straight``)::

          phi heater        coupler           theta heater        coupler
    o2 ====[######]====\\      /====[######]====\\      /==== o3   row m
                        ======                    ======
    o1 ================/      \\================/      \\==== o4   row m+1

Electrical ports: ``e1``/``e2`` the theta heater's two ends, ``e3``/``e4`` the phi
heater's (attenuators likewise); phase shifters ``e1``/``e2``. All point north.
"""

from __future__ import annotations

import itertools
import math

import gdsfactory as gf

from pdk import tech


@gf.cell
def sbend(dx_um: float = tech.SBEND_DX_UM, dy_um: float = 10.0, n_points: int = 64) -> gf.Component:
    """S-bend of two circular arcs from (0, 0) to (dx, dy), drawn as one polygon
    (o1 west, o2 east); ``pdk.tech.SBend`` gives its radius and path length."""
    s = tech.SBend(dx_um=dx_um, dy_um=dy_um)
    r, alpha, sign = s.radius_um, s.angle_rad, 1.0 if dy_um >= 0 else -1.0
    centre: list[tuple[float, float, float]] = []  # x, y, tangent angle
    for i in range(n_points + 1):
        t = alpha * i / n_points
        centre.append((r * math.sin(t), sign * r * (1 - math.cos(t)), sign * t))
    for i in range(n_points, -1, -1):
        t = alpha * i / n_points
        centre.append((dx_um - r * math.sin(t), dy_um - sign * r * (1 - math.cos(t)), sign * t))
    w = tech.WAVEGUIDE.width_um / 2
    left = [(x - w * math.sin(a), y + w * math.cos(a)) for x, y, a in centre]
    right = [(x + w * math.sin(a), y - w * math.cos(a)) for x, y, a in centre]
    c = gf.Component()
    c.add_polygon(left + right[::-1], layer="WG")
    width = tech.WAVEGUIDE.width_um
    c.add_port("o1", center=(0, 0), width=width, orientation=180, layer="WG")
    c.add_port("o2", center=(dx_um, dy_um), width=width, orientation=0, layer="WG")
    c.info["length_um"] = s.length_um
    c.info["radius_um"] = s.radius_um
    return c


@gf.cell
def coupler_arm(row_pitch_um: float = tech.GRID.row_pitch_um, lower: bool = False) -> gf.Component:
    """One arm of the directional coupler: bend to the gap, couple, bend back."""
    s = tech.coupler_sbend(row_pitch_um)
    sign = 1 if lower else -1
    c = gf.Component()
    bend_in = c.add_ref(sbend(dx_um=s.dx_um, dy_um=sign * s.dy_um), name="bend_in")
    mid = c.add_ref(gf.components.straight(length=tech.COUPLER.length_um), name="coupling")
    bend_out = c.add_ref(sbend(dx_um=s.dx_um, dy_um=-sign * s.dy_um), name="bend_out")
    mid.connect("o1", bend_in.ports["o2"])
    bend_out.connect("o1", mid.ports["o2"])
    c.add_port("o1", port=bend_in.ports["o1"])
    c.add_port("o2", port=bend_out.ports["o2"])
    c.info["length_um"] = tech.coupler_path_um(row_pitch_um)
    return c


@gf.cell
def heater_straight(length_um: float = tech.HEATER.length_um) -> gf.Component:
    """Waveguide with a TiN heater on top and a contact at each end (heater square, via,
    routing-metal landing): e1 (west) is the signal end, e2 (east) the return; the
    ports sit on the landings' north edges."""
    c = gf.Component()
    wg = c.add_ref(gf.components.straight(length=length_um), name="wg")
    w = tech.HEATER.width_um
    c.add_polygon(_box(0, -w / 2, length_um, w / 2), layer="HEATER")
    t = tech.TERMINAL
    for name, x in (("e1", t.size_um / 2), ("e2", length_um - t.size_um / 2)):
        c.add_polygon(
            _box(x - t.size_um / 2, -t.size_um / 2, x + t.size_um / 2, t.size_um / 2), layer="HEATER"
        )
        c.add_polygon(_box(x - t.via_um / 2, -t.via_um / 2, x + t.via_um / 2, t.via_um / 2), layer="VIA")
        c.add_polygon(_box(x - t.size_um / 2, -t.size_um / 2, x + t.size_um / 2, t.size_um / 2), layer="M2")
        c.add_port(
            name,
            center=(x, t.size_um / 2),
            width=t.size_um,
            orientation=90,
            layer="M2",
            port_type="electrical",
        )
    c.add_port("o1", port=wg.ports["o1"])
    c.add_port("o2", port=wg.ports["o2"])
    return c


def _box(x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, float]]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def _draw_row(
    c: gf.Component, parts: list[tuple[str, gf.Component]], *, y_um: float, ports: tuple[str, str] | None
) -> list[gf.ComponentReference]:
    """Place ``parts`` end to end from (0, ``y_um``), each part's o1 on the previous
    part's o2 (an S-bend's o2 is higher or lower than its o1); export the row's ends."""
    refs, x, y = [], 0.0, y_um
    for name, cell in parts:
        ref = c.add_ref(cell, name=name)
        ref.move((x - ref.ports["o1"].center[0], y - ref.ports["o1"].center[1]))
        if "o2" in {p.name for p in ref.ports}:  # a terminator ends the row
            x, y = ref.ports["o2"].center
        refs.append(ref)
    if ports is not None:
        c.add_port(ports[0], port=refs[0].ports["o1"])
        c.add_port(ports[1], port=refs[-1].ports["o2"])
    return refs


def _mzi_rows(
    c: gf.Component, pitch_um: float, upper: tuple[str, str], lower: tuple[str, str] | None
) -> None:
    """Heater, coupler, heater, coupler on the upper row; plain waveguides below. Without
    ``lower`` ports (an attenuator) the lower arm's output is a dump: it ends in a
    terminator, beside a straight of the same length on the upper row."""
    plain = gf.components.straight(length=tech.HEATER.length_um)
    upper_parts = [
        ("phi_heater", heater_straight()),
        ("upper_coupler1", coupler_arm(pitch_um, lower=False)),
        ("theta_heater", heater_straight()),
        ("upper_coupler2", coupler_arm(pitch_um, lower=False)),
    ]
    lower_parts = [
        ("lower_in", plain),
        ("lower_coupler1", coupler_arm(pitch_um, lower=True)),
        ("lower_mid", plain),
        ("lower_coupler2", coupler_arm(pitch_um, lower=True)),
    ]
    if lower is None:
        upper_parts.append(("tail", gf.components.straight(length=tech.TERMINATOR.length_um)))
        lower_parts.append(("dump", terminator()))
    top = _draw_row(c, upper_parts, y_um=0.0, ports=upper)
    _draw_row(c, lower_parts, y_um=-pitch_um, ports=lower)
    for name, ref in (("e1", top[2]), ("e3", top[0])):  # theta e1/e2, phi e3/e4
        c.add_port(name, port=ref.ports["e1"])
        c.add_port(f"e{int(name[1]) + 1}", port=ref.ports["e2"])


@gf.cell
def loss_match_straight(length_um: float = 10.0, offset_um: float = 0.03, joints: int = 2) -> gf.Component:
    """Straight with ``joints`` lateral-offset butt joints (``pdk.tech.LossMatch``), evenly
    spaced: between joints 1-2, 3-4, ... the strip is ``offset_um`` higher, so both
    ports (o1 west, o2 east) stay on the axis and the path length is ``length_um``::

        o1 ======    ======    ====== o2     (offset exaggerated)
                =====      =====
    """
    if joints % 2 or joints < 2:
        raise ValueError(f"loss_match_straight needs an even number of joints, got {joints}")
    xs = [0.0, *(round(length_um * (k + 1) / (joints + 1), 3) for k in range(joints)), length_um]
    shortest = dict(tech.RULES.min_width_um)["WG"]  # the jogs' bumps and notches keep WG rules
    if min(b - a for a, b in itertools.pairwise(xs)) < shortest:
        raise ValueError(f"{joints} joints do not fit a {length_um} um straight")
    w = tech.WAVEGUIDE.width_um / 2
    shifts = [offset_um * (k % 2) for k in range(joints + 1)]
    top = [pt for k, dy in enumerate(shifts) for pt in ((xs[k], w + dy), (xs[k + 1], w + dy))]
    bottom = [(x, y - 2 * w) for x, y in top]
    c = gf.Component()
    c.add_polygon(top + bottom[::-1], layer="WG")
    c.add_port("o1", center=(0, 0), width=2 * w, orientation=180, layer="WG")
    c.add_port("o2", center=(length_um, 0), width=2 * w, orientation=0, layer="WG")
    c.info["length_um"] = length_um
    c.info["offset_um"] = offset_um
    return c


def _loss_match(length_um: float, loss_dB: float) -> gf.Component:
    """A straight carrying ``loss_dB`` in offset joints (plain when ``loss_dB`` is 0)."""
    m = tech.LOSS_MATCH
    offset = m.offset_um(loss_dB)
    if offset == 0:
        return gf.components.straight(length=length_um)
    return loss_match_straight(length_um=length_um, offset_um=offset, joints=m.joints)


def _loss_match_info(c: gf.Component, loss_dB: float) -> None:
    """Record a bypass's loss match: the offset drawn and the loss its model carries."""
    c.info["loss_match_offset_um"] = tech.LOSS_MATCH.offset_um(loss_dB)
    c.info["loss_match_dB"] = loss_dB


def _bypass_row(c: gf.Component, pitch_um: float, tail_um: float = 0.0, loss_dB: float = 0.0) -> None:
    """The upper arm's path of an MZI without heaters: same bends, same length (and a
    straight ``tail_um``, as an attenuator's); the first straight carries the cell's
    ``loss_dB`` in offset joints (``pdk.tech.LossMatch``)."""
    plain = gf.components.straight(length=tech.HEATER.length_um)
    parts = [
        ("in", _loss_match(tech.HEATER.length_um, loss_dB)),
        ("coupler1", coupler_arm(pitch_um, lower=False)),
        ("mid", plain),
        ("coupler2", coupler_arm(pitch_um, lower=False)),
    ]
    if tail_um > 0:
        parts.append(("tail", gf.components.straight(length=tail_um)))
    _draw_row(c, parts, y_um=0.0, ports=("o1", "o2"))


@gf.cell
def mzi(row_pitch_um: float = tech.GRID.row_pitch_um) -> gf.Component:
    """2x2 MZI spanning rows m (y = 0) and m+1: o2 -> o3 upper, o1 -> o4 lower."""
    c = gf.Component()
    p = tech.PORTS
    _mzi_rows(c, row_pitch_um, upper=(p.upper_in, p.upper_out), lower=(p.lower_in, p.lower_out))
    c.info["path_length_um"] = tech.mzi_path_um(row_pitch_um)
    return c


@gf.cell
def mzi_bypass(row_pitch_um: float = tech.GRID.row_pitch_um) -> gf.Component:
    """One row through an MZI column (o1 -> o2), losing what an MZI loses
    (``pdk.tech.bypass_loss``) in offset joints in its first straight."""
    c = gf.Component()
    _bypass_row(c, row_pitch_um, loss_dB=tech.bypass_loss("mzi"))
    c.info["path_length_um"] = tech.mzi_path_um(row_pitch_um)
    _loss_match_info(c, tech.bypass_loss("mzi"))
    return c


@gf.cell
def attenuator() -> gf.Component:
    """Variable attenuator inside one row: a small MZI used from o1 to o2 (upper arm);
    the light it takes out leaves its lower arm into a terminator."""
    c = gf.Component()
    _mzi_rows(c, tech.ATTENUATOR_ARM_PITCH_UM, upper=("o1", "o2"), lower=None)
    c.info["path_length_um"] = tech.attenuator_path_um()
    return c


@gf.cell
def attenuator_bypass() -> gf.Component:
    """One row through an attenuator column (o1 -> o2), losing what a fully open
    attenuator loses (``pdk.tech.bypass_loss``) in offset joints in its first straight."""
    c = gf.Component()
    _bypass_row(
        c,
        tech.ATTENUATOR_ARM_PITCH_UM,
        tail_um=tech.TERMINATOR.length_um,
        loss_dB=tech.bypass_loss("attenuator"),
    )
    c.info["path_length_um"] = tech.attenuator_path_um()
    _loss_match_info(c, tech.bypass_loss("attenuator"))
    return c


@gf.cell
def phase_shifter() -> gf.Component:
    """Output phase shifter: a heated waveguide with plain margins on both sides, so
    its return line keeps clear of the next column's contacts (o1 -> o2, e1/e2)."""
    c = gf.Component()
    margin = gf.components.straight(length=tech.PHASE_SHIFTER_MARGIN_UM)
    refs = _draw_row(
        c, [("in", margin), ("heater", heater_straight()), ("out", margin)], y_um=0.0, ports=("o1", "o2")
    )
    c.add_port("e1", port=refs[1].ports["e1"])
    c.add_port("e2", port=refs[1].ports["e2"])
    c.info["path_length_um"] = tech.phase_shifter_path_um()
    return c


@gf.cell
def phase_shifter_bypass() -> gf.Component:
    """One row through an output phase-shifter column (o1 -> o2)."""
    c = gf.Component()
    ref = c.add_ref(gf.components.straight(length=tech.phase_shifter_path_um()), name="wg")
    c.add_ports(ref.ports)
    c.info["path_length_um"] = tech.phase_shifter_path_um()
    return c


def _arm_centre(arm: tech.CrossingArm, pitch_um: float, n_points: int) -> list[tuple[float, float, float]]:
    """Centre line (x, y, tangent angle) of a crossing arm from (0, 0) down to
    (dx, -pitch): a 45 deg arc, the diagonal (between the two arcs' inner ends), an arc."""
    r, quarter = arm.radius_um, math.pi / 4
    first = [
        (r * math.sin(t), -r * (1 - math.cos(t)), -t)
        for t in (quarter * i / n_points for i in range(n_points + 1))
    ]
    second = [(arm.dx_um - x, -pitch_um - y, a) for x, y, a in reversed(first)]
    return first + second


def _outline(centre: list[tuple[float, float, float]], width_um: float) -> list[tuple[float, float]]:
    """Polygon of a waveguide of ``width_um`` along a centre line (x, y, tangent angle)."""
    w = width_um / 2
    left = [(x - w * math.sin(a), y + w * math.cos(a)) for x, y, a in centre]
    right = [(x + w * math.sin(a), y - w * math.cos(a)) for x, y, a in centre]
    return left + right[::-1]


def _crossing_taper(arm: tech.CrossingArm, pitch_um: float, sign: float) -> list[tuple[float, float]]:
    """The widened diagonal of one arm (``sign`` -1 descending, +1 rising): a hexagon
    from the strip width at the diagonal's ends to ``CROSSING.centre_width_um`` at the
    crossing point (dx / 2, -pitch / 2)."""
    half, w, wide = arm.diagonal_um / 2, tech.WAVEGUIDE.width_um / 2, tech.CROSSING.centre_width_um / 2
    local = [(-half, w), (0.0, wide), (half, w), (half, -w), (0.0, -wide), (-half, -w)]
    s = math.sqrt(0.5)
    cx, cy = arm.dx_um / 2, -pitch_um / 2
    # axis (s, sign s), normal (-sign s, s)
    return [(cx + s * u - sign * s * v, cy + sign * s * u + s * v) for u, v in local]


@gf.cell
def crossing(row_pitch_um: float = tech.GRID.row_pitch_um, n_points: int = 48) -> gf.Component:
    """Waveguide crossing of rows m (y = 0) and m+1 (``pdk.tech.Crossing``): o2 -> o4
    (upper in, lower out) and o1 -> o3, the arms crossing at 90 deg at the centre::

        o2 ==\\    //== o3
               \\//        row m
               //\\        row m+1
        o1 ==//    \\== o4
    """
    arm = tech.crossing_arm(row_pitch_um)
    down = _arm_centre(arm, row_pitch_um, n_points)
    up = [(x, -row_pitch_um - y, -a) for x, y, a in down]
    c = gf.Component()
    width = tech.WAVEGUIDE.width_um
    for centre, sign in ((down, -1.0), (up, 1.0)):
        c.add_polygon(_outline(centre, width), layer="WG")
        c.add_polygon(_crossing_taper(arm, row_pitch_um, sign), layer="WG")
    p = tech.PORTS
    for name, x, y, orientation in (
        (p.upper_in, 0.0, 0.0, 180),
        (p.lower_in, 0.0, -row_pitch_um, 180),
        (p.upper_out, arm.dx_um, 0.0, 0),
        (p.lower_out, arm.dx_um, -row_pitch_um, 0),
    ):
        c.add_port(name, center=(x, y), width=width, orientation=orientation, layer="WG")
    c.info["path_length_um"] = arm.length_um
    return c


@gf.cell
def crossing_bypass(row_pitch_um: float = tech.GRID.row_pitch_um) -> gf.Component:
    """One row through a crossing column (o1 -> o2): an S-bend up, one back down and a
    straight, with a crossing arm's x length and path length; the straight carries a
    crossing's loss (``pdk.tech.bypass_loss``) in offset joints."""
    dx, dy, straight = tech.crossing_bypass_sbend(row_pitch_um)
    c = gf.Component()
    parts = [("up", sbend(dx_um=dx, dy_um=dy)), ("down", sbend(dx_um=dx, dy_um=-dy))]
    if straight > 0:
        parts.append(("straight", _loss_match(straight, tech.bypass_loss("crossing"))))
    _draw_row(c, parts, y_um=0.0, ports=("o1", "o2"))
    c.info["path_length_um"] = tech.crossing_arm(row_pitch_um).length_um
    _loss_match_info(c, tech.bypass_loss("crossing"))
    return c


def _arc(radius_um: float, half_angle_rad: float, n_points: int) -> list[tuple[float, float]]:
    """Points of an arc centred on the origin, from +half_angle to -half_angle."""
    return [
        (radius_um * math.cos(a), radius_um * math.sin(a))
        for a in (half_angle_rad * (1 - 2 * i / n_points) for i in range(n_points + 1))
    ]


@gf.cell
def grating_coupler(n_points: int = 48) -> gf.Component:
    """Focusing grating coupler (``pdk.tech.GratingCoupler``): a wedge taper from the
    strip waveguide and full-etch circular teeth centred on the waveguide port::

                     ) ) ) ) )
        o1 ====<     ) ) o2) )      o1: waveguide (west), o2: fibre (vertical_te,
                     ) ) ) ) )          at the centre of the teeth)

    The lengths and the tooth/gap widths satisfy the WG rules.
    """
    g = tech.GRATING
    half = math.radians(g.half_angle_deg)
    w = tech.WAVEGUIDE.width_um / 2
    c = gf.Component()
    taper = [(0.0, -w), (0.0, w), *_arc(g.taper_length_um, half, n_points)]
    c.add_polygon(taper, layer="WG")
    gap = g.period_um - g.tooth_um
    for i in range(g.n_teeth):
        inner = g.taper_length_um + gap + i * g.period_um
        outer = _arc(inner + g.tooth_um, half, n_points)[::-1]
        c.add_polygon(_arc(inner, half, n_points) + outer, layer="WG")
    c.add_port("o1", center=(0, 0), width=2 * w, orientation=180, layer="WG")
    x_fibre = round(g.taper_length_um + g.n_teeth * g.period_um / 2, 3)
    c.add_port("o2", center=(x_fibre, 0), width=10.0, orientation=0, layer="WG", port_type="vertical_te")
    c.info["length_um"] = g.length_um
    return c


@gf.cell
def edge_coupler() -> gf.Component:
    """Inverse-taper edge coupler (``pdk.tech.EdgeCoupler``): the strip narrows to the
    tip at the facet, under the TAPER marker (relaxed WG width rule)::

        o1 =========------  o2     o1: waveguide (west), o2: facet (east, tip width)
    """
    e = tech.EDGE_COUPLER
    c = _inverse_taper(e.length_um, e.tip_width_um)
    c.add_port("o2", center=(e.length_um, 0), width=e.tip_width_um, orientation=0, layer="WG")
    return c


def _inverse_taper(length_um: float, tip_width_um: float) -> gf.Component:
    """The strip narrowing linearly to ``tip_width_um`` under the TAPER marker; port o1."""
    w, tip = tech.WAVEGUIDE.width_um / 2, tip_width_um / 2
    c = gf.Component()
    c.add_polygon([(0, -w), (length_um, -tip), (length_um, tip), (0, w)], layer="WG")
    c.add_polygon(_box(0, -2.0, length_um, 2.0), layer="TAPER")
    c.add_port("o1", center=(0, 0), width=2 * w, orientation=180, layer="WG")
    c.info["length_um"] = length_um
    return c


@gf.cell
def terminator() -> gf.Component:
    """Waveguide termination (``pdk.tech.Terminator``): an inverse taper to the tip under
    the TAPER marker, port o1 (west) only::

        o1 =========------
    """
    return _inverse_taper(tech.TERMINATOR.length_um, tech.TERMINATOR.tip_width_um)


@gf.cell
def io_fan(
    dx_um: float = 40.0, dy_um: float = 0.0, lead_um: float = 0.0, bend_first: bool = True
) -> gf.Component:
    """A fan waveguide between a grid row and its I/O coupler: an S-bend by (dx, dy)
    and a straight lead, the bend first (``bend_first``, input side: coupler, bend,
    lead, grid) or last (output side); o1 west, o2 east, ``o2 - o1 = (dx + lead, dy)``."""
    c = gf.Component()
    bend = sbend(dx_um=dx_um, dy_um=dy_um) if dy_um != 0 else gf.components.straight(length=dx_um)
    parts = [c.add_ref(bend, name="bend")]
    if lead_um > 0:
        parts.insert(1 if bend_first else 0, c.add_ref(gf.components.straight(length=lead_um), name="lead"))
    x, y = 0.0, 0.0
    for ref in parts:  # end to end; each part starts where the previous one ended
        ref.move((x - ref.ports["o1"].center[0], y - ref.ports["o1"].center[1]))
        x, y = ref.ports["o2"].center
    c.add_port("o1", port=parts[0].ports["o1"])
    c.add_port("o2", port=parts[-1].ports["o2"])
    c.info["length_um"] = tech.fan_path_um(dx_um, dy_um, lead_um)
    return c


#: Netlist cell name -> cell function (the mesh grid uses these).
@gf.cell
def directional_coupler(row_pitch_um: float = tech.GRID.row_pitch_um) -> gf.Component:
    """The MZIs' 2x2 directional coupler on its own: rows m (y = 0) and m+1 at the grid
    pitch; ports as an MZI's (``pdk.tech.PORTS``: o2/o1 in, o3/o4 out)."""
    p = tech.PORTS
    c = gf.Component()
    upper = c.add_ref(coupler_arm(row_pitch_um=row_pitch_um, lower=False), name="upper")
    lower = c.add_ref(coupler_arm(row_pitch_um=row_pitch_um, lower=True), name="lower")
    lower.move((0, -row_pitch_um))
    c.add_port(p.upper_in, port=upper.ports["o1"])
    c.add_port(p.upper_out, port=upper.ports["o2"])
    c.add_port(p.lower_in, port=lower.ports["o1"])
    c.add_port(p.lower_out, port=lower.ports["o2"])
    c.info["length_um"] = tech.coupler_path_um(row_pitch_um)
    return c


@gf.cell
def mmi2x2() -> gf.Component:
    """2x2 MMI: a multimode body with a linear taper on each of its four ports (ports as
    an MZI's, ``pdk.tech.PORTS``); dimensions in ``pdk.tech.MMI``."""
    m, w, p = tech.MMI, tech.WAVEGUIDE.width_um / 2, tech.PORTS
    c = gf.Component()
    x0, x1 = m.taper_length_um, m.taper_length_um + m.length_um
    c.add_polygon(_box(x0, -m.width_um / 2, x1, m.width_um / 2), layer="WG")
    for y, west, east in (
        (m.port_offset_um, p.upper_in, p.upper_out),
        (-m.port_offset_um, p.lower_in, p.lower_out),
    ):
        t = m.taper_width_um / 2
        c.add_polygon([(0, y - w), (x0, y - t), (x0, y + t), (0, y + w)], layer="WG")
        c.add_polygon([(x1, y - t), (x1 + x0, y - w), (x1 + x0, y + w), (x1, y + t)], layer="WG")
        c.add_port(west, center=(0, y), width=2 * w, orientation=180, layer="WG")
        c.add_port(east, center=(x1 + x0, y), width=2 * w, orientation=0, layer="WG")
    c.info["length_um"] = x1 + x0
    return c


@gf.cell
def bond_pad() -> gf.Component:
    """Wire-bond pad: M2 landing, PAD metal and the passivation opening (5 um inside);
    electrical port e1 on the north edge."""
    half = tech.RULES.pad_size_um / 2
    c = gf.Component()
    for layer, h in (("M2", half), ("PAD", half), ("PADOPEN", half - 5.0)):
        c.add_polygon(_box(-h, -h, h, h), layer=layer)
    c.add_port("e1", center=(0, half), width=2 * half, orientation=90, layer="M2", port_type="electrical")
    return c


@gf.cell
def pad_row(n_pads: int = 8, pitch_um: float = tech.RULES.pad_pitch_um) -> gf.Component:
    """``n_pads`` bond pads in a row at ``pitch_um`` (ports e1..en, west to east)."""
    if n_pads < 1 or pitch_um < tech.RULES.pad_size_um + dict(tech.RULES.min_space_um)["PAD"]:
        raise ValueError(
            f"pad_row needs n_pads >= 1 and pitch_um >= pad size + PAD space, got {n_pads}, {pitch_um}"
        )
    c = gf.Component()
    for k in range(n_pads):
        ref = c.add_ref(bond_pad(), name=f"pad{k + 1}")
        ref.move((k * pitch_um, 0))
        c.add_port(f"e{k + 1}", port=ref.ports["e1"])
    return c


GRID_CELLS = {
    "mzi": mzi,
    "mzi_bypass": mzi_bypass,
    "attenuator": attenuator,
    "attenuator_bypass": attenuator_bypass,
    "phase_shifter": phase_shifter,
    "phase_shifter_bypass": phase_shifter_bypass,
    "crossing": crossing,
    "crossing_bypass": crossing_bypass,
}

#: Netlist cell name -> cell function of the chip-edge cells: I/O couplers, their fan
#: waveguides and the terminators of unused outputs.
IO_CELLS = {
    "grating_coupler": grating_coupler,
    "edge_coupler": edge_coupler,
    "io_fan": io_fan,
    "terminator": terminator,
}

#: Building blocks for designers' own circuits (each with a sax model of the same name).
PARTS = {
    "directional_coupler": directional_coupler,
    "mmi2x2": mmi2x2,
    "bond_pad": bond_pad,
    "pad_row": pad_row,
}
