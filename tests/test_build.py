"""``optinc build``: design files (exact error messages) and the whole flow on a small design."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from optinc_compiler.build import BUILD_FILES, BuildCheckError, build
from optinc_compiler.build_report import _power_section
from optinc_compiler.cli import main
from optinc_compiler.design import Design, SweepSpec, VerifySpec, load_design
from optinc_compiler.errors import InputError
from optinc_compiler.verify import parse_sweep

ROOT = Path(__file__).resolve().parents[1]

#: A fast design: one 4x4 layer, a short sweep, a few Monte Carlo samples.
SMALL = """\
version: 1
name: small
weights: w.npz
sweep: {start_um: 1.54, stop_um: 1.56, points: 3}
verify: {monte_carlo_samples: 8, seed: 3, min_fidelity: 0.99}
"""


def write_design(folder: Path, text: str = SMALL, *, weights: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if weights:
        np.savez(folder / "w.npz", fc1=np.random.default_rng(5).normal(size=(4, 4)))
    path = folder / "design.yaml"
    path.write_text(text)
    return path


# --- design files ---------------------------------------------------------------------


def test_defaults_and_relative_weights(tmp_path):
    path = write_design(tmp_path / "chips" / "mine", "version: 1\nweights: w.npz\n")
    d = load_design(path)
    assert d == Design(source=path, weights="w.npz", name="mine")
    assert d.weights_path == tmp_path / "chips" / "mine" / "w.npz"
    assert (d.sweep, d.verify, d.dac_bits, d.io, d.calibration) == (
        SweepSpec(),
        VerifySpec(),
        12,
        "grating",
        None,
    )
    assert d.sweep.wavelengths_um() == parse_sweep("1.50:1.60:101")


def test_the_mlp_design_file_reads():
    d = load_design(ROOT / "designs" / "mlp_demo" / "design.yaml")
    assert (d.name, d.layers, d.sweep.points, d.verify.monte_carlo_samples) == (
        "mlp_demo",
        ("fc1", "fc2"),
        101,
        200,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "version: 1\nweights: w.npz\nverify: {min_fidelty: 0.9}\n",
            "unknown key 'verify.min_fidelty'; allowed in verify: models, wl_um, min_fidelity, "
            "monte_carlo_samples, coupler_sigma, phase_sigma_rad, loss_sigma_dB, seed, min_yield, "
            "mc_min_fidelity",
        ),
        (
            "version: 1\nweights: w.npz\nmesh_kind: reck\n",
            "unknown key 'mesh_kind'; allowed: version, name, weights, layers, method, mesh, block_size, "
            "pdk, io, institution, sweep, verify, dac_bits, heater_power_budget_mW, calibration, program",
        ),
        (
            "version: 1\nweights: w.npz\ndac_bits: twelve\n",
            "dac_bits is 'twelve'; expected an integer from 1 to 24",
        ),
        (
            "version: 1\nweights: w.npz\ndac_bits: true\n",
            "dac_bits is True; expected an integer from 1 to 24",
        ),
        ("version: 1\nweights: w.npz\ndac_bits: 40\n", "dac_bits is 40; expected an integer from 1 to 24"),
        (
            "version: 1\nweights: w.npz\nverify: {min_fidelity: 1.5}\n",
            "verify.min_fidelity is 1.5; expected a number from 0.0 to 1.0",
        ),
        (
            "version: 1\nweights: w.npz\nverify: {wl_um: null}\n",
            "verify.wl_um is None; expected a number from 0.5 to 3.0",
        ),
        (
            "version: 1\nweights: w.npz\nverify: {min_yield: 2}\n",
            "verify.min_yield is 2; expected a number from 0.0 to 1.0 or null",
        ),
        ("version: 1\nweights: w.npz\nmesh: hex\n", "mesh is 'hex'; expected one of clements, reck"),
        ("version: 1\nweights: w.npz\nio: fibre\n", "io is 'fibre'; expected one of grating, edge, none"),
        (
            "version: 1\nweights: w.npz\npdk: cspdk\n",
            "pdk is 'cspdk'; expected one of optinc, cornerstone-si220",
        ),
        (
            "version: 1\nweights: w.npz\nsweep: 1.5\n",
            "sweep is 1.5; expected a mapping of start_um, stop_um, points",
        ),
        (
            "version: 1\nweights: w.npz\nsweep: {start_um: 1.6, stop_um: 1.5}\n",
            "sweep.start_um (1.6) must be below sweep.stop_um (1.5)",
        ),
        (
            "version: 1\nweights: w.npz\nlayers: fc1\n",
            "layers is 'fc1'; expected a non-empty list of layer names",
        ),
        ("version: 2\nweights: w.npz\n", "version is 2; expected 1"),
        ("version: 1\nweights:\n", "weights is None; expected a file name (relative to the design file)"),
        (
            "version: 1\nweights: w.npz\nname: null\n",
            "name is None; expected text of 1 to 200 characters without control characters",
        ),
        ("weights: w.npz\n", "missing key 'version' (this tool reads version 1)"),
        ("version: 1\n", "missing key 'weights' (the weights file, relative to the design file)"),
        (
            "version: 1\nweights: [w.npz\n",
            "not valid YAML at line 3, column 1: expected ',' or ']', but got '<stream end>'",
        ),
        (
            "version: 1\nweights: w.npz\nname: &a [1, 2]\nlayers: *a\n",
            "not valid YAML at line 4, column 9: aliases (*name) are not allowed in design files",
        ),
        ("version: 1\n" + "a: [" * 5000, "nests deeper than a design file does"),
        (
            "version: 1\nweights: w.npz\ndac_bits: 8\ndac_bits: 12\n",
            "not valid YAML at line 4, column 1: key 'dac_bits' appears twice",
        ),
        (
            "version: 1\nweights: w.npz\ndac_bits: " + "9" * 5000 + "\n",
            "an integer of more than 4,300 digits; allowed: -2^63 .. 2^63 - 1",
        ),
        ("version: 1\nweights: w.npz\nname: 2020-13-45\n", "month must be in 1..12"),
        (
            "version: 1\nweights: !!python/object/apply:os.system [ls]\n",
            "not valid YAML at line 2, column 10: could not determine a constructor for the tag "
            "'tag:yaml.org,2002:python/object/apply:os.system'",
        ),
        ("version: 1\nweights: w.npz\ndac_bits: 30\n", "dac_bits is 30; expected an integer from 1 to 24"),
        (
            'version: 1\nweights: w.npz\nname: "a\\nb"\n',
            "name is 'a\\nb'; expected text of 1 to 200 characters without control characters",
        ),
        (
            "- 1\n- 2\n",
            "expected a mapping of keys (version, name, weights, layers, method, mesh, block_size, pdk, io, "
            "institution, sweep, verify, dac_bits, heater_power_budget_mW, calibration, program)",
        ),
    ],
)
def test_design_errors_name_the_key_and_what_is_allowed(tmp_path, text, message):
    path = write_design(tmp_path, text)
    with pytest.raises(InputError, match=re.escape(f"design {path}: {message}") + "$"):
        load_design(path)


def test_missing_weights_are_named_relative_to_the_design_file(tmp_path):
    path = write_design(tmp_path / "d", "version: 1\nweights: ../nope.npz\n", weights=False)
    expected = (
        f"design {path}: weights file '../nope.npz' does not exist (paths are relative to the design "
        f"file's folder '{tmp_path / 'd'}')"
    )
    with pytest.raises(InputError) as info:
        load_design(path)
    assert str(info.value) == expected


def test_cli_design_error_is_one_line_exit_1_and_no_build_folder(tmp_path):
    path = write_design(tmp_path, "version: 1\nweights: w.npz\nverify: {seeds: 2}\n")
    result = CliRunner().invoke(main, ["build", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: design {path}: unknown key 'verify.seeds'; allowed in verify: models, wl_um, min_fidelity, "
        "monte_carlo_samples, coupler_sigma, phase_sigma_rad, loss_sigma_dB, seed, min_yield, mc_min_fidelity"
    ]
    assert not (tmp_path / "out").exists()


# --- heater power budget ---------------------------------------------------------------


def test_heater_budget_is_the_heater_programs_every_drawn_heater_counted():
    """The report's budget is calibration.power_budget of the heater program the build
    writes to heaters.csv (crosstalk compensated, free heaters at 0 mW), per layer."""
    from optinc_compiler import calibration as cal
    from optinc_compiler.compiler import CompileOptions, compile_weights
    from optinc_compiler.io import NamedMatrix

    w = np.random.default_rng(2).normal(size=(3, 4))
    program = compile_weights([NamedMatrix("fc", w)], CompileOptions(method="svd"))
    layer = program.layers[0]
    hp = cal.heater_program(program)
    # svd: V (4 modes), 3 attenuators, U (3 modes): 2 per MZI, 1 per output phase, 2 per attenuator
    assert len(hp.heaters) == 2 * layer.n_mzis + (4 + 3) + 2 * 3
    section = _power_section(hp, len(hp.heaters))
    total = math.fsum(h.power_mW for h in hp.heaters)
    row = f'<tr><td>fc</td><td class="num">{len(hp.heaters)}</td><td class="num">1</td><td>{total:,.1f}</td>'
    assert row in section  # V's output phase on row 3 is free
    assert f"total {total:,.1f} mW = {total / 1000:.3f} W" in section
    assert "crosstalk compensated" in section


def test_heater_budget_without_a_heater_program():
    section = _power_section(None, 12)
    assert section == (
        "<h2>Heater power budget</h2><p>Not available: the heaters stage did not run, so there is "
        "no heater program (heaters.csv) to take the powers from. The layout draws 12 heaters.</p>"
    )


def result_program(folder: Path):
    from optinc_compiler import program as prog

    return prog.load(folder / "program.json")


# --- the whole flow ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The small design built twice into two folders."""
    root = tmp_path_factory.mktemp("build")
    path = write_design(root / "design")
    events = []
    first = build(load_design(path), root / "a", progress=events.append)
    result = CliRunner().invoke(main, ["-q", "build", str(path), "--out", str(root / "b")])
    assert result.exit_code == 0, result.output
    return root, first, events, result.stdout


def test_build_writes_every_file(built):
    root, result, events, _ = built
    names = sorted(p.name for p in (root / "a").iterdir())
    expected = set(BUILD_FILES) | {"phases_fc1.png"}  # the lock goes with the build
    assert set(names) == expected
    assert result.report_path == root / "a" / "report.html"
    assert [(e.stage, e.status) for e in events if e.status != "start"] == [
        ("compile", "done"),
        ("layout", "done"),
        ("drc", "done"),
        ("lvs", "done"),
        ("verify", "done"),
        ("heaters", "done"),
        ("report", "done"),
    ]
    heaters_event = next(e for e in events if e.stage == "heaters" and e.status == "done")
    assert heaters_event.detail.endswith("12-bit codes -> heaters.csv")
    lines = (root / "a" / "heaters.csv").read_text().splitlines()
    assert lines[1] == "id,pad,mzi,role,phase_rad,power_mW,voltage_V,dac_code"
    page = (root / "a" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 5  # layout, detail, sweep, Monte Carlo, phase maps
    n = len(lines) - 2
    assert f"{n} heaters (the layout draws {n})" in page
    assert str(root) not in page


def test_report_and_heaters_csv_give_the_same_total_power(built):
    """report.html's heater power budget is heaters.csv's: the same total and the same
    per-layer sums (one function, calibration.power_budget)."""
    root, *_ = built
    text = (root / "a" / "heaters.csv").read_text()
    rows = list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))
    csv_total = math.fsum(float(r["power_mW"]) for r in rows)
    page = (root / "a" / "report.html").read_text()
    section = page[page.index("<h2>Heater power budget</h2>") :]
    (said,) = re.findall(r"total ([0-9,]+\.[0-9]) mW = ", section)
    table = dict(
        re.findall(
            r"<tr><td>(\w+)</td><td class=\"num\">\d+</td><td class=\"num\">\d+</td><td>([0-9,.]+)</td>",
            section,
        )
    )
    assert said == table["total"] == f"{csv_total:,.1f}"
    assert (
        table["fc1"] == f"{math.fsum(float(r['power_mW']) for r in rows if r['id'].startswith('fc1_')):,.1f}"
    )
    assert csv_total > 0


def test_second_build_gives_identical_bytes(built):
    root, *_ = built
    a, b = sorted((root / "a").iterdir()), sorted((root / "b").iterdir())
    assert [p.name for p in a] == [p.name for p in b]
    for pa, pb in zip(a, b, strict=True):
        assert pa.read_bytes() == pb.read_bytes(), pa.name


def test_cli_prints_where_the_files_are(built):
    root, *_, output = built
    out = root / "b"
    assert f"phase program: {out / 'program.json'}" in output
    assert f"layout:        {out / 'chip.gds'}" in output
    assert f"report:        {out / 'report.html'}" in output
    lines = output.splitlines()
    heater_line = lines[lines.index(f"heater table:  {out / 'heaters.csv'}") + 1]
    assert heater_line == "heaters: 40, total 905.8 mW, largest fc1_V_c0_m0_phi 49.7 mW at 4.99 V"


def test_failed_check_stops_exit_3_and_keeps_earlier_files(built):
    root, *_ = built
    # at 1.56 um the couplers are off 50:50 (at 1.55 um the PDK models realise the 4x4
    # layer to rounding now that every row of a column loses the same)
    strict = SMALL.replace("min_fidelity: 0.99", "min_fidelity: 1.0, wl_um: 1.56")
    path = write_design(root / "strict", strict)
    out = root / "strict_out"
    out.mkdir()
    (out / "report.html").write_text("stale report of an earlier build")
    result = CliRunner().invoke(main, ["build", str(path), "--out", str(out)])
    assert result.exit_code == 3
    assert result.output.strip().splitlines()[-1] == (
        "Error: verify failed: fidelity below 1.0 in layer(s) fc1 (see verify.md)"
    )
    kept = {p.name for p in out.iterdir()}
    assert {"program.json", "chip.gds", "chip.png", "drc.lyrdb", "verify.json", "verify.md"} <= kept
    assert "report.html" not in kept  # the stale one is gone, no new one


def test_build_check_error_names_the_stage():
    error = BuildCheckError("drc", "2 violation(s)")
    assert (str(error), error.stage, error.exit_code) == ("DRC failed: 2 violation(s)", "drc", 3)


def test_build_folder_that_is_a_file(tmp_path):
    path = write_design(tmp_path)
    (tmp_path / "out").write_text("")
    with pytest.raises(InputError, match=r"build folder .* is a file, not a folder"):
        build(load_design(path), tmp_path / "out")


def test_readme_design_file_reads(tmp_path):
    readme = (ROOT / "README.md").read_text()
    (text,) = re.findall(r"```yaml\n(.*?)```", readme, flags=re.S)
    d = load_design(write_design(tmp_path, text.replace("weights.npz", "w.npz")))
    assert (d.layers, d.verify.min_yield, d.dac_bits) == (("fc1", "fc2"), None, 12)


def test_heaters_stage_checks_the_pads_of_the_chip(built, tmp_path):
    """heaters.csv only when every heater has its pad label in chip.gds."""
    from optinc_compiler import build as build_module
    from optinc_compiler.compiler import CompileOptions, compile_weights
    from optinc_compiler.io import NamedMatrix

    root = built[0]
    design = load_design(write_design(tmp_path))
    other = compile_weights([NamedMatrix("other", np.eye(2))], CompileOptions())
    with pytest.raises(BuildCheckError) as info:
        build_module._heaters(design, None, other, root / "a" / "chip.gds", tmp_path, strict=False)
    assert str(info.value) == (
        "heaters failed: 4 heater(s) without a pad, 40 unused pad(s);"
        " heater 'other_U_c0_m0_phi' has no pad label"
    )
    assert not (tmp_path / "heaters.csv").exists()


def test_drc_violation_stops_before_lvs_and_keeps_layout(tmp_path, monkeypatch):
    from optinc_compiler import drc

    real = drc.check_gds

    def with_a_violation(path, **kwargs):
        report = real(path, **kwargs)
        bad = drc.Violation("min_space", "M2", 1.0, 2.0, "space 4.000 um < 5.0 um", (0.0, 0.0, 2.0, 4.0))
        first = drc.RuleResult("min_space", "M2", ">= 5.0 um", (bad,))
        return drc.DrcReport((first, *report.results[1:]), report.n_signal_nets, report.n_ground_nets)

    monkeypatch.setattr(drc, "check_gds", with_a_violation)
    path = write_design(tmp_path)
    result = CliRunner().invoke(main, ["build", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 3
    assert result.output.strip().splitlines()[-1] == (
        "Error: DRC failed: 1 violation(s), markers in drc.lyrdb; first: min_space on M2 at "
        "(1.000, 2.000) um: space 4.000 um < 5.0 um"
    )
    assert {p.name for p in (tmp_path / "out").iterdir()} == {
        "program.json",
        "chip.gds",
        "chip.png",
        "drc.lyrdb",
    }
    assert "min_space_M2" in (tmp_path / "out" / "drc.lyrdb").read_text()


def test_a_design_with_trained_phases_builds_them_as_they_are(tmp_path):
    """``program:`` (the aggregator's trained phases) skips compiling; the weights are its
    targets and must match."""
    import shutil

    from optinc_compiler import build as build_module

    aggregator = Path(__file__).resolve().parents[1] / "designs" / "aggregator_n4_b4"
    for name in ("program.json", "weights.npz"):
        shutil.copy(aggregator / name, tmp_path / name)
    path = write_design(tmp_path, "version: 1\nweights: weights.npz\nprogram: program.json\n", weights=False)
    design = load_design(path)
    assert design.program_path == tmp_path / "program.json"
    out = tmp_path / "out"
    out.mkdir()
    (_, program), detail = build_module._compile(design, None, out)
    assert detail == "2 layer(s), 30 MZIs -> program.json"
    original = prog_load(tmp_path / "program.json")
    for a, b in zip(program.layers, original.layers, strict=True):
        np.testing.assert_array_equal(a.matrix(), b.matrix())
    np.savez(tmp_path / "other.npz", preprocess=np.ones((1, 16)), onn1=np.eye(6))
    other = load_design(
        write_design(tmp_path, "version: 1\nweights: other.npz\nprogram: program.json\n", weights=False)
    )
    with pytest.raises(BuildCheckError, match=r"the program does not rebuild layer\(s\)"):
        build_module._compile(other, None, out)
    missing = write_design(tmp_path / "m", "version: 1\nweights: w.npz\nprogram: nope.json\n")
    with pytest.raises(InputError, match=r"program file 'nope\.json' does not exist"):
        load_design(missing)


def prog_load(path: Path):
    from optinc_compiler import program as prog

    return prog.load(path)


@pytest.mark.slow
def test_a_pytorch_sequential_mlp_builds_and_verifies_from_its_gds(tmp_path):
    """A 64-32-10 nn.Sequential trained on digits (layers named 0 and 2): optinc build
    passes DRC and LVS and verifies the netlist extracted from chip.gds at >= 0.999."""
    torch = pytest.importorskip("torch")
    from sklearn.datasets import load_digits

    torch.manual_seed(0)
    x, y = load_digits(return_X_y=True)
    inputs, labels = torch.tensor(x / 16.0, dtype=torch.float32), torch.tensor(y)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(inputs), labels).backward()
        optimiser.step()
    assert (model(inputs).argmax(1) == labels).float().mean() > 0.9
    torch.save(model.state_dict(), tmp_path / "mlp.pt")
    text = "version: 1\nweights: mlp.pt\nsweep: {start_um: 1.549, stop_um: 1.551, points: 2}\n"
    path = write_design(tmp_path, text + "verify: {monte_carlo_samples: 0}\n", weights=False)
    result = build(load_design(path), tmp_path / "out")
    assert [layer.name for layer in result.program.layers] == ["0", "2"]
    verification = json.loads(result.verify_path.read_text())
    fidelities = {r["layer"]: r["nominal"]["fidelity"] for r in verification["layers"]}
    assert set(fidelities) == {"0", "2"}
    assert min(fidelities.values()) >= 0.999


@pytest.mark.parametrize(
    ("calibration", "message", "folder"),
    [
        ('{"format": ', "{cal!r} is not valid JSON (Expecting value, line 1)", []),  # no folder made
        (
            json.dumps({"format": "optinc-calibration", "version": 1, "heaters": {"other_U_c0_m0_phi": {}}}),
            "calibration 'c.json' names 1 heater id(s) that the program does not have: 'other_U_c0_m0_phi'",
            ["out"],  # locked, then no program.json
        ),
    ],
)
def test_a_broken_calibration_fails_the_build_before_it_writes(tmp_path, calibration, message, folder):
    """Read before the out folder is made; its ids checked before program.json is written."""
    (tmp_path / "c.json").write_text(calibration)
    path = write_design(tmp_path, SMALL + "calibration: c.json\n")
    with pytest.raises(InputError) as info:
        build(load_design(path), tmp_path / "out")
    assert str(info.value) == message.format(cal=str(tmp_path / "c.json"))
    assert [p.name for p in tmp_path.glob("out")] == folder
    assert not folder or not list((tmp_path / "out").iterdir())


@pytest.mark.slow
def test_the_committed_mlp_design_builds_as_the_readme_says(tmp_path):
    """``optinc build designs/mlp_demo/design.yaml``: every stage passes, its Monte Carlo
    yields included (the design states what it needs)."""
    result = CliRunner().invoke(
        main, ["build", str(ROOT / "designs" / "mlp_demo" / "design.yaml"), "--out", str(tmp_path / "mlp")]
    )
    assert result.exit_code == 0, result.output
    options = json.loads((tmp_path / "mlp" / "verify.json").read_text())["options"]
    assert (options["min_yield"], options["mc_min_fidelity"]) == (0.85, 0.995)
