"""Layout files the checks refuse with one line: several or no top cells, a box of
2^31 database units, a truncated file, a FIFO; for drc, lvs, verify and program --gds."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
from click.testing import CliRunner

kdb = pytest.importorskip("klayout.db")

from optinc_compiler.cli import main  # noqa: E402


def _two_tops(path):
    layout = kdb.Layout()
    for name in ("B", "A"):
        layout.create_cell(name).shapes(layout.layer(1, 0)).insert(kdb.Box(0, 0, 100, 100))
    layout.write(str(path))


def _huge(path):
    layout = kdb.Layout()
    top = layout.create_cell("TOP")
    top.shapes(layout.layer(1, 0)).insert(kdb.Box(-(2**31) + 1, 0, 2**31 - 1, 1000))
    layout.write(str(path))


CASES = {
    "two": (_two_tops, "{p!r} has 2 top cells ('A', 'B'); a chip has one"),
    "none": (lambda p: kdb.Layout().write(str(p)), "{p!r} has no top cell (an empty layout); a chip has one"),
    "huge": (_huge, "{p!r} spans 4,294,967 x 1 um; the checks take at most 200,000 um on a side"),
    "fifo": (lambda p: os.mkfifo(p), "layout file {p!r} is a FIFO, not a regular file"),
}


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gds")
    np.save(folder / "W.npy", np.eye(2))
    assert (
        CliRunner().invoke(main, ["compile", str(folder / "W.npy"), "-o", str(folder / "p.json")]).exit_code
        == 0
    )
    return folder / "p.json"


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("command", ["drc", "lvs", "verify", "program"])
def test_unusable_layouts_are_one_line(tmp_path, program, case, command):
    make, message = CASES[case]
    path = tmp_path / f"{case}.gds"
    make(path)
    args = {
        "drc": ["drc", str(path)],
        "lvs": ["lvs", str(path), str(program)],
        "verify": ["verify", str(path), "--program", str(program)],
        "program": ["program", str(program), "--gds", str(path), "-o", str(tmp_path / "h.csv")],
    }[command]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert re.fullmatch(re.escape(f"Error: {message.format(p=str(path))}") + "\n", result.stderr), (
        result.stderr
    )


LABELS = {
    "newline": "W_V_c0_m0_theta\nx",
    "long": "L" * 60_000,  # near the GDS string limit (65,535 bytes)
}


@pytest.mark.parametrize("case", sorted(LABELS))
def test_drc_quotes_and_cuts_a_label_off_every_pad(tmp_path, case):
    """A label off every pad, holding a newline or 60,000 characters long: the one-line
    error names the file and quotes the label (escaped, cut in the middle)."""
    from optinc_compiler.guard import quote

    path = _labelled(tmp_path, LABELS[case])
    result = CliRunner().invoke(main, ["drc", str(path)])
    assert result.exit_code == 3
    assert result.stderr == (
        f"Error: {str(path)!r}: 1 violation(s); first: labels on TEXT at (0.000, 0.000) um: "
        f"label {quote(LABELS[case])} is not on a pad\n"
    )
    assert len(result.stderr) < 500


@pytest.mark.parametrize("case", sorted(LABELS))
def test_unused_pads_are_quoted_and_cut(case):
    from optinc_compiler.calibration import PadCheck
    from optinc_compiler.guard import quote

    check = PadCheck(missing=(), unused=(LABELS[case],))
    assert (
        check.problem() == f"0 heater(s) without a pad, 1 unused pad(s); pad {quote(LABELS[case])} is unused"
    )
    assert "\n" not in check.problem()
    assert len(check.problem()) < 300


def test_program_gds_with_a_long_label_is_one_line(tmp_path, program):
    path = _labelled(tmp_path, LABELS["long"])
    result = CliRunner().invoke(
        main, ["program", str(program), "--gds", str(path), "-o", str(tmp_path / "h.csv")]
    )
    assert result.exit_code == 3
    assert result.stderr == (
        f"Error: {str(path)!r}: 4 heater(s) without a pad, 1 unused pad(s); "
        "heater 'W_U_c0_m0_phi' has no pad label\n"
    )
    assert not (tmp_path / "h.csv").exists()


def _labelled(folder, label):
    """A GDS of one box and one label (on the label layer, off every pad)."""
    from pdk import tech

    layout = kdb.Layout()
    top = layout.create_cell("TOP")
    top.shapes(layout.layer(1, 0)).insert(kdb.Box(0, 0, 1000, 1000))
    top.shapes(layout.layer(*tech.LAYERS["TEXT"])).insert(kdb.Text(label, kdb.Trans(0, 0)))
    path = folder / "x.gds"
    layout.write(str(path))
    return path


def test_cells_that_place_each_other_are_one_line_without_klayouts_log(tmp_path, capfd):
    """KLayout logs "ERROR: src/db/db/dbLayout.cc ... topological_sort" on fd 2 and raises
    an "Internal error": the user sees one line about the file."""
    import importlib.util
    import sys
    from pathlib import Path

    tools = Path(__file__).resolve().parents[1] / "tools" / "attack_cli.py"
    spec = importlib.util.spec_from_file_location("attack_cli_gds", tools)
    assert spec is not None
    assert spec.loader is not None
    ac = importlib.util.module_from_spec(spec)
    sys.modules["attack_cli_gds"] = ac
    spec.loader.exec_module(ac)
    path = tmp_path / "x.gds"
    path.write_bytes(ac.gds_library([ac.gds_structure("A", refs=["B"]), ac.gds_structure("B", refs=["A"])]))
    from optinc_compiler.errors import InputError
    from optinc_compiler.gds import read_layout

    capfd.readouterr()
    with pytest.raises(InputError) as info:
        read_layout(path)
    assert str(info.value) == (
        f"{str(path)!r} is not a readable GDS/OASIS file "
        "(its cells place each other in a loop, so no cell is the top)"
    )
    assert capfd.readouterr() == ("", "")
