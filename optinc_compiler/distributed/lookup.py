r"""What the aggregator chip computes, as a lookup table over its reduced input.

N servers quantise a gradient element to b bits with a shared scale (offset binary,
``q_i`` in 0..L, ``L = 2^b - 1``). The chip's optical preprocessing reduces the N b input
bits to one value:

* ``sum``: the binary-weighted sum ``s = sum_i q_i`` (0..N L, ``N L + 1`` table entries);
* ``per_bit``: the count of ones per bit position across servers, ``c_k`` in 0..N,
  indexed ``sum_k c_k (N+1)^k`` (``(N+1)^b`` entries).

The chip then outputs the b bits of ``round_half_to_even(s / N)`` (ideally; a chip with
phase errors occasionally outputs another code): ``table[index]``. The electronic stand-in
of the preprocessing in a data-centre is a sum all-reduce of the codes (or of the bit
planes), so applying ``table`` to it reproduces the chip bit for bit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from optinc_compiler.errors import InputError

#: Elements per shared scale of the hook's quantiser (``hook.OptincState.scale_chunk``):
#: a chunk's own largest value sets its step, so small gradients (biases, later layers)
#: are not quantised on the scale of the largest. Here, not in ``hook``: no PyTorch.
DEFAULT_SCALE_CHUNK = 256

PREPROCESSINGS = ("sum", "per_bit")
Ints = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class ChipLookup:
    """The aggregator chip's output code for every reduced input."""

    servers: int
    bits: int
    preprocessing: str
    table: Ints
    source: str = "ideal"

    def __post_init__(self) -> None:
        if self.servers < 2:
            raise InputError(f"servers is {self.servers}; allowed: 2 or more")
        if not 1 <= self.bits <= 16:
            raise InputError(f"bits is {self.bits}; allowed: 1 to 16")
        if self.preprocessing not in PREPROCESSINGS:
            raise InputError(f"preprocessing {self.preprocessing!r}; allowed: {', '.join(PREPROCESSINGS)}")
        size = n_inputs(self.servers, self.bits, self.preprocessing)
        table = np.asarray(self.table)
        if table.shape != (size,) or not np.issubdtype(table.dtype, np.integer):
            raise InputError(f"lookup table has shape {table.shape}; allowed: ({size},) integers")
        if table.min() < 0 or table.max() > levels(self.bits):
            raise InputError(f"lookup table codes must lie in 0..{levels(self.bits)}")

    @property
    def levels(self) -> int:
        """Largest code L = 2^b - 1."""
        return levels(self.bits)

    def bit_errors(self, reference: ChipLookup) -> int:
        """Output bits that differ from ``reference`` over all reduced inputs."""
        diff = np.bitwise_xor(self.table, reference.table)
        return int(sum(bin(int(x)).count("1") for x in diff))


def levels(bits: int) -> int:
    """Largest b-bit code."""
    return (1 << bits) - 1


def n_inputs(servers: int, bits: int, preprocessing: str) -> int:
    """Entries of the table: N L + 1 sums, or (N + 1)^b per-bit counts."""
    return servers * levels(bits) + 1 if preprocessing == "sum" else (servers + 1) ** bits


def target_codes(sums: Ints, servers: int) -> Ints:
    """``round_half_to_even(s / N)`` in integer arithmetic."""
    return np.asarray(np.rint(np.asarray(sums) / servers).astype(np.int64))


def ideal_lookup(servers: int, bits: int, preprocessing: str = "sum") -> ChipLookup:
    """The table of a perfect chip."""
    size = n_inputs(servers, bits, preprocessing)
    if preprocessing == "sum":
        sums = np.arange(size)
    else:
        counts = (np.arange(size)[:, None] // (servers + 1) ** np.arange(bits)[None, :]) % (servers + 1)
        sums = counts @ (1 << np.arange(bits))
    return ChipLookup(servers, bits, preprocessing, target_codes(sums, servers), source="ideal")


def save_lookup(lookup: ChipLookup, path: Path) -> Path:
    """JSON: ``{"format": "optinc-lookup", "version": 1, servers, bits, preprocessing, source, table}``."""
    from optinc_compiler.program import write_text_atomic

    doc = {
        "format": "optinc-lookup",
        "version": 1,
        "servers": lookup.servers,
        "bits": lookup.bits,
        "preprocessing": lookup.preprocessing,
        "source": lookup.source,
        "table": [int(x) for x in lookup.table],
    }
    return write_text_atomic(path, json.dumps(doc) + "\n")


def load_lookup(path: Path) -> ChipLookup:
    """Read a lookup file written by ``save_lookup``."""
    if not path.is_file():
        raise InputError(f"lookup file {str(path)!r} does not exist")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{str(path)!r} is not valid JSON ({exc.msg})") from None
    if isinstance(doc, dict) and doc.get("format") == AGGREGATOR_LUT and doc.get("version") == 1:
        return _from_aggregator(doc, path)
    if not isinstance(doc, dict) or doc.get("format") != "optinc-lookup" or doc.get("version") != 1:
        raise InputError(f"{str(path)!r} is not an optinc-lookup (or {AGGREGATOR_LUT}) file of version 1")
    try:
        return ChipLookup(
            servers=int(doc["servers"]),
            bits=int(doc["bits"]),
            preprocessing=str(doc["preprocessing"]),
            table=np.asarray(doc["table"], dtype=np.int64),
            source=str(doc.get("source", path.name)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{str(path)!r}: missing or bad field ({exc})") from None


#: The lookup file ``optinc aggregator`` writes next to a compiled aggregator chip.
AGGREGATOR_LUT = "optinc-aggregator-lut"


def _from_aggregator(doc: dict[str, object], path: Path) -> ChipLookup:
    """An ``optinc-aggregator-lut`` file: entries ``{input, output}`` where the input is
    the sum s (``sum``) or the counts of ones per bit position, LSB first (``bitwise``)."""
    try:
        servers, bits = int(str(doc["servers"])), int(str(doc["bits"]))
        preprocessing = {"sum": "sum", "bitwise": "per_bit"}[str(doc["preprocessing"])]
        entries = doc["entries"]
        assert isinstance(entries, list)
        table = np.full(n_inputs(servers, bits, preprocessing), -1, dtype=np.int64)
        for e in entries:
            key = e["input"]
            index = (
                int(key)
                if preprocessing == "sum"
                else sum(int(c) * (servers + 1) ** k for k, c in enumerate(key))
            )
            table[index] = int(e["output"])
    except (KeyError, TypeError, ValueError, IndexError, AssertionError) as exc:
        raise InputError(f"{str(path)!r}: not a readable {AGGREGATOR_LUT} file ({exc!r})") from None
    if (table < 0).any():
        raise InputError(f"{str(path)!r}: the lookup misses {int((table < 0).sum())} reduced input(s)")
    return ChipLookup(servers, bits, preprocessing, table, source=path.parent.name or path.name)


def noisy_chip_sampler(design_folder: Path, *, noise_rad: float, dac_bits: int | None = 12) -> Any:
    """``rng -> table`` of the aggregator chip in ``design_folder`` with Gaussian phase
    noise of ``noise_rad`` on every heater (``aggregator.evaluate.noisy_lookup``)."""
    from optinc_compiler.aggregator import evaluate

    if not noise_rad >= 0:
        raise InputError(f"phase noise is {noise_rad} rad; allowed: >= 0")
    chip = evaluate.load_design(design_folder)
    size = n_inputs(chip.electronics.spec.servers, chip.electronics.spec.bits, "sum")

    def sample(rng: np.random.Generator) -> Ints:
        sums, codes = evaluate.noisy_lookup(chip, rng, noise_rad=noise_rad, dac_bits=dac_bits)
        table = np.zeros(size, dtype=np.int64)
        table[sums] = codes
        return table

    return sample


def design_lookup(design: Path) -> ChipLookup:
    """The lookup of an aggregator design: a design folder (its ``lut.json``) or a lookup
    file."""
    path = design / "lut.json" if design.is_dir() else design
    if design.is_dir() and not path.is_file():
        raise InputError(
            f"design folder {str(design)!r} has no lut.json (write it with optinc aggregator train)"
        )
    return load_lookup(path)
