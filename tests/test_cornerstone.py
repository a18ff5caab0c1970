"""The CORNERSTONE SOI 220 flow (--pdk cornerstone-si220): the foundry's cells, rules,
submission check and models, on chips compiled from seeded Haar 4x4 unitaries."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import klayout.db as kdb
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import haar

from optinc_compiler import pdk_flow, pdks
from optinc_compiler import program as prog
from optinc_compiler.cli import main
from optinc_compiler.compiler import CompileOptions, compile_layer
from optinc_compiler.cornerstone import chip, lvs, tech
from optinc_compiler.cornerstone import drc as foundry_drc
from optinc_compiler.errors import InputError, MissingDependencyError
from optinc_compiler.netlist import heater_roles, layer_netlist
from optinc_compiler.program import PhaseProgram
from optinc_compiler.simulate import enable_x64, flat_smatrix, netlist_smatrix
from optinc_compiler.verify import VerifyOptions, verify_targets

TOPOLOGIES = ("clements", "reck")


def _program(topology: str, n: int = 4, seed: int = 11) -> PhaseProgram:
    return PhaseProgram(layers=(compile_layer("u4", haar(n, seed), CompileOptions(topology=topology)),))


@pytest.fixture(scope="module")
def chips(tmp_path_factory) -> dict[str, tuple[PhaseProgram, Path]]:
    """A seeded Haar 4x4 on each mesh, laid out on the foundry die."""
    out = {}
    for topology in TOPOLOGIES:
        folder = tmp_path_factory.mktemp(topology)
        program = _program(topology)
        prog.save(program, folder / "program.json")
        pdk_flow.write_layout(
            program, folder / "chip.gds", pdk="cornerstone-si220", png_path=folder / "chip.png"
        )
        out[topology] = (program, folder / "chip.gds")
    return out


# --- cells and models ----------------------------------------------------------------


def test_coupler_length_is_where_the_foundry_model_splits_50_50():
    from cspdk.si220 import models

    from optinc_compiler.cornerstone.geometry import geometry

    def split(length: float) -> tuple[float, float]:
        s = models.coupler(wl=tech.WL_UM, length=length)
        return abs(complex(s["o1", "o4"])) ** 2, abs(complex(s["o1", "o3"])) ** 2

    through, cross = split(geometry().coupler_length_um)
    assert abs(through - cross) < 2e-4
    through, cross = split(14.5)  # the PDK's default cell: far from 50:50
    assert through - cross > 0.3


def _cells():
    from optinc_compiler.cornerstone import cells

    cells.activate()
    return cells


@pytest.mark.parametrize(
    ("name", "kw", "kind", "phases"),
    [
        ("cs_mzi", {}, "mzi", {"theta": 1.1, "phi": 2.3}),
        ("cs_mzi", {"slots": 2, "depth": 1, "down": True}, "mzi", {"theta": 0.4, "phi": 5.9}),
        ("cs_mzi_bypass", {"slots": 2}, "mzi_bypass", {}),
        ("cs_phase_shifter", {"slots": 3, "slot": 1}, "phase_shifter", {"phase": 4.0}),
        ("cs_phase_shifter_bypass", {"slots": 2}, "phase_shifter_bypass", {}),
    ],
)
def test_fast_models_equal_sax_circuit_of_the_drawn_cells(name, kw, kind, phases):
    """Each cell's own gdsfactory netlist (foundry cells) through sax.circuit with the
    foundry's models equals the composed fast-path model."""
    from optinc_compiler.cornerstone import models

    enable_x64()
    cell = getattr(_cells(), name)(**kw)
    # the heater model's phase is pi (V / vpi)^2 with its vpi of 1 V
    flat = models.flat_circuit(cell, {k: float(np.sqrt(v / np.pi)) for k, v in phases.items()})
    settings = {"theta": "theta_rad", "phi": "phi_rad", "phase": "phase_rad"}
    fast = models.models()[kind](slots=kw.get("slots", 1), **{settings[k]: v for k, v in phases.items()})
    assert set(fast) <= set(flat)
    assert max(abs(complex(fast[k]) - flat[k]) for k in fast) < 1e-9


@pytest.mark.parametrize("size", [(60, 28), (60, -28), (60, 27.721), (200, 11.5)])
def test_bend_lengths_are_gdsfactorys(size):
    """The bend length the models use is the drawn bend's (gdsfactory rounds it to 1 nm)."""
    from optinc_compiler.cornerstone.geometry import bend_length_um

    assert abs(bend_length_um(*size) - _cells()._cells().bend_s(size=size).info["length"]) <= 5e-4


def test_bypass_carries_the_phase_of_an_mzi_arm():
    """At theta = pi, phi = 0 an MZI is the bar state: its lower row passes like a
    bypass, so the two must agree in phase (their losses differ by the couplers'), to
    the 1 nm grid of the bypass bends' height (about 2.4 mrad per bend)."""
    from optinc_compiler.cornerstone import models

    enable_x64()
    through = complex(models.mzi(theta_rad=np.pi, phi_rad=0.0)["o1", "o4"])
    bypass = complex(models.mzi_bypass()["o1", "o2"])
    assert abs(np.angle(through / bypass)) < 1e-2
    assert 0.98 < abs(through) / abs(bypass) <= 1.0


def _dense_product(netlist, n: int) -> np.ndarray:
    """``S`` of a mesh netlist as a product of per-column N x N matrices built from the
    cell models (written here, not the simulator's level plan)."""
    from optinc_compiler.cornerstone import models

    m = models.models()
    s = np.eye(n, dtype=complex)
    for column in range(netlist.n_columns):
        t = np.zeros((n, n), dtype=complex)
        for inst in (i for i in netlist.instances if i.column == column):
            sd = m[inst.component](**dict(inst.settings))
            r = inst.mode
            if inst.component == "mzi":
                t[r, r], t[r, r + 1] = complex(sd["o2", "o3"]), complex(sd["o1", "o3"])
                t[r + 1, r], t[r + 1, r + 1] = complex(sd["o2", "o4"]), complex(sd["o1", "o4"])
            else:
                t[r, r] = complex(sd["o1", "o2"])
        s = t @ s
    return s


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_mesh_simulation_equals_independent_products(topology):
    enable_x64()
    layer = _program(topology).layers[0]
    plan = chip.plan_chip(layer)
    netlist = dataclasses.replace(plan.netlist, instances=lvs.plan_instances(plan))
    fast = netlist_smatrix(netlist, n_in=4, n_out=4, model_set="cornerstone-si220")[0]
    assert np.max(np.abs(fast - _dense_product(netlist, 4))) < 1e-10  # jitted against eager
    flat = flat_smatrix(netlist, n_in=4, n_out=4, model_set="cornerstone-si220")
    assert np.max(np.abs(fast - flat)) < 1e-9
    # and the chip is the target up to loss and a global phase
    w = haar(4, 11)
    a = np.vdot(fast, w) / np.vdot(fast, fast)
    assert np.max(np.abs(a * fast - w)) < 0.01


# --- the chip --------------------------------------------------------------------------


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_chip_passes_the_foundry_checks_lvs_and_verify(chips, topology, tmp_path):
    program, gds = chips[topology]
    report = foundry_drc.check_gds(gds)
    assert report.clean, report.violations[:3]
    assert {r.rule for r in report.results} >= {
        "min_width",
        "min_space",
        "min_overlap",
        "submission",
        "short",
    }
    assert report.n_heaters == 16
    from cspdk.si220.submission import check_submission

    assert check_submission(gds) == []
    layout = kdb.Layout()
    layout.read(str(gds))
    top = layout.top_cells()[0]
    drawn = {
        (layout.get_info(i).layer, layout.get_info(i).datatype)
        for i in layout.layer_indexes()
        if not top.bbox_per_layer(i).empty()
    }
    assert drawn <= set(tech.LAYERS.values())
    assert top.name == tech.TOP_CELL
    found = lvs.extract(gds, program.layers[0])
    assert found.equal, found.mismatches
    assert (found.n_cells, found.n_heaters) == ((14, 16) if topology == "clements" else (18, 16))
    layer = program.layers[0]
    targets = pdk_flow.layout_targets(gds, program, [layer], {"u4": haar(4, 11)}, models="cornerstone-si220")
    result = verify_targets(targets, VerifyOptions(model_set="cornerstone-si220"), source="layout")
    assert result.layers[0].nominal.fidelity > 0.9999
    assert result.layers[0].ok
    again = tmp_path / "again.gds"
    pdk_flow.write_layout(program, again, pdk="cornerstone-si220")
    assert again.read_bytes() == gds.read_bytes()


def _planted(
    gds: Path, tmp_path: Path, shapes: dict[tuple[int, int], list[tuple[float, float, float, float]]]
) -> Path:
    layout = kdb.Layout()
    layout.read(str(gds))
    top = layout.top_cells()[0]
    for (layer, datatype), boxes in shapes.items():
        index = layout.layer(layer, datatype)
        for box in boxes:
            top.shapes(index).insert(kdb.DBox(*box))
    out = tmp_path / "planted.gds"
    layout.write(str(out))
    return out


def test_a_planted_violation_of_each_rule_is_found(chips, tmp_path):
    _, gds = chips["clements"]
    x, y = -4000.0, -1800.0  # an empty corner of the die
    p0, p1 = chip.pad_x_um(0), chip.pad_x_um(1)
    ys = chip.pad_centre_y_um("S")
    shapes = {
        tech.LAYERS["WG"]: [(x, y, x + 0.2, y + 5), (x + 10, y, x + 11, y + 5), (x + 11.1, y, x + 12, y + 5)],
        tech.LAYERS["GRA"]: [
            (x + 20, y, x + 20.1, y + 5),
            (x + 30, y, x + 31, y + 5),
            (x + 31.1, y, x + 32, y + 5),
        ],
        tech.LAYERS["HEATER"]: [
            (x + 40, y, x + 40.3, y + 5),  # narrow
            (x + 60, y, x + 70, y + 5),
            (x + 75, y, x + 85, y + 5),  # 5 um from the previous one
            (x + 200, y, x + 300, y + 12),  # a heater with pads of its own that reach no die pad
            (x + 400, y, x + 450, y + 12),  # a heater whose contact overlaps by 5 um
        ],
        tech.LAYERS["PAD"]: [
            (x + 100, y, x + 101, y + 20),  # narrow
            (x + 120, y, x + 140, y + 20),
            (x + 145, y, x + 165, y + 20),  # 5 um from the previous one
            (x + 190, y, x + 210, y + 12),
            (x + 290, y, x + 310, y + 12),
            (x + 445, y, x + 465, y + 12),
            (p0, ys - 10, p1, ys + 10),  # joins two die pads
        ],
        (1, 0): [(x + 500, y, x + 510, y + 10)],
    }
    report = foundry_drc.check_gds(_planted(gds, tmp_path, shapes))
    failing = {(r.rule, r.layer) for r in report.results if r.violations}
    assert failing == {
        ("min_width", "WG"),
        ("min_space", "WG"),
        ("min_width", "GRA"),
        ("min_space", "GRA"),
        ("min_width", "HEATER"),
        ("min_space", "HEATER"),
        ("min_width", "PAD"),
        ("min_space", "PAD"),
        ("min_overlap", "HEATER.PAD"),
        ("layer", "all"),
        ("heater_nets", "HEATER"),
        ("short", "PAD"),
        ("open", "PAD"),
        ("submission", "all"),
    }
    short = next(r for r in report.results if r.rule == "short")
    assert [v.detail for v in short.violations] == ["one net joins pads S0, S1"]
    submission = next(r for r in report.results if r.rule == "submission")
    assert [v.detail for v in submission.violations] == ["layer 1/0 is not a designated MPW-50 layer"]


def test_the_top_cell_names_the_institution(tmp_path):
    gds = tmp_path / "chip.gds"
    pdk_flow.write_layout(_program("clements"), gds, pdk="cornerstone-si220", institution="TUM_EDA")
    layout = kdb.Layout()
    layout.read(str(gds))
    assert layout.top_cells()[0].name == "Cell0_TUM_EDA"
    assert foundry_drc.check_gds(gds).clean
    program = _program("clements")
    with pytest.raises(InputError) as err:
        pdk_flow.write_layout(program, tmp_path / "b.gds", pdk="cornerstone-si220", institution="T U")
    assert str(err.value) == (
        "institution 'T U': allowed 1 to 64 letters, digits or underscores "
        "(the top cell is Cell0_<institution>)"
    )
    with pytest.raises(InputError) as err:
        pdk_flow.write_layout(_program("clements"), tmp_path / "c.gds", institution="TUM")
    assert str(err.value) == "--institution names the top cell of foundry chips; our PDK's is optinc_chip"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chip.gds"]


def test_the_submission_check_runs_in_drc(chips, tmp_path):
    _, gds = chips["clements"]
    layout = kdb.Layout()
    layout.read(str(gds))
    layout.top_cells()[0].name = "optinc_top"
    renamed = tmp_path / "renamed.gds"
    layout.write(str(renamed))
    report = foundry_drc.check_gds(renamed)
    assert [v.detail for v in report.violations] == [
        "top cell 'optinc_top' must be named 'Cell0_<Name of Institution>'"
    ]


def test_lvs_finds_a_cut_wire(chips, tmp_path):
    program, gds = chips["clements"]
    plan = chip.plan_chip(program.layers[0])
    wire = next(w for w in plan.wires if w.net == "u4_U_c0_m0_phi")
    (wx, wy) = wire.points[0]
    layout = kdb.Layout()
    layout.read(str(gds))
    top = layout.top_cells()[0]
    index = layout.find_layer(*tech.LAYERS["PAD"])
    probe = kdb.DBox(wx - 1, wy + 30, wx + 1, wy + 31)  # the riser above its contact
    cut = [s for s in top.shapes(index).each() if s.dbbox().overlaps(probe)]
    assert cut
    for shape in cut:
        top.shapes(index).erase(shape)
    out = tmp_path / "cut.gds"
    layout.write(str(out))
    found = lvs.extract(out, program.layers[0])
    assert not found.equal
    assert any(m.startswith("heater u4_U_c0_m0_phi: wired to pads ") for m in found.mismatches)
    assert {r.rule for r in foundry_drc.check_gds(out).results if r.violations} == {"open"}


# --- refusals -----------------------------------------------------------------------------


def test_a_mesh_needing_more_pads_than_the_die_has_is_refused_before_drawing(tmp_path):
    program = PhaseProgram(layers=(compile_layer("big", haar(7, 3), CompileOptions()),))
    gds = tmp_path / "chip.gds"
    with pytest.raises(InputError) as err:
        pdk_flow.write_layout(program, gds, pdk="cornerstone-si220")
    assert str(err.value) == (
        "layer 'big' needs 74 heater pads (38 north, 36 south); the cornerstone-si220 die has 31 per "
        "side (62 in all): a clements mesh of up to 6 x 6 fits"
    )
    assert not gds.exists()


def test_what_the_foundry_flow_does_not_draw_is_refused(tmp_path):
    options = CompileOptions(method="ud-segmented", block_size=2)
    tiled = PhaseProgram(layers=(compile_layer("fc", np.arange(12.0).reshape(3, 4), options),))
    with pytest.raises(InputError) as err:
        pdk_flow.write_layout(tiled, tmp_path / "a.gds", pdk="cornerstone-si220")
    assert str(err.value) == (
        "PDK 'cornerstone-si220' draws MZIs, attenuators and output phase shifters; layer 'fc' "
        "also needs crossing, crossing_bypass; lay it out with --pdk optinc"
    )
    two = PhaseProgram(
        layers=(*_program("clements").layers, compile_layer("v", haar(4, 2), CompileOptions()))
    )
    with pytest.raises(InputError) as err:
        pdk_flow.write_layout(two, tmp_path / "b.gds", pdk="cornerstone-si220")
    assert str(err.value) == (
        "the cornerstone-si220 die takes one layer; the program has 2 (u4, v): pick one (--layer NAME, or a "
        "design's layers:)"
    )
    die, flow = "the cornerstone-si220 die has", "the cornerstone-si220 flow"
    refusals = [
        ({"io": "edge"}, f"I/O couplers 'edge': {die} grating couplers only; allowed: grating"),
        ({"pads": "bumps"}, f"pads 'bumps': {die} edge pad rows only; allowed: auto, edge"),
        ({"route": False}, f"--no-route: {flow} always wires its heaters to the die's pads"),
    ]
    for kw, message in refusals:
        with pytest.raises(InputError) as err:
            pdk_flow.write_layout(_program("clements"), tmp_path / "c.gds", pdk="cornerstone-si220", **kw)
        assert str(err.value) == message
    with pytest.raises(InputError) as err:
        pdk_flow.write_layout(_program("clements"), tmp_path / "c.txt", pdk="cornerstone-si220")
    assert str(err.value) == f"layout file {str(tmp_path / 'c.txt')!r} must end in .gds or .oas"
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("topology", "n"), [("clements", 2), ("clements", 3), ("clements", 6), ("reck", 3), ("reck", 6)]
)
def test_other_sizes_up_to_the_die_limit_pass_drc_and_lvs(topology, n, tmp_path):
    program = PhaseProgram(layers=(compile_layer("u", haar(n, n), CompileOptions(topology=topology)),))
    pdk_flow.write_layout(program, tmp_path / "chip.gds", pdk="cornerstone-si220")
    assert foundry_drc.check_gds(tmp_path / "chip.gds").clean
    assert lvs.extract(tmp_path / "chip.gds", program.layers[0]).equal


@pytest.mark.parametrize(
    ("topology", "message"),
    [
        ("clements", "layer 'u' needs 74 heater pads (38 north, 36 south)"),
        ("reck", "layer 'u' needs 74 heater pads (38 north, 36 south)"),
    ],
)
def test_the_size_that_fits_is_one_the_die_takes(topology, message):
    """The refusal of a 7x7 names the largest mesh that fits, and that one is drawn."""
    with pytest.raises(InputError) as err:
        chip.plan_chip(compile_layer("u", haar(7, 1), CompileOptions(topology=topology)))
    assert str(err.value).startswith(message)
    assert str(err.value).endswith(f": a {topology} mesh of up to 6 x 6 fits")
    chip.plan_chip(compile_layer("u", haar(6, 1), CompileOptions(topology=topology)))


def test_a_layer_longer_than_the_die_is_refused_with_what_fits():
    """A 4x4 svd layer on Reck meshes has the pads (60 of 62) but not the length; the
    refusal names the largest svd layer that fits, and that one is drawn."""
    w = np.arange(16.0).reshape(4, 4) + np.eye(4)
    layer = compile_layer("fc", w, CompileOptions(method="svd", topology="reck"))
    netlist = layer_netlist(layer)
    assert max(chip.pad_counts(netlist, chip.column_splits(netlist))) <= tech.PADS_PER_SIDE
    with pytest.raises(InputError) as err:
        chip.plan_chip(layer)
    assert str(err.value) == (
        "layer 'fc' is 10,814 um long; between the cornerstone-si220 die's gratings and their S-bends "
        "there are 9,276 um: a reck svd layer of up to 3 x 3 fits"
    )
    chip.plan_chip(compile_layer("fc", w[:3, :3], CompileOptions(method="svd", topology="reck")))


def test_pdk_names_and_a_missing_foundry_package(monkeypatch):
    with pytest.raises(InputError) as err:
        pdks.get("sky130")
    assert str(err.value) == "unknown PDK 'sky130'; allowed: optinc, cornerstone-si220"
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "cspdk" else real(name, *a)
    )
    with pytest.raises(MissingDependencyError) as err:
        pdks.require("cornerstone-si220")
    assert str(err.value) == (
        "PDK 'cornerstone-si220' needs the Python package(s) 'cspdk', not installed here; install with: "
        "pip install --no-deps cspdk==2.1.0 h5netcdf h5py"
    )


def test_heater_program_uses_the_foundry_heater_model_and_distances(chips):
    from optinc_compiler.calibration import heater_program

    program, _ = chips["clements"]
    cal = pdk_flow.default_calibration("cornerstone-si220", program)
    assert (cal.default.p_pi_mW, cal.default.resistance_ohm, cal.distance_model) == (25.0, 800.0, False)
    links = {(v, a): c for v, a, c in cal.crosstalk}
    # rows 1 and 2 of the phase-shifter column share a slot, 60 um apart; rows 0 and 1 do not
    assert links[("u4_U_ps_m1_phase", "u4_U_ps_m2_phase")] == pytest.approx(0.05 * np.exp(-30 / 20))
    assert ("u4_U_ps_m0_phase", "u4_U_ps_m1_phase") not in links
    # column 0: the MZIs on rows 0 and 2, 120 um apart
    assert links[("u4_U_c0_m0_phi", "u4_U_c0_m2_phi")] == pytest.approx(0.05 * np.exp(-90 / 20))
    assert len(links) == 10
    with_links = heater_program(program, cal)
    without = heater_program(program, cal, crosstalk=False)
    pairs = zip(with_links.heaters, without.heaters, strict=True)
    changed = {a.id for a, b in pairs if a.power_mW != b.power_mW}
    assert {v for v, _ in links} <= changed  # and the joint solve may move others' 2 pi multiples
    heaters = without
    assert len(heaters.heaters) == 16
    for h in heaters.heaters:
        assert h.power_mW == pytest.approx(25.0 * h.phase_rad / np.pi, rel=1e-2, abs=1e-3)
        assert h.voltage_V == pytest.approx(np.sqrt(h.power_mW * 1e-3 * 800.0), rel=1e-9, abs=1e-9)


# --- the CLI ------------------------------------------------------------------------------


def _run(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_cli_pdks_layout_drc_lvs_verify(chips, tmp_path):
    result = _run("pdks")
    assert result.exit_code == 0
    assert result.output.splitlines()[2].split()[:3] == ["optinc", "yes", "reticle"]
    assert result.output.splitlines()[3].split()[:2] == ["cornerstone-si220", "yes"]
    program, _ = chips["reck"]
    p = tmp_path / "program.json"
    prog.save(program, p)
    gds = tmp_path / "chip.gds"
    result = _run("layout", p, "--pdk", "cornerstone-si220", "-o", gds)
    assert result.exit_code == 0, result.output
    result = _run("drc", gds, "--report", tmp_path / "drc.lyrdb")
    assert result.exit_code == 0, result.output
    assert "submission   all" in result.output
    assert "PDK cornerstone-si220: 24 heater nets on pads (8 shared returns); heaters: 16" in result.output
    result = _run("lvs", gds, p)
    assert result.exit_code == 0, result.output
    result = _run("verify", gds, "--program", p)
    assert result.exit_code == 0, result.output
    assert "cornerstone-si220" in result.output.splitlines()[2]
    broken = tmp_path / "broken.gds"
    shutil.copy(gds, broken)
    layout = kdb.Layout()
    layout.read(str(broken))
    layout.top_cells()[0].shapes(layout.layer(1, 0)).insert(kdb.DBox(-4000, -1800, -3990, -1790))
    layout.write(str(broken))
    result = CliRunner().invoke(main, ["drc", str(broken)])
    assert result.exit_code == 3
    assert "2 violation(s); first: layer on 1/0" in result.output
    assert "Cell0_OptINC" in (tmp_path / "drc.lyrdb").read_text()  # markers on the chip's top cell
    result = CliRunner().invoke(main, ["drc", str(gds), "--pdk", "optinc"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: {str(gds)!r} is a cornerstone-si220 chip (top cell Cell0_...); our PDK's checks see none "
        "of its layers: use --pdk auto or --pdk cornerstone-si220"
    )
    result = _run("program", p, "--gds", gds, "-o", tmp_path / "heaters.csv")
    assert result.exit_code == 0, result.output
    assert "calibration 'cornerstone-si220-default'" in result.stderr
    other = tmp_path / "other.json"
    prog.save(PhaseProgram(layers=(compile_layer("v", haar(4, 5), CompileOptions(topology="reck")),)), other)
    result = CliRunner().invoke(main, ["lvs", str(gds), str(other)])
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: {str(gds)!r} holds no mesh of layer 'v' (cell 'v_mesh'); it holds: u4"
    )


def test_design_files_take_the_foundry_pdk(tmp_path):
    from optinc_compiler.design import load_design, parse_design

    design = load_design(Path(__file__).resolve().parents[1] / "designs/clements4_cornerstone/design.yaml")
    assert (design.pdk, design.mesh, design.layers) == ("cornerstone-si220", "clements", ("u4",))
    where = f"design {tmp_path / 'd.yaml'}: "
    cases = [
        (
            "pdk: cornerstone-si220\nio: edge\n",
            "io is 'edge'; the cornerstone-si220 die has grating couplers only: expected grating",
        ),
        (
            "institution: TUM\n",
            "institution names the top cell of foundry chips; pdk optinc's is optinc_chip",
        ),
        (
            "pdk: cornerstone-si220\ninstitution: T U\n",
            "institution 'T U': allowed 1 to 64 letters, digits or underscores (the top cell is "
            "Cell0_<institution>)",
        ),
    ]
    for text, message in cases:
        with pytest.raises(InputError) as err:
            parse_design("version: 1\nweights: w.npz\n" + text, source=tmp_path / "d.yaml")
        assert str(err.value) == where + message


@pytest.mark.slow
def test_build_of_the_foundry_design(tmp_path):
    from optinc_compiler.build import build
    from optinc_compiler.design import load_design

    root = Path(__file__).resolve().parents[1]
    result = build(load_design(root / "designs/clements4_cornerstone/design.yaml"), tmp_path / "cs4")
    import json

    layer = json.loads((result.out_dir / "verify.json").read_text())["layers"][0]
    assert layer["nominal"]["fidelity"] > 0.9999  # the README states 0.99999
    from optinc_compiler.calibration import power_budget

    assert power_budget(result.heater_program).total_power_mW == pytest.approx(372.0, abs=0.1)
    assert [name for name, _ in result.stage_seconds] == [
        "compile",
        "layout",
        "drc",
        "lvs",
        "verify",
        "heaters",
        "report",
    ]
    from cspdk.si220.submission import check_submission

    assert check_submission(result.gds_path) == []
    assert "u4_U_c0_m0_phi" in (result.out_dir / "heaters.csv").read_text()
    assert "cornerstone-si220 models" in (result.out_dir / "verify.md").read_text()
    report = (result.out_dir / "report.html").read_text()
    assert "the heater wiring on PAD, its one metal" in report
    assert "24 heater nets on pads (8 shared returns), the cornerstone-si220 rules" in report


# --- attenuators and terminators: svd and ud layers on the die -------------------------


@pytest.mark.parametrize(("amplitude", "phase"), [(0.3, 0.7), (0.9, -1.2), (1.0, 0.0)])
def test_attenuator_model_equals_sax_circuit_and_sets_the_amplitude(amplitude, phase):
    """The drawn attenuator (terminators included) through sax.circuit equals the fast
    model, and against the fully open attenuator it passes ``a exp(i p)`` to the
    couplers' 50:50 accuracy."""
    from optinc_compiler.cornerstone import models
    from pdk.tech import attenuator_heater_phases

    enable_x64()
    theta, phi = attenuator_heater_phases(amplitude, phase)
    volts = {k: float(np.sqrt(np.mod(v, 2 * np.pi) / np.pi)) for k, v in (("theta", theta), ("phi", phi))}
    flat = models.flat_circuit(_cells().cs_attenuator(slots=2, depth=1), volts)
    fast = complex(models.attenuator(amplitude=amplitude, phase_rad=phase, slots=2)["o1", "o2"])
    assert abs(fast - flat[("o1", "o2")]) < 1e-9
    open_ = complex(models.attenuator(amplitude=1.0, phase_rad=0.0, slots=2)["o1", "o2"])
    assert abs(fast / open_ - amplitude * np.exp(1j * phase)) < 1e-2
    bypass = complex(models.attenuator_bypass(slots=2)["o1", "o2"])
    assert abs(np.angle(bypass / open_)) < 1e-2
    assert abs(bypass - models.flat_circuit(_cells().cs_attenuator_bypass(slots=2), {})[("o1", "o2")]) < 1e-9


def test_terminator_is_foundry_cells_within_the_rules(tmp_path):
    cell = _cells().cs_terminator()
    parts = {inst["component"] for inst in cell.get_netlist()["instances"].values()}
    assert parts == {"taper", "bend_circular", "straight"}
    assert [p.name for p in cell.ports] == ["o1"]
    cell.write_gds(tmp_path / "t.gds")
    layout = kdb.Layout()
    layout.read(str(tmp_path / "t.gds"))
    top = layout.top_cells()[0]
    regions = {name: foundry_drc._region(layout, top, name) for name in tech.LAYERS}
    assert not any(r.violations for r in foundry_drc._width_and_space(regions, layout.dbu))
    from optinc_compiler.drc import IGNORE_ANGLE_DEG

    def narrower_than(um: float) -> bool:
        return not regions["WG"].width_check(round(um / layout.dbu), ignore_angle=IGNORE_ANGLE_DEG).is_empty()

    assert not narrower_than(0.345)  # nothing below the 0.35 um rule
    assert narrower_than(0.36)  # and it narrows to it


SVD_CASES = {
    "3x4 svd": ((3, 4), "svd"),  # row 3 of the last column is terminated
    "4x3 svd": ((4, 3), "svd"),  # row 3 gets no input
    "4x4 svd": ((4, 4), "svd"),  # 60 of the die's 62 pads
    "4x4 ud": ((4, 4), "ud"),
}


@pytest.fixture(scope="module")
def svd_chips(tmp_path_factory) -> dict[str, tuple[PhaseProgram, np.ndarray, Path]]:
    out = {}
    for key, (shape, method) in SVD_CASES.items():
        folder = tmp_path_factory.mktemp(key.replace(" ", "_"))
        w = np.random.default_rng(sum(shape)).normal(size=shape)
        program = PhaseProgram(layers=(compile_layer("fc", w, CompileOptions(method=method)),))
        pdk_flow.write_layout(program, folder / "chip.gds", pdk="cornerstone-si220")
        out[key] = (program, w, folder / "chip.gds")
    return out


@pytest.mark.parametrize("key", SVD_CASES)
def test_svd_and_ud_layers_pass_the_foundry_checks_lvs_and_verify(svd_chips, key):
    program, w, gds = svd_chips[key]
    layer = program.layers[0]
    report = foundry_drc.check_gds(gds)
    assert report.clean, report.violations[:3]
    found = lvs.extract(gds, layer)
    assert found.equal, found.mismatches
    plan = chip.plan_chip(layer)
    # every heater's return is shared with its neighbour's: H + ceil(H / 2) pads per side
    for side in ("N", "S"):
        heaters = [n for n in plan.heater_nets if n.heater in {p.net for p in plan.pads if p.side == side}]
        assert sum(p.side == side for p in plan.pads) == len(heaters) + (len(heaters) + 1) // 2
    grounds = [n.ground for n in plan.heater_nets]
    assert max(grounds.count(g) for g in grounds) == 2
    n_heaters = sum(len(heater_roles(i.component)) for i in layer_netlist(layer).instances)
    assert report.n_heaters == len(plan.heater_nets) == n_heaters
    targets = pdk_flow.layout_targets(gds, program, [layer], {"fc": w}, models="cornerstone-si220")
    result = verify_targets(targets, VerifyOptions(model_set="cornerstone-si220"), source="layout")
    if layer.exact:
        assert result.layers[0].nominal.fidelity > 0.9999
    else:  # ud approximates W; the chip must match the compiled program's matrix
        assert result.layers[0].nominal.fidelity > 0.6
    expected = {"3x4 svd": (3,), "4x3 svd": (), "4x4 svd": (), "4x4 ud": ()}[key]
    assert plan.terminated_rows == expected
    assert [row for row, _ in plan.gratings_in] == list(range(layer.shape[1]))


def test_lvs_finds_a_missing_terminator(svd_chips, tmp_path):
    program, _, gds = svd_chips["3x4 svd"]
    layout = kdb.Layout()
    layout.read(str(gds))
    mesh = next(c for c in layout.each_cell() if c.name == "fc_mesh")
    (term,) = [i for i in mesh.each_inst() if i.cell.name == "cs_terminator"]
    term.delete()
    out = tmp_path / "no_term.gds"
    layout.write(str(out))
    found = lvs.extract(out, program.layers[0])
    assert found.mismatches == ("row 3: no terminator at the mesh's end, where no output reads its light",)


def test_svd_mesh_simulation_equals_independent_products(svd_chips):
    enable_x64()
    program, w, _ = svd_chips["4x4 svd"]
    plan = chip.plan_chip(program.layers[0])
    netlist = dataclasses.replace(plan.netlist, instances=lvs.plan_instances(plan))
    fast = netlist_smatrix(netlist, n_in=4, n_out=4, model_set="cornerstone-si220")[0]
    assert np.max(np.abs(fast - _dense_product(netlist, 4))) < 1e-10
    a = np.vdot(fast, w) / np.vdot(fast, fast)
    assert np.max(np.abs(a * fast - w)) < 0.02 * np.max(np.abs(w))


def test_a_calibration_file_for_the_foundry_chip_keeps_its_heater_model(chips, tmp_path):
    """What a calibration file omits is the foundry heater's (25 mW, 800 ohm), not our
    PDK's; its crosstalk joins the drawn heaters' links."""
    import json

    from optinc_compiler.calibration import CAL_FORMAT, heater_program, load_calibration

    program, gds = chips["clements"]
    path = tmp_path / "cal.json"
    doc = {
        "format": CAL_FORMAT,
        "version": 1,
        "heaters": {"u4_U_c0_m0_phi": {"p_pi_mW": 30.0}},
        "crosstalk": [{"victim": "u4_U_ps_m1_phase", "aggressor": "u4_U_ps_m2_phase", "coefficient": 0.02}],
    }
    path.write_text(json.dumps(doc))
    chip_cal = load_calibration(path, heater=pdks.get("cornerstone-si220").heater)
    assert (chip_cal.default.p_pi_mW, chip_cal.default.resistance_ohm, chip_cal.v_max_V) == (
        25.0,
        800.0,
        10.0,
    )
    assert chip_cal.heaters["u4_U_c0_m0_phi"].resistance_ohm == 800.0
    cal = pdk_flow.heater_calibration("cornerstone-si220", program, chip_cal)
    links = {(v, a): c for v, a, c in cal.crosstalk}
    assert links[("u4_U_ps_m1_phase", "u4_U_ps_m2_phase")] == 0.02  # the file's, not the model's
    assert len(links) == 10
    assert not cal.distance_model
    heaters = {h.id: h for h in heater_program(program, cal, crosstalk=False).heaters}
    phi = heaters["u4_U_c0_m0_phi"]
    assert phi.power_mW == pytest.approx(30.0 * phi.phase_rad / np.pi, rel=1e-2, abs=1e-3)
    theta = heaters["u4_U_c0_m0_theta"]
    assert theta.power_mW == pytest.approx(25.0 * theta.phase_rad / np.pi, rel=1e-2, abs=1e-3)
    prog.save(program, tmp_path / "p.json")
    out = tmp_path / "heaters.csv"
    result = _run("program", tmp_path / "p.json", "--gds", gds, "--calibration", path, "-o", out)
    assert result.exit_code == 0, result.output
    import csv

    rows = {row["id"]: row for row in csv.DictReader(line for line in out.open() if not line.startswith("#"))}
    v, p = float(rows["u4_U_c0_m0_theta"]["voltage_V"]), float(rows["u4_U_c0_m0_theta"]["power_mW"])
    assert v**2 / 800.0 * 1e3 == pytest.approx(p, rel=1e-6)  # the foundry heater's 800 ohm
