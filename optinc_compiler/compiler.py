"""Weights -> phase program: choose a method per layer and build its stages.

Methods (``CompileOptions.method``):

* ``unitary`` -- one mesh (Clements or Reck), exact; needs a unitary W.
* ``svd`` -- ``W = s_max * U @ diag(s / s_max) @ Vh``: mesh, attenuators, mesh; exact.
* ``ud`` -- OptINC's ``W ~ scale * U @ D`` (arXiv 2603.28290): one attenuator column
  then one mesh, about half the MZIs of svd; an approximation.
* ``ud-segmented`` -- W tiled into ``block_size`` x ``block_size`` blocks, each its own
  ``U @ D``; an approximation.
* ``auto`` -- ``unitary`` when W is square and unitary within ``unitary_atol``, else ``svd``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from optinc_compiler import decompose
from optinc_compiler.errors import InputError
from optinc_compiler.io import NamedMatrix
from optinc_compiler.names import check_name
from optinc_compiler.program import (
    Block,
    DiagonalStage,
    Layer,
    MeshStage,
    PhaseProgram,
    Stage,
    layer_id,
    layer_naming_problem,
    mzi_ids,
)

METHOD_CHOICES = ("auto", "unitary", "svd", "ud", "ud-segmented")

Matrix = npt.NDArray[np.complex128]
Stages = tuple[tuple[Stage, ...], float]


@dataclass(frozen=True)
class CompileOptions:
    """How to compile each layer.

    Attributes:
        method: one of ``METHOD_CHOICES``.
        topology: mesh topology, ``clements`` or ``reck``.
        unitary_atol: tolerance on ``max |U^H U - I|`` for ``unitary`` and ``auto``.
        block_size: tile size for ``ud-segmented``.
        max_iter: alternating steps of the ``ud`` fit.
    """

    method: str = "auto"
    topology: str = "clements"
    unitary_atol: float = decompose.UNITARY_ATOL
    block_size: int = 8
    max_iter: int = 200

    def __post_init__(self) -> None:
        if self.method not in METHOD_CHOICES:
            raise InputError(f"unknown method {self.method!r}; allowed: {', '.join(METHOD_CHOICES)}")
        if self.topology not in decompose.TOPOLOGIES:
            raise InputError(
                f"unknown mesh topology {self.topology!r}; allowed: {', '.join(decompose.TOPOLOGIES)}"
            )
        if not (self.unitary_atol > 0 and np.isfinite(self.unitary_atol)):
            raise InputError(f"unitary tolerance {self.unitary_atol} must be a positive number")
        if self.block_size < 1:
            raise InputError(f"block size {self.block_size} must be >= 1")
        if self.max_iter < 1:
            raise InputError(f"max_iter {self.max_iter} must be >= 1")


def compile_weights(weights: Sequence[NamedMatrix], options: CompileOptions) -> PhaseProgram:
    """Compile every layer; names must be unique and give distinct ids (``layer_id``)."""
    problem = layer_naming_problem([(w.name, layer_id(w.name)) for w in weights])
    if problem is not None:
        raise InputError(problem)
    return PhaseProgram(layers=tuple(compile_layer(w.name, w.matrix, options) for w in weights))


def choose_method(matrix: npt.NDArray[np.complex128], options: CompileOptions) -> str:
    """Resolve ``auto``: unitary if square and unitary within tolerance, else svd."""
    if options.method != "auto":
        return options.method
    rows, cols = matrix.shape
    if rows == cols and decompose.unitarity_error(matrix) <= options.unitary_atol:
        return "unitary"
    return "svd"


def compile_layer(name: str, matrix: npt.ArrayLike, options: CompileOptions) -> Layer:
    """Compile one weight matrix (out x in) into a :class:`Layer`.

    General matrices are fitted as ``W / peak`` (peak = largest |Re|, |Im| entry) and
    ``peak`` goes into ``scale``, so magnitudes from 1e-300 to 1e300 stay in range.
    """
    check_name(name, what="layer")
    w = decompose.as_complex_matrix(matrix, what=f"layer {name!r}")
    method = choose_method(w, options)
    peak = 1.0 if method == "unitary" else float(max(np.abs(w.real).max(), np.abs(w.imag).max()))
    unit = decompose.divide(w, peak) if peak > 0 else w
    prefix = layer_id(name)
    try:
        if method == "ud-segmented":
            blocks, scale = _segmented_blocks(unit, prefix, options)
            block_size: int | None = options.block_size
        else:
            stages, scale = _BUILDERS[method](unit, prefix, options)
            blocks, block_size = (Block(0, 0, w.shape, stages),), None
    except np.linalg.LinAlgError as exc:
        raise InputError(f"layer {name!r}: {method} failed in LAPACK ({exc})") from None
    layer = Layer(
        name=name,
        id=prefix,
        shape=(int(w.shape[0]), int(w.shape[1])),
        method=method,
        scale=scale,
        blocks=blocks,
        relative_error=0.0,
        exact=method in ("unitary", "svd"),
        block_size=block_size,
    )
    error = decompose.relative_error(layer.matrix(), unit)  # of the unit-peak fit
    layer = dataclasses.replace(layer, scale=scale * peak if peak > 0 else scale, relative_error=error)
    if not (np.isfinite(layer.scale) and np.isfinite(layer.relative_error)):
        raise InputError(f"layer {name!r}: scale {layer.scale} overflows float64; scale the weights down")
    return layer


def _mesh_stage(prefix: str, name: str, unitary: Matrix, options: CompileOptions) -> MeshStage:
    mesh = decompose.decompose_unitary(unitary, topology=options.topology, atol=options.unitary_atol)
    return MeshStage(name=name, mesh=mesh, mzi_ids=mzi_ids(prefix, name, mesh))


def _normalised(values: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], float]:
    """Attenuations ``values / max`` in [0, 1] and the scale ``max`` (0 for all zeros)."""
    scale = float(values.max()) if values.size else 0.0
    if scale <= 0.0:
        return np.zeros_like(values), 0.0
    return np.clip(values / scale, 0.0, 1.0), scale


def _unitary_stages(w: Matrix, prefix: str, options: CompileOptions) -> Stages:
    return (_mesh_stage(prefix, "U", w, options),), 1.0


def _svd_stages(w: Matrix, prefix: str, options: CompileOptions) -> Stages:
    f = decompose.svd_factors(w)
    amplitude, scale = _normalised(f.singular_values)
    stages: tuple[Stage, ...] = (
        _mesh_stage(prefix, "V", f.vh, options),
        DiagonalStage(name="S", amplitude=amplitude, phase_rad=np.zeros_like(amplitude)),
        _mesh_stage(prefix, "U", f.u, options),
    )
    return stages, scale


def _ud_stages(w: Matrix, prefix: str, options: CompileOptions) -> Stages:
    f = decompose.unitary_diagonal(w, max_iter=options.max_iter)
    amplitude, scale = _normalised(f.diagonal)
    return _ud_block(f, amplitude, prefix, "", options), scale


def _ud_block(
    f: decompose.UnitaryDiagonal,
    amplitude: npt.NDArray[np.float64],
    prefix: str,
    suffix: str,
    options: CompileOptions,
) -> tuple[Stage, ...]:
    """Attenuator column ``D`` (light meets it first), then the mesh ``U``."""
    return (
        DiagonalStage(name=f"D{suffix}", amplitude=amplitude, phase_rad=np.zeros_like(amplitude)),
        _mesh_stage(prefix, f"U{suffix}", f.unitary, options),
    )


_BUILDERS = {"unitary": _unitary_stages, "svd": _svd_stages, "ud": _ud_stages}


def _segmented_blocks(w: Matrix, prefix: str, options: CompileOptions) -> tuple[tuple[Block, ...], float]:
    """Tile W into k x k blocks (smaller at the edges), each ``U_b @ D_b``, with the
    attenuations of all blocks normalised to one layer scale."""
    k = options.block_size
    rows, cols = w.shape
    fits = {
        (r, c): decompose.unitary_diagonal(w[r : r + k, c : c + k], max_iter=options.max_iter)
        for r in range(0, rows, k)
        for c in range(0, cols, k)
    }
    _, scale = _normalised(np.concatenate([f.diagonal for f in fits.values()]))
    blocks = []
    for (r, c), f in fits.items():
        amplitude = np.clip(f.diagonal / scale, 0.0, 1.0) if scale > 0 else np.zeros_like(f.diagonal)
        blocks.append(
            Block(
                row_offset=r,
                col_offset=c,
                shape=(min(k, rows - r), min(k, cols - c)),
                stages=_ud_block(f, amplitude, prefix, f"_b{r // k}_{c // k}", options),
            )
        )
    return tuple(blocks), scale
