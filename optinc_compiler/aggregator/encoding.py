r"""The aggregator's function, its optical encoding and the preprocessing stage.

OptINC (arXiv 2603.28290, Fei, Zhang, Li, Schlichtmann 2026), section on the dataset and
preprocessing.

Function: N servers quantise a gradient element with a shared scale to an offset-binary
code ``q_i`` in ``0 .. 2^b - 1``; the chip returns ``y = round_half_to_even(sum_i q_i / N)``
as b bits to every server, bit-exact for every combination of inputs.

Encoding:

* Inputs: server i sends bit k of ``q_i`` on its own channel ``i * b + k`` as on/off
  keying: power 1 (field amplitude 1) for a one, dark for a zero. The servers' lasers are
  independent, so different channels are mutually incoherent: a photodiode behind a
  linear optical circuit ``P`` measures ``I_p = sum_c |P[p, c]|^2 x_c`` (the cross terms
  beat at the lasers' frequency differences, far above the detector bandwidth, and
  average out). With on/off inputs ``x_c = x_c^2``, so this sum is exactly linear in the
  bits: no phase locking between servers is needed.
* Preprocessing: a fixed passive linear optical stage ``P`` (ports x N b, orthonormal
  rows, so it is a slice of a unitary and compiles to lossless meshes), one photodiode per
  port:

  - ``sum``: one port, ``|P[0, i b + k]|^2 = 2^k / (N (2^b - 1))``: the binary-weighted
    power sum of all channels, intensity ``s / (N (2^b - 1))`` with ``s = sum_i q_i``. The
    target depends on s alone, so the ONN must learn ``N (2^b - 1) + 1`` inputs instead of
    ``2^(N b)``.
  - ``bitwise``: b ports, ``|P[k, i b + k]|^2 = 1 / N``: port k measures the fraction
    ``c_k / N`` of servers whose bit k is one; ``(N + 1)^b`` inputs, and
    ``s = sum_k 2^k c_k`` still determines the target.

* ONN input: each preprocessing photocurrent drives Mach-Zehnder modulators on carriers
  from the chip's own laser (the encoder stage of :mod:`~optinc_compiler.aggregator.model`),
  so the ONN itself is coherent.
* Output: the last layer's modes ``0 .. b-1`` carry the b output bits (LSB on mode 0); a
  photodiode measures the intensity ``|E|^2`` and a comparator reads a one above
  ``DETECTION_THRESHOLD`` (0.5 of one carrier's power).
* Output code: ``binary`` (the bits of ``y``) or ``gray`` (the bits of the reflected Gray
  code ``y ^ (y >> 1)``, which the receiving electronics turn back into ``y`` with b - 1
  XOR gates). With Gray outputs only one bit changes between neighbouring averages, so
  a preprocessing error that moves the analogue input across a decision boundary costs
  one level of the average, never more: with binary outputs every bit flips at
  ``y = 2^(b-1) - 1 -> 2^(b-1)``, exactly where gradient codes cluster (their zero is
  ``(2^b - 1) / 2``), and a chip whose bit thresholds do not coincide there outputs 0 or
  ``2^b - 1`` for a near-zero average.

This module is numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from optinc_compiler.errors import InputError

PREPROCESSINGS = ("sum", "bitwise")
OUTPUT_CODES = ("binary", "gray")
#: ONN layer types, and the program method each compiles to (``export``).
LAYER_TYPES = ("ud", "svd", "ud-seg")
LAYER_METHODS = {"ud": "ud", "svd": "svd", "ud-seg": "ud-segmented"}
#: Modes K per ONN layer and layers D the tools accept: the committed designs use
#: K <= 12, D <= 3; training cost grows as K^2 D.
MAX_WIDTH, MAX_DEPTH = 64, 16
#: Photodiode intensity threshold of the output comparators (units of one "on" channel).
DETECTION_THRESHOLD = 0.5
#: Largest N and b the tools accept (the reduced datasets stay small below these).
MAX_SERVERS, MAX_BITS = 64, 16
#: Largest raw input space ``2^(N b)`` evaluated exhaustively (else pass a sample size).
MAX_EXHAUSTIVE_RAW_BITS = 20
#: Largest reduced dataset (and lookup table) the tools build: every ``sum`` table up to
#: N = 64, b = 16 (4,194,241 entries) fits; ``bitwise`` ones grow as (N + 1)^b.
MAX_REDUCED_INPUTS = 2**22
#: Seeds of training, sampling and noise draws: what numpy and jax.random.PRNGKey take.
MAX_SEED = 2**32 - 1
#: Raw inputs ``--sample`` may draw: as many as an exhaustive evaluation takes.
MAX_SAMPLE = 2**MAX_EXHAUSTIVE_RAW_BITS

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class AggregatorSpec:
    """N servers, b bits each; checked at construction.

    Attributes:
        servers: number of servers N (2 .. MAX_SERVERS).
        bits: bits per code b (1 .. MAX_BITS).
    """

    servers: int
    bits: int

    def __post_init__(self) -> None:
        if not 2 <= self.servers <= MAX_SERVERS:
            raise InputError(f"servers N = {self.servers} is not allowed; use 2 <= N <= {MAX_SERVERS}")
        if not 1 <= self.bits <= MAX_BITS:
            raise InputError(f"bits b = {self.bits} is not allowed; use 1 <= b <= {MAX_BITS}")

    @property
    def max_code(self) -> int:
        """Largest code ``2^b - 1``."""
        return 2**self.bits - 1

    @property
    def max_sum(self) -> int:
        """Largest sum of codes ``N (2^b - 1)``."""
        return self.servers * self.max_code

    @property
    def raw_size(self) -> int:
        """Size of the raw input space ``2^(N b)`` (a Python int: it can be huge)."""
        return 2 ** (self.servers * self.bits)

    @property
    def channels(self) -> int:
        """Input channels ``N b``."""
        return self.servers * self.bits


def target_codes(sums: npt.ArrayLike, *, servers: int) -> IntArray:
    """``round_half_to_even(s / N)`` in exact integer arithmetic."""
    s = np.asarray(sums, dtype=np.int64)
    q, r = np.divmod(s, servers)
    up = (2 * r > servers) | ((2 * r == servers) & (q % 2 == 1))
    return q + up.astype(np.int64)


def code_bits(codes: npt.ArrayLike, *, bits: int) -> IntArray:
    """Bits of codes, LSB first: shape ``(*codes.shape, bits)``."""
    c = np.asarray(codes, dtype=np.int64)
    return (c[..., None] >> np.arange(bits)) & 1


def output_bits(codes: npt.ArrayLike, *, bits: int, output_code: str) -> IntArray:
    """Bits on the output photodiodes for codes, LSB first: of the code (``binary``) or of
    its reflected Gray code ``c ^ (c >> 1)`` (``gray``)."""
    c = np.asarray(codes, dtype=np.int64)
    if output_code == "gray":
        return code_bits(c ^ (c >> 1), bits=bits)
    if output_code == "binary":
        return code_bits(c, bits=bits)
    raise InputError(f"unknown output code {output_code!r}; allowed: {', '.join(OUTPUT_CODES)}")


def codes_of_output_bits(bits: npt.ArrayLike, *, output_code: str) -> IntArray:
    """Codes from output bits (..., b), LSB first: the inverse of :func:`output_bits`."""
    b = np.asarray(bits, dtype=np.int64)
    c = b @ (2 ** np.arange(b.shape[-1], dtype=np.int64))
    if output_code == "binary":
        return np.asarray(c)
    if output_code != "gray":
        raise InputError(f"unknown output code {output_code!r}; allowed: {', '.join(OUTPUT_CODES)}")
    shift = 1
    while shift < b.shape[-1]:  # prefix XOR of the higher Gray bits
        c = c ^ (c >> shift)
        shift *= 2
    return np.asarray(c)


def raw_channels(codes: npt.ArrayLike, *, bits: int) -> FloatArray:
    """Channel powers (M, N b), 0 or 1, of codes (M, N): channel ``i b + k`` is bit k of server i."""
    c = np.asarray(codes, dtype=np.int64)
    return code_bits(c, bits=bits).reshape(c.shape[0], -1).astype(np.float64)


def preprocessing_matrix(spec: AggregatorSpec, preprocessing: str) -> FloatArray:
    """The passive preprocessing ``P`` (ports x N b) with orthonormal rows (module docstring)."""
    n, b = spec.servers, spec.bits
    if preprocessing == "sum":
        weights = np.tile(2.0 ** np.arange(b), n)
        return np.sqrt(weights / (n * (2.0**b - 1.0)))[None, :]
    if preprocessing == "bitwise":
        p = np.zeros((b, n * b))
        for k in range(b):
            p[k, k::b] = 1.0 / np.sqrt(n)
        return p
    raise InputError(f"unknown preprocessing {preprocessing!r}; allowed: {', '.join(PREPROCESSINGS)}")


@dataclass(frozen=True, eq=False)
class ReducedDataset:
    """Every distinct preprocessed input with its target.

    Attributes:
        spec: N and b.
        preprocessing: ``sum`` or ``bitwise``.
        intensities: (M, ports) photodiode intensities at the preprocessing outputs.
        sums: (M,) the sum of codes s each row stands for (one representative per row).
        targets: (M,) target codes ``round_half_to_even(s / N)``.
    """

    spec: AggregatorSpec
    preprocessing: str
    intensities: FloatArray
    sums: IntArray
    targets: IntArray

    @property
    def size(self) -> int:
        """Number of distinct reduced inputs."""
        return int(self.sums.size)

    @property
    def target_bits(self) -> IntArray:
        """(M, b) target bits, LSB first."""
        return code_bits(self.targets, bits=self.spec.bits)


def reduced_dataset(spec: AggregatorSpec, preprocessing: str = "sum") -> ReducedDataset:
    """All reduced inputs: the sums 0..N(2^b-1), or all count vectors in {0..N}^b;
    InputError above :data:`MAX_REDUCED_INPUTS`."""
    check_reduced_size(spec, preprocessing)
    if preprocessing == "sum":
        sums = np.arange(spec.max_sum + 1, dtype=np.int64)
        intensities = sums[:, None] / float(spec.max_sum)
    else:
        grids = np.meshgrid(*[np.arange(spec.servers + 1)] * spec.bits, indexing="ij")
        counts = np.stack([g.ravel() for g in grids], axis=1).astype(np.int64)  # (M, b)
        sums = counts @ (2 ** np.arange(spec.bits, dtype=np.int64))
        intensities = counts / float(spec.servers)
    return ReducedDataset(
        spec=spec,
        preprocessing=preprocessing,
        intensities=np.asarray(intensities, dtype=np.float64),
        sums=sums,
        targets=target_codes(sums, servers=spec.servers),
    )


def detected_intensities(matrix: npt.ArrayLike, channels: npt.ArrayLike) -> FloatArray:
    """Photodiode intensities (M, ports) behind ``matrix`` (ports x N b) for mutually
    incoherent channel powers (M, N b): ``|matrix|^2 @ powers``."""
    power = np.abs(np.asarray(matrix)) ** 2
    return np.asarray(np.asarray(channels, dtype=np.float64) @ power.T, dtype=np.float64)


def reduced_size(spec: AggregatorSpec, preprocessing: str) -> int:
    """Number of reduced inputs without building them."""
    if preprocessing not in PREPROCESSINGS:
        raise InputError(f"unknown preprocessing {preprocessing!r}; allowed: {', '.join(PREPROCESSINGS)}")
    return spec.max_sum + 1 if preprocessing == "sum" else (spec.servers + 1) ** spec.bits


def check_reduced_size(spec: AggregatorSpec, preprocessing: str) -> int:
    """The number of reduced inputs; InputError above :data:`MAX_REDUCED_INPUTS`."""
    size = reduced_size(spec, preprocessing)
    if size > MAX_REDUCED_INPUTS:
        raise InputError(
            f"N = {spec.servers}, b = {spec.bits} with {preprocessing!r} preprocessing gives {size:,} "
            f"reduced inputs; allowed: at most {MAX_REDUCED_INPUTS:,}"
        )
    return size


def all_raw_codes(spec: AggregatorSpec) -> IntArray:
    """Every raw input (2^(N b), N); InputError above ``MAX_EXHAUSTIVE_RAW_BITS``."""
    if spec.channels > MAX_EXHAUSTIVE_RAW_BITS:
        raise InputError(
            f"N*b = {spec.channels} gives 2^{spec.channels} raw inputs, too many to enumerate; "
            f"allowed N*b <= {MAX_EXHAUSTIVE_RAW_BITS}, or sample raw inputs"
        )
    flat = np.arange(spec.raw_size, dtype=np.int64)
    return (flat[:, None] >> (spec.bits * np.arange(spec.servers))) & spec.max_code


def sample_raw_codes(spec: AggregatorSpec, n_samples: int, rng: np.random.Generator) -> IntArray:
    """``n_samples`` raw inputs (n_samples, N), uniform over the codes, from a seeded rng."""
    if n_samples < 1:
        raise InputError(f"sample size {n_samples} is not allowed; use a positive number")
    if n_samples > MAX_SAMPLE:
        raise InputError(f"sample size {n_samples:,} is not allowed; use at most {MAX_SAMPLE:,} raw inputs")
    return rng.integers(0, spec.max_code + 1, size=(n_samples, spec.servers), dtype=np.int64)
