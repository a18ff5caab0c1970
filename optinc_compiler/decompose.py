r"""Decompositions of matrices into MZI meshes and attenuator columns.

All routines work in complex128 (real input is accepted) and use the convention of
:mod:`optinc_compiler.mzi`: ``T(theta, phi) = B P(theta) B P(phi)``, mesh
``U = D T_K ... T_1``.

* :func:`clements` -- rectangular mesh, Clements et al., Optica 3, 1460 (2016), Sec. 3:
  alternately null the lower-left anti-diagonals of U from the right (``U T^-1``) and
  from the left (``T U``), then move the left MZIs through the diagonal (their Eq. 5).
* :func:`reck` -- triangular mesh, Reck et al., PRL 73, 58 (1994): null row by row from
  the right only.
* :func:`svd_factors` -- ``W = U diag(s) Vh`` for any shape.
* :func:`unitary_diagonal` -- OptINC's ``W ~ U @ D`` (arXiv 2603.28290): one mesh and
  one attenuator column, by alternating orthogonal-Procrustes and diagonal
  least-squares steps.

Nulling one element with one MZI (derived from the closed form of ``T`` in ``mzi``):

* from the right, on columns (c, c+1) of row ``[x, y]``: the new ``x`` is
  ``conj(k) (x e^{-i phi} sin(theta/2) + y cos(theta/2))``, zero for
  ``theta = 2 atan2(|y|, |x|)`` and ``phi = arg(-x conj(y))``;
* from the left, on rows (r-1, r) of column ``[x; y]``: the new ``y`` is
  ``k (x e^{i phi} cos(theta/2) - y sin(theta/2))``, zero for
  ``theta = 2 atan2(|x|, |y|)`` and ``phi = arg(y conj(x))``.

``atan2``, and ``phi = 0`` where x or y is zero, make exact zeros (identity,
permutations, diagonal phases) exact cases with no division. The nulling loops are
O(N^3) dependent scalar updates that numpy cannot vectorise: they live in the C
extension ``_kernels.c`` (a JIT would cost ~1 s of start-up per process).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from optinc_compiler.errors import InputError
from optinc_compiler.kernels import asap_columns, null_unitary
from optinc_compiler.mzi import Mesh, wrap_phase

TOPOLOGIES = ("clements", "reck")

#: Default tolerance on ``max |U^H U - I|`` for a matrix to count as unitary.
UNITARY_ATOL = 1e-9


# ----------------------------------------------------------------------- validation


def as_complex_matrix(matrix: npt.ArrayLike, *, what: str = "matrix") -> npt.NDArray[np.complex128]:
    """Validate a 2-D finite numeric matrix and return it as complex128 (a copy)."""
    arr = np.asarray(matrix)
    if arr.dtype.kind not in "biufc":
        raise InputError(f"{what} has dtype {arr.dtype}; allowed: integer, real or complex numbers")
    if arr.ndim != 2:
        raise InputError(f"{what} has {arr.ndim} dimension(s) {arr.shape}; allowed: 2 (out x in)")
    if arr.size == 0:
        raise InputError(f"{what} is empty (shape {arr.shape}); allowed: at least 1 x 1")
    out = np.array(arr, dtype=np.complex128, order="C", copy=True)
    bad = ~np.isfinite(out)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputError(
            f"{what} has {int(bad.sum())} non-finite entries (first at {idx}: {arr[idx]}); "
            "allowed: finite numbers"
        )
    return out


def divide(matrix: npt.NDArray[np.complex128], scale: float) -> npt.NDArray[np.complex128]:
    """``matrix / scale`` for a real ``scale``, part by part: numpy divides a complex by a
    real as by a complex, through ``1 / scale``, which overflows for subnormal scales
    (1e-320), while the parts divide exactly."""
    return np.asarray((matrix.real / scale) + 1j * (matrix.imag / scale), dtype=np.complex128)


def relative_error(actual: npt.NDArray[np.complex128], target: npt.NDArray[np.complex128]) -> float:
    """``||actual - target||_F / ||target||_F``, computed on both divided by the largest
    |Re| or |Im| of ``target`` so it cannot overflow (the absolute error if target is 0)."""
    peak = float(max(np.abs(target.real).max(), np.abs(target.imag).max()))
    if peak == 0.0:
        return float(np.linalg.norm(actual))
    return float(np.linalg.norm(divide(actual - target, peak)) / np.linalg.norm(divide(target, peak)))


def unitarity_error(matrix: npt.NDArray[np.complex128]) -> float:
    """``max |U^H U - I|`` of a square matrix (inf when the product overflows)."""
    n = matrix.shape[0]
    with np.errstate(over="ignore", invalid="ignore"):
        err = float(np.max(np.abs(matrix.conj().T @ matrix - np.eye(n))))
    return err if np.isfinite(err) else float("inf")


def check_unitary(
    matrix: npt.NDArray[np.complex128], *, atol: float = UNITARY_ATOL, what: str = "matrix"
) -> None:
    """Raise :class:`InputError` unless ``matrix`` is square and unitary within ``atol``."""
    rows, cols = matrix.shape
    if rows != cols:
        raise InputError(f"{what} is {rows} x {cols}; a unitary mesh needs a square matrix")
    err = unitarity_error(matrix)
    if not err <= atol:
        raise InputError(
            f"{what} is not unitary: max |U^H U - I| = {err:.3g} > tolerance {atol:g}; "
            "use method 'svd' or 'ud' for general matrices, or raise the tolerance"
        )


# ------------------------------------------------------------------- unitary meshes


def clements(unitary: npt.ArrayLike, *, atol: float = UNITARY_ATOL) -> Mesh:
    """Rectangular (Clements) mesh for an N x N unitary: N(N-1)/2 MZIs in N columns.

    Args:
        unitary: the target ``U`` (``S[out, in]``), real or complex.
        atol: tolerance on ``max |U^H U - I|`` (screened on the nulled residual, then
            checked exactly if the screen fails).
    """
    return _decompose(unitary, topology="clements", atol=atol)


def reck(unitary: npt.ArrayLike, *, atol: float = UNITARY_ATOL) -> Mesh:
    """Triangular (Reck) mesh for an N x N unitary: N(N-1)/2 MZIs, depth 2N-3."""
    return _decompose(unitary, topology="reck", atol=atol)


def decompose_unitary(
    unitary: npt.ArrayLike, *, topology: str = "clements", atol: float = UNITARY_ATOL
) -> Mesh:
    """Decompose a unitary into a mesh of the given ``topology`` (clements or reck)."""
    if topology not in TOPOLOGIES:
        raise InputError(f"unknown mesh topology {topology!r}; allowed: {', '.join(TOPOLOGIES)}")
    return _decompose(unitary, topology=topology, atol=atol)


def _decompose(unitary: npt.ArrayLike, *, topology: str, atol: float) -> Mesh:
    a = as_complex_matrix(unitary, what="unitary")
    rows, cols = a.shape
    if rows != cols:
        raise InputError(f"unitary is {rows} x {cols}; a unitary mesh needs a square matrix")
    modes, theta, phi, diag = null_unitary(a, topology)
    # The nulled residual R = L U R' is upper triangular and unitary iff U is, so a
    # unitary U leaves a diagonal R with |R_ii| = 1: an O(N^2) screen of what
    # max |U^H U - I| <= atol says (O(N^3)), which is computed only if the screen fails.
    if not _residual_error(a) <= atol:  # also catches NaN from overflow
        check_unitary(as_complex_matrix(unitary, what="unitary"), atol=atol, what="unitary")
    if not (np.isfinite(theta).all() and np.isfinite(phi).all() and np.isfinite(diag).all()):
        raise InputError("unitary: the decomposition overflowed float64; scale the matrix down")
    return Mesh(
        topology=topology,
        n_modes=rows,
        modes=modes,
        columns=asap_columns(modes, rows),
        theta_rad=theta,
        phi_rad=wrap_phase(phi),
        output_phases_rad=wrap_phase(np.angle(diag)),
    )


def _residual_error(residual: npt.NDArray[np.complex128]) -> float:
    """max of |off-diagonal| and ||R_ii| - 1| of the nulled residual."""
    diag = np.diagonal(residual)
    off = np.abs(residual - np.diag(diag)).max()
    return float(max(off, np.abs(np.abs(diag) - 1.0).max()))


# ------------------------------------------------------------------ general matrices


@dataclass(frozen=True, eq=False)
class SVDFactors:
    """``W = u @ diag(singular_values) @ vh`` with ``u`` (out x out), ``vh`` (in x in).

    ``singular_values`` has min(out, in) entries, largest first.
    """

    u: npt.NDArray[np.complex128]
    singular_values: npt.NDArray[np.float64]
    vh: npt.NDArray[np.complex128]


def svd_factors(matrix: npt.ArrayLike) -> SVDFactors:
    """Full SVD of any out x in matrix (exact; LAPACK ``gesdd``)."""
    w = as_complex_matrix(matrix, what="weight matrix")
    u, s, vh = np.linalg.svd(w, full_matrices=True)
    return SVDFactors(u=u, singular_values=s, vh=vh)


@dataclass(frozen=True, eq=False)
class UnitaryDiagonal:
    """``W ~ unitary[:out, :in] @ diag(diagonal)``, OptINC's unitary x diagonal factors.

    Attributes:
        unitary: (M, M) with M = max(out, in); only its top-left out x in block acts.
        diagonal: (in,) non-negative real diagonal (its phases are moved into ``unitary``).
        relative_error: ``||W - U D||_F / ||W||_F`` (0 for an all-zero W).
        iterations: alternating steps taken.
    """

    unitary: npt.NDArray[np.complex128]
    diagonal: npt.NDArray[np.float64]
    relative_error: float
    iterations: int


def unitary_diagonal(matrix: npt.ArrayLike, *, max_iter: int = 200, rtol: float = 1e-10) -> UnitaryDiagonal:
    """Approximate ``W ~ U[:out, :in] @ D`` (OptINC, arXiv 2603.28290).

    Block-coordinate descent on ``||T - A D||_F`` with the target ``T = W`` when
    out >= in (``A = U[:, :in]`` has orthonormal columns), and ``T = [W; Z]`` when
    out < in (``A = U`` is square and the free rows ``Z`` stand for the unused outputs).
    Each step is an exact minimisation, so the error never increases:

    * ``A`` for fixed ``D``: orthogonal Procrustes, ``A = polar(T D^H)``;
    * ``D`` for fixed ``A``: column-wise least squares, ``d_j = a_j^H t_j``;
    * ``Z`` for fixed ``A, D``: ``Z = A[out:] D`` (those rows leave no residual).

    It starts from ``D`` = column norms of W and stops when the error improves by less
    than ``rtol * ||W||`` or after ``max_iter`` steps. Wide matrices converge slowly.
    It is an approximation: check ``relative_error``.
    """
    w = as_complex_matrix(matrix, what="weight matrix")
    if max_iter < 1:
        raise InputError(f"max_iter is {max_iter}; allowed: >= 1")
    rows, cols = w.shape
    norm_w = float(np.linalg.norm(w))
    target = w if rows >= cols else np.vstack([w, np.zeros((cols - rows, cols), dtype=np.complex128)])
    d = np.linalg.norm(w, axis=0).astype(np.complex128)
    previous = np.inf
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 -- the count is reported
        a = _polar(target * d.conj())
        d = np.einsum("ij,ij->j", a.conj(), target)
        if rows < cols:
            target[rows:] = a[rows:] * d
        residual = float(np.linalg.norm(w - a[:rows] * d))
        if previous - residual <= rtol * norm_w:
            break
        previous = residual
    # move the phases of d into the unitary, so the attenuators need no phase shifter
    a = a * np.exp(1j * np.angle(d))
    magnitude = np.abs(d)
    residual = float(np.linalg.norm(w - a[:rows] * magnitude))
    return UnitaryDiagonal(
        unitary=_complete_unitary(a),
        diagonal=magnitude,
        relative_error=residual / norm_w if norm_w > 0 else 0.0,
        iterations=iterations,
    )


def _polar(m: npt.NDArray[np.complex128]) -> npt.NDArray[np.complex128]:
    """Unitary polar factor ``P Q^H`` of ``m = P S Q^H`` (orthonormal rows or columns)."""
    p, _, qh = np.linalg.svd(m, full_matrices=False)
    return np.asarray(p @ qh)


def _complete_unitary(a: npt.NDArray[np.complex128]) -> npt.NDArray[np.complex128]:
    """A square unitary whose first columns are ``a`` (orthonormal columns)."""
    rows, cols = a.shape
    if rows == cols:
        return a
    p, _, qh = np.linalg.svd(a, full_matrices=True)  # a = P[:, :cols] Q^H
    blk = np.eye(rows, dtype=np.complex128)
    blk[:cols, :cols] = qh
    return np.asarray(p @ blk)
