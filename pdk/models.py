"""sax models of the OptINC PDK cells: same cell names and ports as ``pdk.cells``.

Pure functions, keyword-only, ``wl`` (um) first, returning ``sax.reciprocal`` S-dicts;
settings are broadcast, so one call evaluates many instances and wavelengths at once.
The optical ports follow the netlist (``optinc_compiler.netlist``): an MZI maps
``o2 -> o3`` (upper row, mode m) and ``o1 -> o4`` (lower row, mode m+1) with
``T(theta, phi) = B P(theta) B P(phi)`` (``optinc_compiler.mzi``); 2-port cells map
``o1 -> o2``. Electrical ports are declared with zero entries so a raw layout netlist
simulates.

``models(ideal=True)`` gives lossless, dispersion-free versions (50:50 couplers, no
propagation phase) that reproduce the phase program's matrices exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax.numpy as jnp
import sax

from pdk import tech

SDict = Any
WL = tech.WL_CENTER_UM


def _propagation(wl: Any, length_um: float, wg: tech.Waveguide = tech.WAVEGUIDE) -> Any:
    """``exp(i beta L)`` with loss, first-order dispersion around WL_CENTER_UM."""
    neff = wg.neff - (wl - WL) * (wg.ng - wg.neff) / WL
    amplitude = 10 ** (-wg.loss_dB_cm * length_um * 1e-4 / 20)
    return amplitude * jnp.exp(2j * jnp.pi * neff * length_um / wl)


def _coupler_matrix(wl: Any, *, ideal: bool, cp: tech.Coupler = tech.COUPLER) -> tuple[Any, Any]:
    """(t, k): through and cross amplitudes, ``B = [[t, i k], [i k, t]]``."""
    if ideal:
        half = jnp.sqrt(0.5) * jnp.ones_like(jnp.asarray(wl, dtype=float))
        return half, half
    kappa2 = jnp.clip(cp.coupling_at_center + cp.dkappa2_dwl_per_um * (wl - WL), 0.0, 1.0)
    loss = 10 ** (-cp.excess_loss_dB / 20)
    return loss * jnp.sqrt(1 - kappa2), loss * jnp.sqrt(kappa2)


def _mzi_entries(wl: Any, theta: Any, phi: Any, *, ideal: bool) -> tuple[Any, Any, Any, Any]:
    """T00, T01, T10, T11 of ``B P(theta) B P(phi)`` (row m is index 0)."""
    t, k = _coupler_matrix(wl, ideal=ideal)
    et, ep = jnp.exp(1j * theta), jnp.exp(1j * phi)
    # B P(theta) B = [[t^2 e - k^2, i t k (e + 1)], [i t k (e + 1), t^2 - k^2 e]]
    m00 = t * t * et - k * k
    m01 = 1j * t * k * (et + 1)
    m11 = t * t - k * k * et
    return m00 * ep, m01, m01 * ep, m11


def mzi(
    *,
    wl: Any = WL,
    theta_rad: Any = 0.0,
    phi_rad: Any = 0.0,
    ideal: bool = False,
    row_pitch_um: float = tech.GRID.row_pitch_um,
) -> SDict:
    """2x2 MZI: o2/o1 in (rows m, m+1), o3/o4 out; heaters e1, e2 (theta), e3, e4 (phi)."""
    t00, t01, t10, t11 = _mzi_entries(wl, theta_rad, phi_rad, ideal=ideal)
    prop = 1.0 if ideal else _propagation(wl, tech.mzi_path_um(row_pitch_um))
    return sax.reciprocal(
        {
            ("o2", "o3"): prop * t00,
            ("o1", "o3"): prop * t01,
            ("o2", "o4"): prop * t10,
            ("o1", "o4"): prop * t11,
            **_electrical(4),
        }
    )


def attenuator(*, wl: Any = WL, amplitude: Any = 1.0, phase_rad: Any = 0.0, ideal: bool = False) -> SDict:
    """Variable attenuator: a small MZI used row-to-row, ``a exp(i p)`` at WL_CENTER_UM.

    The heaters are set for 50:50 couplers: ``theta = 2 arcsin(a)`` and
    ``phi = p - pi/2 - theta/2``, so ``T00 = a exp(i p)``; away from the centre the
    couplers' dispersion changes the transmission.
    """
    theta = 2 * jnp.arcsin(jnp.clip(amplitude, 0.0, 1.0))
    phi = phase_rad - jnp.pi / 2 - theta / 2
    t00, _, _, _ = _mzi_entries(wl, theta, phi, ideal=ideal)
    prop = 1.0 if ideal else _propagation(wl, tech.attenuator_path_um())
    return sax.reciprocal({("o1", "o2"): prop * t00, **_electrical(4)})


def phase_shifter(*, wl: Any = WL, phase_rad: Any = 0.0, ideal: bool = False) -> SDict:
    """Thermo-optic phase shifter: ``exp(i phase)``; heater e1, e2."""
    prop = 1.0 if ideal else _propagation(wl, tech.phase_shifter_path_um())
    return sax.reciprocal({("o1", "o2"): prop * jnp.exp(1j * jnp.asarray(phase_rad)), **_electrical(2)})


def bypass(*, wl: Any = WL, length_um: float, ideal: bool = False) -> SDict:
    """A waveguide standing in for a cell on an unused row (same path length)."""
    prop = 1.0 if ideal else _propagation(wl, length_um)
    return sax.reciprocal({("o1", "o2"): prop * jnp.ones_like(jnp.asarray(wl, dtype=complex))})


def straight(*, wl: Any = WL, length_um: float = 10.0, ideal: bool = False) -> SDict:
    """Strip waveguide."""
    return bypass(wl=wl, length_um=length_um, ideal=ideal)


def grating_coupler(*, wl: Any = WL, ideal: bool = False, gc: tech.GratingCoupler = tech.GRATING) -> SDict:
    """Fibre grating coupler (o1 waveguide, o2 fibre): Gaussian power transmission
    around ``gc.center_wl_um``, ``gc.peak_loss_dB`` at the peak and 1 dB more at
    ``+-gc.bandwidth_1dB_um / 2`` (loss in dB quadratic in the detuning); no phase."""
    if ideal:
        return sax.reciprocal({("o1", "o2"): jnp.ones_like(jnp.asarray(wl, dtype=complex))})
    detuning = (jnp.asarray(wl, dtype=float) - gc.center_wl_um) / (gc.bandwidth_1dB_um / 2)
    loss_dB = gc.peak_loss_dB + detuning**2
    return sax.reciprocal({("o1", "o2"): (10 ** (-loss_dB / 20)).astype(complex)})


def edge_coupler(*, wl: Any = WL, ideal: bool = False, ec: tech.EdgeCoupler = tech.EDGE_COUPLER) -> SDict:
    """Inverse-taper edge coupler (o1 waveguide, o2 facet): flat ``ec.loss_dB``."""
    amplitude = 1.0 if ideal else 10 ** (-ec.loss_dB / 20)
    return sax.reciprocal({("o1", "o2"): amplitude * jnp.ones_like(jnp.asarray(wl, dtype=complex))})


def io_fan(
    *, wl: Any = WL, dx_um: float = 40.0, dy_um: float = 0.0, lead_um: float = 0.0, ideal: bool = False
) -> SDict:
    """Fan waveguide between a grid row and its coupler: S-bend plus lead
    (``pdk.tech.fan_path_um``)."""
    return bypass(wl=wl, length_um=tech.fan_path_um(dx_um, dy_um, lead_um), ideal=ideal)


def _electrical(n: int) -> dict[tuple[str, str], float]:
    """Zero entries declaring electrical ports e1..en."""
    return {(f"e{i}", f"e{i}"): 0.0 for i in range(1, n + 1)}


def models(*, ideal: bool = False) -> dict[str, Callable[..., SDict]]:
    """The model of every cell the netlists use, by cell name."""
    kw = {"ideal": ideal}
    return {
        "mzi": partial(mzi, **kw),
        "mzi_bypass": partial(bypass, length_um=tech.mzi_path_um(), **kw),
        "attenuator": partial(attenuator, **kw),
        "attenuator_bypass": partial(bypass, length_um=tech.attenuator_path_um(), **kw),
        "phase_shifter": partial(phase_shifter, **kw),
        "phase_shifter_bypass": partial(bypass, length_um=tech.phase_shifter_path_um(), **kw),
        "straight": partial(straight, **kw),
        "grating_coupler": partial(grating_coupler, ideal=ideal),
        "edge_coupler": partial(edge_coupler, ideal=ideal),
        "io_fan": partial(io_fan, **kw),
    }
