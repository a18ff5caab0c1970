"""Adversarial attack harness for the ``optinc`` command line.

Every subcommand is run as a subprocess, with a timeout, on bad inputs generated here at
run time (nothing is committed, and no payload runs code when loaded except the one
pickle whose ``__reduce__`` would create an empty marker file in its case folder, which
must never appear). Each run is classified:

* HANDLED: exit 1, 2 or 3 with a short, clear message on stderr (no traceback, no Python
  exception class, no library internals), no input changed, no temporary or half-written
  file left and no output left behind by an error; or exit 0 where the input is harmless.
* DEFECT: a traceback, a hang, a crash, exit 0 on an input that must be refused, a changed
  input, temporaries or partial outputs left, the marker file created.
* REVIEW: ambiguous (a harmless input refused, library text quoted in a clear message, a
  warning printed, exit 0 on an input that should probably be refused...), with the reason.

Every attack states what it expects (``refuse``, ``should-refuse``, ``either``,
``accept``), shown in the report. The .pt attacks run only where torch is importable;
the read-only-folder attacks are skipped as root (chmod does not stop root).

Usage (from the repository root; ``PYTHONPATH`` picks the code under test, default this
checkout)::

    python tools/attack_cli.py --out /tmp/attack --jobs 2 [--only compile]

Writes ``OUT/report.md`` (a table per subcommand, every defect with a one-line
reproduction, the runs to review) and ``OUT/results.json`` (every run), keeps the case
folders of the defects and reviews under ``OUT/cases``, and prints the table.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import pickle
import re
import shlex
import shutil
import signal
import stat
import struct
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HANDLED, DEFECT, REVIEW, SKIPPED = "HANDLED", "DEFECT", "REVIEW", "SKIPPED"
#: What an attack expects: refused (exit 0 is a defect), should be refused (exit 0 is to
#: review), either outcome if clean, accepted (a clean refusal is to review).
REFUSE, SHOULD_REFUSE, EITHER, ACCEPT = "refuse", "should-refuse", "either", "accept"

COMMANDS = (
    "compile",
    "inspect",
    "check",
    "program",
    "layout",
    "drc",
    "lvs",
    "verify",
    "build",
    "aggregator train",
    "aggregator eval",
    "ddp-experiment",
    "ddp-compare",
    "comm-model",
    "pdks",
)
#: stderr longer than this (without progress lines) is not "short clear line(s)".
MAX_STDERR_CHARS = 2000
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
ROOT_SKIP = "running as root: chmod does not stop root from writing"
HUGE = 10**12
LONG_NAME = "n" * 100_000

# --- classification ---------------------------------------------------------------------

#: stderr text that is never a user-facing message.
STRONG_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"Traceback \(most recent call last\)"), "Python traceback"),
    (re.compile(r'^\s*File "[^"]*", line \d+', re.M), "Python source location"),
    (
        re.compile(
            r"(?<![\w.])(?:(?:[A-Z][a-z0-9]+)+(?:Error|Exception)|BadZipFile|StopIteration|"
            r"KeyboardInterrupt)(?=[:(]|\s*$)",
            re.M,
        ),
        "Python exception class name",
    ),
    (re.compile(r"Exception ignored in"), "exception ignored at shutdown"),
    (re.compile(r"Fatal Python error|Segmentation fault|core dumped"), "interpreter crash"),
    (re.compile(r"site-packages/"), "library source path"),
    # a library's own assertion or bug-report text: nothing a user can act on
    (
        re.compile(r"Internal error|\b[\w/]+\.(?:cc|cpp|cxx|h|hpp):\d+|internal miniz error"),
        "library-internal error text",
    ),
)
#: Python warnings printed by libraries (``file.py:12: RuntimeWarning: ...``).
WARNING_PATTERN = re.compile(r"(?:^\S+\.py:\d+: )?\b[A-Z]\w*Warning: ", re.M)
#: Phrases of library messages (numpy, zipfile, yaml, pickle, klayout, jax) and Python's
#: advice: a clear one-line message quoting them is to review, not a defect. (The json
#: parser's "Expecting ',' delimiter: line 3 column 5" names the place: not flagged.)
WEAK_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"set_int_max_str_digits"), "Python's own advice"),
    (
        re.compile(
            r"allow_pickle|Object arrays cannot|cannot reshape array|could not convert string|"
            r"invalid literal for|Failed to interpret file|buffer is smaller|np\.\w+\("
        ),
        "numpy text",
    ),
    (
        re.compile(
            r"while (?:parsing|scanning|constructing)|mapping values are not allowed|<unicode string>"
        ),
        "yaml parser text",
    ),
    (
        re.compile(
            r"Weights only load failed|Unsupported global|weights_only|_pickle|torch\._|"
            r"PytorchStreamReader|miniz"
        ),
        "torch/pickle text",
    ),
    (re.compile(r"gdsfactory|kfactory|\bkdb\."), "gdsfactory/klayout text"),
    (re.compile(r"\bjaxlib\b|\bXlaRuntime|jax\._src"), "jax text"),
    (re.compile(r"<[\w.]+ object at 0x[0-9a-f]+>"), "Python object repr"),
)
#: Names of half-written or temporary files (the product's are ``.~{pid}.{digest}.tmp.x``).
TEMP_NAME = re.compile(r"(?:^\.~|\.tmp(?:\.|$)|\.part$|\.partial$|~$|^tmp[a-z0-9_]{6,}$)")
LOCK_NAME = ".optinc-build.lock"
#: Lines of build progress on stderr (stage, status, seconds): not error text.
PROGRESS_LINE = re.compile(
    r"^\s*(?:compile|layout|drc|lvs|verify|heaters|report)\s+(?:done|failed|running|skipped)\b"
)


@dataclass
class RunResult:
    """What one run did: exit, output and what changed in its case folder."""

    returncode: int | None
    timed_out: bool
    seconds: float
    stdout: str
    stderr: str
    stderr_chars: int = 0  # before the tail kept in ``stderr``
    modified: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    created_outputs: list[str] = field(default_factory=list)
    marker_created: bool = False
    stray_processes: bool = False
    findings: list[tuple[str, str]] = field(default_factory=list)  # (DEFECT|REVIEW, reason) of checks


def error_text(stderr: str) -> str:
    """stderr without build progress lines."""
    return "\n".join(line for line in stderr.splitlines() if not PROGRESS_LINE.match(line)).strip()


def classify(
    result: RunResult, expect: str, *, timeout_verdict: str = DEFECT, timeout_s: float | None = None
) -> tuple[str, list[str]]:
    """The verdict of one run against its expectation, with the reasons."""
    defects: list[str] = []
    reviews: list[str] = []
    if result.timed_out:
        message = f"no exit within {timeout_s or result.seconds:.0f} s (killed)"
        (defects if timeout_verdict == DEFECT else reviews).append(message)
    if result.marker_created:
        defects.append("the marker file was created: the payload's code ran")
    if result.modified:
        defects.append("input changed: " + ", ".join(result.modified[:5]))
    if result.leftovers:
        defects.append("temporary/half-written files left: " + ", ".join(result.leftovers[:5]))
    if result.stray_processes:
        defects.append("child processes still running after the command exited")
    if result.created_outputs and result.returncode in (1, 2):
        defects.append("output left behind by an error: " + ", ".join(result.created_outputs[:5]))
    for pattern, label in STRONG_PATTERNS:
        if pattern.search(result.stderr):
            defects.append(f"stderr shows a {label}")
    rc = result.returncode
    text = error_text(result.stderr)
    chars = max(len(text), result.stderr_chars - (len(result.stderr) - len(text)))
    if rc is not None:
        if rc < 0:
            defects.append(f"killed by signal {-rc}")
        elif rc not in (0, 1, 2, 3):
            defects.append(f"unexpected exit code {rc}")
        elif rc == 0:
            if expect == REFUSE:
                defects.append("exit 0 on an input that must be refused")
            elif expect == SHOULD_REFUSE:
                reviews.append("exit 0 on an input that should probably be refused")
        else:
            if not text:
                (reviews if result.stdout.strip() else defects).append(
                    f"exit {rc} without a message on stderr"
                )
            if chars > 10 * MAX_STDERR_CHARS:
                defects.append(f"stderr has {chars:,} characters (floods the terminal)")
            elif chars > MAX_STDERR_CHARS:
                reviews.append(f"stderr has {chars:,} characters (not a short message)")
            if expect == ACCEPT and not defects:
                reviews.append(f"exit {rc} on an input expected to be accepted")
    if WARNING_PATTERN.search(result.stderr):
        reviews.append("a Python warning is printed")
    for pattern, label in WEAK_PATTERNS:
        if pattern.search(result.stderr):
            reviews.append(f"the message quotes {label}")
    for verdict, reason in result.findings:
        (defects if verdict == DEFECT else reviews).append(reason)
    if defects:
        return DEFECT, defects
    return (REVIEW, reviews) if reviews else (HANDLED, [])


# --- running ----------------------------------------------------------------------------

Check = Callable[[RunResult, Path], "tuple[str, str] | None"]


@dataclass
class Case:
    """One prepared run: arguments (after the base command) and what to check.

    ``outputs``: files the command is asked to write (may change on exit 0 or 3; must not
    appear on exit 1 or 2 unless ``partial_ok``). ``marker``: must never exist.
    ``stdout_file``: where stdout goes instead of a pipe (``/dev/full``).
    """

    argv: list[str | bytes]
    outputs: list[Path] = field(default_factory=list)
    marker: Path | None = None
    stdout_file: str | None = None
    checks: list[Check] = field(default_factory=list)
    partial_ok: bool = False
    skip: str | None = None
    cleanup: Callable[[], None] | None = None
    shown: str | None = None  # the reproduction's arguments when argv is unreadable


@dataclass
class Attack:
    """A named attack on one subcommand: ``make`` prepares its case in a fresh folder."""

    command: str
    name: str
    description: str
    make: Callable[[Path], Case]
    expect: str = REFUSE
    timeout: float = 60.0
    timeout_verdict: str = DEFECT

    @property
    def id(self) -> str:
        """``command/name`` with the command's spaces as dashes."""
        return f"{self.command.replace(' ', '-')}/{self.name}"


def _digest(path: Path, size: int) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        if size <= 64 * 2**20:
            for chunk in iter(lambda: f.read(2**20), b""):
                h.update(chunk)
        else:  # a sparse giant: ends and size
            h.update(f.read(2**20))
            f.seek(size - 2**20)
            h.update(f.read(2**20))
    return h.hexdigest()


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under ``folder`` (links not followed, FIFOs never opened) with a
    fingerprint: file contents' hash, link target, or the kind."""
    state: dict[str, str] = {}
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            path = Path(root) / name
            rel = str(path.relative_to(folder))
            try:
                st = path.lstat()
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                try:
                    state[rel] = f"file:{st.st_size}:{_digest(path, st.st_size)}"
                except OSError:
                    state[rel] = f"file:{st.st_size}:unreadable"
            elif stat.S_ISLNK(st.st_mode):
                state[rel] = "link:" + os.readlink(path)
            else:
                state[rel] = f"kind:{stat.S_IFMT(st.st_mode)}"
    return state


def _group_alive(pgid: int) -> bool:
    """Whether a live (not zombie) process is left in the process group ``pgid``."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def execute(
    case: Case, cwd: Path, base: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 60.0
) -> RunResult:
    """Run ``base + case.argv`` in ``cwd`` (its own process group, stdin empty), kill it
    after ``timeout``, and compare the folder before and after."""
    before = snapshot(cwd)
    outputs_before = {p: _exists(p) for p in case.outputs}
    stdout_target: Any = subprocess.PIPE
    opened = None
    if case.stdout_file is not None:
        opened = open(case.stdout_file, "wb")  # noqa: SIM115  # closed below
        stdout_target = opened
    start = time.monotonic()
    timed_out = False
    proc = subprocess.Popen(
        [*base, *case.argv],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=stdout_target,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc.pid)
        out, err = proc.communicate()
    finally:
        if opened is not None:
            opened.close()
    seconds = time.monotonic() - start
    stray = False
    if not timed_out:
        for _ in range(30):  # 3 s for children that are exiting
            if not _group_alive(proc.pid):
                break
            time.sleep(0.1)
        else:
            stray = True
            _kill_group(proc.pid)
    after = snapshot(cwd)
    output_rels = {str(p.relative_to(cwd)) for p in case.outputs if p.is_relative_to(cwd)}
    result = RunResult(
        returncode=None if timed_out else proc.returncode,
        timed_out=timed_out,
        seconds=round(seconds, 2),
        stdout=(out or b"").decode("utf-8", "replace")[-4000:],
        stderr=(err or b"").decode("utf-8", "replace")[-20000:],
        stderr_chars=len((err or b"").decode("utf-8", "replace")),
        stray_processes=stray,
    )
    may_change = result.returncode in (0, 3) or case.partial_ok
    for rel, print_ in before.items():
        if after.get(rel) != print_ and not (may_change and _under(rel, output_rels)):
            result.modified.append(rel if rel in after else rel + " (deleted)")
    for rel in after:
        if rel not in before and TEMP_NAME.search(Path(rel).name):
            result.leftovers.append(rel)
    for p, existed in outputs_before.items():
        if not existed and _exists(p) and not case.partial_ok:
            result.created_outputs.append(str(p.relative_to(cwd)) if p.is_relative_to(cwd) else str(p))
    result.marker_created = case.marker is not None and case.marker.exists()
    for check in case.checks:
        finding = check(result, cwd)
        if finding is not None:
            result.findings.append(finding)
    return result


def _exists(path: Path) -> bool:
    """Whether ``path`` names anything (a link included); False for unusable names."""
    try:
        path.lstat()
    except OSError:
        return False
    return True


def _under(rel: str, outputs: set[str]) -> bool:
    return any(rel == o or rel.startswith(o + os.sep) for o in outputs)


def shell_arg(arg: str | bytes) -> str:
    """One argument as the shell would need it, long runs of one character written as a
    ``$(python3 ...)`` expansion so that the reproduction stays one short line."""
    if isinstance(arg, bytes):
        try:
            arg = arg.decode("utf-8")
        except UnicodeDecodeError:
            return (
                "$'"
                + "".join(chr(b) if 32 <= b < 127 and b not in b"'\\" else f"\\x{b:02x}" for b in arg)
                + "'"
            )
    if len(arg) > 120:
        m = max(re.finditer(r"(.)\1*", arg, re.S), key=lambda x: len(x.group()))
        run = m.group()
        expr = f'"$(python3 -c \'print({run[0]!r}*{len(run)}, end="")\')"'
        return shell_arg(arg[: m.start()])[:60] + expr + shell_arg(arg[m.end() :])[:60]
    if any(ord(c) < 32 or ord(c) == 127 for c in arg):
        return (
            "$'"
            + "".join(c if 32 <= ord(c) < 127 and c not in "'\\" else f"\\x{ord(c):02x}" for c in arg)
            + "'"
        )
    return shlex.quote(arg) if arg else "''"


# --- payload builders -------------------------------------------------------------------


def npy_bytes(
    descr: str,
    shape: tuple[int, ...],
    data: bytes,
    *,
    fortran: bool = False,
    version: int = 1,
    header: str | None = None,
) -> bytes:
    """A .npy file with any header (true or not) followed by ``data``."""
    text = (
        header
        if header is not None
        else f"{{'descr': {descr!r}, 'fortran_order': {fortran}, 'shape': {shape!r}, }}"
    )
    size_bytes = 2 if version == 1 else 4
    pad = -(10 + size_bytes - 2 + len(text) + 1) % 64
    text = text + " " * pad + "\n"
    length = len(text).to_bytes(size_bytes, "little")
    return b"\x93NUMPY" + bytes([version, 0]) + length + text.encode("latin-1") + data


def npy_of(array: np.ndarray) -> bytes:
    """np.save of ``array`` as bytes (object arrays pickled: only plain numbers here)."""
    import io

    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=array.dtype.hasobject)
    return buf.getvalue()


def zip_bytes(members: Iterable[tuple[str, bytes]], *, compress: bool = False) -> bytes:
    """A zip (an .npz when members are .npy) with exactly these members, duplicates kept."""
    import io
    import warnings

    buf = io.BytesIO()
    mode = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w", mode) as zf:
        warnings.simplefilter("ignore")  # "Duplicate name"
        for name, data in members:
            zf.writestr(name, data)
    return buf.getvalue()


def zip_of_zeros(path: Path, rows: int, cols: int) -> None:
    """An .npz whose one deflated member holds a rows x cols float64 zero matrix (a few
    hundred kB on disk, rows * cols * 8 bytes inflated)."""
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf,
        zf.open("fc1.npy", "w", force_zip64=True) as f,
    ):
        f.write(npy_bytes("<f8", (rows, cols), b""))
        zero = bytes(2**20)
        left = rows * cols * 8
        while left > 0:
            f.write(zero[: min(left, len(zero))])
            left -= len(zero)


def gds_record(kind: int, dtype: int, data: bytes = b"") -> bytes:
    """One GDSII record: length, record type, data type, data."""
    if len(data) % 2:
        data += b"\0"
    return struct.pack(">HBB", 4 + len(data), kind, dtype) + data


def gds_real8(x: float) -> bytes:
    """A GDSII 8-byte real (excess-64, base 16)."""
    if x == 0:
        return bytes(8)
    sign, x, exp = (0x80 if x < 0 else 0), abs(x), 64
    while x >= 1:
        x, exp = x / 16, exp + 1
    while x < 1 / 16:
        x, exp = x * 16, exp - 1
    return bytes([sign | exp]) + int(x * 2**56).to_bytes(7, "big")


def _gds_int2(*values: int) -> bytes:
    return struct.pack(f">{len(values)}h", *values)


def _gds_int4(*values: int) -> bytes:
    return struct.pack(f">{len(values)}i", *values)


def gds_structure(name: str, *, refs: Sequence[str] = (), box: bool = True) -> bytes:
    """A cell: an optional 10 x 10 um box on layer 1/0 and references to ``refs``."""
    body = gds_record(0x05, 0x02, _gds_int2(*([2026, 1, 1, 0, 0, 0] * 2))) + gds_record(
        0x06, 0x06, name.encode()
    )
    if box:
        xy = _gds_int4(0, 0, 10000, 0, 10000, 10000, 0, 10000, 0, 0)
        body += (
            gds_record(0x08, 0x00)
            + gds_record(0x0D, 0x02, _gds_int2(1))
            + gds_record(0x0E, 0x02, _gds_int2(0))
        )
        body += gds_record(0x10, 0x03, xy) + gds_record(0x11, 0x00)
    for ref in refs:
        body += gds_record(0x0A, 0x00) + gds_record(0x12, 0x06, ref.encode())
        body += gds_record(0x10, 0x03, _gds_int4(0, 0)) + gds_record(0x11, 0x00)
    return body + gds_record(0x07, 0x00)


def gds_library(structures: Iterable[bytes]) -> bytes:
    """A GDSII library (um user unit, nm database unit) of these cells."""
    head = gds_record(0x00, 0x02, _gds_int2(600))
    head += gds_record(0x01, 0x02, _gds_int2(*([2026, 1, 1, 0, 0, 0] * 2)))
    head += gds_record(0x02, 0x06, b"ATTACK")
    head += gds_record(0x03, 0x05, gds_real8(1e-3) + gds_real8(1e-9))
    return head + b"".join(structures) + gds_record(0x04, 0x00)


def gds_add_structures(gds: bytes, structures: Iterable[bytes]) -> bytes:
    """``gds`` with more cells inserted before its ENDLIB record."""
    pos = 0
    while pos + 4 <= len(gds):
        length, kind = struct.unpack(">HB", gds[pos : pos + 3])
        if kind == 0x04:
            return gds[:pos] + b"".join(structures) + gds[pos:]
        if length < 4:
            break
        pos += length
    raise ValueError("no ENDLIB record")


class MarkerPayload:
    """Pickles to ``open(marker, 'w')``: unpickling it would create an empty file. Only
    pickled here, never loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (self.marker, "w"))


def torch_available() -> bool:
    """Whether this interpreter can write .pt payloads."""
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def bad_json_documents(valid: str) -> list[tuple[str, str, bytes, str]]:
    """Generic broken JSON documents made from a valid one: (name, description, bytes,
    expectation)."""
    doc = json.loads(valid)
    first_key = next(iter(doc)) if isinstance(doc, dict) else None
    nested = "[" * 100_000 + "]" * 100_000
    out: list[tuple[str, str, bytes, str]] = [
        ("empty", "an empty file", b"", REFUSE),
        ("truncated", "the first half of a valid document", valid.encode()[: len(valid) // 2], REFUSE),
        (
            "non-utf8",
            "a valid document with a 0xff byte in a string",
            valid.encode().replace(b'"', b'"\xff', 1),
            REFUSE,
        ),
        ("utf16", "the valid document encoded as UTF-16", valid.encode("utf-16"), REFUSE),
        ("bom", "the valid document with a UTF-8 byte order mark", b"\xef\xbb\xbf" + valid.encode(), EITHER),
        ("nul-bytes", "NUL bytes after the document", valid.encode() + b"\0" * 64, REFUSE),
        ("trailing-garbage", "the document followed by text", valid.encode() + b"\nthis is not json", REFUSE),
        ("deep-nesting", "100,000 nested lists", nested.encode(), REFUSE),
        ("top-list", "a JSON list instead of an object", b"[1, 2, 3]", REFUSE),
        ("top-null", "the literal null", b"null", REFUSE),
        ("top-string", "a JSON string", b'"optinc"', REFUSE),
        ("huge-int-literal", "a 5,000-digit integer literal", b'{"x": ' + b"9" * 5000 + b"}", REFUSE),
    ]
    if first_key is not None:
        dup = valid.replace("{", "{" + json.dumps(first_key) + ": " + json.dumps(doc[first_key]) + ", ", 1)
        out.append(("duplicate-key", f"the key {first_key!r} twice", dup.encode(), REFUSE))
        nested_value = dict(doc)
        out.append(
            (
                "deep-nesting-in-field",
                "a field holding 50,000 nested lists",
                (valid.rstrip()[:-1] + ', "zz": ' + "[" * 50_000 + "]" * 50_000 + "}").encode(),
                REFUSE,
            )
        )
        del nested_value
    return out


def walk_replace(doc: Any, key: str, value: Any, *, count: int = 1) -> Any:
    """A copy of ``doc`` with the first ``count`` occurrences of ``key`` set to ``value``."""
    left = [count]

    def go(x: Any) -> Any:
        if isinstance(x, dict):
            out = {}
            for k, v in x.items():
                if k == key and left[0] > 0:
                    left[0] -= 1
                    out[k] = value
                else:
                    out[k] = go(v)
            return out
        if isinstance(x, list):
            return [go(v) for v in x]
        return x

    return go(doc)


# --- fixtures ---------------------------------------------------------------------------


@dataclass
class Fixtures:
    """Valid inputs made once per run (by the code under test) that attacks copy and spoil."""

    root: Path
    code_root: Path
    weights: Path  # fc1, fc2: 2 x 2
    other: Path  # same names, other values
    w_npy: Path
    program: Path
    other_program: Path
    chip: Path
    cal_json: Path
    cal_csv: Path
    run_a: Path
    run_b: Path
    design: Path  # folder with design.yaml and weights.npz
    agg_design: Path
    lookup: Path  # 4 servers, 4 bits
    lookup2: Path  # 2 servers, 4 bits
    unitary: Path  # a 3 x 3 unitary's program (one layer, u3)
    foundry_chip: Path  # its chip on cornerstone-si220 (made when the pdks attacks run)

    def copy(self, source: Path, case: Path, name: str | None = None) -> Path:
        """``source`` (file or folder) copied into ``case``."""
        target = case / (name or source.name)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copyfile(source, target)
        return target


def put(case: Path, name: str, data: bytes | str) -> Path:
    """Write a payload file into the case folder."""
    path = case / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def fifo(case: Path, name: str) -> Path:
    """A named pipe nobody writes to: reading it would block forever."""
    path = case / name
    os.mkfifo(path)
    return path


def sparse(case: Path, name: str, size: int = 2**30, head: bytes = b"") -> Path:
    """A sparse file of ``size`` bytes (no disk used) starting with ``head``."""
    path = case / name
    with path.open("wb") as f:
        f.write(head)
        f.truncate(size)
    return path


def device_twin(case: Path, name: str) -> Path | None:
    """A character device node like /dev/null inside the case folder (None when mknod
    is not allowed)."""
    path = case / name
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except (OSError, AttributeError):
        return None
    return path


def no_raw_escape(result: RunResult, cwd: Path) -> tuple[str, str] | None:
    """An ESC character from the input does not reach the terminal unquoted."""
    if "\x1b" in result.stdout or "\x1b" in result.stderr:
        return DEFECT, "a raw ESC (terminal control sequence) from the input is printed"
    return None


def devnull_intact(result: RunResult, cwd: Path) -> tuple[str, str] | None:
    """/dev/null is still the null device (restored if a command replaced it)."""
    st = os.stat("/dev/null")
    if stat.S_ISCHR(st.st_mode):
        return None
    with contextlib.suppress(OSError):  # put the device back for everyone else
        os.remove("/dev/null")
        os.mknod("/dev/null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    return DEFECT, "/dev/null was replaced by a regular file (restored)"


def strict_json_output(path: Path) -> Check:
    """On exit 0 the output at ``path`` is strict JSON (no NaN or Infinity)."""

    def check(result: RunResult, cwd: Path) -> tuple[str, str] | None:
        if result.returncode != 0 or not path.is_file():
            return None

        def bad(token: str) -> float:
            raise ValueError(token)

        try:
            json.loads(path.read_text(encoding="utf-8"), parse_constant=bad)
        except ValueError as exc:
            return DEFECT, f"exit 0 but {path.name} is not strict JSON ({str(exc)[:60]})"
        return None

    return check


def absent_after(path: Path, why: str) -> Check:
    """``path`` does not exist after a nonzero exit."""

    def check(result: RunResult, cwd: Path) -> tuple[str, str] | None:
        if result.returncode not in (0, None) and path.exists():
            return DEFECT, f"{path.name} written although {why}"
        return None

    return check


def gone_after(path: Path, why: str) -> Check:
    """``path`` is removed by a successful run (to review when not)."""

    def check(result: RunResult, cwd: Path) -> tuple[str, str] | None:
        if result.returncode == 0 and path.exists():
            return REVIEW, f"{path.name} still there: {why}"
        return None

    return check


# --- the attacks ------------------------------------------------------------------------


def atk(
    command: str,
    name: str,
    description: str,
    make: Callable[[Path], Case],
    expect: str = REFUSE,
    timeout: float = 60.0,
    timeout_verdict: str = DEFECT,
) -> Attack:
    """Shorthand for :class:`Attack`."""
    return Attack(command, name, description, make, expect, timeout, timeout_verdict)


def output_attacks(
    command: str,
    argv: Callable[[Path, Path | str | bytes], Case],
    *,
    suffix: str,
    input_name: str | None,
    timeout: float = 60.0,
    readonly: bool = True,
    setup: Callable[[Path], object] | None = None,
) -> list[Attack]:
    """The output-path attacks of a command whose output file is chosen by ``argv(case,
    output)``; ``input_name``: the case's input file an output could name, which
    ``setup(case)`` puts in place before the output path is made."""
    attacks = []

    def simple(
        name: str, desc: str, target: Callable[[Path], Path | str | bytes], expect: str = REFUSE
    ) -> None:
        def make(case: Path) -> Case:
            if setup is not None:
                setup(case)
            return argv(case, target(case))

        attacks.append(atk(command, name, desc, make, expect, timeout))

    if input_name is not None:
        simple("out-is-input", f"the output names the input {input_name}", lambda c: c / input_name)

        def link_to_input(c: Path) -> Path:
            os.symlink(input_name, c / f"link{suffix}")
            return c / f"link{suffix}"

        simple("out-symlink-to-input", "the output is a symlink to the input", link_to_input)

        def hardlink(c: Path) -> Path:
            os.link(c / input_name, c / f"hard{suffix}")
            return c / f"hard{suffix}"

        simple("out-hardlink-to-input", "the output is a hard link of the input", hardlink)

    def devnull(c: Path) -> Case:
        case = argv(c, "/dev/null")
        case.checks.append(devnull_intact)
        return case

    attacks.append(atk(command, "out-dev-null", "the output is /dev/null", devnull, REFUSE, timeout))

    def twin(c: Path) -> Case:
        node = device_twin(c, f"nulldev{suffix}")
        if node is None:
            return Case([], skip="mknod not allowed here")
        return argv(c, node)

    attacks.append(
        atk(command, "out-device-node", "the output is a character device node", twin, REFUSE, timeout)
    )
    simple("out-fifo", "the output is a FIFO", lambda c: fifo(c, f"pipe{suffix}"))

    def folder(c: Path) -> Path:
        (c / f"dir{suffix}").mkdir()
        return c / f"dir{suffix}"

    simple("out-directory", "the output is an existing folder", folder)
    simple(
        "out-missing-folder", "the output's folder does not exist", lambda c: c / "no" / "such" / f"x{suffix}"
    )
    simple("out-name-100k", "an output name of 100,000 characters", lambda c: c / (LONG_NAME + suffix))
    simple("out-name-newline", "an output name with a newline", lambda c: c / f"new\nline{suffix}", EITHER)
    simple("out-name-unicode", "a unicode output name", lambda c: c / f"ünï✓-名{suffix}", EITHER)
    simple(
        "out-name-255",
        "an output name of 255 bytes (the most a name may have)",
        lambda c: c / ("a" * (255 - len(suffix)) + suffix),
        EITHER,
    )
    simple(
        "out-name-non-utf8",
        "an output name with the byte 0xff",
        lambda c: os.fsencode(c) + b"/bad\xff" + suffix.encode(),
        EITHER,
    )
    if readonly:

        def ro(c: Path) -> Case:
            if IS_ROOT:
                return Case([], skip=ROOT_SKIP)
            (c / "ro").mkdir()
            case = argv(c, c / "ro" / f"x{suffix}")
            os.chmod(c / "ro", 0o555)
            case.cleanup = lambda: os.chmod(c / "ro", 0o755)
            return case

        attacks.append(
            atk(command, "out-readonly-folder", "the output's folder is read-only", ro, REFUSE, timeout)
        )
    return attacks


def input_file_attacks(
    command: str, argv: Callable[[Path, Path | str], Case], *, suffix: str, timeout: float = 60.0
) -> list[Attack]:
    """Attacks on the kind of an input file chosen by ``argv(case, input)``."""
    attacks = []

    def simple(name: str, desc: str, target: Callable[[Path], Path | str], expect: str = REFUSE) -> None:
        attacks.append(atk(command, name, desc, lambda c: argv(c, target(c)), expect, timeout))

    simple(
        "in-fifo", "the input is a FIFO nobody writes to (must not hang)", lambda c: fifo(c, f"pipe{suffix}")
    )
    simple("in-directory", "the input is a folder", lambda c: (c / f"d{suffix}").mkdir() or c / f"d{suffix}")
    simple("in-missing", "the input does not exist", lambda c: c / f"missing{suffix}")
    simple("in-dev-zero", "the input is /dev/zero", lambda c: "/dev/zero")
    simple("in-empty", "the input is an empty file", lambda c: put(c, f"empty{suffix}", b""))
    simple(
        "in-sparse-1GiB", "the input is a 1 GiB (sparse) file of zeros", lambda c: sparse(c, f"big{suffix}")
    )

    def loop(c: Path) -> Path:
        os.symlink(f"loop{suffix}", c / f"loop{suffix}")
        return c / f"loop{suffix}"

    simple("in-symlink-loop", "the input is a symlink to itself", loop)
    simple("in-name-100k", "an input name of 100,000 characters", lambda c: c / (LONG_NAME + suffix))
    return attacks


def bad_values(
    command: str,
    option: str,
    values: Sequence[tuple[str, str]],
    base: Callable[[Path], list[str | bytes]],
    *,
    timeout: float = 60.0,
    timeout_verdict: str = DEFECT,
    outputs: Callable[[Path], list[Path]] | None = None,
) -> list[Attack]:
    """One attack per (value, expectation) of ``option`` added to ``base(case)``."""
    attacks = []
    for value, expect in values:
        slug = re.sub(r"[^A-Za-z0-9.+-]+", "_", value)[:24] or "empty"

        def make(c: Path, value: str = value) -> Case:
            return Case([*base(c), option, value], outputs=outputs(c) if outputs else [])

        attacks.append(
            atk(
                command,
                f"{option.lstrip('-')}={slug}",
                f"{option} {value}",
                make,
                expect,
                timeout,
                timeout_verdict,
            )
        )
    return attacks


NUMERIC_GARBAGE = [("nan", REFUSE), ("inf", REFUSE), ("-1", REFUSE), ("abc", REFUSE), ("", REFUSE)]


def weights_attacks(
    fx: Fixtures, command: str, run: Callable[[Path, Path], Case], *, full: bool, stem: str = "w"
) -> list[Attack]:
    """Attacks on a weights file named ``stem`` (its layer's name in .npy, .csv and .pt
    files): ``run(case, weights_path)`` builds the case. ``full``:
    every one (compile), else a sample."""
    rng = np.random.default_rng(7)
    two = rng.normal(size=(2, 2))
    f8 = two.astype("<f8").tobytes()
    items: list[tuple[str, str, Callable[[Path], Path], str]] = []

    def add(
        name: str, desc: str, make: Callable[[Path], Path], expect: str = REFUSE, fast: bool = False
    ) -> None:
        if full or fast:
            items.append((name, desc, make, expect))

    def arr(a: np.ndarray) -> Callable[[Path], Path]:
        return lambda c: put(c, f"{stem}.npy", npy_of(a))

    add(
        "npy-magic-only",
        "just the .npy magic",
        lambda c: put(c, f"{stem}.npy", b"\x93NUMPY\x01\x00"),
        fast=True,
    )
    add(
        "npy-lying-header-short-data",
        "header (2, 2) float64, 8 bytes of data",
        lambda c: put(c, f"{stem}.npy", npy_bytes("<f8", (2, 2), f8[:8])),
        fast=True,
    )
    add(
        "npy-huge-declared-shape",
        "header (10^9, 10^9) float64, 32 bytes of data",
        lambda c: put(c, f"{stem}.npy", npy_bytes("<f8", (10**9, 10**9), f8)),
        fast=True,
    )
    add(
        "npy-overflowing-shape",
        "header (2^62, 2^62): the size overflows int64",
        lambda c: put(c, f"{stem}.npy", npy_bytes("<f8", (2**62, 2**62), f8)),
    )
    add(
        "npy-negative-shape",
        "header shape (-1, 2)",
        lambda c: put(c, f"{stem}.npy", npy_bytes("<f8", (-1, 2), f8)),
    )
    add(
        "npy-header-code",
        "a header that is a call, not a literal (would create the marker if evaluated)",
        lambda c: put(
            c,
            f"{stem}.npy",
            npy_bytes(
                "", (), f8, header="{'descr': open('marker', 'w'), 'fortran_order': False, 'shape': (2, 2), }"
            ),
        ),
    )
    add(
        "npy-header-beyond-eof",
        "a header declaring 65,535 bytes in a 40-byte file",
        lambda c: put(c, f"{stem}.npy", b"\x93NUMPY\x01\x00\xff\xff{'descr': '<f8'"),
    )
    add(
        "npy-version-3",
        "a valid version 3.0 header",
        lambda c: put(c, f"{stem}.npy", npy_bytes("<f8", (2, 2), f8, version=3)),
        EITHER,
    )
    add(
        "npy-object-array",
        "an object array of plain ints (pickled)",
        arr(np.array([[1, 2], [3, 4]], dtype=object)),
        fast=True,
    )
    add("npy-complex", "a complex 2 x 2 matrix (valid)", arr(two + 1j * two.T), ACCEPT)
    add("npy-nan", "a matrix with a NaN", arr(np.array([[1.0, np.nan], [0.0, 1.0]])), fast=True)
    add("npy-inf", "a matrix with an inf", arr(np.array([[1.0, np.inf], [0.0, 1.0]])))
    add(
        "npy-complex-nan",
        "a complex matrix with NaN imaginary part",
        arr(np.array([[1, complex(0, np.nan)], [0, 1]])),
    )
    add("npy-0d", "a 0-d array", arr(np.array(3.0)), fast=True)
    add("npy-1d", "a 1-d array", arr(np.arange(4.0)), SHOULD_REFUSE)
    add("npy-3d", "a 2 x 2 x 2 array", arr(np.ones((2, 2, 2))), fast=True)
    add("npy-empty-shape", "a 0 x 2 array", arr(np.ones((0, 2))))
    add("npy-strings", "an array of strings", arr(np.array([["a", "b"], ["c", "d"]])))
    add("npy-structured", "a structured dtype", arr(np.zeros((2, 2), dtype=[("a", "<f8"), ("b", "<i4")])))
    add("npy-datetime", "a datetime64 matrix", arr(np.zeros((2, 2), dtype="datetime64[s]")))
    add("npy-bool", "a boolean matrix", arr(np.eye(2, dtype=bool)), EITHER)
    add("npy-int64", "an integer matrix", arr(np.array([[1, 2], [3, 4]])), EITHER)
    add("npy-float16", "a float16 matrix", arr(two.astype(np.float16)), EITHER)
    add("npy-big-endian", "a big-endian float64 matrix (valid)", arr(two.astype(">f8")), ACCEPT)
    add(
        "npy-fortran-order",
        "a Fortran-order matrix (valid)",
        arr(np.asfortranarray(rng.normal(size=(2, 3)))),
        ACCEPT,
    )
    add(
        "npy-huge-values",
        "finite values near the float64 maximum",
        arr(np.full((2, 2), 1e308) * np.array([[1, -1], [1, 1]])),
        EITHER,
    )
    add("npy-all-zero", "an all-zero matrix", arr(np.zeros((2, 2))), EITHER)
    add("npy-subnormal", "subnormal values (1e-320)", arr(np.array([[1e-320, 0], [0, 1e-320]])), EITHER)
    add(
        "npy-trailing-data",
        "valid matrix followed by extra bytes",
        lambda c: put(c, f"{stem}.npy", npy_of(two) + b"junk" * 10),
        EITHER,
    )
    add("npy-too-many-rows", "a 1025 x 1 matrix (over the 1024-row limit)", arr(np.ones((1025, 1))))
    add(
        "npy-sparse-1GiB",
        "a 1 GiB sparse file with a valid 2 x 2 header",
        lambda c: sparse(c, f"{stem}.npy", head=npy_of(two)),
        EITHER,
        fast=True,
    )
    # npz
    good = npy_of(two)
    add(
        "npz-text-member-only",
        "a zip holding only readme.txt",
        lambda c: put(c, f"{stem}.npz", zip_bytes([("readme.txt", b"hello")])),
        fast=True,
    )
    add(
        "npz-extra-text-member",
        "fc1.npy plus readme.txt",
        lambda c: put(c, f"{stem}.npz", zip_bytes([("fc1.npy", good), ("readme.txt", b"hi")])),
        EITHER,
    )
    add(
        "npz-garbage-member",
        "fc1.npy holding random bytes",
        lambda c: put(c, f"{stem}.npz", zip_bytes([("fc1.npy", os.urandom(200))])),
        fast=True,
    )
    add(
        "npz-lying-member",
        "fc1.npy declaring (10^9, 10^9)",
        lambda c: put(c, f"{stem}.npz", zip_bytes([("fc1.npy", npy_bytes("<f8", (10**9, 10**9), f8))])),
        fast=True,
    )
    add(
        "npz-duplicate-member",
        "fc1.npy twice with different values",
        lambda c: put(c, f"{stem}.npz", zip_bytes([("fc1.npy", good), ("fc1.npy", npy_of(-two))])),
        SHOULD_REFUSE,
    )
    add(
        "npz-2000-members",
        "2,000 arrays (over the 1,024 limit)",
        lambda c: put(c, f"{stem}.npz", zip_bytes([(f"a{i}.npy", good) for i in range(2000)])),
    )
    add(
        "npz-inflates-to-128MB",
        "a deflated 4096 x 4096 zero matrix (128 MB inflated)",
        lambda c: (zip_of_zeros(c / f"{stem}.npz", 4096, 4096), c / f"{stem}.npz")[1],
        fast=True,
    )
    add(
        "npz-truncated",
        "the first half of a valid npz",
        lambda c: put(c, f"{stem}.npz", fx.weights.read_bytes()[: fx.weights.stat().st_size // 2]),
        fast=True,
    )
    add("npz-not-zip", "a text file named .npz", lambda c: put(c, f"{stem}.npz", "fc1 = [[1, 2], [3, 4]]\n"))
    add("npz-empty-zip", "a zip without members", lambda c: put(c, f"{stem}.npz", zip_bytes([])))
    add(
        "npz-only-bias",
        "only a 1-d fc1.bias",
        lambda c: put(c, f"{stem}.npz", zip_bytes([("fc1.bias.npy", npy_of(np.ones(2)))])),
    )
    add(
        "npz-name-newline",
        "an array named 'a\\nb'",
        lambda c: put(c, f"{stem}.npz", zip_bytes([("a\nb.npy", good)])),
        SHOULD_REFUSE,
    )
    add(
        "npz-name-ansi",
        "an array named with an ANSI escape",
        lambda c: put(c, f"{stem}.npz", zip_bytes([("\x1b[31mred.npy", good)])),
        SHOULD_REFUSE,
    )
    add(
        "npz-name-300",
        "an array name of 300 characters",
        lambda c: put(c, f"{stem}.npz", zip_bytes([("x" * 300 + ".npy", good)])),
        SHOULD_REFUSE,
    )
    add(
        "npz-name-unicode",
        "an array named 'fc✓'",
        lambda c: put(c, f"{stem}.npz", zip_bytes([("fc✓.npy", good)])),
        EITHER,
    )
    add(
        "npz-name-dotdot",
        "an array named '../../evil'",
        lambda c: put(c, f"{stem}.npz", zip_bytes([("../../evil.npy", good)])),
        EITHER,
    )
    # csv
    add("csv-short-row", "rows of 2 and 1 numbers", lambda c: put(c, f"{stem}.csv", "1,2\n3\n"), fast=True)
    add("csv-long-row", "rows of 2 and 3 numbers", lambda c: put(c, f"{stem}.csv", "1,2\n3,4,5\n"))
    add("csv-header", "a text header row", lambda c: put(c, f"{stem}.csv", "a,b\n1,2\n3,4\n"))
    add("csv-nan", "a nan cell", lambda c: put(c, f"{stem}.csv", "1,nan\n3,4\n"), fast=True)
    add("csv-1e999", "a 1e999 cell (inf)", lambda c: put(c, f"{stem}.csv", "1,1e999\n3,4\n"))
    add(
        "csv-long-digits",
        "a 10,000-digit number",
        lambda c: put(c, f"{stem}.csv", "1," + "9" * 10000 + "\n3,4\n"),
    )
    add(
        "csv-complex",
        "complex cells like 1+2j (valid)",
        lambda c: put(c, f"{stem}.csv", "1+2j,0.5\n-1j,3\n"),
        ACCEPT,
    )
    add("csv-non-utf8", "a 0xff byte", lambda c: put(c, f"{stem}.csv", b"1,2\n3,\xff\n"))
    add("csv-semicolons", "semicolon-separated", lambda c: put(c, f"{stem}.csv", "1;2\n3;4\n"))
    add(
        "csv-bom",
        "a UTF-8 byte order mark",
        lambda c: put(c, f"{stem}.csv", b"\xef\xbb\xbf1,2\n3,4\n"),
        EITHER,
    )
    add("csv-crlf", "CRLF line ends (valid)", lambda c: put(c, f"{stem}.csv", b"1,2\r\n3,4\r\n"), ACCEPT)
    add(
        "csv-quoted-newline",
        "a quoted cell holding a newline",
        lambda c: put(c, f"{stem}.csv", '1,"2\n5"\n3,4\n'),
    )
    add(
        "csv-2000-rows",
        "2,000 rows (over the 1,024-row limit)",
        lambda c: put(c, f"{stem}.csv", "1\n" * 2000),
    )
    add("csv-empty", "an empty .csv", lambda c: put(c, f"{stem}.csv", b""))

    # safetensors
    def st(header: bytes, data: bytes = f8) -> Callable[[Path], Path]:
        return lambda c: put(c, f"{stem}.safetensors", struct.pack("<Q", len(header)) + header + data)

    add(
        "st-huge-header-length",
        "a header length of 2^62",
        lambda c: put(c, f"{stem}.safetensors", struct.pack("<Q", 2**62) + b"{}"),
        fast=True,
    )
    add("st-header-not-json", "a header that is not JSON", st(b"not json at all!"))
    add(
        "st-offsets-out-of-range",
        "data offsets beyond the file",
        st(b'{"fc1":{"dtype":"F64","shape":[2,2],"data_offsets":[0,999999]}}'),
    )
    add(
        "st-huge-shape",
        "a declared shape of (10^9, 10^9)",
        st(b'{"fc1":{"dtype":"F64","shape":[1000000000,1000000000],"data_offsets":[0,32]}}'),
    )
    add(
        "st-duplicate-key",
        "the tensor fc1 twice in the header",
        st(
            b'{"fc1":{"dtype":"F64","shape":[2,2],"data_offsets":[0,32]},"fc1":{"dtype":"F64","shape":[2,2],"data_offsets":[0,32]}}'
        ),
        SHOULD_REFUSE,
    )
    add(
        "st-valid",
        "a valid F64 tensor (valid)",
        st(b'{"fc1":{"dtype":"F64","shape":[2,2],"data_offsets":[0,32]}}'),
        ACCEPT,
    )
    # PyTorch
    if torch_available():
        for name, desc, make, expect in torch_payloads(two, stem):
            add(name, desc, make, expect, fast=name in ("pt-marker-reduce", "pt-marker-raw-pickle"))
    # unknown suffix, text
    add("unknown-suffix", "a .txt weights file", lambda c: put(c, f"{stem}.txt", "1 2\n3 4\n"))
    out = []
    for name, desc, make, expect in items:

        def case(c: Path, make: Callable[[Path], Path] = make) -> Case:
            path = make(c)
            run_case = run(c, path)
            run_case.marker = c / "marker"
            return run_case

        out.append(atk(command, name, desc, case, expect))
    return out


def torch_payloads(two: np.ndarray, stem: str) -> list[tuple[str, str, Callable[[Path], Path], str]]:
    """.pt payloads (built lazily in the case folder; torch imported only then)."""

    def save(
        obj_fn: Callable[[Any, Path], Any], name: str = f"{stem}.pt", legacy: bool = False
    ) -> Callable[[Path], Path]:
        def make(c: Path) -> Path:
            import torch

            path = c / name
            obj = obj_fn(torch, c)
            if legacy:
                path.write_bytes(pickle.dumps(obj, protocol=2))
            else:
                torch.save(obj, path)
            return path

        return make

    t = two.tolist()
    out: list[tuple[str, str, Callable[[Path], Path], str]] = [
        (
            "pt-bfloat16",
            "a bfloat16 state dict (valid)",
            save(lambda torch, c: {"fc1.weight": torch.tensor(t, dtype=torch.bfloat16)}),
            ACCEPT,
        ),
        (
            "pt-float64",
            "a float64 state dict with a bias (valid)",
            save(
                lambda torch, c: {
                    "fc1.weight": torch.tensor(t, dtype=torch.float64),
                    "fc1.bias": torch.zeros(2),
                }
            ),
            ACCEPT,
        ),
        (
            "pt-complex32",
            "a complex32 tensor",
            save(lambda torch, c: {"fc1.weight": torch.tensor(t, dtype=torch.complex64).to(torch.complex32)}),
            ACCEPT,
        ),
        (
            "pt-quantized",
            "a quantised tensor",
            save(
                lambda torch, c: {
                    "fc1.weight": torch.quantize_per_tensor(torch.tensor(t), 0.1, 0, torch.qint8)
                }
            ),
            ACCEPT,
        ),
        (
            "pt-sparse",
            "a sparse COO tensor",
            save(lambda torch, c: {"fc1.weight": torch.tensor(t).to_sparse()}),
            ACCEPT,
        ),
        (
            "pt-int8",
            "an int8 tensor",
            save(lambda torch, c: {"fc1.weight": torch.tensor([[1, 2], [3, 4]], dtype=torch.int8)}),
            EITHER,
        ),
        (
            "pt-bool",
            "a bool tensor",
            save(lambda torch, c: {"fc1.weight": torch.eye(2, dtype=torch.bool)}),
            EITHER,
        ),
        (
            "pt-nan",
            "a tensor with NaN",
            save(lambda torch, c: {"fc1.weight": torch.tensor([[1.0, float("nan")], [0.0, 1.0]])}),
            REFUSE,
        ),
        ("pt-3d", "only a 3-d tensor", save(lambda torch, c: {"fc1.weight": torch.ones(2, 2, 2)}), REFUSE),
        (
            "pt-non-tensors",
            "a tensor plus an int and a string",
            save(lambda torch, c: {"fc1.weight": torch.tensor(t), "step": 5, "note": "x"}),
            EITHER,
        ),
        (
            "pt-whole-module",
            "a whole nn.Linear pickled (torch.save(model))",
            save(lambda torch, c: torch.nn.Linear(2, 2)),
            EITHER,
        ),
        (
            "pt-marker-reduce",
            "a state dict whose value's __reduce__ would create the marker file",
            save(lambda torch, c: {"fc1.weight": MarkerPayload(c / "marker")}),
            REFUSE,
        ),
        (
            "pt-marker-raw-pickle",
            "a raw (non-zip) pickle whose __reduce__ would create the marker",
            save(lambda torch, c: {"fc1.weight": MarkerPayload(c / "marker")}, legacy=True),
            REFUSE,
        ),
    ]

    def truncated(c: Path) -> Path:
        import torch

        torch.save({"fc1.weight": torch.tensor(t)}, c / "full.pt")
        data = (c / "full.pt").read_bytes()
        (c / "full.pt").unlink()
        return put(c, f"{stem}.pt", data[: len(data) // 2])

    out.append(("pt-truncated", "the first half of a valid .pt", truncated, REFUSE))
    return out


def program_doc(fx: Fixtures) -> dict[str, Any]:
    """The fixture program as a dict."""
    return json.loads(fx.program.read_text())


def program_attacks(
    fx: Fixtures, command: str, run: Callable[[Path, Path], Case], *, full: bool, timeout: float = 60.0
) -> list[Attack]:
    """Attacks on a phase-program file; ``run(case, program_path)`` builds the case."""
    valid = fx.program.read_text()
    doc = program_doc(fx)
    items: list[tuple[str, str, Callable[[Path], Path], str]] = []
    sample = {"truncated", "nan-theta", "duplicate-key", "n-modes-huge", "deep-nesting"}
    for name, desc, data, expect in bad_json_documents(valid):
        items.append((f"json-{name}", desc, lambda c, data=data: put(c, "p.json", data), expect))

    def variant(
        name: str, desc: str, mutate: Callable[[dict[str, Any]], Any], expect: str = REFUSE, raw: bool = False
    ) -> None:
        def make(c: Path) -> Path:
            d = json.loads(valid)
            d2 = mutate(d)
            text = d2 if raw else json.dumps(d2 if d2 is not None else d, indent=1)
            return put(c, "p.json", text)

        items.append((name, desc, make, expect))

    layer0 = doc["layers"][0]

    def set_layer(key: str, value: Any) -> Callable[[dict[str, Any]], Any]:
        def mutate(d: dict[str, Any]) -> Any:
            d["layers"][0][key] = value
            return d

        return mutate

    def set_stage(key: str, value: Any, stage: int = 0) -> Callable[[dict[str, Any]], Any]:
        def mutate(d: dict[str, Any]) -> Any:
            d["layers"][0]["stages"][stage][key] = value
            return d

        return mutate

    def set_mzi(key: str, value: Any) -> Callable[[dict[str, Any]], Any]:
        def mutate(d: dict[str, Any]) -> Any:
            d["layers"][0]["stages"][0]["mzis"][0][key] = value
            return d

        return mutate

    variant(
        "nan-theta",
        "theta written as the NaN literal",
        lambda d: json.dumps(set_mzi("theta", float("nan"))(d)),
        raw=True,
    )
    variant(
        "inf-phi", "phi written as Infinity", lambda d: json.dumps(set_mzi("phi", float("inf"))(d)), raw=True
    )
    variant("huge-theta", "theta = 1e308", set_mzi("theta", 1e308), EITHER)
    variant(
        "theta-1e999",
        "theta = 1e999 (inf when read)",
        lambda d: json.dumps(d).replace(json.dumps(layer0["stages"][0]["mzis"][0]["theta"]), "1e999", 1),
        raw=True,
    )
    variant("theta-string", "theta as a string", set_mzi("theta", "1.0"))
    variant("theta-bool", "theta = true", set_mzi("theta", True), SHOULD_REFUSE)
    variant("mode-out-of-range", "an MZI on modes 7, 8 of a 2-mode mesh", set_mzi("mode", 7))
    variant("mode-negative", "an MZI on mode -1", set_mzi("mode", -1))
    variant("n-modes-huge", "a stage with n_modes 10^12", set_stage("n_modes", HUGE))
    variant("n-modes-5000", "a stage with n_modes 5000 (over 4096)", set_stage("n_modes", 5000))
    variant("n-modes-zero", "a stage with n_modes 0", set_stage("n_modes", 0))
    variant("shape-huge", "a layer of shape 10^12 x 10^12", set_layer("shape", [HUGE, HUGE]))
    # legal by the convention (a stage acts on its first n_modes waveguides; mode 2 passes)
    variant("shape-wider-than-stages", "shape 3 x 3 on 2-mode stages", set_layer("shape", [3, 3]), EITHER)
    variant(
        "amplitude-gain",
        "an attenuator amplitude of 2 (gain)",
        set_stage("amplitude", [2.0, 0.5], 1),
        SHOULD_REFUSE,
    )
    variant("scale-nan", "scale NaN", lambda d: json.dumps(set_layer("scale", float("nan"))(d)), raw=True)
    variant("scale-negative", "scale -1", set_layer("scale", -1.0), SHOULD_REFUSE)
    variant("format-wrong", "format 'something-else'", lambda d: {**d, "format": "something-else"})
    variant("version-2", "version 2", lambda d: {**d, "version": 2})
    variant("version-string", "version '1'", lambda d: {**d, "version": "1"}, SHOULD_REFUSE)
    variant("layers-empty", "no layers", lambda d: {**d, "layers": []})
    variant("layers-object", "layers as an object", lambda d: {**d, "layers": {"fc1": layer0}})
    variant("stages-missing", "a layer without stages", lambda d: (d["layers"][0].pop("stages"), d)[1])
    variant(
        "duplicate-layers",
        "the same layer twice",
        lambda d: {**d, "layers": [d["layers"][0], d["layers"][0]]},
    )
    variant(
        "duplicate-mzi-ids",
        "two MZIs with one id",
        lambda d: walk_replace(d, "id", d["layers"][0]["stages"][0]["mzis"][0]["id"], count=99),
    )
    variant("name-newline", "a layer name with a newline", set_layer("name", "fc\n1"))
    variant("name-ansi", "a layer name with an ANSI escape", set_layer("name", "\x1b[2J\x1b[31mfc1"))
    variant("name-100k", "a layer name of 100,000 characters", set_layer("name", LONG_NAME))
    variant(
        "name-lone-surrogate",
        "a layer name with a lone surrogate \\ud800",
        lambda d: json.dumps(set_layer("name", "fc1")(d)).replace('"fc1"', '"fc\\ud800"', 1),
        raw=True,
    )
    variant("name-slash", "a layer name '../../x'", set_layer("name", "../../x"), EITHER)
    variant("name-unicode", "a layer name 'schicht_ü'", set_layer("name", "schicht_ü"), EITHER)
    variant("unknown-key", "an unknown top-level key", lambda d: {**d, "zz_unknown": 1}, EITHER)
    variant(
        "mzis-100k",
        "a 2-mode stage listing 100,000 MZIs",
        lambda d: (
            d["layers"][0]["stages"][0].__setitem__("mzis", d["layers"][0]["stages"][0]["mzis"] * 100_000),
            d,
        )[1],
    )
    out = []
    for name, desc, make, expect in items:
        if not full and name.removeprefix("json-") not in sample:
            continue

        def case(c: Path, make: Callable[[Path], Path] = make) -> Case:
            return run(c, make(c))

        out.append(atk(command, name, desc, case, expect, timeout))
    return out


def gds_attacks(
    fx: Fixtures, command: str, run: Callable[[Path, Path], Case], *, full: bool, timeout: float = 90.0
) -> list[Attack]:
    """Attacks on a GDS layout; ``run(case, gds_path)`` builds the case."""
    chip = fx.chip.read_bytes()
    items: list[tuple[str, str, Callable[[Path], Path], str]] = [
        (
            "gds-truncated",
            "the first half of a valid chip.gds",
            lambda c: put(c, "x.gds", chip[: len(chip) // 2]),
            REFUSE,
        ),
        ("gds-empty", "an empty .gds", lambda c: put(c, "x.gds", b""), REFUSE),
        ("gds-text", "a text file named .gds", lambda c: put(c, "x.gds", "this is not a layout\n"), REFUSE),
        (
            "gds-two-top-cells",
            "chip.gds plus a second top cell",
            lambda c: put(c, "x.gds", gds_add_structures(chip, [gds_structure("EXTRA_TOP")])),
            EITHER,
        ),
        (
            "gds-no-top-cell",
            "two cells referencing each other (a cycle: no top cell)",
            lambda c: put(
                c, "x.gds", gds_library([gds_structure("A", refs=["B"]), gds_structure("B", refs=["A"])])
            ),
            REFUSE,
        ),
        ("gds-no-cells", "a library without cells", lambda c: put(c, "x.gds", gds_library([])), REFUSE),
    ]
    if full:
        items += [
            ("gds-random-bytes", "4 kB of random bytes", lambda c: put(c, "x.gds", os.urandom(4096)), REFUSE),
            (
                "gds-zero-length-record",
                "a record of length 0 after the header",
                lambda c: put(c, "x.gds", gds_record(0, 2, _gds_int2(600)) + b"\0\0\0\0" * 8),
                REFUSE,
            ),
            (
                "gds-record-beyond-eof",
                "a record declaring 65,535 bytes",
                lambda c: put(
                    c, "x.gds", gds_record(0, 2, _gds_int2(600)) + b"\xff\xff\x01\x02" + b"\0" * 20
                ),
                REFUSE,
            ),
            (
                "gds-foreign-layout",
                "a valid layout with one box (not an optinc chip)",
                lambda c: put(c, "x.gds", gds_library([gds_structure("TOP")])),
                EITHER,
            ),
            (
                "gds-dangling-reference",
                "a cell referencing a cell that does not exist",
                lambda c: put(c, "x.gds", gds_library([gds_structure("TOP", refs=["NOPE"])])),
                EITHER,
            ),
            ("gds-named-oas", "chip.gds content named .oas", lambda c: put(c, "x.oas", chip), EITHER),
            ("gds-suffix-txt", "chip.gds content named .txt", lambda c: put(c, "x.txt", chip), EITHER),
        ]
    out = []
    for name, desc, make, expect in items:

        def case(c: Path, make: Callable[[Path], Path] = make) -> Case:
            return run(c, make(c))

        out.append(atk(command, name, desc, case, expect, timeout))
    return out


def calibration_attacks(
    fx: Fixtures, command: str, run: Callable[[Path, Path], Case], *, full: bool
) -> list[Attack]:
    """Attacks on a calibration file (.json and .csv)."""
    valid = fx.cal_json.read_text()
    doc = json.loads(valid)
    heater = next(iter(doc["heaters"]))
    items: list[tuple[str, str, Callable[[Path], Path], str]] = []
    for name, desc, data, expect in bad_json_documents(valid):
        if full or name in ("truncated", "duplicate-key", "huge-int-literal"):
            items.append((f"cal-json-{name}", desc, lambda c, data=data: put(c, "cal.json", data), expect))

    def variant(name: str, desc: str, text: str, expect: str = REFUSE) -> None:
        items.append((name, desc, lambda c: put(c, "cal.json", text), expect))

    def with_heater(**values: Any) -> str:
        d = json.loads(valid)
        d["heaters"][heater] = values
        return json.dumps(d, allow_nan=True)

    variant("cal-nan-p-pi", "p_pi_mW NaN", with_heater(p_pi_mW=float("nan")))
    variant("cal-zero-p-pi", "p_pi_mW 0", with_heater(p_pi_mW=0))
    variant("cal-negative-resistance", "resistance_ohm -500", with_heater(resistance_ohm=-500))
    if full:
        variant(
            "cal-unknown-heater",
            "a heater id the program lacks",
            json.dumps({**doc, "heaters": {"nope_theta": {"p_pi_mW": 25}}}),
        )
        variant("cal-name-newline", "a name with a newline", json.dumps({**doc, "name": "chip\n7"}))
        variant("cal-name-100k", "a name of 100,000 characters", json.dumps({**doc, "name": LONG_NAME}))
        variant("cal-vmax-tiny", "v_max_V 1e-9 (no heater reachable)", json.dumps({**doc, "v_max_V": 1e-9}))
        variant(
            "cal-kappa-2",
            "a splitter kappa^2 of 2",
            json.dumps({**doc, "splitters": {"fc1_V_c0_m0": [2, 0.5]}}),
        )
        variant(
            "cal-crosstalk-1",
            "a crosstalk coefficient of 1",
            json.dumps({**doc, "crosstalk": [{"victim": heater, "aggressor": heater, "coefficient": 1}]}),
        )
        variant(
            "cal-crosstalk-victim-int",
            "a crosstalk victim that is a number",
            json.dumps({**doc, "crosstalk": [{"victim": 5, "aggressor": heater, "coefficient": 0.1}]}),
            SHOULD_REFUSE,
        )
        variant(
            "cal-default-huge",
            "default p_pi_mW 1e308",
            json.dumps({**doc, "default": {"p_pi_mW": 1e308}}),
            EITHER,
        )
        items.append(
            ("cal-yaml-suffix", "a calibration named .yaml", lambda c: put(c, "cal.yaml", valid), REFUSE)
        )
    header = "id,p_pi_mW,resistance_ohm,phase_offset_rad,kappa2_1,kappa2_2\n"
    csvs = [
        ("cal-csv-short-row", "a row of 3 cells", header + f"{heater},25,500\n", REFUSE),
        (
            "cal-csv-duplicate-id",
            "one heater id twice",
            header + f"{heater},25,500,0,,\n{heater},24,510,0,,\n",
            REFUSE,
        ),
        (
            "cal-csv-newline-id",
            "a quoted id holding a newline",
            header + f'"{heater}\nx",25,500,0,,\n',
            REFUSE,
        ),
    ]
    if full:
        csvs += [
            ("cal-csv-long-row", "a row of 8 cells", header + f"{heater},25,500,0,,,7,8\n", REFUSE),
            ("cal-csv-bad-header", "another header", "a,b,c\n1,2,3\n", REFUSE),
            ("cal-csv-nan", "a nan cell", header + f"{heater},nan,500,0,,\n", REFUSE),
            (
                "cal-csv-bom",
                "a byte order mark before the header",
                "\ufeff" + header + f"{heater},25,500,0,,\n",
                EITHER,
            ),
            (
                "cal-csv-non-utf8",
                "a 0xff byte",
                (header + f"{heater},25,500,0,,\n").encode() + b"\xff\n",
                REFUSE,
            ),
            (
                "cal-csv-unterminated-quote",
                "an unterminated quote",
                header + f'"{heater},25,500,0,,\n',
                REFUSE,
            ),
            ("cal-csv-comments-only", "the header and a comment", header + "# nothing\n", EITHER),
        ]
    for name, desc, text, expect in csvs:
        items.append((name, desc, lambda c, text=text: put(c, "cal.csv", text), expect))
    out = []
    for name, desc, make, expect in items:

        def case(c: Path, make: Callable[[Path], Path] = make) -> Case:
            return run(c, make(c))

        out.append(atk(command, name, desc, case, expect))
    return out


def layer_option_attacks(
    command: str, base: Callable[[Path], list[str | bytes]], *, timeout: float = 60.0
) -> list[Attack]:
    """Bad ``--layer`` values."""
    return [
        atk(
            command,
            f"layer-{slug}",
            f"--layer {desc}",
            lambda c, v=v: Case([*base(c), "--layer", v]),
            expect,
            timeout,
        )
        for slug, desc, v, expect in [
            ("missing", "naming no layer", "nope", REFUSE),
            ("empty", "''", "", REFUSE),
            ("newline", "with a newline", "fc1\nfc2", REFUSE),
            ("100k", "of 100,000 characters", LONG_NAME, REFUSE),
            ("unicode", "'ü✓' (no such layer)", "ü✓", REFUSE),
        ]
    ]


# --- attacks per subcommand -------------------------------------------------------------


def attacks_compile(fx: Fixtures) -> list[Attack]:
    """compile: weights files, options, output paths, input kinds."""
    cmd = "compile"

    def run(c: Path, w: Path) -> Case:
        out = c / "out.json"
        return Case(
            ["compile", str(w.name if w.parent == c else w), "-o", "out.json"],
            outputs=[out],
            checks=[strict_json_output(out)],
        )

    attacks = weights_attacks(fx, cmd, run, full=True)

    def base(c: Path) -> list[str | bytes]:
        fx.copy(fx.w_npy, c, "w.npy")
        return ["compile", "w.npy", "-o", "out.json"]

    def outs(c: Path) -> list[Path]:
        return [c / "out.json"]

    attacks += [
        atk(
            cmd,
            "method=bogus",
            "--method bogus",
            lambda c: Case([*base(c), "--method", "bogus"], outputs=outs(c)),
        ),
        atk(
            cmd, "mesh=bogus", "--mesh bogus", lambda c: Case([*base(c), "--mesh", "bogus"], outputs=outs(c))
        ),
    ]
    attacks += bad_values(
        cmd,
        "--block-size",
        [*NUMERIC_GARBAGE, ("0", REFUSE), (str(HUGE), EITHER)],
        lambda c: [*base(c), "--method", "ud-segmented"],
        outputs=outs,
    )
    attacks += bad_values(
        cmd,
        "--unitary-tol",
        [*NUMERIC_GARBAGE[:1], ("inf", EITHER), ("-1", REFUSE), ("0", REFUSE), (str(HUGE), EITHER)],
        base,
        outputs=outs,
    )
    attacks += bad_values(
        cmd,
        "--max-iter",
        [("0", REFUSE), ("-1", REFUSE), ("nan", REFUSE), ("abc", REFUSE), (str(HUGE), EITHER)],
        lambda c: [*base(c), "--method", "ud"],
        timeout_verdict=REVIEW,
        outputs=outs,
    )

    def unitary_nonunitary(c: Path) -> Case:
        return Case([*base(c), "--method", "unitary"], outputs=outs(c))

    attacks.append(
        atk(cmd, "unitary-on-non-unitary", "--method unitary on a non-unitary matrix", unitary_nonunitary)
    )
    attacks += layer_option_attacks(cmd, base)

    def calibrated(c: Path, cal: str, out: str = "out.json") -> Case:
        fx.copy(fx.weights, c, "w.npz")
        return Case(
            ["compile", "w.npz", "--calibration", cal, "--error-correct", "-o", out], outputs=[c / out]
        )

    attacks += [
        atk(cmd, "calibration-missing", "--calibration naming no file", lambda c: calibrated(c, "nope.json")),
        atk(
            cmd,
            "error-correct-without-calibration",
            "--error-correct alone",
            lambda c: Case([*base(c), "--error-correct"], outputs=outs(c)),
        ),
        atk(
            cmd,
            "calibration-is-output",
            "-o names the --calibration file",
            lambda c: calibrated(c, fx.copy(fx.cal_json, c, "cal.json").name, "cal.json"),
        ),
        atk(
            cmd,
            "calibration-valid",
            "--calibration with --error-correct (baseline)",
            lambda c: calibrated(c, fx.copy(fx.cal_json, c, "cal.json").name),
            ACCEPT,
            90.0,
        ),
    ]
    attacks += calibration_attacks(fx, cmd, lambda c, cal: calibrated(c, cal.name), full=False)

    def out_case(c: Path, target: Path | str | bytes) -> Case:
        fx.copy(fx.w_npy, c, "w.npy")
        out = target if isinstance(target, bytes) else str(target)
        outputs = [Path(os.fsdecode(target))] if not str(os.fsdecode(target)).startswith("/dev/") else []
        return Case(["compile", "w.npy", "-o", out], outputs=outputs)

    attacks += output_attacks(
        cmd, out_case, suffix=".json", input_name="w.npy", setup=lambda c: fx.copy(fx.w_npy, c, "w.npy")
    )

    def overwrite(c: Path) -> Case:
        put(c, "old.json", "{}")
        return Case([*base(c)[:2], "-o", "old.json"], outputs=[c / "old.json"])

    attacks.append(
        atk(cmd, "out-existing-file", "the output is an existing regular file (replaced)", overwrite, ACCEPT)
    )
    attacks.append(
        atk(
            cmd,
            "stdout-dev-full",
            "-o - with stdout on /dev/full (a full disk)",
            lambda c: Case([*base(c)[:2], "-o", "-"], stdout_file="/dev/full"),
        )
    )
    attacks.append(atk(cmd, "stdout", "-o - (valid)", lambda c: Case([*base(c)[:2], "-o", "-"]), ACCEPT))
    attacks += input_file_attacks(
        cmd, lambda c, w: Case(["compile", str(w), "-o", "out.json"], outputs=[c / "out.json"]), suffix=".npy"
    )

    def newline_input(c: Path) -> Case:
        fx.copy(fx.w_npy, c, "w\nx.npy")
        return Case(["compile", "w\nx.npy", "-o", "out.json"], outputs=[c / "out.json"])

    attacks.append(
        # the layer of a .npy is named by the file: a newline in it may be refused as a name
        atk(cmd, "in-name-newline", "an input name with a newline (a valid file)", newline_input, EITHER)
    )
    return attacks


def attacks_inspect(fx: Fixtures) -> list[Attack]:
    """inspect: every program attack and input kinds, stdout on /dev/full."""
    cmd = "inspect"
    attacks = program_attacks(fx, cmd, lambda c, p: Case(["inspect", p.name]), full=True)
    attacks += input_file_attacks(cmd, lambda c, p: Case(["inspect", str(p)]), suffix=".json")
    attacks.append(
        atk(
            cmd,
            "stdout-dev-full",
            "stdout on /dev/full",
            lambda c: Case(["inspect", fx.copy(fx.program, c).name], stdout_file="/dev/full"),
        )
    )
    attacks.append(
        atk(
            cmd,
            "valid",
            "the valid program (baseline)",
            lambda c: Case(["inspect", fx.copy(fx.program, c).name]),
            ACCEPT,
        )
    )
    attacks.append(
        atk(
            cmd,
            "weights-as-program",
            "a weights .npz given as the program",
            lambda c: Case(["inspect", fx.copy(fx.weights, c).name]),
        )
    )
    return attacks


def attacks_check(fx: Fixtures) -> list[Attack]:
    """check: program and weights files, tolerances that would pass a wrong program."""
    cmd = "check"

    def against(c: Path, w: Path) -> Case:
        fx.copy(fx.program, c, "p.json")
        return Case(["check", "p.json", "--against", w.name if w.parent == c else str(w)])

    attacks = program_attacks(
        fx, cmd, lambda c, p: Case(["check", p.name, "--against", fx.copy(fx.weights, c).name]), full=False
    )
    attacks += weights_attacks(fx, cmd, against, full=False, stem="fc1")

    def base(c: Path, weights: Path | None = None) -> list[str | bytes]:
        fx.copy(fx.program, c, "p.json")
        return ["check", "p.json", "--against", fx.copy(weights or fx.weights, c, "w.npz").name]

    attacks += [
        atk(
            cmd,
            "mismatched-weights",
            "weights the program was not compiled from (exit 3)",
            lambda c: Case(base(c, fx.other)),
        ),
        atk(
            cmd,
            "rtol=nan-mismatched",
            "--rtol nan against other weights (NaN would pass anything)",
            lambda c: Case([*base(c, fx.other), "--rtol", "nan"]),
        ),
        atk(
            cmd,
            "max-rel-error=nan-mismatched",
            "--max-rel-error nan against other weights",
            lambda c: Case([*base(c, fx.other), "--max-rel-error", "nan"]),
        ),
        atk(
            cmd,
            "rtol=inf-mismatched",
            "--rtol inf against other weights",
            lambda c: Case([*base(c, fx.other), "--rtol", "inf"]),
            EITHER,
        ),
        atk(cmd, "rtol=-1", "--rtol -1", lambda c: Case([*base(c), "--rtol", "-1"])),
        atk(cmd, "rtol=abc", "--rtol abc", lambda c: Case([*base(c), "--rtol", "abc"])),
        atk(
            cmd,
            "swapped-arguments",
            "the weights as PROGRAM and the program as --against",
            lambda c: Case(["check", fx.copy(fx.weights, c).name, "--against", fx.copy(fx.program, c).name]),
        ),
        atk(
            cmd,
            "against-program",
            "the program as its own --against",
            lambda c: Case(["check", fx.copy(fx.program, c).name, "--against", "program.json"]),
        ),
        atk(
            cmd,
            "against-missing-layer",
            "weights without the program's fc2 (checks fc1; a note names fc2 as not checked)",
            lambda c: Case(base(c, _one_layer(fx, c))),
            ACCEPT,
        ),
        atk(
            cmd,
            "against-other-shape",
            "fc1 of shape 3 x 3 in the weights",
            lambda c: Case(base(c, _other_shape(fx, c))),
        ),
        atk(cmd, "valid", "the valid pair (baseline)", lambda c: Case(base(c)), ACCEPT),
    ]
    attacks += layer_option_attacks(cmd, base)
    return attacks


def _one_layer(fx: Fixtures, c: Path) -> Path:
    with np.load(fx.weights) as z:
        np.savez(c / "one.npz", fc1=z["fc1"])
    return c / "one.npz"


def _other_shape(fx: Fixtures, c: Path) -> Path:
    with np.load(fx.weights) as z:
        np.savez(c / "shape.npz", fc1=np.ones((3, 3)), fc2=z["fc2"])
    return c / "shape.npz"


def attacks_program(fx: Fixtures) -> list[Attack]:
    """program: program, calibration and GDS inputs, DAC and budget options, outputs."""
    cmd = "program"

    def base(c: Path) -> list[str | bytes]:
        fx.copy(fx.program, c, "p.json")
        return ["program", "p.json", "-o", "h.csv"]

    def outs(c: Path) -> list[Path]:
        return [c / "h.csv"]

    attacks = program_attacks(
        fx, cmd, lambda c, p: Case(["program", p.name, "-o", "h.csv"], outputs=[c / "h.csv"]), full=False
    )
    attacks += calibration_attacks(
        fx, cmd, lambda c, cal: Case([*base(c), "--calibration", cal.name], outputs=outs(c)), full=True
    )
    attacks += gds_attacks(
        fx, cmd, lambda c, g: Case([*base(c), "--gds", g.name], outputs=outs(c)), full=False
    )
    attacks += bad_values(
        cmd,
        "--dac-bits",
        [
            ("0", REFUSE),
            ("25", REFUSE),
            ("-1", REFUSE),
            ("nan", REFUSE),
            (str(HUGE), REFUSE),
            ("1", EITHER),
            ("24", ACCEPT),
        ],
        base,
        outputs=outs,
    )
    attacks += bad_values(
        cmd,
        "--power-budget-mW",
        [("0", REFUSE), ("-1", REFUSE), ("nan", REFUSE), ("inf", EITHER), (str(HUGE), ACCEPT)],
        base,
        outputs=outs,
    )
    attacks += bad_values(cmd, "--rounding", [("bogus", REFUSE)], base, outputs=outs)

    def strict(c: Path) -> Case:
        case = Case([*base(c), "--power-budget-mW", "1e-6", "--strict"], outputs=outs(c))
        case.checks.append(
            absent_after(c / "h.csv", "--strict refused the power (README: before the file is written)")
        )
        return case

    attacks.append(atk(cmd, "strict-over-budget", "--strict with a 1e-6 mW budget (exit 3, no file)", strict))
    attacks.append(
        atk(
            cmd,
            "out-is-calibration",
            "-o names the --calibration CSV",
            lambda c: Case(
                [
                    "program",
                    fx.copy(fx.program, c, "p.json").name,
                    "--calibration",
                    fx.copy(fx.cal_csv, c, "cal.csv").name,
                    "-o",
                    "cal.csv",
                ]
            ),
        )
    )
    attacks.append(
        atk(
            cmd,
            "out-is-gds",
            "-o names the --gds layout (as .json)",
            lambda c: Case(
                [
                    "program",
                    fx.copy(fx.program, c, "p.json").name,
                    "--gds",
                    fx.copy(fx.chip, c, "chip.gds").name,
                    "-o",
                    "chip.gds",
                ]
            ),
        )
    )
    attacks.append(
        atk(
            cmd,
            "out-suffix-txt",
            "-o h.txt (neither .csv nor .json)",
            lambda c: Case([*base(c)[:2], "-o", "h.txt"], outputs=[c / "h.txt"]),
            SHOULD_REFUSE,
        )
    )
    attacks.append(
        atk(
            cmd,
            "out-json",
            "-o lab.json (valid)",
            lambda c: Case(
                [*base(c)[:2], "-o", "lab.json"],
                outputs=[c / "lab.json"],
                checks=[strict_json_output(c / "lab.json")],
            ),
            ACCEPT,
        )
    )

    def out_case(c: Path, target: Path | str | bytes) -> Case:
        fx.copy(fx.program, c, "p.json")
        out = target if isinstance(target, bytes) else str(target)
        outputs = [] if str(os.fsdecode(target)).startswith("/dev/") else [Path(os.fsdecode(target))]
        return Case(["program", "p.json", "-o", out], outputs=outputs)

    attacks += output_attacks(
        cmd, out_case, suffix=".csv", input_name="p.json", setup=lambda c: fx.copy(fx.program, c, "p.json")
    )
    attacks.append(
        atk(cmd, "valid", "the valid program (baseline)", lambda c: Case(base(c), outputs=outs(c)), ACCEPT)
    )
    return attacks


def attacks_layout(fx: Fixtures) -> list[Attack]:
    """layout: a few program attacks, output and PNG paths, options."""
    cmd = "layout"
    t = 120.0

    def base(c: Path) -> list[str | bytes]:
        fx.copy(fx.program, c, "p.json")
        return ["layout", "p.json", "-o", "chip.gds"]

    def outs(c: Path) -> list[Path]:
        return [c / "chip.gds"]

    attacks = program_attacks(
        fx,
        cmd,
        lambda c, p: Case(["layout", p.name, "-o", "chip.gds"], outputs=[c / "chip.gds"]),
        full=False,
        timeout=t,
    )

    def out_case(c: Path, target: Path | str | bytes) -> Case:
        fx.copy(fx.program, c, "p.json")
        out = target if isinstance(target, bytes) else str(target)
        outputs = [] if str(os.fsdecode(target)).startswith("/dev/") else [Path(os.fsdecode(target))]
        return Case(["layout", "p.json", "-o", out], outputs=outputs)

    attacks += [
        a
        for a in output_attacks(
            cmd,
            out_case,
            suffix=".gds",
            input_name="p.json",
            timeout=t,
            setup=lambda c: fx.copy(fx.program, c, "p.json"),
        )
        if a.name not in ("out-name-255", "out-name-unicode", "out-hardlink-to-input")
    ]
    attacks += [
        atk(
            cmd,
            "out-suffix-txt",
            "-o chip.txt",
            lambda c: Case([*base(c)[:2], "-o", "chip.txt"], outputs=[c / "chip.txt"]),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "png-is-input",
            "--png names the program",
            lambda c: Case([*base(c), "--png", "p.json"], outputs=outs(c)),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "png-suffix-jpg",
            "--png chip.jpg",
            lambda c: Case([*base(c), "--png", "chip.jpg"], outputs=[*outs(c), c / "chip.jpg"]),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "png-same-as-output",
            "--png chip.gds, the -o file",
            lambda c: Case([*base(c), "--png", "chip.gds"], outputs=outs(c)),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "png-fifo",
            "--png a FIFO",
            lambda c: Case([*base(c), "--png", fifo(c, "p.png").name], outputs=outs(c)),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "png-missing-folder",
            "--png in a missing folder",
            lambda c: Case([*base(c), "--png", "no/such/p.png"], outputs=outs(c)),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "pdk=bogus",
            "--pdk bogus",
            lambda c: Case([*base(c), "--pdk", "bogus"], outputs=outs(c)),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "pdk=path",
            "--pdk ../../etc",
            lambda c: Case([*base(c), "--pdk", "../../etc"], outputs=outs(c)),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "pads=bogus",
            "--pads bogus",
            lambda c: Case([*base(c), "--pads", "bogus"], outputs=outs(c)),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "io-edge-two-layers",
            "--io edge with two layers (one layer per chip)",
            lambda c: Case([*base(c), "--io", "edge"], outputs=outs(c)),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "layer-missing",
            "--layer nope",
            lambda c: Case([*base(c), "--layer", "nope"], outputs=outs(c)),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "layer-newline",
            "--layer with a newline",
            lambda c: Case([*base(c), "--layer", "fc1\nfc2"], outputs=outs(c)),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "valid-png",
            "the valid program with --png (baseline)",
            lambda c: Case([*base(c), "--png", "chip.png"], outputs=[*outs(c), c / "chip.png"]),
            ACCEPT,
            t,
        ),
    ]
    return attacks


def attacks_drc(fx: Fixtures) -> list[Attack]:
    """drc: GDS inputs and the marker-database output."""
    cmd = "drc"
    t = 90.0
    attacks = gds_attacks(fx, cmd, lambda c, g: Case(["drc", g.name]), full=True, timeout=t)
    attacks += [
        a
        for a in input_file_attacks(cmd, lambda c, g: Case(["drc", str(g)]), suffix=".gds", timeout=t)
        if a.name not in ("in-empty", "in-sparse-1GiB")  # klayout reads 1 GiB in ~35 s: handled, slow
    ]

    def base(c: Path) -> list[str | bytes]:
        fx.copy(fx.chip, c, "chip.gds")
        return ["drc", "chip.gds"]

    def out_case(c: Path, target: Path | str | bytes) -> Case:
        out = target if isinstance(target, bytes) else str(target)
        outputs = [] if str(os.fsdecode(target)).startswith("/dev/") else [Path(os.fsdecode(target))]
        return Case([*base(c), "--report", out], outputs=outputs)

    attacks += [
        a
        for a in output_attacks(
            cmd,
            out_case,
            suffix=".lyrdb",
            input_name="chip.gds",
            timeout=t,
            setup=lambda c: fx.copy(fx.chip, c, "chip.gds"),
        )
        if a.name
        not in (
            "out-name-255",
            "out-name-unicode",
            "out-name-newline",
            "out-name-non-utf8",
            "out-hardlink-to-input",
        )
    ]
    attacks += [
        atk(
            cmd,
            "report-suffix-txt",
            "--report drc.txt",
            lambda c: Case([*base(c), "--report", "drc.txt"], outputs=[c / "drc.txt"]),
            EITHER,
            t,
        ),
        atk(
            cmd,
            "valid",
            "the valid chip (baseline)",
            lambda c: Case([*base(c), "--report", "drc.lyrdb"], outputs=[c / "drc.lyrdb"]),
            ACCEPT,
            t,
        ),
    ]
    return attacks


def attacks_lvs(fx: Fixtures) -> list[Attack]:
    """lvs: GDS and program inputs."""
    cmd = "lvs"
    t = 120.0

    def with_gds(c: Path, g: Path) -> Case:
        fx.copy(fx.program, c, "p.json")
        return Case(["lvs", g.name, "p.json"])

    def with_program(c: Path, p: Path) -> Case:
        fx.copy(fx.chip, c, "chip.gds")
        return Case(["lvs", "chip.gds", p.name])

    wanted = {"gds-truncated", "gds-two-top-cells", "gds-no-top-cell", "json-truncated", "nan-theta"}
    attacks = [a for a in gds_attacks(fx, cmd, with_gds, full=False, timeout=t) if a.name in wanted]
    attacks += [a for a in program_attacks(fx, cmd, with_program, full=False, timeout=t) if a.name in wanted]

    def base(c: Path) -> list[str | bytes]:
        fx.copy(fx.program, c, "p.json")
        fx.copy(fx.chip, c, "chip.gds")
        return ["lvs", "chip.gds", "p.json"]

    attacks += [
        atk(
            cmd,
            "other-program",
            "a program of other weights and shapes (exit 3)",
            lambda c: Case(
                ["lvs", fx.copy(fx.chip, c, "chip.gds").name, fx.copy(fx.other_program, c, "o.json").name]
            ),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "swapped-arguments",
            "lvs program.json chip.gds",
            lambda c: Case(["lvs", *reversed(base(c)[1:])]),
            REFUSE,
            t,
        ),
        atk(cmd, "layer-missing", "--layer nope", lambda c: Case([*base(c), "--layer", "nope"]), REFUSE, t),
        atk(
            cmd,
            "in-fifo-gds",
            "the layout is a FIFO",
            lambda c: Case(["lvs", fifo(c, "x.gds").name, fx.copy(fx.program, c, "p.json").name]),
            REFUSE,
            t,
        ),
    ]
    return attacks


def attacks_verify(fx: Fixtures) -> list[Attack]:
    """verify: program, weights, calibration and GDS inputs, sweep and Monte Carlo options,
    the report folder."""
    cmd = "verify"
    t = 90.0

    def base(c: Path) -> list[str | bytes]:
        fx.copy(fx.program, c, "p.json")
        return ["verify", "p.json", "--models", "ideal"]

    attacks = program_attacks(
        fx, cmd, lambda c, p: Case(["verify", p.name, "--models", "ideal"]), full=False, timeout=t
    )
    attacks += [
        a
        for a in weights_attacks(
            fx, cmd, lambda c, w: Case([*base(c), "--against", w.name]), full=False, stem="fc1"
        )
        if a.name in ("npy-nan", "npz-truncated", "npy-3d", "npz-lying-member")
    ]
    attacks += [
        a
        for a in calibration_attacks(
            fx, cmd, lambda c, cal: Case([*base(c), "--calibration", cal.name]), full=False
        )
        if a.name in ("cal-json-duplicate-key", "cal-nan-p-pi", "cal-csv-duplicate-id")
    ]
    sweeps = [
        ("1.6:1.5:10", EITHER),
        ("a:b:c", REFUSE),
        ("1.5:1.6:0", REFUSE),
        ("1.5:1.6:1", EITHER),
        ("1.5:1.6:" + str(HUGE), REFUSE),
        ("nan:1.6:3", REFUSE),
        ("1.5:inf:3", REFUSE),
        ("1.5:1.6", REFUSE),
        ("1.5:1.6:3:4", REFUSE),
        ("1.5:1.6:2.5", REFUSE),
        ("0.01:100:3", REFUSE),
        ("", REFUSE),
    ]
    attacks += bad_values(cmd, "--sweep", sweeps, base, timeout=t)
    attacks += bad_values(
        cmd, "--wl", [("nan", REFUSE), ("inf", REFUSE), ("0", REFUSE), ("abc", REFUSE)], base, timeout=t
    )
    attacks += bad_values(
        cmd,
        "--monte-carlo",
        [("0", REFUSE), ("-1", REFUSE), ("10000000", REFUSE), ("nan", REFUSE)],
        base,
        timeout=t,
    )
    attacks += bad_values(
        cmd,
        "--coupler-sigma",
        [("nan", REFUSE), ("0.6", REFUSE), ("-0.1", REFUSE)],
        lambda c: [*base(c), "--monte-carlo", "4"],
        timeout=t,
    )
    attacks += bad_values(
        cmd,
        "--phase-sigma-rad",
        [("nan", REFUSE), ("inf", REFUSE), ("-1", REFUSE)],
        lambda c: [*base(c), "--monte-carlo", "4"],
        timeout=t,
    )
    attacks += bad_values(
        cmd,
        "--loss-sigma-dB",
        [("nan", REFUSE), ("inf", REFUSE)],
        lambda c: [*base(c), "--monte-carlo", "4"],
        timeout=t,
    )
    attacks += bad_values(
        cmd,
        "--seed",
        [("-1", REFUSE)],
        lambda c: [*base(c), "--monte-carlo", "4"],
        timeout=t,
    )
    attacks += bad_values(
        cmd,
        "--min-yield",
        [("nan", REFUSE), ("2", REFUSE)],
        lambda c: [*base(c), "--monte-carlo", "4"],
        timeout=t,
    )

    def mismatched(c: Path, *extra: str) -> Case:
        return Case([*base(c), "--against", fx.copy(fx.other, c, "o.npz").name, *extra])

    attacks += [
        atk(
            cmd,
            "min-fidelity=nan-mismatched",
            "--min-fidelity nan against other weights (NaN would pass anything)",
            lambda c: mismatched(c, "--min-fidelity", "nan"),
            REFUSE,
            t,
        ),
        atk(
            cmd, "mismatched-weights", "--against other weights (exit 3)", lambda c: mismatched(c), REFUSE, t
        ),
        atk(
            cmd,
            "min-yield-without-monte-carlo",
            "--min-yield 0.9 without --monte-carlo",
            lambda c: Case([*base(c), "--min-yield", "0.9"]),
            EITHER,
            t,
        ),
        atk(
            cmd,
            "gds-without-program",
            "a GDS without --program",
            lambda c: Case(["verify", fx.copy(fx.chip, c, "chip.gds").name]),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "gds-truncated",
            "a truncated GDS with --program",
            lambda c: Case(
                [
                    "verify",
                    put(c, "x.gds", fx.chip.read_bytes()[:3000]).name,
                    "--program",
                    fx.copy(fx.program, c, "p.json").name,
                ]
            ),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "gds-other-program",
            "the chip with another program (instances missing)",
            lambda c: Case(
                [
                    "verify",
                    fx.copy(fx.chip, c, "chip.gds").name,
                    "--program",
                    fx.copy(fx.other_program, c, "o.json").name,
                    "--models",
                    "ideal",
                ]
            ),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "program-with-program",
            "--program on a program input",
            lambda c: Case([*base(c), "--program", "p.json"]),
            EITHER,
            t,
        ),
    ]
    attacks += layer_option_attacks(cmd, base, timeout=t)

    def report_over_input(c: Path) -> Case:
        (c / "rep").mkdir()
        fx.copy(fx.program, c / "rep", "verify.json")
        return Case(
            ["verify", "rep/verify.json", "--models", "ideal", "--report", "rep"],
            outputs=[c / "rep" / "verify.md"],
        )

    attacks += [
        atk(
            cmd,
            "report-over-input",
            "--report DIR where the input program is DIR/verify.json",
            report_over_input,
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "report-is-file",
            "--report names a regular file",
            lambda c: Case([*base(c), "--report", put(c, "f.txt", "x").name]),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "report-fifo",
            "--report names a FIFO",
            lambda c: Case([*base(c), "--report", fifo(c, "r").name]),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "report-dev-null",
            "--report /dev/null",
            lambda c: Case([*base(c), "--report", "/dev/null"], checks=[devnull_intact]),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "report-missing-parents",
            "--report in missing folders (created?)",
            lambda c: Case([*base(c), "--report", "a/b/c"], outputs=[c / "a"]),
            EITHER,
            t,
        ),
        atk(
            cmd,
            "report-name-100k",
            "--report of 100,000 characters",
            lambda c: Case([*base(c), "--report", LONG_NAME]),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "valid-report",
            "a valid run with --report (baseline)",
            lambda c: Case(
                [*base(c), "--report", "rep", "--sweep", "1.5:1.6:3", "--monte-carlo", "4"],
                outputs=[c / "rep"],
                checks=[strict_json_output(c / "rep" / "verify.json")],
            ),
            ACCEPT,
            t,
        ),
    ]
    return attacks


#: Seven levels of nine aliases each: 9^7 = 4.8 million strings once expanded.
BILLION_LAUGHS = (
    "a: &a [x,x,x,x,x,x,x,x,x]\n"
    + "".join(f"{n}: &{n} [{','.join(['*' + p] * 9)}]\n" for p, n in zip("abcde", "bcdef", strict=True))
    + "g: ["
    + ",".join(["*f"] * 9)
    + "]\n"
)


def _design_yaml(weights: str = "weights.npz", **extra: str) -> str:
    lines = [
        "version: 1",
        f"weights: {weights}",
        "sweep: {start_um: 1.5, stop_um: 1.6, points: 3}",
        "verify: {monte_carlo_samples: 4}",
    ]
    return "\n".join(lines + [f"{k}: {v}" for k, v in extra.items()]) + "\n"


def attacks_build(fx: Fixtures) -> list[Attack]:
    """build: design files (YAML attacks, values), the build folder, a few whole builds."""
    cmd = "build"
    t = 180.0

    def design(c: Path, text: str | bytes) -> Case:
        fx.copy(fx.design / "weights.npz", c, "weights.npz")
        put(c, "design.yaml", text)
        return Case(
            ["build", "design.yaml", "--out", "out"],
            outputs=[c / "out"],
            partial_ok=True,
            marker=c / "marker",
        )

    valid = _design_yaml()
    yamls: list[tuple[str, str, str | bytes, str]] = [
        ("yaml-malformed", "an unclosed flow mapping", "version: 1\nweights: {weights.npz\n", REFUSE),
        (
            "yaml-tabs",
            "tab indentation",
            "version: 1\nverify:\n\tmodels: pdk\nweights: weights.npz\n",
            REFUSE,
        ),
        ("yaml-truncated", "the design cut in a flow mapping", valid[: valid.index("points")], REFUSE),
        ("yaml-non-utf8", "a 0xff byte", valid.encode() + b"name: \xff\n", REFUSE),
        ("yaml-empty", "an empty design file", "", REFUSE),
        ("yaml-top-list", "a YAML list", "- version: 1\n- weights: weights.npz\n", REFUSE),
        (
            "yaml-alias",
            "one harmless alias (&a / *a)",
            "version: 1\nweights: &w weights.npz\nname: *w\n",
            REFUSE,
        ),
        (
            "yaml-billion-laughs",
            "nested aliases (billion laughs)",
            BILLION_LAUGHS + valid,
            REFUSE,
        ),
        (
            "yaml-python-tag",
            "a !!python/object/apply tag that would create the marker",
            valid + "name: !!python/object/apply:builtins.open ['marker', 'w']\n",
            REFUSE,
        ),
        (
            "yaml-python-name",
            "a !!python/name:os.system tag",
            valid + "name: !!python/name:os.system\n",
            REFUSE,
        ),
        ("yaml-custom-tag", "an unknown !foo tag", valid + "name: !foo bar\n", REFUSE),
        ("yaml-date-name", "name: 2026-01-01 (a YAML date)", valid + "name: 2026-01-01\n", EITHER),
        ("yaml-duplicate-key", "weights twice", valid + "weights: other.npz\n", REFUSE),
        (
            "yaml-merge-key",
            "a << merge key",
            "base: &b {points: 3}\n" + valid + "sweep2:\n  <<: *b\n",
            REFUSE,
        ),
        (
            "yaml-deep-nesting",
            "10,000 nested flow lists",
            valid + "name: " + "[" * 10_000 + "]" * 10_000 + "\n",
            REFUSE,
        ),
        ("yaml-huge-int", "dac_bits of 400 digits", valid + "dac_bits: " + "9" * 400 + "\n", REFUSE),
        ("unknown-key", "a misspelt key", valid + "methdo: svd\n", REFUSE),
        ("version-2", "version 2", valid.replace("version: 1", "version: 2"), REFUSE),
        ("version-string", "version '1'", valid.replace("version: 1", "version: '1'"), SHOULD_REFUSE),
        ("no-weights", "no weights key", "version: 1\n", REFUSE),
        ("weights-missing-file", "weights naming no file", _design_yaml("nope.npz"), REFUSE),
        ("weights-dev-zero", "weights: /dev/zero", _design_yaml("/dev/zero"), REFUSE),
        ("weights-etc-passwd", "weights: /etc/passwd", _design_yaml("/etc/passwd"), REFUSE),
        ("weights-list", "weights as a list", _design_yaml("[a.npz, b.npz]"), REFUSE),
        ("name-newline", "a name with a newline", valid + 'name: "chip\\nx"\n', REFUSE),
        ("name-100k", "a name of 100,000 characters", valid + f"name: {LONG_NAME}\n", REFUSE),
        ("sweep-points-huge", "sweep points 10^12", valid.replace("points: 3", f"points: {HUGE}"), REFUSE),
        ("sweep-points-1", "sweep points 1", valid.replace("points: 3", "points: 1"), REFUSE),
        ("sweep-nan", "sweep start .nan", valid.replace("start_um: 1.5", "start_um: .nan"), REFUSE),
        ("sweep-inf", "sweep stop .inf", valid.replace("stop_um: 1.6", "stop_um: .inf"), REFUSE),
        (
            "mc-huge",
            "monte_carlo_samples 10^12",
            valid.replace("monte_carlo_samples: 4", f"monte_carlo_samples: {HUGE}"),
            REFUSE,
        ),
        (
            "mc-negative",
            "monte_carlo_samples -1",
            valid.replace("monte_carlo_samples: 4", "monte_carlo_samples: -1"),
            REFUSE,
        ),
        (
            "min-fidelity-nan",
            "verify.min_fidelity .nan",
            valid.replace("monte_carlo_samples: 4", "monte_carlo_samples: 4, min_fidelity: .nan"),
            REFUSE,
        ),
        ("dac-bits-0", "dac_bits 0", valid + "dac_bits: 0\n", REFUSE),
        ("dac-bits-true", "dac_bits: true (a bool)", valid + "dac_bits: true\n", SHOULD_REFUSE),
        ("dac-bits-string", "dac_bits: '12'", valid + "dac_bits: '12'\n", SHOULD_REFUSE),
        ("budget-negative", "heater_power_budget_mW -1", valid + "heater_power_budget_mW: -1\n", REFUSE),
        ("budget-nan", "heater_power_budget_mW .nan", valid + "heater_power_budget_mW: .nan\n", REFUSE),
        ("layers-missing", "layers: [nope]", valid + "layers: [nope]\n", REFUSE),
        ("calibration-missing", "calibration: nope.json", valid + "calibration: nope.json\n", REFUSE),
        ("method-bogus", "method: bogus", valid + "method: bogus\n", REFUSE),
    ]
    attacks = [
        atk(cmd, name, desc, lambda c, text=text: design(c, text), expect, 60.0)
        for name, desc, text, expect in yamls
    ]

    def nan_weights(c: Path) -> Case:
        case = design(c, valid)
        np.savez(c / "weights.npz", fc1=np.array([[1.0, np.nan], [0.0, 1.0]]))
        return case

    attacks.append(atk(cmd, "weights-nan", "the design's weights hold a NaN", nan_weights, REFUSE, t))

    def weights_fifo(c: Path) -> Case:
        case = design(c, _design_yaml("pipe.npz"))
        fifo(c, "pipe.npz")
        return case

    attacks.append(atk(cmd, "weights-fifo", "the design's weights are a FIFO", weights_fifo, REFUSE, 60.0))
    attacks += [
        a
        for a in input_file_attacks(
            cmd,
            lambda c, d: Case(["build", str(d), "--out", "out"], outputs=[c / "out"], partial_ok=True),
            suffix=".yaml",
        )
        if a.name in ("in-fifo", "in-directory", "in-missing", "in-dev-zero", "in-name-100k")
    ]

    def out_is(c: Path, make: Callable[[Path], str]) -> Case:
        case = design(c, valid)
        case.argv[-1] = make(c)
        case.outputs = []
        case.partial_ok = False
        return case

    attacks += [
        atk(
            cmd,
            "out-is-file",
            "--out names a regular file",
            lambda c: out_is(c, lambda c: put(c, "f.txt", "x").name),
            REFUSE,
            60.0,
        ),
        atk(
            cmd,
            "out-fifo",
            "--out names a FIFO",
            lambda c: out_is(c, lambda c: fifo(c, "pipe").name),
            REFUSE,
            60.0,
        ),
        atk(cmd, "out-dev-null", "--out /dev/null", lambda c: out_is(c, lambda c: "/dev/null"), REFUSE, 60.0),
        atk(
            cmd,
            "out-name-100k",
            "--out of 100,000 characters",
            lambda c: out_is(c, lambda c: LONG_NAME),
            REFUSE,
            60.0,
        ),
    ]

    def out_over_program(c: Path) -> Case:
        fx.copy(fx.agg_design, c, "agg")
        return Case(["build", "agg/design.yaml", "--out", "agg"], outputs=[], partial_ok=False)

    def out_over_calibration(c: Path) -> Case:
        folder = c / "d"
        folder.mkdir()
        fx.copy(fx.design / "weights.npz", folder, "weights.npz")
        fx.copy(fx.cal_csv, folder, "heaters.csv")
        put(folder, "design.yaml", _design_yaml(calibration="heaters.csv"))
        return Case(["build", "d/design.yaml", "--out", "d"], outputs=[], partial_ok=False)

    attacks += [
        atk(
            cmd,
            "out-over-program-input",
            "--out is the design folder whose program.json is the design's input",
            out_over_program,
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "out-over-calibration-input",
            "--out is the design folder whose heaters.csv is the calibration",
            out_over_calibration,
            REFUSE,
            t,
        ),
    ]

    def readonly(c: Path) -> Case:
        if IS_ROOT:
            return Case([], skip=ROOT_SKIP)
        case = design(c, valid)
        (c / "ro").mkdir()
        case.argv[-1] = "ro/out"
        os.chmod(c / "ro", 0o555)
        case.cleanup = lambda: os.chmod(c / "ro", 0o755)
        return case

    attacks.append(atk(cmd, "out-readonly-folder", "--out inside a read-only folder", readonly, REFUSE, 60.0))

    def valid_build(c: Path) -> Case:
        case = design(c, valid)
        (c / "out").mkdir()
        stale = put(c / "out", ".~999999.deadbeef.tmp.json", "{")  # a killed build's temporary
        case.checks.append(gone_after(stale, "README: build removes the temporaries of killed builds"))
        case.checks.append(lock_left(c / "out"))
        case.checks.append(strict_json_output(c / "out" / "program.json"))
        return case

    attacks.append(
        atk(
            cmd,
            "valid-tiny",
            "a valid 2 x 2 design with a stale temporary in --out (baseline)",
            valid_build,
            ACCEPT,
            t,
        )
    )

    def strict_budget(c: Path) -> Case:
        case = design(c, _design_yaml(heater_power_budget_mW="0.001"))
        case.argv.append("--strict")
        case.checks.append(absent_after(c / "out" / "heaters.csv", "--strict refused the heater power"))
        return case

    attacks.append(
        atk(
            cmd,
            "strict-over-budget",
            "--strict with a 0.001 mW heater budget (exit 3)",
            strict_budget,
            REFUSE,
            t,
        )
    )
    return attacks


def lock_left(folder: Path) -> Check:
    """The build lock file is removed when the build ends."""

    def check(result: RunResult, cwd: Path) -> tuple[str, str] | None:
        if (folder / LOCK_NAME).exists():
            return REVIEW, f"{LOCK_NAME} left in the build folder after the build ended"
        return None

    return check


def attacks_aggregator_train(fx: Fixtures) -> list[Attack]:
    """aggregator train: sizes, noise and training options, the design folder."""
    cmd = "aggregator train"
    t = 90.0
    tiny = ["-n", "2", "-b", "1", "--restarts", "1", "--steps", "250"]

    def base(c: Path) -> list[str | bytes]:
        return ["aggregator", "train", *tiny, "-o", "agg"]

    def outs(c: Path) -> list[Path]:
        return [c / "agg"]

    def opt(
        option: str, values: Sequence[tuple[str, str]], verdict: str = DEFECT, pre: Sequence[str] = ()
    ) -> list[Attack]:
        def b(c: Path) -> list[str | bytes]:
            args = base(c)
            if option in args:
                i = args.index(option)
                del args[i : i + 2]
            return [*args, *pre]

        return bad_values(cmd, option, values, b, timeout=t, timeout_verdict=verdict, outputs=outs)

    attacks = opt("-n", [("1", REFUSE), ("0", REFUSE), ("-1", REFUSE), (str(HUGE), REFUSE), ("abc", REFUSE)])
    attacks += opt("-b", [("0", REFUSE), ("-1", REFUSE), ("64", REFUSE), (str(HUGE), REFUSE)])
    attacks += opt("--width", [("0", REFUSE), (str(10**6), REFUSE)])
    attacks += opt("--depth", [("0", REFUSE), ("-1", REFUSE), (str(10**6), REFUSE)])
    attacks += opt("--restarts", [("0", REFUSE), (str(10**9), REFUSE)])
    attacks += opt("--steps", [("0", REFUSE), ("251", REFUSE), (str(HUGE), EITHER)], verdict=REVIEW)
    attacks += opt("--noise-rad", [("nan", REFUSE), ("inf", REFUSE), ("-1", REFUSE)])
    attacks += opt("--dac-bits", [("0", REFUSE), ("25", REFUSE)])
    attacks += opt("--margin", [("nan", REFUSE), ("-1", REFUSE), ("1", ACCEPT), ("1.01", REFUSE)])  # 0..1
    attacks += opt("--input-noise", [("nan", REFUSE), ("inf", REFUSE), ("-1", REFUSE)])
    attacks += opt("--seed", [("-1", EITHER), (str(2**70), EITHER)])
    attacks += opt("--block-size", [("2", SHOULD_REFUSE)])
    attacks += opt(
        "--block-size", [("1", REFUSE), ("0", REFUSE)], pre=["--layer-type", "ud-seg", "--width", "4"]
    )
    attacks += [
        atk(
            cmd,
            "ud-seg-without-block-size",
            "--layer-type ud-seg without --block-size",
            lambda c: Case([*base(c), "--layer-type", "ud-seg"], outputs=outs(c)),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "huge-network",
            "-n 1000 -b 16 (65 million reduced inputs)",
            lambda c: Case(["aggregator", "train", "-n", "1000", "-b", "16", "-o", "agg"], outputs=outs(c)),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "out-is-file",
            "-o names a regular file",
            lambda c: Case([*base(c)[:-1], put(c, "f.txt", "x").name]),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "out-fifo",
            "-o names a FIFO",
            lambda c: Case([*base(c)[:-1], fifo(c, "pipe").name]),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "out-dev-null",
            "-o /dev/null",
            lambda c: Case([*base(c)[:-1], "/dev/null"], checks=[devnull_intact]),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "out-name-100k",
            "-o of 100,000 characters",
            lambda c: Case([*base(c)[:-1], LONG_NAME]),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "valid-tiny",
            "N=2, b=1, 250 steps into missing parent folders (baseline)",
            lambda c: Case(
                [*base(c)[:-1], "a/b/agg"],
                outputs=[c / "a"],
                checks=[strict_json_output(c / "a" / "b" / "agg" / "program.json")],
            ),
            ACCEPT,
            t,
        ),
    ]

    def readonly(c: Path) -> Case:
        if IS_ROOT:
            return Case([], skip=ROOT_SKIP)
        (c / "ro").mkdir()
        os.chmod(c / "ro", 0o555)
        return Case([*base(c)[:-1], "ro/agg"], cleanup=lambda: os.chmod(c / "ro", 0o755))

    attacks.append(atk(cmd, "out-readonly-folder", "-o inside a read-only folder", readonly, REFUSE, t))
    return attacks


def attacks_aggregator_eval(fx: Fixtures) -> list[Attack]:
    """aggregator eval: design folders (missing, spoiled files), options, the plot."""
    cmd = "aggregator eval"
    t = 90.0

    def base(c: Path) -> list[str | bytes]:
        fx.copy(fx.agg_design, c, "agg")
        return ["aggregator", "eval", "-n", "4", "-b", "4", "--design", "agg", "--backend", "program"]

    def spoil(name: str, data: bytes) -> Callable[[Path], Case]:
        def make(c: Path) -> Case:
            args = base(c)
            put(c / "agg", name, data)
            return Case(args)

        return make

    def n_mismatch(c: Path) -> Case:
        args = base(c)
        args[args.index("-n") + 1] = "8"
        return Case(args)

    attacks: list[Attack] = []
    for target in ("electronics.json", "program.json"):
        valid = (fx.agg_design / target).read_text()
        stem = target.split(".")[0]
        for name, desc, data, expect in bad_json_documents(valid):
            if name in (
                "truncated",
                "non-utf8",
                "deep-nesting",
                "duplicate-key",
                "huge-int-literal",
                "top-list",
                "empty",
                "nul-bytes",
            ):
                attacks.append(
                    atk(cmd, f"{stem}-{name}", f"{target}: {desc}", spoil(target, data), expect, t)
                )
    electronics = json.loads((fx.agg_design / "electronics.json").read_text())
    for name, desc, key, value in [
        ("servers-mismatch", "electronics for 8 servers", "servers", 8),
        ("bits-huge", "electronics bits 10^12", "bits", HUGE),
        ("threshold-nan", "threshold NaN", "threshold", float("nan")),
        ("width-zero", "width 0", "width", 0),
    ]:
        attacks.append(
            atk(
                cmd,
                f"electronics-{name}",
                desc,
                spoil("electronics.json", json.dumps({**electronics, key: value}).encode()),
                REFUSE,
                t,
            )
        )
    attacks.append(
        atk(
            cmd,
            "electronics-gain-nan",
            "an encoder gain NaN",
            spoil(
                "electronics.json",
                json.dumps(
                    walk_replace(electronics, "gain", [float("nan")] * len(electronics["encoder"]["gain"]))
                ).encode(),
            ),
            REFUSE,
            t,
        )
    )
    attacks.append(
        atk(
            cmd,
            "lut-truncated",
            "lut.json truncated (eval may not read it)",
            spoil("lut.json", b'{"format": "optinc-aggr'),
            EITHER,
            t,
        )
    )

    def replaced(name: str, make: Callable[[Path], object] = lambda p: None) -> Callable[[Path], Case]:
        """The design copy with its file ``name`` removed, then ``make(path)`` run."""

        def case(c: Path) -> Case:
            args = base(c)
            (c / "agg" / name).unlink()
            make(c / "agg" / name)
            return Case(args)

        return case

    attacks += [
        atk(cmd, "no-program", "a design folder without program.json", replaced("program.json"), REFUSE, t),
        atk(
            cmd,
            "no-electronics",
            "a design folder without electronics.json",
            replaced("electronics.json"),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "program-fifo",
            "program.json is a FIFO",
            replaced("program.json", os.mkfifo),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "program-directory",
            "program.json is a folder",
            replaced("program.json", Path.mkdir),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "other-program",
            "program.json of another network (the 2 x 2 MLP)",
            replaced("program.json", lambda p: shutil.copyfile(fx.program, p)),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "design-missing",
            "--design naming nothing",
            lambda c: Case(["aggregator", "eval", "--design", "nowhere"]),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "design-file",
            "--design naming a file",
            lambda c: Case(["aggregator", "eval", "--design", put(c, "f.txt", "x").name]),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "design-empty-folder",
            "--design an empty folder",
            lambda c: Case(["aggregator", "eval", "--design", (c / "e").mkdir() or "e"]),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "design-dotdot",
            "--design ../../../../etc",
            lambda c: Case(["aggregator", "eval", "--design", "../../../../etc"]),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "design-newline",
            "--design with a newline",
            lambda c: Case(["aggregator", "eval", "--design", "agg\nx"]),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "design-100k",
            "--design of 100,000 characters",
            lambda c: Case(["aggregator", "eval", "--design", LONG_NAME]),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "n-mismatch",
            "-n 8 against a 4-server design",
            n_mismatch,
            REFUSE,
            t,
        ),
    ]

    def opt(option: str, values: Sequence[tuple[str, str]], verdict: str = DEFECT) -> list[Attack]:
        def b(c: Path) -> list[str | bytes]:
            args = base(c)
            if option in args:
                i = args.index(option)
                del args[i : i + 2]
            return args

        return bad_values(cmd, option, values, b, timeout=t, timeout_verdict=verdict)

    attacks += opt("-n", [("0", REFUSE), ("-1", REFUSE), (str(HUGE), REFUSE)])
    attacks += opt("-b", [("0", REFUSE), ("64", REFUSE)])
    attacks += opt("--sample", [("0", REFUSE), ("-1", REFUSE), (str(HUGE), EITHER)], verdict=REVIEW)
    attacks += opt("--draws", [("-1", REFUSE), (str(HUGE), EITHER)], verdict=REVIEW)
    attacks += opt("--seed", [("-1", EITHER), (str(2**70), EITHER)])
    attacks += opt("--backend", [("bogus", REFUSE)])
    attacks += [
        atk(
            cmd,
            "plot-without-draws",
            "--plot without --draws",
            lambda c: Case([*base(c), "--plot", "r.png"], outputs=[c / "r.png"]),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "plot-suffix-json",
            "--plot r.json",
            lambda c: Case([*base(c), "--draws", "1", "--plot", "r.json"], outputs=[c / "r.json"]),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "plot-is-input",
            "--plot the design's electronics.json",
            lambda c: Case([*base(c), "--draws", "1", "--plot", "agg/electronics.json"]),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "plot-dev-null",
            "--plot /dev/null",
            lambda c: Case([*base(c), "--draws", "1", "--plot", "/dev/null"], checks=[devnull_intact]),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "plot-directory",
            "--plot an existing folder named x.png",
            lambda c: Case([*base(c), "--draws", "1", "--plot", (c / "x.png").mkdir() or "x.png"]),
            REFUSE,
            t,
        ),
        atk(cmd, "valid", "the committed design copied (baseline)", lambda c: Case(base(c)), ACCEPT, t),
    ]
    return attacks


def attacks_ddp_experiment(fx: Fixtures) -> list[Attack]:
    """ddp-experiment: options, lookup files, designs and the output folder."""
    cmd = "ddp-experiment"
    t = 150.0

    def base(c: Path) -> list[str | bytes]:
        return ["ddp-experiment", "--world-size", "2", "--epochs", "1", "--out", "run"]

    def outs(c: Path) -> list[Path]:
        return [c / "run"]

    def opt(option: str, values: Sequence[tuple[str, str]]) -> list[Attack]:
        def b(c: Path) -> list[str | bytes]:
            args = base(c)
            if option in args:
                i = args.index(option)
                del args[i : i + 2]
            return args

        return bad_values(cmd, option, values, b, timeout=t, outputs=outs)

    attacks = opt("--world-size", [("1", REFUSE), ("0", REFUSE), ("65", REFUSE), ("abc", REFUSE)])
    attacks += opt("--epochs", [("0", REFUSE), ("-1", REFUSE), ("1001", REFUSE)])
    attacks += opt("--bits", [("0", REFUSE), ("17", REFUSE)])
    attacks += opt("--phase-noise-rad", [("nan", REFUSE), ("-1", REFUSE), ("4", REFUSE)])
    attacks += opt("--scale-chunk", [("-1", REFUSE), (str(HUGE), REFUSE)])
    attacks += opt("--seed", [("-1", REFUSE), (str(2**70), REFUSE)])
    attacks += opt("--aggregation", [("bogus", REFUSE)])

    def with_lookup(c: Path, path: Path) -> Case:
        return Case([*base(c), "--aggregation", "optinc", "--lookup", path.name], outputs=outs(c))

    def spoiled_design(c: Path) -> Case:
        fx.copy(fx.agg_design, c, "agg")
        put(c / "agg", "lut.json", b'{"format": "optinc')
        args = [
            "--world-size",
            "4",
            "--epochs",
            "1",
            "--out",
            "run",
            "--aggregation",
            "optinc",
            "--design",
            "agg",
        ]
        return Case(["ddp-experiment", *args], outputs=outs(c))

    def out_over_lookup(c: Path) -> Case:
        (c / "run").mkdir()
        fx.copy(fx.lookup2, c / "run", "config.json")
        return Case([*base(c), "--aggregation", "optinc", "--lookup", "run/config.json"])

    valid = fx.lookup.read_text()
    for name, desc, data, expect in bad_json_documents(valid):
        if name in ("truncated", "deep-nesting", "duplicate-key", "huge-int-literal"):  # each imports torch
            attacks.append(
                atk(
                    cmd,
                    f"lookup-{name}",
                    f"--lookup: {desc}",
                    lambda c, data=data: with_lookup(c, put(c, "lut.json", data)),
                    expect,
                    t,
                )
            )
    doc = json.loads(valid)
    for name, desc, change in [
        ("lookup-servers-mismatch", "a lookup for 4 servers with --world-size 2", {}),
        ("lookup-code-out-of-range", "a code of 99 in a 4-bit table", {"table": [99, *doc["table"][1:]]}),
        ("lookup-table-long", "a table of 10^6 entries", {"table": [0] * 10**6}),
        ("lookup-servers-huge", "servers 10^12", {"servers": HUGE}),
        ("lookup-bits-nan", "bits NaN", {"bits": float("nan")}),
    ]:
        attacks.append(
            atk(
                cmd,
                name,
                desc,
                lambda c, change=change: with_lookup(c, put(c, "lut.json", json.dumps({**doc, **change}))),
                REFUSE,
                t,
            )
        )
    attacks += [
        atk(cmd, "lookup-fifo", "--lookup a FIFO", lambda c: with_lookup(c, fifo(c, "lut.json")), REFUSE, t),
        atk(
            cmd,
            "lookup-missing",
            "--lookup naming no file",
            lambda c: with_lookup(c, c / "lut.json"),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "design-missing",
            "--design naming nothing",
            lambda c: Case([*base(c), "--aggregation", "optinc", "--design", "nowhere"], outputs=outs(c)),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "design-spoiled",
            "--design (4 servers, --world-size 4) with a truncated lut.json",
            spoiled_design,
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "design-and-lookup",
            "--design and --lookup together",
            lambda c: Case(
                [
                    *base(c),
                    "--aggregation",
                    "optinc",
                    "--design",
                    fx.copy(fx.agg_design, c, "agg").name,
                    "--lookup",
                    fx.copy(fx.lookup, c).name,
                ],
                outputs=outs(c),
            ),
            SHOULD_REFUSE,
            t,
        ),
        atk(
            cmd,
            "noise-without-design",
            "--phase-noise-rad 0.01 without --design",
            lambda c: Case(
                [*base(c), "--aggregation", "optinc", "--phase-noise-rad", "0.01"], outputs=outs(c)
            ),
            SHOULD_REFUSE,
            t,
        ),
        atk(
            cmd,
            "out-is-file",
            "--out names a regular file",
            lambda c: Case([*base(c)[:-1], put(c, "f.txt", "x").name]),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "out-fifo",
            "--out names a FIFO",
            lambda c: Case([*base(c)[:-1], fifo(c, "pipe").name]),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "out-dev-null",
            "--out /dev/null",
            lambda c: Case([*base(c)[:-1], "/dev/null"], checks=[devnull_intact]),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "out-name-100k",
            "--out of 100,000 characters",
            lambda c: Case([*base(c)[:-1], LONG_NAME]),
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "out-over-lookup",
            "--out run where the --lookup is run/config.json",
            out_over_lookup,
            REFUSE,
            t,
        ),
        atk(
            cmd,
            "valid",
            "world size 2, 1 epoch (baseline; no processes left)",
            lambda c: Case(base(c), outputs=outs(c), checks=[strict_json_output(c / "run" / "metrics.json")]),
            ACCEPT,
            t,
        ),
    ]
    return attacks


def attacks_ddp_compare(fx: Fixtures) -> list[Attack]:
    """ddp-compare: run folders with spoiled files, the plot output."""
    cmd = "ddp-compare"

    def base(c: Path) -> list[str | bytes]:
        fx.copy(fx.run_a, c, "a")
        fx.copy(fx.run_b, c, "b")
        return ["ddp-compare", "a", "b"]

    def spoil(name: str, data: bytes | str) -> Callable[[Path], Case]:
        def make(c: Path) -> Case:
            args = base(c)
            put(c / "b", name, data)
            return Case(args)

        return make

    def replaced(name: str, make: Callable[[Path], object] = lambda p: None) -> Callable[[Path], Case]:
        """Runs a and b with b's file ``name`` removed, then ``make(path)`` run."""

        def case(c: Path) -> Case:
            args = base(c)
            (c / "b" / name).unlink()
            make(c / "b" / name)
            return Case(args)

        return case

    def linked_twice(c: Path) -> Case:
        base(c)
        os.symlink("a", c / "alias")
        return Case(["ddp-compare", "a", "alias"])

    attacks: list[Attack] = []
    for target in ("config.json", "metrics.json"):
        valid = (fx.run_b / target).read_text()
        for name, desc, data, expect in bad_json_documents(valid):
            if name in (
                "truncated",
                "non-utf8",
                "deep-nesting",
                "duplicate-key",
                "huge-int-literal",
                "empty",
                "nul-bytes",
                "top-null",
            ):
                attacks.append(
                    atk(
                        cmd,
                        f"{target.split('.')[0]}-{name}",
                        f"{target}: {desc}",
                        spoil(target, data),
                        expect,
                    )
                )
    metrics = json.loads((fx.run_b / "metrics.json").read_text())
    row = metrics[0]
    for name, desc, rows, expect in [
        ("metrics-empty-list", "no epochs", [], REFUSE),
        ("metrics-nan-accuracy", "test_accuracy NaN", [{**row, "test_accuracy": float("nan")}], REFUSE),
        ("metrics-accuracy-2", "test_accuracy 2.0", [{**row, "test_accuracy": 2.0}], REFUSE),
        ("metrics-row-list", "an epoch that is a list", [[1, 2, 3]], REFUSE),
        (
            "metrics-missing-field",
            "an epoch without test_accuracy",
            [{k: v for k, v in row.items() if k != "test_accuracy"}],
            REFUSE,
        ),
        ("metrics-100k-epochs", "100,000 epochs", [row] * 100_000, REFUSE),
        ("metrics-extra-field", "an unknown field", [{**row, "zz": 1}], EITHER),
        ("metrics-epoch-bool", "epoch: true", [{**row, "epoch": True}], SHOULD_REFUSE),
    ]:
        attacks.append(atk(cmd, name, desc, spoil("metrics.json", json.dumps(rows)), expect))
    config = json.loads((fx.run_b / "config.json").read_text())
    attacks += [
        atk(
            cmd,
            "config-bad-aggregation",
            "aggregation 'bogus'",
            spoil("config.json", json.dumps({**config, "aggregation": "bogus"})),
        ),
        atk(
            cmd,
            "config-name-ansi",
            "design with an ANSI escape (fine unless printed raw)",
            spoil("config.json", json.dumps({**config, "design": "\x1b[2Jx"})),
            EITHER,
        ),
        atk(
            cmd,
            "metrics-csv-missing",
            "a run without metrics.csv",
            replaced("metrics.csv"),
        ),
        atk(cmd, "run-missing", "a run folder that does not exist", lambda c: Case([*base(c), "nope"])),
        atk(
            cmd, "run-is-file", "a run that is a file", lambda c: Case([*base(c), put(c, "f.txt", "x").name])
        ),
        atk(
            cmd,
            "run-empty-folder",
            "an empty run folder",
            lambda c: Case([*base(c), (c / "e").mkdir() or "e"]),
        ),
        atk(
            cmd,
            "run-fifo-metrics",
            "metrics.json is a FIFO",
            replaced("metrics.json", os.mkfifo),
        ),
        atk(cmd, "run-twice", "the same run twice", lambda c: Case([*base(c), "a"])),
        atk(
            cmd,
            "run-twice-via-link",
            "the same run twice through a symlink",
            linked_twice,
            SHOULD_REFUSE,
        ),
        atk(cmd, "run-100k", "a run name of 100,000 characters", lambda c: Case([*base(c), LONG_NAME])),
        atk(cmd, "one-run", "a single run", lambda c: Case(base(c)[:2]), EITHER),
        atk(
            cmd,
            "plot-is-input",
            "--plot a/metrics.json",
            lambda c: Case([*base(c), "--plot", "a/metrics.json"]),
        ),
        atk(
            cmd,
            "plot-suffix-json",
            "--plot out.json",
            lambda c: Case([*base(c), "--plot", "out.json"], outputs=[c / "out.json"]),
        ),
        atk(
            cmd,
            "plot-dev-null",
            "--plot /dev/null",
            lambda c: Case([*base(c), "--plot", "/dev/null"], checks=[devnull_intact]),
        ),
        atk(
            cmd,
            "plot-directory",
            "--plot an existing folder x.png",
            lambda c: Case([*base(c), "--plot", (c / "x.png").mkdir() or "x.png"]),
        ),
        atk(
            cmd,
            "plot-missing-folder",
            "--plot in a missing folder",
            lambda c: Case([*base(c), "--plot", "no/x.png"]),
        ),
        atk(cmd, "plot-fifo", "--plot a FIFO", lambda c: Case([*base(c), "--plot", fifo(c, "x.png").name])),
        atk(
            cmd,
            "plot-name-100k",
            "--plot of 100,000 characters",
            lambda c: Case([*base(c), "--plot", LONG_NAME + ".png"]),
        ),
        atk(
            cmd,
            "valid-plot",
            "two runs with --plot (baseline)",
            lambda c: Case([*base(c), "--plot", "cmp.png"], outputs=[c / "cmp.png"]),
            ACCEPT,
        ),
    ]
    return attacks


def attacks_comm_model(fx: Fixtures) -> list[Attack]:
    """comm-model: every numeric option and the plot."""
    cmd = "comm-model"

    def base(c: Path) -> list[str | bytes]:
        return ["comm-model"]

    def opt(option: str, values: Sequence[tuple[str, str]]) -> list[Attack]:
        return bad_values(cmd, option, values, base)

    attacks = opt(
        "--servers",
        [
            ("1", REFUSE),
            ("0", REFUSE),
            ("-1", REFUSE),
            (str(HUGE), REFUSE),
            ("nan", REFUSE),
            ("abc", REFUSE),
            ("1000000", ACCEPT),
        ],
    )
    attacks += opt(
        "--gradient-bytes",
        [("0", REFUSE), ("nan", REFUSE), ("inf", REFUSE), ("-1", REFUSE), ("1e16", REFUSE), ("1e15", ACCEPT)],
    )
    attacks += opt("--compute-s", [("nan", REFUSE), ("-1", REFUSE), ("inf", REFUSE), ("0", ACCEPT)])
    attacks += opt("--link-gbps", [("0", REFUSE), ("nan", REFUSE), ("inf", REFUSE)])
    attacks += opt("--latency-us", [("nan", REFUSE), ("-1", REFUSE)])
    attacks += opt("--optical-bits", [("0", REFUSE), ("33", REFUSE), ("nan", REFUSE)])
    attacks += opt("--model", [("bogus", REFUSE)])
    attacks += [
        atk(cmd, "positional-abc", "a positional N 'abc'", lambda c: Case(["comm-model", "abc"])),
        atk(
            cmd,
            "servers-duplicate",
            "--servers 4 4",
            lambda c: Case(["comm-model", "--servers", "4", "4"]),
            EITHER,
        ),
    ]

    def plot_case(c: Path, target: Path | str | bytes) -> Case:
        out = target if isinstance(target, bytes) else str(target)
        outputs = [] if str(os.fsdecode(target)).startswith("/dev/") else [Path(os.fsdecode(target))]
        return Case(["comm-model", "--plot", out], outputs=outputs)

    attacks += [
        a
        for a in output_attacks(cmd, plot_case, suffix=".png", input_name=None)
        if a.name not in ("out-name-255", "out-name-non-utf8")
    ]
    attacks += [
        atk(
            cmd,
            "plot-suffix-json",
            "--plot x.json",
            lambda c: Case(["comm-model", "--plot", "x.json"], outputs=[c / "x.json"]),
        ),
        atk(
            cmd,
            "valid-plot",
            "--plot x.png (baseline)",
            lambda c: Case(["comm-model", "--plot", "x.png"], outputs=[c / "x.png"]),
            ACCEPT,
        ),
    ]
    return attacks


def attacks_pdks(fx: Fixtures) -> list[Attack]:
    """pdks, and the foundry flow (--pdk cornerstone-si220) of layout, drc, lvs, verify
    and program: programs it cannot draw, options its die does not offer, a foundry chip
    checked or compared as something else."""
    cs, t = "cornerstone-si220", 180.0

    def unitary(c: Path) -> str:
        fx.copy(fx.unitary, c, "u.json")
        return "u.json"

    def chip(c: Path) -> str:
        fx.copy(fx.foundry_chip, c, "chip.gds")
        return "chip.gds"

    def layout(c: Path, *extra: str, program: str | None = None, out: str = "chip.gds") -> Case:
        name = program or unitary(c)
        return Case(["layout", name, "--pdk", cs, "-o", out, *extra], outputs=[c / out])

    def two_layers(c: Path) -> str:
        fx.copy(fx.program, c, "p.json")
        return "p.json"

    return [
        atk("pdks", "extra-argument", "optinc pdks extra", lambda c: Case(["pdks", "extra"]), REFUSE, t),
        atk("pdks", "list", "optinc pdks", lambda c: Case(["pdks"]), ACCEPT, t),
        atk("pdks", "layout-unitary", "a 3x3 unitary on the die", lambda c: layout(c), ACCEPT, t),
        atk(
            "pdks",
            "layout-two-layers",
            "a 2-layer SVD program on the one-layer die",
            lambda c: layout(c, program=two_layers(c)),
            REFUSE,
            t,
        ),
        atk(
            "pdks",
            "layout-svd-layer",
            "--layer fc1: an SVD layer (attenuators, terminators) on the die",
            lambda c: layout(c, "--layer", "fc1", program=two_layers(c)),
            ACCEPT,
            t,
        ),
        atk("pdks", "layout-no-route", "--no-route", lambda c: layout(c, "--no-route"), REFUSE, t),
        atk("pdks", "layout-io-edge", "--io edge", lambda c: layout(c, "--io", "edge"), REFUSE, t),
        atk("pdks", "layout-pads-bumps", "--pads bumps", lambda c: layout(c, "--pads", "bumps"), REFUSE, t),
        atk("pdks", "layout-txt", "-o chip.txt", lambda c: layout(c, out="chip.txt"), REFUSE, t),
        atk(
            "pdks",
            "layout-over-input",
            "-o u.json, the program",
            lambda c: Case(["layout", unitary(c), "--pdk", cs, "-o", "u.json"]),
            REFUSE,
            t,
        ),
        atk(
            "pdks",
            "drc-own-rules",
            "drc --pdk optinc of a foundry chip",
            lambda c: Case(["drc", chip(c), "--pdk", "optinc"]),
            REFUSE,
            t,
        ),
        atk(
            "pdks",
            "drc-foundry-rules-on-ours",
            "drc --pdk cornerstone-si220 of our own chip",
            lambda c: Case(["drc", fx.copy(fx.chip, c, "ours.gds").name, "--pdk", cs]),
            REFUSE,
            t,
        ),
        atk("pdks", "drc-foundry", "drc of the foundry chip", lambda c: Case(["drc", chip(c)]), ACCEPT, t),
        atk(
            "pdks",
            "lvs-other-program",
            "lvs of the foundry chip against a 2-layer program",
            lambda c: Case(["lvs", chip(c), two_layers(c)]),
            REFUSE,
            t,
        ),
        atk(
            "pdks",
            "verify-other-layer",
            "verify of the foundry chip with a program of another layer",
            lambda c: Case(["verify", chip(c), "--program", fx.copy(fx.other_program, c, "o.json").name]),
            REFUSE,
            t,
        ),
        atk(
            "pdks",
            "program-gds-other",
            "program --gds the foundry chip of another program",
            lambda c: Case(
                ["program", fx.copy(fx.other_program, c, "o.json").name, "--gds", chip(c), "-o", "h.csv"],
                outputs=[c / "h.csv"],
            ),
            REFUSE,
            t,
        ),
        atk(
            "pdks",
            "program-pdk-svd",
            "program --pdk cornerstone-si220 of a 2-layer program",
            lambda c: Case(["program", two_layers(c), "--pdk", cs, "-o", "h.csv"], outputs=[c / "h.csv"]),
            REFUSE,
            t,
        ),
    ]


BUILDERS: dict[str, Callable[[Fixtures], list[Attack]]] = {
    "compile": attacks_compile,
    "inspect": attacks_inspect,
    "check": attacks_check,
    "program": attacks_program,
    "layout": attacks_layout,
    "drc": attacks_drc,
    "lvs": attacks_lvs,
    "verify": attacks_verify,
    "build": attacks_build,
    "aggregator train": attacks_aggregator_train,
    "aggregator eval": attacks_aggregator_eval,
    "ddp-experiment": attacks_ddp_experiment,
    "ddp-compare": attacks_ddp_compare,
    "comm-model": attacks_comm_model,
    "pdks": attacks_pdks,
}


# --- fixtures, running, report ----------------------------------------------------------


def child_env() -> dict[str, str]:
    """The environment of every run: this checkout's code unless PYTHONPATH says otherwise,
    no bytecode written into the checkout under test, one BLAS thread."""
    env = dict(os.environ)
    env.setdefault("PYTHONPATH", str(Path(__file__).resolve().parents[1]))
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def base_command() -> list[str]:
    """How ``optinc`` is started: the console script beside this interpreter, else -m."""
    script = Path(sys.executable).parent / "optinc"
    if script.is_file():
        return [sys.executable, str(script)]
    return [sys.executable, "-m", "optinc_compiler.cli"]


def code_root(env: dict[str, str]) -> Path:
    """The checkout whose optinc_compiler the runs import."""
    out = subprocess.run(
        [sys.executable, "-c", "import optinc_compiler; print(optinc_compiler.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    )
    return Path(out.stdout.strip()).parent.parent


def preflight(env: dict[str, str]) -> None:
    """Exit with one clear message when the code under test does not start with this
    interpreter (e.g. it needs a newer Python than this virtualenv's)."""
    proc = subprocess.run(
        [sys.executable, "-c", "import optinc_compiler.cli"], env=env, capture_output=True, text=True, cwd="/"
    )
    if proc.returncode == 0:
        return
    import tomllib

    root = code_root(env)
    needs = ""
    with contextlib.suppress(OSError, tomllib.TOMLDecodeError, KeyError):
        wanted = tomllib.loads((root / "pyproject.toml").read_text())["project"]["requires-python"]
        needs = f"; its pyproject.toml requires Python {wanted}"
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    raise SystemExit(
        f"the code under test ({root}) does not start with {sys.executable} "
        f"(Python {sys.version.split()[0]}){needs}: {lines[-1] if lines else 'no message'}\n"
        "run the harness with an interpreter of that checkout's virtualenv"
    )


def _run_optinc(args: Sequence[str], cwd: Path, env: dict[str, str], timeout: float = 180) -> None:
    proc = subprocess.run(
        [*base_command(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        raise SystemExit(
            f"fixture step 'optinc {' '.join(args)}' failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}"
        )


def build_fixtures(root: Path, env: dict[str, str], needs: set[str]) -> Fixtures:
    """Valid inputs: 2 x 2 weights, their program and chip, a calibration, run folders, a
    tiny design, a copy of the committed aggregator design and a lookup table."""
    root.mkdir(parents=True, exist_ok=True)
    croot = code_root(env)
    rng = np.random.default_rng(0)
    np.savez(root / "weights.npz", fc1=rng.normal(size=(2, 2)), fc2=rng.normal(size=(2, 2)))
    np.savez(root / "other.npz", fc1=rng.normal(size=(2, 2)), fc2=rng.normal(size=(2, 2)))
    np.savez(root / "other_shape.npz", fc1=rng.normal(size=(3, 3)))
    np.save(root / "w.npy", rng.normal(size=(2, 2)))
    _run_optinc(["compile", "weights.npz", "-o", "program.json"], root, env)
    _run_optinc(["compile", "other_shape.npz", "-o", "other_program.json"], root, env)
    if needs & {"program", "drc", "lvs", "verify"}:
        _run_optinc(["layout", "program.json", "-o", "chip.gds"], root, env)
    else:
        (root / "chip.gds").write_bytes(gds_library([gds_structure("TOP")]))
    doc = json.loads((root / "program.json").read_text())
    heater = doc["layers"][0]["stages"][0]["mzis"][0]["id"] + "_theta"
    cal = {
        "format": "optinc-calibration",
        "version": 1,
        "name": "attack chip",
        "v_max_V": 10.0,
        "default": {"p_pi_mW": 25.0, "resistance_ohm": 500.0, "phase_offset_rad": 0.0},
        "heaters": {heater: {"p_pi_mW": 24.0, "resistance_ohm": 510.0, "phase_offset_rad": 0.1}},
        "splitters": {},
        "crosstalk": [],
    }
    (root / "cal.json").write_text(json.dumps(cal, indent=1) + "\n")
    (root / "cal.csv").write_text(
        f"id,p_pi_mW,resistance_ohm,phase_offset_rad,kappa2_1,kappa2_2\n{heater},24,510,0.1,,\n"
    )
    _run_optinc(["program", "program.json", "--calibration", "cal.json", "-o", "h1.csv"], root, env)
    _run_optinc(["program", "program.json", "--calibration", "cal.csv", "-o", "h2.csv"], root, env)
    for name, acc in (("run_a", 0.82), ("run_b", 0.84)):
        run = root / name
        run.mkdir(exist_ok=True)
        config = {
            "aggregation": "ring",
            "bits": 4,
            "design": None,
            "epochs": 1,
            "error_feedback": True,
            "world_size": 2,
            "seed": 0,
        }
        row = {
            "epoch": 1,
            "train_loss": 1.7,
            "test_loss": 0.69,
            "test_accuracy": acc,
            "fallbacks": 0,
            "bit_error_rate": 0.0,
            "elapsed_s": 0.4,
        }
        (run / "config.json").write_text(json.dumps(config, indent=1) + "\n")
        (run / "metrics.json").write_text(json.dumps([row], indent=1) + "\n")
        (run / "metrics.csv").write_text(",".join(row) + "\n" + ",".join(str(v) for v in row.values()) + "\n")
    _run_optinc(["ddp-compare", "run_a", "run_b"], root, env)
    design = root / "design"
    design.mkdir(exist_ok=True)
    np.savez(design / "weights.npz", fc1=rng.normal(size=(2, 2)))
    (design / "design.yaml").write_text(_design_yaml())
    agg = root / "agg_design"
    source = croot / "designs" / "aggregator_n4_b4"
    if not agg.exists():
        shutil.copytree(source, agg)
    for servers, name in ((4, "lookup.json"), (2, "lookup2.json")):
        table = [int(np.rint(s / servers)) for s in range(servers * 15 + 1)]  # 4-bit codes
        lookup = {"format": "optinc-lookup", "version": 1, "servers": servers, "bits": 4}
        lookup |= {"preprocessing": "sum", "source": "ideal", "table": table}
        (root / name).write_text(json.dumps(lookup) + "\n")
    u, _ = np.linalg.qr(rng.normal(size=(3, 3)) + 1j * rng.normal(size=(3, 3)))
    np.savez(root / "u3.npz", u3=u)
    _run_optinc(["compile", "u3.npz", "-o", "unitary.json"], root, env)
    if "pdks" in needs:
        _run_optinc(["layout", "unitary.json", "--pdk", "cornerstone-si220", "-o", "foundry.gds"], root, env)
    return Fixtures(
        root=root,
        code_root=croot,
        weights=root / "weights.npz",
        other=root / "other.npz",
        w_npy=root / "w.npy",
        program=root / "program.json",
        other_program=root / "other_program.json",
        chip=root / "chip.gds",
        cal_json=root / "cal.json",
        cal_csv=root / "cal.csv",
        run_a=root / "run_a",
        run_b=root / "run_b",
        design=design,
        agg_design=agg,
        lookup=root / "lookup.json",
        lookup2=root / "lookup2.json",
        unitary=root / "unitary.json",
        foundry_chip=root / "foundry.gds",
    )


@dataclass
class Outcome:
    """One attack's run and verdict, as stored in results.json."""

    id: str
    command: str
    name: str
    description: str
    expect: str
    verdict: str
    reasons: list[str]
    argv: list[str]
    repro: str
    case_dir: str
    returncode: int | None
    seconds: float
    stderr_tail: str
    stdout_tail: str


def run_attack(attack: Attack, cases: Path, base: Sequence[str], env: dict[str, str]) -> Outcome:
    """Prepare, run and classify one attack (its folder removed when handled)."""
    folder = cases / attack.id.replace("/", "__")
    if folder.exists():
        _rmtree(folder)
    folder.mkdir(parents=True)
    shown: list[str] = []
    try:
        case = attack.make(folder)
    except Exception as exc:  # noqa: BLE001  # a payload this machine cannot build is a skip
        case = Case([], skip=f"payload not built here: {type(exc).__name__}: {exc}"[:300])
    shown = [shell_arg(a) for a in case.argv]
    repro = f"cd {shlex.quote(str(folder))} && optinc {' '.join(shown[0:])}" if case.argv else ""
    if case.stdout_file:
        repro += f" > {case.stdout_file}"
    if "ansi" in attack.name:
        case.checks.append(no_raw_escape)
    if case.skip is not None:
        verdict, reasons, result = SKIPPED, [case.skip], None
    else:
        try:
            result = execute(case, folder, base, env=env, timeout=attack.timeout)
        finally:
            if case.cleanup is not None:
                case.cleanup()
        verdict, reasons = classify(
            result, attack.expect, timeout_verdict=attack.timeout_verdict, timeout_s=attack.timeout
        )
    outcome = Outcome(
        id=attack.id,
        command=attack.command,
        name=attack.name,
        description=attack.description,
        expect=attack.expect,
        verdict=verdict,
        reasons=reasons,
        argv=shown,
        repro=repro,
        case_dir=str(folder),
        returncode=None if result is None else result.returncode,
        seconds=0.0 if result is None else result.seconds,
        stderr_tail="" if result is None else result.stderr[-1500:],
        stdout_tail="" if result is None else result.stdout[-500:],
    )
    if verdict in (HANDLED, SKIPPED):
        _rmtree(folder)
    return outcome


def _rmtree(folder: Path) -> None:
    for root, dirs, _ in os.walk(folder):  # read-only folders of the attacks
        for d in dirs:
            with contextlib.suppress(OSError):
                os.chmod(Path(root) / d, 0o755)
    shutil.rmtree(folder, ignore_errors=True)


def last_line(text: str) -> str:
    """The last non-empty line of ``text``, cut to 200 characters."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return (lines[-1][:200] + ("..." if len(lines[-1]) > 200 else "")) if lines else "(empty)"


def summary_rows(outcomes: Sequence[Outcome]) -> list[tuple[str, int, int, int, int, int]]:
    """Per command: tried, handled, defects, to review, skipped."""
    rows = []
    for command in COMMANDS:
        mine = [o for o in outcomes if o.command == command]
        if mine:
            counts = [sum(o.verdict == v for o in mine) for v in (HANDLED, DEFECT, REVIEW, SKIPPED)]
            rows.append((command, len(mine) - counts[3], *counts))
    return rows


def table(outcomes: Sequence[Outcome]) -> str:
    """The per-subcommand table in Markdown."""
    rows = summary_rows(outcomes)
    lines = [
        "| subcommand | attacks run | handled | defects | to review | skipped |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for command, *counts in rows:
        lines.append(f"| {command} | " + " | ".join(str(n) for n in counts) + " |")
    totals = [sum(r[i] for r in rows) for i in range(1, 6)]
    lines.append("| **total** | " + " | ".join(f"**{n}**" for n in totals) + " |")
    return "\n".join(lines)


def write_report(out: Path, outcomes: Sequence[Outcome], meta: dict[str, Any]) -> Path:
    """report.md and results.json in ``out``."""
    ordered = sorted(outcomes, key=lambda o: (COMMANDS.index(o.command), o.name))
    (out / "results.json").write_text(
        json.dumps({"meta": meta, "results": [asdict(o) for o in ordered]}, indent=1) + "\n"
    )
    md = [
        "# optinc CLI attack report",
        "",
        f"- code under test: `{meta['code_root']}` (PYTHONPATH `{meta['pythonpath']}`)",
        f"- interpreter `{meta['python']}`; running as root: {meta['root']}",
        f"- started {meta['started']}, {meta['seconds']:.0f} s with {meta['jobs']} worker(s)",
        "- reproduce a case: the case folders of defects and reviews are kept; run the line with the same "
        "`PYTHONPATH` (and the interpreter's `optinc`).",
        "",
        table(ordered),
        "",
        "## Defects",
        "",
    ]
    defects = [o for o in ordered if o.verdict == DEFECT]
    if not defects:
        md.append("None.")
    for o in defects:
        md += [
            f"- **{o.id}** ({o.description}; expected: {o.expect}) exit {o.returncode}: "
            + "; ".join(o.reasons),
            f"  - repro: `{o.repro}`",
            f"  - last stderr line: `{last_line(o.stderr_tail)}`",
        ]
    md += ["", "## To review", ""]
    reviews = [o for o in ordered if o.verdict == REVIEW]
    if not reviews:
        md.append("None.")
    for o in reviews:
        md += [
            f"- **{o.id}** ({o.description}; expected: {o.expect}) exit {o.returncode}: "
            + "; ".join(o.reasons),
            f"  - repro: `{o.repro}`",
            f"  - last stderr line: `{last_line(o.stderr_tail)}`",
        ]
    skipped = [o for o in ordered if o.verdict == SKIPPED]
    if skipped:
        md += ["", "## Skipped", ""] + [f"- {o.id}: {o.reasons[0]}" for o in skipped]
    md += ["", "## Every attack", "", "| attack | expected | exit | verdict | s |", "|---|---|---:|---|---:|"]
    md += [f"| {o.id} | {o.expect} | {o.returncode} | {o.verdict} | {o.seconds:.1f} |" for o in ordered]
    path = out / "report.md"
    path.write_text("\n".join(md) + "\n")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run the attacks, write the report, print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out", type=Path, default=Path("/tmp/attack"), help="report folder (default /tmp/attack)"
    )
    parser.add_argument("--jobs", type=int, default=2, help="parallel workers (default 2)")
    parser.add_argument(
        "--only",
        action="append",
        type=lambda v: v.replace("aggregator-", "aggregator "),
        choices=COMMANDS,
        metavar="SUBCOMMAND",
        help="run one subcommand's attacks (repeatable; 'aggregator train' or aggregator-train)",
    )
    parser.add_argument("--match", help="only attacks whose id contains this text")
    parser.add_argument("--list", action="store_true", help="list the attacks and exit")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    selected = set(args.only or COMMANDS)
    env = child_env()
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    t0 = time.monotonic()
    preflight(env)
    print(f"fixtures in {out / 'fixtures'} ...", file=sys.stderr)
    fx = build_fixtures(out / "fixtures", env, selected)
    attacks = [a for command in COMMANDS if command in selected for a in BUILDERS[command](fx)]
    if args.match:
        attacks = [a for a in attacks if args.match in a.id]
    ids = [a.id for a in attacks]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise SystemExit(f"duplicate attack ids: {sorted(duplicates)}")
    if args.list:
        for a in attacks:
            print(f"{a.id:60s} {a.expect:14s} {a.description}")
        return 0
    cases = out / "cases"
    cases.mkdir(exist_ok=True)
    base = base_command()
    # the slowest first, so that the workers end together
    order = sorted(attacks, key=lambda a: -a.timeout)
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    print(f"{len(attacks)} attacks on {fx.code_root} with {args.jobs} worker(s)", file=sys.stderr)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(run_attack, a, cases, base, env): a for a in order}
        for future in as_completed(futures):
            o = future.result()
            with lock:
                outcomes.append(o)
                mark = "" if o.verdict == HANDLED else f" {o.verdict}"
                print(
                    f"[{len(outcomes)}/{len(attacks)}] {o.id} exit {o.returncode} {o.seconds:.1f}s{mark}",
                    file=sys.stderr,
                )
    meta = {
        "code_root": str(fx.code_root),
        "pythonpath": env.get("PYTHONPATH", ""),
        "python": sys.executable,
        "started": started,
        "seconds": time.monotonic() - t0,
        "jobs": args.jobs,
        "root": IS_ROOT,
        "attacks": len(attacks),
    }
    report = write_report(out, outcomes, meta)
    print(table(outcomes))
    print(f"\nreport: {report}\nresults: {out / 'results.json'}")
    return 1 if any(o.verdict == DEFECT for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
