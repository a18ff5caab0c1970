r"""Bit-exact accuracy of an aggregator chip through its compiled program (OptINC, arXiv 2603.28290).

Everything here starts from a design folder (:mod:`~optinc_compiler.aggregator.export`):
the layer matrices come from the phase program (rebuilt from the phases, or simulated
with the PDK's sax models through :func:`optinc_compiler.simulate.layer_smatrix`), and the
electronics from ``electronics.json``. No JAX: this is the chip as programmed.

Robustness: heater phases (MZI theta and phi, output phase screens, attenuator heaters
``theta_a = 2 arcsin(a)``) are first quantised by a phase DAC of ``dac_bits`` over 2 pi,
then get Gaussian noise of ``noise_rad``, one seeded draw per trial; electronic gains and
biases stay exact. A draw counts as a success when every reduced input gives every bit
right.

Segmented (``ud-segmented``) layers: the program stores ``sum_b embed(U_b D_b)``; the
chip's fan-out/fan-in MZI chains scale it by ``1 / sqrt(R C)`` (R, C block rows and
columns, :mod:`.model`), and that physical matrix is what the electronics were trained
on. The program backend applies the factor (:func:`fan_amplitude`); the sax backend
simulates the chains and returns the physical matrix itself. The fan MZIs are not in the
program; the noise draws perturb them as the netlist places them (``netlist.split_chain``
/ ``merge_chain``). Training (``model.perturb``) does not: it sees tile noise only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from optinc_compiler.aggregator.encoding import (
    LAYER_METHODS,
    AggregatorSpec,
    ReducedDataset,
    codes_of_output_bits,
    detected_intensities,
    output_bits,
    raw_channels,
    reduced_dataset,
    target_codes,
)
from optinc_compiler.aggregator.export import (
    ELECTRONICS_FILE,
    PROGRAM_FILE,
    Electronics,
    electronics_from_json,
)
from optinc_compiler.errors import InputError
from optinc_compiler.guard import MAX_JSON_BYTES, quote
from optinc_compiler.mzi import mzi_matrix
from optinc_compiler.netlist import block_grid, chain_transfer, combine_tiles, merge_chain, split_chain
from optinc_compiler.program import Block, DiagonalStage, Layer, MeshStage, PhaseProgram, from_json

BACKENDS = ("program", "sax")
#: Noise draws of one robustness cell (``--draws``): a 0.01% resolution of the yield.
MAX_DRAWS = 10_000
#: Complex values of one batch of an evaluation (64 MB): larger inputs and draw counts
#: are evaluated in parts, so memory does not grow with them.
MAX_BATCH_VALUES = 2**22
Matrices = list[npt.NDArray[np.complex128]]


@dataclass(frozen=True, eq=False)
class Chip:
    """A design folder in memory: phase program and electronics."""

    program: PhaseProgram
    electronics: Electronics

    @property
    def onn_layers(self) -> tuple[Layer, ...]:
        """The ONN layers ``onn1 .. onnD`` (all but ``preprocess``)."""
        return tuple(x for x in self.program.layers if x.name != "preprocess")


def load_design(folder: Path) -> Chip:
    """Read a design folder; InputError naming what is missing or inconsistent: the
    electronics and the program must describe the same network (N, b, K, D, layer type)."""
    where = quote(folder)
    if not folder.is_dir():
        raise InputError(f"design folder {where} does not exist")
    path = folder / ELECTRONICS_FILE
    if not path.is_file():
        raise InputError(f"design folder {where} has no {ELECTRONICS_FILE}")
    electronics = electronics_from_json(_read(path), source=quote(path))
    path = folder / PROGRAM_FILE
    if not path.is_file():
        raise InputError(f"design folder {where} has no {PROGRAM_FILE}")
    try:
        program = from_json(_read(path).decode("utf-8"), source=str(path))
    except UnicodeDecodeError as exc:
        raise InputError(f"{quote(path)} is not UTF-8 text (offset {exc.start})") from None
    except RecursionError:
        raise InputError(f"{quote(path)} nests lists or objects too deep") from None
    chip = Chip(program=program, electronics=electronics)
    check_design(chip, where)
    return chip


def _read(path: Path) -> bytes:
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise InputError(f"{quote(path)} has {size:,} bytes; allowed: at most {MAX_JSON_BYTES:,}")
    return path.read_bytes()


def check_design(chip: Chip, where: str) -> None:
    """The program's layers are the network the electronics describe."""
    e = chip.electronics
    names = [x.name for x in chip.program.layers]
    if "preprocess" not in names:
        raise InputError(f"{where}: {PROGRAM_FILE} has no layer 'preprocess'")
    if len(chip.onn_layers) != e.depth:
        raise InputError(
            f"{where}: {PROGRAM_FILE} has {len(chip.onn_layers)} ONN layer(s); "
            f"{ELECTRONICS_FILE} says {e.depth}"
        )
    pre = chip.program.layer("preprocess")
    if pre.shape != (e.ports, e.spec.channels):
        raise InputError(
            f"{where}: {PROGRAM_FILE} layer 'preprocess' has shape {pre.shape}; the electronics "
            f"({e.preprocessing}, N={e.spec.servers}, b={e.spec.bits}) need {(e.ports, e.spec.channels)}"
        )
    method = LAYER_METHODS[e.layer_type]
    for x in chip.onn_layers:
        if x.shape != (e.width, e.width):
            raise InputError(
                f"{where}: {PROGRAM_FILE} layer {quote(x.name)} has shape {x.shape}; the width K = {e.width}"
            )
        if x.method != method:
            raise InputError(
                f"{where}: {PROGRAM_FILE} layer {quote(x.name)} has method {quote(x.method)}; "
                f"layer type {e.layer_type!r} compiles to {method!r}"
            )


def fan_amplitude(layer: Layer) -> float:
    """``1 / sqrt(R C)`` for a segmented layer of R block rows and C block columns (the
    even splitter chain of each input and the coherent combiner chain of each output), 1
    for the others."""
    n_rows, n_cols = block_grid(layer)
    return 1.0 / float(np.sqrt(n_rows * n_cols))


def fan_mzis(layer: Layer) -> int:
    """MZIs of the fan-out and fan-in chains of a segmented layer: ``R - 1`` per input and
    ``C - 1`` per output (0 for the others)."""
    n_rows, n_cols = block_grid(layer)
    return layer.shape[1] * (n_rows - 1) + layer.shape[0] * (n_cols - 1)


def layer_matrices(chip: Chip, *, backend: str = "program") -> Matrices:
    """Optical matrices (without scale, with the fan amplitude of segmented layers) of
    ``preprocess`` then every ONN layer: what the light goes through."""
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}; allowed: {', '.join(BACKENDS)}")
    layers = (chip.program.layer("preprocess"), *chip.onn_layers)
    if backend == "program":
        return [x.matrix() / x.scale * fan_amplitude(x) for x in layers]
    from optinc_compiler.simulate import layer_smatrix  # lazy: sax

    return [np.asarray(layer_smatrix(x, model_set="ideal")[0]) for x in layers]


def onn_outputs(e: Electronics, onn: Matrices, intensities: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Comparator intensities (..., S, b) for preprocessing intensities (S, ports); the
    matrices may carry leading batch axes (draws, K, K)."""
    drive = np.asarray(intensities, dtype=np.float64)[:, np.arange(e.width) % e.ports]
    x = np.cos(e.encoder_gain * drive + e.encoder_bias).astype(np.complex128)  # (S, K)
    for i, w in enumerate(onn):
        z = x @ np.swapaxes(w, -1, -2)
        intensity = np.abs(z) ** 2
        if i == len(onn) - 1:
            return np.asarray(intensity[..., : e.spec.bits])
        x = np.cos(e.gains[i] * intensity + e.biases[i]).astype(np.complex128)
    raise InputError("the design has no ONN layers")


def decode(e: Electronics, intensities: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Output codes from comparator intensities (..., b): bit k is one above the threshold,
    read in the design's output code."""
    bits = (intensities > e.threshold).astype(np.int64)
    return codes_of_output_bits(bits, output_code=e.output_code)


@dataclass(frozen=True)
class Accuracy:
    """Bit-exact accuracy on one input set."""

    what: str
    inputs: int
    correct: int
    min_margin: float

    @property
    def percent(self) -> float:
        """Correct inputs in percent."""
        return 100.0 * self.correct / self.inputs


def reduced_accuracy(chip: Chip, matrices: Matrices) -> Accuracy:
    """Every reduced input, through the ONN matrices (``matrices[1:]``)."""
    e = chip.electronics
    data = reduced_dataset(e.spec, e.preprocessing)
    out = onn_outputs(e, matrices[1:], data.intensities)
    return _accuracy("reduced", e, data, out)


def _accuracy(what: str, e: Electronics, data: ReducedDataset, out: npt.NDArray[np.float64]) -> Accuracy:
    sign = 2.0 * output_bits(data.targets, bits=e.spec.bits, output_code=e.output_code) - 1.0
    margin = float(np.min(sign * (out - e.threshold)))
    correct = int(np.sum(decode(e, out) == data.targets))
    return Accuracy(what=what, inputs=data.size, correct=correct, min_margin=margin)


def raw_accuracy(chip: Chip, matrices: Matrices, codes: npt.ArrayLike) -> Accuracy:
    """Raw inputs (M, N) pushed through the whole optical path, preprocessing included
    (in batches of at most :data:`MAX_BATCH_VALUES` complex values)."""
    e = chip.electronics
    c = np.asarray(codes, dtype=np.int64)
    rows = max(1, MAX_BATCH_VALUES // max(e.width, e.spec.channels))
    correct, margin = 0, np.inf
    for start in range(0, c.shape[0], rows):
        part = c[start : start + rows]
        intensities = detected_intensities(matrices[0], raw_channels(part, bits=e.spec.bits))
        out = onn_outputs(e, matrices[1:], intensities)
        targets = target_codes(part.sum(axis=1), servers=e.spec.servers)
        bits = output_bits(targets, bits=e.spec.bits, output_code=e.output_code)
        margin = min(margin, float(np.min((2.0 * bits - 1.0) * (out - e.threshold))))
        correct += int(np.sum(decode(e, out) == targets))
    return Accuracy(what="raw", inputs=int(c.shape[0]), correct=correct, min_margin=margin)


# ----------------------------------------------------------------------- robustness


def quantise(phase_rad: npt.NDArray[np.float64], dac_bits: int | None) -> npt.NDArray[np.float64]:
    """Nearest step of a ``dac_bits`` DAC spanning 2 pi (unchanged for None)."""
    if dac_bits is None:
        return phase_rad
    step = 2 * np.pi / 2**dac_bits
    return np.round(phase_rad / step) * step


def noisy_matrix(
    layer: Layer, rng: np.random.Generator, *, draws: int, noise_rad: float, dac_bits: int | None
) -> npt.NDArray[np.complex128]:
    """(draws, out, in) optical matrices of one layer (as :func:`layer_matrices`) with
    quantised, noisy heaters, block by block."""
    out = np.zeros((draws, *layer.shape), dtype=np.complex128)
    tiles = [_noisy_block(block, rng, draws, noise_rad, dac_bits) for block in layer.blocks]
    if layer.block_size is None:
        for block, tile in zip(layer.blocks, tiles, strict=True):
            r, c = block.row_offset, block.col_offset
            out[:, r : r + block.shape[0], c : c + block.shape[1]] += tile
        return out
    # segmented: each input's splitter chain and each output's combiner chain are heaters
    # too (netlist.split_chain / merge_chain); the netlist's tile phase undoes their
    # nominal phase, so without noise this is sum_b W_b / sqrt(R C)
    n_rows, n_cols = block_grid(layer)
    split, _ = split_chain(n_rows)
    merge, _ = merge_chain(n_cols)
    a = np.stack(
        [_noisy_chain(split, n_rows, rng, draws, noise_rad, dac_bits) for _ in range(layer.shape[1])], 1
    )
    b = np.stack(
        [_noisy_chain(merge, n_cols, rng, draws, noise_rad, dac_bits) for _ in range(layer.shape[0])], 1
    )
    # (draws, in, R): input on row 0; (draws, out, C): what leaves row 0
    return combine_tiles(layer, tiles, a[:, :, :, 0], b[:, :, 0, :])


def _noisy_chain(
    chain: list[tuple[int, float]],
    n: int,
    rng: np.random.Generator,
    draws: int,
    noise_rad: float,
    dac_bits: int | None,
) -> npt.NDArray[np.complex128]:
    """(draws, n, n) transfer matrices of a fan chain of MZIs (row, theta; phi = 0) with
    quantised, noisy heaters."""
    thetas = np.array([theta for _, theta in chain], dtype=np.float64)
    noisy_theta = _noisy(thetas, rng, draws, noise_rad, dac_bits)
    return chain_transfer(
        chain, n, noisy_theta, _noisy(np.zeros_like(thetas), rng, draws, noise_rad, dac_bits)
    )


def _noisy_block(
    block: Block, rng: np.random.Generator, draws: int, noise_rad: float, dac_bits: int | None
) -> npt.NDArray[np.complex128]:
    """(draws, rows, cols) noisy matrices of one block (without the layer scale)."""
    rows, cols = block.shape
    n = max(rows, cols)
    fields = np.broadcast_to(np.eye(n, cols, dtype=np.complex128), (draws, n, cols)).copy()
    for stage in block.stages:
        k = stage.n_modes
        if isinstance(stage, MeshStage):
            fields[:, :k] = _noisy_mesh(stage, fields[:, :k], rng, noise_rad, dac_bits)
        else:
            fields[:, :k] = (
                _noisy_attenuators(stage, rng, draws, noise_rad, dac_bits)[:, :, None] * fields[:, :k]
            )
    return fields[:, :rows]


def _noisy(
    values: npt.NDArray[np.float64],
    rng: np.random.Generator,
    draws: int,
    noise_rad: float,
    dac_bits: int | None,
) -> npt.NDArray[np.float64]:
    return quantise(values, dac_bits)[None, :] + noise_rad * rng.standard_normal((draws, values.size))


def _noisy_mesh(
    stage: MeshStage,
    fields: npt.NDArray[np.complex128],
    rng: np.random.Generator,
    noise_rad: float,
    dac_bits: int | None,
) -> npt.NDArray[np.complex128]:
    m = stage.mesh
    draws = fields.shape[0]
    t = mzi_matrix(
        _noisy(m.theta_rad, rng, draws, noise_rad, dac_bits),
        _noisy(m.phi_rad, rng, draws, noise_rad, dac_bits),
    )
    out = fields.copy()
    for k, mode in enumerate(m.modes.tolist()):
        out[:, mode : mode + 2] = t[:, k] @ out[:, mode : mode + 2]
    delta = _noisy(m.output_phases_rad, rng, draws, noise_rad, dac_bits)
    return np.exp(1j * delta)[:, :, None] * out


def _noisy_attenuators(
    stage: DiagonalStage, rng: np.random.Generator, draws: int, noise_rad: float, dac_bits: int | None
) -> npt.NDArray[np.complex128]:
    """(draws, k) transmissions of single-heater attenuators ``a = |sin(theta_a / 2)|``."""
    heater = 2.0 * np.arcsin(np.clip(stage.amplitude, 0.0, 1.0))
    theta = _noisy(heater, rng, draws, noise_rad, dac_bits)
    return np.abs(np.sin(0.5 * theta)) * np.exp(1j * stage.phase_rad)[None, :]


@dataclass(frozen=True)
class Robustness:
    """Draws with every reduced input right, at one noise level and DAC depth."""

    noise_rad: float
    dac_bits: int | None
    draws: int
    draws_at_100: int
    mean_accuracy_percent: float


def robustness(
    chip: Chip,
    *,
    noise_rad: float,
    dac_bits: int | None,
    draws: int = 100,
    seed: int = 0,
    include_preprocessing: bool = False,
    raw_codes: npt.ArrayLike | None = None,
) -> Robustness:
    """Seeded noise draws on every ONN heater (and the preprocessing's, if asked).

    With the preprocessing included, each reduced input is represented by one raw input
    (``_representative_channels``), or the raw inputs ``raw_codes`` (M, N) are pushed
    through instead (slower; every raw input that maps to a reduced one can see a
    different error of the noisy preprocessing)."""
    if not 1 <= draws <= MAX_DRAWS:
        raise InputError(f"draws = {draws} is not allowed; use 1 <= draws <= {MAX_DRAWS:,}")
    rng = np.random.default_rng(seed)
    e = chip.electronics
    onn = [noisy_matrix(x, rng, draws=draws, noise_rad=noise_rad, dac_bits=dac_bits) for x in chip.onn_layers]
    data = reduced_dataset(e.spec, e.preprocessing)
    targets = data.targets
    if include_preprocessing:
        pre = noisy_matrix(
            chip.program.layer("preprocess"), rng, draws=draws, noise_rad=noise_rad, dac_bits=dac_bits
        )
        if raw_codes is None:
            channels = _representative_channels(e.spec, data)
        else:
            codes = np.asarray(raw_codes, dtype=np.int64)
            channels = raw_channels(codes, bits=e.spec.bits)
            targets = target_codes(codes.sum(axis=1), servers=e.spec.servers)
        ok = np.stack(  # draw by draw: (draws, S) booleans, not (draws, S, b) intensities
            [
                decode(e, _batched(e, [w[d : d + 1] for w in onn], detected_intensities(pre[d], channels))[0])
                == targets
                for d in range(draws)
            ]
        )
    else:
        step = max(1, MAX_BATCH_VALUES // (data.size * e.width))
        ok = np.concatenate(
            [
                decode(e, _batched(e, [w[d : d + step] for w in onn], data.intensities)) == targets[None, :]
                for d in range(0, draws, step)
            ]
        )
    return Robustness(
        noise_rad=noise_rad,
        dac_bits=dac_bits,
        draws=draws,
        draws_at_100=int(np.sum(ok.all(axis=1))),
        mean_accuracy_percent=float(100.0 * ok.mean()),
    )


def _batched(e: Electronics, onn: Matrices, intensities: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """(draws, S, b) outputs for per-draw matrices (draws, K, K)."""
    drive = intensities[:, np.arange(e.width) % e.ports]
    x = np.cos(e.encoder_gain * drive + e.encoder_bias).astype(np.complex128)[None]  # (1, S, K)
    for i, w in enumerate(onn):
        intensity = np.abs(x @ np.swapaxes(w, -1, -2)) ** 2
        if i == len(onn) - 1:
            return np.asarray(intensity[..., : e.spec.bits])
        x = np.cos(e.gains[i] * intensity + e.biases[i]).astype(np.complex128)
    raise InputError("the design has no ONN layers")


def _representative_channels(spec: AggregatorSpec, data: ReducedDataset) -> npt.NDArray[np.float64]:
    """One raw input (channel powers) per reduced input: s filled server by server (sum),
    or bit k set on the first ``c_k`` servers (bitwise)."""
    codes = np.zeros((data.size, spec.servers), dtype=np.int64)
    if data.preprocessing == "sum":
        rest = data.sums.copy()
        for i in range(spec.servers):
            codes[:, i] = np.minimum(rest, spec.max_code)
            rest = rest - codes[:, i]
    else:
        counts = np.rint(data.intensities * spec.servers).astype(np.int64)  # (M, b)
        on = np.arange(spec.servers)[None, :, None] < counts[:, None, :]  # (M, N, b)
        codes = (on * (2 ** np.arange(spec.bits))).sum(axis=2)
    return raw_channels(codes, bits=spec.bits)


def lookup_table(
    chip: Chip, *, backend: str = "program"
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Keys (sums s, or bit counts) and the chip's output code for every reduced input."""
    e = chip.electronics
    data = reduced_dataset(e.spec, e.preprocessing)
    codes = decode(e, onn_outputs(e, layer_matrices(chip, backend=backend)[1:], data.intensities))
    if e.preprocessing == "sum":
        return data.sums, codes
    return np.rint(data.intensities * e.spec.servers).astype(np.int64), codes


# ------------------------------------------------------------------------- hardware


@dataclass(frozen=True)
class Hardware:
    """What a design costs.

    Attributes:
        mzis: MZIs of the ONN: its meshes plus the fan-out/fan-in chains of segmented layers.
        heaters: ONN heaters: two per MZI, one per output phase shifter and attenuator.
        attenuators: ONN attenuators.
        preprocessing_mzis: MZIs of the preprocessing stage.
        photodiodes: preprocessing ports + (D - 1) K hidden + b output photodiodes.
        modulators: K encoder + (D - 1) K hidden re-modulators (each with its amplifier).
        fan_mzis: the part of ``mzis`` in fan-out/fan-in chains (0 unless segmented).
    """

    mzis: int
    heaters: int
    attenuators: int
    preprocessing_mzis: int
    photodiodes: int
    modulators: int
    fan_mzis: int = 0

    @property
    def electronic_stages(self) -> int:
        """Photodiodes plus modulators: every optical-electrical conversion."""
        return self.photodiodes + self.modulators


def hardware_of(
    layer_type: str,
    *,
    width: int,
    depth: int,
    ports: int,
    bits: int,
    preprocessing_mzis: int,
    block_size: int | None = None,
) -> Hardware:
    """The hardware of an architecture without a design: ``K (K - 1) / 2`` MZIs per mesh
    (one mesh per ud layer, two per svd layer), an output phase screen per mesh, one
    attenuator column per layer; ud-seg (``block_size`` k): per layer one mesh of
    ``max(m_r, m_c)`` modes and ``m_c`` attenuators per tile, ``K (R - 1) + K (C - 1)``
    fan MZIs."""
    if layer_type == "ud-seg":
        if block_size is None:
            raise InputError("layer type 'ud-seg' needs a block size k")
        sizes = [min(block_size, width - r) for r in range(0, width, block_size)]
        modes = [max(m_r, m_c) for m_r in sizes for m_c in sizes]
        mesh_mzis = depth * sum(n * (n - 1) // 2 for n in modes)
        screens, attenuators = depth * sum(modes), depth * len(sizes) * width
        fan = depth * 2 * width * (len(sizes) - 1)
    else:
        meshes = depth * (1 if layer_type == "ud" else 2)
        mesh_mzis, screens, attenuators = meshes * width * (width - 1) // 2, meshes * width, depth * width
        fan = 0
    return Hardware(
        mzis=mesh_mzis + fan,
        heaters=2 * (mesh_mzis + fan) + screens + attenuators,
        attenuators=attenuators,
        preprocessing_mzis=preprocessing_mzis,
        photodiodes=ports + (depth - 1) * width + bits,
        modulators=depth * width,
        fan_mzis=fan,
    )


def hardware(chip: Chip) -> Hardware:
    """Count the hardware of a chip from its program and electronics."""
    e = chip.electronics
    fan = sum(fan_mzis(x) for x in chip.onn_layers)
    mzis = sum(x.n_mzis for x in chip.onn_layers) + fan
    screens = sum(s.n_modes for x in chip.onn_layers for s in x.stages if isinstance(s, MeshStage))
    attenuators = sum(x.n_attenuators for x in chip.onn_layers)
    return Hardware(
        mzis=mzis,
        heaters=2 * mzis + screens + attenuators,
        attenuators=attenuators,
        preprocessing_mzis=chip.program.layer("preprocess").n_mzis,
        photodiodes=e.ports + (e.depth - 1) * e.width + e.spec.bits,
        modulators=e.depth * e.width,
        fan_mzis=fan,
    )


def noisy_lookup(
    chip: Chip, rng: np.random.Generator, *, noise_rad: float, dac_bits: int | None = 12
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """One fabricated (or momentary) chip: Gaussian phase noise on every heater, the
    preprocessing's included, after ``dac_bits`` quantisation; the sums s (``sum``
    preprocessing) and the codes this chip outputs for them (each reduced input
    represented by one raw input, as ``robustness``). The table the distributed-training
    hook applies for a noisy chip."""
    e = chip.electronics
    if e.preprocessing != "sum":
        raise InputError(f"noisy lookups need the sum preprocessing; the design has {e.preprocessing!r}")
    data = reduced_dataset(e.spec, e.preprocessing)
    onn = [noisy_matrix(x, rng, draws=1, noise_rad=noise_rad, dac_bits=dac_bits) for x in chip.onn_layers]
    pre = noisy_matrix(chip.program.layer("preprocess"), rng, draws=1, noise_rad=noise_rad, dac_bits=dac_bits)
    channels = _representative_channels(e.spec, data)
    out = _batched(e, onn, detected_intensities(pre[0], channels))[0]
    return data.sums, decode(e, out)
