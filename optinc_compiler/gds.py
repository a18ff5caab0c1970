"""Reading a layout file (GDS or OASIS) for the checks: one rule for what the flow accepts.

A chip of this flow is one top cell (``optinc layout`` writes one) no larger than
``MAX_EXTENT_UM`` on a side: a box of 2^31 database units is legal GDS but its width
check would run for hours. Errors are one line naming the file and what is allowed.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from optinc_compiler.errors import InputError
from optinc_compiler.files import check_input_file

#: The largest chip the checks take, on a side: a 200 mm wafer.
MAX_EXTENT_UM = 200_000.0
#: Suffixes of the layout files the flow reads and writes.
LAYOUT_SUFFIXES = (".gds", ".oas")


#: KLayout's reader messages that name its source code, in the user's terms.
_READ_REASONS = {"topological_sort": "its cells place each other in a loop, so no cell is the top"}


@contextlib.contextmanager
def _klayout_log_hidden() -> Iterator[None]:
    """KLayout's C++ code logs internal errors to the process's stderr (file descriptor
    2, past Python's ``sys.stderr``) before it raises; the raised error is reported. Its
    warnings on a read that succeeds are hidden too (and any thread's fd-2 output meanwhile)."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to hide from
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def read_layout(path: Path) -> tuple[Any, Any]:
    """``(klayout.db.Layout, its one top cell)`` of a layout file; InputError unless it
    reads, has exactly one top cell and spans at most ``MAX_EXTENT_UM``."""
    import klayout.db as kdb

    check_input_file(path, what="layout file")
    layout = kdb.Layout()
    try:
        with _klayout_log_hidden():
            layout.read(str(path))
    except RuntimeError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "unreadable"
        why = next((text for key, text in _READ_REASONS.items() if key in first), first)
        raise InputError(f"{str(path)!r} is not a readable GDS/OASIS file ({why})") from None
    tops = layout.top_cells()
    if not tops:
        raise InputError(f"{str(path)!r} has no top cell (an empty layout); a chip has one")
    if len(tops) > 1:
        names = ", ".join(repr(n) for n in sorted(c.name for c in tops)[:4]) + (
            " ..." if len(tops) > 4 else ""
        )
        raise InputError(f"{str(path)!r} has {len(tops)} top cells ({names}); a chip has one")
    box = tops[0].dbbox()
    if max(box.width(), box.height()) > MAX_EXTENT_UM:
        raise InputError(
            f"{str(path)!r} spans {box.width():,.0f} x {box.height():,.0f} um; the checks take at most "
            f"{MAX_EXTENT_UM:,.0f} um on a side"
        )
    return layout, tops[0]
