"""Shared fixtures and an independent reconstruction of phase-program layers.

``rebuild_layer`` rebuilds a layer's matrix from its JSON dict with dense 2x2 products
written here from the convention of docs/architecture.md, not with the library's own code.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy.stats import unitary_group

B = np.array([[1, 1j], [1j, 1]]) / np.sqrt(2)


def haar(n: int, seed: int) -> np.ndarray:
    """Seeded Haar-random n x n unitary."""
    if n == 1:
        return np.exp(1j * np.random.default_rng(seed).uniform(0, 2 * np.pi)).reshape(1, 1)
    return unitary_group.rvs(n, random_state=seed)


def _p(x: float) -> np.ndarray:
    return np.diag([np.exp(1j * x), 1.0])


def rebuild_stage(stage: dict[str, Any]) -> np.ndarray:
    """One stage's n_modes x n_modes matrix, straight from the convention."""
    n = stage["n_modes"]
    if stage["kind"] == "diagonal":
        return np.diag(np.asarray(stage["amplitude"]) * np.exp(1j * np.asarray(stage["phase"])))
    u = np.eye(n, dtype=complex)
    for mzi in stage["mzis"]:  # in the order light meets them: U = T_K ... T_1
        t = np.eye(n, dtype=complex)
        m = mzi["mode"]
        t[m : m + 2, m : m + 2] = B @ _p(mzi["theta"]) @ B @ _p(mzi["phi"])
        u = t @ u
    return np.diag(np.exp(1j * np.asarray(stage["output_phases"]))) @ u


def _chain(stages: list[dict[str, Any]], shape: list[int]) -> np.ndarray:
    rows, cols = shape
    n = max(rows, cols)
    s = np.eye(n, dtype=complex)
    for stage in stages:
        e = np.eye(n, dtype=complex)
        k = stage["n_modes"]
        e[:k, :k] = rebuild_stage(stage)
        s = e @ s
    return s[:rows, :cols]


def rebuild_layer(layer: dict[str, Any]) -> np.ndarray:
    """``scale * R_out @ S_last @ ... @ S_1 @ E_in`` (summed over blocks if segmented)."""
    if "blocks" not in layer:
        return layer["scale"] * _chain(layer["stages"], layer["shape"])
    out = np.zeros(layer["shape"], dtype=complex)
    for b in layer["blocks"]:
        r, c = b["row_offset"], b["col_offset"]
        h, w = b["shape"]
        out[r : r + h, c : c + w] += _chain(b["stages"], b["shape"])
    return layer["scale"] * out


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
