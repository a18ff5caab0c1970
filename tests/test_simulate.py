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
