r"""The phase program: compiled layers as meshes and diagonals, and its JSON file (v1).

A layer ``W`` (out x in) is ``W = scale * R_out @ S_last @ ... @ S_1 @ E_in``
(docs/architecture.md): inputs enter modes 0..in-1 of ``M = max(out, in)`` waveguides, each stage
acts on modes 0..n_modes-1 (the others pass straight through), outputs are read from
modes 0..out-1. A segmented layer is a grid of such blocks, each on its own waveguides;
the outputs of the blocks of one block row add up (coherently) to the layer output,
``W = scale * sum_b embed(W_b)``.

The JSON file (``schemas/phase-program-v1.schema.json``)::

    {"format": "optinc-phase-program", "version": 1, "generator": ..., "convention": {...},
     "layers": [{"name", "shape": [out, in], "method", "scale", "approximation": {...},
                 "stages": [stage, ...]}  # or "block_size" and "blocks"
                ]}

with a stage either ``{"kind": "mesh", "name", "topology", "n_modes", "mzis": [{"id",
"column", "mode", "theta", "phi"}, ...], "output_phases": [...]}`` (MZIs in the order
light meets them) or ``{"kind": "diagonal", "name", "n_modes", "amplitude": [...],
"phase": [...]}``. Phases are in radians. Anyone can rebuild every layer from the file
alone with the convention in :mod:`optinc_compiler.mzi`.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from optinc_compiler import __version__
from optinc_compiler.errors import InputError, ProgramFormatError
from optinc_compiler.files import read_text, shorten, write_text_atomic
from optinc_compiler.guard import brief, parse_int, quote, unique_object
from optinc_compiler.mzi import TWO_PI, Mesh, apply_mesh
from optinc_compiler.names import name_problem

FORMAT = "optinc-phase-program"
VERSION = 1
METHODS = ("unitary", "svd", "ud", "ud-segmented")
EXACT_METHODS = ("unitary", "svd")

#: The convention block written into every program (docs/architecture.md, "The MZI convention").
CONVENTION = {
    "coupler": "B = [[1, 1j], [1j, 1]] / sqrt(2)",
    "phase_shifter": "P(x) = diag(exp(1j*x), 1), on the upper arm (lower mode index)",
    "mzi": "T(theta, phi) = B @ P(theta) @ B @ P(phi) on modes (mode, mode+1)",
    "mesh": "U = diag(exp(1j*output_phases)) @ T_K @ ... @ T_1, mzis in light order",
    "diagonal": "diag(amplitude * exp(1j*phase))",
    "layer": "W = scale * R_out @ S_last @ ... @ S_1 @ E_in; stage on modes 0..n_modes-1",
    "blocks": "W = scale * sum of blocks placed at (row_offset, col_offset)",
    "smatrix": "S[out, in]",
    "units": "phases in rad",
}


# ------------------------------------------------------------------------ data model


@dataclass(frozen=True, eq=False)
class MeshStage:
    """An MZI mesh stage; ``mzi_ids[k]`` names MZI k (layout instance, heaters, pads)."""

    name: str
    mesh: Mesh
    mzi_ids: tuple[str, ...]

    @property
    def n_modes(self) -> int:
        """Waveguides the stage acts on."""
        return self.mesh.n_modes

    def apply(self, fields: npt.NDArray[np.complex128]) -> npt.NDArray[np.complex128]:
        """``U @ fields`` for fields (n_modes, k)."""
        return apply_mesh(self.mesh, fields)


@dataclass(frozen=True, eq=False)
class DiagonalStage:
    """A column of attenuators (|t| <= 1) with optional phases: ``diag(a * e^{i p})``."""

    name: str
    amplitude: npt.NDArray[np.float64]
    phase_rad: npt.NDArray[np.float64]

    @property
    def n_modes(self) -> int:
        """Waveguides the stage acts on."""
        return int(self.amplitude.size)

    def apply(self, fields: npt.NDArray[np.complex128]) -> npt.NDArray[np.complex128]:
        """``diag(a e^{ip}) @ fields`` for fields (n_modes, k)."""
        t = self.amplitude * np.exp(1j * self.phase_rad)
        return np.asarray(t[:, None] * fields)


Stage = MeshStage | DiagonalStage


@dataclass(frozen=True, eq=False)
class Block:
    """A sub-circuit realising ``W[rows, cols]`` of a segmented layer (or a whole layer)."""

    row_offset: int
    col_offset: int
    shape: tuple[int, int]
    stages: tuple[Stage, ...]

    def matrix(self) -> npt.NDArray[np.complex128]:
        """``R_out @ S_last @ ... @ S_1 @ E_in`` (without the layer scale)."""
        return chain_matrix(self.stages, self.shape)


#: Layer ids and MZI ids: they name layout instances, cells, heaters and pads, and
#: gdsfactory's netlist renames instances that start with a digit (``0_x`` -> ``_0_x``).
ID_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def layer_id(layer_name: str) -> str:
    """The id a layer's instances, cells, heaters and pads are named by: the name with
    runs of other characters than [A-Za-z0-9_] replaced by ``_``, and ``L`` in front
    when it would not start with a letter (``0`` -> ``L0``, ``fc-1`` -> ``fc_1``). A
    program stores the id beside the name wherever the two differ, so the mapping is
    made once (at compile time) and read back, never guessed again."""
    safe = re.sub(r"[^A-Za-z0-9_]+", "_", layer_name).strip("_") or "layer"
    return safe if ID_PATTERN.fullmatch(safe) else f"L{safe}"


@dataclass(frozen=True, eq=False)
class Layer:
    """One compiled weight matrix.

    Attributes:
        name: the layer name from the weights file (any text).
        shape: (out, in) of the weight matrix.
        method: ``unitary``, ``svd``, ``ud`` or ``ud-segmented``.
        scale: global factor (the largest singular value for svd; 1 for unitary).
        blocks: one block at (0, 0) covering ``shape``, or the tiles of a segmented layer.
        relative_error: ``||W - W_rebuilt||_F / ||W||_F`` measured at compile time.
        exact: False for the unitary x diagonal approximations.
        block_size: tile size of a segmented layer, else None.
        id: the identifier of its instances, heaters and pads (``ID_PATTERN``);
            empty: :func:`layer_id` of the name.
    """

    name: str
    shape: tuple[int, int]
    method: str
    scale: float
    blocks: tuple[Block, ...]
    relative_error: float
    exact: bool
    block_size: int | None = None
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            object.__setattr__(self, "id", layer_id(self.name))
        elif not ID_PATTERN.fullmatch(self.id):
            raise InputError(
                f"layer {self.name!r}: id {self.id!r} is not a letter followed by letters, digits and _"
            )

    @property
    def stages(self) -> tuple[Stage, ...]:
        """All stages of all blocks, in block order."""
        return tuple(stage for block in self.blocks for stage in block.stages)

    @property
    def n_mzis(self) -> int:
        """MZIs in all meshes of the layer."""
        return sum(s.mesh.n_mzis for s in self.stages if isinstance(s, MeshStage))

    @property
    def n_attenuators(self) -> int:
        """Attenuators in all diagonal stages of the layer."""
        return sum(s.n_modes for s in self.stages if isinstance(s, DiagonalStage))

    @property
    def depth(self) -> int:
        """Longest optical path in columns: mesh columns plus one per diagonal stage."""
        return max(
            sum(s.mesh.depth if isinstance(s, MeshStage) else 1 for s in b.stages) for b in self.blocks
        )

    def matrix(self) -> npt.NDArray[np.complex128]:
        """Rebuild the layer's (out x in) matrix from its stages."""
        out = np.zeros(self.shape, dtype=np.complex128)
        for block in self.blocks:
            r, c = block.row_offset, block.col_offset
            out[r : r + block.shape[0], c : c + block.shape[1]] += block.matrix()
        return self.scale * out


@dataclass(frozen=True, eq=False)
class PhaseProgram:
    """Compiled layers plus the tool version that made them."""

    layers: tuple[Layer, ...]
    generator: str = f"optinc-compiler {__version__}"
    #: name of the chip calibration the phases were error-corrected for (None: ideal chip)
    calibration: str | None = None

    def __post_init__(self) -> None:
        problem = layer_naming_problem([(layer.name, layer.id) for layer in self.layers])
        if problem is not None:
            raise InputError(problem)

    def layer(self, name: str) -> Layer:
        """The layer called ``name`` (or with that id); InputError naming the known ones
        otherwise."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        for layer in self.layers:
            if layer.id == name:
                return layer
        known = brief(", ".join(repr(x.name) for x in self.layers))
        raise InputError(f"no layer {quote(name)} in the program; layers: {known}")


def layer_naming_problem(names_and_ids: Sequence[tuple[str, str]]) -> str | None:
    """Why these (name, id) pairs cannot be one program's layers, or None: names must be
    names (``names.name_problem``) and names and ids must each be unique."""
    for name, _ in names_and_ids:
        problem = name_problem(name, what="layer")
        if problem is not None:
            return problem
    for key in (0, 1):
        seen: dict[str, str] = {}
        for pair in names_and_ids:
            if pair[key] in seen:
                what = "name" if key == 0 else "id"
                return (
                    f"layers {seen[pair[key]]!r} and {pair[0]!r} both have the {what} {pair[key]!r}; "
                    "each layer needs its own (its instances, heaters and pads are named by it)"
                )
            seen[pair[key]] = pair[0]
    return None


def chain_matrix(stages: Sequence[Stage], shape: tuple[int, int]) -> npt.NDArray[np.complex128]:
    """``R_out @ S_last @ ... @ S_1 @ E_in`` for stages on modes 0..n_modes-1 of M."""
    rows, cols = shape
    n = max(rows, cols)
    fields = np.eye(n, cols, dtype=np.complex128)
    for stage in stages:
        k = stage.n_modes
        fields[:k] = stage.apply(fields[:k])
    return fields[:rows]


def mzi_ids(prefix: str, stage: str, mesh: Mesh) -> tuple[str, ...]:
    """Stable MZI ids ``{prefix}_{stage}_c{column}_m{mode}``."""
    return tuple(
        f"{prefix}_{stage}_c{c}_m{m}" for c, m in zip(mesh.columns.tolist(), mesh.modes.tolist(), strict=True)
    )


# ------------------------------------------------------------------------------ JSON


def to_json(program: PhaseProgram, *, extra: dict[str, Any] | None = None) -> str:
    """Serialise to the v1 JSON text: deterministic, one MZI per line, floats round-trip.
    ``extra``: further top-level keys the schema allows (the lab's ``heater_program`` and
    ``heaters``, from ``optinc_compiler.calibration``)."""
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "generator": program.generator,
        "convention": CONVENTION,
        **({"calibration": program.calibration} if program.calibration is not None else {}),
        "layers": [_layer_to_dict(layer) for layer in program.layers],
        **(extra or {}),
    }
    return "".join(_emit(doc, 0)) + "\n"


def _layer_to_dict(layer: Layer) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": layer.name,
        **({"id": layer.id} if layer.id != layer.name else {}),
        "shape": list(layer.shape),
        "method": layer.method,
        "scale": float(layer.scale),
        "approximation": {"exact": layer.exact, "relative_error": float(layer.relative_error)},
    }
    if layer.block_size is None:
        out["stages"] = [_stage_to_dict(s) for s in layer.blocks[0].stages]
    else:
        out["block_size"] = layer.block_size
        out["blocks"] = [
            {
                "row_offset": b.row_offset,
                "col_offset": b.col_offset,
                "shape": list(b.shape),
                "stages": [_stage_to_dict(s) for s in b.stages],
            }
            for b in layer.blocks
        ]
    return out


def _stage_to_dict(stage: Stage) -> dict[str, Any]:
    if isinstance(stage, DiagonalStage):
        return {
            "kind": "diagonal",
            "name": stage.name,
            "n_modes": stage.n_modes,
            "amplitude": stage.amplitude.tolist(),
            "phase": stage.phase_rad.tolist(),
        }
    m = stage.mesh
    return {
        "kind": "mesh",
        "name": stage.name,
        "topology": m.topology,
        "n_modes": m.n_modes,
        "mzis": _MziLines(stage),
        "output_phases": m.output_phases_rad.tolist(),
    }


class _MziLines(list[str]):
    """The MZIs of a mesh pre-rendered one JSON object per line (the hot path of
    writing a program: ~65,000 MZIs at N=256). Ids match ``[A-Za-z0-9_]+`` (schema), so
    they need no escaping; ``float.__repr__`` is what ``json.dumps`` writes."""

    def __init__(self, stage: MeshStage) -> None:
        m = stage.mesh
        super().__init__(
            f'{{"id": "{i}", "column": {c}, "mode": {md}, "theta": {t!r}, "phi": {p!r}}}'
            for i, c, md, t, p in zip(
                stage.mzi_ids,
                m.columns.tolist(),
                m.modes.tolist(),
                m.theta_rad.tolist(),
                m.phi_rad.tolist(),
                strict=True,
            )
        )


def _emit(obj: Any, level: int) -> Iterator[str]:
    """Pretty JSON: the top two levels and containers of containers open up; flat dicts
    and lists deeper down (an MZI, a list of phases) stay on one line."""
    pad = "  " * (level + 1)
    if isinstance(obj, _MziLines):
        yield ("[\n" + pad + f",\n{pad}".join(obj) + "\n" + "  " * level + "]") if obj else "[]"
    elif isinstance(obj, dict) and (level <= 1 or any(_is_nested(v) for v in obj.values())):
        yield "{\n"
        for i, (key, value) in enumerate(obj.items()):
            yield f"{pad}{json.dumps(key)}: "
            yield from _emit(value, level + 1)
            yield ",\n" if i < len(obj) - 1 else "\n"
        yield "  " * level + "}"
    elif isinstance(obj, list) and obj and all(isinstance(v, dict) for v in obj):
        yield "[\n"
        for i, value in enumerate(obj):
            yield pad
            yield from _emit(value, level + 1)
            yield ",\n" if i < len(obj) - 1 else "\n"
        yield "  " * level + "]"
    else:
        yield json.dumps(obj, allow_nan=False)


def _is_nested(value: Any) -> bool:
    if isinstance(value, dict | _MziLines):
        return True
    return isinstance(value, list) and any(isinstance(v, dict | list) for v in value)


def save(program: PhaseProgram, path: str | os.PathLike[str], *, inputs: Sequence[Path | None] = ()) -> Path:
    """Write the program atomically (``files.write_text_atomic``); ``inputs``: files the
    output must not be."""
    return write_text_atomic(Path(path), to_json(program), inputs=inputs)


def schema() -> dict[str, Any]:
    """The JSON Schema of phase program v1 shipped with the package."""
    text = resources.files("optinc_compiler").joinpath("schemas/phase-program-v1.schema.json")
    return dict(json.loads(text.read_text(encoding="utf-8")))


def load(path: str | os.PathLike[str]) -> PhaseProgram:
    """Read and validate a phase-program file (schema, then physical consistency)."""
    p = Path(path)
    try:
        text = read_text(p, what="phase program")
    except InputError as exc:
        raise ProgramFormatError(str(exc)) from None
    return from_json(text, source=str(p))


def from_json(text: str, *, source: str = "<string>") -> PhaseProgram:
    """Parse v1 JSON text; ProgramFormatError with the JSON path of the first problem."""
    try:
        doc = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            parse_int=parse_int,
            object_pairs_hook=unique_object,
        )
    except InputError as exc:
        raise ProgramFormatError(f"{source}: {exc}") from None
    except (json.JSONDecodeError, ValueError) as exc:
        raise ProgramFormatError(f"{source} is not valid JSON: {exc}") from None
    except RecursionError:
        raise ProgramFormatError(f"{source} nests deeper than a phase program does") from None
    _check_header(doc, source)
    _check_schema(doc, source)
    layers = tuple(_layer_from_dict(d, f"{source}: layers[{i}]") for i, d in enumerate(doc["layers"]))
    problem = layer_naming_problem([(layer.name, layer.id) for layer in layers])
    if problem is not None:
        raise ProgramFormatError(f"{source}: {problem}")
    _check_unique_ids(layers, source)
    calibration = doc.get("calibration")
    try:
        return PhaseProgram(
            layers=layers,
            generator=str(doc.get("generator", "unknown")),
            calibration=str(calibration) if calibration is not None else None,
        )
    except InputError as exc:
        raise ProgramFormatError(f"{source}: {exc}") from None


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed; phases and amplitudes must be finite numbers")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} overflows float64; numbers must be finite")
    return value


def _check_header(doc: Any, source: str) -> None:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ProgramFormatError(f'{source} is not a phase program: expected "format": "{FORMAT}"')
    if doc.get("version") != VERSION:
        raise ProgramFormatError(
            f"{source} has phase-program version {doc.get('version')!r}; this optinc reads version {VERSION}"
        )


def _check_schema(doc: dict[str, Any], source: str) -> None:
    import jsonschema  # lazy: only the load path needs it

    validator = jsonschema.Draft202012Validator(schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(_without_mzis(doc)))
    if error is not None:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        raise ProgramFormatError(f"{source}: {where.lstrip('.') or 'document'}: {_schema_message(error)}")


def _schema_message(error: Any) -> str:
    """jsonschema's message with the value cut short, and a pattern said in words."""
    value = shorten(error.instance)
    if error.validator == "pattern":
        return f"{value} is not allowed: {error.schema.get('description', 'see the schema')}"
    if error.validator == "maxLength":
        return f"{value} is longer than {error.validator_value} characters"
    return (
        error.message.replace(repr(error.instance), value)
        if len(repr(error.instance)) > 80
        else error.message
    )


def _without_mzis(doc: dict[str, Any]) -> dict[str, Any]:
    """A copy of the document with every mesh's ``mzis`` emptied (see :func:`_mzi_fields`)."""

    def stage(s: Any) -> Any:
        return {**s, "mzis": []} if isinstance(s, dict) and isinstance(s.get("mzis"), list) else s

    def stages(container: Any) -> Any:
        if isinstance(container, dict) and isinstance(container.get("stages"), list):
            return {**container, "stages": [stage(s) for s in container["stages"]]}
        return container

    def layer(d: Any) -> Any:
        d = stages(d)
        if isinstance(d, dict) and isinstance(d.get("blocks"), list):
            d = {**d, "blocks": [stages(b) for b in d["blocks"]]}
        return d

    layers = doc.get("layers")
    return {**doc, "layers": [layer(d) for d in layers]} if isinstance(layers, list) else doc


def _layer_from_dict(d: dict[str, Any], where: str) -> Layer:
    shape = (int(d["shape"][0]), int(d["shape"][1]))
    if "blocks" in d:
        blocks = tuple(
            _block_from_dict(b, (b["row_offset"], b["col_offset"]), f"{where}.blocks[{i}]")
            for i, b in enumerate(d["blocks"])
        )
        for b in blocks:
            if b.row_offset + b.shape[0] > shape[0] or b.col_offset + b.shape[1] > shape[1]:
                raise ProgramFormatError(
                    f"{where}: block at {b.row_offset, b.col_offset} "
                    f"of shape {b.shape} lies outside the layer {shape}"
                )
        block_size: int | None = int(d["block_size"])
    else:
        blocks = (_block_from_dict({"shape": d["shape"], "stages": d["stages"]}, (0, 0), where),)
        block_size = None
    approx = d["approximation"]
    if bool(approx["exact"]) != (d["method"] in EXACT_METHODS):
        raise ProgramFormatError(
            f"{where}: method {d['method']!r} has approximation.exact = {str(not approx['exact']).lower()}"
        )
    if "id" in d and not ID_PATTERN.fullmatch(d["id"]):
        raise ProgramFormatError(f"{where}.id: {d['id']!r} is not a letter followed by letters, digits and _")
    layer = Layer(
        name=d["name"],
        id=d.get("id", ""),
        shape=shape,
        method=d["method"],
        scale=float(d["scale"]),
        blocks=blocks,
        relative_error=float(approx["relative_error"]),
        exact=bool(approx["exact"]),
        block_size=block_size,
    )
    problem = segmented_tiling_problem(layer)
    if problem is not None:
        raise ProgramFormatError(f"{where}: {problem}")
    return layer


def segmented_tiling_problem(layer: Layer) -> str | None:
    """What keeps a segmented layer's blocks from being the chip's tiles, or None: they
    must be the ``block_size`` grid over ``shape`` exactly (each tile once, edge tiles
    smaller), each with a mesh stage, stage names unique across the blocks."""
    k = layer.block_size
    if k is None:
        return None
    n_out, n_in = layer.shape
    want = {
        (r, c): (min(k, n_out - r), min(k, n_in - c)) for r in range(0, n_out, k) for c in range(0, n_in, k)
    }
    got = [(b.row_offset, b.col_offset) for b in layer.blocks]
    if sorted(got) != sorted(want):
        return (
            f"its blocks at {sorted(got)} are not the {k} x {k} tiles of a {n_out}x{n_in} layer "
            f"(offsets {sorted(want)})"
        )
    for b in layer.blocks:
        if b.shape != want[(b.row_offset, b.col_offset)]:
            return (
                f"its block at {(b.row_offset, b.col_offset)} has shape {b.shape}; "
                f"the tile there is {want[(b.row_offset, b.col_offset)]}"
            )
        if not any(isinstance(st, MeshStage) for st in b.stages):
            return f"its block at {(b.row_offset, b.col_offset)} has no mesh stage"
    names = [st.name for b in layer.blocks for st in b.stages]
    if len(set(names)) != len(names):
        return "two of its blocks have stages of the same name"
    return None


def _block_from_dict(d: dict[str, Any], offset: tuple[int, int], where: str) -> Block:
    shape = (int(d["shape"][0]), int(d["shape"][1]))
    n = max(shape)
    stages = []
    for i, s in enumerate(d["stages"]):
        stage = _stage_from_dict(s, f"{where}.stages[{i}]")
        if stage.n_modes > n:
            raise ProgramFormatError(
                f"{where}.stages[{i}] acts on {stage.n_modes} modes; the layer has {n} (max of shape)"
            )
        stages.append(stage)
    return Block(row_offset=int(offset[0]), col_offset=int(offset[1]), shape=shape, stages=tuple(stages))


def _stage_from_dict(d: dict[str, Any], where: str) -> Stage:
    n = int(d["n_modes"])
    if d["kind"] == "diagonal":
        amp = np.asarray(d["amplitude"], dtype=np.float64)
        phase = np.asarray(d["phase"], dtype=np.float64)
        if amp.size != n or phase.size != n:
            raise ProgramFormatError(f"{where}: amplitude and phase need n_modes = {n} entries")
        return DiagonalStage(name=d["name"], amplitude=amp, phase_rad=phase)
    ids, columns, modes, theta, phi = _mzi_fields(d["mzis"], where, n_modes=n)
    mesh = Mesh(
        topology=d["topology"],
        n_modes=n,
        modes=modes,
        columns=columns,
        theta_rad=theta,
        phi_rad=phi,
        output_phases_rad=np.asarray(d["output_phases"], dtype=np.float64),
    )
    _check_mesh(mesh, where)
    return MeshStage(name=d["name"], mesh=mesh, mzi_ids=ids)


_MZI_KEYS = frozenset(("id", "column", "mode", "theta", "phi"))
_MZI_ID_FORM = "{layer id}_{stage}_c{column}_m{mode}"


def _mzi_fields(
    mzis: list[Any], where: str, *, n_modes: int
) -> tuple[
    tuple[str, ...],
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
]:
    """The MZI records as arrays, checked as the schema's ``mzis`` items say.

    jsonschema takes ~0.1 ms per MZI, seconds for an N=256 mesh, so ``from_json``
    validates the document without its MZIs and the MZIs here: a type pass, then ranges
    on whole arrays.
    """
    for k, z in enumerate(mzis):
        if not isinstance(z, dict) or z.keys() != _MZI_KEYS:
            raise ProgramFormatError(
                f"{where}.mzis[{k}]: expected an object with keys id, column, mode, theta, phi"
            )
        if type(z["id"]) is not str or not ID_PATTERN.fullmatch(z["id"]):
            raise ProgramFormatError(
                f"{where}.mzis[{k}].id: {shorten(z['id'])} is not a letter followed by letters, digits and _"
            )
        for key, top in (("column", 2 * n_modes - 1), ("mode", n_modes - 2)):
            if type(z[key]) is not int and not (type(z[key]) is float and z[key].is_integer()):
                raise ProgramFormatError(f"{where}.mzis[{k}].{key}: {shorten(z[key])} is not an integer")
            if not 0 <= z[key] <= top:
                raise ProgramFormatError(
                    f"{where}.mzis[{k}].{key}: {shorten(z[key])} is outside 0..{top} (n_modes {n_modes})"
                )
        for key in ("theta", "phi"):
            if type(z[key]) not in (int, float):
                raise ProgramFormatError(f"{where}.mzis[{k}].{key}: {z[key]!r} is not a number")
    ids = tuple(z["id"] for z in mzis)
    fields = {key: np.array([z[key] for z in mzis]) for key in ("column", "mode", "theta", "phi")}
    bounds = {"theta": (0, np.pi), "phi": (0, None)}
    for key, (low, high) in bounds.items():
        values = fields[key]
        bad = np.flatnonzero((values < low) | (values > high if high is not None else False))
        if bad.size:
            k = int(bad[0])
            side = (
                f"less than the minimum of {low}"
                if values[k] < low
                else f"greater than the maximum of {high}"
            )
            raise ProgramFormatError(f"{where}.mzis[{k}].{key}: {mzis[k][key]!r} is {side}")
    over = np.flatnonzero(fields["phi"] >= 2 * np.pi)
    if over.size:
        k = int(over[0])
        phi = mzis[k]["phi"]
        raise ProgramFormatError(
            f"{where}.mzis[{k}].phi: {phi!r} is greater than or equal to the maximum of {TWO_PI}"
        )
    return (
        ids,
        fields["column"].astype(np.int64).reshape(-1),
        fields["mode"].astype(np.int64).reshape(-1),
        fields["theta"].astype(np.float64).reshape(-1),
        fields["phi"].astype(np.float64).reshape(-1),
    )


def _check_mesh(mesh: Mesh, where: str) -> None:
    """Output phases per mode, and columns consistent with light order (``_mzi_fields``
    checked the ranges)."""
    n = mesh.n_modes
    if mesh.output_phases_rad.size != n:
        raise ProgramFormatError(
            f"{where}: output_phases has {mesh.output_phases_rad.size} entries; n_modes is {n}"
        )
    last = [-1] * n
    for k, (m, c) in enumerate(zip(mesh.modes.tolist(), mesh.columns.tolist(), strict=True)):
        if c <= max(last[m], last[m + 1]):
            raise ProgramFormatError(
                f"{where}.mzis[{k}]: column {c} is not after the column "
                f"{max(last[m], last[m + 1])} of an earlier MZI on modes ({m}, {m + 1})"
            )
        last[m] = last[m + 1] = c


def _check_unique_ids(layers: Sequence[Layer], source: str) -> None:
    """Stage names are unique in a layer and every MZI id is the canonical
    ``{layer id}_{stage}_c{column}_m{mode}`` (``mzi_ids``): the instance names the
    netlist makes from them can then never meet another instance's or layer's."""
    seen: set[str] = set()
    for layer in layers:
        names = [stage.name for stage in layer.stages]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ProgramFormatError(f"{source}: layer {layer.name!r} has two stages named {twice[0]!r}")
        for stage in layer.stages:
            if not isinstance(stage, MeshStage):
                continue
            for k, (mzi_id, want) in enumerate(
                zip(stage.mzi_ids, mzi_ids(layer.id, stage.name, stage.mesh), strict=True)
            ):
                if mzi_id != want:
                    raise ProgramFormatError(
                        f"{source}: MZI {k} of stage {stage.name!r} in layer {layer.name!r} has id "
                        f"{shorten(mzi_id)}; its id is {want!r} ({_MZI_ID_FORM})"
                    )
                if mzi_id in seen:
                    raise ProgramFormatError(f"{source}: MZI id {mzi_id!r} appears twice")
                seen.add(mzi_id)
