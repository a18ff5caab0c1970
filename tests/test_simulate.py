"""Simulation: the composed fast path equals the flat sax.circuit; fidelity; optinc verify."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import haar

pytest.importorskip("sax")

from optinc_compiler import program as prog
from optinc_compiler import simulate as sim
from optinc_compiler.cli import main
from optinc_compiler.compiler import CompileOptions, compile_layer, compile_weights
from optinc_compiler.io import NamedMatrix
from optinc_compiler.netlist import layer_netlist


@pytest.mark.parametrize("model_set", ["ideal", "pdk"])
@pytest.mark.parametrize(
    ("shape", "method", "topology"),
    [
        ((2, 2), "unitary", "clements"),
        ((3, 3), "unitary", "reck"),
        ((4, 4), "unitary", "clements"),
        ((3, 2), "svd", "clements"),
        ((2, 3), "ud", "reck"),
    ],
)
def test_composed_path_equals_flat_sax_circuit(model_set, shape, method, topology):
    rng = np.random.default_rng(4)
    w = haar(shape[0], 3) if method == "unitary" else rng.normal(size=shape)
    layer = compile_layer("L", w, CompileOptions(method=method, topology=topology))
    fast = sim.layer_smatrix(layer, wl_um=1.56, model_set=model_set)[0]
    flat = sim.flat_smatrix(
        layer_netlist(layer), n_in=shape[1], n_out=shape[0], wl_um=1.56, model_set=model_set
    )
    np.testing.assert_allclose(fast, flat, atol=1e-9)


@pytest.mark.parametrize(
    ("shape", "method"), [((4, 4), "svd"), ((3, 5), "svd"), ((8, 3), "svd"), ((3, 6), "ud")]
)
def test_ideal_models_reproduce_svd_and_non_square_layers(shape, method):
    layer = compile_layer("L", np.random.default_rng(9).normal(size=shape), CompileOptions(method=method))
    s = sim.layer_smatrix(layer, model_set="ideal")[0]
    np.testing.assert_allclose(layer.scale * s, layer.matrix(), atol=1e-9)


def test_composed_path_equals_flat_sax_circuit_at_n8():
    layer = compile_layer("L", haar(8, 2), CompileOptions())
    fast = sim.layer_smatrix(layer, wl_um=1.57)[0]
    flat = sim.flat_smatrix(layer_netlist(layer), n_in=8, n_out=8, wl_um=1.57)
    np.testing.assert_allclose(fast, flat, atol=1e-9)


@pytest.mark.parametrize("topology", ["clements", "reck"])
@pytest.mark.parametrize("n", [2, 3, 4, 8])
def test_ideal_models_reproduce_the_program(topology, n):
    layer = compile_layer("L", haar(n, n), CompileOptions(topology=topology))
    s = sim.layer_smatrix(layer, model_set="ideal")[0]
    np.testing.assert_allclose(layer.scale * s, layer.matrix(), atol=1e-9)
    assert sim.fidelity(s, layer.matrix(), scale=layer.scale).fidelity == pytest.approx(1.0, abs=1e-12)


def test_wavelength_sweep_is_vectorised_and_best_at_the_design_wavelength():
    layer = compile_layer("L", haar(6, 1), CompileOptions())
    wl = np.linspace(1.50, 1.60, 11)
    s = sim.layer_smatrix(layer, wl_um=wl)
    assert s.shape == (11, 6, 6)
    fids = [sim.fidelity(s[k], layer.matrix(), scale=layer.scale).fidelity for k in range(11)]
    assert int(np.argmax(fids)) == 5
    assert fids[5] > 0.999
    assert fids[0] < fids[5]


def test_fidelity_removes_a_global_complex_factor():
    w = haar(4, 2)
    f = sim.fidelity(0.5j * w, w, scale=1.0)
    assert f.fidelity == pytest.approx(1.0)
    assert f.max_abs_error < 1e-12
    assert f.insertion_loss_dB == pytest.approx(-20 * np.log10(0.5))


def test_verify_cli(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "m.npz", fc1=rng.normal(size=(4, 4)))
    program = compile_weights([NamedMatrix("fc1", np.load(tmp_path / "m.npz")["fc1"])], CompileOptions())
    path = prog.save(program, tmp_path / "p.json")
    ok = CliRunner().invoke(
        main, ["verify", str(path), "--against", str(tmp_path / "m.npz"), "--models", "ideal"]
    )
    assert ok.exit_code == 0, ok.output
    assert "fc1    ideal   1.5500  1.000000" in ok.output
    off = CliRunner().invoke(main, ["verify", str(path), "--wl", "1.60"])
    assert off.exit_code == 3
    assert off.output.strip().endswith("Error: fidelity below 0.999 in layer(s) fc1")
    bad = CliRunner().invoke(main, ["verify", str(path), "--layer", "nope"])
    assert bad.exit_code == 1
    assert "no layer 'nope' in the program" in bad.output
    assert CliRunner().invoke(main, ["verify", str(path), "--min-fidelity", "nan"]).exit_code == 2


# --- the feed-forward plan on any netlist, Monte Carlo ----------------------------------

from dataclasses import replace  # noqa: E402

from conftest import B, _p  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from optinc_compiler.errors import InputError  # noqa: E402


def _swap_rows(netlist, left_out: tuple[str, str], right_in: tuple[str, str]):
    """The netlist with the two connections into ``right_in`` crossed (a drawing error)."""
    connections = []
    for a, b in netlist.connections:
        if b == right_in[0]:
            b = right_in[1]
        elif b == right_in[1]:
            b = right_in[0]
        connections.append((a, b))
    return replace(netlist, connections=tuple(connections))


@pytest.mark.parametrize("model_set", ["ideal", "pdk"])
@pytest.mark.parametrize(("shape", "method"), [((3, 3), "unitary"), ((3, 2), "svd"), ((2, 3), "ud")])
def test_monte_carlo_samples_equal_the_flat_circuit_of_the_perturbed_netlist(model_set, shape, method):
    rng = np.random.default_rng(7)
    w = haar(3, 5) if method == "unitary" else rng.normal(size=shape)
    netlist = layer_netlist(compile_layer("L", w, CompileOptions(method=method)))
    var = sim.Variability(coupler_sigma=0.05, phase_sigma_rad=0.1, loss_sigma_dB=0.2)
    errors = sim.sample_errors(netlist.instances, var, 3, np.random.default_rng(1))
    batch = sim.sample_smatrices(
        netlist, errors, n_in=shape[1], n_out=shape[0], wl_um=1.54, model_set=model_set
    )
    assert batch.shape == (3, 1, *shape)
    for k in range(3):
        flat = sim.flat_smatrix(
            sim.perturbed_netlist(netlist, errors, k),
            n_in=shape[1],
            n_out=shape[0],
            wl_um=1.54,
            model_set=model_set,
        )
        np.testing.assert_allclose(batch[k, 0], flat, atol=1e-9)
    assert not np.allclose(batch[0, 0], batch[1, 0])


@settings(max_examples=25, deadline=None)
@given(
    theta=st.floats(0, np.pi),
    phi=st.floats(0, 2 * np.pi),
    d1=st.floats(-0.2, 0.2),
    d2=st.floats(-0.2, 0.2),
    loss_dB=st.floats(0, 3),
)
def test_perturbed_mzi_equals_the_transfer_matrix_product(theta, phi, d1, d2, loss_dB):
    """Ideal model with coupler errors = B2 P(theta) B1 P(phi), written out here."""
    from optinc_compiler.netlist import Instance, Netlist

    mzi = Instance("m", "mzi", 0, 0, (("phi_rad", phi), ("theta_rad", theta)))
    netlist = Netlist(
        "X", "X", 2, 1, (mzi,), (), (("in0", "m,o2"), ("in1", "m,o1"), ("out0", "m,o3"), ("out1", "m,o4"))
    )
    errors = {n: np.zeros((1, 1)) for n, _ in sim._ERROR_DRAWS}
    errors.update(dkappa2_1=np.array([[d1]]), dkappa2_2=np.array([[d2]]), loss_dB=np.array([[loss_dB]]))
    s = sim.sample_smatrices(netlist, errors, n_in=2, n_out=2, model_set="ideal")[0, 0]

    def coupler(d):
        k = np.sqrt(0.5 + d)
        return np.array([[np.sqrt(1 - k**2), 1j * k], [1j * k, np.sqrt(1 - k**2)]])

    expected = 10 ** (-loss_dB / 20) * coupler(d2) @ _p(theta) @ coupler(d1) @ _p(phi)
    np.testing.assert_allclose(s, expected, atol=1e-12)
    if d1 == d2 == loss_dB == 0:
        np.testing.assert_allclose(s, B @ _p(theta) @ B @ _p(phi), atol=1e-12)


def test_monte_carlo_is_seeded_and_longer_runs_extend_shorter_ones():
    layer = compile_layer("L", haar(4, 3), CompileOptions())
    netlist, w = layer_netlist(layer), layer.matrix()
    var = sim.Variability(coupler_sigma=0.02, phase_sigma_rad=0.01)
    kw = {"scale": layer.scale, "variability": var, "model_set": "ideal"}
    short = sim.monte_carlo(netlist, w, n_samples=10, seed=1, **kw)
    long = sim.monte_carlo(netlist, w, n_samples=sim.MC_CHUNK + 12, seed=1, **kw)
    assert short.fidelity == long.fidelity[:10]
    assert len(long.fidelity) == sim.MC_CHUNK + 12
    assert sim.monte_carlo(netlist, w, n_samples=10, seed=2, **kw).fidelity != short.fidelity
    assert max(long.fidelity) < 1.0
    exact = sim.monte_carlo(netlist, w, n_samples=5, seed=1, **{**kw, "variability": sim.Variability()})
    np.testing.assert_allclose(exact.fidelity, 1.0, atol=1e-12)
    assert exact.yield_fraction == 1.0


def test_larger_fabrication_errors_give_lower_fidelity_and_yield():
    layer = compile_layer("L", haar(6, 4), CompileOptions())
    netlist, w = layer_netlist(layer), layer.matrix()

    def run(sigma):
        return sim.monte_carlo(
            netlist,
            w,
            scale=layer.scale,
            n_samples=64,
            seed=0,
            variability=sim.Variability(coupler_sigma=sigma),
            model_set="ideal",
            min_fidelity=0.99,
        )

    small, large = run(0.005), run(0.05)
    assert np.median(large.fidelity) < np.median(small.fidelity) < 1.0
    assert small.yield_fraction == 1.0
    assert large.yield_fraction < 0.5


def test_variability_and_sample_count_are_checked():
    with pytest.raises(InputError, match=r"^coupler_sigma is -0.1; allowed: a finite number >= 0$"):
        sim.Variability(coupler_sigma=-0.1)
    with pytest.raises(InputError, match=r"^phase_sigma_rad is nan; allowed"):
        sim.Variability(phase_sigma_rad=float("nan"))
    layer = compile_layer("L", haar(2, 1), CompileOptions())
    with pytest.raises(InputError, match="at least 1 sample, got 0"):
        sim.monte_carlo(
            layer_netlist(layer),
            layer.matrix(),
            scale=1.0,
            n_samples=0,
            variability=sim.Variability(),
            seed=0,
        )


def test_a_swapped_connection_simulates_as_wired_and_loses_fidelity():
    layer = compile_layer("L", haar(4, 8), CompileOptions())
    netlist = layer_netlist(layer)
    right = next(i for i in netlist.instances if i.column == 1 and i.component == "mzi")
    broken = _swap_rows(netlist, (), (f"{right.name},o2", f"{right.name},o1"))
    fast = sim.netlist_smatrix(broken, n_in=4, n_out=4)[0]
    np.testing.assert_allclose(fast, sim.flat_smatrix(broken, n_in=4, n_out=4), atol=1e-9)
    assert sim.fidelity(fast, layer.matrix(), scale=layer.scale).fidelity < 0.99


def test_the_plan_rejects_netlists_that_are_not_feed_forward_chains():
    layer = compile_layer("L", haar(2, 1), CompileOptions())
    netlist = layer_netlist(layer)
    (mzi,) = [i for i in netlist.instances if i.component == "mzi"]
    ps = [i for i in netlist.instances if i.component == "phase_shifter"]
    loop = replace(netlist, connections=(*netlist.connections, (f"{ps[0].name},o2", f"{mzi.name},o1")))
    with pytest.raises(
        InputError, match=rf"^netlist 'L' is not feed-forward: a loop runs through {mzi.name}$"
    ):
        sim.netlist_smatrix(loop, n_in=2, n_out=2)
    twice = replace(netlist, connections=(*netlist.connections, (f"{mzi.name},o3", f"{ps[1].name},o1")))
    with pytest.raises(InputError, match=rf"^netlist 'L': port {ps[1].name},o1 is connected twice$"):
        sim.netlist_smatrix(twice, n_in=2, n_out=2)
    outs = replace(netlist, connections=((f"{mzi.name},o3", f"{mzi.name},o4"),))
    with pytest.raises(
        InputError, match=rf"^netlist 'L': connection {mzi.name},o3 - {mzi.name},o4 joins two outputs$"
    ):
        sim.netlist_smatrix(outs, n_in=2, n_out=2)
    unknown = replace(netlist, connections=((f"{mzi.name},o9", f"{ps[0].name},o1"),))
    with pytest.raises(InputError, match=rf"uses an unknown port {mzi.name},o9$"):
        sim.netlist_smatrix(unknown, n_in=2, n_out=2)
    cycle = replace(
        netlist,
        connections=((f"{mzi.name},o3", f"{ps[0].name},o1"), (f"{ps[0].name},o2", f"{mzi.name},o2")),
        ports=(("in0", f"{mzi.name},o1"), ("out0", f"{mzi.name},o4")),
    )
    with pytest.raises(InputError, match="is not feed-forward: a loop runs through"):
        sim.netlist_smatrix(cycle, n_in=1, n_out=1)
    with pytest.raises(InputError, match=r"port in1 is missing, not a cell input"):
        sim.netlist_smatrix(cycle, n_in=2, n_out=1)
    with pytest.raises(InputError, match=r"^no model for cell 'mystery' \(instance"):
        sim.netlist_smatrix(
            replace(
                netlist,
                instances=tuple(
                    replace(i, component="mystery") if i is ps[0] else i for i in netlist.instances
                ),
            ),
            n_in=2,
            n_out=2,
        )


def test_sweep_and_fidelity_report_per_input_loss():
    layer = compile_layer("L", haar(3, 2), CompileOptions())
    sw = sim.sweep(layer_netlist(layer), layer.matrix(), scale=layer.scale, wl_um=[1.53, 1.55, 1.57])
    assert sw.wl_um == (1.53, 1.55, 1.57)
    assert len(sw.fidelity) == len(sw.insertion_loss_dB) == len(sw.max_abs_error) == 3
    assert sw.fidelity[1] == max(sw.fidelity)
    f = sim.fidelity(0.5 * np.eye(3), np.diag([1.0, 1.0, 0.0]), scale=1.0)
    assert f.path_loss_dB == pytest.approx((6.0206, 6.0206, 0.0), abs=1e-4)


@pytest.fixture
def _models_rebuilt():
    """The jitted models are cached per process: rebuild them around a test that
    changes the PDK's technology data."""
    sim._jitted_models.cache_clear()
    yield
    sim._jitted_models.cache_clear()


@pytest.mark.usefixtures("_models_rebuilt")
def test_loss_matched_bypasses_keep_a_large_svd_layer_undistorted(monkeypatch):
    """A 32x64 layer with a dominant rank-one part (as trained layers often have): with
    lossless bypasses the meshes' edge rows lose less than the rest and the PDK models
    realise a distorted matrix (fidelity < 0.999); with loss-matched bypasses
    (``pdk.tech.LossMatch``) every row of a column loses the same and it verifies."""
    from pdk import tech

    w = np.random.default_rng(0).normal(loc=1.0, size=(32, 64))
    layer = compile_layer("L", w, CompileOptions(method="svd"))
    netlist = layer_netlist(layer)

    def fidelity() -> float:
        s = sim.netlist_smatrix(netlist, n_in=64, n_out=32, wl_um=tech.WL_CENTER_UM, model_set="pdk")[0]
        return sim.fidelity(s, layer.matrix(), scale=layer.scale).fidelity

    assert fidelity() >= 0.9999
    monkeypatch.setattr(tech, "LOSS_MATCH", tech.LossMatch(balanced=False))
    sim._jitted_models.cache_clear()
    assert fidelity() < 0.999


@pytest.mark.parametrize("unit", [1e-300, 1.0, 1e300])
def test_fidelity_does_not_depend_on_the_unit_of_the_weights(unit):
    """Squares of weights near 1e308 overflow float64: the metric works on ratios."""
    rng = np.random.default_rng(4)
    w = rng.normal(size=(3, 3)) + 1j * rng.normal(size=(3, 3))
    s = 0.9 * w / np.linalg.norm(w, 2) + 1e-3 * rng.normal(size=(3, 3))
    scale = float(np.linalg.norm(w, 2))
    reference = sim.fidelity(s, w, scale=scale)
    scaled = sim.fidelity(s, unit * w, scale=unit * scale)
    assert scaled.fidelity == pytest.approx(reference.fidelity, rel=1e-12)
    assert scaled.max_abs_error == pytest.approx(unit * reference.max_abs_error, rel=1e-9)
    assert scaled.insertion_loss_dB == pytest.approx(reference.insertion_loss_dB, abs=1e-9)
    assert scaled.path_loss_dB == pytest.approx(reference.path_loss_dB, abs=1e-9)
    assert 0.9 < reference.fidelity < 1.0
