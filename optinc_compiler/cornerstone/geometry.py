"""Lengths of our cells on CORNERSTONE SOI 220, solved from the foundry's own models.

* The MZI couplers' length is where the foundry's ``coupler`` model splits 50:50 at the
  design wavelength (bisection; the default 14.5 um cell is about 70:30).
* The S-bends (``bend_s``, a 99-point Bezier polyline) are measured as drawn.
* A bypass row crosses each coupler section on two S-bends whose path length gives it
  the phase of an MZI arm there (the foundry coupler's through phase included), so a
  column's rows differ by the MZIs' matrices only, not by a row-dependent phase. The
  attenuators (an MZI inside one row, arms ``tech.ATTENUATOR_ARM_PITCH_UM`` apart) have
  their own, shorter S-bends and their own bypass.

Needs cspdk (its models); nothing here draws.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from optinc_compiler.cornerstone import tech

#: ``cspdk.si220.tech.TECH``: the coupler cell's S-bends (x per side, port pitch).
COUPLER_CELL_BEND_DX_UM = 10.0
COUPLER_PORT_PITCH_UM = 4.0
#: Points of the drawn S-bends (``cspdk.si220.cells.bend_s``).
BEND_POINTS = 99


@dataclass(frozen=True)
class Geometry:
    """The lengths of the mesh cells (um), all on the 1 nm grid."""

    coupler_length_um: float
    bend_dy_um: float
    bend_length_um: float
    bypass_dy_um: float
    bypass_bend_length_um: float
    attenuator_dy_um: float
    attenuator_bend_length_um: float
    attenuator_bypass_dy_um: float
    attenuator_bypass_bend_length_um: float

    @property
    def coupler_dx_um(self) -> float:
        """x extent of the coupler cell, port to port."""
        return self.coupler_length_um + 2 * COUPLER_CELL_BEND_DX_UM

    @property
    def section_dx_um(self) -> float:
        """x extent of a coupler section: S-bend, coupler, S-bend."""
        return 2 * tech.COUPLER_BEND_DX_UM + self.coupler_dx_um

    @property
    def slot_um(self) -> float:
        """x extent of one heater slot: margin, heated length, margin."""
        return 2 * tech.SLOT_MARGIN_UM + tech.HEATER_LENGTH_UM


def bend_length_um(dx_um: float, dy_um: float, n_points: int = BEND_POINTS) -> float:
    """Path length of gdsfactory's ``bend_s(size=(dx, dy))`` as drawn: the polyline
    through ``n_points`` of the cubic Bezier (0,0), (dx/2,0), (dx/2,dy), (dx,dy)."""
    if dy_um == 0:
        return dx_um
    t = np.linspace(0.0, 1.0, n_points)[:, None]
    p = np.array([(0.0, 0.0), (dx_um / 2, 0.0), (dx_um / 2, dy_um), (dx_um, dy_um)])
    curve = (1 - t) ** 3 * p[0] + 3 * (1 - t) ** 2 * t * p[1] + 3 * (1 - t) * t**2 * p[2] + t**3 * p[3]
    return float(np.sum(np.hypot(*np.diff(curve, axis=0).T)))


def _split(length_um: float, wl_um: float) -> float:
    """Through minus cross power of the foundry coupler of ``length_um``."""
    from cspdk.si220 import models

    s = models.coupler(wl=wl_um, length=length_um)
    return float(abs(complex(s["o1", "o4"])) ** 2 - abs(complex(s["o1", "o3"])) ** 2)


def fifty_fifty_length_um(wl_um: float = tech.WL_UM, low: float = 14.5, high: float = 26.0) -> float:
    """The coupler length (1 nm grid) where the foundry's model splits 50:50 at ``wl_um``:
    bisection on through minus cross power, which falls through zero on [low, high]."""
    f_low, f_high = _split(low, wl_um), _split(high, wl_um)
    if f_low * f_high > 0:
        raise ValueError(
            f"the foundry coupler does not cross 50:50 between {low} and {high} um at {wl_um} um"
        )
    for _ in range(50):
        mid = (low + high) / 2
        if (_split(mid, wl_um) > 0) == (f_low > 0):
            low = mid
        else:
            high = mid
    return round((low + high) / 2, 3)


def _beta_per_um(wl_um: float) -> float:
    """Propagation constant of the foundry's strip model (its phase is ``beta L``)."""
    from cspdk.si220 import models

    step = 0.1  # beta * step < pi: no phase wrap
    return float(np.angle(complex(models.straight(wl=wl_um, length=step)["o1", "o2"]))) / step


def bypass_bend_target_um(coupler_length_um: float, bend_length: float, wl_um: float) -> float:
    """Path length of each bypass S-bend that gives a bypass row, across a coupler
    section, the phase of an MZI arm: ``2 beta L_bb + beta dx_c = 2 beta L_b +
    arg(t_c)`` (mod 2 pi), the solution nearest ``bend_length``."""
    from cspdk.si220 import models

    beta = _beta_per_um(wl_um)
    t_c = complex(models.coupler(wl=wl_um, length=coupler_length_um)["o2", "o3"])
    dx_c = coupler_length_um + 2 * COUPLER_CELL_BEND_DX_UM
    base = bend_length + (np.angle(t_c) - beta * dx_c) / (2 * beta)
    period = math.pi / beta
    return float(base + period * round((bend_length - base) / period))


def _dy_for_length(dx_um: float, length_um: float) -> float:
    """The S-bend height (1 nm grid) whose drawn length is closest to ``length_um``."""
    low, high = 0.0, dx_um
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if bend_length_um(dx_um, mid) < length_um else (low, mid)
    candidates = (math.floor(low * 1000) / 1000, math.ceil(low * 1000) / 1000)
    return min(candidates, key=lambda dy: abs(bend_length_um(dx_um, dy) - length_um))


@functools.cache
def geometry(wl_um: float = tech.WL_UM) -> Geometry:
    """The cell lengths for the design wavelength (cached)."""
    coupler = fifty_fifty_length_um(wl_um)
    dx = tech.COUPLER_BEND_DX_UM

    def bends(pitch_um: float) -> tuple[float, float, float, float]:
        """(dy, length) of the arms' S-bends and of the bypass's for arms ``pitch_um`` apart."""
        dy = round((pitch_um - COUPLER_PORT_PITCH_UM) / 2, 3)
        bend = bend_length_um(dx, dy)
        bypass_dy = _dy_for_length(dx, bypass_bend_target_um(coupler, bend, wl_um))
        return dy, bend, bypass_dy, bend_length_um(dx, bypass_dy)

    mzi, attenuator = bends(tech.ROW_PITCH_UM), bends(tech.ATTENUATOR_ARM_PITCH_UM)
    return Geometry(coupler, *mzi, *attenuator)
