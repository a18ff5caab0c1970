"""Guards for values that come from outside: short quotes in messages, JSON read with
stated limits, typed fields of JSON documents (paths and files: ``files``).

Every limit is a named constant here or next to the loader that uses it, and the
message of the error it raises states it. Nothing here imports numpy or click.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from optinc_compiler.errors import InputError

#: Characters of a value that a message quotes; longer ones are cut in the middle.
MAX_QUOTED = 200
#: Largest JSON file read (bytes): the biggest file the tools write (a lookup of 4M
#: entries) is ~40 MB.
MAX_JSON_BYTES = 64 * 1024 * 1024
#: Deepest nesting of lists and objects in a JSON file: what Python's parser takes
#: (its recursion limit, 1,000 less the calls already on the stack); the tools write 4.
MAX_JSON_DEPTH = "the JSON parser's recursion limit (under 1,000 levels)"
#: Integers in JSON files must fit in int64 (numpy's and the file formats' integers):
#: the typed getters below check every field they return against its own range.
INT64_MAX = 2**63 - 1


def quote(value: object) -> str:
    """``repr(str(value))``, cut in the middle beyond :data:`MAX_QUOTED` characters (the
    message then says how long the value was)."""
    text = repr(str(value))
    if len(text) <= MAX_QUOTED:
        return text
    head, tail = MAX_QUOTED * 2 // 3, MAX_QUOTED // 4
    return f"{text[:head]}...{text[-tail:]} ({len(str(value)):,} characters)"


def brief(value: object) -> str:
    """``str(value)`` for a message (a list, a shape), cut in the middle beyond
    :data:`MAX_QUOTED` characters."""
    text = str(value)
    if len(text) <= MAX_QUOTED:
        return text
    return f"{text[: MAX_QUOTED * 2 // 3]}...{text[-MAX_QUOTED // 4 :]} ({len(text):,} characters)"


def number(value: float) -> str:
    """A number for a message: ints of more than 30 digits shortened."""
    text = str(value) if type(value) is int else f"{value:g}"
    return text if len(text) <= 30 else f"{text[:12]}...{text[-6:]} ({len(text):,} digits)"


def _reject_constant(name: str) -> float:
    raise InputError(f"{name}; allowed: finite numbers")


def parse_int(text: str) -> int:
    """``parse_int`` for :func:`json.loads`: an integer past Python's digit limit for
    text (4,300 digits) is an InputError, not the ValueError that advises a sys call."""
    digits, limit = len(text.lstrip("-")), sys.get_int_max_str_digits()  # limit 0: none
    if limit and digits > limit:
        raise InputError(f"an integer of {digits:,} digits; allowed: -2^63 .. 2^63 - 1")
    return int(text)


def unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for :func:`json.loads`: a key given twice in one object is
    an InputError (json keeps the last silently, so a typo'd file would mean the other)."""
    doc: dict[str, Any] = {}
    for key, value in pairs:
        if key in doc:
            raise InputError(f"key {quote(key)} appears twice in one object")
        doc[key] = value
    return doc


def loads_json(data: bytes | str, *, source: str) -> Any:
    """Parse JSON text with the limits of this module; InputError naming ``source``
    (already quoted) for anything else: not UTF-8, too deep, NaN, big integers, syntax."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if len(raw) > MAX_JSON_BYTES:
        raise InputError(f"{source} has {len(raw):,} bytes; allowed: at most {MAX_JSON_BYTES:,}")
    try:
        text = raw.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{source} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        ) from None
    try:
        doc = json.loads(
            text, parse_constant=_reject_constant, parse_int=parse_int, object_pairs_hook=unique_object
        )
    except InputError as exc:
        raise InputError(f"{source}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{source} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise InputError(f"{source} nests lists or objects too deep; allowed: {MAX_JSON_DEPTH}") from None
    return doc


def read_json(path: Path, *, what: str) -> Any:
    """The JSON document in ``path`` (``what``: "lookup file", for the messages)."""
    source = f"{what} {quote(path)}"
    try:
        if not path.is_file():
            raise InputError(f"{source} does not exist" if not path.exists() else f"{source} is not a file")
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise InputError(f"{source} has {size:,} bytes; allowed: at most {MAX_JSON_BYTES:,}")
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror}") from None
    return loads_json(data, source=source)


# ------------------------------------------------------------------ typed fields


def get(doc: dict[str, Any], key: str, *, source: str) -> Any:
    """``doc[key]``, or InputError naming the missing field."""
    if key not in doc:
        raise InputError(f"{source} has no field {quote(key)}")
    return doc[key]


def as_int(value: Any, *, what: str, lo: int, hi: int) -> int:
    """An integer (not a bool, not a float) in ``lo .. hi``."""
    if type(value) is not int:
        raise InputError(f"{what} is {_kind(value)}; allowed: an integer {lo} .. {hi}")
    if not lo <= value <= hi:
        raise InputError(f"{what} is {number(value)}; allowed: {lo} .. {hi}")
    return value


def as_float(value: Any, *, what: str, lo: float, hi: float) -> float:
    """A finite number (int or float, not a bool) in ``[lo, hi]``."""
    if type(value) not in (int, float):
        raise InputError(f"{what} is {_kind(value)}; allowed: a number {lo:g} .. {hi:g}")
    if not lo <= value <= hi:
        raise InputError(f"{what} is {value:g}; allowed: {lo:g} .. {hi:g}")
    return float(value)


def as_str(value: Any, *, what: str, choices: tuple[str, ...] | None = None) -> str:
    """A string, one of ``choices`` if given."""
    if type(value) is not str:
        raise InputError(f"{what} is {_kind(value)}; allowed: a string")
    if choices is not None and value not in choices:
        raise InputError(f"{what} is {quote(value)}; allowed: {', '.join(choices)}")
    return value


def as_bool(value: Any, *, what: str) -> bool:
    """true or false."""
    if type(value) is not bool:
        raise InputError(f"{what} is {_kind(value)}; allowed: true or false")
    return value


def as_list(value: Any, *, what: str, max_len: int) -> list[Any]:
    """A list of at most ``max_len`` items."""
    if type(value) is not list:
        raise InputError(f"{what} is {_kind(value)}; allowed: a list")
    if len(value) > max_len:
        raise InputError(f"{what} has {len(value):,} items; allowed: at most {max_len:,}")
    return value


def as_dict(value: Any, *, what: str) -> dict[str, Any]:
    """A JSON object."""
    if type(value) is not dict:
        raise InputError(f"{what} is {_kind(value)}; allowed: an object")
    return value


def _kind(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    names.update({list: "a list", dict: "an object", type(None): "null"})
    return names.get(type(value), type(value).__name__)
