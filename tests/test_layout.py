"""PDK cells and the layout of compiled programs: geometry, ports, connectivity
against the netlist (layout versus schematic), deterministic GDS, CLI."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import haar

gf = pytest.importorskip("gdsfactory")
kdb = pytest.importorskip("klayout.db")

from optinc_compiler import program as prog  # noqa: E402
from optinc_compiler.cli import main  # noqa: E402
from optinc_compiler.compiler import CompileOptions, compile_layer, compile_weights  # noqa: E402
from optinc_compiler.io import NamedMatrix  # noqa: E402
from optinc_compiler.layout import activate_pdk, layer_component, write_layout  # noqa: E402
from optinc_compiler.netlist import IoSpec, layer_netlist  # noqa: E402
from pdk import cells, tech  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _pdk():
    activate_pdk()


def _region(component, layer_name: str):
    """Merged polygons of one layer, flattened, in um units via the layout's dbu."""
    layout = component.kcl.layout
    index = layout.layer(*tech.LAYERS[layer_name])
    return kdb.Region(component.kdb_cell.begin_shapes_rec(index)).merged(), layout.dbu


@pytest.mark.parametrize("name", sorted(cells.GRID_CELLS))
def test_grid_cells_have_manhattan_ports_on_polygon_edges(name):
    c = cells.GRID_CELLS[name]()
    wg, dbu = _region(c, "WG")
    metal, _ = _region(c, "M2")
    for port in c.ports:
        assert port.orientation in (0.0, 90.0, 180.0, 270.0)
        x, y = port.center
        region = wg if port.port_type == "optical" else metal
        probe = kdb.Box(round(x / dbu) - 1, round(y / dbu) - 1, round(x / dbu) + 1, round(y / dbu) + 1)
        on_edge = not region.edges().interacting(kdb.Region(probe)).is_empty()
        assert on_edge, f"{name}.{port.name} at {x, y} is not on a {port.port_type} polygon edge"


@pytest.mark.parametrize(
    ("cell", "rows", "path_um"),
    [
        ("mzi", 2, tech.mzi_path_um()),
        ("mzi_bypass", 1, tech.mzi_path_um()),
        ("attenuator", 2, tech.attenuator_path_um()),
        ("attenuator_bypass", 1, tech.attenuator_path_um()),
        ("phase_shifter", 1, tech.phase_shifter_path_um()),
        ("phase_shifter_bypass", 1, tech.phase_shifter_path_um()),
    ],
)
def test_drawn_waveguide_length_is_the_modelled_path_length(cell, rows, path_um):
    """Area / width of the drawn core = path length: the bypasses match their cells,
    so every row of a column has the same propagation phase."""
    wg, dbu = _region(cells.GRID_CELLS[cell](), "WG")
    drawn_um = wg.area() * dbu * dbu / tech.WAVEGUIDE.width_um / rows
    assert drawn_um == pytest.approx(path_um, rel=2e-4)


@pytest.mark.parametrize(
    ("shape", "method", "topology"),
    [
        ((4, 4), "unitary", "clements"),
        ((3, 3), "unitary", "reck"),
        ((5, 3), "svd", "clements"),
        ((4, 4), "ud", "reck"),
    ],
)
def test_layout_connectivity_equals_the_netlist(shape, method, topology):
    rng = np.random.default_rng(0)
    w = haar(shape[0], 1) if method == "unitary" else rng.normal(size=shape)
    layer = compile_layer("fc1", w, CompileOptions(method=method, topology=topology))
    schematic = layer_netlist(layer)
    extracted = layer_component(schematic).get_netlist(on_dangling_port="ignore")
    assert set(extracted["instances"]) == {i.name for i in schematic.instances}
    for inst in schematic.instances:
        assert extracted["instances"][inst.name]["component"] == inst.component
    nets = {frozenset((n["p1"], n["p2"])) for n in extracted["nets"]}
    assert nets == {frozenset(c) for c in schematic.connections}
    assert extracted["ports"] == dict(schematic.ports)


def test_same_program_gives_identical_gds_bytes_across_processes(tmp_path):
    w = [NamedMatrix("fc1", np.random.default_rng(3).normal(size=(4, 3)))]
    program_path = prog.save(compile_weights(w, CompileOptions()), tmp_path / "p.json")
    outputs = []
    for i in range(2):
        out = tmp_path / f"chip{i}.gds"
        cmd = [sys.executable, "-m", "optinc_compiler.cli", "-q", "layout", str(program_path), "-o", str(out)]
        subprocess.run(cmd, check=True)
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


def test_write_layout_gds_png_and_oasis(tmp_path):
    program = compile_weights([NamedMatrix("u", haar(3, 0))], CompileOptions())
    result = write_layout(program, tmp_path / "chip.gds", png_path=tmp_path / "chip.png")
    with_io = layer_netlist(program.layers[0], io=IoSpec("grating"))
    assert result.n_instances == len(with_io.instances)
    assert (tmp_path / "chip.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    layout = kdb.Layout()
    layout.read(str(tmp_path / "chip.gds"))
    assert {c.name for c in layout.top_cells()} == {"optinc_chip"}
    write_layout(program, tmp_path / "chip.oas")
    assert (tmp_path / "chip.oas").stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chip.gds", "chip.oas", "chip.png"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["-o", "{tmp}/x.gds", "--layer", "nope"], 1, "no layer 'nope' in the program; layers: 'fc1'"),
        (["-o", "{tmp}/x.gds", "--pdk", "foo"], 1, "unknown PDK 'foo'; allowed: optinc"),
        (["-o", "{tmp}/missing/x.gds"], 1, "does not exist; create it first"),
        (["-o", "{tmp}/x.txt"], 1, "must end in .gds or .oas"),
        ([], 2, "Missing option '-o'"),
    ],
)
def test_layout_cli_errors(tmp_path, args, code, message):
    program_path = prog.save(
        compile_weights([NamedMatrix("fc1", np.eye(2))], CompileOptions()), tmp_path / "p.json"
    )
    result = CliRunner().invoke(main, ["layout", str(program_path), *[a.format(tmp=tmp_path) for a in args]])
    assert result.exit_code == code
    assert message in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json"]


def test_wrong_version_program_is_refused_before_layout(tmp_path):
    (tmp_path / "p.json").write_text('{"format": "optinc-phase-program", "version": 2}')
    result = CliRunner().invoke(main, ["layout", str(tmp_path / "p.json"), "-o", str(tmp_path / "x.gds")])
    assert result.exit_code == 1
    assert "this optinc reads version 1" in result.output
    assert not (tmp_path / "x.gds").exists()
