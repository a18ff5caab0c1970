"""The PDKs the flow can draw with, as values: one interface per PDK (``PdkInfo``).

``--pdk NAME`` and a design file's ``pdk:`` pick one of ``PDK_NAMES``. Each PDK says
which cell plays each role, its layers, rules, die and pads, its heater's electrical
model and where that model comes from. Plain data: nothing here imports gdsfactory or
the foundry's package, so ``optinc pdks`` and the option checks stay fast.

* ``optinc``: our own process (``pdk/``): two metals and bumps, no die limit but the
  reticle; the default, for meshes of any size.
* ``cornerstone-si220``: CORNERSTONE's 220 nm SOI process through its gdsfactory PDK
  (cspdk 2.1): the foundry's cells, layers and MPW die (``optinc_compiler.cornerstone``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from optinc_compiler.errors import InputError, MissingDependencyError

#: Every PDK, in the order ``optinc pdks`` lists them; the first is the default.
PDK_NAMES = ("optinc", "cornerstone-si220")
DEFAULT_PDK = PDK_NAMES[0]


@dataclass(frozen=True)
class HeaterModel:
    """A heater's electrical model: ``P = V^2 / R`` and ``phase = pi P / P_pi``.

    ``source`` says where each number comes from (the PDK's data or a stated assumption)."""

    p_pi_mW: float
    resistance_ohm: float
    v_max_V: float
    length_um: float
    source: str


@dataclass(frozen=True)
class Die:
    """The die a chip is drawn on and the pads it offers (``None``: no fixed die)."""

    size_um: tuple[float, float] | None
    pads: int | None
    pad_pitch_um: float | None
    pad_size_um: tuple[float, float]
    io_ports: int | None
    metals: int


@dataclass(frozen=True)
class PdkInfo:
    """One PDK: what ``optinc pdks`` prints and what the flow needs to pick it.

    Attributes:
        name: the value of ``--pdk`` / ``pdk:``.
        title: one line for people.
        modules: the Python modules it needs beyond this package's own.
        install: how to install them.
        roles: which cell plays each role (coupler, heater, I/O, pad, die ...).
        layers: GDS (layer, datatype) by name.
        rules: design rules as ``rule name -> um``.
        die: die and pads.
        heater: the heater's electrical model.
        notes: limits in a line each (``optinc pdks`` prints them).
    """

    name: str
    title: str
    modules: tuple[str, ...]
    install: str
    roles: Mapping[str, str]
    layers: Mapping[str, tuple[int, int]]
    rules: Mapping[str, float]
    die: Die
    heater: HeaterModel
    notes: tuple[str, ...] = field(default=())

    @property
    def missing(self) -> tuple[str, ...]:
        """The modules it needs that cannot be imported here."""
        return tuple(m for m in self.modules if importlib.util.find_spec(m) is None)

    @property
    def installed(self) -> bool:
        """Whether every module it needs can be imported here."""
        return not self.missing


def _optinc() -> PdkInfo:
    from pdk import tech

    return PdkInfo(
        name="optinc",
        title="OptINC reference process (this repository's pdk/): two metals, bumps, any mesh size",
        modules=(),
        install="",
        roles={
            "coupler": "directional_coupler (in mzi)",
            "theta/phi heater": "heater_straight (in mzi)",
            "attenuator": "attenuator",
            "output phase shifter": "phase_shifter",
            "bypass": "mzi_bypass, attenuator_bypass, phase_shifter_bypass, crossing_bypass",
            "crossing": "crossing",
            "grating coupler": "grating_coupler",
            "edge coupler": "edge_coupler",
            "terminator": "terminator",
            "pad": "bond_pad / bumps",
            "die": "outline on FLOORPLAN around the meshes",
        },
        layers=dict(tech.LAYERS),
        rules={
            **{f"{layer}.width": v for layer, v in tech.RULES.min_width_um},
            **{f"{layer}.space": v for layer, v in tech.RULES.min_space_um},
        },
        die=Die(
            size_um=None,
            pads=None,
            pad_pitch_um=tech.RULES.pad_pitch_um,
            pad_size_um=(tech.RULES.pad_size_um, tech.RULES.pad_size_um),
            io_ports=None,
            metals=2,
        ),
        heater=HeaterModel(
            p_pi_mW=tech.HEATER.p_pi_mW,
            resistance_ohm=tech.HEATER.resistance_ohm,
            v_max_V=tech.HEATER.v_max_V,
            length_um=tech.HEATER.length_um,
            source="pdk.tech.Heater",
        ),
        notes=("die: up to one reticle field, {:,.0f} x {:,.0f} um".format(*tech.LIMITS.reticle_um),),
    )


def _cornerstone() -> PdkInfo:
    from optinc_compiler.cornerstone import tech

    return tech.INFO


_BUILDERS = {"optinc": _optinc, "cornerstone-si220": _cornerstone}


def check_name(name: Any) -> str:
    """``name`` if it names a PDK; InputError naming the allowed ones otherwise."""
    if not isinstance(name, str) or name not in _BUILDERS:
        raise InputError(f"unknown PDK {name!r}; allowed: {', '.join(PDK_NAMES)}")
    return name


def get(name: str) -> PdkInfo:
    """The PDK called ``name`` (InputError for an unknown name)."""
    return _BUILDERS[check_name(name)]()


def require(name: str) -> PdkInfo:
    """The PDK called ``name``, MissingDependencyError when its module is not installed."""
    info = get(name)
    if info.missing:
        packages = ", ".join(repr(m) for m in info.missing)
        raise MissingDependencyError(
            f"PDK {name!r} needs the Python package(s) {packages}, not installed here; "
            f"install with: {info.install}"
        )
    return info


def all_pdks() -> tuple[PdkInfo, ...]:
    """Every PDK, the default first."""
    return tuple(get(name) for name in PDK_NAMES)
