"""Files in and out: the rules every command follows, in one place.

Inputs are regular files (a FIFO would block, a device or folder is not data), read with
a size limit, decoded as UTF-8 with one readable error. Outputs:

* are a new name or an existing regular file, never a folder, FIFO or device node
  (``os.replace`` onto ``/dev/full`` as root would replace the device itself);
* are never one of the command's own inputs (the same file after resolving links:
  ``optinc compile W.npy -o W.npy`` must not replace the weights);
* are written through :func:`write_atomic`: a temporary sibling, then a rename, so a
  failed write (a full disk, a kill) leaves the old file or none, never a partial one,
  and the first error is the one reported even when the clean-up fails too.

Temporaries are named ``.~{pid}.{digest}.tmp{suffix}`` (short, so any name the file
system takes can be written); :func:`remove_stale_temporaries` deletes those of
processes that no longer run (a build killed with ``kill -9``).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import reprlib
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from optinc_compiler.errors import InputError
from optinc_compiler.guard import quote

#: Largest text input read (phase programs, design files, calibrations, lookups): a
#: 256 x 256 svd program is ~8 MB; 1 GB would not fit the stages anyway.
MAX_TEXT_BYTES = 512 * 1024 * 1024
#: How much of a user-supplied value an error message quotes.
QUOTE_CHARS = 80

_BOUNDED = reprlib.Repr()
_BOUNDED.maxlevel, _BOUNDED.maxstring, _BOUNDED.maxother = 3, QUOTE_CHARS, QUOTE_CHARS
_TEMPORARY = re.compile(r"^\.~(\d+)\.[0-9a-f]{8}\.tmp(\.[^.]*)?$")
#: klayout reports a failed write as RuntimeError("... (errno=28) ...").
_KLAYOUT_ERRNO = re.compile(r"\(errno=(\d+)\)")


def shorten(value: object, limit: int = QUOTE_CHARS) -> str:
    """``repr(value)`` for error messages, a long string cut to its first ``limit``
    characters (``'aaa'...``), anything else to ``limit`` characters of its repr."""
    if isinstance(value, str):
        return repr(value[:limit]) + "..." if len(value) > limit else repr(value)
    text = _BOUNDED.repr(value)  # bounded work too: a YAML alias bomb has a huge repr
    return text if len(text) <= limit else text[:limit] + "..."


def _kind(mode: int) -> str:
    """What a non-regular file is, for messages."""
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def check_input_file(path: Path, *, what: str) -> Path:
    """``path`` exists and is a regular file (links followed); InputError otherwise."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise InputError(f"{what} {quote(path)} does not exist") from None
    except OSError as exc:
        raise InputError(f"cannot read {what} {quote(path)}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise InputError(f"{what} {quote(path)} is {_kind(mode)}, not a regular file")
    return path


def read_text(path: Path, *, what: str, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """A regular file's text (UTF-8), at most ``max_bytes``; one-line InputErrors."""
    check_input_file(path, what=what)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise InputError(f"{what} {quote(path)} has {size:,} bytes; the limit is {max_bytes:,} bytes")
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {what} {quote(path)}: {exc.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{what} {quote(path)} is not UTF-8 text (byte {exc.start}: {data[exc.start : exc.start + 1]!r})"
        ) from None


def check_output(path: Path, *, inputs: Iterable[Path | None] = (), what: str = "output") -> Path:
    """``path`` may be written: its folder exists, it is a new name or a regular file,
    and it is none of ``inputs`` (same file after resolving links). ``-`` (stdout) is
    not a path: callers handle it before."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.exists():
        raise InputError(f"{what} folder {quote(folder)} does not exist; create it first")
    if not folder.is_dir():
        raise InputError(f"{what} folder {quote(folder)} is a file, not a folder")
    if not os.access(folder, os.W_OK):  # a read-only mount or folder: say so before the work
        raise InputError(f"{what} folder {quote(folder)} is not writable")
    check_path_names(path)  # room for the temporary's prefix and suffix
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise InputError(f"cannot write {what} {quote(path)}: {exc.strerror}") from None
    if mode is not None and not stat.S_ISREG(mode):
        raise InputError(f"{what} {quote(path)} is {_kind(mode)}: allowed a new file name or a regular file")
    for source in inputs:
        if source is not None and mode is not None and _same_file(path, source):
            raise InputError(
                f"{what} {quote(path)} is the input {quote(source)}: writing it would destroy it"
            )
    return path


def check_png_output(path: Path, *, inputs: Iterable[Path | None] = (), what: str = "PNG") -> Path:
    """:func:`check_output` for an image the product renders: always PNG, so the name
    ends in ``.png`` (a ``--plot p.json`` would otherwise replace a JSON file by a PNG)."""
    check_output(path, inputs=inputs, what=what)
    if path.suffix.lower() != ".png":
        raise InputError(f"{what} {quote(path)} must end in .png (the image is a PNG)")
    return path


def check_output_names(
    folder: Path, names: Iterable[str], *, inputs: Iterable[Path | None] = (), what: str = "output"
) -> None:
    """Each of the files ``names`` a command writes into ``folder`` may be written
    (:func:`check_output`); nothing to check while the folder does not exist."""
    if folder.is_dir():
        sources = list(inputs)
        for name in names:
            check_output(folder / name, inputs=sources, what=what)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def temporary_for(path: Path) -> Path:
    """The temporary sibling :func:`write_atomic` fills: same folder and suffix (writers
    that pick a format by suffix still do), hidden, named by this process."""
    digest = hashlib.sha256(path.name.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return path.with_name(f".~{os.getpid()}.{digest}.tmp{path.suffix[:16]}")


def write_atomic(path: Path, write: Callable[[Path], object], *, inputs: Iterable[Path | None] = ()) -> Path:
    """Let ``write`` fill a temporary sibling of ``path`` (:func:`temporary_for`), then
    rename it onto ``path``: no partial file on failure, and the failure reported (the
    first error wins over a failed clean-up). ``inputs``: the command's input files,
    which ``path`` must not be."""
    return write_all_atomic([(path, write)], inputs=inputs)[0]


def write_all_atomic(
    writers: Sequence[tuple[Path, Callable[[Path], object]]], *, inputs: Iterable[Path | None] = ()
) -> tuple[Path, ...]:
    """:func:`write_atomic` for files that belong together (a design folder, a GDS and
    its PNG): every temporary is filled and checked before the first rename, so a failed
    write changes none of the files and the renames follow each other."""
    inputs = tuple(inputs)
    paths = [path for path, _ in writers]
    for k, path in enumerate(paths):  # every name checked before any work
        check_output(path, inputs=inputs)
        if any(_same_file(path, other) or path.resolve() == other.resolve() for other in paths[:k]):
            raise InputError(f"{quote(path)} is named twice among the files written together")
    temporaries = [temporary_for(path) for path in paths]
    try:
        for (path, write), tmp in zip(writers, temporaries, strict=True):
            with _write_errors(path):
                write(tmp)
                if not tmp.is_file():
                    raise InputError(f"cannot write {quote(path)}: the writer produced no file")
        for path, tmp in zip(paths, temporaries, strict=True):
            with _write_errors(path):
                os.replace(tmp, path)
    finally:
        for tmp in temporaries:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
    return tuple(paths)


@contextlib.contextmanager
def _write_errors(path: Path) -> Iterator[None]:
    """OSError, and klayout's RuntimeError carrying an errno, as one InputError."""
    try:
        yield
    except OSError as exc:
        raise InputError(f"cannot write {quote(path)}: {exc.strerror or exc}") from None
    except RuntimeError as exc:  # klayout's writers (GDS, PNG, marker database)
        match = _KLAYOUT_ERRNO.search(str(exc))
        if match is None:
            raise
        raise InputError(f"cannot write {quote(path)}: {os.strerror(int(match.group(1)))}") from None


def write_text_atomic(path: Path, text: str, *, inputs: Iterable[Path | None] = ()) -> Path:
    """Write ``text`` (UTF-8, ``\\n`` line ends) to ``path`` atomically."""
    return write_atomic(path, lambda tmp: write_text(tmp, text), inputs=inputs)


def write_text(tmp: Path, text: str) -> None:
    """``text`` into ``tmp`` (UTF-8, ``\\n``), synced: the writer :func:`write_text_atomic` uses."""
    with tmp.open("w", encoding="utf-8", newline="\n") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())  # a full disk shows here, not after the rename


def write_stdout(text: str) -> None:
    """``text`` to stdout; a closed pipe or a full device is one InputError."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
        raise InputError("cannot write to stdout: the pipe was closed") from None
    except OSError as exc:
        _silence_stdout()
        reason = "no space left on the device" if exc.errno == errno.ENOSPC else exc.strerror
        raise InputError(f"cannot write to stdout: {reason}") from None


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def remove_stale_temporaries(folder: Path) -> tuple[Path, ...]:
    """Delete ``write_atomic`` temporaries in ``folder`` whose process no longer runs
    (left by a ``kill -9``); returns what was removed."""
    removed = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else ():
        match = _TEMPORARY.match(path.name)
        if match and not _alive(int(match.group(1))) and path.is_file():
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path)
    return tuple(removed)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False
    return True


#: Bytes of one component of a path the tools write: what common file systems take.
MAX_FILE_NAME_BYTES = 255


# --- output folders --------------------------------------------------------------------


def path_kind(path: Path, *, what: str) -> str:
    """``"folder"``, ``"file"`` or ``"missing"``; InputError when the system cannot
    tell (a name longer than the file system takes, a loop of links)."""
    try:
        if path.is_dir():
            return "folder"
        return "file" if path.exists() else "missing"
    except OSError as exc:
        raise InputError(f"cannot read {what} {quote(path)}: {exc.strerror or exc}") from None


def check_path_names(path: Path) -> None:
    """InputError when a component of ``path`` is longer than :data:`MAX_FILE_NAME_BYTES`."""
    for part in path.parts:
        size = len(os.fsencode(part))
        if size > MAX_FILE_NAME_BYTES:
            raise InputError(
                f"file name {quote(part)} has {size:,} bytes; allowed: at most {MAX_FILE_NAME_BYTES}"
            )


def check_output_folder(folder: Path) -> Path:
    """Before any work: ``folder`` is a folder or can be made with its parents (no part
    of it is a file, the nearest existing ancestor is writable); nothing is created."""
    check_path_names(folder)
    for part in (folder, *folder.parents):
        if part.exists() or part.is_symlink():
            if not part.is_dir():
                what = "output folder" if part == folder else "its parent"
                raise InputError(
                    f"cannot create output folder {quote(folder)}: {what} {quote(part)} is a file"
                )
            if part != folder and not os.access(part, os.W_OK | os.X_OK):
                raise InputError(
                    f"cannot create output folder {quote(folder)}: {quote(part)} is not writable"
                )
            break
    return folder


def make_folder(folder: Path) -> Path:
    """Create ``folder`` with its parents, as ``optinc build --out`` does."""
    check_output_folder(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create output folder {quote(folder)}: {exc.strerror}") from None
    return folder
