"""Reading weight matrices: .npy, .npz, .csv, and .safetensors / PyTorch .pt state dicts.

Matrices keep PyTorch's orientation, (out, in): ``y = W @ x``. A file holding several
arrays gives one layer per 2-D array, in file order; 1-D ``bias`` vectors are skipped
(reported in :attr:`WeightsFile.skipped`), any other shape is an error naming the key.
State-dict keys lose their ``.weight`` suffix (``fc1.weight`` -> layer ``fc1``).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from optinc_compiler.errors import InputError, MissingDependencyError

SUFFIXES = (".npy", ".npz", ".csv", ".safetensors", ".pt", ".pth")


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
    if not p.is_file():
        raise InputError(f"weights file {str(p)!r} does not exist")
    suffix = p.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(f"weights file {str(p)!r} has suffix {suffix!r}; allowed: {', '.join(SUFFIXES)}")
    if p.stat().st_size == 0:
        raise InputError(f"weights file {str(p)!r} is empty")
    arrays = _READERS[suffix](p)
    return _select(_as_layers(arrays, p), layers, p)


def _read_npy(p: Path) -> list[tuple[str, np.ndarray]]:
    try:
        arr = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"{str(p)!r} is not a readable .npy file ({_reason(exc)})") from None
    return [(p.stem, arr)]


def _read_npz(p: Path) -> list[tuple[str, np.ndarray]]:
    try:
        with np.load(p, allow_pickle=False) as data:
            return [(key, data[key]) for key in data.files]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"{str(p)!r} is not a readable .npz file ({_reason(exc)})") from None


def _read_csv(p: Path) -> list[tuple[str, np.ndarray]]:
    last: Exception | None = None
    for dtype in (np.float64, np.complex128):
        try:
            arr = np.loadtxt(p, delimiter=",", dtype=dtype, ndmin=2, comments="#")
        except (ValueError, UnicodeDecodeError) as exc:
            last = exc
            continue
        return [(p.stem, arr)]
    raise InputError(
        f"{str(p)!r} is not a numeric CSV matrix ({_reason(last)}); "
        "allowed: comma-separated real or complex numbers (1+2j), one row per line"
    )


def _read_safetensors(p: Path) -> list[tuple[str, np.ndarray]]:
    try:
        from safetensors.numpy import load_file
    except ImportError:
        raise MissingDependencyError(
            f"reading {str(p)!r} needs the safetensors package: pip install 'optinc-compiler[safetensors]'"
        ) from None
    try:
        return list(load_file(str(p)).items())
    except Exception as exc:  # noqa: BLE001 -- safetensors raises several private types
        raise InputError(f"{str(p)!r} is not a readable .safetensors file ({_reason(exc)})") from None


def _read_torch(p: Path) -> list[tuple[str, np.ndarray]]:
    try:
        import torch
    except ImportError:
        raise MissingDependencyError(
            f"reading {str(p)!r} needs PyTorch: pip install 'optinc-compiler[torch]'"
        ) from None
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 -- torch raises many types for bad files
        raise InputError(f"{str(p)!r} is not a readable PyTorch file ({_reason(exc)})") from None
    if isinstance(obj, torch.Tensor):
        obj = {p.stem: obj}
    if not isinstance(obj, dict):
        raise InputError(f"{str(p)!r} holds a {type(obj).__name__}; allowed: a tensor or a state dict")
    out = []
    for key, value in obj.items():
        if isinstance(value, torch.Tensor):
            if value.dtype == torch.bfloat16:
                value = value.float()
            out.append((str(key), value.detach().cpu().resolve_conj().numpy()))
    return out


_READERS = {
    ".npy": _read_npy,
    ".npz": _read_npz,
    ".csv": _read_csv,
    ".safetensors": _read_safetensors,
    ".pt": _read_torch,
    ".pth": _read_torch,
}


def _reason(exc: BaseException | None) -> str:
    text = str(exc).strip().splitlines()[0] if exc is not None and str(exc).strip() else ""
    return text or type(exc).__name__


def _layer_name(key: str) -> str:
    return key[: -len(".weight")] if key.endswith(".weight") else key


def _as_layers(arrays: list[tuple[str, np.ndarray]], p: Path) -> WeightsFile:
    layers, skipped = [], []
    for key, arr in arrays:
        if arr.ndim == 1 and len(arrays) > 1 and "bias" in key.lower():
            skipped.append(key)
            continue
        name = _layer_name(key)
        if not name:
            raise InputError(f"{str(p)!r}: array key {key!r} gives an empty layer name; rename it")
        layers.append(NamedMatrix(name=name, matrix=arr))
    if not layers:
        raise InputError(f"{str(p)!r} holds no weight matrix (only {', '.join(skipped) or 'nothing'})")
    return WeightsFile(layers=tuple(layers), skipped=tuple(skipped))


def _select(weights: WeightsFile, names: Sequence[str], p: Path) -> WeightsFile:
    if not names:
        return weights
    by_name = {w.name: w for w in weights.layers}
    chosen = []
    for name in names:
        layer = by_name.get(name) or by_name.get(_layer_name(name))
        if layer is None:
            known = ", ".join(repr(n) for n in by_name)
            raise InputError(f"no layer {name!r} in {str(p)!r}; layers: {known}")
        chosen.append(layer)
    return WeightsFile(layers=tuple(chosen), skipped=weights.skipped)
