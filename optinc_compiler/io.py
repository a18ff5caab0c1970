"""Reading weight matrices: .npy, .npz, .csv, and .safetensors / PyTorch .pt state dicts.

Matrices keep PyTorch's orientation, (out, in): ``y = W @ x``. A file holding several
arrays gives one layer per 2-D array, in file order; 1-D ``bias`` vectors are skipped
(reported in :attr:`WeightsFile.skipped`), any other shape is an error naming the key.
State-dict keys lose their ``.weight`` suffix (``fc1.weight`` -> layer ``fc1``).

Every size a file declares (a .npy header's shape, a .safetensors header, a tensor's
shape) is checked against the limits below before its data is read, and the data must
be as long as the header says. Tensors PyTorch stores in other forms are read as the
numbers they stand for: bfloat16, float16 and float8 as float32, complex32 as
complex64, quantised tensors dequantised, sparse ones made dense (after the size check).
"""

from __future__ import annotations

import cmath
import math
import os
import warnings
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from tokenize import TokenError
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from optinc_compiler.errors import InputError, MissingDependencyError
from optinc_compiler.files import check_input_file
from optinc_compiler.guard import brief, loads_json, quote
from optinc_compiler.names import MAX_NAME_CHARS, name_problem

SUFFIXES = (".npy", ".npz", ".csv", ".safetensors", ".pt", ".pth")

#: Rows or columns of one matrix (entries of a bias). A 1024 x 1024 svd layer compiles
#: to ~1M MZIs in ~10 s and a 130 MB program; no chip has a mesh anywhere near as large.
MAX_SIDE = 1024
#: Numbers in one file, all arrays together: 16 layers of the largest size (256 MB as
#: complex128).
MAX_ELEMENTS = 16 * MAX_SIDE * MAX_SIDE
#: Arrays (layers and biases) in one file.
MAX_ARRAYS = 1024
#: Characters of an array key (a layer name): it becomes part of every MZI's id.
MAX_NAME = MAX_NAME_CHARS
#: Bytes of a CSV file: a 1024 x 1024 complex matrix at full precision is ~55 MB.
MAX_CSV_BYTES = 128 * 1024 * 1024
#: Bytes of a .safetensors header (the safetensors library's own limit).
MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024
#: Bytes of a PyTorch file in the legacy (pre-1.6, not zip) format, which is read whole.
MAX_LEGACY_TORCH_BYTES = 512 * 1024 * 1024
#: numpy kinds of the numbers a weights file may hold: bool, integer, real, complex.
NUMERIC_KINDS = "biufc"
ALLOWED_DTYPES = "integer, real or complex numbers (or booleans)"


@dataclass(frozen=True, eq=False)
class NamedMatrix:
    """One weight matrix (out x in) and its layer name."""

    name: str
    matrix: npt.NDArray[np.generic]


@dataclass(frozen=True, eq=False)
class WeightsFile:
    """The layers read from a file, and the keys skipped (biases)."""

    layers: tuple[NamedMatrix, ...]
    skipped: tuple[str, ...] = ()


def load_weights(path: str | os.PathLike[str], *, layers: Sequence[str] = ()) -> WeightsFile:
    """Read the weight matrices in ``path``; ``layers`` selects some by name (in that order)."""
    p = Path(path)
    where = quote(p)
    try:
        check_input_file(p, what="weights file")
        size = p.stat().st_size
    except OSError as exc:  # a name too long for the file system, a loop of links
        raise InputError(f"cannot read weights file {where}: {exc.strerror}") from None
    suffix = p.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(f"weights file {where} has suffix {quote(suffix)}; allowed: {', '.join(SUFFIXES)}")
    if size == 0:
        raise InputError(f"weights file {where} is empty")
    with warnings.catch_warnings():  # numpy's and torch's warnings are not the user's business
        warnings.simplefilter("ignore")
        try:
            arrays = _READERS[suffix](p, where)
        except MemoryError:
            raise InputError(f"{where} does not fit in memory") from None
        except OSError as exc:
            raise InputError(f"cannot read weights file {where}: {exc.strerror or exc}") from None
    chosen = _select(_as_layers(arrays, where), layers, where)
    for w in chosen.layers:  # named here, with the file, not later in the compiler
        problem = name_problem(w.name, what="layer")
        if problem is not None:
            raise InputError(f"{where}: {problem}")
    return chosen


class _Budget:
    """Arrays and numbers of one file so far, against MAX_ARRAYS and MAX_ELEMENTS."""

    def __init__(self, where: str) -> None:
        self.where, self.arrays, self.elements = where, 0, 0

    def take(self, key: str, shape: tuple[int, ...]) -> None:
        """Count one array of ``shape``; InputError naming the limit it would pass."""
        what = f"{self.where}: array {quote(key)}"
        if any(type(n) is not int or n < 0 for n in shape):
            raise InputError(f"{what} declares shape {brief(shape)}; allowed: sizes >= 0")
        if any(n > MAX_SIDE for n in shape):
            raise InputError(
                f"{what} declares shape {_shape(shape)}; allowed: at most {MAX_SIDE} rows and columns"
            )
        self.arrays += 1
        if self.arrays > MAX_ARRAYS:
            raise InputError(f"{self.where} holds more than {MAX_ARRAYS} arrays; allowed: {MAX_ARRAYS}")
        self.elements += math.prod(shape)
        if self.elements > MAX_ELEMENTS:
            raise InputError(
                f"{self.where} holds more than {MAX_ELEMENTS:,} numbers (at {quote(key)}); "
                f"allowed: at most {MAX_ELEMENTS:,} in one file"
            )


def _shape(shape: Sequence[int]) -> str:
    text = "(" + ", ".join(f"{n:,}" for n in shape) + ("," if len(shape) == 1 else "") + ")"
    return text if len(text) <= 80 else f"{text[:60]}... ({len(shape)} dimensions)"


def _check_dtype(dtype: np.dtype[Any], what: str) -> None:
    if dtype.kind not in NUMERIC_KINDS or dtype.hasobject or dtype.fields or dtype.subdtype:
        raise InputError(
            f"{what} has dtype {dtype.str if not dtype.fields else brief(dtype)}; allowed: {ALLOWED_DTYPES}"
        )


# ------------------------------------------------------------------------ .npy / .npz


def _read_npy_stream(f: IO[bytes], key: str, budget: _Budget, kind: str) -> np.ndarray:
    """One .npy array from ``f``: header checked against the limits, then exactly the
    bytes it declares."""
    fmt = np.lib.format
    bad = f"{budget.where} is not a readable {kind} file"
    if kind == ".npz":
        bad = f"{budget.where}: member {quote(key + '.npy')} is not a readable .npy array"
    try:
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(f)
        else:
            raise InputError(f"{bad} (format version {version}; allowed: 1.0, 2.0)")
    except (ValueError, EOFError, SyntaxError, TypeError, OverflowError, RecursionError, TokenError) as exc:
        why = "its header is not a dict of literals" if "malformed node" in str(exc) else _reason(exc)
        raise InputError(f"{bad} ({why})") from None
    _check_dtype(dtype, f"{budget.where}: array {quote(key)}")
    budget.take(key, tuple(shape))
    nbytes = math.prod(shape) * dtype.itemsize
    data = f.read(nbytes)
    if len(data) < nbytes:
        raise InputError(
            f"{bad}: its header declares shape {_shape(shape)} of {dtype.str} ({nbytes:,} bytes of data), "
            f"the file holds {len(data):,}"
        )
    arr = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    return np.array(arr, dtype=dtype.newbyteorder("="), order="C")


def _read_npy(p: Path, where: str) -> list[tuple[str, np.ndarray]]:
    with p.open("rb") as f:
        return [(p.stem, _read_npy_stream(f, p.stem, _Budget(where), ".npy"))]


#: What a damaged zip archive raises (zipfile and zlib have no common error type).
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    ValueError,
    NotImplementedError,  # an unknown compression method
    RuntimeError,  # an encrypted member
    UnicodeDecodeError,
)


def _read_npz(p: Path, where: str) -> list[tuple[str, np.ndarray]]:
    budget = _Budget(where)
    try:
        with zipfile.ZipFile(p) as archive:
            members = archive.infolist()
            if len(members) > MAX_ARRAYS:
                raise InputError(f"{where} has {len(members):,} members; allowed: at most {MAX_ARRAYS}")
            out, seen = [], set()
            for info in members:
                name = info.filename
                if not name.endswith(".npy") or info.is_dir():
                    raise InputError(
                        f"{where}: member {quote(name)} is not a .npy array; "
                        "allowed: .npy members only, as numpy.savez writes them"
                    )
                key = name[: -len(".npy")]
                if key in seen:
                    raise InputError(f"{where}: member {quote(name)} is in the archive twice")
                seen.add(key)
                with archive.open(info) as f:
                    out.append((key, _read_npy_stream(f, key, budget, ".npz")))
            return out
    except _ZIP_ERRORS as exc:
        raise InputError(f"{where} is not a readable .npz file ({_reason(exc)})") from None


# ------------------------------------------------------------------------------- .csv


def _read_csv(p: Path, where: str) -> list[tuple[str, np.ndarray]]:
    size = p.stat().st_size
    if size > MAX_CSV_BYTES:
        raise InputError(f"{where} has {size:,} bytes; allowed: at most {MAX_CSV_BYTES:,} for a CSV file")
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{where} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start:,})"
        ) from None
    bad = f"{where} is not a numeric CSV matrix"
    allowed = "allowed: comma-separated real or complex numbers (1+2j), one row per line"
    rows: list[list[str]] = []
    lines: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split("#", 1)[0].strip()
        if not fields:
            continue
        cells = fields.split(",")
        if len(cells) > MAX_SIDE:
            raise InputError(
                f"{bad}: line {number:,} has {len(cells):,} columns; allowed: at most {MAX_SIDE}"
            )
        if rows and len(cells) != len(rows[0]):
            raise InputError(
                f"{bad} (line {number:,} has {len(cells):,} columns, line {lines[0]:,} has "
                f"{len(rows[0]):,}); {allowed}, the same number in every row"
            )
        rows.append(cells)
        lines.append(number)
        if len(rows) > MAX_SIDE:
            raise InputError(f"{bad}: it has more than {MAX_SIDE} rows; allowed: at most {MAX_SIDE}")
    if not rows:
        raise InputError(f"{bad} (it holds no numbers); {allowed}")
    values: list[list[float | complex]] = []
    for number, cells in zip(lines, rows, strict=True):
        row = []
        for column, cell in enumerate(cells, start=1):
            text_value = cell.strip()
            value = _csv_number(text_value)
            at = f"line {number:,}, column {column:,}: {quote(text_value)}"
            if value is None:
                raise InputError(f"{bad} ({at} is not a number); {allowed}")
            if not cmath.isfinite(value) and not any(w in text_value.lower() for w in ("inf", "nan")):
                raise InputError(f"{bad} ({at} is beyond float64's range, 1.8e308); {allowed}")
            row.append(value)
        values.append(row)
    is_complex = any(isinstance(v, complex) for row in values for v in row)
    return [(p.stem, np.array(values, dtype=np.complex128 if is_complex else np.float64))]


def _csv_number(cell: str) -> float | complex | None:
    """A real or complex number as numpy's text readers write them; None otherwise."""
    if not cell or "_" in cell:  # Python reads 1_000; numpy and CSV readers do not
        return None
    try:
        return float(cell)
    except ValueError:
        pass
    try:
        return complex(cell)
    except ValueError:
        return None


# ------------------------------------------------------------------------ safetensors

#: safetensors dtypes and how they are read (numpy dtype, or "bf16": the upper half of
#: a float32).
_SAFETENSORS_DTYPES = {
    "BOOL": "?", "U8": "u1", "I8": "i1", "U16": "<u2", "I16": "<i2", "U32": "<u4", "I32": "<i4",
    "U64": "<u8", "I64": "<i8", "F16": "<f2", "F32": "<f4", "F64": "<f8", "C64": "<c8", "BF16": "bf16",
}  # fmt: skip


def _read_safetensors(p: Path, where: str) -> list[tuple[str, np.ndarray]]:
    try:
        from safetensors import safe_open
    except ImportError:
        raise MissingDependencyError(
            f"reading {where} needs the safetensors package: pip install 'optinc-compiler[safetensors]'"
        ) from None
    bad = f"{where} is not a readable .safetensors file"
    size = p.stat().st_size
    with p.open("rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if not 0 < n <= min(MAX_SAFETENSORS_HEADER, size - 8):
            raise InputError(
                f"{bad} (its header declares {n:,} bytes; the file has {size:,}, "
                f"allowed: at most {MAX_SAFETENSORS_HEADER:,})"
            )
        header = loads_json(f.read(n), source=f"{where}'s header")
        if type(header) is not dict:
            raise InputError(f"{bad} (its header is not a JSON object)")
        budget, entries = _Budget(where), []
        for key, info in header.items():
            if key == "__metadata__":
                continue
            entries.append((key, _safetensors_entry(key, info, budget, size - 8 - n, bad)))
        try:  # the library checks what this does not (every byte covered, no overlaps)
            with safe_open(str(p), framework="numpy") as tensors:
                out = []
                for key, (dtype, shape, start, _) in entries:
                    if dtype != "bf16":
                        out.append(
                            (key, np.array(tensors.get_tensor(key), dtype=np.dtype(dtype).newbyteorder("=")))
                        )
                        continue
                    f.seek(8 + n + start)
                    bits = np.frombuffer(f.read(2 * math.prod(shape)), dtype="<u2").astype(np.uint32) << 16
                    out.append((key, bits.view(np.float32).reshape(shape)))
        except Exception as exc:  # noqa: BLE001 -- safetensors raises several private types
            raise InputError(f"{bad} ({_reason(exc)})") from None
    return out


def _safetensors_entry(
    key: str, info: Any, budget: _Budget, data_size: int, bad: str
) -> tuple[str, tuple[int, ...], int, int]:
    """(dtype, shape, start, end) of one header entry, checked against the limits and
    against the data the file holds."""
    what = f"{budget.where}: array {quote(key)}"
    if type(info) is not dict or not {"dtype", "shape", "data_offsets"} <= info.keys():
        raise InputError(f"{bad} (entry {quote(key)} lacks dtype, shape or data_offsets)")
    name, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if type(name) is not str or name not in _SAFETENSORS_DTYPES:
        raise InputError(
            f"{what} has dtype {quote(name)}; allowed: {', '.join(_SAFETENSORS_DTYPES)} "
            "(save float8 weights as F32)"
        )
    if type(shape) is not list or len(shape) > 8:
        raise InputError(f"{bad} (shape of {quote(key)} is {brief(shape)}; allowed: a list of sizes)")
    budget.take(key, tuple(shape))
    dtype = _SAFETENSORS_DTYPES[name]
    itemsize = 2 if dtype == "bf16" else np.dtype(dtype).itemsize
    if (
        type(offsets) is not list
        or len(offsets) != 2
        or any(type(x) is not int for x in offsets)
        or not 0 <= offsets[0] <= offsets[1] <= data_size
        or offsets[1] - offsets[0] != math.prod(shape) * itemsize
    ):
        raise InputError(
            f"{bad} (array {quote(key)}: data_offsets {brief(offsets)} do not match its shape "
            f"{_shape(shape)} of {name} within the {data_size:,} bytes of data)"
        )
    return dtype, tuple(shape), offsets[0], offsets[1]


# ---------------------------------------------------------------------------- PyTorch


def _read_torch(p: Path, where: str) -> list[tuple[str, np.ndarray]]:
    try:
        import torch
    except ImportError:
        raise MissingDependencyError(
            f"reading {where} needs PyTorch: pip install 'optinc-compiler[torch]'"
        ) from None
    bad = f"{where} is not a readable PyTorch file"
    try:
        try:  # mapped, not read: sizes are checked before any tensor's data is touched
            obj = torch.load(p, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap can only be used" not in str(exc):
                raise
            size = p.stat().st_size
            if size > MAX_LEGACY_TORCH_BYTES:
                raise InputError(
                    f"{where} is a legacy PyTorch file of {size:,} bytes; allowed: at most "
                    f"{MAX_LEGACY_TORCH_BYTES:,} (save it again with a current PyTorch)"
                ) from None
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 -- torch raises many types for bad files
        raise InputError(f"{bad} ({_torch_reason(exc)})") from None
    if isinstance(obj, torch.Tensor):
        obj = {p.stem: obj}
    if not isinstance(obj, dict):
        raise InputError(f"{where} holds a {type(obj).__name__}; allowed: a tensor or a state dict")
    budget, out, other = _Budget(where), [], []
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            other.append(f"{quote(key)} ({type(value).__name__})")
            continue
        out.append((str(key), _tensor_array(torch, str(key), value, budget)))
    if not out and other:
        raise InputError(
            f"{where} holds no tensors at its top level (only {', '.join(other[:5])}"
            f"{', ...' if len(other) > 5 else ''}); allowed: a tensor or a state dict of tensors"
        )
    return out


def _tensor_array(torch: Any, key: str, t: Any, budget: _Budget) -> np.ndarray:
    """The numbers of one tensor as a numpy array (see the module docstring)."""
    what = f"{budget.where}: tensor {quote(key)}"
    if t.is_nested:
        raise InputError(f"{what} is a nested tensor; allowed: dense or sparse tensors")
    if t.device.type == "meta":
        raise InputError(f"{what} is on the meta device and holds no numbers")
    budget.take(key, tuple(int(n) for n in t.shape))
    try:
        t = t.detach()
        if t.layout != torch.strided:
            t = t.to_dense()
        if t.is_quantized:
            t = t.dequantize()
        if t.dtype in (torch.bfloat16, torch.float16) or "float8" in str(t.dtype):
            t = t.float()
        elif t.dtype == torch.complex32:
            t = t.to(torch.complex64)
        t = t.resolve_conj().resolve_neg().contiguous()
        return np.array(t.numpy(), copy=True)
    except (TypeError, RuntimeError, NotImplementedError) as exc:
        raise InputError(
            f"{what} has dtype {str(t.dtype).removeprefix('torch.')} ({_reason(exc)}); "
            f"allowed: {ALLOWED_DTYPES}"
        ) from None


_READERS = {
    ".npy": _read_npy,
    ".npz": _read_npz,
    ".csv": _read_csv,
    ".safetensors": _read_safetensors,
    ".pt": _read_torch,
    ".pth": _read_torch,
}


#: torch.load's messages that advise what a user must not do or name its internals, in
#: the user's terms (a fragment of torch's message -> what it means).
_TORCH_REASONS = {
    "Weights only load failed": "it holds Python objects besides tensors; they were not unpickled, "
    "since unpickling can run code: save the model's state_dict()",
    "failed finding central directory": "a truncated or damaged zip archive",
}


def _torch_reason(exc: BaseException) -> str:
    return next((why for key, why in _TORCH_REASONS.items() if key in str(exc)), _reason(exc))


def _reason(exc: BaseException | None) -> str:
    text = str(exc).strip().splitlines()[0] if exc is not None and str(exc).strip() else ""
    text = text or type(exc).__name__
    return text if len(text) <= 160 else text[:140] + "..."


def _layer_name(key: str) -> str:
    return key[: -len(".weight")] if key.endswith(".weight") else key


def _as_layers(arrays: list[tuple[str, np.ndarray]], where: str) -> WeightsFile:
    layers, skipped = [], []
    for key, arr in arrays:
        if len(key) > MAX_NAME:
            raise InputError(
                f"{where}: array key {quote(key)} is {len(key):,} characters long; "
                f"allowed: at most {MAX_NAME}"
            )
        if arr.ndim == 1 and len(arrays) > 1 and "bias" in key.lower():
            skipped.append(key)
            continue
        name = _layer_name(key)
        if not name:
            raise InputError(f"{where}: array key {quote(key)} gives an empty layer name; rename it")
        layers.append(NamedMatrix(name=name, matrix=arr))
    if not layers:
        only = ", ".join(skipped[:5]) + (", ..." if len(skipped) > 5 else "")
        raise InputError(f"{where} holds no weight matrix (only {only or 'nothing'})")
    return WeightsFile(layers=tuple(layers), skipped=tuple(skipped))


def _select(weights: WeightsFile, names: Sequence[str], where: str) -> WeightsFile:
    if not names:
        return weights
    by_name = {w.name: w for w in weights.layers}
    chosen = []
    for name in names:
        layer = by_name.get(name) or by_name.get(_layer_name(name))
        if layer is None:
            known = ", ".join(quote(n) for n in list(by_name)[:10])
            more = f", ... ({len(by_name)} layers)" if len(by_name) > 10 else ""
            raise InputError(f"no layer {quote(name)} in {where}; layers: {known}{more}")
        chosen.append(layer)
    return WeightsFile(layers=tuple(chosen), skipped=weights.skipped)
