r"""Trained aggregator -> phase program, design folder and lookup table (OptINC, arXiv 2603.28290).

A design folder holds three small, deterministic JSON files:

* ``program.json`` -- phase program v1: layer ``preprocess`` (the fixed preprocessing
  ``P``: a chain combiner for ``sum``, compiled exactly with the svd method for
  ``bitwise``) and layers ``onn1 .. onnD`` (the trained
  ONN: attenuator column ``D`` then mesh ``U`` for ud; ``U1``, ``S``, ``U2`` for svd; for
  ud-seg a layer of method ``ud-segmented`` whose block ``(r, c)`` holds ``D_b{r}_{c}``
  then ``U_b{r}_{c}``, as the compiler names them);
* ``electronics.json`` -- N, b, preprocessing, layer type, width, depth, the encoder's and
  every detect-and-re-modulate stage's gains (rad per unit intensity) and biases (rad), the
  comparator threshold, and how the network was trained;
* ``weights.npz`` -- the equivalent weights: every layer's matrix straight from the
  trained phases (``preprocess``: ``P``), so ``optinc check program.json --against
  weights.npz`` verifies the compiled program against the trained network. For ud-seg
  layers that is ``sum_b embed(U_b D_b)``, the program's convention: the chip's optics
  apply it times ``1 / sqrt(R C)`` (the fan-out/fan-in chains, :mod:`.model`), as the
  trained model does;
* ``lut.json`` -- the chip's output code (and bits) for every reduced input, computed from
  the compiled program: what the distributed-training hook applies.

Trained mesh phases are not in the canonical ranges of the program (theta in [0, pi]), so
each trained mesh's matrix is decomposed again with :func:`optinc_compiler.decompose.clements`
(same Clements layout, same matrix to ~1e-13); attenuators keep their amplitudes.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from optinc_compiler import decompose
from optinc_compiler.aggregator.encoding import (
    DETECTION_THRESHOLD,
    LAYER_TYPES,
    MAX_BITS,
    MAX_DEPTH,
    MAX_SERVERS,
    MAX_WIDTH,
    OUTPUT_CODES,
    PREPROCESSINGS,
    AggregatorSpec,
    code_bits,
    preprocessing_matrix,
)
from optinc_compiler.aggregator.locate import ELECTRONICS_FILE, LUT_FILE, PROGRAM_FILE
from optinc_compiler.compiler import CompileOptions, compile_layer
from optinc_compiler.errors import InputError
from optinc_compiler.guard import as_dict, as_float, as_int, as_list, as_str, get, loads_json
from optinc_compiler.mzi import COUPLER, Mesh, wrap_phase
from optinc_compiler.program import (
    Block,
    DiagonalStage,
    Layer,
    MeshStage,
    PhaseProgram,
    Stage,
    mzi_ids,
)

WEIGHTS_FILE = "weights.npz"
ELECTRONICS_FORMAT = "optinc-aggregator-electronics"
LUT_FORMAT = "optinc-aggregator-lut"


@dataclass(frozen=True, eq=False)
class Electronics:
    """Everything the chip needs besides its phase program.

    Attributes:
        spec: N and b.
        preprocessing: ``sum`` or ``bitwise``.
        layer_type: ``ud``, ``svd`` or ``ud-seg``.
        width: K modes per ONN layer.
        depth: number of ONN layers.
        encoder_gain: (K,) rad per unit intensity of the encoder modulators.
        encoder_bias: (K,) rad.
        gains: per hidden stage (D - 1 of them), (K,) rad per unit intensity.
        biases: per hidden stage, (K,) rad.
        threshold: comparator threshold (units of one carrier's power).
        training: how the network was trained (free-form, JSON-safe).
        output_code: ``binary`` or ``gray``: how the output bits encode the code
            (:func:`~optinc_compiler.aggregator.encoding.output_bits`).
    """

    spec: AggregatorSpec
    preprocessing: str
    layer_type: str
    width: int
    depth: int
    encoder_gain: npt.NDArray[np.float64]
    encoder_bias: npt.NDArray[np.float64]
    gains: tuple[npt.NDArray[np.float64], ...]
    biases: tuple[npt.NDArray[np.float64], ...]
    threshold: float = DETECTION_THRESHOLD
    training: dict[str, Any] | None = None
    output_code: str = "binary"

    def __post_init__(self) -> None:
        if self.output_code not in OUTPUT_CODES:
            raise InputError(f"unknown output code {self.output_code!r}; allowed: {', '.join(OUTPUT_CODES)}")

    @property
    def ports(self) -> int:
        """Preprocessing output ports."""
        return 1 if self.preprocessing == "sum" else self.spec.bits


def mesh_from_phases(
    theta: npt.ArrayLike, phi: npt.ArrayLike, delta: npt.ArrayLike
) -> npt.NDArray[np.complex128]:
    """The Clements mesh matrix of trained (unwrapped) phases, in numpy (the convention)."""
    from optinc_compiler.aggregator.model import mesh_layout  # lazy: model imports jax

    d = np.asarray(delta, dtype=np.float64)
    lay = mesh_layout(d.size)
    u = np.eye(d.size, dtype=np.complex128)
    for k, m in enumerate(lay.modes.tolist()):
        p_theta = np.diag([np.exp(1j * float(np.asarray(theta)[k])), 1.0])
        p_phi = np.diag([np.exp(1j * float(np.asarray(phi)[k])), 1.0])
        u[m : m + 2] = COUPLER @ p_theta @ COUPLER @ p_phi @ u[m : m + 2]
    return np.exp(1j * d)[:, None] * u


def trained_matrices(
    spec: AggregatorSpec, preprocessing: str, params: dict[str, Any], layer_type: str
) -> dict[str, npt.NDArray[np.complex128]]:
    """Layer name -> matrix from the trained phases in numpy (not from the compiled program)."""
    out = {"preprocess": preprocessing_matrix(spec, preprocessing).astype(np.complex128)}
    for i, layer in enumerate(params["layers"]):
        if layer_type == "ud-seg":
            out[f"onn{i + 1}"] = _tile_sum(layer["tiles"])
            continue
        w = mesh_from_phases(layer["theta"], layer["phi"], layer["delta"]) * _amplitude(layer["att"])[None, :]
        if layer_type == "svd":
            w = w @ mesh_from_phases(layer["theta1"], layer["phi1"], layer["delta1"])
        out[f"onn{i + 1}"] = w
    return out


def _amplitude(att: Any) -> npt.NDArray[np.float64]:
    """Attenuator amplitudes ``|sin(theta_a / 2)|`` of trained attenuator phases."""
    return np.abs(np.sin(0.5 * np.asarray(att, dtype=np.float64)))


def _tile_sum(tiles: list[list[dict[str, Any]]]) -> npt.NDArray[np.complex128]:
    """``sum_b embed(U_b D_b)`` of trained ud-seg tiles (without the fan amplitude)."""
    sizes = [np.asarray(t["att"]).size for t in tiles[0]]
    grid = [
        [
            mesh_from_phases(t["theta"], t["phi"], t["delta"])[:rows, :cols] * _amplitude(t["att"])
            for t, cols in zip(row, sizes, strict=True)
        ]
        for row, rows in zip(tiles, sizes, strict=True)
    ]
    return np.asarray(np.block(grid), dtype=np.complex128)


def _mesh_stage(prefix: str, name: str, theta: Any, phi: Any, delta: Any) -> MeshStage:
    mesh = decompose.clements(mesh_from_phases(theta, phi, delta))
    return MeshStage(name=name, mesh=mesh, mzi_ids=mzi_ids(prefix, name, mesh))


def onn_layer(name: str, layer: dict[str, Any], layer_type: str) -> Layer:
    """One trained layer as a program layer (scale 1: the optics alone)."""
    if layer_type == "ud-seg":
        return segmented_layer(name, layer["tiles"])
    amp = _amplitude(layer["att"])
    diag = DiagonalStage(name="D" if layer_type == "ud" else "S", amplitude=amp, phase_rad=np.zeros_like(amp))
    u = _mesh_stage(name, "U" if layer_type == "ud" else "U2", layer["theta"], layer["phi"], layer["delta"])
    stages: tuple[Stage, ...]
    if layer_type == "ud":
        stages = (diag, u)
    else:
        u1 = _mesh_stage(name, "U1", layer["theta1"], layer["phi1"], layer["delta1"])
        stages = (u1, diag, u)
    k = amp.size
    return Layer(
        name=name,
        shape=(k, k),
        method="ud" if layer_type == "ud" else "svd",
        scale=1.0,
        blocks=(_block(stages, (k, k)),),
        relative_error=0.0,
        exact=layer_type != "ud",
    )


def segmented_layer(name: str, tiles: list[list[dict[str, Any]]]) -> Layer:
    """Trained ud-seg tiles as a ``ud-segmented`` program layer, block ``(r, c)`` at
    ``(r k, c k)`` with stages ``D_b{r}_{c}``, ``U_b{r}_{c}`` (``compiler._segmented_blocks``).
    ``Layer.matrix()`` is ``sum_b embed(U_b D_b)``: the trained model's matrix times
    ``sqrt(R C)``, without the fan-out/fan-in amplitude."""
    sizes = [np.asarray(t["att"]).size for t in tiles[0]]
    k, width = sizes[0], sum(sizes)
    blocks = []
    for r, row in enumerate(tiles):
        for c, t in enumerate(row):
            amp = _amplitude(t["att"])
            diag = DiagonalStage(name=f"D_b{r}_{c}", amplitude=amp, phase_rad=np.zeros_like(amp))
            mesh = _mesh_stage(name, f"U_b{r}_{c}", t["theta"], t["phi"], t["delta"])
            blocks.append(Block(r * k, c * k, (sizes[r], sizes[c]), (diag, mesh)))
    return Layer(
        name=name,
        shape=(width, width),
        method="ud-segmented",
        scale=1.0,
        blocks=tuple(blocks),
        relative_error=0.0,
        exact=False,
        block_size=k,
    )


def _block(stages: tuple[Stage, ...], shape: tuple[int, int]) -> Block:
    return Block(row_offset=0, col_offset=0, shape=shape, stages=stages)


def chain_combiner(name: str, power_weights: npt.ArrayLike) -> Layer:
    """A 1 x C layer summing C incoherent channels with power weights ``w`` (sum <= 1) on
    port 0: one chain of C - 1 MZIs on modes (C-2, C-1), ..., (0, 1) (the first diagonal
    of a Reck triangle), each channel on a single path, so only the theta heaters set the
    weights: ``sin^2(theta_m / 2) = w_m / sum_{j >= m} w_j``. The phi heaters align the
    phases so the layer's matrix is ``sqrt(w)`` (real, positive); 15 MZIs instead of the
    120 of a full 16-mode mesh."""
    w = np.asarray(power_weights, dtype=np.float64)
    c = w.size
    if c < 2 or (w <= 0).any() or w.sum() > 1 + 1e-12:
        raise InputError(f"chain combiner needs >= 2 positive power weights summing to <= 1, got {w}")
    tails = np.cumsum(w[::-1])[::-1]  # sum_{j >= m} w_j
    modes = np.arange(c - 2, -1, -1, dtype=np.int64)
    theta = 2.0 * np.arcsin(np.sqrt(np.clip(w[modes] / tails[modes], 0.0, 1.0)))
    phi = np.empty(c - 1)
    common = 0.0  # phase of the accumulated light arriving on mode m + 1
    for k, t in enumerate(theta):
        phi[k] = common
        common += 0.5 * np.pi + 0.5 * t
    delta = np.zeros(c)
    delta[0] = -common
    mesh = Mesh(
        topology="reck",
        n_modes=c,
        modes=modes,
        columns=np.arange(c - 1, dtype=np.int64),
        theta_rad=theta,
        phi_rad=wrap_phase(phi),
        output_phases_rad=wrap_phase(delta),
    )
    stage = MeshStage(name="P", mesh=mesh, mzi_ids=mzi_ids(name, "P", mesh))
    return Layer(
        name=name,
        shape=(1, c),
        method="unitary",
        scale=1.0,
        blocks=(_block((stage,), (1, c)),),
        relative_error=0.0,
        exact=True,
    )


def preprocessing_layer(spec: AggregatorSpec, preprocessing: str) -> Layer:
    """``sum``: the chain combiner; ``bitwise``: ``P`` compiled exactly (svd)."""
    p = preprocessing_matrix(spec, preprocessing)
    if preprocessing == "sum":
        return chain_combiner("preprocess", p[0] ** 2)
    return compile_layer("preprocess", p, CompileOptions(method="svd"))


def build_program(
    spec: AggregatorSpec, preprocessing: str, params: dict[str, Any], layer_type: str
) -> PhaseProgram:
    """The preprocessing layer plus the trained ONN layers ``onn1 .. onnD``."""
    pre = preprocessing_layer(spec, preprocessing)
    layers = [onn_layer(f"onn{i + 1}", layer, layer_type) for i, layer in enumerate(params["layers"])]
    return PhaseProgram(layers=(pre, *layers))


def electronics_from_params(
    spec: AggregatorSpec,
    *,
    preprocessing: str,
    layer_type: str,
    params: dict[str, Any],
    training: dict[str, Any] | None = None,
    output_code: str = "binary",
) -> Electronics:
    """The electronic settings of trained parameters."""
    layers = params["layers"]
    return Electronics(
        spec=spec,
        preprocessing=preprocessing,
        layer_type=layer_type,
        width=int(np.asarray(params["encoder"]["bias"]).size),
        depth=len(layers),
        encoder_gain=np.exp(np.asarray(params["encoder"]["log_gain"], dtype=np.float64)),
        encoder_bias=np.asarray(params["encoder"]["bias"], dtype=np.float64),
        gains=tuple(np.asarray(x["gain"], dtype=np.float64) for x in layers[:-1]),
        biases=tuple(np.asarray(x["bias"], dtype=np.float64) for x in layers[:-1]),
        training=training,
        output_code=output_code,
    )


def electronics_to_json(e: Electronics) -> str:
    """Deterministic JSON text of the electronic settings."""
    doc = {
        "format": ELECTRONICS_FORMAT,
        "version": 1,
        "servers": e.spec.servers,
        "bits": e.spec.bits,
        "preprocessing": e.preprocessing,
        "layer_type": e.layer_type,
        "width": e.width,
        "depth": e.depth,
        "threshold": e.threshold,
        "output_code": e.output_code,
        "units": "gain in rad per unit intensity (one carrier's power), bias in rad",
        "encoder": {"gain": e.encoder_gain.tolist(), "bias": e.encoder_bias.tolist()},
        "stages": [{"gain": g.tolist(), "bias": b.tolist()} for g, b in zip(e.gains, e.biases, strict=True)],
        "training": e.training or {},
    }
    return json.dumps(doc, indent=1, allow_nan=False) + "\n"


def electronics_from_json(text: str | bytes, *, source: str) -> Electronics:
    """Parse ``electronics.json``; InputError naming the file (``source``) and the field
    when it is not one: every size within the tools' limits, every vector of K finite
    numbers, one stage per hidden layer."""
    doc = as_dict(loads_json(text, source=source), what=source)
    if doc.get("format") != ELECTRONICS_FORMAT or doc.get("version", 1) != 1:
        raise InputError(f"{source} is not an aggregator electronics file ({ELECTRONICS_FORMAT}, version 1)")

    def field(key: str) -> Any:
        return get(doc, key, source=source)

    def what(key: str) -> str:
        return f"{source}: {key}"

    servers = as_int(field("servers"), what=what("servers"), lo=2, hi=MAX_SERVERS)
    bits = as_int(field("bits"), what=what("bits"), lo=1, hi=MAX_BITS)
    preprocessing = as_str(field("preprocessing"), what=what("preprocessing"), choices=PREPROCESSINGS)
    layer_type = as_str(field("layer_type"), what=what("layer_type"), choices=LAYER_TYPES)
    width = as_int(field("width"), what=what("width"), lo=2, hi=MAX_WIDTH)
    depth = as_int(field("depth"), what=what("depth"), lo=1, hi=MAX_DEPTH)
    encoder = as_dict(field("encoder"), what=what("encoder"))
    stages = as_list(field("stages"), what=what("stages"), max_len=MAX_DEPTH)
    if len(stages) != depth - 1:
        raise InputError(f"{what('stages')} has {len(stages)} stages; allowed: depth - 1 = {depth - 1}")
    stages = [as_dict(x, what=what(f"stages[{i}]")) for i, x in enumerate(stages)]
    training = doc.get("training", {})
    output_code = doc.get("output_code", "binary")  # files before Gray outputs
    return Electronics(
        spec=AggregatorSpec(servers, bits),
        preprocessing=preprocessing,
        layer_type=layer_type,
        width=width,
        depth=depth,
        encoder_gain=_vector(get(encoder, "gain", source=what("encoder")), what("encoder.gain"), width),
        encoder_bias=_vector(get(encoder, "bias", source=what("encoder")), what("encoder.bias"), width),
        gains=tuple(
            _vector(get(x, "gain", source=what(f"stages[{i}]")), what(f"stages[{i}].gain"), width)
            for i, x in enumerate(stages)
        ),
        biases=tuple(
            _vector(get(x, "bias", source=what(f"stages[{i}]")), what(f"stages[{i}].bias"), width)
            for i, x in enumerate(stages)
        ),
        threshold=as_float(field("threshold"), what=what("threshold"), lo=0.0, hi=MAX_THRESHOLD),
        training=as_dict(training, what=what("training")),
        output_code=as_str(output_code, what=what("output_code"), choices=OUTPUT_CODES),
    )


#: Largest comparator threshold (units of one carrier's power; the tools write 0.5).
MAX_THRESHOLD = 1e6
#: Largest electronic gain or bias (rad per unit intensity, rad): far beyond any trained
#: network (gains reach ~1e3 at b = 8), small enough that cos() stays meaningful.
MAX_ELECTRONIC_VALUE = 1e9


def _vector(value: Any, what: str, size: int) -> npt.NDArray[np.float64]:
    """A list of ``size`` finite numbers within +-MAX_ELECTRONIC_VALUE."""
    items = as_list(value, what=what, max_len=MAX_WIDTH)
    if len(items) != size:
        raise InputError(f"{what} has {len(items)} values; allowed: {size} (the width K)")
    for i, x in enumerate(items):
        as_float(x, what=f"{what}[{i}]", lo=-MAX_ELECTRONIC_VALUE, hi=MAX_ELECTRONIC_VALUE)
    return np.asarray(items, dtype=np.float64)


def lut_to_json(spec: AggregatorSpec, preprocessing: str, keys: np.ndarray, codes: np.ndarray) -> str:
    """The lookup table: reduced input (sum s, or bit counts) -> the chip's output code."""
    doc = {
        "format": LUT_FORMAT,
        "version": 1,
        "servers": spec.servers,
        "bits": spec.bits,
        "preprocessing": preprocessing,
        "key": "sum of codes s" if preprocessing == "sum" else "count of ones per bit position, LSB first",
        "entries": [
            {
                "input": k.tolist() if np.ndim(k) else int(k),
                "output": int(c),
                "bits": code_bits(c, bits=spec.bits).tolist(),
            }
            for k, c in zip(keys, codes, strict=True)
        ],
    }
    return (
        json.dumps(doc, indent=None, separators=(",", ":"), allow_nan=False).replace('},{"', '},\n{"') + "\n"
    )


def write_design(
    folder: Path,
    program: PhaseProgram,
    electronics: Electronics,
    lut_text: str,
    weights: dict[str, npt.NDArray[np.complex128]],
) -> Path:
    """Write program, electronics, weights and lookup table into ``folder``: all four or
    none (:func:`files.write_all_atomic`), everything computed before the first write."""
    from optinc_compiler.files import write_all_atomic, write_text
    from optinc_compiler.program import to_json

    if not folder.is_dir():
        raise InputError(f"design folder {str(folder)!r} does not exist; create it first")
    arrays: dict[str, Any] = dict(weights)
    texts = {
        PROGRAM_FILE: to_json(program),
        ELECTRONICS_FILE: electronics_to_json(electronics),
        LUT_FILE: lut_text,
    }
    write_all_atomic(  # all four or none: a failed write never leaves a mix of two designs
        [
            (folder / WEIGHTS_FILE, lambda tmp: np.savez(tmp, **arrays)),  # deterministic bytes
            *((folder / name, functools.partial(write_text, text=text)) for name, text in texts.items()),
        ]
    )
    return folder
