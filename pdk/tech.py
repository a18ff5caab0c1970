"""Technology data of the OptINC PDK: layers, wavelengths, waveguide, heater and rules.

Plain data only (no gdsfactory import), so the compile path and the sax models can use
it. The gdsfactory objects (LayerMap, cross-sections) are built in ``pdk.layout_tech``.
All lengths in um.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

#: GDS (layer, datatype) of each drawn layer.
LAYERS: dict[str, tuple[int, int]] = {
    "WG": (1, 0),  # silicon strip waveguide core
    "HEATER": (47, 0),  # TiN heater
    "VIA": (44, 0),  # heater -> routing metal
    "M2": (45, 0),  # routing metal
    "PAD": (49, 0),  # bond-pad metal
    "PADOPEN": (46, 0),  # passivation opening over pads
    "BUMP": (50, 0),  # flip-chip bump (under-bump metal, on an M2 landing)
    "FLOORPLAN": (64, 0),  # die outline
    "TAPER": (70, 0),  # marker over edge-coupler inverse tapers (WG width rule relaxed)
    "TEXT": (66, 0),  # labels (heater ids on pads)
}


@dataclass(frozen=True)
class OpticalPorts:
    """Optical port names of the cells, shared by cells, models, netlist and simulation.

    A 2x2 cell (MZI) spans rows m ("upper") and m+1 ("lower"); a 2-port cell has one
    row from ``through_in`` to ``through_out``."""

    upper_in: str = "o2"
    upper_out: str = "o3"
    lower_in: str = "o1"
    lower_out: str = "o4"
    through_in: str = "o1"
    through_out: str = "o2"


PORTS = OpticalPorts()

# Band and wavelength constants: one place for every model and check.
WL_CENTER_UM = 1.55
WL_BAND_UM = (1.50, 1.60)


@dataclass(frozen=True)
class Waveguide:
    """Strip waveguide: geometry and the dispersion the sax models use."""

    width_um: float = 0.5
    bend_radius_um: float = 10.0
    neff: float = 2.34  # effective index at WL_CENTER_UM
    ng: float = 4.2  # group index
    loss_dB_cm: float = 2.0


@dataclass(frozen=True)
class Coupler:
    """Directional coupler of the MZIs: 50:50 at WL_CENTER_UM, linear in wavelength."""

    gap_um: float = 0.2
    length_um: float = 10.0
    coupling_at_center: float = 0.5  # power coupling kappa^2
    dkappa2_dwl_per_um: float = 1.2  # d(kappa^2)/d(wl)
    excess_loss_dB: float = 0.05


@dataclass(frozen=True)
class Mmi:
    """2x2 multimode interference coupler (the alternative to the directional coupler:
    broader band, more loss). Optics: 50:50 at ``WL_CENTER_UM`` with an imbalance that
    grows quadratically with detuning, cross port with phase i (as B), ``excess_loss_dB``."""

    width_um: float = 3.0
    length_um: float = 24.0
    taper_width_um: float = 1.0
    taper_length_um: float = 10.0
    port_offset_um: float = 0.75  # port centre from the MMI axis
    excess_loss_dB: float = 0.2
    imbalance_per_um2: float = 20.0  # kappa^2 - 0.5 = imbalance * (wl - WL_CENTER_UM)^2


@dataclass(frozen=True)
class Heater:
    """Thermo-optic phase shifter (TiN over the waveguide)."""

    length_um: float = 100.0
    width_um: float = 2.5
    p_pi_mW: float = 25.0  # power for a pi phase shift
    resistance_ohm: float = 500.0
    v_max_V: float = 10.0


@dataclass(frozen=True)
class ThermalCrosstalk:
    """Heat from a heater reaching its neighbours in the same grid column: a neighbour
    ``d`` um away sees ``coefficient_at_pitch * exp(-(d - pitch) / decay_um)`` of the
    heater's power as if it were its own (zero beyond ``cutoff_rows`` rows)."""

    coefficient_at_pitch: float = 0.05
    decay_um: float = 20.0
    cutoff_rows: int = 4


@dataclass(frozen=True)
class Rules:
    """Design rules as data: minimum width and space per layer, pads, grid."""

    min_width_um: tuple[tuple[str, float], ...] = (
        ("WG", 0.4),
        ("HEATER", 2.0),
        ("M2", 5.0),
        ("PAD", 50.0),
        ("BUMP", 20.0),
    )
    min_space_um: tuple[tuple[str, float], ...] = (
        ("WG", 0.15),
        ("HEATER", 5.0),
        ("M2", 5.0),
        ("PAD", 20.0),
        ("BUMP", 20.0),
    )
    #: inside the TAPER marker (inverse-taper tips of edge couplers) WG may be this narrow
    taper_tip_min_width_um: float = 0.15
    pad_size_um: float = 80.0
    pad_pitch_um: float = 100.0
    grid_um: float = 0.001
    #: width checks allow this much below the minimum: bends are discretised on the grid
    width_tolerance_um: float = 0.002


@dataclass(frozen=True)
class Grid:
    """Placement grid of the meshes: row pitch and cell lengths."""

    row_pitch_um: float = 30.0


@dataclass(frozen=True)
class Terminal:
    """Heater contact: heater square, via, routing-metal landing (centred on the end)."""

    size_um: float = 6.0
    via_um: float = 4.0


@dataclass(frozen=True)
class Routing:
    """Heater routing on M2: wire width and centre-to-centre pitch of the tracks."""

    width_um: float = 5.0
    pitch_um: float = 10.0


@dataclass(frozen=True)
class Bump:
    """Flip-chip bumps (``optinc layout --pads bumps``): one square per heater over its
    own heater, on the M2 landing of its signal contact or one short M2 stub away.
    Heaters on even rows get the bump ``even_offset_um`` east of the signal contact,
    odd rows ``odd_offset_um``: neighbouring rows' bumps (30 um apart) are staggered
    and keep ``Rules`` BUMP space; the return contact is ~94 um east."""

    size_um: float = 25.0
    even_offset_um: float = 15.0
    odd_offset_um: float = 65.0
    #: ground bumps: this far beyond the grid edge, at the top of each ground line
    ground_gap_um: float = 20.0


BUMP = Bump()
WAVEGUIDE = Waveguide()
TERMINAL = Terminal()
ROUTING = Routing()
COUPLER = Coupler()
MMI = Mmi()


@dataclass(frozen=True)
class Limits:
    """What a chip of this PDK may be before the flow warns (``optinc_compiler.limits``).

    Attributes:
        reticle_um: one exposure field of a DUV scanner, 26 x 33 mm (either orientation):
            a larger die needs stitching, which this process does not offer.
        heater_power_budget_mW: heater power the package can take away at a stable
            temperature (a TEC-mounted photonic chip: a few watts); a design or
            ``--power-budget-mW`` sets its own.
    """

    reticle_um: tuple[float, float] = (26_000.0, 33_000.0)
    heater_power_budget_mW: float = 10_000.0


HEATER = Heater()
LIMITS = Limits()
THERMAL = ThermalCrosstalk()
RULES = Rules()
GRID = Grid()


@dataclass(frozen=True)
class SBend:
    """An S-bend of two opposite circular arcs joining (0, 0) to (dx, dy), both on the
    1 nm grid, so cells tile without off-grid ends: tan(alpha/2) = |dy|/dx and
    r = dx / (2 sin alpha)."""

    dx_um: float
    dy_um: float

    @property
    def angle_rad(self) -> float:
        """Arc angle alpha."""
        return 2.0 * math.atan2(abs(self.dy_um), self.dx_um)

    @property
    def radius_um(self) -> float:
        """Arc radius (inf for a straight)."""
        return math.inf if self.dy_um == 0 else self.dx_um / (2.0 * math.sin(self.angle_rad))

    @property
    def length_um(self) -> float:
        """Path length 2 r alpha (dx for a straight)."""
        return self.dx_um if self.dy_um == 0 else 2.0 * self.radius_um * self.angle_rad


#: Length along x of the S-bends into and out of the couplers.
SBEND_DX_UM = 20.0


def coupler_sbend(row_pitch_um: float) -> SBend:
    """The S-bend that brings two waveguides ``row_pitch_um`` apart to the coupler gap."""
    centre_to_centre = WAVEGUIDE.width_um + COUPLER.gap_um
    return SBend(dx_um=SBEND_DX_UM, dy_um=round((row_pitch_um - centre_to_centre) / 2.0, 3))


def coupler_path_um(row_pitch_um: float) -> float:
    """Path length of one arm of a directional coupler spanning two rows."""
    return 2.0 * coupler_sbend(row_pitch_um).length_um + COUPLER.length_um


def mzi_path_um(row_pitch_um: float = GRID.row_pitch_um) -> float:
    """Path length of every row through an MZI cell (and its bypass):
    phi heater, coupler, theta heater, coupler."""
    return 2.0 * HEATER.length_um + 2.0 * coupler_path_um(row_pitch_um)


#: The attenuators are small MZIs inside one row: their arms are this far apart.
ATTENUATOR_ARM_PITCH_UM = 10.0


@dataclass(frozen=True)
class Terminator:
    """End of a waveguide that carries unwanted light (cell ``terminator``: unused grid
    outputs; inside the attenuators, their dump arm): an inverse taper to
    ``tip_width_um`` over ``length_um`` under the TAPER marker. The mode spreads into the
    cladding and radiates instead of reflecting from an open end. Optics: a declared
    port; the reflection (below ``reflection_dB`` for such tapers) is stated, not
    simulated."""

    length_um: float = 40.0
    tip_width_um: float = 0.18
    reflection_dB: float = -40.0


TERMINATOR = Terminator()


def attenuator_path_um() -> float:
    """Path length of the through row of an attenuator cell (and its bypass): the small
    MZI, then a straight beside the terminator of its dump arm."""
    return mzi_path_um(ATTENUATOR_ARM_PITCH_UM) + TERMINATOR.length_um


#: Plain waveguide on each side of an output phase shifter's heater.
PHASE_SHIFTER_MARGIN_UM = 10.0


def phase_shifter_path_um() -> float:
    """Path length of an output phase shifter cell (and its bypass)."""
    return HEATER.length_um + 2 * PHASE_SHIFTER_MARGIN_UM


def attenuator_heater_phases(amplitude: Any, phase_rad: Any, xp: Any = None) -> tuple[Any, Any]:
    """(theta, phi) heater phases of an attenuator set to ``amplitude * exp(1j phase)``
    with 50:50 couplers: ``T00 = a e^{ip}`` for ``theta = 2 arcsin(a)``,
    ``phi = p - pi/2 - theta/2``. ``xp``: the array module (numpy by default, jax.numpy
    in the sax models)."""
    if xp is None:
        import numpy as xp
    theta = 2 * xp.arcsin(xp.clip(amplitude, 0.0, 1.0))
    return theta, phase_rad - xp.pi / 2 - theta / 2


@dataclass(frozen=True)
class Crossing:
    """Waveguide crossing of two neighbouring rows (cell ``crossing``, the permutations
    of segmented layers). Each arm is a 45 deg arc, a straight diagonal of
    ``diagonal_um`` and a 45 deg arc back, so the arms cross at 90 deg; along the
    diagonals both arms widen linearly towards the crossing point (a multimode-taper
    crossing: the wider mode diffracts less across the gap), with a taper half-angle
    that keeps the concave corners above the DRC's ignore angle. Optics: flat excess
    loss and crosstalk, typical of such crossings, stated, not simulated."""

    diagonal_um: float = 8.0
    centre_width_um: float = 1.0
    excess_loss_dB: float = 0.1
    crosstalk_dB: float = -40.0


CROSSING = Crossing()


@dataclass(frozen=True)
class LossMatch:
    """Loss-matched bypasses: a bypass (the waveguide on a grid row that a column's cell
    does not use) loses what the cell it stands in for loses (``bypass_loss``), so
    every row of a column loses the same and the realised matrix is the program's up
    to one factor, not distorted by which rows pass more cells.

    The element: lateral-offset butt joints in a straight of the bypass. The strip
    steps sideways by ``d`` and back, ``joints / 2`` times (ports and path length
    unchanged). The power coupled across a joint is the overlap of two Gaussian-like
    modes of field radius ``w`` offset by ``d``, ``eta = exp(-(d / w)^2)`` (D. Marcuse,
    "Loss analysis of single-mode fiber splices", Bell Syst. Tech. J. 56, 703 (1977)),
    flat in wavelength like the couplers' modelled excess loss. ``w`` = 0.26 um: an
    effective-index estimate for a 500 nm x 220 nm silicon strip's quasi-TE mode at
    1.55 um (the ``w`` that gives its E x H overlap at small offsets; a Gaussian fit to
    its intensity gives 0.23 um). The loss is that estimate, not simulated or measured;
    reflection and radiation at the joint are not modelled, and ``w`` (so the loss,
    ~1/w^2) should be calibrated on test structures.

    The offset is the grid point (1 nm) whose estimate is closest to the target: the
    drawn joints' estimate (``drawn_loss``) misses the target by that rounding
    (0.7 % at 0.1 dB, far inside the estimate's own uncertainty); the sax models carry
    the target itself, the loss the element is designed to have.

    ``balanced=False`` (the one switch): lossless bypasses, no joints drawn, models
    without the loss. Set it here, before any cell is drawn or model built (drawn cells
    and jitted models are cached per process)."""

    balanced: bool = True
    mode_field_radius_um: float = 0.26
    #: butt joints per bypass: even (out and back), evenly spaced along one straight
    joints: int = 2

    def joint_loss(self, offset_um: float) -> float:
        """Estimated loss of one joint offset by ``offset_um``: ``-10 log10(eta)``."""
        return 10.0 / math.log(10.0) * (offset_um / self.mode_field_radius_um) ** 2

    def offset_um(self, target_dB: float) -> float:
        """Offset on the grid whose ``joints`` joints' estimate is closest to ``target_dB``
        (0 for no loss); ValueError where the jog would narrow the strip's overlap
        below the WG minimum width (more joints are needed)."""
        if target_dB <= 0:
            return 0.0
        exact = self.mode_field_radius_um * math.sqrt(target_dB / self.joints * math.log(10.0) / 10.0)
        steps = (math.floor(exact / RULES.grid_um), math.ceil(exact / RULES.grid_um))
        on_grid = [round(k * RULES.grid_um, 9) for k in steps]
        d = min(on_grid, key=lambda x: abs(self.joints * self.joint_loss(x) - target_dB))
        limit = WAVEGUIDE.width_um - dict(RULES.min_width_um)["WG"]
        if d > limit:
            raise ValueError(f"a {target_dB} dB loss match needs offsets of {d} um > {limit} um: more joints")
        return d

    def drawn_loss(self, target_dB: float) -> float:
        """The Gaussian estimate of the joints drawn for ``target_dB``."""
        return self.joints * self.joint_loss(self.offset_um(target_dB))


LOSS_MATCH = LossMatch()


def bypass_loss(cell: str) -> float:
    """Insertion loss (dB) the bypass of a ``cell`` column carries, beyond its waveguide
    loss: the excess loss of the cell it stands in for, or 0 with ``LOSS_MATCH.balanced``
    off. ``mzi`` and ``attenuator``: their two couplers' ``Coupler.excess_loss_dB`` (an
    MZI's total transmission from one input at any phases; an attenuator's at full
    transmission); ``crossing``: ``Crossing.excess_loss_dB`` (its through path; the
    -40 dB crosstalk into the other row is an error, not matched); ``phase_shifter``: 0
    (a heater over a plain waveguide)."""
    losses = {
        "mzi": 2 * COUPLER.excess_loss_dB,
        "attenuator": 2 * COUPLER.excess_loss_dB,
        "crossing": CROSSING.excess_loss_dB,
        "phase_shifter": 0.0,
    }
    return losses[cell] if LOSS_MATCH.balanced else 0.0


@dataclass(frozen=True)
class CrossingArm:
    """Geometry of a crossing arm between rows ``row_pitch_um`` apart: arc radius and
    diagonal length such that the arm's x length ``dx_um`` lies on the 1 nm grid."""

    dx_um: float
    radius_um: float
    diagonal_um: float

    @property
    def length_um(self) -> float:
        """Path length: two 45 deg arcs and the diagonal."""
        return 2.0 * self.radius_um * math.pi / 4 + self.diagonal_um


@functools.cache
def crossing_arm(row_pitch_um: float = GRID.row_pitch_um) -> CrossingArm:
    """The arm whose diagonal is closest to ``CROSSING.diagonal_um`` with ``dx`` on the
    grid: ``dy = 2 r (1 - s) + d s = pitch`` and ``dx = 2 r s + d s`` (s = sin 45 deg)."""
    s = math.sqrt(0.5)
    slope = s * (1 - 2 * s) / (1 - s)  # d(dx)/d(d) at fixed dy
    dx0 = s * row_pitch_um / (1 - s)
    dx = round(dx0 + slope * CROSSING.diagonal_um, 3)
    d = (dx - dx0) / slope
    return CrossingArm(dx_um=dx, radius_um=(row_pitch_um - d * s) / (2 * (1 - s)), diagonal_um=d)


@functools.cache
def crossing_bypass_sbend(row_pitch_um: float = GRID.row_pitch_um) -> tuple[float, float, float]:
    """(dx, dy, straight) of the bypass beside a crossing: an S-bend up by ``dy``, one
    back down, then a straight of at least 1 um, all on the grid, with the path length of a crossing arm
    to within 1e-6 um (searched over the grid: a bare rounding would leave up to ~0.4 nm,
    ~4 mrad of phase)."""
    arm = crossing_arm(row_pitch_um)
    best: tuple[float, float, float, float] | None = None
    top_nm = int((arm.dx_um - 1.0) * 500)  # the straight: >= 1 um, no sliver for the DRC
    for dx_nm in range(top_nm - 2000, top_nm + 1):
        dx = dx_nm / 1000
        straight = round(arm.dx_um - 2 * dx, 3)
        excess = (arm.length_um - straight) / 2 - dx  # each S-bend's length minus its dx
        lo, hi = 0.0, dx
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if SBend(dx, mid).length_um - dx < excess else (lo, mid)
        dy = round(lo, 3)
        error = abs(2 * SBend(dx, dy).length_um + straight - arm.length_um)
        if best is None or error < best[0]:
            best = (error, dx, dy, straight)
    assert best is not None
    return best[1], best[2], best[3]


#: Fibre-array pitch of the I/O couplers (standard V-groove arrays).
FIBRE_PITCH_UM = 127.0


@dataclass(frozen=True)
class GratingCoupler:
    """Full-etch focusing grating coupler on WG: a wedge taper from the strip
    waveguide and circular teeth centred on the taper's start (the focus).

    The teeth obey the design rules (``tooth_um`` >= WG min width, the gap >= WG min
    space): period 0.64 um, fill 0.69, for a fibre about 10 deg off vertical. Optics (the
    sax model): Gaussian power transmission around ``center_wl_um``, ``peak_loss_dB``
    at the peak and 1 dB more at +-``bandwidth_1dB_um`` / 2; typical of full-etch
    gratings with a bottom reflector, stated, not simulated.
    """

    taper_length_um: float = 16.0
    half_angle_deg: float = 20.0
    period_um: float = 0.64
    tooth_um: float = 0.44
    n_teeth: int = 20
    center_wl_um: float = WL_CENTER_UM
    peak_loss_dB: float = 1.0
    bandwidth_1dB_um: float = 0.035

    @property
    def length_um(self) -> float:
        """From the waveguide port to the outer edge of the last tooth."""
        return self.taper_length_um + self.n_teeth * self.period_um


@dataclass(frozen=True)
class EdgeCoupler:
    """Inverse taper to a cleaved or etched facet at the die edge: the strip narrows
    linearly to ``tip_width_um`` over ``length_um`` (drawn under the TAPER marker,
    where the WG width rule is ``Rules.taper_tip_min_width_um``). Optics: a flat
    ``loss_dB`` over the band (mode-size converter to a lensed or UHNA fibre)."""

    length_um: float = 200.0
    tip_width_um: float = 0.18
    loss_dB: float = 1.5


GRATING = GratingCoupler()
EDGE_COUPLER = EdgeCoupler()

#: Shortest x length of the fan-in/out S-bends; S-bends are 1.5x as long as their
#: largest offset (arc angle <= 67 deg); at every x the vertical gap between two
#: neighbours is at least the row pitch (the bend's y grows with its offset).
FAN_MIN_DX_UM = 40.0
FAN_DX_PER_DY = 1.5


def fan_dy_um(k: int, rows: tuple[int, ...], *, row_pitch_um: float = GRID.row_pitch_um) -> float:
    """y offset from port ``k`` (on grid row ``rows[k]``, at ``-row * row_pitch``) to its
    coupler: the couplers sit at the fibre pitch, centred on the ports' rows."""
    centre = sum(rows) / len(rows)
    return round((rows[k] - centre) * row_pitch_um - FIBRE_PITCH_UM * (k - (len(rows) - 1) / 2), 3)


def fan_dx_um(rows: tuple[int, ...], *, row_pitch_um: float = GRID.row_pitch_um) -> float:
    """x length of the fan's S-bends on one side (all bends of a side share it)."""
    largest = max(abs(fan_dy_um(k, rows, row_pitch_um=row_pitch_um)) for k in range(len(rows)))
    return float(max(FAN_MIN_DX_UM, math.ceil(FAN_DX_PER_DY * largest)))


def fan_path_um(dx_um: float, dy_um: float, lead_um: float) -> float:
    """Path length of one fan waveguide: an S-bend plus a straight lead."""
    return SBend(dx_um=dx_um, dy_um=dy_um).length_um + lead_um
