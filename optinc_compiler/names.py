"""What a user-supplied name may hold (layer, design and calibration names): any text
of 1 to ``MAX_NAME_CHARS`` characters without control characters. Names reach CSV
comment lines, JSON, HTML and log lines; a newline in one could forge a row of
heaters.csv, so they are refused where they are read, not escaped downstream only."""

from __future__ import annotations

import re

from optinc_compiler.errors import InputError
from optinc_compiler.files import shorten

MAX_NAME_CHARS = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def name_problem(name: object, *, what: str) -> str | None:
    """Why ``name`` cannot be a ``what`` name, or None."""
    if not isinstance(name, str) or not name:
        return f"{what} name {shorten(name)} must be non-empty text"
    if len(name) > MAX_NAME_CHARS:
        return f"{what} name {shorten(name)} is longer than {MAX_NAME_CHARS} characters"
    if _CONTROL.search(name):
        return f"{what} name {shorten(name)} holds a control character (newline, tab, ...)"
    return None


def check_name(name: object, *, what: str) -> str:
    """``name`` if it is a valid name, else InputError saying why."""
    problem = name_problem(name, what=what)
    if problem is not None:
        raise InputError(problem)
    assert isinstance(name, str)
    return name
