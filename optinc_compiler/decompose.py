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

``atan2`` and ``arg(0) = 0`` make exact zeros (identity, permutations, diagonal phases)
exact cases with no division. The hot loops are compiled with numba: they are
O(N^3) scalar updates, which numpy cannot vectorise across the dependent nullings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import numpy.typing as npt

from optinc_compiler.errors import InputError
from optinc_compiler.mzi import Mesh, wrap_phase

TOPOLOGIES = ("clements", "reck")

#: Default tolerance on ``max |U^H U - I|`` for a matrix to count as unitary.
UNITARY_ATOL = 1e-9


# --------------------------------------------------------------------------- kernels


#: Rows updated together in the right-multiplication chains (instruction-level
#: parallelism; 4-8 measured alike at N=256).
_ROW_BLOCK = 4


@numba.njit(cache=True, nogil=True, fastmath={"contract"})
def _right_coeffs(x, y):  # type: ignore[no-untyped-def]
    """MZI nulling ``x`` in row ``[x, y]`` from the right; returns theta, phi, T^H entries.

    ``(A T^H)[:, c] = A[:, c] conj(T00) + A[:, c+1] conj(T01)`` and likewise column c+1.
    """
    theta = 2.0 * np.arctan2(abs(y), abs(x))
    phi = np.angle(-x * np.conj(y))
    k = 1j * np.exp(0.5j * theta)
    s = np.sin(0.5 * theta)
    co = np.cos(0.5 * theta)
    e = np.exp(1j * phi)
    return theta, phi, np.conj(k * e * s), np.conj(k * co), np.conj(k * e * co), np.conj(-k * s)


@numba.njit(cache=True, nogil=True, fastmath={"contract"})
def _chain_ascending(a, r0, r1, c0, nops, t):  # type: ignore[no-untyped-def]
    """Apply right MZIs q = 0..nops-1 on columns (c0+q, c0+q+1) to rows r0..r1-1.

    Consecutive MZIs share a column, which is carried in a register; rows go in blocks
    so the dependent chains of several rows overlap.
    """
    carry = np.empty(_ROW_BLOCK, np.complex128)
    for rb in range(r0, r1, _ROW_BLOCK):
        nb = min(_ROW_BLOCK, r1 - rb)
        for b in range(nb):
            carry[b] = a[rb + b, c0]
        for q in range(nops):
            c = c0 + q
            for b in range(nb):
                x = carry[b]
                y = a[rb + b, c + 1]
                a[rb + b, c] = x * t[q, 0] + y * t[q, 1]
                carry[b] = x * t[q, 2] + y * t[q, 3]
        for b in range(nb):
            a[rb + b, c0 + nops] = carry[b]


@numba.njit(cache=True, nogil=True, fastmath={"contract"})
def _chain_descending(a, r0, r1, c0, nops, t):  # type: ignore[no-untyped-def]
    """Apply right MZIs q = 0..nops-1 on columns (c0-q, c0-q+1) to rows r0..r1-1."""
    carry = np.empty(_ROW_BLOCK, np.complex128)
    for rb in range(r0, r1, _ROW_BLOCK):
        nb = min(_ROW_BLOCK, r1 - rb)
        for b in range(nb):
            carry[b] = a[rb + b, c0 + 1]
        for q in range(nops):
            c = c0 - q
            for b in range(nb):
                x = a[rb + b, c]
                y = carry[b]
                a[rb + b, c + 1] = x * t[q, 2] + y * t[q, 3]
                carry[b] = x * t[q, 0] + y * t[q, 1]
        for b in range(nb):
            a[rb + b, c0 - nops + 1] = carry[b]


@numba.njit(cache=True, nogil=True, fastmath={"contract"})
def _left_coeffs(x, y):  # type: ignore[no-untyped-def]
    """MZI nulling ``y`` in column ``[x; y]`` from the left; returns theta, phi, T entries."""
    theta = 2.0 * np.arctan2(abs(x), abs(y))
    phi = np.angle(y * np.conj(x))
    k = 1j * np.exp(0.5j * theta)
    s = np.sin(0.5 * theta)
    co = np.cos(0.5 * theta)
    e = np.exp(1j * phi)
    return theta, phi, k * e * s, k * co, k * e * co, -k * s


@numba.njit(cache=True, nogil=True, fastmath={"contract"})
def _clements_kernel(a):  # type: ignore[no-untyped-def]
    """Clements nulling in place; returns (modes, theta, phi, diagonal) in light order."""
    n = a.shape[0]
    k = n * (n - 1) // 2
    t = np.empty((n, 4), np.complex128)
    r_mode = np.empty(k, np.int64)
    r_theta = np.empty(k)
    r_phi = np.empty(k)
    l_mode = np.empty(k, np.int64)
    l_theta = np.empty(k)
    l_phi = np.empty(k)
    nr = 0
    nl = 0
    for i in range(n - 1):
        if i % 2 == 0:
            # MZI j nulls a[n-1-j, i-j] on columns (i-j, i-j+1); rows below n-1-j are
            # already zero there. Row n-1-j first takes MZIs 0..j-1, then defines MZI j.
            for j in range(i + 1):
                row = n - 1 - j
                carry = a[row, i + 1]
                for q in range(j):
                    c = i - q
                    x = a[row, c]
                    a[row, c + 1] = x * t[q, 2] + carry * t[q, 3]
                    carry = x * t[q, 0] + carry * t[q, 1]
                c = i - j
                x = a[row, c]
                theta, phi, t[j, 0], t[j, 1], t[j, 2], t[j, 3] = _right_coeffs(x, carry)
                a[row, c + 1] = x * t[j, 2] + carry * t[j, 3]
                a[row, c] = 0.0
                r_mode[nr] = c
                r_theta[nr] = theta
                r_phi[nr] = phi
                nr += 1
            _chain_descending(a, 0, n - 1 - i, i, i + 1, t)
        else:
            # MZI j nulls a[n-1-i+j, j] on rows (n-2-i+j, n-1-i+j); columns left of j
            # are already zero in both rows. Row updates are contiguous (vectorised).
            for j in range(i + 1):
                row = n - 1 - i + j
                x = a[row - 1, j]
                y = a[row, j]
                theta, phi, t00, t01, t10, t11 = _left_coeffs(x, y)
                for jj in range(j, n):
                    u = a[row - 1, jj]
                    v = a[row, jj]
                    a[row - 1, jj] = t00 * u + t01 * v
                    a[row, jj] = t10 * u + t11 * v
                a[row, j] = 0.0
                l_mode[nl] = row - 1
                l_theta[nl] = theta
                l_phi[nl] = phi
                nl += 1
    d = np.empty(n, np.complex128)
    for m in range(n):
        d[m] = a[m, m]
    # U = L_1^H ... L_nl^H D R_nr ... R_1: move each L^H through D (Clements Eq. 5):
    # T(theta, phi)^H diag(d1, d2) = diag(d1', d2') T(theta, phi') with
    # e^{i phi'} = d1 / d2, d1' = -e^{-i(theta+phi)} d2, d2' = -e^{-i theta} d2.
    modes = np.empty(k, np.int64)
    theta_out = np.empty(k)
    phi_out = np.empty(k)
    modes[:nr] = r_mode[:nr]
    theta_out[:nr] = r_theta[:nr]
    phi_out[:nr] = r_phi[:nr]
    pos = nr
    for q in range(nl - 1, -1, -1):
        m = l_mode[q]
        th = l_theta[q]
        d1 = d[m]
        d2 = d[m + 1]
        modes[pos] = m
        theta_out[pos] = th
        phi_out[pos] = np.angle(d1) - np.angle(d2)
        d[m] = -np.exp(-1j * (th + l_phi[q])) * d2
        d[m + 1] = -np.exp(-1j * th) * d2
        pos += 1
    return modes, theta_out, phi_out, d


@numba.njit(cache=True, nogil=True, fastmath={"contract"})
def _reck_kernel(a):  # type: ignore[no-untyped-def]
    """Reck nulling in place: row by row from the bottom, from the right only.

    Row ``row`` is nulled by MZIs on columns (0, 1), (1, 2), ..., (row-1, row); rows
    below it are already zero in those columns, rows above take the same MZIs.
    """
    n = a.shape[0]
    k = n * (n - 1) // 2
    t = np.empty((n, 4), np.complex128)
    modes = np.empty(k, np.int64)
    theta_out = np.empty(k)
    phi_out = np.empty(k)
    pos = 0
    for row in range(n - 1, 0, -1):
        carry = a[row, 0]
        for c in range(row):
            y = a[row, c + 1]
            theta, phi, t[c, 0], t[c, 1], t[c, 2], t[c, 3] = _right_coeffs(carry, y)
            a[row, c] = 0.0
            carry = carry * t[c, 2] + y * t[c, 3]
            modes[pos] = c
            theta_out[pos] = theta
            phi_out[pos] = phi
            pos += 1
        a[row, row] = carry
        _chain_ascending(a, 0, row, 0, row, t)
    d = np.empty(n, np.complex128)
    for m in range(n):
        d[m] = a[m, m]
    return modes, theta_out, phi_out, d


@numba.njit(cache=True, nogil=True, fastmath={"contract"})
def _asap_columns(modes, n_modes):  # type: ignore[no-untyped-def]
    """Earliest column for each MZI after every earlier MZI on its two modes."""
    free = np.zeros(n_modes, np.int64)
    cols = np.empty(modes.size, np.int64)
    for q in range(modes.size):
        m = modes[q]
        col = max(free[m], free[m + 1])
        cols[q] = col
        free[m] = col + 1
        free[m + 1] = col + 1
    return cols


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


def unitarity_error(matrix: npt.NDArray[np.complex128]) -> float:
    """``max |U^H U - I|`` of a square matrix."""
    n = matrix.shape[0]
    return float(np.max(np.abs(matrix.conj().T @ matrix - np.eye(n))))


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
        atol: tolerance on ``max |U^H U - I|`` checked before decomposing.
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
    kernel = _clements_kernel if topology == "clements" else _reck_kernel
    modes, theta, phi, diag = kernel(a)
    # The nulled residual R = L U R' is upper triangular and unitary iff U is, so a
    # unitary U leaves a diagonal R with |R_ii| = 1: an O(N^2) screen of what
    # max |U^H U - I| <= atol says (O(N^3)), which is computed only if the screen fails.
    if _residual_error(a) > atol:
        check_unitary(as_complex_matrix(unitary, what="unitary"), atol=atol, what="unitary")
    return Mesh(
        topology=topology,
        n_modes=rows,
        modes=modes,
        columns=_asap_columns(modes, rows),
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

    Alternates two exact partial minimisations of ``||W - A D||_F``:

    * ``A`` for fixed ``D``: for out >= in an orthogonal-Procrustes step,
      ``A = polar(W D^H)``; for out < in (``A`` has orthonormal rows) a majorise-minimise
      step ``A = polar(A - (A D - W) D^H / max|d|^2)``;
    * ``D`` for fixed ``A``: ``d_j = a_j^H w_j / ||a_j||^2`` (column-wise least squares).

    It stops when the objective improves by less than ``rtol`` (relative) or after
    ``max_iter`` steps. It is an approximation: check ``relative_error``.
    """
    w = as_complex_matrix(matrix, what="weight matrix")
    if max_iter < 1:
        raise InputError(f"max_iter is {max_iter}; allowed: >= 1")
    rows, cols = w.shape
    norm_w = float(np.linalg.norm(w))
    d = np.linalg.norm(w, axis=0).astype(np.complex128)
    a = _polar(w * d.conj()) if rows >= cols else _polar(w)
    previous = np.inf
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 -- the count is reported
        d = _best_diagonal(a, w)
        if rows >= cols:
            a = _polar(w * d.conj())
        else:
            lam = float(np.max(np.abs(d)) ** 2) or 1.0
            a = _polar(a - ((a * d) - w) * d.conj() / lam)
        d = _best_diagonal(a, w)
        residual = float(np.linalg.norm(w - a * d))
        if previous - residual <= rtol * max(norm_w, 1e-300):
            break
        previous = residual
    # move the phases of d into the unitary, so the attenuators need no phase shifter
    a = a * np.exp(1j * np.angle(d))
    magnitude = np.abs(d)
    residual = float(np.linalg.norm(w - a * magnitude))
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


def _best_diagonal(
    a: npt.NDArray[np.complex128], w: npt.NDArray[np.complex128]
) -> npt.NDArray[np.complex128]:
    """Column-wise least squares ``d_j = a_j^H w_j / ||a_j||^2`` (0 where a_j = 0)."""
    num = np.einsum("ij,ij->j", a.conj(), w)
    den = np.einsum("ij,ij->j", a.conj(), a).real
    return np.divide(num, den, out=np.zeros_like(num), where=den > 1e-300)


def _complete_unitary(a: npt.NDArray[np.complex128]) -> npt.NDArray[np.complex128]:
    """An M x M unitary whose top-left block is ``a`` (orthonormal rows or columns)."""
    rows, cols = a.shape
    p, _, qh = np.linalg.svd(a, full_matrices=True)
    if rows >= cols:  # a = P[:, :cols] Q^H
        blk = np.eye(rows, dtype=np.complex128)
        blk[:cols, :cols] = qh
        return np.asarray(p @ blk)
    blk = np.eye(cols, dtype=np.complex128)  # a = P [I 0] Q^H
    blk[:rows, :rows] = p
    return np.asarray(blk @ qh)
