"""Where an aggregator design folder is, for every command that takes one (``--design``).

A design folder (``optinc aggregator train -o``, :mod:`.export`) holds ``program.json``,
``electronics.json``, ``lut.json`` and ``weights.npz``. It is named by a path, absolute or
relative to the current folder. When that path does not exist and is a bare name or
``designs/<name>``, the ``designs/`` folder next to the package is looked in too: it exists
in a checkout or an editable install, not in an installed wheel (nothing is downloaded).
Pure path logic: no numpy, so the CLI can resolve a folder before loading anything.
"""

from __future__ import annotations

from pathlib import Path

from optinc_compiler.errors import InputError
from optinc_compiler.files import path_kind
from optinc_compiler.guard import quote

#: The files of a design folder (:mod:`.export` writes them).
PROGRAM_FILE, ELECTRONICS_FILE, LUT_FILE = "program.json", "electronics.json", "lut.json"
#: ``designs/`` of this checkout (absent from an installed wheel).
CHECKOUT_DESIGNS = Path(__file__).resolve().parents[2] / "designs"


def find_design(design: Path, *, needs: str, checkout_designs: Path = CHECKOUT_DESIGNS) -> Path:
    """The design folder ``design`` names: the path itself, else ``checkout_designs/<name>``.

    Args:
        design: the folder as the user wrote it.
        needs: the files the caller reads, for the message (``"lut.json"``).
        checkout_designs: the checkout's ``designs/`` folder (used only if it exists).

    Raises:
        InputError: one line saying what was expected and where it looked.
    """
    kind = path_kind(design, what="design")
    if kind == "folder":
        return design
    expected = f"expected a design folder with {needs} (made by optinc aggregator train)"
    if kind == "file":
        raise InputError(f"design {quote(design)} is a file, not a folder: {expected}")
    where = f"at {quote(design.absolute())[1:-1]}"
    name = _checkout_name(design)
    if name is not None and checkout_designs.is_dir():
        if path_kind(checkout_designs / name, what="design") == "folder":
            return checkout_designs / name
        where += f" or in {checkout_designs}"
    raise InputError(f"design {quote(design)} not found: {expected} {where}")


def _checkout_name(design: Path) -> str | None:
    """``name`` for a relative ``name`` or ``designs/name``, else None."""
    parts = design.parts
    if design.is_absolute() or not 1 <= len(parts) <= 2 or parts[-1] in (".", ".."):
        return None
    if len(parts) == 2 and parts[0] != "designs":
        return None
    return parts[-1]
