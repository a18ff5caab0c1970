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
