"""Heater routing and the checks: DRC- and connectivity-clean routed chips for small
meshes, planted shorts and thin lines caught, exit codes of ``optinc drc``."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import haar

gf = pytest.importorskip("gdsfactory")
kdb = pytest.importorskip("klayout.db")

from optinc_compiler.cli import main  # noqa: E402
from optinc_compiler.compiler import CompileOptions, compile_layer, compile_weights  # noqa: E402
from optinc_compiler.drc import check_gds  # noqa: E402
from optinc_compiler.errors import InputError  # noqa: E402
from optinc_compiler.io import NamedMatrix  # noqa: E402
from optinc_compiler.layout import write_layout  # noqa: E402
from optinc_compiler.lvs import lvs_gds  # noqa: E402
from optinc_compiler.routing import Heater, plan_routing  # noqa: E402
from pdk import tech  # noqa: E402


def _segments(wire):
    return list(itertools.pairwise(wire.points))


def _crosses(a, b, margin):
    """Do two Manhattan segments (as rectangles of the routing width) overlap?"""
    (ax0, ay0), (ax1, ay1) = a
    (bx0, by0), (bx1, by1) = b
    return (
        min(ax0, ax1) - margin < max(bx0, bx1)
        and min(bx0, bx1) - margin < max(ax0, ax1)
        and min(ay0, ay1) - margin < max(by0, by1)
        and min(by0, by1) - margin < max(ay0, ay1)
    )


def test_plan_has_one_pad_per_heater_and_no_two_nets_touch():
    heaters = [
        Heater(f"h{col}_{row}", row, 300.0 * col + 3, 300.0 * col + 97, -30.0 * row)
        for col in range(3)
        for row in range(0, 8, 2)
    ]
    plan = plan_routing(heaters, n_rows=8, y_top_um=10.0, y_bottom_um=-220.0)
    labels = [p.label for p in plan.pads]
    assert len(labels) == len(set(labels))
    assert sorted(lab for lab in labels if not lab.startswith("GND")) == sorted(h.heater_id for h in heaters)
    assert plan.n_signal_pads == len(heaters)
    # distinct nets keep at least one routing space apart
    margin = tech.ROUTING.width_um + (tech.ROUTING.pitch_um - tech.ROUTING.width_um) - 1e-6
    for w1, w2 in itertools.combinations(plan.wires, 2):
        for s1 in _segments(w1):
            for s2 in _segments(w2):
                assert not _crosses(s1, s2, margin), (w1.net, w2.net, s1, s2)
    pads = sorted(plan.pads, key=lambda p: (p.y_um, p.x_um))
    for p, q in itertools.pairwise(pads):
        if p.y_um == q.y_um:
            assert q.x_um - p.x_um == pytest.approx(tech.RULES.pad_pitch_um)


def test_too_many_heaters_in_a_column_is_a_clear_error():
    heaters = [Heater(f"h{row}", row, 3.0, 97.0, -30.0 * row) for row in range(40)]
    with pytest.raises(
        InputError, match=r"20 heaters share one column half .* need the flip-chip area array"
    ):
        plan_routing(heaters, n_rows=40, y_top_um=10.0, y_bottom_um=-1200.0)


def _chip(
    tmp_path, shape, method, topology, name="chip.gds", io="grating", pads="auto", lvs=False, block_size=8
):
    """Lay out one compiled layer (and, with ``lvs``, check that LVS finds it equal)."""
    rng = np.random.default_rng(1)
    w = haar(shape[0], 2) if method == "unitary" else rng.normal(size=shape)
    options = CompileOptions(method=method, topology=topology, block_size=block_size)
    program = compile_weights([NamedMatrix("fc1", w)], options)
    path = tmp_path / name
    write_layout(program, path, io=io, pads=pads)
    if lvs:
        (result,) = lvs_gds(path, program)
        assert result.ok, result.first_difference
    return path


@pytest.mark.parametrize("topology", ["clements", "reck"])
@pytest.mark.parametrize("n", [2, 3, 4, 8])
def test_routed_mesh_is_drc_and_connectivity_clean(tmp_path, n, topology):
    report = check_gds(_chip(tmp_path, (n, n), "unitary", topology, lvs=True))
    assert report.clean, report.violations[:3]
    n_heaters = 2 * n * (n - 1) // 2 + n  # two per MZI plus the output screen
    assert report.n_heaters == n_heaters
    assert report.n_signal_nets == n_heaters


@pytest.mark.parametrize("n", [2, 3, 4, 8])
def test_routed_mesh_with_edge_couplers_is_clean(tmp_path, n):
    report = check_gds(_chip(tmp_path, (n, n), "unitary", "clements", io="edge", lvs=True))
    assert report.clean, report.violations[:3]
    assert report.n_signal_nets == n * (n - 1) + n


@pytest.mark.parametrize("io", ["grating", "edge", "none"])
def test_routed_non_square_svd_layer_is_clean(tmp_path, io):
    report = check_gds(_chip(tmp_path, (3, 5), "svd", "clements", io=io, lvs=True))
    assert report.clean, report.violations[:3]
    # V: 10 MZIs + 5 phases, S: 3 attenuators (2 heaters), U: 3 MZIs + 3 phases
    assert report.n_heaters == 2 * 10 + 5 + 2 * 3 + 2 * 3 + 3


@pytest.mark.parametrize(("shape", "io"), [((8, 8), "grating"), ((5, 7), "edge")])
def test_routed_segmented_layer_is_clean(tmp_path, shape, io):
    """Fan-out and fan-in MZIs, crossings and tiles: DRC, connectivity and LVS clean."""
    report = check_gds(_chip(tmp_path, shape, "ud-segmented", "clements", io=io, lvs=True, block_size=4))
    assert report.clean, report.violations[:3]
    w = np.random.default_rng(1).normal(size=shape)  # as _chip compiles it
    layer = compile_layer("fc1", w, CompileOptions(method="ud-segmented", block_size=4))
    fan = shape[0] + shape[1]  # R = C = 2: one splitter per input, one combiner per output
    screens = sum(s.n_modes for s in layer.stages if hasattr(s, "mzi_ids"))
    assert report.n_heaters == 2 * (layer.n_mzis + fan) + 2 * layer.n_attenuators + screens


def _add_box(path, layer, box_um, out):
    layout = kdb.Layout()
    layout.read(str(path))
    top = layout.top_cells()[0]
    top.shapes(layout.layer(*tech.LAYERS[layer])).insert(kdb.DBox(*box_um))
    layout.write(str(out))


def test_planted_short_thin_line_and_cut_wire_are_caught(tmp_path):
    clean = _chip(tmp_path, (4, 4), "unitary", "clements")
    layout = kdb.Layout()
    layout.read(str(clean))
    top = layout.top_cells()[0]
    labels = []
    it = top.begin_shapes_rec(layout.layer(*tech.LAYERS["TEXT"]))
    while not it.at_end():
        if it.shape().is_text():
            p = it.trans() * it.shape().text.trans.disp.to_p()
            labels.append((it.shape().text_string, p.x * layout.dbu, p.y * layout.dbu))
        it.next()
    (a, ax, ay), (b, bx, _) = sorted(
        (lab for lab in labels if not lab[0].startswith("GND")), key=lambda t: (t[2], t[1])
    )[:2]
    _add_box(clean, "M2", (min(ax, bx), ay - 2, max(ax, bx), ay + 2), tmp_path / "short.gds")
    short = check_gds(tmp_path / "short.gds")
    assert any(v.rule == "short" and a in v.detail and b in v.detail for v in short.violations)
    _add_box(clean, "WG", (0, 500, 20, 500.3), tmp_path / "thin.gds")
    thin = check_gds(tmp_path / "thin.gds")
    assert [v.rule for v in thin.violations] == ["min_width"]
    _add_box(clean, "M2", (ax - 30, ay - 100, ax + 30, ay + 100), tmp_path / "big.gds")
    assert not check_gds(tmp_path / "big.gds").clean
    _add_box(clean, "PAD", (min(ax, bx), ay - 2, max(ax, bx), ay + 2), tmp_path / "padshort.gds")
    assert any(v.rule == "short" for v in check_gds(tmp_path / "padshort.gds").violations)
    _add_box(clean, "VIA", (0, 700, 4, 704), tmp_path / "via.gds")
    assert {(v.rule, v.layer) for v in check_gds(tmp_path / "via.gds").violations} >= {("enclosure", "VIA")}
    _add_box(clean, "PADOPEN", (0, 900, 60, 960), tmp_path / "open.gds")
    assert ("enclosure", "PADOPEN") in {
        (v.rule, v.layer) for v in check_gds(tmp_path / "open.gds").violations
    }


def test_waveguide_space_and_taper_tip_violations_are_caught(tmp_path):
    chip = _chip(tmp_path, (2, 2), "unitary", "clements", io="edge")
    layout = kdb.Layout()
    layout.read(str(chip))
    top = layout.top_cells()[0]
    wg = kdb.Region(top.begin_shapes_rec(layout.layer(*tech.LAYERS["WG"]))).merged()
    left = wg.bbox().left
    tips = wg & kdb.Region(kdb.Box(left, wg.bbox().bottom, left + 1000, wg.bbox().top))
    tip = next(iter(tips.each())).bbox()  # the first micrometre of an edge coupler
    x, y = tip.left * layout.dbu, tip.center().y * layout.dbu
    # 20 um from the tip the taper is 0.21 um wide: a box 0.1 um from its side
    _add_box(chip, "WG", (x + 20, y + 0.2, x + 30, y + 1.0), tmp_path / "space.gds")
    assert [v.rule for v in check_gds(tmp_path / "space.gds").violations] == ["min_space"]
    # a 0.1 um line under the taper marker: too thin even for a taper tip
    _add_box(chip, "WG", (x + 20, y + 0.35, x + 30, y + 0.45), tmp_path / "tip.gds")
    assert [v.rule for v in check_gds(tmp_path / "tip.gds").violations] == ["min_width_taper"]


def test_duplicate_and_stray_labels_are_flagged(tmp_path):
    clean = _chip(tmp_path, (2, 2), "unitary", "clements")
    layout = kdb.Layout()
    layout.read(str(clean))
    top = layout.top_cells()[0]
    text_layer = layout.layer(*tech.LAYERS["TEXT"])
    top.shapes(text_layer).insert(kdb.Text("fc1_U_c0_m0_theta", kdb.Trans(-5_000_000, -5_000_000)))
    layout.write(str(tmp_path / "labels.gds"))
    details = [v.detail for v in check_gds(tmp_path / "labels.gds").violations if v.rule == "labels"]
    assert "pad label 'fc1_U_c0_m0_theta' appears twice" in details
    assert "label 'fc1_U_c0_m0_theta' is not on a pad" in details


def test_ground_labels_are_unique_across_layers(tmp_path):
    weights = [NamedMatrix("a", haar(3, 0)), NamedMatrix("b", haar(3, 1))]
    write_layout(compile_weights(weights, CompileOptions()), tmp_path / "two.gds")
    report = check_gds(tmp_path / "two.gds")
    assert report.clean, report.violations[:3]
    assert report.n_ground_nets > 0


def test_drc_cli(tmp_path):
    clean = _chip(tmp_path, (3, 3), "unitary", "reck")
    result = CliRunner().invoke(main, ["drc", str(clean), "--report", str(tmp_path / "drc.lyrdb")])
    assert result.exit_code == 0, result.output
    assert "heater_nets" in result.output
    import klayout.rdb as rdb

    db = rdb.ReportDatabase("check")
    db.load(str(tmp_path / "drc.lyrdb"))
    assert db.num_items() == 0
    _add_box(clean, "WG", (0, 500, 20, 500.3), tmp_path / "thin.gds")
    bad = CliRunner().invoke(main, ["drc", str(tmp_path / "thin.gds")])
    assert bad.exit_code == 3
    assert bad.output.strip().endswith(
        f"Error: {str(tmp_path / 'thin.gds')!r}: 1 violation(s); "
        "first: min_width on WG at (10.000, 500.150) um: 0.300 um < 0.4 um"
    )
    missing = CliRunner().invoke(main, ["drc", str(tmp_path / "nope.gds")])
    assert missing.exit_code == 1
    assert "does not exist" in missing.output


def test_lvs_equal_and_a_moved_cell_is_caught(tmp_path):
    program = compile_weights([NamedMatrix("fc1", haar(4, 5))], CompileOptions(topology="reck"))
    from optinc_compiler import program as prog

    program_path = prog.save(program, tmp_path / "p.json")
    write_layout(program, tmp_path / "chip.gds")
    good = CliRunner().invoke(main, ["lvs", str(tmp_path / "chip.gds"), str(program_path)])
    assert good.exit_code == 0, good.output
    assert "fc1    " in good.output
    assert " ok" in good.output
    layout = kdb.Layout()
    layout.read(str(tmp_path / "chip.gds"))
    grid = layout.cell("fc1_grid")
    inst = next(iter(grid.each_inst()))
    inst.transform(kdb.Trans(0, round(1000 / layout.dbu)))
    layout.write(str(tmp_path / "moved.gds"))
    bad = CliRunner().invoke(main, ["lvs", str(tmp_path / "moved.gds"), str(program_path)])
    assert bad.exit_code == 3
    assert "missing connection" in bad.output
    assert bad.output.strip().endswith("Error: layout differs from the schematic in layer(s) fc1")
    # swapped pad labels: geometry and netlist unchanged, but the lab would drive the
    # wrong heaters
    layout = kdb.Layout()
    layout.read(str(tmp_path / "chip.gds"))
    grid = layout.cell("fc1_grid")
    texts = [sh for sh in grid.shapes(layout.layer(*tech.LAYERS["TEXT"])).each() if sh.is_text()]
    signal = [sh for sh in texts if not sh.text_string.startswith("GND")][:2]
    first, second = signal[0].text_string, signal[1].text_string
    signal[0].text_string, signal[1].text_string = second, first
    layout.write(str(tmp_path / "swapped.gds"))
    swapped = CliRunner().invoke(main, ["lvs", str(tmp_path / "swapped.gds"), str(program_path)])
    assert swapped.exit_code == 3
    assert f"wiring {min(first, second)} reaches pad(s) {max(first, second)}" in swapped.output
    # an edit inside a library cell: every instance changes, the netlist does not
    layout = kdb.Layout()
    layout.read(str(tmp_path / "chip.gds"))
    arm = next(c for c in layout.each_cell() if c.name.startswith("coupler_arm") and "LTrue" in c.name)
    next(arm.each_inst()).transform(kdb.Trans(0, round(-2 / layout.dbu)))
    layout.write(str(tmp_path / "arm.gds"))
    edited = CliRunner().invoke(main, ["lvs", str(tmp_path / "arm.gds"), str(program_path)])
    assert edited.exit_code == 3
    assert "geometry cell mzi" in edited.output
    assert "differs from the PDK on WG" in edited.output
    other = compile_weights([NamedMatrix("head", np.eye(2))], CompileOptions())
    other_path = prog.save(other, tmp_path / "other.json")
    wrong = CliRunner().invoke(main, ["lvs", str(tmp_path / "chip.gds"), str(other_path)])
    assert wrong.exit_code == 1
    assert "has no cell 'head_grid' for layer 'head'" in wrong.output


@pytest.mark.parametrize("io", ["edge", "none"])
def test_lvs_with_edge_couplers_or_none_and_a_missing_coupler(tmp_path, io):
    from optinc_compiler import program as prog

    program = compile_weights(
        [NamedMatrix("fc1", np.random.default_rng(4).normal(size=(2, 3)))], CompileOptions()
    )
    program_path = prog.save(program, tmp_path / "p.json")
    write_layout(program, tmp_path / "chip.gds", io=io)
    good = CliRunner().invoke(main, ["lvs", str(tmp_path / "chip.gds"), str(program_path)])
    assert good.exit_code == 0, good.output
    if io == "none":
        return
    layout = kdb.Layout()
    layout.read(str(tmp_path / "chip.gds"))
    grid = layout.cell("fc1_grid")
    coupler = next(i for i in grid.each_inst() if i.cell.name.startswith("edge_coupler"))
    coupler.delete()
    layout.write(str(tmp_path / "cut.gds"))
    bad = CliRunner().invoke(main, ["lvs", str(tmp_path / "cut.gds"), str(program_path)])
    assert bad.exit_code == 3
    assert "missing instance fc1_ec_" in bad.output


def test_large_mesh_gets_flip_chip_bumps_or_is_refused_edge_pads(tmp_path):
    from optinc_compiler import program as prog

    program = compile_weights([NamedMatrix("big", haar(20, 1))], CompileOptions())
    program_path = prog.save(program, tmp_path / "p.json")
    chip = str(tmp_path / "chip.gds")
    refused = CliRunner().invoke(main, ["layout", str(program_path), "-o", chip, "--pads", "edge"])
    assert refused.exit_code == 1
    assert "larger meshes need the flip-chip area array" in refused.output
    assert "optinc layout --pads bumps" in refused.output
    assert not (tmp_path / "chip.gds").exists()
    bumped = CliRunner().invoke(main, ["layout", str(program_path), "-o", chip])  # --pads auto
    assert bumped.exit_code == 0, bumped.output
    report = check_gds(chip)
    assert report.clean, report.violations[:3]
    assert report.n_signal_nets == report.n_heaters == 20 * 19 + 20
    lvs = CliRunner().invoke(main, ["lvs", chip, str(program_path)])
    assert lvs.exit_code == 0, lvs.output
    drawn = CliRunner().invoke(main, ["layout", str(program_path), "-o", chip, "--no-route", "--io", "none"])
    assert drawn.exit_code == 0, drawn.output
    geometry = CliRunner().invoke(main, ["drc", chip, "--no-connectivity"])
    assert geometry.exit_code == 0, geometry.output
    assert "floating" not in geometry.output
    unrouted = check_gds(chip)
    assert {v.rule for v in unrouted.violations} == {"floating", "heater_nets"}


@pytest.mark.parametrize(("shape", "method"), [((4, 4), "unitary"), ((3, 5), "svd")])
def test_small_meshes_with_bumps_are_clean(tmp_path, shape, method):
    report = check_gds(_chip(tmp_path, shape, method, "reck", pads="bumps", lvs=True))
    assert report.clean, report.violations[:3]
    assert report.n_signal_nets == report.n_heaters


def test_bump_plan_has_one_bump_per_heater_at_the_bump_space():
    from optinc_compiler.routing import plan_bumps

    # an output phase-shifter column (every row) and an MZI column (every other row)
    heaters = [Heater(f"ps{r}", r, 3.0, 97.0, -30.0 * r) for r in range(6)]
    heaters += [Heater(f"m{r}", r, 303.0, 397.0, -30.0 * r) for r in range(0, 6, 2)]
    plan = plan_bumps(heaters, y_top_um=10.0, ground_label="GND_x_")
    assert {p.kind for p in plan.pads} == {"bump"}
    assert sorted(p.label for p in plan.pads) == sorted(
        [h.heater_id for h in heaters] + ["GND_x_f0", "GND_x_f1"]
    )
    half = tech.BUMP.size_um / 2
    space = dict(tech.RULES.min_space_um)["BUMP"]
    for p, q in itertools.combinations(plan.pads, 2):
        gap = max(abs(p.x_um - q.x_um), abs(p.y_um - q.y_um)) - 2 * half
        assert gap >= space, (p, q)
    for wire in plan.wires:  # stubs stay in their row, ground lines in their column
        (x0, y0), (x1, y1) = wire.points
        assert x0 == x1 or y0 == y1


def test_pads_option_is_validated(tmp_path):
    program_path = prog_save(tmp_path)
    result = CliRunner().invoke(
        main, ["layout", str(program_path), "-o", str(tmp_path / "x.gds"), "--pads", "x"]
    )
    assert result.exit_code == 2
    assert "Invalid value for '--pads': 'x' is not one of 'auto', 'edge', 'bumps'" in result.output


def prog_save(tmp_path):
    from optinc_compiler import program as prog

    return prog.save(compile_weights([NamedMatrix("fc1", np.eye(2))], CompileOptions()), tmp_path / "p.json")
