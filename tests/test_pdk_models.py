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


def test_flat_sax_circuit_of_a_segmented_layer_equals_the_program_over_the_splitting_loss():
    w = np.random.default_rng(8).normal(size=(5, 6))
    layer = compile_layer("L", w, CompileOptions(method="ud-segmented", block_size=4))
    circuit, _ = sax.circuit(layer_netlist(layer).to_dict(), models=pm.models(ideal=True))
    s = circuit()
    got = np.array([[s[f"in{j}", f"out{i}"] for j in range(6)] for i in range(5)])
    np.testing.assert_allclose(layer.scale * 2 * got, layer.matrix(), atol=1e-9)  # R = C = 2


def test_segmented_layer_with_pdk_models_loses_only_what_its_crossings_cost():
    """The crossing paths and their bypasses have one optical length and one loss, so
    with PDK models an 8x8 layer in 4x4 tiles keeps fidelity 0.9994 (paths pass 0-7
    crossings; the -40 dB crosstalk of each is what is left: 0.998 with lossless
    bypasses); a phase mismatch between them would drop it far lower."""
    from optinc_compiler import simulate

    w = np.random.default_rng(0).normal(size=(8, 8))
    layer = compile_layer("L", w, CompileOptions(method="ud-segmented", block_size=4))
    s = simulate.layer_smatrix(layer, model_set="pdk")[0]
    fid = simulate.fidelity(s, layer.matrix() / layer.scale, scale=1.0)
    assert 0.999 < fid.fidelity < 0.9998
    assert fid.insertion_loss_dB > 10 * np.log10(4)  # the 1/sqrt(R C) splitting, and losses


def test_crossing_model_swaps_rows_with_its_loss_and_crosstalk():
    p = tech.PORTS
    ideal = pm.crossing(ideal=True)
    assert abs(ideal[p.upper_in, p.lower_out]) == abs(ideal[p.lower_in, p.upper_out]) == 1.0
    assert abs(ideal[p.upper_in, p.upper_out]) == 0.0
    real = pm.crossing(wl=tech.WL_CENTER_UM)
    loss_dB = -20 * np.log10(abs(complex(real[p.upper_in, p.lower_out])))
    arm_dB = tech.WAVEGUIDE.loss_dB_cm * tech.crossing_arm().length_um * 1e-4
    assert loss_dB == pytest.approx(tech.CROSSING.excess_loss_dB + arm_dB)
    leak_dB = 20 * np.log10(abs(complex(real[p.upper_in, p.upper_out])))
    assert leak_dB == pytest.approx(tech.CROSSING.crosstalk_dB - arm_dB)
    bypass = pm.models()["crossing_bypass"](wl=tech.WL_CENTER_UM)
    # the bypass has the arm's length: the same propagation phase
    ratio = complex(real[p.upper_in, p.lower_out]) / complex(bypass["o1", "o2"])
    assert np.angle(ratio) == pytest.approx(0.0, abs=1e-12)


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


@pytest.mark.parametrize("cell", ["grating_coupler", "edge_coupler", "io_fan"])
def test_io_models_have_the_cells_optical_ports(cell):
    gf = pytest.importorskip("gdsfactory")
    from optinc_compiler.layout import activate_pdk
    from pdk import cells

    activate_pdk()
    drawn = {p.name for p in cells.IO_CELLS[cell]().ports}
    s = pm.models()[cell]()
    assert {port for pair in s for port in pair} == drawn
    assert gf is not None


def test_grating_coupler_peak_loss_and_1db_bandwidth():
    g = tech.GRATING
    half = g.bandwidth_1dB_um / 2
    wl = np.array([g.center_wl_um, g.center_wl_um - half, g.center_wl_um + half, 1.50, 1.60])
    loss_dB = -20 * np.log10(np.abs(np.asarray(pm.grating_coupler(wl=wl)["o1", "o2"])))
    np.testing.assert_allclose(
        loss_dB[:3], [g.peak_loss_dB, g.peak_loss_dB + 1, g.peak_loss_dB + 1], atol=1e-6
    )
    assert g.peak_loss_dB == pytest.approx(1.0)
    assert np.all(loss_dB[3:] > g.peak_loss_dB + 5)  # band edges well outside the passband
    ideal = pm.grating_coupler(wl=wl, ideal=True)["o1", "o2"]
    np.testing.assert_allclose(ideal, 1.0)


def test_edge_coupler_is_flat_and_io_fan_is_a_lossy_waveguide():
    wl = np.linspace(1.5, 1.6, 5)
    loss_dB = -20 * np.log10(np.abs(np.asarray(pm.edge_coupler(wl=wl)["o1", "o2"])))
    np.testing.assert_allclose(loss_dB, tech.EDGE_COUPLER.loss_dB, atol=1e-9)
    fan = pm.io_fan(wl=tech.WL_CENTER_UM, dx_um=100.0, dy_um=50.0, lead_um=1000.0)["o1", "o2"]
    length_um = tech.fan_path_um(100.0, 50.0, 1000.0)
    assert length_um > 1100.0
    assert -20 * np.log10(abs(fan)) == pytest.approx(tech.WAVEGUIDE.loss_dB_cm * length_um * 1e-4)


@pytest.mark.parametrize("kind", ["grating", "edge"])
def test_flat_sax_circuit_with_io_couplers(kind):
    """The I/O netlist with ideal models is the program's matrix; with PDK models each
    path loses two couplers' worth (at the grating's peak) and the fans' propagation."""
    from optinc_compiler.netlist import IoSpec

    layer = compile_layer("L", haar(3, 4), CompileOptions(method="unitary"))
    netlist = layer_netlist(layer, io=IoSpec(kind, lead_in_um=100.0, lead_out_um=300.0))
    circuit, _ = sax.circuit(netlist.to_dict(), models=pm.models(ideal=True))
    s = circuit()
    got = np.array([[s[f"in{j}", f"out{i}"] for j in range(3)] for i in range(3)])
    np.testing.assert_allclose(got, layer.matrix(), atol=1e-9)
    lossy, _ = sax.circuit(netlist.to_dict(), models=pm.models(ideal=False))
    grid, _ = sax.circuit(layer_netlist(layer).to_dict(), models=pm.models(ideal=False))
    s_io, s_grid = lossy(wl=tech.WL_CENTER_UM), grid(wl=tech.WL_CENTER_UM)
    ratio_dB = -20 * np.log10(abs(complex(s_io["in0", "out0"])) / abs(complex(s_grid["in0", "out0"])))
    coupler_dB = tech.GRATING.peak_loss_dB if kind == "grating" else tech.EDGE_COUPLER.loss_dB
    assert 2 * coupler_dB < ratio_dB < 2 * coupler_dB + 0.2  # fans: ~0.1 dB/500 um


# --- parts for designers' own circuits: couplers and pads -------------------------------


@pytest.mark.parametrize("name", ["directional_coupler", "mmi2x2"])
@pytest.mark.parametrize("ideal", [True, False])
def test_two_by_two_parts_split_evenly_at_the_design_wavelength(name, ideal):
    s = pm.models(ideal=ideal)[name](wl=tech.WL_CENTER_UM)
    p = tech.PORTS
    m = np.array(
        [
            [complex(s[p.upper_in, p.upper_out]), complex(s[p.lower_in, p.upper_out])],
            [complex(s[p.upper_in, p.lower_out]), complex(s[p.lower_in, p.lower_out])],
        ]
    )
    if ideal:
        np.testing.assert_allclose(m, np.array([[1, 1j], [1j, 1]]) / np.sqrt(2), atol=1e-12)
    else:
        powers = np.abs(m) ** 2
        assert powers[0, 0] == pytest.approx(powers[0, 1], rel=1e-9)  # 50:50 at the centre
        assert powers[:, 0].sum() < 1.0  # excess loss
        assert np.angle(m[0, 1] / m[0, 0]) == pytest.approx(np.pi / 2)


def test_mmi_is_broader_band_than_the_directional_coupler():
    p = tech.PORTS

    def imbalance(name, wl):
        s = pm.models()[name](wl=wl)
        return abs(
            abs(complex(s[p.upper_in, p.upper_out])) ** 2 - abs(complex(s[p.lower_in, p.upper_out])) ** 2
        )

    assert imbalance("mmi2x2", 1.53) < imbalance("directional_coupler", 1.53)


def test_pad_models_declare_the_cells_electrical_ports():
    assert set(pm.models()["bond_pad"]()) == {("e1", "e1")}
    assert {a for a, _ in pm.models()["pad_row"](n_pads=3)} == {"e1", "e2", "e3"}


# --- loss-matched bypasses (pdk.tech.LossMatch) ----------------------------------------


def _power(s, a: str, b: str) -> float:
    return abs(complex(s[a, b])) ** 2


def _cell_transmission(cell: str, theta: float, phi: float) -> float:
    """Power the replaced cell passes on from one input at 1.55 um: an MZI's over both
    outputs (from either input), an attenuator's fully open, a crossing's through path
    (its crosstalk goes to the other row), a phase shifter's."""
    p, wl = tech.PORTS, tech.WL_CENTER_UM
    if cell == "mzi":
        s = pm.mzi(wl=wl, theta_rad=theta, phi_rad=phi)
        upper = _power(s, p.upper_in, p.upper_out) + _power(s, p.upper_in, p.lower_out)
        lower = _power(s, p.lower_in, p.upper_out) + _power(s, p.lower_in, p.lower_out)
        assert upper == pytest.approx(lower, abs=1e-14)
        return upper
    if cell == "attenuator":
        return _power(pm.attenuator(wl=wl, amplitude=1.0, phase_rad=phi), "o1", "o2")
    if cell == "crossing":
        return _power(pm.crossing(wl=wl), p.upper_in, p.lower_out)
    return _power(pm.phase_shifter(wl=wl, phase_rad=phi), "o1", "o2")


@pytest.mark.parametrize("cell", ["mzi", "attenuator", "crossing", "phase_shifter"])
@pytest.mark.parametrize(("theta", "phi"), [(0.0, 0.0), (0.7, 2.1), (np.pi, -1.3), (2.9, 5.5)])
def test_every_bypass_passes_what_its_cell_passes(cell, theta, phi):
    """|S21|^2 of a bypass = the replaced cell's total transmission (PDK models, 1.55 um),
    so every row of a column loses the same."""
    bypass = pm.models()[f"{cell}_bypass"](wl=tech.WL_CENTER_UM)
    assert _power(bypass, "o1", "o2") == pytest.approx(_cell_transmission(cell, theta, phi), abs=1e-12, rel=0)


def test_bypass_losses_follow_the_cells_they_stand_in_for():
    """The matched loss beyond the waveguide's: the MZI's and attenuator's two couplers,
    the crossing's excess loss; derived, so a new coupler loss re-balances."""
    assert tech.bypass_loss("mzi") == tech.bypass_loss("attenuator") == 2 * tech.COUPLER.excess_loss_dB
    assert tech.bypass_loss("crossing") == tech.CROSSING.excess_loss_dB
    assert tech.bypass_loss("phase_shifter") == 0.0
    for cell, length in (("mzi", tech.mzi_path_um()), ("crossing", tech.crossing_arm().length_um)):
        s = pm.models()[f"{cell}_bypass"](wl=np.array([1.50, 1.55, 1.60]))
        extra_dB = (
            -20 * np.log10(np.abs(np.asarray(s["o1", "o2"]))) - tech.WAVEGUIDE.loss_dB_cm * length * 1e-4
        )
        np.testing.assert_allclose(extra_dB, tech.bypass_loss(cell), atol=1e-12)  # flat in wavelength


def test_a_bypass_keeps_its_match_under_an_extra_loss_and_ideal_bypasses_are_lossless():
    """A Monte Carlo sample's extra loss (setting ``loss_dB``) adds to the matched loss
    instead of replacing it; the ideal models stay lossless."""
    model = pm.models()["mzi_bypass"]
    nominal, extra = (abs(complex(model(loss_dB=x)["o1", "o2"])) for x in (0.0, 0.3))
    assert 20 * np.log10(nominal / extra) == pytest.approx(0.3)
    assert abs(complex(pm.models(ideal=True)["mzi_bypass"]()["o1", "o2"])) == 1.0


def test_lossless_bypasses_are_one_switch(monkeypatch):
    monkeypatch.setattr(tech, "LOSS_MATCH", tech.LossMatch(balanced=False))
    assert tech.bypass_loss("mzi") == tech.bypass_loss("crossing") == 0.0
    s = pm.models()["mzi_bypass"]()
    assert abs(complex(s["o1", "o2"])) == pytest.approx(
        10 ** (-tech.WAVEGUIDE.loss_dB_cm * tech.mzi_path_um() * 1e-4 / 20), abs=1e-15
    )
    assert tech.LOSS_MATCH.offset_um(tech.bypass_loss("mzi")) == 0.0


def test_loss_match_offsets_are_the_grid_points_closest_to_the_target(monkeypatch):
    """0.1 dB in two joints: 28 nm at w = 0.26 um, within 1 % of the target; a higher
    coupler loss gives larger offsets; offsets that would narrow the strip's overlap
    below the WG minimum width are refused (the DRC's 2 nm tolerance would pass 102 nm)."""
    m = tech.LOSS_MATCH
    assert m.offset_um(0.1) == 0.028
    assert m.drawn_loss(0.1) == pytest.approx(0.1, rel=0.01)
    for target in (0.01, 0.1, 0.2, 0.37):
        d = m.offset_um(target)
        assert round(d, 3) == d
        for other in (d - 0.001, d + 0.001):
            assert abs(m.drawn_loss(target) - target) <= abs(m.joints * m.joint_loss(other) - target)
    monkeypatch.setattr(tech, "COUPLER", tech.Coupler(excess_loss_dB=0.08))
    assert tech.bypass_loss("mzi") == pytest.approx(0.16)
    assert m.offset_um(tech.bypass_loss("mzi")) > 0.028
    assert m.joint_loss(0.1) < 1.0  # the largest allowed offset (0.5 - 0.4 um)
    with pytest.raises(ValueError, match="more joints"):
        m.offset_um(2 * m.joint_loss(0.102))
