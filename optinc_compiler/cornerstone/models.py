"""Fast-path models of our CORNERSTONE cells, composed from the foundry's sax models.

Each model evaluates ``cspdk.si220.models`` (``straight``, ``straight_heater_metal``,
``coupler``; ``bend_s`` is the straight model at the drawn length) for the parts of
one cell (``cells``) and multiplies them out as 2x2 blocks, so the simulator's
level-by-level product (``optinc_compiler.simulate``) runs on the foundry's models.
``flat_circuit`` simulates a drawn cell's own gdsfactory netlist with the same models
through ``sax.circuit``: the independent check of the composition.

A heater's phase is ``pi (V / vpi)^2`` in the foundry model; a program phase ``p`` is
driven as ``V = vpi sqrt(p mod 2 pi / pi)`` (the model's ``vpi``; the volts a real
heater needs come from the electrical model, ``tech.HEATER``). Fabrication errors are
settings as in ``pdk.models``: ``dkappa2_1``/``dkappa2_2`` shift a coupler's power
splitting, ``loss_dB`` adds loss; ``slots`` is the cell's heater slots (its length).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax.numpy as jnp

from optinc_compiler.cornerstone import tech
from optinc_compiler.cornerstone.geometry import geometry
from pdk.tech import PORTS

SDict = Any
#: The foundry heater model's ``vpi`` (a placeholder of 1 V in cspdk 2.1).
MODEL_VPI_V = 1.0


def _m() -> Any:
    from cspdk.si220 import models

    return models


def _straight(wl: Any, length_um: Any) -> Any:
    return _m().straight(wl=wl, length=length_um)["o1", "o2"]


def _heater(wl: Any, phase_rad: Any) -> Any:
    """The foundry heater model driven to ``phase_rad``."""
    volts = MODEL_VPI_V * jnp.sqrt(jnp.mod(phase_rad, 2 * jnp.pi) / jnp.pi)
    s = _m().straight_heater_metal(wl=wl, length=tech.HEATER_LENGTH_UM, voltage=volts, vpi=MODEL_VPI_V)
    return s["o1", "o2"]


def _loss(loss_dB: Any) -> Any:
    return 10 ** (-jnp.asarray(loss_dB) / 20)


def _coupler(wl: Any, dkappa2: Any, bend_length_um: float | None = None) -> tuple[Any, Any]:
    """(through, cross) of the foundry coupler with its power splitting shifted by
    ``dkappa2`` (phases and total transmission kept), S-bends included (an MZI's, or
    ``bend_length_um`` long)."""
    g = geometry()
    bend = g.bend_length_um if bend_length_um is None else bend_length_um
    s = _m().coupler(wl=wl, length=g.coupler_length_um)
    t, k = s["o2", "o3"], s["o2", "o4"]
    total = jnp.abs(t) ** 2 + jnp.abs(k) ** 2
    kappa2 = jnp.abs(k) ** 2 / total
    shifted = jnp.clip(kappa2 + dkappa2, 0.0, 1.0)
    safe = jnp.where(kappa2 > 0, kappa2, 1.0)
    t = t * jnp.sqrt((1 - shifted) / jnp.where(kappa2 < 1, 1 - kappa2, 1.0))
    k = k * jnp.sqrt(shifted / safe)
    bends = _straight(wl, bend) ** 2
    return t * bends, k * bends


def _section(wl: Any, slots: Any, phase_rad: Any) -> tuple[Any, Any]:
    """(upper, lower) transmission of a heater section: heater plus plain waveguide."""
    g = geometry()
    plain = slots * g.slot_um
    upper = _heater(wl, phase_rad) * _straight(wl, plain - tech.HEATER_LENGTH_UM)
    return upper, _straight(wl, plain)


def _reciprocal(sdict: dict[tuple[str, str], Any]) -> SDict:
    return {**sdict, **{(b, a): v for (a, b), v in sdict.items()}}


def mzi(
    *,
    wl: Any = tech.WL_UM,
    theta_rad: Any = 0.0,
    phi_rad: Any = 0.0,
    dkappa2_1: Any = 0.0,
    dkappa2_2: Any = 0.0,
    loss_dB: Any = 0.0,
    slots: Any = 1,
) -> SDict:
    """``cells.cs_mzi``: ``C2 D(theta) C1 D(phi)`` of the foundry parts (row m first)."""
    u1, l1 = _section(wl, slots, phi_rad)
    t1, k1 = _coupler(wl, dkappa2_1)
    u2, l2 = _section(wl, slots, theta_rad)
    t2, k2 = _coupler(wl, dkappa2_2)
    # C1 D(phi): [[t1 u1, k1 l1], [k1 u1, t1 l1]]; then D(theta), then C2
    a00, a01, a10, a11 = t1 * u1, k1 * l1, k1 * u1, t1 * l1
    b00, b01, b10, b11 = u2 * a00, u2 * a01, l2 * a10, l2 * a11
    f = _loss(loss_dB)
    p = PORTS
    return _reciprocal(
        {
            (p.upper_in, p.upper_out): f * (t2 * b00 + k2 * b10),
            (p.lower_in, p.upper_out): f * (t2 * b01 + k2 * b11),
            (p.upper_in, p.lower_out): f * (k2 * b00 + t2 * b10),
            (p.lower_in, p.lower_out): f * (k2 * b01 + t2 * b11),
        }
    )


def _bypass(wl: Any, loss_dB: Any, slots: Any, bend_length_um: float) -> SDict:
    """Two plain sections and two bypass coupler sections of S-bends ``bend_length_um``."""
    g = geometry()
    across = _straight(wl, 2 * bend_length_um + g.coupler_dx_um)
    t = _loss(loss_dB) * _straight(wl, 2 * slots * g.slot_um) * across**2
    return _reciprocal({(PORTS.through_in, PORTS.through_out): t})


def mzi_bypass(*, wl: Any = tech.WL_UM, loss_dB: Any = 0.0, slots: Any = 1) -> SDict:
    """``cells.cs_mzi_bypass``: two sections and two bypass coupler sections."""
    return _bypass(wl, loss_dB, slots, geometry().bypass_bend_length_um)


def attenuator(
    *,
    wl: Any = tech.WL_UM,
    amplitude: Any = 1.0,
    phase_rad: Any = 0.0,
    theta_error_rad: Any = 0.0,
    phi_error_rad: Any = 0.0,
    dkappa2_1: Any = 0.0,
    dkappa2_2: Any = 0.0,
    loss_dB: Any = 0.0,
    slots: Any = 1,
) -> SDict:
    """``cells.cs_attenuator`` set to ``a exp(i p)``: the heaters at ``pdk.tech``'s
    attenuator phases (exact for 50:50 couplers), then ``mzi``'s upper-to-upper product
    of the foundry parts with the attenuator's S-bends; the dark arm's light is lost."""
    from pdk.tech import attenuator_heater_phases

    theta, phi = attenuator_heater_phases(amplitude, phase_rad, jnp)
    bend = geometry().attenuator_bend_length_um
    u1, _ = _section(wl, slots, phi + phi_error_rad)
    t1, k1 = _coupler(wl, dkappa2_1, bend)
    u2, l2 = _section(wl, slots, theta + theta_error_rad)
    t2, k2 = _coupler(wl, dkappa2_2, bend)
    t = _loss(loss_dB) * (t2 * u2 * t1 + k2 * l2 * k1) * u1
    return _reciprocal({(PORTS.through_in, PORTS.through_out): t})


def attenuator_bypass(*, wl: Any = tech.WL_UM, loss_dB: Any = 0.0, slots: Any = 1) -> SDict:
    """``cells.cs_attenuator_bypass``: an attenuator's sections, its own bypass S-bends."""
    return _bypass(wl, loss_dB, slots, geometry().attenuator_bypass_bend_length_um)


def terminator(*, wl: Any = tech.WL_UM) -> SDict:
    """``cells.cs_terminator``: all light lost (no reflection; an assumption, ``tech``)."""
    del wl
    return {("o1", "o1"): jnp.asarray(0.0 + 0.0j)}


def phase_shifter(*, wl: Any = tech.WL_UM, phase_rad: Any = 0.0, loss_dB: Any = 0.0, slots: Any = 1) -> SDict:
    """``cells.cs_phase_shifter``: a heater in its slots."""
    upper, _ = _section(wl, slots, phase_rad)
    return _reciprocal({(PORTS.through_in, PORTS.through_out): _loss(loss_dB) * upper})


def phase_shifter_bypass(*, wl: Any = tech.WL_UM, loss_dB: Any = 0.0, slots: Any = 1) -> SDict:
    """``cells.cs_phase_shifter_bypass``: plain waveguide."""
    t = _loss(loss_dB) * _straight(wl, slots * geometry().slot_um)
    return _reciprocal({(PORTS.through_in, PORTS.through_out): t})


def models() -> dict[str, Callable[..., SDict]]:
    """The fast-path model of every mesh cell kind."""
    return {
        "mzi": mzi,
        "mzi_bypass": mzi_bypass,
        "phase_shifter": phase_shifter,
        "phase_shifter_bypass": phase_shifter_bypass,
        "attenuator": attenuator,
        "attenuator_bypass": attenuator_bypass,
    }


# --- the independent check: a drawn cell's netlist through sax.circuit ----------------


def _leaf_netlist(netlist: dict[str, Any], volts: dict[str, float]) -> dict[str, Any]:
    """A cell's gdsfactory netlist for sax: each bend gets its drawn length (sax passes
    models only settings), each heater its voltage (``volts`` by instance name)."""
    from optinc_compiler.cornerstone.geometry import bend_length_um

    instances = {}
    for name, inst in netlist["instances"].items():
        component, settings = inst["component"], dict(inst["settings"])
        if component == "bend_s":
            dx, dy = settings["size"]
            settings = {"length": bend_length_um(float(dx), float(dy))}
        elif component == "straight_heater_metal":
            volt = float(volts.get(name, 0.0))
            settings = {"length": settings["length"], "voltage": volt, "vpi": MODEL_VPI_V}
        elif component == "straight":
            settings = {"length": settings["length"]}
        elif component == "coupler":
            settings = {"length": settings["length"], "gap": settings["gap"]}
        elif component == "cs_terminator":
            settings = {}
        instances[name] = {"component": component, "settings": settings}
    ports = {k: v for k, v in netlist["ports"].items() if k.startswith("o")}
    return {"instances": instances, "nets": netlist["nets"], "ports": ports}


def flat_circuit(
    component: Any, volts: dict[str, float], wl_um: float = tech.WL_UM
) -> dict[tuple[str, str], complex]:
    """S-parameters of a drawn cell (its netlist, the foundry's models, ``sax.circuit``);
    ``volts`` by heater instance name (``phi``, ``theta``, ``phase``), in the foundry
    model's units (its ``vpi`` is ``MODEL_VPI_V``)."""
    import sax

    netlist = _leaf_netlist(component.get_netlist(), volts)
    used = {inst["component"] for inst in netlist["instances"].values()}
    ours = {"cs_terminator": terminator}
    circuit, _ = sax.circuit(netlist, models={name: ours.get(name) or getattr(_m(), name) for name in used})
    s = circuit(wl=wl_um)
    return {key: complex(value) for key, value in s.items()}
