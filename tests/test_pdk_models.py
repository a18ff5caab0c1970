"""PDK sax models: the ideal models carry the MZI convention; a layer's netlist
simulated by sax.circuit equals the program's matrix."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import haar

sax = pytest.importorskip("sax")

from optinc_compiler.compiler import CompileOptions, compile_layer  # noqa: E402
from optinc_compiler.mzi import mzi_matrix  # noqa: E402
from optinc_compiler.netlist import layer_netlist  # noqa: E402
from pdk import models as pm  # noqa: E402
from pdk import tech  # noqa: E402


def test_ideal_mzi_model_is_the_convention():
    s = pm.mzi(theta_rad=0.7, phi_rad=2.1, ideal=True)
    t = mzi_matrix(0.7, 2.1)
    got = np.array([[s["o2", "o3"], s["o1", "o3"]], [s["o2", "o4"], s["o1", "o4"]]])
    np.testing.assert_allclose(got, t, atol=1e-12)
    assert s["o3", "o2"] == s["o2", "o3"]  # reciprocal
    assert s["e1", "e1"] == 0


def test_mzi_model_is_vectorised_over_settings_and_wavelengths():
    theta = np.linspace(0, np.pi, 5)[:, None]
    wl = np.linspace(1.5, 1.6, 3)[None, :]
    s = pm.mzi(wl=wl, theta_rad=theta, phi_rad=0.0)
    assert np.shape(s["o2", "o3"]) == (5, 3)
    power = np.abs(s["o2", "o3"]) ** 2 + np.abs(s["o2", "o4"]) ** 2
    assert np.all(power <= 1.0)  # passive


@pytest.mark.parametrize("amplitude", [0.0, 0.3, 1.0])
def test_ideal_attenuator_realises_amplitude_and_phase(amplitude):
    s = pm.attenuator(amplitude=amplitude, phase_rad=1.0, ideal=True)
    np.testing.assert_allclose(s["o1", "o2"], amplitude * np.exp(1j), atol=1e-12)


def test_pdk_coupler_is_50_50_at_the_centre_wavelength_only():
    t, k = pm._coupler_matrix(np.array([tech.WL_CENTER_UM, 1.6]), ideal=False)
    loss = 10 ** (-tech.COUPLER.excess_loss_dB / 20)
    np.testing.assert_allclose(np.abs(t[0]), np.abs(k[0]))
    assert abs(t[0]) ** 2 + abs(k[0]) ** 2 == pytest.approx(loss**2)
    assert abs(k[1]) > abs(t[1])


@pytest.mark.parametrize(
    ("shape", "method"),
    [((2, 2), "unitary"), ((3, 3), "unitary"), ((4, 4), "unitary"), ((3, 2), "svd"), ((3, 3), "ud")],
)
def test_flat_sax_circuit_of_the_netlist_equals_the_program(shape, method):
    rng = np.random.default_rng(7)
    w = haar(shape[0], 1) if method == "unitary" else rng.normal(size=shape)
    layer = compile_layer("L", w, CompileOptions(method=method))
    circuit, _ = sax.circuit(layer_netlist(layer).to_dict(), models=pm.models(ideal=True))
    s = circuit()
    got = np.array([[s[f"in{j}", f"out{i}"] for j in range(shape[1])] for i in range(shape[0])])
    np.testing.assert_allclose(layer.scale * got, layer.matrix(), atol=1e-9)


def test_pdk_models_keep_a_uniform_column_phase():
    """Bypasses have the optical length of their cell: with lossless PDK models the
    matrix is the program's up to one global phase and the coupler losses."""
    layer = compile_layer("L", haar(3, 2), CompileOptions(method="unitary"))
    circuit, _ = sax.circuit(layer_netlist(layer).to_dict(), models=pm.models(ideal=False))
    s = circuit(wl=tech.WL_CENTER_UM)
    got = np.array([[complex(s[f"in{j}", f"out{i}"]) for j in range(3)] for i in range(3)])
    target = layer.matrix()
    overlap = np.vdot(target, got)
    fidelity = abs(overlap) ** 2 / (np.vdot(got, got).real * np.vdot(target, target).real)
    assert fidelity > 0.999
