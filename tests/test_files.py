"""Files in and out: no command writes over one of its inputs or over anything but a
regular file, reads block on a FIFO, or leaves a partial file; concurrent and killed
builds leave one complete build or a clear error."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from optinc_compiler import files
from optinc_compiler.cli import main
from optinc_compiler.errors import InputError


def _exact(message: str) -> str:
    return re.escape(message) + "$"


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe.json"
    os.mkfifo(path)
    return path


def test_outputs_must_be_new_or_regular_files(tmp_path, fifo):
    (tmp_path / "old.json").write_text("x")
    assert files.check_output(tmp_path / "new.json") == tmp_path / "new.json"
    assert files.check_output(tmp_path / "old.json") == tmp_path / "old.json"
    for path, kind in ((tmp_path, "a folder"), (fifo, "a FIFO"), (Path("/dev/null"), "a character device")):
        message = f"output {str(path)!r} is {kind}: allowed a new file name or a regular file"
        with pytest.raises(InputError, match=_exact(message)):
            files.check_output(path)


def test_an_output_may_not_be_an_input_even_through_a_link(tmp_path):
    weights = tmp_path / "W.npy"
    np.save(weights, np.eye(2))
    link = tmp_path / "link.npy"
    link.symlink_to(weights)
    for out in (weights, link):
        message = f"output {str(out)!r} is the input {str(weights)!r}: writing it would destroy it"
        with pytest.raises(InputError, match=_exact(message)):
            files.check_output(out, inputs=[weights])


def test_a_fifo_input_is_refused_at_once(fifo):
    with pytest.raises(
        InputError, match=_exact(f"phase program {str(fifo)!r} is a FIFO, not a regular file")
    ):
        files.read_text(fifo, what="phase program")


def test_inputs_are_utf8_and_bounded(tmp_path):
    path = tmp_path / "p.json"
    path.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(
        InputError, match=_exact(f"program {str(path)!r} is not UTF-8 text (byte 7: b'\\xff')")
    ):
        files.read_text(path, what="program")
    with pytest.raises(InputError, match=_exact(f"program {str(path)!r} has 10 bytes; the limit is 4 bytes")):
        files.read_text(path, what="program", max_bytes=4)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")

    def fail(tmp: Path) -> None:
        tmp.write_text("partial")
        raise OSError(28, "No space left on device")

    with pytest.raises(InputError, match=_exact(f"cannot write {str(target)!r}: No space left on device")):
        files.write_atomic(target, fail)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_an_output_into_a_read_only_folder_is_refused_before_the_work(tmp_path, monkeypatch):
    """os.access decides (root passes mode bits; a read-only mount still fails it)."""
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == tmp_path else real(p, mode))
    with pytest.raises(InputError, match=_exact(f"output folder {str(tmp_path)!r} is not writable")):
        files.check_output(tmp_path / "x.json")


def test_a_png_that_fails_on_a_full_disk_leaves_no_layout(tmp_path, monkeypatch):
    """klayout reports write errors as RuntimeError "... (errno=28) ..."; the PNG is
    rendered from the GDS's temporary, so neither file is left."""
    from optinc_compiler import layout

    def full(gds, png, **kwargs):
        raise RuntimeError(f"Write error on file: {png} (errno=28) in LayoutViewBase.save_image")

    monkeypatch.setattr(layout, "render_png", full)
    np.save(tmp_path / "W.npy", np.eye(2))
    runner = CliRunner()
    assert (
        runner.invoke(main, ["compile", str(tmp_path / "W.npy"), "-o", str(tmp_path / "p.json")]).exit_code
        == 0
    )
    chip, png = tmp_path / "x.gds", tmp_path / "x.png"
    result = runner.invoke(main, ["layout", str(tmp_path / "p.json"), "-o", str(chip), "--png", str(png)])
    assert result.exit_code == 1
    assert result.stderr == f"Error: cannot write {str(png)!r}: No space left on device\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["W.npy", "p.json"]


def test_a_writer_that_writes_nothing_is_an_error(tmp_path):
    target = tmp_path / "x.png"
    with pytest.raises(
        InputError, match=_exact(f"cannot write {str(target)!r}: the writer produced no file")
    ):
        files.write_atomic(target, lambda tmp: None)
    assert not target.exists()


def test_names_the_file_system_takes_are_written_and_longer_ones_refused(tmp_path):
    files.write_text_atomic(tmp_path / ("a" * 250 + ".json"), "{}")
    assert (tmp_path / ("a" * 250 + ".json")).read_text() == "{}"
    message = r"file name 'a{132}\.\.\.a{49}' \(300 characters\) has 300 bytes; allowed: at most 255$"
    with pytest.raises(InputError, match=message):
        files.check_output(tmp_path / ("a" * 300))


def test_stale_temporaries_of_dead_processes_go(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    stale = tmp_path / f".~{int(dead.stdout)}.0123abcd.tmp.gds"
    mine = files.temporary_for(tmp_path / "chip.gds")
    for path in (stale, mine, tmp_path / "chip.gds"):
        path.write_text("x")
    assert files.remove_stale_temporaries(tmp_path) == (stale,)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, "chip.gds"])


def test_stdout_into_a_closed_pipe_is_one_line(tmp_path):
    np.save(tmp_path / "W.npy", np.eye(4))
    command = [sys.executable, "-m", "optinc_compiler.cli", "compile", str(tmp_path / "W.npy"), "-o", "-"]
    shell = " ".join(command) + " | true"  # the reader is gone before the compiler writes
    run = subprocess.run(["bash", "-o", "pipefail", "-c", shell], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert run.stderr == "Error: cannot write to stdout: the pipe was closed\n"


@pytest.mark.parametrize(
    ("args", "what"),
    [
        (["compile", "{W}", "-o", "{W}"], "output {W!r} is the input {W!r}: writing it would destroy it"),
        (["program", "{P}", "-o", "{P}"], "output {P!r} is the input {P!r}: writing it would destroy it"),
        (["layout", "{P}", "-o", "{P}"], "layout {P!r} is the input {P!r}: writing it would destroy it"),
        (
            ["layout", "{P}", "-o", "{D}/x.gds", "--png", "{P}"],
            "PNG {P!r} is the input {P!r}: writing it would destroy it",
        ),
        (
            ["layout", "{P}", "-o", "{D}/x.gds", "--png", "{D}/x.json"],
            "PNG '{D}/x.json' must end in .png (the image is a PNG)",
        ),
        (["comm-model", "--plot", "{P}"], "plot {P!r} must end in .png (the image is a PNG)"),
        (
            ["compile", "{W}", "-o", "/dev/null"],
            "output '/dev/null' is a character device: allowed a new file name or a regular file",
        ),
        (["inspect", "{F}"], "phase program {F!r} is a FIFO, not a regular file"),
    ],
)
def test_commands_never_write_over_their_inputs_or_non_files(tmp_path, args, what):
    weights, program, fifo = tmp_path / "W.npy", tmp_path / "p.json", tmp_path / "f.json"
    np.save(weights, np.eye(2))
    runner = CliRunner()
    assert runner.invoke(main, ["compile", str(weights), "-o", str(program)]).exit_code == 0
    os.mkfifo(fifo)
    names = {"W": str(weights), "P": str(program), "D": str(tmp_path), "F": str(fifo)}
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    result = runner.invoke(main, [a.format(**names) for a in args])
    assert result.exit_code == 1, result.output
    assert result.stderr == f"Error: {what.format(**names)}\n"
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    assert after == before


def test_drc_report_over_its_layout_is_refused(tmp_path):
    runner = CliRunner()
    np.save(tmp_path / "W.npy", np.eye(2))
    assert (
        runner.invoke(main, ["compile", str(tmp_path / "W.npy"), "-o", str(tmp_path / "p.json")]).exit_code
        == 0
    )
    chip = tmp_path / "c.gds"
    assert runner.invoke(main, ["layout", str(tmp_path / "p.json"), "-o", str(chip)]).exit_code == 0
    before = chip.read_bytes()
    result = runner.invoke(main, ["drc", str(chip), "--report", str(chip)])
    assert result.exit_code == 1
    assert (
        result.stderr
        == f"Error: report {str(chip)!r} is the input {str(chip)!r}: writing it would destroy it\n"
    )
    assert chip.read_bytes() == before


# --- builds: one folder, one build ------------------------------------------------------

DESIGN = """\
version: 1
weights: w.npz
io: none
sweep: {start_um: 1.54, stop_um: 1.56, points: 2}
verify: {monte_carlo_samples: 0}
"""


def _design(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "w.npz", fc1=np.random.default_rng(2).normal(size=(4, 4)))
    (folder / "design.yaml").write_text(DESIGN)
    return folder / "design.yaml"


def _build_process(design: Path, out: Path) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "optinc_compiler.cli", "build", str(design), "--out", str(out)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(path: Path, process: subprocess.Popen[str], timeout_s: float = 120.0) -> None:
    start = time.monotonic()
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() - start < timeout_s
        time.sleep(0.05)


def test_a_build_into_its_own_design_folder_keeps_the_design(tmp_path):
    design = _design(tmp_path)
    (tmp_path / "program.json").write_text("{}")
    text = DESIGN.replace("weights: w.npz", "weights: w.npz\nprogram: program.json")
    design.write_text(text)
    result = CliRunner().invoke(main, ["build", str(design), "--out", str(tmp_path)])
    assert result.exit_code == 1
    program = tmp_path / "program.json"
    assert result.stderr == (
        f"Error: build file {str(program)!r} is the input {str(program)!r}: writing it would destroy it\n"
    )
    assert program.read_text() == "{}"


@pytest.mark.slow
def test_a_second_build_into_a_busy_folder_is_refused_and_the_first_completes(tmp_path):
    design, out = _design(tmp_path / "d"), tmp_path / "out"
    first = _build_process(design, out)
    _wait_for(out / "program.json", first)
    second = subprocess.run(
        [sys.executable, "-m", "optinc_compiler.cli", "build", str(design), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == 1
    assert second.stderr.strip().splitlines()[-1] == (
        f"Error: build folder {str(out)!r} is in use by another optinc build (pid {first.pid}); "
        "wait for it to finish or build into another --out"
    )
    assert first.wait(timeout=300) == 0, first.communicate()
    assert (out / "report.html").is_file()


@pytest.mark.slow
def test_a_build_killed_mid_write_is_cleaned_up_by_the_next(tmp_path):
    design = _design(tmp_path / "d")
    reference, out = tmp_path / "ref", tmp_path / "out"
    assert CliRunner().invoke(main, ["build", str(design), "--out", str(reference)]).exit_code == 0
    victim = _build_process(design, out)
    _wait_for(out / "program.json", victim)
    time.sleep(1.0)  # into the layout stage
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    stale = files.temporary_for(out / "chip.gds").with_name(f".~{victim.pid}.0123abcd.tmp.gds")
    stale.write_text("partial")  # what a kill during the GDS write leaves
    assert CliRunner().invoke(main, ["build", str(design), "--out", str(out)]).exit_code == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(p.name for p in reference.iterdir())
    assert ".optinc-build.lock" not in names  # the killed build's lock went with the next build
    for name in names:
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name


def test_a_full_disk_at_the_build_lock_is_one_error_naming_the_folder(tmp_path, monkeypatch):
    """Writing the pid fails, and so does the close that flushes it: the first error wins."""
    import io

    from optinc_compiler import build as build_module

    out = tmp_path / "out"
    out.mkdir()
    real = (out / build_module.LOCK_FILE).open("a+")  # the lock's inode, for flock and stat

    class FullDisk(io.StringIO):
        def fileno(self) -> int:
            return real.fileno()

        def flush(self) -> None:
            raise OSError(28, "No space left on device")

        def close(self) -> None:  # as a buffered file: close flushes first
            try:
                self.flush()
            finally:
                super().close()

    original = Path.open
    monkeypatch.setattr(
        Path,
        "open",
        lambda self, *a, **k: FullDisk() if self.name == build_module.LOCK_FILE else original(self, *a, **k),
    )
    with pytest.raises(InputError) as info, build_module.locked_folder(out):
        pass
    real.close()
    assert str(info.value) == f"cannot write the build lock in {str(out)!r}: No space left on device"
    assert not (out / build_module.LOCK_FILE).exists()


def test_files_written_together_change_all_or_none(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text("old a")
    b.write_text("old b")

    def nothing(tmp: Path) -> None:
        pass

    def full(tmp: Path) -> None:
        raise OSError(28, "No space left on device")

    def new(text: str):
        return lambda tmp: tmp.write_text(text)

    with pytest.raises(InputError) as info:
        files.write_all_atomic([(a, nothing), (b, new("new b"))])
    assert str(info.value) == f"cannot write {str(a)!r}: the writer produced no file"
    with pytest.raises(InputError) as info:
        files.write_all_atomic([(a, new("new a")), (b, full)])
    assert str(info.value) == f"cannot write {str(b)!r}: No space left on device"
    with pytest.raises(InputError) as info:
        files.write_all_atomic([(a, new("x")), (tmp_path / "." / "a.json", new("y"))])
    assert (
        str(info.value)
        == f"{str(tmp_path / '.' / 'a.json')!r} is named twice among the files written together"
    )
    assert (a.read_text(), b.read_text()) == ("old a", "old b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json"]  # no temporaries left
    assert files.write_all_atomic([(a, new("new a")), (b, new("new b"))]) == (a, b)
    assert (a.read_text(), b.read_text()) == ("new a", "new b")
