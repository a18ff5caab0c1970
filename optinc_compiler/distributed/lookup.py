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

from optinc_compiler.aggregator.encoding import MAX_BITS, MAX_REDUCED_INPUTS, MAX_SERVERS
from optinc_compiler.errors import InputError
from optinc_compiler.guard import as_dict, as_int, as_list, as_str, brief, get, quote, read_json

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
        if self.servers > MAX_SERVERS:
            raise InputError(f"servers is {self.servers}; allowed: at most {MAX_SERVERS}")
        if not 1 <= self.bits <= MAX_BITS:
            raise InputError(f"bits is {self.bits}; allowed: 1 to {MAX_BITS}")
        if self.preprocessing not in PREPROCESSINGS:
            raise InputError(
                f"preprocessing {quote(self.preprocessing)}; allowed: {', '.join(PREPROCESSINGS)}"
            )
        size = check_size(self.servers, self.bits, self.preprocessing)
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


def check_size(servers: int, bits: int, preprocessing: str) -> int:
    """The entries of a table; InputError above :data:`MAX_REDUCED_INPUTS`."""
    size = n_inputs(servers, bits, preprocessing)
    if size > MAX_REDUCED_INPUTS:
        raise InputError(
            f"a {preprocessing} lookup of {servers} servers and {bits} bits has {size:,} entries; "
            f"allowed: at most {MAX_REDUCED_INPUTS:,}"
        )
    return size


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
    from optinc_compiler.files import write_text_atomic

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
    """Read a lookup file written by ``save_lookup`` (or an ``optinc aggregator`` lut.json);
    InputError naming the file and the field for anything else."""
    doc = read_json(path, what="lookup file")
    source = f"lookup file {quote(path)}"
    fmt = doc.get("format") if type(doc) is dict else None
    if fmt not in ("optinc-lookup", AGGREGATOR_LUT) or doc.get("version") != 1:
        raise InputError(f"{source} is not an optinc-lookup (or {AGGREGATOR_LUT}) file of version 1")
    servers = as_int(get(doc, "servers", source=source), what=f"{source}: servers", lo=2, hi=MAX_SERVERS)
    bits = as_int(get(doc, "bits", source=source), what=f"{source}: bits", lo=1, hi=MAX_BITS)
    if fmt == AGGREGATOR_LUT:
        return _from_aggregator(doc, path, source, servers, bits)
    preprocessing = as_str(
        get(doc, "preprocessing", source=source), what=f"{source}: preprocessing", choices=PREPROCESSINGS
    )
    size = _checked_size(servers, bits, preprocessing, source)
    table = as_list(get(doc, "table", source=source), what=f"{source}: table", max_len=size)
    codes = _codes(table, bits, f"{source}: table")
    name = doc.get("source", path.name)
    return ChipLookup(servers, bits, preprocessing, codes, source=name if type(name) is str else path.name)


def _checked_size(servers: int, bits: int, preprocessing: str, source: str) -> int:
    try:
        return check_size(servers, bits, preprocessing)
    except InputError as exc:
        raise InputError(f"{source}: {exc}") from None


def _codes(values: list[Any], bits: int, what: str) -> Ints:
    """Output codes 0..L, each a JSON integer (not a float, not a bool)."""
    top = levels(bits)
    for i, x in enumerate(values):
        if type(x) is not int or not 0 <= x <= top:
            raise InputError(f"{what}[{i}] is {quote(x)}; allowed: integer codes 0 .. {top}")
    return np.asarray(values, dtype=np.int64)


#: The lookup file ``optinc aggregator`` writes next to a compiled aggregator chip.
AGGREGATOR_LUT = "optinc-aggregator-lut"


def _from_aggregator(doc: dict[str, Any], path: Path, source: str, servers: int, bits: int) -> ChipLookup:
    """An ``optinc-aggregator-lut`` file: entries ``{input, output}`` where the input is
    the sum s (``sum``) or the counts of ones per bit position, LSB first (``bitwise``)."""
    kind = as_str(
        get(doc, "preprocessing", source=source), what=f"{source}: preprocessing", choices=("sum", "bitwise")
    )
    preprocessing = {"sum": "sum", "bitwise": "per_bit"}[kind]
    size = _checked_size(servers, bits, preprocessing, source)
    entries = as_list(get(doc, "entries", source=source), what=f"{source}: entries", max_len=size)
    table = np.full(size, -1, dtype=np.int64)
    top = levels(bits)
    for i, e in enumerate(entries):
        what = f"{source}: entries[{i}]"
        e = as_dict(e, what=what)
        key = get(e, "input", source=what)
        if preprocessing == "sum":
            index = as_int(key, what=f"{what}.input", lo=0, hi=size - 1)
        else:
            counts = as_list(key, what=f"{what}.input", max_len=bits)
            if len(counts) != bits:
                raise InputError(f"{what}.input has {len(counts)} counts; allowed: {bits} (one per bit)")
            index = sum(
                as_int(c, what=f"{what}.input[{k}]", lo=0, hi=servers) * (servers + 1) ** k
                for k, c in enumerate(counts)
            )
        if table[index] >= 0:
            raise InputError(f"{what}: input {brief(key)} is in the table twice")
        table[index] = as_int(get(e, "output", source=what), what=f"{what}.output", lo=0, hi=top)
    if (table < 0).any():
        raise InputError(f"{source}: the lookup misses {int((table < 0).sum())} reduced input(s)")
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
            f"design folder {quote(design)} has no lut.json (write it with optinc aggregator train)"
        )
    return load_lookup(path)
