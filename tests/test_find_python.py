"""``tools/find-python``: the interpreter ``make`` uses when no PYTHON is given."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "find-python"


def find(tmp_path: Path, programs: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the script with only ``programs`` (name -> shell body) and the two tools it
    uses on PATH: the machine's own Pythons (a /usr/bin/python3.12, say) stay out."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("ls", "sort"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    for name, body in programs.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path)}  # no pyenv, no ~/.pyenv
    return subprocess.run(["/bin/sh", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=30)


def test_a_failing_shim_is_passed_over_for_a_real_312(tmp_path):
    real = f'exec {sys.executable} "$@"'  # the interpreter running the tests: 3.12
    run = find(
        tmp_path, {"python3.12": 'echo "pyenv: python3.12: command not found" >&2; exit 127', "python3": real}
    )
    assert (run.returncode, run.stdout, run.stderr) == (0, f"{tmp_path}/bin/python3\n", "")


def test_pyenv_versions_are_found(tmp_path):
    version = tmp_path / ".pyenv" / "versions" / "3.12.9" / "bin"
    version.mkdir(parents=True)
    (version / "python3.12").write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    (version / "python3.12").chmod(0o755)
    run = find(tmp_path, {"python3": "exit 1"})
    assert (run.returncode, run.stdout) == (0, f"{version}/python3.12\n")


def test_no_python_312_is_one_line_naming_what_was_tried(tmp_path):
    run = find(tmp_path, {"python3": "exit 1"})  # a Python 3.11 answers the version check with 1
    assert run.returncode == 1
    assert run.stdout == ""
    assert run.stderr == (
        "no Python 3.12 found (tried: python3.12 python3); install it or pass PYTHON=/path/to/python3.12\n"
    )
    assert os.access(SCRIPT, os.X_OK)


def test_the_newest_312_of_pyenv_is_taken(tmp_path):
    for version in ("3.12.9", "3.12.10"):
        folder = tmp_path / ".pyenv" / "versions" / version / "bin"
        folder.mkdir(parents=True)
        (folder / "python3.12").write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
        (folder / "python3.12").chmod(0o755)
    run = find(tmp_path, {})
    assert run.stdout == f"{tmp_path}/.pyenv/versions/3.12.10/bin/python3.12\n"
