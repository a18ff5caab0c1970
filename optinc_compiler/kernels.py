"""Typed Python face of the C extension ``_kernels`` (see ``_kernels.c``).

The extension is built by ``pip install`` (``setup.py``); a checkout used without
installing gets one clear error instead of an ImportError from deep inside.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from optinc_compiler.errors import MissingDependencyError

try:
    from optinc_compiler import _kernels  # type: ignore[attr-defined]
except ImportError as exc:  # the build is missing or for another Python
    raise MissingDependencyError(
        "the C kernels (optinc_compiler._kernels) are not built for this Python: "
        "run `pip install -e .` in the checkout (or `make test`)"
    ) from exc

TOPOLOGY_KERNELS = {"clements": _kernels.clements, "reck": _kernels.reck}


def null_unitary(
    a: npt.NDArray[np.complex128], topology: str
) -> tuple[
    npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.complex128]
]:
    """Null ``a`` in place (C-contiguous complex128 N x N) with the topology's MZIs.

    Returns the upper modes, theta and phi of the MZIs in light order (phi not yet
    wrapped) and the diagonal left after nulling.
    """
    n = a.shape[0]
    k = n * (n - 1) // 2
    modes = np.empty(k, dtype=np.int64)
    theta = np.empty(k, dtype=np.float64)
    phi = np.empty(k, dtype=np.float64)
    diag = np.empty(n, dtype=np.complex128)
    TOPOLOGY_KERNELS[topology](n, a, modes, theta, phi, diag)
    return modes, theta, phi, diag


def asap_columns(modes: npt.NDArray[np.int64], n_modes: int) -> npt.NDArray[np.int64]:
    """Earliest column for each MZI (light order) after every earlier MZI on its modes."""
    modes = np.ascontiguousarray(modes, dtype=np.int64)
    columns = np.empty_like(modes)
    _kernels.asap_columns(n_modes, modes, columns)
    return columns


def apply_mzis(
    fields: npt.NDArray[np.complex128],
    modes: npt.NDArray[np.int64],
    theta_rad: npt.NDArray[np.float64],
    phi_rad: npt.NDArray[np.float64],
) -> None:
    """``fields <- T_K ... T_1 fields`` in place; fields is C-contiguous complex128 (N, k)."""
    _kernels.apply_mzis(
        fields.shape[0],
        fields.shape[1],
        fields,
        np.ascontiguousarray(modes, dtype=np.int64),
        np.ascontiguousarray(theta_rad, dtype=np.float64),
        np.ascontiguousarray(phi_rad, dtype=np.float64),
    )
