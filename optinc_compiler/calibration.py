r"""Heater model, chip calibration, thermal crosstalk and DAC codes: the phase program a
lab loads (issue "phase program for the lab").

Heater model (thermo-optic, linear in power)::

    phase = phase_offset + pi * P / P_pi,    P = V^2 / R,    code = round(V / V_max * (2^n - 1))

Phases are defined mod 2 pi: without crosstalk each heater is driven with the least power
that gives its phase, ``P = wrap(phase - offset) / pi * P_pi`` with ``wrap`` into [0, 2 pi)
(a target within ``PHASE_ATOL_RAD`` of a multiple of 2 pi drives 0). Thermal crosstalk is
linear in power: heater i sees ``sum_j K_ij P_j`` (``K_ii = 1``); the powers solve ``K P =
P_pi / pi (wrap + 2 pi n)`` with the multiples ``n >= 0`` chosen jointly for the least total
power with every ``P >= 0`` (``solve_powers``, ``least_multiples``). Output phase shifters
whose phase no read output sees are free (``free_heater_ids``): 0 mW. Defaults come from the
PDK (``pdk.tech.HEATER``, ``pdk.tech.THERMAL``); a calibration file overrides them per heater.

Calibration file (JSON)::

    {"format": "optinc-calibration", "version": 1, "name": "chip 7, 2026-11-20",
     "v_max_V": 10.0,
     "default": {"p_pi_mW": 25.0, "resistance_ohm": 500.0, "phase_offset_rad": 0.0},
     "heaters": {"fc1_U_c0_m0_theta": {"p_pi_mW": 24.1, "resistance_ohm": 510.0,
                                        "phase_offset_rad": 0.3}, ...},
     "splitters": {"fc1_U_c0_m0": [0.51, 0.48], ...},   # kappa^2 of coupler 1 and 2
     "crosstalk": [{"victim": "...", "aggressor": "...", "coefficient": 0.02}, ...]}

or CSV with a header ``id,p_pi_mW,resistance_ohm,phase_offset_rad,kappa2_1,kappa2_2``:
heater rows fill the first three values, MZI rows the splitter ratios (empty cells keep
the defaults).

Heater ids are the pad labels of the layout: ``{instance}_{theta|phi|phase}``.
"""

from __future__ import annotations

import csv
import heapq
import io
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from optinc_compiler import __version__
from optinc_compiler.errors import InputError
from optinc_compiler.files import read_text, shorten
from optinc_compiler.guard import parse_int, quote, unique_object
from optinc_compiler.limits import DAC_BITS_RANGE
from optinc_compiler.names import check_name
from optinc_compiler.netlist import (
    block_grid,
    chain_transfer,
    combine_tiles,
    fan_heater_ids,
    heater_roles,
    layer_netlist,
    merge_chain,
    split_chain,
    tile_phase_shifts,
)
from optinc_compiler.program import DiagonalStage, Layer, MeshStage, PhaseProgram
from pdk import tech

if TYPE_CHECKING:
    from optinc_compiler.pdks import HeaterModel

log = logging.getLogger("optinc.calibration")

TWO_PI = 2 * math.pi
CAL_FORMAT = "optinc-calibration"
CSV_COLUMNS = ("id", "pad", "mzi", "role", "phase_rad", "power_mW", "voltage_V", "dac_code")
ROUNDINGS = ("nearest", "aware")
#: Phase tolerance (rad): a heater target within this of a multiple of 2 pi is driven
#: with 0, not 2 pi (``drive_phases``). Far below one DAC step (12 bits, PDK heater: the
#: first code step is 1.5e-6 rad, the last 1.2e-2 rad) and far above the round-off the
#: decompositions leave on phases that are 0 (2 pi - 1e-15; the trained demo program has
#: 2 pi - 8e-11).
PHASE_ATOL_RAD = 1e-9


# --- calibration data -------------------------------------------------------------------


@dataclass(frozen=True)
class HeaterCal:
    """One heater: power for a pi shift, resistance, phase at zero power."""

    p_pi_mW: float = tech.HEATER.p_pi_mW
    resistance_ohm: float = tech.HEATER.resistance_ohm
    phase_offset_rad: float = 0.0


@dataclass(frozen=True)
class Calibration:
    """Heater parameters (a default plus per-heater values), measured splitter ratios per
    MZI and thermal crosstalk coefficients (added to the PDK's distance model)."""

    name: str = "pdk-default"
    v_max_V: float = tech.HEATER.v_max_V
    default: HeaterCal = field(default_factory=HeaterCal)
    heaters: Mapping[str, HeaterCal] = field(default_factory=dict)
    splitters: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    crosstalk: tuple[tuple[str, str, float], ...] = ()
    #: the PDK's distance model (``pdk.tech.THERMAL`` on our grid) added to ``crosstalk``;
    #: off where ``crosstalk`` already holds the chip's own distances (a foundry chip)
    distance_model: bool = True

    def splitter_triples(self) -> tuple[tuple[str, float, float], ...]:
        """The measured splitters as ``(mzi id, kappa2_1, kappa2_2)``, sorted (what
        ``verify.VerifyOptions.splitters`` takes)."""
        return tuple((mzi, k1, k2) for mzi, (k1, k2) in sorted(self.splitters.items()))

    def heater(self, heater_id: str) -> HeaterCal:
        """The calibration of one heater (the default when not measured)."""
        return self.heaters.get(heater_id, self.default)


def _positive(value: Any, what: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InputError(f"{what} is {value!r}; allowed: a number > 0")
    return float(value)


def _finite(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(f"{what} is {value!r}; allowed: a finite number")
    return float(value)


def _kappa2(value: Any, what: str) -> float:
    x = _finite(value, what)
    if not 0 <= x <= 1:
        raise InputError(f"{what} is {value!r}; allowed: a power coupling ratio in [0, 1]")
    return x


def _heater_cal(doc: Any, where: str, base: HeaterCal) -> HeaterCal:
    if not isinstance(doc, dict):
        raise InputError(f"{where} must be an object with p_pi_mW, resistance_ohm, phase_offset_rad")
    unknown = sorted(set(doc) - {"p_pi_mW", "resistance_ohm", "phase_offset_rad"})
    if unknown:
        raise InputError(
            f"{where}: unknown key {unknown[0]!r}; allowed: p_pi_mW, resistance_ohm, phase_offset_rad"
        )
    return HeaterCal(
        p_pi_mW=_positive(doc.get("p_pi_mW", base.p_pi_mW), f"{where}.p_pi_mW"),
        resistance_ohm=_positive(doc.get("resistance_ohm", base.resistance_ohm), f"{where}.resistance_ohm"),
        phase_offset_rad=_finite(
            doc.get("phase_offset_rad", base.phase_offset_rad), f"{where}.phase_offset_rad"
        ),
    )


def calibration_from_dict(
    doc: Any, *, name: str, source: str | None = None, heater: HeaterModel | None = None
) -> Calibration:
    """A calibration from its JSON document (``name`` unless it names itself); errors
    start with ``source`` (the file, quoted; default ``name``) and name the JSON path.
    Fields it omits take ``heater``'s numbers (the chip's PDK; default our PDK's)."""
    try:
        return _calibration_from_dict(doc, name=name, heater=heater)
    except InputError as exc:
        raise InputError(f"{source or quote(name)}: {exc}") from None


def _calibration_from_dict(doc: Any, *, name: str, heater: HeaterModel | None) -> Calibration:
    model: Any = tech.HEATER if heater is None else heater  # both state p_pi, R, v_max
    if not isinstance(doc, dict) or doc.get("format") != CAL_FORMAT or doc.get("version") != 1:
        raise InputError(f"not an {CAL_FORMAT} file of version 1 (format/version keys)")
    allowed = {"format", "version", "name", "v_max_V", "default", "heaters", "splitters", "crosstalk"}
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise InputError(f"unknown key {shorten(unknown[0])}; allowed: {', '.join(sorted(allowed))}")
    base = HeaterCal(p_pi_mW=model.p_pi_mW, resistance_ohm=model.resistance_ohm)
    default = _heater_cal(doc.get("default", {}), "default", base)
    heaters = doc.get("heaters", {})
    splitters = doc.get("splitters", {})
    crosstalk = doc.get("crosstalk", [])
    if not isinstance(heaters, dict) or not isinstance(splitters, dict) or not isinstance(crosstalk, list):
        raise InputError("heaters and splitters must be objects, crosstalk a list")
    pairs = {}
    for mzi, ratios in splitters.items():
        if not isinstance(ratios, list) or len(ratios) != 2:
            raise InputError(f"splitters.{mzi} must be [kappa2_1, kappa2_2]")
        pairs[mzi] = (_kappa2(ratios[0], f"splitters.{mzi}[0]"), _kappa2(ratios[1], f"splitters.{mzi}[1]"))
    links = []
    for k, item in enumerate(crosstalk):
        if not isinstance(item, dict) or set(item) != {"victim", "aggressor", "coefficient"}:
            raise InputError(f"crosstalk[{k}] must be {{victim, aggressor, coefficient}}")
        c = _finite(item["coefficient"], f"crosstalk[{k}].coefficient")
        if not 0 <= c < 1:
            raise InputError(f"crosstalk[{k}].coefficient is {c}; allowed: 0 <= c < 1")
        links.append((str(item["victim"]), str(item["aggressor"]), c))
    return Calibration(
        name=check_name(doc.get("name", name), what="calibration"),
        v_max_V=_positive(doc.get("v_max_V", model.v_max_V), "v_max_V"),
        default=default,
        heaters={h: _heater_cal(v, f"heaters.{h}", default) for h, v in heaters.items()},
        splitters=pairs,
        crosstalk=tuple(links),
    )


def load_calibration(path: str | Path, *, heater: HeaterModel | None = None) -> Calibration:
    """Read a calibration file (.json or .csv); what it omits takes ``heater``'s numbers
    (the chip's PDK heater model, ``pdks.PdkInfo.heater``; default our PDK's). Its ids
    are checked against a program by :func:`check_calibration`, which every stage that
    uses one calls."""
    p = Path(path)
    if p.suffix.lower() not in (".json", ".csv"):
        raise InputError(f"calibration file {str(p)!r}: allowed suffixes .json, .csv")
    text = read_text(p, what="calibration file", max_bytes=MAX_CALIBRATION_BYTES)
    if p.suffix.lower() == ".csv":
        return _calibration_from_csv(text, name=p.name, heater=heater)
    try:
        doc = json.loads(text, parse_int=parse_int, object_pairs_hook=unique_object)
    except InputError as exc:
        raise InputError(f"{str(p)!r}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{str(p)!r} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    except RecursionError:
        raise InputError(f"{str(p)!r} nests deeper than a calibration does") from None
    return calibration_from_dict(doc, name=p.name, source=quote(p), heater=heater)


#: Largest calibration file read: a measured N=256 chip (131,584 heaters) is ~15 MB.
MAX_CALIBRATION_BYTES = 128 * 1024 * 1024


def calibration_problem(calibration: Calibration, program: PhaseProgram) -> str | None:
    """Why ``calibration`` does not belong to ``program``, or None: every heater, MZI
    and crosstalk pair it names must be one of the program's (a typo would otherwise
    leave that heater at the PDK's defaults under the calibration's name)."""
    return unknown_ids_problem(
        calibration.name,
        heaters=[*calibration.heaters, *(x for v, a, _ in calibration.crosstalk for x in (v, a))],
        mzis=calibration.splitters,
        program=program,
    )


def unknown_ids_problem(
    name: str, *, heaters: Iterable[str], mzis: Iterable[str], program: PhaseProgram
) -> str | None:
    """The one rule for ids a calibration names: unknown ones are an error naming them."""
    specs = program_heaters(program)
    known = {"heater": {h.id for h in specs}, "MZI": {h.mzi for h in specs if h.mzi is not None}}
    for kind, names in (("heater", heaters), ("MZI", mzis)):
        unknown = sorted(set(names) - known[kind])
        if unknown:
            shown = ", ".join(shorten(u) for u in unknown[:3]) + (" ..." if len(unknown) > 3 else "")
            return (
                f"calibration {name!r} names {len(unknown)} {kind} id(s) that the program does not have: "
                f"{shown}"
            )
    return None


def check_calibration(calibration: Calibration | None, program: PhaseProgram) -> None:
    """InputError unless ``calibration`` (if any) belongs to ``program``."""
    if calibration is not None:
        problem = calibration_problem(calibration, program)
        if problem is not None:
            raise InputError(problem)


def _calibration_from_csv(text: str, *, name: str, heater: HeaterModel | None) -> Calibration:
    columns = ["id", "p_pi_mW", "resistance_ohm", "phase_offset_rad", "kappa2_1", "kappa2_2"]
    # comment lines read as blank ones, so that the messages give the file's line numbers
    lines = ["\n" if line.startswith("#") else line for line in io.StringIO(text)]
    reader = csv.reader(lines)
    try:
        table = [(reader.line_num, row) for row in reader if row]
    except csv.Error as exc:
        raise InputError(f"{name}: not a CSV table ({exc})") from None
    if not table or table[0][1] != columns:
        raise InputError(f"{name}: the CSV header must be {','.join(columns)}")
    heaters: dict[str, Any] = {}
    splitters: dict[str, Any] = {}
    first_line: dict[str, int] = {}
    for k, cells in table[1:]:
        if len(cells) != len(columns):
            raise InputError(
                f"{name} line {k}: {len(cells)} cells; a row has {len(columns)} ({','.join(columns)})"
            )
        row = dict(zip(columns, cells, strict=True))
        if row["id"] in first_line:
            first = first_line[row["id"]]
            raise InputError(
                f"{name} line {k}: id {shorten(row['id'])} appears twice (first on line {first})"
            )
        first_line[row["id"]] = k
        values = {c: _csv_number(row[c], f"{name} line {k}, {c}") for c in columns[1:] if row[c].strip()}
        if any(c in values for c in columns[1:4]):
            heaters[row["id"]] = {c: values[c] for c in columns[1:4] if c in values}
        if "kappa2_1" in values or "kappa2_2" in values:
            splitters[row["id"]] = [values.get("kappa2_1", 0.5), values.get("kappa2_2", 0.5)]
    doc = {"format": CAL_FORMAT, "version": 1, "name": name, "heaters": heaters, "splitters": splitters}
    return calibration_from_dict(doc, name=name, heater=heater)


def _csv_number(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InputError(f"{where} is {shorten(text)}; allowed: a number") from None


# --- heaters of a program -----------------------------------------------------------------


@dataclass(frozen=True)
class HeaterSpec:
    """A heater of the compiled chip and the phase it must give.

    ``role``: ``theta`` / ``phi`` (MZI), ``output`` (output phase screen) or
    ``attenuator`` (both heaters of an attenuator); ``column``/``row`` place it in its
    layer's grid (for the crosstalk distance model)."""

    id: str
    layer: str
    mzi: str | None
    role: str
    phase_rad: float
    column: int
    row: int
    position: str  # which heater of its cell: theta, phi or phase (the pad label suffix)


def program_heaters(program: PhaseProgram) -> tuple[HeaterSpec, ...]:
    """Every heater of every layer in netlist order, with the phase it must give."""
    out = []
    for layer in program.layers:
        for inst in layer_netlist(layer).instances:
            settings = dict(inst.settings)
            phases: dict[str, float]
            if inst.component == "mzi":
                phases = {"theta": settings["theta_rad"], "phi": settings["phi_rad"]}
            elif inst.component == "attenuator":
                theta, phi = tech.attenuator_heater_phases(settings["amplitude"], settings["phase_rad"])
                phases = {"theta": float(theta), "phi": float(phi)}
            elif inst.component == "phase_shifter":
                phases = {"phase": settings["phase_rad"]}
            else:
                continue
            for position in heater_roles(inst.component):
                role = {"mzi": position, "attenuator": "attenuator"}.get(inst.component, "output")
                out.append(
                    HeaterSpec(
                        id=f"{inst.name}_{position}",
                        layer=layer.name,
                        mzi=inst.name if inst.component == "mzi" else None,
                        role=role,
                        phase_rad=float(phases[position]),
                        column=inst.column,
                        row=inst.mode,
                        position=position,
                    )
                )
    return tuple(out)


def free_heater_ids(layer: Layer) -> frozenset[str]:
    """The output-phase-screen heaters (``{prefix}_{stage}_ps_m{k}_phase``) of ``layer``
    whose phase no read output sees: they may draw 0 mW.

    The screen of mesh stage s sits on the stage's output; its row k is free when the
    transfer from there to the layer's outputs, column k of ``R_out @ S_last @ ... @
    S_{s+1}``, is structurally zero: zero whatever the phases downstream are. It is
    decided from the structure alone: ``R_out`` reads modes 0..out-1, a stage passes the
    modes above its ``n_modes`` straight through, a diagonal stage keeps each row on its
    row, and an MZI on modes (m, m+1) can send either row to both. So rows >= out after
    the last mesh of a layer are free (they end in terminators in the netlist), and so is
    a row of an earlier mesh that only such rows follow (an svd layer's V rows >= out).
    Zeros that depend on the phases (an MZI at theta = 0 crossing fully, an attenuator at
    amplitude 0) do not count: the heaters that set them are not exact.

    Segmented (``ud-segmented``) layers have no free heaters: their tiles' outputs reach
    the layer's outputs through the netlist's permutations and fan-in chains, not through
    ``R_out``, so the rule above does not describe them; every heater stays powered."""
    if layer.block_size is not None:
        return frozenset()
    prefix = layer.id
    reach = [row < layer.shape[0] for row in range(max(layer.shape))]  # what R_out reads
    free = []
    for stage in reversed(layer.stages):  # against the light
        if not isinstance(stage, MeshStage):
            continue
        free += [f"{prefix}_{stage.name}_ps_m{k}_phase" for k in range(stage.n_modes) if not reach[k]]
        for mode in reversed(stage.mesh.modes.tolist()):  # U = T_K ... T_1: T_K first
            reach[mode] = reach[mode + 1] = reach[mode] or reach[mode + 1]
    return frozenset(free)


def crosstalk_matrix(heaters: Sequence[HeaterSpec], calibration: Calibration) -> Any:
    """Sparse ``K`` (heaters x heaters, ``K_ii = 1``): the PDK distance model between
    heaters at the same place of cells in one grid column, plus the calibration's
    measured coefficients."""
    import scipy.sparse as sp

    th, pitch = tech.THERMAL, tech.GRID.row_pitch_um
    index = {h.id: k for k, h in enumerate(heaters)}
    groups: dict[tuple[str, int, str], list[int]] = {}
    for k, h in enumerate(heaters):
        groups.setdefault((h.layer, h.column, h.position), []).append(k)
    rows, cols, vals = list(range(len(heaters))), list(range(len(heaters))), [1.0] * len(heaters)
    for members in groups.values() if calibration.distance_model else ():
        for i in members:
            for j in members:
                d_rows = abs(heaters[i].row - heaters[j].row)
                if 0 < d_rows <= th.cutoff_rows:
                    rows.append(i)
                    cols.append(j)
                    vals.append(th.coefficient_at_pitch * math.exp(-(d_rows - 1) * pitch / th.decay_um))
    for victim, aggressor, c in calibration.crosstalk:
        for name in (victim, aggressor):
            if name not in index:
                raise InputError(
                    f"calibration crosstalk names heater {name!r}, which the program does not have"
                )
        rows.append(index[victim])
        cols.append(index[aggressor])
        vals.append(c)
    return sp.csr_matrix((vals, (rows, cols)), shape=(len(heaters), len(heaters)))


# --- heater settings --------------------------------------------------------------------


@dataclass(frozen=True)
class HeaterSetting:
    """What the lab sets on one heater (the ``heaters`` list of the phase program:
    ``CSV_COLUMNS``), plus its layer and whether it is free (``free_heater_ids``: its
    phase reaches no read output, so it draws 0 mW and ``phase_rad`` is the phase it then
    has)."""

    id: str
    pad: str
    mzi: str | None
    role: str
    phase_rad: float
    power_mW: float
    voltage_V: float
    dac_code: int
    layer: str
    free: bool


@dataclass(frozen=True)
class HeaterProgram:
    """Heater settings of a whole program and what they were computed for."""

    heaters: tuple[HeaterSetting, ...]
    calibration: str
    dac_bits: int
    v_max_V: float
    rounding: str
    crosstalk: bool
    generator: str = f"optinc-compiler {__version__}"

    def header(self) -> dict[str, Any]:
        """The ``heater_program`` block of the JSON file."""
        return {
            "generator": self.generator,
            "calibration": self.calibration,
            "dac_bits": self.dac_bits,
            "v_max_V": self.v_max_V,
            "rounding": self.rounding,
            "crosstalk_compensated": self.crosstalk,
        }

    def to_csv(self) -> str:
        """The heaters as CSV (same columns as the JSON list), after a ``#`` comment line
        naming the tool version and the calibration."""
        out = io.StringIO()
        h = self.header()
        out.write("# " + "; ".join(f"{k}: {v}" for k, v in h.items()) + "\n")
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for s in self.heaters:
            writer.writerow(
                [
                    s.id,
                    s.pad,
                    s.mzi or "",
                    s.role,
                    repr(s.phase_rad),
                    repr(s.power_mW),
                    repr(s.voltage_V),
                    s.dac_code,
                ]
            )
        return out.getvalue()


@dataclass(frozen=True)
class LayerPower:
    """Heaters of one layer in a heater program and the power they draw."""

    layer: str
    n_heaters: int
    n_free: int
    total_power_mW: float
    max_power_mW: float


@dataclass(frozen=True)
class PowerBudget:
    """The power a heater program's heaters draw: per layer (program order) and in all,
    and the largest heater (None without heaters)."""

    layers: tuple[LayerPower, ...]
    n_heaters: int
    n_free: int
    total_power_mW: float
    largest: HeaterSetting | None

    def line(self) -> str:
        """``heaters: 94, total 1,284.3 mW, largest onn1_U_c0_m0_phi 49.6 mW at 4.98 V``."""
        text = f"heaters: {self.n_heaters}, total {self.total_power_mW:,.1f} mW"
        if self.largest is not None:
            h = self.largest
            text += f", largest {h.id} {h.power_mW:.1f} mW at {h.voltage_V:.2f} V"
        return text


def power_budget(heater_prog: HeaterProgram) -> PowerBudget:
    """The power the heaters of ``heater_prog`` draw, as its table (heaters.csv) lists it:
    crosstalk compensated with its calibration, free heaters at 0 mW, before DAC rounding.
    The one place these sums are made (``optinc program``, ``optinc build`` and its
    report.html show them)."""
    by_layer: dict[str, list[HeaterSetting]] = {}
    for h in heater_prog.heaters:
        by_layer.setdefault(h.layer, []).append(h)
    layers = tuple(
        LayerPower(
            layer=name,
            n_heaters=len(mine),
            n_free=sum(h.free for h in mine),
            total_power_mW=math.fsum(h.power_mW for h in mine),
            max_power_mW=max(h.power_mW for h in mine),
        )
        for name, mine in by_layer.items()
    )
    return PowerBudget(
        layers=layers,
        n_heaters=len(heater_prog.heaters),
        n_free=sum(h.free for h in heater_prog.heaters),
        total_power_mW=math.fsum(h.power_mW for h in heater_prog.heaters),
        largest=max(heater_prog.heaters, key=lambda h: h.power_mW, default=None),
    )


def drive_phases(
    phase_rad: npt.NDArray[np.float64],
    offset_rad: npt.NDArray[np.float64],
    *,
    atol_rad: float = PHASE_ATOL_RAD,
) -> npt.NDArray[np.float64]:
    """Least non-negative heater phase shift giving ``phase`` (mod 2 pi) over the offset:
    ``phase - offset`` reduced into [0, 2 pi), and 0 where that lies within ``atol_rad``
    of 0 or of 2 pi (a target of 2 pi - 1e-15 is phase 0 and drives 0, not a full 2 pi).
    The result is congruent to ``phase - offset`` mod 2 pi within ``atol_rad``."""
    d = np.mod(phase_rad - offset_rad, TWO_PI)
    return np.where((d < atol_rad) | (d > TWO_PI - atol_rad), 0.0, d)


def solve_powers(
    wanted_rad: npt.NDArray[np.float64],
    p_pi_mW: npt.NDArray[np.float64],
    k: Any,
    *,
    free: npt.NDArray[np.bool_] | None = None,
    ids: Sequence[str] | None = None,
    atol_rad: float = PHASE_ATOL_RAD,
) -> npt.NDArray[np.float64]:
    """The heater powers of least total with every ``P >= 0`` that give the wanted phases
    (``drive_phases``) mod 2 pi through the crosstalk ``K``: ``pi / P_pi * (K P) = wanted
    + 2 pi n`` on every heater but the ``free`` ones, which get 0 (their rows and columns
    leave the system), the multiples ``n >= 0`` chosen jointly (``least_multiples``).

    A power negative by less than ``atol_rad``'s worth of phase (``atol_rad * P_pi /
    pi``) counts as 0 and is set to 0: that moves no heater's phase by more than about
    ``atol_rad``. Heaters that no crosstalk couples are solved apart (K's groups: one
    place of cells in one grid column, plus the calibration's links); ``ids`` name them
    in errors (default: their index)."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    power = np.zeros(wanted_rad.size)
    live = np.flatnonzero(~free) if free is not None else np.arange(wanted_rad.size)
    if not live.size:
        return power
    sub = sp.csr_matrix(k)[live][:, live]
    count, labels = connected_components(sub, directed=True, connection="weak")
    order = np.argsort(labels, kind="stable")
    unproven = []
    for group in np.split(order, np.cumsum(np.bincount(labels, minlength=count))[:-1]):
        at = live[group]
        names = [ids[j] if ids is not None else str(j) for j in at]
        power[at], proven = _group_powers(
            wanted_rad[at], p_pi_mW[at] / math.pi, sub[group][:, group], names, atol_rad
        )
        if not proven:
            unproven.append(f"{names[0]} ({len(names)} heaters)")
    if unproven:
        log.warning(
            "crosstalk: the least total power is not proven for %d of %d groups of coupled heaters "
            "(first: %s): the search stops after %d sets of multiples (or a group has more than %d "
            "heaters); their powers are the cheapest found, all >= 0",
            len(unproven),
            count,
            unproven[0],
            SEARCH_LIMIT,
            DENSE_GROUP_LIMIT,
        )
    return power


#: Heaters of one crosstalk group solved with K^-1 (which proves the least total power);
#: larger groups (calibration links joining whole columns) get the greedy solve alone.
DENSE_GROUP_LIMIT = 1024
#: Nodes (sets of multiples) ``least_multiples`` searches in one group before it keeps the
#: cheapest feasible ones found (~0.3 s for a column of 128 heaters).
SEARCH_LIMIT = 5_000
#: Rounds of the greedy (each moves every heater with negative power up by 2 pi).
GREEDY_ROUNDS = 64


def _group_powers(
    wanted_rad: npt.NDArray[np.float64],
    mW_per_rad: npt.NDArray[np.float64],
    k: Any,
    names: Sequence[str],
    atol_rad: float,
) -> tuple[npt.NDArray[np.float64], bool]:
    """``solve_powers`` for one coupled group: ``P = K^-1 diag(P_pi / pi) (wanted + 2 pi
    n)``, and whether its total is proven least."""
    tol_mW = atol_rad * mW_per_rad
    if wanted_rad.size > DENSE_GROUP_LIMIT:
        return _greedy_sparse_powers(wanted_rad, mW_per_rad, k, tol_mW), False
    kd = k.toarray()
    k_inv = np.linalg.inv(kd)
    lowering = np.flatnonzero(k_inv.sum(axis=0) <= 0)
    if lowering.size:
        raise InputError(
            f"crosstalk: more power on heater {names[lowering[0]]} lowers the total power of the "
            f"{len(names)} heaters it is coupled with (a column sum of K^-1 <= 0); check the "
            "calibration's crosstalk coefficients"
        )
    base = k_inv @ (mW_per_rad * wanted_rad)
    step = k_inv * (TWO_PI * mW_per_rad)  # column j: what 2 pi more on heater j does to P
    least = least_multiples(base, step, tol_mW)
    wanted_mW = mW_per_rad * (wanted_rad + TWO_PI * least.multiples)
    power = np.linalg.solve(kd, wanted_mW)
    on = power > 0  # the others are 0 (within tol): solve again without them, exact for the rest
    if not on.all():
        power = np.zeros(power.size)
        power[on] = np.linalg.solve(kd[np.ix_(on, on)], wanted_mW[on])
    return np.maximum(power, 0.0), least.proven


def _greedy_sparse_powers(
    wanted_rad: npt.NDArray[np.float64],
    mW_per_rad: npt.NDArray[np.float64],
    k: Any,
    tol_mW: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """The greedy of ``least_multiples`` with sparse solves, for groups too large for
    K^-1: non-negative powers, their total not proven least."""
    import scipy.sparse.linalg as spla

    lu = spla.splu(k.tocsc())
    n = np.zeros(wanted_rad.size)
    for _ in range(GREEDY_ROUNDS):
        p = lu.solve(mW_per_rad * (wanted_rad + TWO_PI * n))
        negative = p < -tol_mW
        if not negative.any():
            return np.maximum(p, 0.0)
        n[negative] += 1
    raise InputError(_NO_POWERS)


_NO_POWERS = "crosstalk compensation found no non-negative heater powers; check the crosstalk matrix"


@dataclass(frozen=True)
class Multiples:
    """The multiples of 2 pi ``least_multiples`` chose and how: ``z-matrix`` (the greedy's,
    ``K^-1`` a Z-matrix), ``bounds`` (the lower bounds prove them least), ``search`` (the
    search proves them least) or ``limit`` (the search stopped: the cheapest feasible
    ones found, not proven least)."""

    multiples: npt.NDArray[np.int64]
    how: str

    @property
    def proven(self) -> bool:
        """The multiples are proven to give the least total power."""
        return self.how != "limit"


def least_multiples(
    base_mW: npt.NDArray[np.float64],
    step_mW: npt.NDArray[np.float64],
    tol_mW: npt.NDArray[np.float64],
    *,
    search_limit: int = SEARCH_LIMIT,
) -> Multiples:
    r"""The multiples ``n >= 0`` (integers) of least total power ``sum(P)`` with every
    ``P(n) = base + step @ n >= -tol``, where ``base = K^-1 D wanted`` and ``step = 2 pi
    K^-1 D`` (``D = diag(P_pi / pi)``): column j is what 2 pi more on heater j does.

    Cost. ``sum(P(n)) = sum(base) + sigma . n`` with ``sigma_j = 2 pi D_j (1^T K^-1)_j``.
    When every column sum of ``K^-1`` is positive (checked by the caller; true when each
    heater's heat on the others sums to less than half its power, ``K = I + C`` with
    ``||C||_1 < 1/2``: the PDK's is 0.13) the total grows with every ``n_j``, so the
    componentwise least feasible ``n``, when there is one, has the least total power.

    The greedy: from ``n = 0``, move every heater with ``P_i < -tol_i`` up by one, solve
    again, until none is negative (``GREEDY_ROUNDS``; InputError if it does not end).

    When the greedy is least (Leontief). If ``K^-1`` is a Z-matrix (no positive
    off-diagonal entry), ``P_i`` can only fall when another heater's ``n_j`` rises. Then
    the feasible set is closed under the componentwise minimum (at ``m = min(n, n')``
    with, say, ``m_i = n_i``: ``P_i(m) >= P_i(n) >= -tol_i``, the others' terms only
    rose), so it has a least element ``n*``, and every greedy step stays below it: if
    ``n <= n*`` and ``P_i(n) < -tol_i``, then ``n*_i > n_i`` (else ``P_i(n*) <= P_i(n)
    < -tol_i``). The greedy ends at a feasible ``n <= n*``, that is at ``n*``.

    ``K = I + C`` with small ``C >= 0`` does not make ``K^-1`` a Z-matrix: ``K^-1 = I -
    C + C^2 - ...``, and a two-hop path (i heats k heats j) gives ``(C^2)_ij > 0`` where
    the direct ``C_ij`` is smaller (three nearest neighbours in a row: ``(K^-1)_02 >
    0``). The PDK's distance model (``pdk.tech.THERMAL``) is a Z-matrix only in columns
    of up to 5 heaters one row apart or 3 MZIs two rows apart; longer columns have
    positive entries up to 7.9e-5. Calibration coefficients can give anything. So the
    test is made on every group (``greedy_is_least``); when it fails, a heater can also
    be lifted by far heaters taking 2 pi, and the greedy can be beaten (it moves up a
    heater 1e-3 mW short, whose heat then cascades along the column). Then:

    1. Lower bounds. With a feasible ``n`` of total ``ub`` (the greedy's), every
       feasible ``n'`` of total ``< ub`` lies above ``lo`` where, from ``lo = 0``: a
       heater with ``P_i(lo) + r_i (ub - sigma . lo) < -tol_i``, ``r_i = max_j
       step+_ij / sigma_j`` (``step+``: the positive off-diagonal part, the most P_i can
       rise per mW of total spent elsewhere), stays negative in every such ``n'`` with
       ``n'_i = lo_i``, so ``lo_i`` rises by one; repeat. If ``lo`` is feasible it is
       least (with a Z-matrix, ``r = 0`` and this is the greedy).
    2. A better ``ub``: from ``lo``, move up the most negative heater one at a time,
       and redo 1 if that is cheaper than the greedy.
    3. A uniform-cost search over ``n >= lo`` in increasing total, each node tightened
       by 1 (over the heaters it may still raise): the first feasible ``n`` is least;
       none below ``ub`` proves the best so far least. After ``search_limit`` nodes it
       stops and keeps the best so far (feasible; ``how`` is ``limit``)."""
    m = base_mW.size
    sigma = step_mW.sum(axis=0)

    def short(n: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        return np.asarray(base_mW + step_mW @ n + tol_mW)  # < 0: that heater is negative

    n = np.zeros(m, dtype=np.int64)
    for _ in range(GREEDY_ROUNDS):
        negative = short(n) < 0
        if not negative.any():
            break
        n[negative] += 1
    else:
        raise InputError(_NO_POWERS)
    if greedy_is_least_step(step_mW):
        return Multiples(n, "z-matrix")
    best, ub = n, float(sigma @ n)
    slack = 1e-12 * max(1.0, abs(ub))
    # rise[i, f]: the most P_i can rise per mW of total spent on heaters j >= f, j != i
    gain = np.where(~np.eye(m, dtype=bool) & (step_mW > 0), step_mW, 0.0) / sigma
    rise = np.maximum.accumulate(gain[:, ::-1], axis=1)[:, ::-1]

    def lower_bound(n0: npt.NDArray[np.int64], first: int) -> npt.NDArray[np.int64] | None:
        """Step 1 for the feasible n >= n0 that raise only heaters >= first and cost less
        than ub: their least possible n, or None if there is none."""
        lo = n0.copy()
        while True:
            left = max(ub - float(sigma @ lo), 0.0)
            sure = short(lo) + rise[:, first] * left < 0
            if not sure.any():
                return lo
            if sure[:first].any() or float(sigma @ lo + sigma[sure].sum()) >= ub - slack:
                return None
            lo[sure] += 1

    root = lower_bound(np.zeros(m, dtype=np.int64), 0)
    if root is not None and short(root).min() < 0:
        better = root.copy()
        for _ in range(GREEDY_ROUNDS * m):
            gap = short(better)
            if gap.min() >= 0:
                break
            better[int(np.argmin(gap))] += 1
        if short(better).min() >= 0 and float(sigma @ better) < ub - slack:
            best, ub = better, float(sigma @ better)
            root = lower_bound(np.zeros(m, dtype=np.int64), 0)
    if root is None:  # nothing cheaper than best
        return Multiples(best, "bounds")
    if short(root).min() >= 0:
        return Multiples(root, "bounds")
    heap: list[tuple[float, tuple[int, ...], int]] = [(float(sigma @ root), tuple(root.tolist()), 0)]
    for _ in range(search_limit):
        if not heap:  # nothing cheaper than best
            return Multiples(best, "search")
        cost, key, first = heapq.heappop(heap)
        here = lower_bound(np.array(key, dtype=np.int64), first)
        if here is None:
            continue
        if float(sigma @ here) > cost:  # raised: back into the queue at its cost
            heapq.heappush(heap, (float(sigma @ here), tuple(here.tolist()), first))
            continue
        if short(here).min() >= 0:
            return Multiples(here, "search")
        for j in range(first, m):  # each n >= root once: raise coordinates in order
            if cost + float(sigma[j]) < ub - slack:
                up = list(key)
                up[j] += 1
                heapq.heappush(heap, (cost + float(sigma[j]), tuple(up), j))
    return Multiples(best, "limit")


def greedy_is_least(k: npt.NDArray[np.float64]) -> bool:
    """Whether the greedy of ``least_multiples`` is provably least for the dense
    crosstalk matrix ``k``: ``K^-1`` has no positive off-diagonal entry (a Z-matrix) and
    positive column sums."""
    k_inv = np.asarray(np.linalg.inv(k), dtype=np.float64)
    return greedy_is_least_step(k_inv) and bool(np.all(k_inv.sum(axis=0) > 0))


def greedy_is_least_step(step: npt.NDArray[np.float64]) -> bool:
    """No positive off-diagonal entry in ``step`` (``K^-1`` times positive column scales)."""
    off = step[~np.eye(step.shape[0], dtype=bool)]
    return bool(np.all(off <= 0))


def heater_program(
    program: PhaseProgram,
    calibration: Calibration | None = None,
    *,
    dac_bits: int = 12,
    rounding: str = "nearest",
    crosstalk: bool = True,
) -> HeaterProgram:
    """Phase -> power -> voltage -> DAC code for every heater of the program.

    InputError naming the heaters whose voltage would exceed ``v_max_V``."""
    cal = calibration or Calibration()
    check_calibration(calibration, program)
    low, high = DAC_BITS_RANGE
    if not low <= dac_bits <= high:
        raise InputError(f"dac_bits is {dac_bits}; allowed: {low} to {high}")
    if rounding not in ROUNDINGS:
        raise InputError(f"rounding {rounding!r}; allowed: {', '.join(ROUNDINGS)}")
    specs = program_heaters(program)
    arrays = _heater_arrays(specs, cal)
    free_ids = frozenset().union(*(free_heater_ids(layer) for layer in program.layers))
    free = np.array([h.id in free_ids for h in specs], dtype=bool)
    wanted = drive_phases(arrays.phase_rad, arrays.offset_rad)
    k = crosstalk_matrix(specs, cal) if crosstalk else None
    if k is not None:
        try:
            power = solve_powers(wanted, arrays.p_pi_mW, k, free=free, ids=[h.id for h in specs])
        except InputError as exc:
            raise InputError(f"{exc} (calibration {quote(cal.name)})") from None
    else:
        power = np.where(free, 0.0, wanted / math.pi * arrays.p_pi_mW)
    voltage = np.sqrt(power * 1e-3 * arrays.resistance_ohm)
    too_high = np.flatnonzero(voltage > cal.v_max_V * (1 + 1e-12))
    if too_high.size:
        names = ", ".join(specs[k].id for k in too_high[:5]) + (" ..." if too_high.size > 5 else "")
        raise InputError(
            f"{too_high.size} heater(s) need more than v_max_V = {cal.v_max_V} V "
            f"(up to {voltage.max():.3f} V) with calibration {cal.name!r}: {names}"
        )
    full = (1 << dac_bits) - 1
    codes = np.rint(np.minimum(voltage, cal.v_max_V) / cal.v_max_V * full).astype(np.int64)
    if rounding == "aware":
        codes = aware_codes(program, specs, cal, codes, k, dac_bits=dac_bits, fixed=free)
    heat = k @ power if k is not None else power
    got = arrays.offset_rad + math.pi * heat / arrays.p_pi_mW  # what a free heater then has
    # the phase each heater gives, in [0, 2 pi) (2 pi - 1e-15 -> 0): its target, or a free one's
    phase = drive_phases(np.where(free, got, arrays.phase_rad), np.zeros(len(specs)))
    settings = tuple(
        HeaterSetting(
            id=h.id,
            pad=h.id,
            mzi=h.mzi,
            role=h.role,
            phase_rad=float(shown),
            power_mW=float(p),
            voltage_V=float(v),
            dac_code=int(c),
            layer=h.layer,
            free=bool(f),
        )
        for h, shown, p, v, c, f in zip(
            specs, phase.tolist(), power.tolist(), voltage.tolist(), codes.tolist(), free, strict=True
        )
    )
    return HeaterProgram(settings, cal.name, dac_bits, cal.v_max_V, rounding, crosstalk)


@dataclass(frozen=True)
class _Arrays:
    phase_rad: npt.NDArray[np.float64]
    offset_rad: npt.NDArray[np.float64]
    p_pi_mW: npt.NDArray[np.float64]
    resistance_ohm: npt.NDArray[np.float64]


def _heater_arrays(specs: Sequence[HeaterSpec], cal: Calibration) -> _Arrays:
    cals = [cal.heater(h.id) for h in specs]
    return _Arrays(
        phase_rad=np.array([h.phase_rad for h in specs]),
        offset_rad=np.array([c.phase_offset_rad for c in cals]),
        p_pi_mW=np.array([c.p_pi_mW for c in cals]),
        resistance_ohm=np.array([c.resistance_ohm for c in cals]),
    )


# --- what the chip does with given codes ---------------------------------------------------


def realised_phases(
    codes: npt.NDArray[np.int64], arrays: _Arrays, k: Any, *, v_max_V: float, dac_bits: int
) -> npt.NDArray[np.float64]:
    """The phase each heater gives for the DAC codes; ``k``: crosstalk matrix or None."""
    voltage = codes / ((1 << dac_bits) - 1) * v_max_V
    power = voltage**2 / arrays.resistance_ohm * 1e3
    heat = k @ power if k is not None else power
    return np.asarray(arrays.offset_rad + math.pi * heat / arrays.p_pi_mW)


def quantised_program(
    heater_prog: HeaterProgram, program: PhaseProgram, calibration: Calibration | None = None
) -> PhaseProgram:
    """The program the chip realises with ``heater_prog``'s DAC codes (and its crosstalk)."""
    return program_with_phases(program, heater_phases(heater_prog, program, calibration))


def heater_phases(
    heater_prog: HeaterProgram, program: PhaseProgram, calibration: Calibration | None = None
) -> dict[str, float]:
    """The phase each heater gives (by heater id) with ``heater_prog``'s DAC codes, its
    crosstalk included."""
    cal = calibration or Calibration()
    specs = program_heaters(program)
    k = crosstalk_matrix(specs, cal) if heater_prog.crosstalk else None
    codes = np.array([s.dac_code for s in heater_prog.heaters], dtype=np.int64)
    phases = realised_phases(
        codes, _heater_arrays(specs, cal), k, v_max_V=cal.v_max_V, dac_bits=heater_prog.dac_bits
    )
    return dict(zip((h.id for h in specs), phases.tolist(), strict=True))


def quantised_matrices(
    heater_prog: HeaterProgram, program: PhaseProgram, calibration: Calibration | None = None
) -> dict[str, npt.NDArray[np.complex128]]:
    """Per layer, the matrix the chip realises with ``heater_prog``'s DAC codes (and its
    crosstalk), every heater included: a segmented layer's fan chains too."""
    by_id = heater_phases(heater_prog, program, calibration)
    return {layer.name: realised_matrix(layer, by_id) for layer in program.layers}


def realised_matrix(layer: Layer, phases: Mapping[str, float]) -> npt.NDArray[np.complex128]:
    """The layer's matrix (scale included) with its heaters at ``phases`` (by heater id;
    others nominal). A segmented layer: ``scale sqrt(R C) sum_b beta_i[c] W_b[i, j]
    a_j[r]`` with each input's splitter amplitudes ``a_j`` and each output's combiner
    weights ``beta_i`` from their MZIs' phases, the tile phase of the netlist undone; at
    nominal phases this is ``layer.matrix()``."""
    tiles = program_with_phases(PhaseProgram(layers=(layer,)), phases).layers[0]
    if layer.block_size is None:
        return tiles.matrix()
    n_rows, n_cols = block_grid(layer)
    split, _ = split_chain(n_rows)
    merge, _ = merge_chain(n_cols)
    inputs, outputs = fan_heater_ids(layer)

    def chain(names: list[str], nominal: list[tuple[int, float]], n: int) -> npt.NDArray[np.complex128]:
        theta = [phases.get(f"{m}_theta", t) for m, (_, t) in zip(names, nominal, strict=True)]
        phi = [phases.get(f"{m}_phi", 0.0) for m in names]
        return chain_transfer(nominal, n, theta, phi)

    a = np.array([chain(names, split, n_rows)[:, 0] for names in inputs])  # (in, R)
    b = np.array([chain(names, merge, n_cols)[0] for names in outputs])  # (out, C)
    out = combine_tiles(layer, [block.matrix() for block in tiles.blocks], a, b)
    return np.asarray(tiles.scale * math.sqrt(n_rows * n_cols) * out, dtype=np.complex128)


def program_with_phases(program: PhaseProgram, phases: Mapping[str, float]) -> PhaseProgram:
    """The program whose heaters give ``phases`` (by heater id; others keep theirs).
    Heater ids follow ``optinc_compiler.netlist``: ``{mzi id}_theta|phi``,
    ``{prefix}_{stage}_ps_m{m}_phase``, ``{prefix}_{stage}_att_m{m}_theta|phi``."""
    layers = []
    for layer in program.layers:
        prefix = layer.id
        shifts = tile_phase_shifts(layer)
        blocks = []
        for block in layer.blocks:
            stages = tuple(
                _stage_with_phases(stage, f"{prefix}_{stage.name}", phases, shifts.get(stage.name, 0.0))
                for stage in block.stages
            )
            blocks.append(replace(block, stages=stages))
        layers.append(replace(layer, blocks=tuple(blocks)))
    return replace(program, layers=tuple(layers))


def _stage_with_phases(
    stage: MeshStage | DiagonalStage, name: str, phases: Mapping[str, float], shift_rad: float = 0.0
) -> MeshStage | DiagonalStage:
    """``stage`` with the heater ``phases`` (its netlist's output screen carries
    ``shift_rad`` more than the program's: ``netlist.tile_phase_shifts``)."""
    if isinstance(stage, MeshStage):
        m = stage.mesh
        ids = stage.mzi_ids
        thetas = [phases.get(f"{i}_theta", t) for i, t in zip(ids, m.theta_rad.tolist(), strict=True)]
        phis = [phases.get(f"{i}_phi", p) for i, p in zip(ids, m.phi_rad.tolist(), strict=True)]
        out = [
            phases[key] - shift_rad if (key := f"{name}_ps_m{k}_phase") in phases else x
            for k, x in enumerate(m.output_phases_rad.tolist())
        ]
        mesh = replace(m, theta_rad=np.array(thetas), phi_rad=np.array(phis), output_phases_rad=np.array(out))
        return replace(stage, mesh=mesh)
    nominal = tech.attenuator_heater_phases(stage.amplitude, stage.phase_rad)
    theta = np.array([phases.get(f"{name}_att_m{k}_theta", t) for k, t in enumerate(nominal[0].tolist())])
    phi = np.array([phases.get(f"{name}_att_m{k}_phi", p) for k, p in enumerate(nominal[1].tolist())])
    # T00 = e^{i phi} (e^{i theta} - 1) / 2 = sin(theta/2) e^{i (phi + theta/2 + pi/2)}
    a = np.sin(theta / 2)
    return replace(
        stage, amplitude=np.abs(a), phase_rad=phi + theta / 2 + math.pi / 2 + np.where(a < 0, math.pi, 0)
    )


def layer_errors(program: PhaseProgram, realised: PhaseProgram) -> dict[str, float]:
    """``||W_realised - W||_F / ||W||_F`` per layer."""
    out = {}
    for a, b in zip(program.layers, realised.layers, strict=True):
        w = a.matrix()
        out[a.name] = float(np.linalg.norm(b.matrix() - w) / max(float(np.linalg.norm(w)), 1e-300))
    return out


def aware_codes(
    program: PhaseProgram,
    specs: Sequence[HeaterSpec],
    cal: Calibration,
    codes: npt.NDArray[np.int64],
    k_full: Any,
    *,
    dac_bits: int,
    sweeps: int = 2,
    fixed: npt.NDArray[np.bool_] | None = None,
) -> npt.NDArray[np.int64]:
    """Quantisation-aware rounding: starting from nearest rounding, move each heater's
    code one step where that lowers its layer's matrix error (coordinate descent over
    ``sweeps`` passes), so later heaters compensate the rounding of earlier ones. The
    ``fixed`` heaters (the free ones, at 0) keep their codes."""
    codes = codes.copy()
    full = (1 << dac_bits) - 1
    for layer in program.layers:
        idx = np.array([k for k, h in enumerate(specs) if h.layer == layer.name], dtype=np.int64)
        sub_specs = [specs[k] for k in idx]
        arrays = _heater_arrays(sub_specs, cal)
        k = k_full[idx][:, idx] if k_full is not None else None
        ids = [h.id for h in sub_specs]
        target = layer.matrix()

        def error(c: npt.NDArray[np.int64]) -> float:
            phases = realised_phases(c, arrays, k, v_max_V=cal.v_max_V, dac_bits=dac_bits)  # noqa: B023
            realised = realised_matrix(layer, dict(zip(ids, phases.tolist(), strict=True)))  # noqa: B023
            return float(np.linalg.norm(realised - target))  # noqa: B023

        local = codes[idx]
        best = error(local)
        for _ in range(sweeps):
            improved = False
            for j in range(local.size):
                if fixed is not None and fixed[idx[j]]:
                    continue
                for step in (-1, 1):
                    if not 0 <= local[j] + step <= full:
                        continue
                    local[j] += step
                    e = error(local)
                    if e < best - 1e-15:
                        best, improved = e, True
                        break
                    local[j] -= step
            if not improved:
                break
        codes[idx] = local
    return codes


# --- files and checks ---------------------------------------------------------------------


def to_json(heater_prog: HeaterProgram, program: PhaseProgram) -> str:
    """The phase program v1 with the lab's ``heater_program`` block and ``heaters`` list."""
    from optinc_compiler.program import to_json as program_json

    heaters = [{c: getattr(h, c) for c in CSV_COLUMNS} for h in heater_prog.heaters]
    return program_json(program, extra={"heater_program": heater_prog.header(), "heaters": heaters})


def write_heater_program(heater_prog: HeaterProgram, program: PhaseProgram, path: Path) -> Path:
    """Write ``.csv`` (the heaters) or ``.json`` (the whole lab program), atomically."""
    from optinc_compiler.files import write_text_atomic

    suffix = path.suffix.lower()
    if suffix == ".csv":
        return write_text_atomic(path, heater_prog.to_csv())
    if suffix == ".json":
        return write_text_atomic(path, to_json(heater_prog, program))
    raise InputError(f"output {str(path)!r}: allowed suffixes .csv (heaters) and .json (phase program)")


@dataclass(frozen=True)
class PadCheck:
    """Heaters without a pad label in the GDS, and heater pads the program does not use."""

    missing: tuple[str, ...]
    unused: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """Every heater has its pad and every heater pad has its heater."""
        return not self.missing and not self.unused

    def problem(self) -> str:
        """One line: the counts and the first heater or pad at fault (labels quoted)."""
        counts = f"{len(self.missing)} heater(s) without a pad, {len(self.unused)} unused pad(s)"
        first = (
            f"heater {quote(self.missing[0])} has no pad label"
            if self.missing
            else f"pad {quote(self.unused[0])} is unused"
        )
        return f"{counts}; {first}"


def pad_labels(gds_path: Path) -> set[str]:
    """Texts on the label layer of a GDS file (the pads' labels), all cells."""
    from optinc_compiler.gds import read_layout

    layout, _ = read_layout(gds_path)
    index = layout.find_layer(*tech.LAYERS["TEXT"])
    if index is None:
        return set()
    labels = set()
    for top in layout.top_cells():
        shapes = top.begin_shapes_rec(index)
        while not shapes.at_end():
            if shapes.shape().is_text():
                labels.add(shapes.shape().text_string)
            shapes.next()
    return labels


def check_pads(heater_prog: HeaterProgram, labels: set[str]) -> PadCheck:
    """Compare the heaters' pads with the GDS labels (ground pads ``GND_*`` aside)."""
    pads = {h.pad for h in heater_prog.heaters}
    signal_labels = {label for label in labels if not label.startswith("GND")}
    return PadCheck(missing=tuple(sorted(pads - labels)), unused=tuple(sorted(signal_labels - pads)))


def summary(
    heater_prog: HeaterProgram, program: PhaseProgram, realised: Mapping[str, npt.NDArray[np.complex128]]
) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the per-layer table ``optinc program`` prints: heaters, power
    (``power_budget``), largest voltage, and what the DAC codes give (``realised``: ``quantised_matrices``;
    relative matrix error, fidelity)."""
    from optinc_compiler.simulate import fidelity

    power = {b.layer: b for b in power_budget(heater_prog).layers}
    rows = []
    for layer in program.layers:
        mine = [h for h in heater_prog.heaters if h.layer == layer.name]
        w, real = layer.matrix(), realised[layer.name]
        error = float(np.linalg.norm(real - w) / max(float(np.linalg.norm(w)), 1e-300))
        fid = fidelity(real, w, scale=1.0).fidelity
        layer_power = power.get(layer.name)
        rows.append(
            [
                layer.name,
                str(len(mine)),
                f"{layer_power.total_power_mW if layer_power is not None else 0.0:.1f}",
                f"{max((h.voltage_V for h in mine), default=0.0):.3f}",
                f"{heater_prog.dac_bits} ({heater_prog.rounding})",
                f"{error:.3g}",
                f"{fid:.6f}",
            ]
        )
    headers = ["layer", "heaters", "power_mW", "max_voltage_V", "dac_bits", "rel_error", "fidelity"]
    return headers, rows
