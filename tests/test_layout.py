"""PDK cells and the layout of compiled programs: geometry, ports, connectivity
against the netlist (layout versus schematic), deterministic GDS, CLI."""

from __future__ import annotations

import itertools
import math
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


def assert_ports_on_polygon_edges(name: str, c) -> None:
    """Every port Manhattan and on an edge of its layer's polygons (optical: WG, else M2;
    a grating's fibre spot: over the teeth)."""
    wg, dbu = _region(c, "WG")
    metal, _ = _region(c, "M2")
    for port in c.ports:
        assert port.orientation in (0.0, 90.0, 180.0, 270.0)
        x, y = port.center
        probe = kdb.Region(
            kdb.Box(round(x / dbu) - 1, round(y / dbu) - 1, round(x / dbu) + 1, round(y / dbu) + 1)
        )
        if port.port_type == "vertical_te":
            assert not wg.interacting(probe).is_empty(), f"{name}.{port.name} is not over the grating"
            continue
        region = wg if port.port_type == "optical" else metal
        on_edge = not region.edges().interacting(probe).is_empty()
        assert on_edge, f"{name}.{port.name} at {x, y} is not on a {port.port_type} polygon edge"


@pytest.mark.parametrize("name", sorted(cells.GRID_CELLS))
def test_grid_cells_have_manhattan_ports_on_polygon_edges(name):
    assert_ports_on_polygon_edges(name, cells.GRID_CELLS[name]())


@pytest.mark.parametrize("name", sorted(n for n in cells.GRID_CELLS if n.endswith("_bypass")))
def test_a_bypass_is_one_waveguide_from_o1_to_o2(name):
    """The drawn core of a bypass is one polygon joining its two ports (parts placed
    end to end: an S-bend's far end is where the next part starts)."""
    c = cells.GRID_CELLS[name]()
    wg, dbu = _region(c, "WG")
    assert wg.count() == 1
    for port in c.ports:
        x, y = (round(v / dbu) for v in port.center)
        assert not wg.interacting(kdb.Region(kdb.Box(x - 1, y - 1, x + 1, y + 1))).is_empty()


@pytest.mark.parametrize(
    ("name", "cell"),
    [("mzi_bypass", "mzi"), ("attenuator_bypass", "attenuator"), ("crossing_bypass", "crossing")],
)
def test_a_bypass_draws_its_loss_match_as_offset_joints(name, cell, tmp_path):
    """Measured from the polygons: the strip steps sideways by the offset ``LossMatch``
    derives from the replaced cell's loss at ``joints`` places (a short vertical edge on
    each side of the core per joint), the Gaussian estimate of those joints is the
    model's loss to within the grid's rounding, and the cell stays DRC clean."""
    from optinc_compiler.drc import check_gds

    c = cells.GRID_CELLS[name]()
    wg, dbu = _region(c, "WG")
    jogs = [e for e in wg.edges().each() if e.dx() == 0 and 0 < abs(e.dy()) * dbu < 0.1]
    target, m = tech.bypass_loss(cell), tech.LOSS_MATCH
    assert len(jogs) == 2 * m.joints
    offsets = {round(abs(e.dy()) * dbu, 3) for e in jogs}
    assert offsets == {m.offset_um(target)} == {c.info["loss_match_offset_um"]}
    (d,) = offsets
    assert m.joints * m.joint_loss(d) == pytest.approx(target, rel=0.01)
    # the joints sit in one straight, well inside the cell, with the strip 0.5 um wide between them
    xs = sorted({e.p1.x * dbu for e in jogs})
    assert len(xs) == m.joints
    assert 1.0 < xs[0] < xs[-1] < c.dbbox().right - 1.0
    probe = kdb.Region(kdb.Box(round(xs[0] / dbu) + 10, -1000, round(xs[1] / dbu) - 10, 1000))
    band = wg & probe
    assert band.bbox().height() * dbu == pytest.approx(tech.WAVEGUIDE.width_um)
    assert band.bbox().bottom * dbu == pytest.approx(d - tech.WAVEGUIDE.width_um / 2)
    c.write_gds(tmp_path / "bypass.gds")
    assert check_gds(tmp_path / "bypass.gds", connectivity=False).clean


@pytest.mark.parametrize(
    ("cell", "rows", "path_um"),
    [
        ("mzi", 2, tech.mzi_path_um()),
        ("mzi_bypass", 1, tech.mzi_path_um()),
        ("attenuator", 2, tech.attenuator_path_um()),
        ("attenuator_bypass", 1, tech.attenuator_path_um()),
        ("phase_shifter", 1, tech.phase_shifter_path_um()),
        ("phase_shifter_bypass", 1, tech.phase_shifter_path_um()),
        ("crossing_bypass", 1, tech.crossing_arm().length_um),
    ],
)
def test_drawn_waveguide_length_is_the_modelled_path_length(cell, rows, path_um):
    """Area / width of the drawn core = path length: the bypasses match their cells,
    so every row of a column has the same propagation phase. (An attenuator's dump arm
    ends in a terminator: a taper, narrower than the strip, as long as the upper row's
    tail.)"""
    wg, dbu = _region(cells.GRID_CELLS[cell](), "WG")
    area_um2 = wg.area() * dbu * dbu
    if cell == "attenuator":
        t, w = tech.TERMINATOR, tech.WAVEGUIDE.width_um
        area_um2 += t.length_um * (w - (w + t.tip_width_um) / 2)  # as if a strip
    assert area_um2 / tech.WAVEGUIDE.width_um / rows == pytest.approx(path_um, rel=2e-4)


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
    extracted = layer_component(layer_netlist(layer)).get_netlist(on_dangling_port="ignore")
    schematic = layer_netlist(layer, terminate=True)  # the layout ends unused outputs
    assert set(extracted["instances"]) == {i.name for i in schematic.instances}
    for inst in schematic.instances:
        assert extracted["instances"][inst.name]["component"] == inst.component
    nets = {frozenset((n["p1"], n["p2"])) for n in extracted["nets"]}
    assert nets == {frozenset(c) for c in schematic.connections}
    assert extracted["ports"] == dict(schematic.ports)


def test_crossing_arm_is_the_modelled_path_and_crosses_at_right_angles():
    pitch = tech.GRID.row_pitch_um
    arm = tech.crossing_arm(pitch)
    centre = cells._arm_centre(arm, pitch, 4000)
    length = sum(math.dist(p[:2], q[:2]) for p, q in itertools.pairwise(centre))
    assert length == pytest.approx(arm.length_um, rel=1e-6)
    assert centre[0][:2] == (0.0, 0.0)
    assert centre[-1][:2] == pytest.approx((arm.dx_um, -pitch), abs=1e-9)
    assert round(arm.dx_um, 3) == arm.dx_um  # on the grid
    # the diagonal (between the arcs) runs at -45 deg through the cell's centre
    (x0, y0, a0), (x1, y1, a1) = centre[len(centre) // 2 - 1], centre[len(centre) // 2]
    assert a0 == a1 == pytest.approx(-math.pi / 4)
    assert math.dist((x0, y0), (x1, y1)) == pytest.approx(arm.diagonal_um)
    assert ((x0 + x1) / 2, (y0 + y1) / 2) == pytest.approx((arm.dx_um / 2, -pitch / 2))


def test_a_terminated_netlist_is_drawn_like_the_grid_netlist():
    layer = compile_layer("fc1", np.random.default_rng(0).normal(size=(2, 4)), CompileOptions(method="svd"))
    plain = layer_component(layer_netlist(layer), route=False).get_netlist(on_dangling_port="ignore")
    again = layer_component(layer_netlist(layer, terminate=True), route=False)
    assert again.get_netlist(on_dangling_port="ignore")["instances"] == plain["instances"]


def test_segmented_layout_connectivity_equals_the_netlist():
    w = np.random.default_rng(4).normal(size=(6, 7))
    layer = compile_layer("fc1", w, CompileOptions(method="ud-segmented", block_size=4))
    extracted = layer_component(layer_netlist(layer), route=False).get_netlist(on_dangling_port="ignore")
    schematic = layer_netlist(layer, terminate=True)
    # every row but the 6 outputs ends in a terminator (fan-in rests, spare tile rows)
    assert sum(i.component == "terminator" for i in schematic.instances) == schematic.n_modes - 6
    assert set(extracted["instances"]) == {i.name for i in schematic.instances}
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
        (["-o", "{tmp}/x.gds", "--pdk", "foo"], 2, "'foo' is not one of 'optinc', 'cornerstone-si220'."),
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


@pytest.mark.parametrize("name", sorted(cells.PARTS))
def test_parts_have_manhattan_ports_on_polygon_edges_and_models_with_the_same_ports(name):
    from pdk.models import models

    c = cells.PARTS[name]()
    assert_ports_on_polygon_edges(name, c)
    model_ports = {a for a, _ in models()[name]()}
    assert model_ports == {p.name for p in c.ports}


def test_parts_are_drc_clean(tmp_path):
    from optinc_compiler import drc

    top = gf.Component("parts_drc_top")
    for k, make in enumerate(cells.PARTS.values()):
        top.add_ref(make()).move((0, -300 * k))
    top.write_gds(tmp_path / "parts.gds")
    report = drc.check_gds(tmp_path / "parts.gds", connectivity=False)
    assert report.clean, report.violations[:3]


def test_pad_row_refuses_pads_closer_than_the_rules():
    with pytest.raises(ValueError, match="pad_row needs n_pads >= 1 and pitch_um >= pad size"):
        cells.pad_row(n_pads=2, pitch_um=50.0)


@pytest.mark.parametrize("name", sorted(cells.IO_CELLS))
def test_io_cells_have_manhattan_ports_on_polygon_edges(name):
    assert_ports_on_polygon_edges(name, cells.IO_CELLS[name]())


def test_grating_teeth_and_edge_taper_follow_the_rules():
    g = tech.GRATING
    assert g.tooth_um >= dict(tech.RULES.min_width_um)["WG"]
    assert g.period_um - g.tooth_um >= dict(tech.RULES.min_space_um)["WG"]
    wg, dbu = _region(cells.grating_coupler(), "WG")
    assert wg.count() == g.n_teeth + 1
    assert wg.bbox().width() * dbu == pytest.approx(g.length_um, abs=1e-3)
    taper, _ = _region(cells.edge_coupler(), "TAPER")
    core, _ = _region(cells.edge_coupler(), "WG")
    assert (core - taper).is_empty()  # the narrow part is all under the marker
    assert tech.EDGE_COUPLER.tip_width_um >= tech.RULES.taper_tip_min_width_um


@pytest.mark.parametrize(("dy_um", "lead_um"), [(0.0, 0.0), (48.5, 0.0), (-339.5, 250.0)])
def test_fan_waveguide_length_is_the_modelled_path_length(dy_um, lead_um):
    c = cells.io_fan(dx_um=510.0, dy_um=dy_um, lead_um=lead_um)
    wg, dbu = _region(c, "WG")
    drawn_um = wg.area() * dbu * dbu / tech.WAVEGUIDE.width_um
    assert drawn_um == pytest.approx(tech.fan_path_um(510.0, dy_um, lead_um), rel=2e-4)
    assert tuple(c.ports["o2"].center) == pytest.approx((510.0 + lead_um, dy_um))


@pytest.mark.parametrize("io", ["grating", "edge"])
def test_layout_with_io_connectivity_equals_the_io_netlist(io):
    layer = compile_layer("fc1", np.random.default_rng(0).normal(size=(3, 4)), CompileOptions(method="svd"))
    c = layer_component(layer_netlist(layer), io=io)
    extracted = c.get_netlist(on_dangling_port="ignore")
    fans = {n: i["settings"] for n, i in extracted["instances"].items() if i["component"] == "io_fan"}
    schematic = layer_netlist(
        layer,
        io=IoSpec(io, lead_in_um=fans["fc1_fan_in0"]["lead_um"], lead_out_um=fans["fc1_fan_out0"]["lead_um"]),
        terminate=True,
    )
    assert [i.name for i in schematic.instances if i.component == "terminator"] == ["fc1_term_m3"]
    assert {n: i["component"] for n, i in extracted["instances"].items()} == {
        i.name: i.component for i in schematic.instances
    }
    assert {frozenset((n["p1"], n["p2"])) for n in extracted["nets"]} == {
        frozenset(x) for x in schematic.connections
    }
    assert extracted["ports"] == dict(schematic.ports)
    for inst in schematic.instances:  # the drawn fans are the netlist's
        if inst.component == "io_fan":
            assert fans[inst.name] == pytest.approx({**dict(inst.settings), "bend_first": inst.column < 0})


def test_couplers_sit_at_the_fibre_pitch_clear_of_the_metal():
    layer = compile_layer("fc1", haar(4, 1), CompileOptions(method="unitary"))
    c = layer_component(layer_netlist(layer), io="grating")
    metal, dbu = _region(c, "M2")
    for side in ("in", "out"):
        ports = [c.ports[f"{side}{k}"] for k in range(4)]
        ys = [p.center[1] for p in ports]
        np.testing.assert_allclose(np.diff(ys), -tech.FIBRE_PITCH_UM)
        xs = {round(p.center[0], 3) for p in ports}
        assert len(xs) == 1  # one column of gratings per side
    wg, _ = _region(c, "WG")
    box = metal.bbox()
    # under the metal's x extent, waveguides stay in the grid's band of rows (bypasses
    # bend by up to half a pitch): the fans' S-bends and the gratings lie beyond it
    half_pitch = round(tech.GRID.row_pitch_um / 2 / dbu)
    rows = kdb.Box(box.left, round(-3 * tech.GRID.row_pitch_um / dbu) - half_pitch, box.right, half_pitch)
    assert not (wg & kdb.Region(box)).is_empty()
    assert ((wg & kdb.Region(box)) - kdb.Region(rows)).is_empty()
    assert c.ports["in0"].center[0] < box.left * dbu - tech.GRATING.length_um
    assert c.ports["out0"].center[0] > box.right * dbu + tech.GRATING.length_um


def test_edge_couplers_end_on_the_die_edge(tmp_path):
    program = compile_weights([NamedMatrix("u", haar(3, 0))], CompileOptions())
    write_layout(program, tmp_path / "chip.gds", io="edge")
    layout = kdb.Layout()
    layout.read(str(tmp_path / "chip.gds"))
    top = layout.top_cells()[0]
    die = kdb.Region(top.begin_shapes_rec(layout.layer(*tech.LAYERS["FLOORPLAN"]))).bbox()
    wg = kdb.Region(top.begin_shapes_rec(layout.layer(*tech.LAYERS["WG"]))).merged()
    on_west = wg.interacting(kdb.Region(kdb.Box(die.left, die.bottom, die.left + 1, die.top)))
    on_east = wg.interacting(kdb.Region(kdb.Box(die.right - 1, die.bottom, die.right, die.top)))
    assert on_west.count() == on_east.count() == 3
    assert wg.bbox().left == die.left
    assert wg.bbox().right == die.right


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--io", "foo"], 2, "Invalid value for '--io': 'foo' is not one of 'grating', 'edge', 'none'"),
        (["--io", "edge"], 1, "edge couplers need the layer's facets on the die edge: lay out one of the 2"),
    ],
)
def test_layout_io_option_errors(tmp_path, args, code, message):
    weights = [NamedMatrix("a", np.eye(2)), NamedMatrix("b", np.eye(2))]
    program_path = prog.save(compile_weights(weights, CompileOptions()), tmp_path / "p.json")
    result = CliRunner().invoke(main, ["layout", str(program_path), "-o", str(tmp_path / "x.gds"), *args])
    assert result.exit_code == code
    assert message in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json"]
    one = CliRunner().invoke(
        main, ["layout", str(program_path), "-o", str(tmp_path / "a.gds"), "--io", "edge", "--layer", "a"]
    )
    assert one.exit_code == 0, one.output
