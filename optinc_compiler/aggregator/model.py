r"""The aggregator ONN in JAX, built from MZI phases (OptINC, arXiv 2603.28290, sec. III).

Every layer is a ``K x K`` optical circuit whose matrix is built from the same parameters
the chip is programmed with, in the convention of :mod:`optinc_compiler.mzi`
(``T(theta, phi) = B P(theta) B P(phi)``, Clements mesh ``U = D T_M ... T_1``):

* ``ud`` (OptINC's unitary x diagonal): ``W = U diag(a)``, an attenuator column that light
  meets first, then one mesh; ``K (K - 1) / 2`` MZIs.
* ``svd``: ``W = U_2 diag(a) U_1``, mesh, attenuators, mesh; ``K (K - 1)`` MZIs.
* ``ud-seg`` (segmented ud for wide layers, the compiler's ``ud-segmented`` method): W cut
  into ``R x C`` tiles of ``k x k`` (``R = C = ceil(K / k)``, the last row and column of
  tiles smaller when k does not divide K, as ``compiler._segmented_blocks``); tile
  ``(r, c)`` of shape ``(m_r, m_c)`` is ``U_rc[:m_r, :m_c] diag(a_rc)`` on its own
  waveguides (a mesh of ``max(m_r, m_c)`` modes). A chain of ``R - 1`` MZIs splits each
  input evenly to the R tiles of its block column (amplitude ``1 / sqrt(R)`` each), a chain
  of ``C - 1`` MZIs combines the C tile outputs of each output coherently onto one port
  (``sum / sqrt(C)``; the rest of the power leaves by the other ports), so the optics
  compute ``W = sum_b embed(U_b D_b) / sqrt(R C)``. The model keeps the factor, so
  training sees the amplitudes the chip delivers (the gain after detection absorbs it);
  the phase program stores ``sum_b embed(U_b D_b)``, the compiler's convention. MZIs:
  ``k (k - 1) / 2`` per full tile plus ``K (R - 1) + K (C - 1)`` in the fan-out/fan-in
  chains.

Attenuators are MZIs driven by one heater, ``a = sin(theta_a / 2)`` in [0, 1], so phase
noise and DAC steps act on them as on every other heater.

Encoder: each preprocessing photodiode's current drives modulators on carriers from the
chip's laser; ONN input mode j carries ``x_j = cos(g_j I_{j mod ports} + beta_j)`` (a
Mach-Zehnder modulator's field transfer, gain ``g_j = exp(log_gain_j)`` in rad per unit
intensity, bias ``beta_j`` in rad). This turns the linear intensity of the sum into K periodic features,
the first stage the paper's dense analogue encoding lacks.
The ``code`` initialisation (:func:`code_encoder`) puts feature j exactly on output bit
``j mod b``: with Gray outputs every bit is a square wave of the sum with half its period
on, so ``cos^2`` of a feature at its period and phase is that bit, and the training only
has to keep the gains (the LSB's to ~1e-4 relative for N=4, b=8; see
``TrainOptions.phase_gain_steps``), route the features and buy margin.

Between layers an electronic detect-and-re-modulate stage per channel (photodiode,
transimpedance amplifier with a trainable gain, Mach-Zehnder modulator on a fresh carrier
from the chip's laser, as the electro-optic activations of Williamson et al., IEEE JSTQE
2020): ``x_next = cos(g I + beta)`` with ``I = |z|^2`` the detected intensity, ``g`` the
gain in rad per unit intensity and ``beta`` the modulator bias in rad. The output layer's
modes ``0 .. b-1`` go to photodiodes and comparators (threshold detection,
:data:`~optinc_compiler.aggregator.encoding.DETECTION_THRESHOLD`).

Parameters: ``{"encoder": {"log_gain", "bias"}, "layers": [layer, ...]}`` with a dict per
layer (``theta``, ``phi``, ``delta`` per mesh, ``att`` the attenuator phases,
``gain``/``bias`` for the electronics after the layer); a ud-seg layer has ``tiles``
instead, ``tiles[r][c]`` a dict ``theta``, ``phi``, ``delta``, ``att`` per tile.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt
from jax.flatten_util import ravel_pytree

from optinc_compiler import decompose
from optinc_compiler.aggregator.encoding import (
    LAYER_TYPES,
    MAX_DEPTH,
    MAX_WIDTH,
    PREPROCESSINGS,
    AggregatorSpec,
    preprocessing_matrix,
)
from optinc_compiler.errors import InputError

Params = dict[str, Any]


@dataclass(frozen=True)
class Architecture:
    """The ONN's shape: N, b, preprocessing, layer type, width K, depth D (layers) and the
    tile size k of ud-seg layers (None for the others)."""

    spec: AggregatorSpec
    preprocessing: str = "sum"
    layer_type: str = "ud"
    width: int = 6
    depth: int = 3
    block_size: int | None = None

    def __post_init__(self) -> None:
        if self.preprocessing not in PREPROCESSINGS:
            raise InputError(
                f"unknown preprocessing {self.preprocessing!r}; allowed: {', '.join(PREPROCESSINGS)}"
            )
        if self.layer_type not in LAYER_TYPES:
            raise InputError(f"unknown layer type {self.layer_type!r}; allowed: {', '.join(LAYER_TYPES)}")
        need = max(self.ports, self.spec.bits, 2)
        if self.width < need:
            raise InputError(f"width K = {self.width} is too small; allowed K >= {need} for this N, b")
        if self.width > MAX_WIDTH:
            raise InputError(f"width K = {self.width} is not allowed; use K <= {MAX_WIDTH}")
        if not 1 <= self.depth <= MAX_DEPTH:
            raise InputError(f"depth D = {self.depth} is not allowed; use 1 <= D <= {MAX_DEPTH}")
        _check_block_size(self.layer_type, self.width, self.block_size)

    @property
    def ports(self) -> int:
        """Preprocessing output ports (photodiodes)."""
        return 1 if self.preprocessing == "sum" else self.spec.bits

    @property
    def meshes_per_layer(self) -> int:
        """1 for ud, 2 for svd, one per tile for ud-seg."""
        if self.layer_type == "ud-seg":
            return len(self.tile_sizes) ** 2
        return 1 if self.layer_type == "ud" else 2

    @property
    def tile_sizes(self) -> tuple[int, ...]:
        """Sizes of the block rows (= block columns) of a ud-seg layer; () for the others."""
        return tile_sizes(self.width, self.block_size) if self.block_size is not None else ()

    @property
    def mzis_per_mesh(self) -> int:
        """``K (K - 1) / 2``."""
        return self.width * (self.width - 1) // 2


def _check_block_size(layer_type: str, width: int, block_size: int | None) -> None:
    """A tile size k with 1 < k < K for ud-seg, none for the other layer types."""
    if layer_type != "ud-seg":
        if block_size is not None:
            raise InputError(
                f"block size k = {block_size} is only for layer type 'ud-seg', not {layer_type!r}"
            )
        return
    if block_size is None:
        raise InputError(f"layer type 'ud-seg' needs a block size k; allowed 1 < k < K = {width}")
    if not 1 < block_size < width:
        raise InputError(
            f"block size k = {block_size} is not allowed for width K = {width}; use 1 < k < {width}"
        )


def tile_sizes(width: int, block_size: int) -> tuple[int, ...]:
    """Block row (= column) sizes of a K x K layer cut into k x k tiles: ``(k, ..., k, K mod
    k)``, the last one smaller when k does not divide K (as ``compiler._segmented_blocks``)."""
    return tuple(min(block_size, width - r) for r in range(0, width, block_size))


def fan_amplitude(n_block_rows: int, n_block_cols: int) -> float:
    """``1 / sqrt(R C)``: the amplitude an even 1-to-R splitter chain and a coherent C-to-1
    combiner chain leave of the tile sums of a segmented layer."""
    return 1.0 / float(np.sqrt(n_block_rows * n_block_cols))


@dataclass(frozen=True, eq=False)
class MeshLayout:
    """Where the MZIs of a Clements mesh of K modes sit, and per column the gather indices.

    Attributes:
        modes: (M,) upper mode of each MZI, in light order (as ``decompose.clements``).
        columns: (M,) column of each MZI.
        mzi_of: (C, K) MZI acting on each mode in each column (M if none).
        role: (C, K) 0 on the upper mode of an MZI, 1 on the lower (0 if none).
        partner: (C, K) the other mode of that MZI (the mode itself if none).
    """

    modes: npt.NDArray[np.int64]
    columns: npt.NDArray[np.int64]
    mzi_of: npt.NDArray[np.int64]
    role: npt.NDArray[np.int64]
    partner: npt.NDArray[np.int64]


@functools.cache
def mesh_layout(width: int) -> MeshLayout:
    """The Clements layout of ``width`` modes, the one the compiler draws."""
    mesh = decompose.clements(np.eye(width))
    modes, columns = mesh.modes, mesh.columns
    n_cols = int(columns.max()) + 1 if columns.size else 0
    mzi_of = np.full((n_cols, width), modes.size, dtype=np.int64)
    role = np.zeros((n_cols, width), dtype=np.int64)
    partner = np.tile(np.arange(width), (n_cols, 1))
    for k, (m, c) in enumerate(zip(modes.tolist(), columns.tolist(), strict=True)):
        mzi_of[c, m], mzi_of[c, m + 1] = k, k
        role[c, m + 1] = 1
        partner[c, m], partner[c, m + 1] = m + 1, m
    return MeshLayout(modes=modes, columns=columns, mzi_of=mzi_of, role=role, partner=partner)


def mzi_blocks(theta: jax.Array, phi: jax.Array) -> jax.Array:
    """Closed form of ``B P(theta) B P(phi)`` (mzi.py), batched: (M, 2, 2)."""
    k = 1j * jnp.exp(0.5j * theta)
    s, c, e = jnp.sin(0.5 * theta), jnp.cos(0.5 * theta), jnp.exp(1j * phi)
    return jnp.stack([jnp.stack([k * e * s, k * c], -1), jnp.stack([k * e * c, -k * s], -1)], -2)


def mesh_matrix(theta: jax.Array, phi: jax.Array, delta: jax.Array) -> jax.Array:
    """``U = diag(e^{i delta}) T_M ... T_1`` of the Clements mesh of ``delta.size`` modes."""
    width = delta.shape[-1]
    lay = mesh_layout(width)
    blocks = jnp.concatenate([mzi_blocks(theta, phi), jnp.eye(2, dtype=jnp.complex128)[None]], axis=0)
    u = jnp.eye(width, dtype=blocks.dtype)
    for c in range(lay.mzi_of.shape[0]):
        t = blocks[lay.mzi_of[c]]  # (K, 2, 2)
        r = lay.role[c]
        diag = t[jnp.arange(width), r, r]
        off = t[jnp.arange(width), r, 1 - r]
        u = diag[:, None] * u + off[:, None] * u[lay.partner[c]]
    return jnp.exp(1j * delta)[:, None] * u


def attenuation(att: jax.Array) -> jax.Array:
    """Attenuator amplitude ``a = |sin(theta_a / 2)|`` in [0, 1] of its heater phase."""
    return jnp.abs(jnp.sin(0.5 * att))


def layer_matrix(layer: dict[str, Any], layer_type: str) -> jax.Array:
    """``U diag(a)`` (ud), ``U_2 diag(a) U_1`` (svd) or the segmented matrix (ud-seg) of one
    layer's parameters."""
    if layer_type == "ud-seg":
        return segmented_matrix(layer["tiles"])
    a = attenuation(layer["att"])
    u = mesh_matrix(layer["theta"], layer["phi"], layer["delta"])
    if layer_type == "ud":
        return u * a[None, :]
    u1 = mesh_matrix(layer["theta1"], layer["phi1"], layer["delta1"])
    return (u * a[None, :]) @ u1


def tile_matrix(tile: dict[str, jax.Array], rows: int) -> jax.Array:
    """``U[:rows, :m] diag(a)`` of one tile: m attenuators, then a mesh of ``delta.size`` modes."""
    a = attenuation(tile["att"])
    u = mesh_matrix(tile["theta"], tile["phi"], tile["delta"])
    return u[:rows, : a.shape[-1]] * a[None, :]


def segmented_matrix(tiles: list[list[dict[str, jax.Array]]]) -> jax.Array:
    """``sum_b embed(U_b D_b) / sqrt(R C)`` of a ud-seg layer's ``tiles[r][c]`` (module
    docstring); block row r has the height of block column r (the layer is square)."""
    sizes = [int(t["att"].shape[-1]) for t in tiles[0]]
    grid = [[tile_matrix(t, rows) for t in row] for row, rows in zip(tiles, sizes, strict=True)]
    return jnp.block(grid) * fan_amplitude(len(tiles), len(sizes))


def encode(arch: Architecture, encoder: dict[str, jax.Array], intensities: jax.Array) -> jax.Array:
    """(S, K) real fields entering the first layer for photodiode intensities (S, ports)."""
    drive = intensities[:, jnp.arange(arch.width) % arch.ports]
    return jnp.cos(jnp.exp(encoder["log_gain"]) * drive + encoder["bias"])


def forward(arch: Architecture, params: Params, intensities: jax.Array) -> jax.Array:
    """Output intensities (S, b) at the comparators for preprocessing intensities (S, ports)."""
    x = encode(arch, params["encoder"], intensities).astype(jnp.complex128)
    layers = params["layers"]
    for i, layer in enumerate(layers):
        z = x @ layer_matrix(layer, arch.layer_type).T
        intensity = jnp.abs(z) ** 2
        if i == len(layers) - 1:
            return intensity[:, : arch.spec.bits]
        x = jnp.cos(layer["gain"] * intensity + layer["bias"]).astype(jnp.complex128)
    raise AssertionError("unreachable: depth >= 1")


def init_params(
    arch: Architecture, key: jax.Array, encoder_init: str = "random", output_code: str = "binary"
) -> Params:
    """Random phases (uniform), attenuators near 0.9, random gains and biases; encoder
    gains as :func:`encoder_log_gain` says (``code``: gains and biases as
    :func:`code_encoder` for ``output_code``)."""
    layers: list[dict[str, jax.Array]] = []
    k, m = arch.width, arch.mzis_per_mesh
    key, k_gain, k_bias = jax.random.split(key, 3)
    if encoder_init == "code":
        encoder = code_encoder(arch, output_code, k_gain)
    else:
        encoder = {
            "log_gain": encoder_log_gain(arch, k_gain, encoder_init),
            "bias": jax.random.uniform(k_bias, (k,), maxval=2 * np.pi),
        }
    for i in range(arch.depth):
        key, *ks = jax.random.split(key, 10)
        if arch.layer_type == "ud-seg":
            layer: dict[str, Any] = {"tiles": _init_tiles(arch.tile_sizes, ks[8])}
        else:
            layer = _init_mesh(ks[0], ks[1], ks[2], k)
        if arch.layer_type == "svd":
            layer["theta1"] = jax.random.uniform(ks[3], (m,), maxval=np.pi)
            layer["phi1"] = jax.random.uniform(ks[4], (m,), maxval=2 * np.pi)
            layer["delta1"] = jax.random.uniform(ks[5], (k,), maxval=2 * np.pi)
        if i < arch.depth - 1:
            layer["gain"] = jax.random.uniform(ks[6], (k,), minval=1.0, maxval=4.0)
            layer["bias"] = jax.random.uniform(ks[7], (k,), maxval=2 * np.pi)
        layers.append(layer)
    return {"encoder": encoder, "layers": layers}


def _init_mesh(
    k_theta: jax.Array, k_phi: jax.Array, k_att: jax.Array, modes: int, inputs: int | None = None
) -> dict[str, jax.Array]:
    """Phases uniform, output phases 0, ``inputs`` (default: all modes) attenuators near 0.9."""
    m, n_att = modes * (modes - 1) // 2, modes if inputs is None else inputs
    return {
        "theta": jax.random.uniform(k_theta, (m,), maxval=np.pi),
        "phi": jax.random.uniform(k_phi, (m,), maxval=2 * np.pi),
        "delta": jnp.zeros((modes,)),
        "att": jnp.full((n_att,), 2.2) + 0.1 * jax.random.normal(k_att, (n_att,)),
    }


def _init_tiles(sizes: tuple[int, ...], key: jax.Array) -> list[list[dict[str, jax.Array]]]:
    """``tiles[r][c]`` initialised as a ud layer of ``max(m_r, m_c)`` modes, ``m_c`` inputs."""
    n = len(sizes)
    keys = jax.random.split(key, 3 * n * n)

    def tile(r: int, c: int) -> dict[str, jax.Array]:
        i = 3 * (r * n + c)
        return _init_mesh(keys[i], keys[i + 1], keys[i + 2], max(sizes[r], sizes[c]), sizes[c])

    return [[tile(r, c) for c in range(n)] for r in range(n)]


ENCODER_INITS = ("random", "bits", "code")
#: Jitter of the ``code`` encoder init, in rad of modulator phase at full-scale intensity.
CODE_INIT_JITTER_RAD = 0.02


def code_encoder(arch: Architecture, output_code: str, key: jax.Array) -> dict[str, jax.Array]:
    """Encoder gains and biases with ``cos^2(g I + beta) > 1/2`` exactly where output bit
    ``j mod b`` of ``output_code`` is one (``sum`` preprocessing): each output bit is a
    square wave of the sum s with half its period on, from the first s of ``y = 2^k`` (period
    ``2^(k+1)`` levels of y in binary, ``2^(k+2)`` in Gray below the top bit), and the
    feature's gain and bias put its period and centre there. Features ``j >= b`` are the third
    harmonics (``cos(3 (g I + beta))``) of bits ``b - 1, b - 2, ...``: the field series
    ``cos x - cos(3 x) / 3`` of a square wave, to sharpen the slow top bits. Jitter:
    :data:`CODE_INIT_JITTER_RAD` of phase at full scale on the gain, the same on the bias.
    Other preprocessings: InputError."""
    if arch.preprocessing != "sum":
        raise InputError(f"encoder init 'code' needs the 'sum' preprocessing, not {arch.preprocessing!r}")
    gain, bias = code_features(arch.spec, output_code, arch.width)
    k_gain, k_bias = jax.random.split(key)
    jitter = CODE_INIT_JITTER_RAD * jax.random.normal(k_gain, gain.shape)
    return {
        "log_gain": jnp.log(gain) + jitter / gain,
        "bias": jnp.asarray(bias) + CODE_INIT_JITTER_RAD * jax.random.normal(k_bias, bias.shape),
    }


def code_features(spec: AggregatorSpec, output_code: str, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(width,) gains (rad per unit intensity) and biases (rad) of :func:`code_encoder`,
    without jitter. Where a bit is on for exactly half of its period in s (every Gray bit
    and binary bits above the LSB for even N) ``cos^2 > 1/2`` is that bit exactly; else
    the feature is centred on the bit's ones."""
    from optinc_compiler.aggregator.encoding import target_codes

    n, b, top = spec.servers, spec.bits, spec.max_sum
    sums = np.arange(2 * top + 4 * n * 2**b)
    targets = target_codes(sums, servers=n)
    gains, biases = np.zeros(width), np.zeros(width)
    for j in range(width):
        k = j if j < b else b - 1 - (j - b) % b  # extras: the top bits first
        period_y = 2 ** (k + 2) if output_code == "gray" and k < b - 1 else 2 ** (k + 1)
        first = int(sums[targets == 2**k].min())
        last = int(sums[targets == 2**k + period_y // 2 - 1].max())
        centre, period_s = 0.5 * (first + last), float(n * period_y)
        gains[j] = np.pi * top / period_s  # cos^2 has period pi
        biases[j] = -np.pi * centre / period_s
    harmonic = np.where(np.arange(width) < b, 1.0, 3.0)
    return harmonic * gains, harmonic * biases


def encoder_log_gain(arch: Architecture, key: jax.Array, encoder_init: str = "random") -> jax.Array:
    """Initial encoder log-gains. ``random``: log-uniform between the frequencies of the
    lowest and the highest output bit. ``bits``: feature j at the period of output bit
    ``j mod b``, ``g = pi (N (2^b - 1)) / (2^(k + 1) N)`` rad per unit intensity, so that
    ``cos^2`` of it flips where bit k does (5% jitter)."""
    spec = arch.spec
    if encoder_init == "bits":
        bit = np.arange(arch.width) % spec.bits
        base = np.log(np.pi * spec.max_sum / (2.0 ** (bit + 1) * spec.servers))
        return jnp.asarray(base) + 0.05 * jax.random.normal(key, (arch.width,))
    if encoder_init == "random":
        top = np.pi * spec.max_sum / spec.servers
        return np.log(top) - np.log(2.0**spec.bits) * jax.random.uniform(key, (arch.width,))
    raise InputError(f"unknown encoder init {encoder_init!r}; allowed: {', '.join(ENCODER_INITS)}")


#: Parameters that are heater phases (noise and DAC act on them); gain/bias are electronic.
PHASE_KEYS = ("theta", "phi", "delta", "att", "theta1", "phi1", "delta1", "tiles")


def perturb(params: Params, key: jax.Array, *, noise_rad: float, dac_bits: int | None) -> Params:
    """Heater phases quantised to a ``dac_bits`` DAC over 2 pi (straight-through gradient),
    then Gaussian noise of ``noise_rad`` (one draw for all heaters); the electronic
    settings are left exact."""
    phases = [{n: v for n, v in layer.items() if n in PHASE_KEYS} for layer in params["layers"]]
    flat, unflatten = ravel_pytree(phases)
    if dac_bits is not None:
        step = 2 * np.pi / 2**dac_bits
        flat = flat + jax.lax.stop_gradient(jnp.round(flat / step) * step - flat)
    flat = flat + noise_rad * jax.random.normal(key, flat.shape, dtype=flat.dtype)
    layers = [{**layer, **new} for layer, new in zip(params["layers"], unflatten(flat), strict=True)]
    return {"encoder": params["encoder"], "layers": layers}


def preprocessing(arch: Architecture) -> npt.NDArray[np.float64]:
    """The preprocessing matrix of the architecture (ports x N b)."""
    return preprocessing_matrix(arch.spec, arch.preprocessing)
