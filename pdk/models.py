"""sax models of the OptINC PDK cells: same cell names and ports as ``pdk.cells``.

Pure functions, keyword-only, ``wl`` (um) first, returning reciprocal sax S-dicts;
settings are broadcast, so one call evaluates many instances and wavelengths at once.
The optical ports are ``pdk.tech.PORTS``: an MZI maps ``o2 -> o3`` (upper row,
mode m) and ``o1 -> o4`` (lower row, mode m+1) with ``T(theta, phi) = B P(theta) B
P(phi)`` (``optinc_compiler.mzi``); 2-port cells map ``o1 -> o2``. Electrical ports
are declared with zero entries so a raw layout netlist simulates. Fabrication errors
(coupler splitting, heater phase, extra loss) are settings with zero defaults, so a
Monte Carlo sample is the same netlist with other settings.

``models(ideal=True)`` gives lossless, dispersion-free versions (50:50 couplers, no
propagation phase) that reproduce the phase program's matrices exactly.

Bypasses are loss-matched (``pdk.tech.LossMatch``, ``pdk.tech.bypass_loss``): each
loses what the cell it stands in for loses (an MZI's or attenuator's two couplers, a
crossing's excess loss), so every row of a grid column loses the same. The ideal
bypasses stay lossless; ``LossMatch(balanced=False)`` in ``pdk.tech`` makes the PDK
ones lossless too.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax.numpy as jnp

from pdk import tech

SDict = Any
WL = tech.WL_CENTER_UM
_THROUGH = (tech.PORTS.through_in, tech.PORTS.through_out)


def _propagation(wl: Any, length_um: float, wg: tech.Waveguide = tech.WAVEGUIDE) -> Any:
    """``exp(i beta L)`` with loss, first-order dispersion around WL_CENTER_UM."""
    neff = wg.neff - (wl - WL) * (wg.ng - wg.neff) / WL
    amplitude = 10 ** (-wg.loss_dB_cm * length_um * 1e-4 / 20)
    return amplitude * jnp.exp(2j * jnp.pi * neff * length_um / wl)


def _coupler_matrix(
    wl: Any, *, ideal: bool, dkappa2: Any = 0.0, cp: tech.Coupler = tech.COUPLER
) -> tuple[Any, Any]:
    """(t, k): through and cross amplitudes, ``B = [[t, i k], [i k, t]]``.

    ``dkappa2`` shifts the power coupling kappa^2 (a fabrication error, ideal or not)."""
    if ideal:
        kappa2 = jnp.clip(0.5 + dkappa2 + 0.0 * jnp.asarray(wl, dtype=float), 0.0, 1.0)
        return jnp.sqrt(1 - kappa2), jnp.sqrt(kappa2)
    kappa2 = jnp.clip(cp.coupling_at_center + cp.dkappa2_dwl_per_um * (wl - WL) + dkappa2, 0.0, 1.0)
    loss = 10 ** (-cp.excess_loss_dB / 20)
    return loss * jnp.sqrt(1 - kappa2), loss * jnp.sqrt(kappa2)


def _mzi_entries(
    wl: Any, theta: Any, phi: Any, *, ideal: bool, dkappa2_1: Any = 0.0, dkappa2_2: Any = 0.0
) -> tuple[Any, Any, Any, Any]:
    """T00, T01, T10, T11 of ``B2 P(theta) B1 P(phi)`` (row m is index 0); light meets
    coupler B1 first. With equal couplers this is ``B P(theta) B P(phi)`` (docs/architecture.md)."""
    t1, k1 = _coupler_matrix(wl, ideal=ideal, dkappa2=dkappa2_1)
    t2, k2 = _coupler_matrix(wl, ideal=ideal, dkappa2=dkappa2_2)
    et, ep = jnp.exp(1j * theta), jnp.exp(1j * phi)
    # B2 P(theta) B1 = [[t2 t1 e - k2 k1, i (t2 k1 e + k2 t1)], [i (k2 t1 e + t2 k1), t2 t1 - k2 k1 e]]
    m00 = t2 * t1 * et - k2 * k1
    m01 = 1j * (t2 * k1 * et + k2 * t1)
    m10 = 1j * (k2 * t1 * et + t2 * k1)
    m11 = t2 * t1 - k2 * k1 * et
    return m00 * ep, m01, m10 * ep, m11


def _extra_loss(loss_dB: Any) -> Any:
    """Amplitude factor of an extra loss (a fabrication error) in dB."""
    return 10 ** (-jnp.asarray(loss_dB) / 20)


def mzi(
    *,
    wl: Any = WL,
    theta_rad: Any = 0.0,
    phi_rad: Any = 0.0,
    dkappa2_1: Any = 0.0,
    dkappa2_2: Any = 0.0,
    loss_dB: Any = 0.0,
    ideal: bool = False,
    row_pitch_um: float = tech.GRID.row_pitch_um,
) -> SDict:
    """2x2 MZI: o2/o1 in (rows m, m+1), o3/o4 out; heaters e1, e2 (theta), e3, e4 (phi).

    Fabrication errors as settings: ``dkappa2_1``/``dkappa2_2`` shift the power coupling
    of the first/second coupler, ``loss_dB`` is an extra loss on both arms."""
    t00, t01, t10, t11 = _mzi_entries(
        wl, theta_rad, phi_rad, ideal=ideal, dkappa2_1=dkappa2_1, dkappa2_2=dkappa2_2
    )
    prop = _extra_loss(loss_dB) * (1.0 if ideal else _propagation(wl, tech.mzi_path_um(row_pitch_um)))
    p = tech.PORTS
    return _reciprocal(
        {
            (p.upper_in, p.upper_out): prop * t00,
            (p.lower_in, p.upper_out): prop * t01,
            (p.upper_in, p.lower_out): prop * t10,
            (p.lower_in, p.lower_out): prop * t11,
            **_electrical(4),
        }
    )


def attenuator(
    *,
    wl: Any = WL,
    amplitude: Any = 1.0,
    phase_rad: Any = 0.0,
    theta_error_rad: Any = 0.0,
    phi_error_rad: Any = 0.0,
    dkappa2_1: Any = 0.0,
    dkappa2_2: Any = 0.0,
    loss_dB: Any = 0.0,
    ideal: bool = False,
) -> SDict:
    """Variable attenuator: a small MZI used row-to-row, ``a exp(i p)`` at WL_CENTER_UM.

    The heaters are set for 50:50 couplers: ``theta = 2 arcsin(a)`` and
    ``phi = p - pi/2 - theta/2``, so ``T00 = a exp(i p)``; away from the centre the
    couplers' dispersion changes the transmission. Errors as settings: heater phase
    errors ``theta_error_rad``/``phi_error_rad``, coupler and loss errors as in ``mzi``.
    """
    theta, phi = tech.attenuator_heater_phases(amplitude, phase_rad, jnp)
    t00, _, _, _ = _mzi_entries(
        wl,
        theta + theta_error_rad,
        phi + phi_error_rad,
        ideal=ideal,
        dkappa2_1=dkappa2_1,
        dkappa2_2=dkappa2_2,
    )
    prop = _extra_loss(loss_dB) * (1.0 if ideal else _propagation(wl, tech.attenuator_path_um()))
    return _reciprocal({_THROUGH: prop * t00, **_electrical(4)})


def phase_shifter(*, wl: Any = WL, phase_rad: Any = 0.0, loss_dB: Any = 0.0, ideal: bool = False) -> SDict:
    """Thermo-optic phase shifter: ``exp(i phase)``; heater e1, e2."""
    prop = _extra_loss(loss_dB) * (1.0 if ideal else _propagation(wl, tech.phase_shifter_path_um()))
    return _reciprocal({_THROUGH: prop * jnp.exp(1j * jnp.asarray(phase_rad)), **_electrical(2)})


def bypass(
    *, wl: Any = WL, length_um: Any, loss_dB: Any = 0.0, match_loss_dB: float = 0.0, ideal: bool = False
) -> SDict:
    """A waveguide standing in for a cell on an unused row (same path length) with the
    flat ``match_loss_dB`` of its loss-matching joints (``pdk.tech.LossMatch``; not
    with ``ideal``); ``loss_dB``: an extra loss (a fabrication error)."""
    match = 1.0 if ideal else 10 ** (-match_loss_dB / 20)
    prop = match * _extra_loss(loss_dB) * (1.0 if ideal else _propagation(wl, length_um))
    return _reciprocal({_THROUGH: prop * jnp.ones_like(jnp.asarray(wl, dtype=complex))})


def straight(*, wl: Any = WL, length_um: float = 10.0, loss_dB: Any = 0.0, ideal: bool = False) -> SDict:
    """Strip waveguide."""
    return bypass(wl=wl, length_um=length_um, loss_dB=loss_dB, ideal=ideal)


def grating_coupler(*, wl: Any = WL, ideal: bool = False, gc: tech.GratingCoupler = tech.GRATING) -> SDict:
    """Fibre grating coupler (o1 waveguide, o2 fibre): Gaussian power transmission
    around ``gc.center_wl_um``, ``gc.peak_loss_dB`` at the peak and 1 dB more at
    ``+-gc.bandwidth_1dB_um / 2`` (loss in dB quadratic in the detuning); no phase."""
    if ideal:
        return _reciprocal({("o1", "o2"): jnp.ones_like(jnp.asarray(wl, dtype=complex))})
    detuning = (jnp.asarray(wl, dtype=float) - gc.center_wl_um) / (gc.bandwidth_1dB_um / 2)
    loss_dB = gc.peak_loss_dB + detuning**2
    return _reciprocal({("o1", "o2"): (10 ** (-loss_dB / 20)).astype(complex)})


def _reciprocal(sdict: SDict) -> SDict:
    """``S[j, i] = S[i, j]``, as ``sax.reciprocal``; sax itself is imported only by the
    flat circuit path (its import takes seconds, the fast path needs only jax)."""
    return {**sdict, **{(b, a): v for (a, b), v in sdict.items()}}


def edge_coupler(*, wl: Any = WL, ideal: bool = False, ec: tech.EdgeCoupler = tech.EDGE_COUPLER) -> SDict:
    """Inverse-taper edge coupler (o1 waveguide, o2 facet): flat ``ec.loss_dB``."""
    amplitude = 1.0 if ideal else 10 ** (-ec.loss_dB / 20)
    return _reciprocal({("o1", "o2"): amplitude * jnp.ones_like(jnp.asarray(wl, dtype=complex))})


def io_fan(
    *, wl: Any = WL, dx_um: float = 40.0, dy_um: float = 0.0, lead_um: float = 0.0, ideal: bool = False
) -> SDict:
    """Fan waveguide between a grid row and its coupler: S-bend plus lead, the length of
    ``pdk.tech.fan_path_um`` in array form (``2 r alpha = dx alpha / sin(alpha)``), so
    many fans evaluate at once and under jit."""
    alpha = 2 * jnp.arctan2(jnp.abs(dy_um), dx_um)
    safe = jnp.where(alpha == 0, 1.0, alpha)
    length_um = jnp.where(alpha == 0, dx_um, dx_um * safe / jnp.sin(safe)) + lead_um
    return bypass(wl=wl, length_um=length_um, ideal=ideal)


def directional_coupler(
    *, wl: Any = WL, dkappa2: Any = 0.0, ideal: bool = False, row_pitch_um: float = tech.GRID.row_pitch_um
) -> SDict:
    """The MZIs' coupler alone: ``[[t, i k], [i k, t]]`` between rows (ports as an MZI's)."""
    t, k = _coupler_matrix(wl, ideal=ideal, dkappa2=dkappa2)
    prop = 1.0 if ideal else _propagation(wl, tech.coupler_path_um(row_pitch_um))
    p = tech.PORTS
    return _reciprocal(
        {
            (p.upper_in, p.upper_out): prop * t,
            (p.lower_in, p.upper_out): prop * 1j * k,
            (p.upper_in, p.lower_out): prop * 1j * k,
            (p.lower_in, p.lower_out): prop * t,
        }
    )


def mmi2x2(*, wl: Any = WL, ideal: bool = False, mmi: tech.Mmi = tech.MMI) -> SDict:
    """2x2 MMI: 50:50 with a cross phase of i at WL_CENTER_UM; away from it the split
    drifts quadratically (``mmi.imbalance_per_um2``); ``mmi.excess_loss_dB``."""
    wl = jnp.asarray(wl, dtype=float)
    kappa2 = 0.5 + (0.0 if ideal else mmi.imbalance_per_um2) * (wl - WL) ** 2
    loss = 1.0 if ideal else 10 ** (-mmi.excess_loss_dB / 20)
    t, k = loss * jnp.sqrt(1 - jnp.clip(kappa2, 0, 1)), loss * jnp.sqrt(jnp.clip(kappa2, 0, 1))
    p = tech.PORTS
    return _reciprocal(
        {
            (p.upper_in, p.upper_out): t + 0j,
            (p.lower_in, p.upper_out): 1j * k,
            (p.upper_in, p.lower_out): 1j * k,
            (p.lower_in, p.lower_out): t + 0j,
        }
    )


def crossing(
    *, wl: Any = WL, loss_dB: Any = 0.0, ideal: bool = False, row_pitch_um: float = tech.GRID.row_pitch_um
) -> SDict:
    """Waveguide crossing (``pdk.tech.Crossing``): ``o2 -> o4`` and ``o1 -> o3`` with the
    arm's propagation and ``excess_loss_dB``, ``crosstalk_dB`` into the straight-through
    ports; ideal: a lossless swap."""
    ones = jnp.ones_like(jnp.asarray(wl, dtype=complex))
    if ideal:
        through, leak = _extra_loss(loss_dB) * ones, 0.0 * ones
    else:
        prop = _extra_loss(loss_dB) * _propagation(wl, tech.crossing_arm(row_pitch_um).length_um)
        through = prop * 10 ** (-tech.CROSSING.excess_loss_dB / 20)
        leak = prop * 10 ** (tech.CROSSING.crosstalk_dB / 20)
    p = tech.PORTS
    return _reciprocal(
        {
            (p.upper_in, p.upper_out): leak,
            (p.lower_in, p.upper_out): through,
            (p.upper_in, p.lower_out): through,
            (p.lower_in, p.lower_out): leak,
        }
    )


def terminator(*, wl: Any = WL) -> SDict:
    """Waveguide termination: what enters o1 is shed; its port is declared (the
    reflection, below ``tech.TERMINATOR.reflection_dB``, is not simulated)."""
    return {("o1", "o1"): 0.0 * jnp.ones_like(jnp.asarray(wl, dtype=complex))}


def bond_pad(*, wl: Any = WL) -> SDict:
    """A pad has no optical ports; its electrical port is declared."""
    return _electrical(1)


def pad_row(*, wl: Any = WL, n_pads: int = 8) -> SDict:
    """Electrical ports e1..en, declared."""
    return _electrical(n_pads)


def _electrical(n: int) -> dict[tuple[str, str], float]:
    """Zero entries declaring electrical ports e1..en."""
    return {(f"e{i}", f"e{i}"): 0.0 for i in range(1, n + 1)}


def models(*, ideal: bool = False) -> dict[str, Callable[..., SDict]]:
    """The model of every cell the netlists use, by cell name."""
    kw = {"ideal": ideal}

    def bypass_of(cell: str, length_um: float) -> Callable[..., SDict]:
        """The bypass of a ``cell`` column: its path length and (PDK models) its loss."""
        return partial(bypass, length_um=length_um, match_loss_dB=tech.bypass_loss(cell), **kw)

    return {
        "mzi": partial(mzi, **kw),
        "mzi_bypass": bypass_of("mzi", tech.mzi_path_um()),
        "attenuator": partial(attenuator, **kw),
        "attenuator_bypass": bypass_of("attenuator", tech.attenuator_path_um()),
        "phase_shifter": partial(phase_shifter, **kw),
        "phase_shifter_bypass": bypass_of("phase_shifter", tech.phase_shifter_path_um()),
        "crossing": partial(crossing, **kw),
        "crossing_bypass": bypass_of("crossing", tech.crossing_arm().length_um),
        "straight": partial(straight, **kw),
        "grating_coupler": partial(grating_coupler, ideal=ideal),
        "edge_coupler": partial(edge_coupler, ideal=ideal),
        "io_fan": partial(io_fan, **kw),
        "terminator": terminator,
        "directional_coupler": partial(directional_coupler, **kw),
        "mmi2x2": partial(mmi2x2, ideal=ideal),
        "bond_pad": bond_pad,
        "pad_row": pad_row,
    }
