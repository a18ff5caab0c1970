"""Error-corrected compilation for imperfect splitters (Bandyopadhyay et al. 2021 local
correction + a JAX/L-BFGS fit of the whole mesh), and the CLI around it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import haar

pytest.importorskip("jax")

from optinc_compiler import correction as corr
from optinc_compiler import program as prog
from optinc_compiler import simulate as sim
from optinc_compiler.cli import main
from optinc_compiler.compiler import CompileOptions, compile_layer, compile_weights
from optinc_compiler.errors import InputError
from optinc_compiler.io import NamedMatrix
from optinc_compiler.netlist import layer_netlist
from optinc_compiler.program import PhaseProgram


def _chip(stage, sigma: float, seed: int) -> dict[str, tuple[float, float]]:
    rng = np.random.default_rng(seed)
    return {i: tuple(np.clip(0.5 + sigma * rng.standard_normal(2), 0.0, 1.0)) for i in stage.mzi_ids}


def test_the_jax_chip_model_equals_the_verify_path_with_the_same_splitters():
    layer = compile_layer("L", haar(5, 1), CompileOptions())
    stage = layer.stages[0]
    splitters = _chip(stage, 0.05, 2)
    d1, d2 = corr.splitter_errors(stage, splitters)
    netlist = layer_netlist(layer)
    s = sim.sample_smatrices(
        netlist, sim.splitter_errors(netlist, splitters), n_in=5, n_out=5, model_set="ideal"
    )
    np.testing.assert_allclose(corr.chip_matrix(stage.mesh, d1, d2), s[0, 0], atol=1e-12)
    zero = np.zeros(stage.mesh.n_mzis)
    np.testing.assert_allclose(corr.chip_matrix(stage.mesh, zero, zero), stage.mesh.matrix(), atol=1e-12)


def test_local_correction_restores_each_mzis_splitting():
    rng = np.random.default_rng(0)
    theta = rng.uniform(0.3, np.pi - 0.3, 50)
    d1, d2 = 0.03 * rng.standard_normal(50), 0.03 * rng.standard_normal(50)
    fixed = corr.local_theta(theta, d1, d2)
    k1, k2, t1, t2 = np.sqrt(0.5 + d1), np.sqrt(0.5 + d2), np.sqrt(0.5 - d1), np.sqrt(0.5 - d2)
    cross = np.abs(t2 * k1 * np.exp(1j * fixed) + k2 * t1) ** 2
    np.testing.assert_allclose(cross, np.cos(theta / 2) ** 2, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_correction_lowers_the_chip_error_at_least_tenfold(seed):
    layer = compile_layer("L", haar(6, 10 + seed), CompileOptions())
    stage = layer.stages[0]
    corrected, report = corr.correct_stage(stage, _chip(stage, 0.02, seed))
    assert report.error_uncorrected > 0.01
    assert report.error_corrected < report.error_uncorrected / 10
    d1, d2 = corr.splitter_errors(corrected, _chip(stage, 0.02, seed))
    err = np.linalg.norm(corr.chip_matrix(corrected.mesh, d1, d2) - stage.mesh.matrix()) / np.sqrt(6)
    assert err == pytest.approx(report.error_corrected, rel=1e-6)
    m = corrected.mesh
    assert np.all((m.theta_rad >= 0) & (m.theta_rad <= np.pi))
    assert np.all((m.phi_rad >= 0) & (m.phi_rad < 2 * np.pi))


def test_unknown_mzis_in_the_calibration_are_rejected():
    program = PhaseProgram(layers=(compile_layer("L", haar(3, 1), CompileOptions()),))
    with pytest.raises(
        InputError,
        match=r"^calibration 'splitters' names 1 MZI id\(s\) that the program does not have: 'X_c0_m0'$",
    ):
        corr.correct_program(program, {"X_c0_m0": (0.5, 0.5)})


def test_compile_error_correct_and_verify_on_the_calibrated_chip(tmp_path):
    w = haar(4, 5)
    np.save(tmp_path / "u.npy", w)
    stage = compile_weights([NamedMatrix("u", w)], CompileOptions()).layers[0].stages[0]
    splitters = {k: list(v) for k, v in _chip(stage, 0.02, 7).items()}
    cal = {"format": "optinc-calibration", "version": 1, "name": "chip 7", "splitters": splitters}
    (tmp_path / "cal.json").write_text(json.dumps(cal))
    runner = CliRunner()
    args = ["compile", str(tmp_path / "u.npy")]
    plain = runner.invoke(main, [*args, "-o", str(tmp_path / "p.json")])
    fixed = runner.invoke(
        main,
        [
            *args,
            "--calibration",
            str(tmp_path / "cal.json"),
            "--error-correct",
            "-o",
            str(tmp_path / "c.json"),
        ],
    )
    assert plain.exit_code == 0
    assert fixed.exit_code == 0, fixed.output
    assert "error-corrected u/U for 'chip 7': matrix error on the chip" in fixed.output
    assert prog.load(tmp_path / "c.json").calibration == "chip 7"
    assert json.loads((tmp_path / "c.json").read_text())["calibration"] == "chip 7"
    verify = [
        "verify",
        "--models",
        "ideal",
        "--calibration",
        str(tmp_path / "cal.json"),
        "--min-fidelity",
        "0.9999",
    ]
    against = ["--against", str(tmp_path / "u.npy")]
    assert runner.invoke(main, [*verify, str(tmp_path / "c.json"), *against]).exit_code == 0
    assert runner.invoke(main, [*verify, str(tmp_path / "p.json"), *against]).exit_code == 3
    no_target = runner.invoke(main, [*verify, str(tmp_path / "c.json")])
    assert no_target.exit_code == 1
    assert (
        "error-corrected for calibration 'chip 7', so its own matrices are not the targets"
        in no_target.output
    )
    check = runner.invoke(main, ["check", str(tmp_path / "c.json"), "--against", str(tmp_path / "u.npy")])
    assert "the phases are error-corrected for calibration 'chip 7'" in check.output


def test_compile_error_correct_needs_a_calibration(tmp_path):
    np.save(tmp_path / "u.npy", haar(3, 1))
    result = CliRunner().invoke(main, ["compile", str(tmp_path / "u.npy"), "--error-correct"])
    assert result.exit_code == 2
    assert "--error-correct needs --calibration (the chip's measured splitters)" in result.output
