"""optinc verify: reports, Monte Carlo and sweeps from the CLI, and the simulation of a
chip's netlist extracted from its GDS, where a drawing error must show as a failure."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner
from conftest import haar

pytest.importorskip("sax")
kdb = pytest.importorskip("klayout.db")

from optinc_compiler import program as prog  # noqa: E402
from optinc_compiler.cli import main  # noqa: E402
from optinc_compiler.compiler import CompileOptions, compile_weights  # noqa: E402
from optinc_compiler.io import NamedMatrix  # noqa: E402
from optinc_compiler.verify import parse_sweep  # noqa: E402


@pytest.fixture(scope="module")
def program_path(tmp_path_factory):
    folder = tmp_path_factory.mktemp("verify")
    program = compile_weights([NamedMatrix("fc1", haar(4, 11))], CompileOptions())
    return prog.save(program, folder / "p.json")


@pytest.fixture(scope="module")
def chip_path(program_path):
    chip = program_path.with_name("chip.gds")
    result = CliRunner().invoke(main, ["layout", str(program_path), "-o", str(chip)])
    assert result.exit_code == 0, result.output
    return chip


def _invoke(*args: str):
    return CliRunner().invoke(main, ["verify", *args])


def test_report_folder_has_json_markdown_and_plots_and_is_reproducible(program_path, tmp_path):
    args = [str(program_path), "--sweep", "1.53:1.57:5", "--monte-carlo", "20", "--coupler-sigma", "0.01"]
    first = _invoke(*args, "--seed", "3", "--report", str(tmp_path / "a"))
    assert first.exit_code == 0, first.output
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "monte_carlo.png",
        "sweep.png",
        "verify.json",
        "verify.md",
    ]
    doc = json.loads((tmp_path / "a" / "verify.json").read_text())
    (layer,) = doc["layers"]
    assert layer["sweep"]["wl_um"] == [1.53, 1.54, 1.55, 1.56, 1.57]
    assert len(layer["monte_carlo"]["fidelity"]) == 20
    assert doc["options"]["variability"] == {
        "coupler_sigma": 0.01,
        "loss_sigma_dB": 0.0,
        "phase_sigma_rad": 0.0,
    }
    assert 0 <= layer["monte_carlo"]["yield_fraction"] <= 1
    text = (tmp_path / "a" / "verify.md").read_text()
    assert "![sweep.png](sweep.png)" in text
    assert "Monte Carlo, 20 samples, seed 3, coupler sigma 0.01" in text
    again = _invoke(*args, "--seed", "3", "--report", str(tmp_path / "b"))
    for name in ("verify.json", "verify.md", "sweep.png", "monte_carlo.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    other = _invoke(*args, "--seed", "4", "--report", str(tmp_path / "c"))
    assert other.exit_code == 0
    assert (tmp_path / "c" / "verify.json").read_bytes() != (tmp_path / "a" / "verify.json").read_bytes()
    assert again.output.replace(f"{tmp_path}/b", f"{tmp_path}/a") == first.output


def test_yield_below_min_yield_exits_3(program_path):
    args = [str(program_path), "--monte-carlo", "16", "--coupler-sigma", "0.05", "--models", "ideal"]
    unjudged = _invoke(*args)
    assert unjudged.exit_code == 0
    header, _, row = unjudged.stdout.splitlines()[:3]
    assert header.split()[-3:] == ["mc_yield", "min_yield", "status"]
    assert re.search(r" 0\.0% +not set +ok, yield not judged$", row), row
    assert unjudged.stderr == "Monte Carlo yield not judged: no --min-yield given\n"
    lenient = _invoke(*args, "--min-yield", "0.9", "--mc-min-fidelity", "0.5")
    assert lenient.exit_code == 0, lenient.output
    assert re.search(r" 100\.0% +90\.0% +ok$", lenient.stdout.splitlines()[2])
    low = _invoke(*args, "--min-yield", "0.9")
    assert low.exit_code == 3
    assert low.output.strip().endswith("Error: Monte Carlo yield below 0.9 in layer(s) fc1")
    assert "0.0%" in low.output


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--sweep", "1.5:1.6"], 2, "sweep '1.5:1.6' is not START:STOP:N (e.g. 1.50:1.60:101)"),
        (["--sweep", "1.6:1.5:11"], 2, "sweep '1.6:1.5:11': allowed 0.5 <= START < STOP <= 3.0 um"),
        (["--sweep", "1.5:1.6:1"], 2, "sweep '1.5:1.6:1': N is 1; allowed 2 to 10001 points"),
        (["--monte-carlo", "0"], 2, "0 is not in the range 1<=x<=1000000"),
        (["--coupler-sigma", "-1"], 2, "-1.0 is not in the range 0<=x<=0.5"),
        (["--phase-sigma-rad", "inf"], 2, "inf is not a finite number"),
        (["--program", "p.json"], 2, "--program is only for a layout file (.gds or .oas)"),
    ],
)
def test_bad_options_are_usage_errors(program_path, args, code, message):
    result = _invoke(str(program_path), *args)
    assert result.exit_code == code
    assert message in result.output
    assert "Traceback" not in result.output


def test_report_folder_that_is_a_file_or_has_no_parent(program_path, tmp_path):
    (tmp_path / "f").write_text("x")
    result = _invoke(str(program_path), "--report", str(tmp_path / "f"))
    assert result.exit_code == 2
    assert f"Directory '{tmp_path / 'f'}' is a file." in result.output
    missing = _invoke(str(program_path), "--report", str(tmp_path / "no" / "out"))
    assert missing.exit_code == 1
    assert "its parent folder does not exist" in missing.output
    assert not (tmp_path / "no").exists()


def test_layout_simulates_like_the_program(program_path, chip_path):
    from_program = _invoke(str(program_path))
    from_layout = _invoke(str(chip_path), "--program", str(program_path))
    assert from_layout.exit_code == 0, from_layout.output
    note = "layer fc1: grating couplers and fans left out; the grid is simulated between its own ports\n"
    assert from_layout.output == note + from_program.output
    assert _invoke(str(chip_path)).exit_code == 2


def test_layout_commands_in_a_fresh_process(program_path, chip_path):
    """The CLI as a user runs it: a new interpreter, nothing activated beforehand."""
    for args in (
        ["lvs", str(chip_path), str(program_path)],
        ["verify", str(chip_path), "--program", str(program_path)],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "optinc_compiler.cli", *args], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert "fc1" in done.stdout
    ideal = [sys.executable, "-m", "optinc_compiler.cli", "verify", str(program_path), "--models", "ideal"]
    done = subprocess.run(ideal, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    max_abs_error = float(done.stdout.splitlines()[2].split()[4])
    assert max_abs_error < 1e-12  # float64 in JAX without sax imported (float32 gives ~1e-7)


def _swap_instances(gds_in, gds_out, cell_name: str, a: str, b: str) -> None:
    """Plant a drawing error: two cells of the grid trade places (names kept)."""
    layout = kdb.Layout()
    layout.read(str(gds_in))
    cell = layout.cell(cell_name)
    by_name = {}
    for inst in cell.each_inst():
        props = dict(layout.properties(inst.prop_id)) if inst.prop_id else {}
        by_name[props.get(0)] = inst
    ta, tb = by_name[a].trans, by_name[b].trans
    by_name[a].trans, by_name[b].trans = tb, ta
    layout.write(str(gds_out))


def test_a_planted_drawing_error_fails_verification(program_path, chip_path, tmp_path):
    broken = tmp_path / "broken.gds"
    _swap_instances(chip_path, broken, "fc1_grid", "fc1_U_c0_m0", "fc1_U_c0_m2")
    result = _invoke(str(broken), "--program", str(program_path), "--models", "ideal")
    assert result.exit_code == 3, result.output
    assert result.output.strip().endswith("Error: fidelity below 0.999 in layer(s) fc1")
    row = next(line for line in result.output.splitlines() if line.startswith("fc1 "))
    assert float(row.split()[3]) < 0.99
    lvs = CliRunner().invoke(main, ["lvs", str(broken), str(program_path)])
    assert lvs.exit_code == 3


def test_parse_sweep_gives_inclusive_points():
    assert parse_sweep("1.5:1.6:3") == (1.5, 1.55, 1.6)
