"""Fuzzing the loaders and the commands' options: whatever the bytes, documents or
option values, only the project's own errors (one line, exit 1/2/3) come out."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optinc_compiler import calibration as cal
from optinc_compiler import program as prog
from optinc_compiler.cli import main
from optinc_compiler.compiler import CompileOptions, compile_weights
from optinc_compiler.design import parse_design
from optinc_compiler.errors import OptincError
from optinc_compiler.io import NamedMatrix

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

#: JSON-like values, including the ones loaders trip over: huge ints, NaN, deep lists.
LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
JSONISH = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _doc() -> dict:
    program = compile_weights(
        [NamedMatrix("fc1", np.random.default_rng(0).normal(size=(3, 2)))], CompileOptions()
    )
    return json.loads(prog.to_json(program))


DOC = _doc()


def _paths(value, prefix=()):
    """Every (path, value) in a JSON document."""
    yield prefix, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


PATHS = [p for p, _ in _paths(DOC) if p]


def _replace(doc, path, value):
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


@FUZZ
@given(st.sampled_from(PATHS), JSONISH)
def test_program_loader_mutated_documents(path, value):
    doc = json.loads(json.dumps(DOC))
    _replace(doc, path, value)
    try:
        text = json.dumps(doc)
    except (ValueError, TypeError):
        return
    message = ""
    try:
        prog.from_json(text, source="p.json")
    except OptincError as exc:
        message = str(exc)
    assert "\n" not in message
    assert len(message) < 1000


@FUZZ
@given(st.binary(max_size=300))
def test_program_loader_arbitrary_bytes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "p.json"
    path.write_bytes(data)
    with pytest.raises(OptincError):
        prog.load(path)


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "version",
                "weights",
                "name",
                "layers",
                "method",
                "mesh",
                "block_size",
                "pdk",
                "io",
                "sweep",
                "verify",
                "dac_bits",
                "calibration",
                "program",
                "heater_power_budget_mW",
                "other",
            ]
        ),
        JSONISH,
        max_size=6,
    )
)
def test_design_loader_documents(tmp_path_factory, doc):
    folder = tmp_path_factory.mktemp("design")
    np.savez(folder / "w.npz", fc1=np.eye(2))
    doc = {"version": 1, "weights": "w.npz", **doc}
    try:
        text = json.dumps(doc)  # JSON is YAML
    except (ValueError, TypeError):
        return
    with contextlib.suppress(OptincError):
        parse_design(text, source=folder / "design.yaml")


@FUZZ
@given(st.text(max_size=200))
def test_design_loader_arbitrary_yaml(tmp_path_factory, text):
    folder = tmp_path_factory.mktemp("design")
    with contextlib.suppress(OptincError):
        parse_design(text, source=folder / "design.yaml")


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(["name", "v_max_V", "default", "heaters", "splitters", "crosstalk", "x"]),
        JSONISH,
        max_size=4,
    )
)
def test_calibration_loader_documents(tmp_path_factory, doc):
    path = tmp_path_factory.mktemp("cal") / "c.json"
    try:
        path.write_text(json.dumps({"format": "optinc-calibration", "version": 1, **doc}))
    except (ValueError, TypeError):
        return
    with contextlib.suppress(OptincError):
        cal.load_calibration(path)


@FUZZ
@given(st.binary(max_size=300), st.sampled_from([".json", ".csv"]))
def test_calibration_loader_arbitrary_bytes(tmp_path_factory, data, suffix):
    path = tmp_path_factory.mktemp("cal") / f"c{suffix}"
    path.write_bytes(data)
    with contextlib.suppress(OptincError):
        cal.load_calibration(path)


# --- options of every command ----------------------------------------------------------

NUMBERS = st.one_of(
    st.sampled_from(["nan", "inf", "-inf", "1e320", "-1", "0", "1e-320", str(10**12), str(2**64), "", "x"]),
    st.integers(min_value=-(10**6), max_value=10**6).map(str),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr),
)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("options")
    np.save(folder / "W.npy", np.eye(2)[::-1])
    runner = CliRunner()
    assert (
        runner.invoke(main, ["compile", str(folder / "W.npy"), "-o", str(folder / "p.json")]).exit_code == 0
    )
    return {"W": folder / "W.npy", "P": folder / "p.json", "D": folder}


COMMANDS = {
    "compile": (["compile", "{W}", "-o", "{D}/out.json"], ["--block-size", "--unitary-tol", "--max-iter"]),
    "program": (["program", "{P}", "-o", "{D}/h.csv"], ["--dac-bits", "--power-budget-mW"]),
    "verify": (
        ["verify", "{P}", "--models", "ideal"],
        [
            "--wl",
            "--min-fidelity",
            "--monte-carlo",
            "--coupler-sigma",
            "--phase-sigma-rad",
            "--loss-sigma-dB",
            "--seed",
            "--min-yield",
            "--mc-min-fidelity",
            "--sweep",
        ],
    ),
    "check": (["check", "{P}"], ["--rtol", "--atol"]),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_numeric_options_are_usage_errors_or_work(files, command):
    base, options = COMMANDS[command]

    @settings(max_examples=25, deadline=None)
    @given(
        st.lists(
            st.tuples(st.sampled_from(options), NUMBERS), min_size=1, max_size=3, unique_by=lambda p: p[0]
        )
    )
    def run(pairs):
        args = [a.format(**{k: str(v) for k, v in files.items()}) for a in base]
        for flag, value in pairs:
            args += [flag, value]
        result = CliRunner().invoke(main, args)
        assert result.exit_code in (0, 1, 2, 3), (args, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.output)
        assert "Traceback" not in result.output
        if result.exit_code == 0:  # no non-finite value may be accepted
            assert not any(v.lower() in ("nan", "inf", "-inf", "1e320") for _, v in pairs), args

    run()
