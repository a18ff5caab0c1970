"""Pins the MZI convention of docs/architecture.md (like sax's test_smatrix_convention.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from optinc_compiler.mzi import COUPLER, TWO_PI, Mesh, apply_mesh, mzi_matrix, phase_shifter, wrap_phase

angles = st.floats(min_value=-20.0, max_value=20.0, allow_nan=False)


def test_coupler_and_phase_shifter_are_the_documented_matrices():
    np.testing.assert_allclose(COUPLER, np.array([[1, 1j], [1j, 1]]) / np.sqrt(2), rtol=0, atol=0)
    np.testing.assert_allclose(phase_shifter(0.3), np.diag([np.exp(0.3j), 1]), rtol=0, atol=1e-16)


@given(theta=angles, phi=angles)
def test_mzi_closed_form_equals_b_p_b_p(theta, phi):
    b = np.array([[1, 1j], [1j, 1]]) / np.sqrt(2)
    expected = b @ np.diag([np.exp(1j * theta), 1]) @ b @ np.diag([np.exp(1j * phi), 1])
    np.testing.assert_allclose(mzi_matrix(theta, phi), expected, rtol=0, atol=1e-14)


def test_theta_zero_is_cross_and_theta_pi_is_bar():
    cross, bar = mzi_matrix(0.0, 0.7), mzi_matrix(np.pi, 0.7)
    np.testing.assert_allclose(np.abs(cross), [[0, 1], [1, 0]], atol=1e-15)
    np.testing.assert_allclose(np.abs(bar), [[1, 0], [0, 1]], atol=1e-15)


def test_phi_acts_on_the_upper_input_arm():
    # phi multiplies input column 0 (the lower mode index) only
    t0, t1 = mzi_matrix(1.1, 0.0), mzi_matrix(1.1, 0.5)
    np.testing.assert_allclose(t1[:, 0], np.exp(0.5j) * t0[:, 0], atol=1e-15)
    np.testing.assert_allclose(t1[:, 1], t0[:, 1], atol=1e-15)


def test_mzi_matrix_is_batched():
    thetas, phis = np.linspace(0, np.pi, 5), np.linspace(0, 6, 5)
    batch = mzi_matrix(thetas, phis)
    assert batch.shape == (5, 2, 2)
    np.testing.assert_allclose(batch[3], mzi_matrix(thetas[3], phis[3]))


@given(x=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))
def test_wrap_phase_lands_in_half_open_range_and_keeps_the_phasor(x):
    w = float(wrap_phase(x))
    assert 0.0 <= w < TWO_PI
    assert abs(np.exp(1j * w) - np.exp(1j * x)) < 1e-9


@pytest.mark.parametrize("x", [-1e-17, -0.0, TWO_PI, -TWO_PI, 2 * TWO_PI, np.nextafter(TWO_PI, 0)])
def test_wrap_phase_edge_cases(x):
    w = float(wrap_phase(x))
    assert 0.0 <= w < TWO_PI


def test_mesh_matrix_is_output_screen_times_mzis_in_light_order():
    # two MZIs on modes (0,1) then (1,2): U = D @ T2 @ T1, built by hand
    mesh = Mesh(
        topology="clements",
        n_modes=3,
        modes=np.array([0, 1]),
        columns=np.array([0, 1]),
        theta_rad=np.array([0.4, 2.0]),
        phi_rad=np.array([1.0, 3.0]),
        output_phases_rad=np.array([0.1, 0.2, 0.3]),
    )
    t1, t2 = np.eye(3, dtype=complex), np.eye(3, dtype=complex)
    t1[0:2, 0:2] = mzi_matrix(0.4, 1.0)
    t2[1:3, 1:3] = mzi_matrix(2.0, 3.0)
    expected = np.diag(np.exp(1j * np.array([0.1, 0.2, 0.3]))) @ t2 @ t1
    np.testing.assert_allclose(mesh.matrix(), expected, atol=1e-15)
    fields = np.arange(6).reshape(3, 2).astype(complex)
    np.testing.assert_allclose(apply_mesh(mesh, fields), expected @ fields, atol=1e-14)
