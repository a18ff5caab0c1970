"""The attack harness ``tools/attack_cli.py`` itself: its classifier on fake commands
(``python -c`` scripts, independent of optinc's behaviour) and three real attacks on
``optinc inspect`` end to end."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("attack_cli", ROOT / "tools" / "attack_cli.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["attack_cli"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


ac = _load()


def fake(
    tmp_path: Path, script: str, *, expect: str = "refuse", timeout: float = 20.0, **case: Any
) -> tuple[str, list[str], Any]:
    """Run ``python -c script`` through the harness in ``tmp_path``: (verdict, reasons, result)."""
    result = ac.execute(ac.Case([], **case), tmp_path, [sys.executable, "-c", script], timeout=timeout)
    verdict, reasons = ac.classify(result, expect, timeout_s=timeout)
    return verdict, reasons, result


ONE_LINE_ERROR = "import sys; sys.stderr.write(\"Error: 'w.npy' is not a .npy file\\n\"); sys.exit(1)"


def test_one_line_error_is_handled(tmp_path: Path) -> None:
    (tmp_path / "w.npy").write_bytes(b"junk")
    verdict, reasons, result = fake(tmp_path, ONE_LINE_ERROR)
    assert (verdict, reasons, result.returncode) == (ac.HANDLED, [], 1)


def test_traceback_is_a_defect(tmp_path: Path) -> None:
    verdict, reasons, result = fake(tmp_path, "raise KeyError('fc1')")
    assert verdict == ac.DEFECT
    assert result.returncode == 1
    assert any("traceback" in r for r in reasons)
    assert any("exception class" in r for r in reasons)


def test_timeout_is_a_defect_and_the_group_is_killed(tmp_path: Path) -> None:
    # a child that would outlive its parent: the whole process group goes
    child = "[sys.executable, '-c', 'import time; time.sleep(60)']"
    script = f"import subprocess, sys, time; subprocess.Popen({child}); time.sleep(60)"
    start = time.monotonic()
    verdict, reasons, result = fake(tmp_path, script, timeout=1.5)
    assert time.monotonic() - start < 15
    assert result.timed_out
    assert result.returncode is None
    assert verdict == ac.DEFECT
    assert any("no exit within" in r for r in reasons)


def test_timeout_can_be_a_review(tmp_path: Path) -> None:
    result = ac.execute(
        ac.Case([]), tmp_path, [sys.executable, "-c", "import time; time.sleep(60)"], timeout=1.0
    )
    assert ac.classify(result, ac.EITHER, timeout_verdict=ac.REVIEW)[0] == ac.REVIEW


def test_modified_input_is_a_defect(tmp_path: Path) -> None:
    (tmp_path / "w.npy").write_bytes(b"weights")
    script = "open('w.npy', 'ab').write(b'!'); " + ONE_LINE_ERROR.removeprefix("import sys; ")
    verdict, reasons, _ = fake(tmp_path, "import sys; " + script)
    assert verdict == ac.DEFECT
    assert reasons == ["input changed: w.npy"]


def test_deleted_input_is_a_defect(tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text("{}")
    verdict, reasons, _ = fake(tmp_path, "import os; os.remove('p.json')", expect=ac.EITHER)
    assert verdict == ac.DEFECT
    assert reasons == ["input changed: p.json (deleted)"]


def test_exit_zero_on_garbage_is_a_defect_and_fine_when_harmless(tmp_path: Path) -> None:
    assert fake(tmp_path, "pass", expect=ac.REFUSE)[0] == ac.DEFECT
    assert fake(tmp_path, "pass", expect=ac.SHOULD_REFUSE)[0] == ac.REVIEW
    assert fake(tmp_path, "pass", expect=ac.EITHER)[0] == ac.HANDLED
    assert fake(tmp_path, ONE_LINE_ERROR, expect=ac.ACCEPT)[0] == ac.REVIEW


def test_temporary_file_left_is_a_defect(tmp_path: Path) -> None:
    script = "open('.~4242.0123abcd.tmp.json', 'w'); " + ONE_LINE_ERROR
    verdict, reasons, _ = fake(tmp_path, script)
    assert verdict == ac.DEFECT
    assert reasons == ["temporary/half-written files left: .~4242.0123abcd.tmp.json"]


def test_output_left_by_an_error_is_a_defect(tmp_path: Path) -> None:
    script = "open('out.json', 'w').write('{'); " + ONE_LINE_ERROR
    verdict, reasons, _ = fake(tmp_path, script, outputs=[tmp_path / "out.json"])
    assert verdict == ac.DEFECT
    assert reasons == ["output left behind by an error: out.json"]


def test_marker_file_is_a_defect(tmp_path: Path) -> None:
    verdict, reasons, _ = fake(tmp_path, "open('marker', 'w'); " + ONE_LINE_ERROR, marker=tmp_path / "marker")
    assert verdict == ac.DEFECT
    assert "marker" in reasons[0]


def test_silent_failure_and_signals_are_defects(tmp_path: Path) -> None:
    assert fake(tmp_path, "import sys; sys.exit(1)")[1] == ["exit 1 without a message on stderr"]
    verdict, reasons, _ = fake(tmp_path, "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert verdict == ac.DEFECT
    assert "killed by signal 9" in reasons


def test_long_messages_and_library_text(tmp_path: Path) -> None:
    flood = "import sys; sys.stderr.write('Error: no layer ' + 'n' * 100000 + '\\n'); sys.exit(1)"
    assert fake(tmp_path, flood)[0] == ac.DEFECT
    quoted = "import sys; sys.stderr.write('Error: bad (Weights only load failed.)\\n'); sys.exit(1)"
    verdict, reasons, _ = fake(tmp_path, quoted)
    assert verdict == ac.REVIEW
    assert reasons == ["the message quotes torch/pickle text"]


def test_fifo_in_the_case_folder_does_not_block(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.npy")
    verdict, _, result = fake(tmp_path, ONE_LINE_ERROR, timeout=10)
    assert verdict == ac.HANDLED
    assert result.seconds < 10


def test_shell_arg_keeps_reproductions_short() -> None:
    assert ac.shell_arg("a b") == "'a b'"
    assert ac.shell_arg("fc1\nfc2") == "$'fc1\\x0afc2'"
    assert ac.shell_arg(b"bad\xff.json") == "$'bad\\xff.json'"
    long = ac.shell_arg("n" * 100_000 + ".json")
    assert len(long) < 120
    assert "100000" in long


def test_payload_builders() -> None:
    np = pytest.importorskip("numpy")
    import io

    good = ac.npy_bytes("<f8", (2, 2), bytes(32))
    assert np.load(io.BytesIO(good)).shape == (2, 2)
    gds = ac.gds_library([ac.gds_structure("A", refs=["B"]), ac.gds_structure("B")])
    assert gds.endswith(b"\x00\x04\x04\x00")
    assert ac.gds_add_structures(gds, [ac.gds_structure("C")]).count(b"\x00\x06\x06") == 3
    names = [name for name, *_ in ac.bad_json_documents('{"format": "x", "version": 1}')]
    assert {"truncated", "duplicate-key", "deep-nesting", "non-utf8"} <= set(names)


def test_three_real_attacks_on_inspect(tmp_path: Path) -> None:
    program = ROOT / "designs" / "aggregator_n4_b4" / "program.json"
    unused = {f.name: tmp_path / "unused" for f in dataclasses.fields(ac.Fixtures)}
    fx = ac.Fixtures(**{**unused, "root": tmp_path, "program": program})
    wanted = {"json-truncated", "nan-theta", "in-fifo"}
    attacks = [a for a in ac.attacks_inspect(fx) if a.name in wanted]
    assert {a.name for a in attacks} == wanted
    env = ac.child_env()
    env["PYTHONPATH"] = str(ROOT)  # this checkout's code
    outcomes = [ac.run_attack(a, tmp_path / "cases", ac.base_command(), env) for a in attacks]
    for o in outcomes:
        assert o.verdict != ac.SKIPPED, o
        assert o.returncode is not None, o  # no hang on the FIFO
        assert o.repro.startswith("cd ")
        assert " optinc inspect " in o.repro
        assert Path(o.case_dir).exists() == (o.verdict != ac.HANDLED)
    meta = {"code_root": str(ROOT), "pythonpath": str(ROOT), "python": sys.executable, "started": "now"}
    report = ac.write_report(tmp_path, outcomes, {**meta, "seconds": 0.0, "jobs": 1, "root": ac.IS_ROOT})
    assert "| inspect | 3 |" in report.read_text()
    rows = json.loads((tmp_path / "results.json").read_text())["results"]
    assert sorted(r["name"] for r in rows) == sorted(wanted)
