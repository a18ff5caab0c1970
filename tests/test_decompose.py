"""Clements, Reck, SVD and unitary x diagonal decompositions: reconstruction and structure."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import haar
from hypothesis import given, settings
from hypothesis import strategies as st

from optinc_compiler.decompose import (
    as_complex_matrix,
    clements,
    decompose_unitary,
    reck,
    svd_factors,
    unitary_diagonal,
)
from optinc_compiler.errors import InputError
from optinc_compiler.mzi import Mesh, mzi_matrix

TOL = 1e-12
DECOMPOSERS = {"clements": clements, "reck": reck}
seeds = st.integers(min_value=0, max_value=2**32 - 1)


def dense_mesh_matrix(mesh: Mesh) -> np.ndarray:
    """Independent product D @ T_K ... T_1 with embedded 2x2 blocks."""
    u = np.eye(mesh.n_modes, dtype=complex)
    for m, t, p in zip(mesh.modes, mesh.theta_rad, mesh.phi_rad, strict=True):
        block = np.eye(mesh.n_modes, dtype=complex)
        block[m : m + 2, m : m + 2] = mzi_matrix(t, p)
        u = block @ u
    return np.diag(np.exp(1j * mesh.output_phases_rad)) @ u


def assert_mesh_structure(mesh: Mesh, n: int, topology: str) -> None:
    assert mesh.n_mzis == n * (n - 1) // 2
    assert mesh.output_phases_rad.shape == (n,)
    assert np.all((mesh.theta_rad >= 0) & (mesh.theta_rad <= np.pi))
    assert np.all((mesh.phi_rad >= 0) & (mesh.phi_rad < 2 * np.pi))
    assert np.all((mesh.output_phases_rad >= 0) & (mesh.output_phases_rad < 2 * np.pi))
    assert np.all((mesh.modes >= 0) & (mesh.modes <= n - 2))
    if n >= 3:
        assert mesh.depth == (n if topology == "clements" else 2 * n - 3)
    if topology == "clements":  # rectangular: column parity equals mode parity
        assert np.all(mesh.columns % 2 == mesh.modes % 2)
    for col in np.unique(mesh.columns):  # one column: disjoint mode pairs
        modes = mesh.modes[mesh.columns == col]
        assert np.all(np.diff(np.sort(modes)) >= 2)


@pytest.mark.parametrize("topology", ["clements", "reck"])
@settings(max_examples=40, deadline=None)
@given(n=st.integers(min_value=1, max_value=20), seed=seeds)
def test_haar_unitary_reconstructs(topology, n, seed):
    u = haar(n, seed)
    mesh = DECOMPOSERS[topology](u)
    assert_mesh_structure(mesh, n, topology)
    np.testing.assert_allclose(mesh.matrix(), u, rtol=0, atol=TOL)
    np.testing.assert_allclose(dense_mesh_matrix(mesh), u, rtol=0, atol=TOL)


@pytest.mark.parametrize("topology", ["clements", "reck"])
@pytest.mark.parametrize("n", [31, 32, 63, 64])
def test_large_haar_unitary_reconstructs(topology, n):
    u = haar(n, seed=n)
    mesh = decompose_unitary(u, topology=topology)
    assert_mesh_structure(mesh, n, topology)
    np.testing.assert_allclose(mesh.matrix(), u, rtol=0, atol=TOL)


@pytest.mark.parametrize("topology", ["clements", "reck"])
@settings(max_examples=25, deadline=None)
@given(n=st.integers(min_value=2, max_value=12), seed=seeds)
def test_real_orthogonal_input(topology, n, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    mesh = DECOMPOSERS[topology](q)
    np.testing.assert_allclose(mesh.matrix(), q, rtol=0, atol=TOL)


def _degenerate_unitaries():
    rng = np.random.default_rng(7)
    cases = {
        "identity5": np.eye(5),
        "identity6": np.eye(6),
        "anti_identity5": np.eye(5)[::-1],
        "anti_identity6": np.eye(6)[::-1],
        "permutation7": np.eye(7)[[3, 0, 6, 1, 5, 2, 4]],
        "diagonal_phases6": np.diag(np.exp(1j * rng.uniform(0, 2 * np.pi, 6))),
        "minus_identity4": -np.eye(4),
        "swap2": np.array([[0, 1], [1, 0]]),
        "one_by_one": np.array([[1j]]),
        "block_diagonal": np.kron(np.eye(3), haar(2, 3)),
        "phased_permutation": np.eye(5)[[1, 2, 3, 4, 0]] * np.exp(1j * np.arange(5)),
    }
    return list(cases.items())


@pytest.mark.parametrize("topology", ["clements", "reck"])
@pytest.mark.parametrize(("name", "u"), _degenerate_unitaries())
def test_degenerate_unitaries_are_exact_and_finite(topology, name, u):
    mesh = DECOMPOSERS[topology](u)
    for arr in (mesh.theta_rad, mesh.phi_rad, mesh.output_phases_rad):
        assert np.all(np.isfinite(arr)), name
    np.testing.assert_allclose(mesh.matrix(), u, rtol=0, atol=1e-14)


def test_same_input_gives_identical_phases():
    u = haar(12, 5)
    a, b = clements(u), clements(u.copy())
    assert np.array_equal(a.theta_rad, b.theta_rad)
    assert np.array_equal(a.phi_rad, b.phi_rad)
    assert np.array_equal(a.output_phases_rad, b.output_phases_rad)


def test_input_matrix_is_not_modified():
    u = haar(6, 1)
    before = u.copy()
    clements(u)
    reck(u)
    assert np.array_equal(u, before)


def test_non_unitary_is_rejected_with_the_deviation():
    with pytest.raises(InputError, match=r"unitary is not unitary: max \|U\^H U - I\| = 3 > tolerance 1e-09"):
        clements(2 * np.eye(3))


@pytest.mark.parametrize("decomposer", [clements, reck])
def test_overflowing_input_is_an_error_not_nan(decomposer):
    with pytest.raises(InputError, match=r"unitary is not unitary: max \|U\^H U - I\| = inf"):
        decomposer(1e300 * haar(3, 0))


def test_near_unitary_within_tolerance_is_accepted():
    u = haar(8, 2) * (1 + 1e-11)
    np.testing.assert_allclose(clements(u).matrix(), u, atol=1e-10)
    with pytest.raises(InputError, match="not unitary"):
        clements(u, atol=1e-13)


def test_non_square_unitary_is_rejected():
    with pytest.raises(InputError, match=r"unitary is 2 x 3; a unitary mesh needs a square matrix"):
        reck(np.ones((2, 3)))


def test_unknown_topology():
    with pytest.raises(InputError, match=r"unknown mesh topology 'hex'; allowed: clements, reck"):
        decompose_unitary(np.eye(2), topology="hex")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.array([[1.0, np.nan], [0, 1]]), r"matrix has 1 non-finite entries \(first at \(0, 1\): nan\)"),
        (np.array([[np.inf]]), r"non-finite entries .*allowed: finite numbers"),
        (np.ones(3), r"matrix has 1 dimension\(s\) \(3,\); allowed: 2 \(out x in\)"),
        (np.ones((2, 2, 2)), r"has 3 dimension\(s\)"),
        (np.ones((0, 3)), r"matrix is empty \(shape \(0, 3\)\); allowed: at least 1 x 1"),
        (np.array([["a", "b"]]), r"matrix has dtype <U1; allowed: integer, real or complex numbers"),
        (np.array([[object()]]), r"dtype object"),
    ],
)
def test_bad_matrices(value, message):
    with pytest.raises(InputError, match=message):
        as_complex_matrix(value)


# ------------------------------------------------------------------------------ SVD


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(1, 12), cols=st.integers(1, 12), seed=seeds, complex_=st.booleans())
def test_svd_factors_reconstruct_any_shape(rows, cols, seed, complex_):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(rows, cols)) + (1j * rng.normal(size=(rows, cols)) if complex_ else 0)
    f = svd_factors(w)
    sigma = np.zeros((rows, cols))
    sigma[: f.singular_values.size, : f.singular_values.size] = np.diag(f.singular_values)
    np.testing.assert_allclose(f.u @ sigma @ f.vh, w, atol=1e-12)


# ------------------------------------------------------------------ unitary x diagonal


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 10), seed=seeds)
def test_ud_is_exact_for_unitary_times_diagonal(n, seed):
    rng = np.random.default_rng(seed)
    d = rng.uniform(0.1, 2.0, n)
    w = haar(n, seed) @ np.diag(d)
    f = unitary_diagonal(w)
    assert f.relative_error < 1e-9
    np.testing.assert_allclose(f.unitary @ np.diag(f.diagonal), w, atol=1e-8)


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(1, 10), cols=st.integers(1, 10), seed=seeds)
def test_ud_factors_are_valid_and_error_is_what_they_give(rows, cols, seed):
    w = np.random.default_rng(seed).normal(size=(rows, cols))
    f = unitary_diagonal(w)
    m = max(rows, cols)
    assert f.unitary.shape == (m, m)
    np.testing.assert_allclose(f.unitary.conj().T @ f.unitary, np.eye(m), atol=1e-12)
    assert f.diagonal.shape == (cols,)
    assert np.all(f.diagonal >= 0)
    approx = f.unitary[:rows, :cols] @ np.diag(f.diagonal)
    err = np.linalg.norm(w - approx) / np.linalg.norm(w)
    assert f.relative_error == pytest.approx(err, rel=1e-9, abs=1e-15)
    # never worse than the starting point D = column norms
    assert f.relative_error <= 1.0 + 1e-12


def test_ud_beats_column_norm_start_and_stops_early_when_converged():
    w = np.random.default_rng(3).normal(size=(16, 16))
    coarse = unitary_diagonal(w, max_iter=1)
    fine = unitary_diagonal(w, max_iter=500)
    assert fine.relative_error < coarse.relative_error
    assert fine.iterations < 500


@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (4, 2), (2, 4)])
def test_ud_and_svd_of_all_zero_matrix_are_finite(shape):
    w = np.zeros(shape)
    f = unitary_diagonal(w)
    assert f.relative_error == 0.0
    assert np.all(f.diagonal == 0)
    assert np.all(np.isfinite(f.unitary))
    s = svd_factors(w)
    assert np.all(s.singular_values == 0)


def test_ud_rank_deficient_column():
    w = np.array([[1.0, 0.0, 2.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    f = unitary_diagonal(w)
    assert np.all(np.isfinite(f.unitary))
    assert np.all(np.isfinite(f.diagonal))
    assert f.diagonal[1] == 0.0
