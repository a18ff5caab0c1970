"""The build's phase maps (``phases_<layer>.png``) show every heater of a layer: the data
behind the figure, column by column (issue 12: a ud layer's attenuators were missing)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from optinc_compiler import program as prog
from optinc_compiler.build_report import phase_columns, plot_phase_maps
from optinc_compiler.calibration import program_heaters
from optinc_compiler.compiler import CompileOptions, compile_layer
from optinc_compiler.mzi import wrap_phase
from optinc_compiler.program import DiagonalStage, MeshStage, PhaseProgram
from pdk import tech

ROOT = Path(__file__).resolve().parents[1]


def _layer(method: str, shape: tuple[int, int] = (3, 4), **options):
    rng = np.random.default_rng(5)
    matrix = np.linalg.qr(rng.normal(size=(4, 4)))[0] if method == "unitary" else rng.normal(size=shape)
    return compile_layer("fc1", matrix, CompileOptions(method=method, **options))


def test_a_ud_layer_starts_with_its_attenuator_column():
    layer = _layer("ud")
    attenuators, mesh = layer.stages
    assert isinstance(attenuators, DiagonalStage)
    assert isinstance(mesh, MeshStage)
    columns = phase_columns(layer)
    assert [c.label for c in columns] == ["D att", "U c0", "U c1", "U c2", "U c3", "U out"]
    theta, phi = tech.attenuator_heater_phases(attenuators.amplitude, attenuators.phase_rad)
    np.testing.assert_allclose(columns[0].theta_rad, wrap_phase(theta), rtol=0, atol=1e-15)
    np.testing.assert_allclose(columns[0].phi_rad, wrap_phase(phi), rtol=0, atol=1e-15)
    m = mesh.mesh
    for k in range(m.depth):  # MZIs at their upper mode; the other rows hold no heater
        at = m.columns == k
        assert np.isnan(np.delete(columns[1 + k].theta_rad, m.modes[at])).all()
        np.testing.assert_array_equal(columns[1 + k].theta_rad[m.modes[at]], m.theta_rad[at])
        np.testing.assert_array_equal(columns[1 + k].phi_rad[m.modes[at]], m.phi_rad[at])
    assert np.isnan(columns[-1].theta_rad).all()  # a phase shifter has one heater
    np.testing.assert_array_equal(columns[-1].phi_rad, wrap_phase(m.output_phases_rad))


def test_an_svd_layer_shows_both_meshes_and_the_attenuators_between_them():
    columns = phase_columns(_layer("svd"))
    assert [c.label for c in columns] == [
        *(f"V c{k}" for k in range(4)),
        "V out",
        "S att",
        *(f"U c{k}" for k in range(3)),
        "U out",
    ]
    assert [c.grid_column for c in columns] == list(range(10))


@pytest.mark.parametrize(
    ("method", "options"),
    [("ud", {}), ("svd", {}), ("unitary", {}), ("ud-segmented", {"block_size": 2})],
)
def test_every_heater_of_the_heater_table_is_on_the_map_with_its_phase(method, options):
    """The map holds exactly the heaters ``optinc program`` drives, each at its grid
    column and row with the phase it is set to (wrapped into [0, 2 pi))."""
    layer = _layer(method, **options)
    columns = {c.grid_column: c for c in phase_columns(layer)}
    heaters = program_heaters(PhaseProgram(layers=(layer,)))
    for h in heaters:
        grid = columns[h.column].theta_rad if h.position == "theta" else columns[h.column].phi_rad
        assert grid[h.row] == pytest.approx(float(wrap_phase(h.phase_rad)), abs=1e-12), h.id
    on_map = sum(int(np.isfinite(c.theta_rad).sum() + np.isfinite(c.phi_rad).sum()) for c in columns.values())
    assert on_map == len(heaters)


def test_segmented_layers_show_their_fan_chains_and_tiles():
    labels = [c.label for c in phase_columns(_layer("ud-segmented", (3, 4), block_size=2))]
    assert labels == ["FO c0", "D att", "U c0", "U out", "FI c0"]


def test_the_committed_aggregator_chip_maps_its_attenuators(tmp_path):
    program = prog.load(ROOT / "designs" / "aggregator_n4_b4" / "program.json")
    onn = program.layer("onn1")
    columns = phase_columns(onn)
    assert [c.label for c in columns] == ["D att", *(f"U c{k}" for k in range(6)), "U out"]
    assert np.isfinite(columns[0].theta_rad).sum() == np.isfinite(columns[0].phi_rad).sum() == 6
    path = tmp_path / "phases_onn1.png"
    plot_phase_maps(onn, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
