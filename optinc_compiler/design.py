"""Design files: the YAML spec ``optinc build`` runs (one chip, every stage's settings).

A design file, version 1, with every key and its default (only ``version`` and
``weights`` are required)::

    version: 1                 # format version; only 1 exists
    name: mlp_demo             # default: the design file's folder name
    weights: weights.npz       # relative to the design file (.npy .npz .csv .safetensors .pt)
    layers: [fc1, fc2]         # default: every layer of the weights file, in file order
    method: auto               # auto | unitary | svd | ud | ud-segmented
    mesh: clements             # clements | reck
    block_size: 8              # tile size of ud-segmented (>= 1)
    pdk: optinc                # optinc | cornerstone-si220 (optinc pdks lists them)
    io: grating                # I/O couplers: grating | edge (one layer per chip) | none
    institution: null          # foundry chips: top cell Cell0_<institution> (default OptINC)
    sweep:                     # wavelength sweep of the verification
      start_um: 1.50
      stop_um: 1.60
      points: 101              # 2 .. 10001
    verify:
      models: pdk              # pdk (the chosen PDK's models) | ideal
      wl_um: 1.55              # design wavelength: the fidelity threshold applies here
      min_fidelity: 0.999      # 0 .. 1
      monte_carlo_samples: 200 # 0 turns the Monte Carlo off
      coupler_sigma: 0.01      # std of each coupler's kappa^2 (0 .. 0.5)
      phase_sigma_rad: 0.005   # std of each heater's phase (>= 0)
      loss_sigma_dB: 0.0       # scale of each cell's extra loss (>= 0)
      seed: 1                  # Monte Carlo seed (>= 0)
      min_yield: null          # Monte Carlo yield threshold (0 .. 1), null: not judged
      mc_min_fidelity: null    # fidelity a sample needs to count as good (0 .. 1), null: min_fidelity
    dac_bits: 12               # DAC resolution of the heater drivers (1 .. 24)
    heater_power_budget_mW: null  # warn above this total heater power; null: the PDK's
    calibration: null          # chip calibration file, relative to the design file
    program: null              # a phase program to build instead of compiling the weights
                               # (trained phases, e.g. the OptINC aggregator); the weights
                               # are then its targets and must match it

Every error is one line naming the file, the key by its YAML path (``verify.min_fidelity``)
and what is allowed: unknown keys list the allowed ones.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from optinc_compiler.errors import InputError
from optinc_compiler.files import read_text, shorten
from optinc_compiler.guard import brief
from optinc_compiler.limits import DAC_BITS_RANGE, MAX_MONTE_CARLO_SAMPLES, SWEEP_POINTS_RANGE
from optinc_compiler.names import MAX_NAME_CHARS, name_problem
from optinc_compiler.pdks import PDK_NAMES

VERSION = 1
METHODS = ("auto", "unitary", "svd", "ud", "ud-segmented")
MESHES = ("clements", "reck")
PDKS = PDK_NAMES
IO_KINDS = ("grating", "edge", "none")
MODEL_SETS = ("pdk", "ideal")


@dataclass(frozen=True)
class SweepSpec:
    """Wavelength sweep of the verification: ``points`` wavelengths from start to stop."""

    start_um: float = 1.50
    stop_um: float = 1.60
    points: int = 101

    def wavelengths_um(self) -> tuple[float, ...]:
        """The swept wavelengths, evenly spaced, both ends included."""
        return tuple(float(w) for w in np.linspace(self.start_um, self.stop_um, self.points))


@dataclass(frozen=True)
class VerifySpec:
    """Models, design wavelength, Monte Carlo settings and pass thresholds."""

    models: str = "pdk"
    wl_um: float = 1.55
    min_fidelity: float = 0.999
    monte_carlo_samples: int = 200
    coupler_sigma: float = 0.01
    phase_sigma_rad: float = 0.005
    loss_sigma_dB: float = 0.0
    seed: int = 1
    min_yield: float | None = None
    mc_min_fidelity: float | None = None


@dataclass(frozen=True)
class Design:
    """A parsed, validated design file.

    Attributes:
        source: the design file as given (relative paths in it are relative to its folder).
        name: design name (report title, default the design file's folder name).
        weights: weights file as written in the design (relative to ``source``'s folder).
        layers: layer names to compile, in order; empty: every layer.
        method, mesh, block_size: compile options (``CompileOptions``).
        pdk: PDK to draw with (``optinc_compiler.pdks.PDK_NAMES``).
        io: I/O coupler kind, ``grating``, ``edge`` or ``none`` (``optinc layout --io``).
        institution: foundry chips' top cell is ``Cell0_<institution>`` (``optinc layout
            --institution``); None: the PDK's default.
        sweep: wavelength sweep of the verification.
        verify: verification models, thresholds and Monte Carlo settings.
        dac_bits: DAC resolution of the heater drivers.
        heater_power_budget_mW: warn (``--strict``: fail) above this total heater power;
            None: the PDK's (``pdk.tech.LIMITS``).
        calibration: calibration file as written (relative to ``source``'s folder), or None.
        program: a phase program to build as it is (relative to ``source``'s folder), or None.
    """

    source: Path
    weights: str
    name: str
    layers: tuple[str, ...] = ()
    method: str = "auto"
    mesh: str = "clements"
    block_size: int = 8
    pdk: str = "optinc"
    io: str = "grating"
    institution: str | None = None
    sweep: SweepSpec = field(default_factory=SweepSpec)
    verify: VerifySpec = field(default_factory=VerifySpec)
    dac_bits: int = 12
    heater_power_budget_mW: float | None = None
    calibration: str | None = None
    program: str | None = None

    @property
    def program_path(self) -> Path | None:
        """The phase program to build instead of compiling, resolved (or None)."""
        return None if self.program is None else self.source.parent / self.program

    @property
    def weights_path(self) -> Path:
        """The weights file, resolved against the design file's folder."""
        return self.source.parent / self.weights

    @property
    def calibration_path(self) -> Path | None:
        """The calibration file, resolved against the design file's folder (or None)."""
        return None if self.calibration is None else self.source.parent / self.calibration


TOP_KEYS = (
    "version",
    "name",
    "weights",
    "layers",
    "method",
    "mesh",
    "block_size",
    "pdk",
    "io",
    "institution",
    "sweep",
    "verify",
    "dac_bits",
    "heater_power_budget_mW",
    "calibration",
    "program",
)
SWEEP_KEYS = ("start_um", "stop_um", "points")
VERIFY_KEYS = (
    "models",
    "wl_um",
    "min_fidelity",
    "monte_carlo_samples",
    "coupler_sigma",
    "phase_sigma_rad",
    "loss_sigma_dB",
    "seed",
    "min_yield",
    "mc_min_fidelity",
)


class _Reader:
    """Typed access to one mapping of the design file; errors name file and key path."""

    def __init__(self, doc: Mapping[str, Any], *, source: str, prefix: str, allowed: tuple[str, ...]):
        self.doc, self.source, self.prefix = doc, source, prefix
        for key in doc:
            if key not in allowed:
                raise self.error(
                    f"unknown key {self.path(str(key))!r}; allowed{' in ' + prefix if prefix else ''}: "
                    + ", ".join(allowed)
                )

    def path(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def error(self, message: str) -> InputError:
        return InputError(f"design {self.source}: {message}")

    def value(self, key: str, check: Callable[[Any], bool], expected: str, default: Any) -> Any:
        """The value at ``key`` (``default`` when absent), or an error naming what is expected."""
        if key not in self.doc:
            return default
        value = self.doc[key]
        if not check(value):
            raise self.error(f"{self.path(key)} is {_show(value)}; expected {expected}")
        return value

    def choice(self, key: str, allowed: tuple[str, ...], default: str) -> str:
        return str(self.value(key, lambda v: v in allowed, "one of " + ", ".join(allowed), default))

    def integer(self, key: str, low: int, high: int | None, default: int) -> int:
        bound = f"an integer >= {low}" if high is None else f"an integer from {low} to {high}"

        def ok(v: Any) -> bool:
            return _is_int(v) and v >= low and (high is None or v <= high)

        return int(self.value(key, ok, bound, default))

    def number(self, key: str, low: float, high: float | None, default: float) -> float:
        """A finite number in [low, high] (integers accepted)."""
        return float(self.value(key, _in_range(low, high), _range_text(low, high), default))

    def optional_number(
        self, key: str, low: float, high: float | None, default: float | None
    ) -> float | None:
        """A number in [low, high], or None when absent (``default``) or written as null."""
        in_range = _in_range(low, high)
        value = self.value(
            key, lambda v: v is None or in_range(v), _range_text(low, high) + " or null", default
        )
        return None if value is None else float(value)

    def text(self, key: str, default: str | None) -> str | None:
        """A non-empty string; null is allowed (and gives None) where the default is None."""

        def ok(v: Any) -> bool:
            return (v is None and default is None) or _non_empty(v)

        return self.value(key, ok, "a non-empty string" + (" or null" if default is None else ""), default)

    def section(self, key: str, allowed: tuple[str, ...]) -> _Reader:
        sub = self.value(key, lambda v: isinstance(v, dict), "a mapping of " + ", ".join(allowed), {})
        return _Reader(sub, source=self.source, prefix=self.path(key), allowed=allowed)


def _in_range(low: float, high: float | None) -> Callable[[Any], bool]:
    def ok(v: Any) -> bool:
        return _is_number(v) and v >= low and (high is None or v <= high)

    return ok


def _range_text(low: float, high: float | None) -> str:
    return f"a number >= {low}" if high is None else f"a number from {low} to {high}"


def _non_empty(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _show(value: Any) -> str:
    """A value as the user wrote it, cut short (bounded work on huge values)."""
    return shorten(value, 40)


def load_design(path: str | os.PathLike[str]) -> Design:
    """Read and validate a design file; InputError (one line) on any problem."""
    p = Path(path)
    return parse_design(read_text(p, what="design file", max_bytes=MAX_DESIGN_BYTES), source=p)


#: Largest design file read (a design is a few dozen lines; its data live in other files).
MAX_DESIGN_BYTES = 1024 * 1024


def _design_loader() -> type:
    """yaml's SafeLoader (no tags that build objects) that also refuses aliases (a design
    needs none, and a few lines of nested aliases expand to gigabytes: "billion laughs")
    and a key given twice in one mapping (YAML keeps the last silently)."""
    import yaml

    class DesignLoader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise yaml.composer.ComposerError(
                    None, None, "aliases (*name) are not allowed in design files", event.start_mark
                )
            return super().compose_node(parent, index)

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:  # an unhashable key: SafeLoader's own error names it
                    break
                if duplicate:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {shorten(key)} appears twice", key_node.start_mark
                    )
            return super().construct_mapping(node, deep=deep)

    return DesignLoader


def parse_design(text: str, *, source: Path) -> Design:
    """Validate the YAML ``text`` of a design file at ``source`` (for relative paths)."""
    import yaml

    try:
        doc = yaml.load(text, Loader=_design_loader())
    except RecursionError:
        raise InputError(f"design {source}: nests deeper than a design file does") from None
    except ValueError as exc:  # int() past the digit limit, a date like 2020-13-45
        if "integer string conversion" in str(exc):
            why = (
                f"an integer of more than {sys.get_int_max_str_digits():,} digits; allowed: -2^63 .. 2^63 - 1"
            )
        else:
            why = brief(exc)
        raise InputError(f"design {source}: {why}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise InputError(f"design {source}: not valid YAML{where}: {problem}") from None
    if not isinstance(doc, dict):
        raise InputError(f"design {source}: expected a mapping of keys ({', '.join(TOP_KEYS)})")
    top = _Reader(doc, source=str(source), prefix="", allowed=TOP_KEYS)
    if "version" not in doc:
        raise top.error(f"missing key 'version' (this tool reads version {VERSION})")
    top.value("version", lambda v: _is_int(v) and v == VERSION, f"{VERSION}", VERSION)
    if "weights" not in doc:
        raise top.error("missing key 'weights' (the weights file, relative to the design file)")
    design = Design(
        source=source,
        weights=str(top.value("weights", _non_empty, "a file name (relative to the design file)", "")),
        name=str(
            top.value(
                "name",
                lambda v: name_problem(v, what="design") is None,
                f"text of 1 to {MAX_NAME_CHARS} characters without control characters",
                source.resolve().parent.name or "design",
            )
        ),
        layers=_layers(top),
        method=top.choice("method", METHODS, "auto"),
        mesh=top.choice("mesh", MESHES, "clements"),
        block_size=top.integer("block_size", 1, None, 8),
        pdk=top.choice("pdk", PDKS, "optinc"),
        io=top.choice("io", IO_KINDS, "grating"),
        institution=top.text("institution", None),
        sweep=_sweep(top.section("sweep", SWEEP_KEYS)),
        verify=_verify(top.section("verify", VERIFY_KEYS)),
        dac_bits=top.integer("dac_bits", *DAC_BITS_RANGE, 12),
        heater_power_budget_mW=_budget(top),
        calibration=top.text("calibration", None),
        program=top.text("program", None),
    )
    if design.institution is not None:
        if design.pdk == "optinc":
            raise top.error("institution names the top cell of foundry chips; pdk optinc's is optinc_chip")
        from optinc_compiler.cornerstone.chip import top_cell_name

        try:
            top_cell_name(design.institution)
        except InputError as exc:
            raise top.error(str(exc)) from None
    if design.pdk == "cornerstone-si220" and design.io != "grating":
        raise top.error(
            f"io is {design.io!r}; the cornerstone-si220 die has grating couplers only: expected grating"
        )
    _check_files(design, top)
    return design


def _layers(top: _Reader) -> tuple[str, ...]:
    def ok(v: Any) -> bool:
        return isinstance(v, list) and bool(v) and all(isinstance(x, str) and x for x in v)

    layers = top.value("layers", ok, "a non-empty list of layer names", [])
    if len(set(layers)) != len(layers):
        raise top.error(f"layers lists a layer twice: {_show(layers)}")
    return tuple(layers)


def _sweep(r: _Reader) -> SweepSpec:
    d = SweepSpec()
    start = r.number("start_um", 0.5, 3.0, d.start_um)
    stop = r.number("stop_um", 0.5, 3.0, d.stop_um)
    if not start < stop:
        raise r.error(f"sweep.start_um ({start}) must be below sweep.stop_um ({stop})")
    return SweepSpec(start_um=start, stop_um=stop, points=r.integer("points", *SWEEP_POINTS_RANGE, d.points))


def _verify(r: _Reader) -> VerifySpec:
    d = VerifySpec()
    return VerifySpec(
        models=r.choice("models", MODEL_SETS, d.models),
        wl_um=r.number("wl_um", 0.5, 3.0, d.wl_um),
        min_fidelity=r.number("min_fidelity", 0.0, 1.0, d.min_fidelity),
        monte_carlo_samples=r.integer(
            "monte_carlo_samples", 0, MAX_MONTE_CARLO_SAMPLES, d.monte_carlo_samples
        ),
        coupler_sigma=r.number("coupler_sigma", 0.0, 0.5, d.coupler_sigma),
        phase_sigma_rad=r.number("phase_sigma_rad", 0.0, None, d.phase_sigma_rad),
        loss_sigma_dB=r.number("loss_sigma_dB", 0.0, None, d.loss_sigma_dB),
        seed=r.integer("seed", 0, None, d.seed),
        min_yield=r.optional_number("min_yield", 0.0, 1.0, d.min_yield),
        mc_min_fidelity=r.optional_number("mc_min_fidelity", 0.0, 1.0, d.mc_min_fidelity),
    )


def _budget(r: _Reader) -> float | None:
    value = r.value(
        "heater_power_budget_mW",
        lambda v: v is None or (_is_number(v) and v > 0),
        "a number > 0 or null",
        None,
    )
    return None if value is None else float(value)


def _check_files(design: Design, top: _Reader) -> None:
    """The weights (and calibration) files exist, relative to the design file."""
    folder = str(design.source.parent)
    for what, written, path in (
        ("weights file", design.weights, design.weights_path),
        ("program file", design.program, design.program_path),
        ("calibration file", design.calibration, design.calibration_path),
    ):
        if path is None or path.is_file():
            continue
        if path.exists():
            raise top.error(f"{what} {written!r} is not a regular file (a folder, FIFO or device)")
        raise top.error(
            f"{what} {written!r} does not exist (paths are relative to the design file's folder {folder!r})"
        )
