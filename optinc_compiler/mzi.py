r"""The MZI convention used everywhere in OptINC (docs/architecture.md, "The MZI convention").

Directional coupler (50:50) and phase shifter on the upper arm (lower mode index)::

    B = [[1, 1j],          P(x) = [[exp(1j*x), 0],
         [1j, 1]] / sqrt(2)        [0,         1]]

An MZI is ``T(theta, phi) = B @ P(theta) @ B @ P(phi)``: ``phi`` is the external shifter
on the upper input arm, ``theta`` the internal one. Written out::

    T(theta, phi) = 1j * exp(1j*theta/2) * [[exp(1j*phi) * sin(theta/2),  cos(theta/2)],
                                            [exp(1j*phi) * cos(theta/2), -sin(theta/2)]]

``theta = 0`` is the cross state, ``theta = pi`` the bar state. Canonical ranges:
``theta`` in [0, pi], ``phi`` in [0, 2 pi).

A mesh is the ordered list of MZIs in the order light meets them, MZI k on modes
``(m_k, m_k + 1)``, followed by the output phase screen ``D = diag(exp(1j*delta))``::

    U = D @ T_K @ ... @ T_1,    S-matrices indexed S[out, in].

The pinned numeric test is ``tests/test_mzi.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

TWO_PI = 2.0 * np.pi

#: The 50:50 directional coupler B.
COUPLER = np.array([[1.0, 1.0j], [1.0j, 1.0]], dtype=np.complex128) / np.sqrt(2.0)


def wrap_phase(phase_rad: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Wrap phases into the canonical range [0, 2 pi).

    ``np.mod`` alone can return exactly ``2 pi`` for tiny negative inputs (rounding);
    those are mapped to 0 so the half-open range always holds.
    """
    wrapped = np.mod(np.asarray(phase_rad, dtype=np.float64), TWO_PI)
    return np.where(wrapped >= TWO_PI, 0.0, wrapped)


def phase_shifter(phase_rad: npt.ArrayLike) -> npt.NDArray[np.complex128]:
    """P(x) = diag(exp(1j*x), 1), batched over the shape of ``phase_rad`` (..., 2, 2)."""
    x = np.asarray(phase_rad, dtype=np.float64)
    out = np.zeros((*x.shape, 2, 2), dtype=np.complex128)
    out[..., 0, 0] = np.exp(1j * x)
    out[..., 1, 1] = 1.0
    return out


def mzi_matrix(theta_rad: npt.ArrayLike, phi_rad: npt.ArrayLike) -> npt.NDArray[np.complex128]:
    """Closed form of ``T(theta, phi) = B @ P(theta) @ B @ P(phi)``, batched (..., 2, 2)."""
    theta, phi = np.broadcast_arrays(
        np.asarray(theta_rad, dtype=np.float64), np.asarray(phi_rad, dtype=np.float64)
    )
    k = 1j * np.exp(0.5j * theta)
    s, c, e = np.sin(0.5 * theta), np.cos(0.5 * theta), np.exp(1j * phi)
    out = np.empty((*theta.shape, 2, 2), dtype=np.complex128)
    out[..., 0, 0] = k * e * s
    out[..., 0, 1] = k * c
    out[..., 1, 0] = k * e * c
    out[..., 1, 1] = -k * s
    return out


@dataclass(frozen=True, eq=False)
class Mesh:
    """A feed-forward MZI mesh in the convention above.

    Attributes:
        topology: ``"clements"`` (rectangular) or ``"reck"`` (triangular).
        n_modes: number of waveguides N.
        modes: (K,) upper mode ``m`` of each MZI (it acts on ``m, m+1``), in the order
            light meets them.
        columns: (K,) column of each MZI in the drawn mesh; MZIs sharing a mode sit in
            strictly increasing columns, MZIs of one column on disjoint modes.
        theta_rad: (K,) internal phases in [0, pi].
        phi_rad: (K,) external phases in [0, 2 pi).
        output_phases_rad: (N,) output phase screen ``delta`` in [0, 2 pi).
    """

    topology: str
    n_modes: int
    modes: npt.NDArray[np.int64]
    columns: npt.NDArray[np.int64]
    theta_rad: npt.NDArray[np.float64]
    phi_rad: npt.NDArray[np.float64]
    output_phases_rad: npt.NDArray[np.float64]

    @property
    def n_mzis(self) -> int:
        """Number of MZIs K."""
        return int(self.modes.size)

    @property
    def depth(self) -> int:
        """Number of occupied MZI columns."""
        return int(self.columns.max()) + 1 if self.columns.size else 0

    def matrix(self) -> npt.NDArray[np.complex128]:
        """The mesh transfer matrix ``U = D @ T_K @ ... @ T_1`` (``S[out, in]``)."""
        return apply_mesh(self, np.eye(self.n_modes, dtype=np.complex128))


def apply_mesh(mesh: Mesh, fields: npt.ArrayLike) -> npt.NDArray[np.complex128]:
    """Propagate input fields (N, k) or (N,) through ``mesh``; returns ``U @ fields``.

    The MZIs are applied in light order by the C kernel (a copy of ``fields`` is updated
    in place, two rows per MZI), then the output phase screen.
    """
    from optinc_compiler.kernels import apply_mzis  # lazy: the convention alone needs no C

    out = np.array(fields, dtype=np.complex128, order="C", copy=True)
    apply_mzis(out.reshape(mesh.n_modes, -1), mesh.modes, mesh.theta_rad, mesh.phi_rad)
    phase = np.exp(1j * mesh.output_phases_rad).reshape(-1, *([1] * (out.ndim - 1)))
    return phase * out
