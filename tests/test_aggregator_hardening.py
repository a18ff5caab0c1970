"""Bad input to ``optinc aggregator``: design folders whose electronics.json, lut.json or
program.json lie, and numeric options at and past their limits (issue 13). One line,
exit 1 (2 for NaN/inf options), nothing allocated or trained first, no traceback."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import optinc_compiler.files as files_module
from optinc_compiler.aggregator import evaluate as ev
from optinc_compiler.aggregator import export, pipeline
from optinc_compiler.aggregator.encoding import MAX_SAMPLE, AggregatorSpec
from optinc_compiler.cli import main
from optinc_compiler.distributed.lookup import load_lookup
from optinc_compiler.errors import InputError, OptincError

ROOT = Path(__file__).resolve().parents[1]
DESIGN = ROOT / "designs" / "aggregator_n4_b4"
ELECTRONICS = json.loads((DESIGN / "electronics.json").read_text())
FUZZ = settings(
    max_examples=150,
    deadline=10_000,  # a hang fails; a busy shared machine (2 cores) does not
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["aggregator", *args])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 1, 2, 3), result.output
    return result.exit_code, result.output


def own_errors_only(func, *args, **kwargs) -> None:
    message = ""
    try:
        func(*args, **kwargs)
    except OptincError as exc:
        message = str(exc)
    assert "\n" not in message


def design_copy(tmp_path: Path, **files: bytes | dict) -> Path:
    folder = tmp_path / "design"
    shutil.copytree(DESIGN, folder)
    for name, content in files.items():
        path = folder / f"{name}.json"
        path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
    return folder


def with_field(**changes) -> dict:
    return {**ELECTRONICS, **changes}


# ------------------------------------------------------------------- design folders


@pytest.mark.parametrize(
    ("files", "pattern"),
    [
        ({"electronics": with_field(layer_type="magic")}, r"layer_type is 'magic'; allowed: ud, svd, ud-seg"),
        ({"electronics": with_field(preprocessing=7)}, r"preprocessing is an integer; allowed: a string"),
        ({"electronics": with_field(width=4)}, r"encoder.gain has 6 values; allowed: 4 \(the width K\)"),
        ({"electronics": with_field(width=10**6)}, r"width is 1000000; allowed: 2 \.\. 64"),
        ({"electronics": with_field(depth=2)}, r"stages has 0 stages; allowed: depth - 1 = 1"),
        ({"electronics": with_field(servers=10**30)}, r"servers is 100000000000\.\.\..*; allowed: 2 \.\. 64"),
        ({"electronics": with_field(servers=True)}, r"servers is a boolean"),
        ({"electronics": with_field(threshold="0.5")}, r"threshold is a string; allowed: a number"),
        ({"electronics": with_field(output_code="grey")}, r"output_code is 'grey'; allowed: binary, gray"),
        ({"electronics": with_field(training=[1])}, r"training is a list; allowed: an object"),
        (
            {"electronics": with_field(encoder={"gain": [1e300] * 6, "bias": [0] * 6})},
            r"encoder.gain\[0\] is 1e\+300; allowed: -1e\+09 \.\. 1e\+09",
        ),
        (
            {"electronics": json.dumps(ELECTRONICS).replace("0.5", "NaN", 1).encode()},
            r"NaN; allowed: finite numbers",
        ),
        ({"electronics": b"[" * 100_000 + b"]" * 100_000}, r"nests lists or objects too deep"),
        ({"electronics": b'{"format": "\xe9"}'}, r"is not UTF-8 text \(byte 0xe9 at offset 12\)"),
        (
            {"electronics": b'{"servers": ' + b"9" * 5000 + b"}"},
            r": an integer of 5,000 digits; allowed: -2\^63 \.\. 2\^63 - 1$",
        ),
        ({"electronics": [1]}, r"is a list; allowed: an object"),
        ({"electronics": with_field(format="x")}, r"is not an aggregator electronics file"),
        ({"program": b"[" * 100_000 + b"]" * 100_000}, r"program.json.*(nests deeper|not valid JSON)"),
        ({"program": b'{"a": "\xff"}'}, r"program.json' is not UTF-8 text"),
    ],
)
def test_lying_design_files_are_one_line_exit_1(tmp_path, files, pattern):
    folder = design_copy(tmp_path, **files)
    code, output = invoke("eval", "--design", str(folder))
    assert code == 1, output
    assert output.count("\n") == 1
    assert re.search(pattern, output), output


def test_program_and_electronics_must_describe_the_same_network(tmp_path):
    program = json.loads((DESIGN / "program.json").read_text())
    other = json.loads((ROOT / "designs" / "aggregator_n4_b8" / "program.json").read_text())
    no_pre = {**program, "layers": [x for x in program["layers"] if x["name"] != "preprocess"]}
    cases = [
        (
            {"electronics": with_field(layer_type="svd")},
            "program.json layer 'onn1' has method 'ud'; layer type 'svd' compiles to 'svd'",
        ),
        (
            {"program": other},  # the N=4, b=8 chip's program
            "program.json layer 'preprocess' has shape (1, 32); the electronics (sum, N=4, b=4) need (1, 16)",
        ),
        (
            {"electronics": with_field(servers=8)},
            "program.json layer 'preprocess' has shape (1, 16); the electronics (sum, N=8, b=4) need (1, 32)",
        ),
        ({"program": no_pre}, "program.json has no layer 'preprocess'"),
        (
            {"program": {**program, "layers": program["layers"][:-1]}},
            "program.json has 0 ONN layer(s); electronics.json says 1",
        ),
    ]
    for k, (files, message) in enumerate(cases):
        folder = design_copy(tmp_path / str(k), **files)
        code, output = invoke("eval", "--design", str(folder))
        assert (code, output) == (1, f"Error: {str(folder)!r}: {message}\n")


def _electronics_docs() -> st.SearchStrategy[object]:
    fields = {k: st.just(v) | JSON for k, v in ELECTRONICS.items()}
    fields["width"] = st.integers(-1, 70) | JSON
    fields["depth"] = st.integers(-1, 20) | JSON
    return st.fixed_dictionaries({}, optional=fields) | JSON


@FUZZ
@given(doc=_electronics_docs())
def test_fuzz_electronics_documents(doc):
    own_errors_only(export.electronics_from_json, json.dumps(doc), source="e.json")


@FUZZ
@given(data=st.data())
def test_fuzz_mutated_design_files(tmp_path, data):
    name = data.draw(st.sampled_from(["electronics.json", "lut.json"]))
    raw = bytearray((DESIGN / name).read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at : at + data.draw(st.integers(0, 3))] = data.draw(st.binary(max_size=3))
    path = tmp_path / name
    path.write_bytes(bytes(raw))
    if name == "lut.json":
        own_errors_only(load_lookup, path)
    else:
        own_errors_only(export.electronics_from_json, bytes(raw), source="e.json")


@FUZZ
@given(
    entries=st.lists(
        st.fixed_dictionaries(
            {}, optional={"input": st.integers(-2, 70) | JSON, "output": st.integers(-2, 20) | JSON}
        ),
        max_size=70,
    )
    | JSON
)
def test_fuzz_lut_documents(tmp_path, entries):
    doc = {**json.loads((DESIGN / "lut.json").read_text()), "entries": entries}
    (tmp_path / "lut.json").write_text(json.dumps(doc))
    own_errors_only(load_lookup, tmp_path / "lut.json")


def test_the_committed_designs_still_load():
    for folder in sorted((ROOT / "designs").glob("aggregator_*")):
        if (folder / "electronics.json").is_file():
            assert ev.load_design(folder).electronics.width >= 2


# --------------------------------------------------------------------- eval options


def test_eval_refuses_a_sample_of_10_to_the_12_before_allocating():
    code, output = invoke("eval", "--sample", str(10**12))
    assert (code, output) == (
        1,
        f"Error: sample size 1,000,000,000,000 is not allowed; use at most {MAX_SAMPLE:,} raw inputs\n",
    )
    code, output = invoke("eval", "--draws", str(10**12))
    assert (code, output) == (1, "Error: draws = 1000000000000 is not allowed; use 0 <= draws <= 10,000\n")
    code, output = invoke("eval", "--seed", "-1")
    assert (code, output) == (1, "Error: seed = -1 is not allowed; use 0 <= seed <= 4294967295\n")


def test_eval_checks_the_plot_path_first(tmp_path):
    code, output = invoke("eval", "--draws", "1", "--plot", str(tmp_path / "no" / "p.png"))
    assert (code, output.count("\n")) == (1, 1)
    assert "does not exist; create it first" in output


class _StopError(OptincError):
    """Stands in for the work after the checks."""


INTS = st.sampled_from(["-1", "0", "1", "2", "4", "16", "17", "63", "64", "65", "1025", "10000", "10001",
                        "1048576", "1048577", "4294967295", "4294967296", str(10**30), "x"])  # fmt: skip
FLOATS = st.sampled_from(["nan", "inf", "-inf", "-1", "0", "1e-3", "0.5", "1", "3.1416", "4", "101", "1e308"])


@FUZZ
@given(
    options=st.dictionaries(st.sampled_from(["--servers", "--bits", "--sample", "--seed", "--draws"]), INTS)
)
def test_fuzz_eval_options(monkeypatch, options):
    monkeypatch.setattr(
        pipeline.ev, "load_design", lambda folder: (_ for _ in ()).throw(_StopError("checked"))
    )
    invoke("eval", *[x for kv in options.items() for x in kv])


@FUZZ
@given(
    ints=st.dictionaries(
        st.sampled_from(
            ["--servers", "--bits", "--width", "--depth", "--restarts", "--steps", "--seed", "--dac-bits"]
        ),
        INTS,
    ),
    floats=st.dictionaries(st.sampled_from(["--noise-rad", "--margin", "--input-noise"]), FLOATS),
)
def test_fuzz_train_options(tmp_path, monkeypatch, ints, floats):
    from optinc_compiler.aggregator import train

    monkeypatch.setattr(train, "train", lambda arch, options: (_ for _ in ()).throw(_StopError("checked")))
    args = [x for kv in {**ints, **floats}.items() for x in kv]
    code, output = invoke("train", *args, "-o", str(tmp_path / "d"))
    assert not (tmp_path / "d").exists()  # nothing is created before training ends
    if code == 2:
        assert "Invalid value" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--width", "100000"], "Error: width K = 100000 is not allowed; use K <= 64\n"),
        (["--seed", "-1"], "Error: seed = -1 is not allowed; use 0 <= seed <= 4294967295\n"),
        (["--depth", "17"], "Error: depth D = 17 is not allowed; use 1 <= D <= 16\n"),
        (["--restarts", "257"], "Error: restarts = 257 is not allowed; use 1 <= restarts <= 256\n"),
        (
            ["--steps", str(10**12)],
            "Error: steps = 1000000000000 is not allowed; use 1 <= steps <= 100,000\n",
        ),
        (
            ["--preprocessing", "bitwise", "-n", "64", "-b", "16"],
            "Error: N = 64, b = 16 with 'bitwise' preprocessing gives "
            "101,534,516,782,101,416,168,212,890,625 reduced inputs; allowed: at most 4,194,304\n",
        ),
    ],
)
def test_train_limits_are_stated_before_training(tmp_path, args, message):
    assert invoke("train", *args, "-o", str(tmp_path / "d")) == (1, message)
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("option", ["--noise-rad", "--margin", "--input-noise"])
def test_train_refuses_nan_and_inf_as_usage_errors(tmp_path, option):
    for value in ("nan", "inf"):
        code, output = invoke("train", option, value, "-o", str(tmp_path / "d"))
        assert code == 2
        assert "is not a finite number" in output


def test_train_output_folders(tmp_path):
    (tmp_path / "f").write_text("x")
    code, output = invoke("train", "-o", str(tmp_path / "f"))
    assert code == 2  # click: a file where the folder should be
    code, output = invoke("train", "-o", str(tmp_path / ("d" * 300)))
    assert (code, output.count("\n")) == (1, 1)
    assert "(300 characters) has 300 bytes; allowed: at most 255" in output
    out = tmp_path / "a" / "b" / "c"  # parents made after training, as optinc build --out does
    code, output = invoke("train", "-n", "2", "-b", "1", "--steps", "250", "--restarts", "1", "-o", str(out))
    assert code in (0, 3), output
    assert sorted(p.name for p in out.iterdir()) == [
        "electronics.json",
        "lut.json",
        "program.json",
        "weights.npz",
    ]


# -------------------------------------------------------------- batched evaluation


def test_batched_evaluation_equals_one_batch(monkeypatch):
    chip = ev.load_design(DESIGN)
    matrices = ev.layer_matrices(chip)
    codes = np.random.default_rng(3).integers(0, 16, size=(5000, 4))
    whole = ev.raw_accuracy(chip, matrices, codes)
    robust = ev.robustness(chip, noise_rad=0.01, dac_bits=12, draws=40, seed=1)
    monkeypatch.setattr(ev, "MAX_BATCH_VALUES", 64)
    assert ev.raw_accuracy(chip, matrices, codes) == whole
    assert ev.robustness(chip, noise_rad=0.01, dac_bits=12, draws=40, seed=1) == robust


def test_sample_size_limit_is_in_the_sampler():
    with pytest.raises(InputError, match=f"use at most {MAX_SAMPLE:,} raw inputs"):
        pipeline.raw_codes(AggregatorSpec(4, 4), MAX_SAMPLE + 1, 0)


@pytest.mark.parametrize("name", ["q" * 300, "designs/" + "q" * 300])
def test_300_character_design_names_are_one_line(name):
    code, output = invoke("eval", "--design", name)
    assert code == 1
    assert output.count("\n") == 1
    assert "(300 characters" in output or "characters): File name too long" in output


def test_a_design_below_100_percent_is_not_written_over_a_design(tmp_path, monkeypatch):
    out = tmp_path / "agg"
    shutil.copytree(DESIGN, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    failing = ev.Accuracy(what="reduced", inputs=8, correct=7, min_margin=-0.1)
    monkeypatch.setattr(pipeline.ev, "reduced_accuracy", lambda chip, matrices: failing)
    code, output = invoke("train", "-n", "2", "-b", "1", "--steps", "250", "--restarts", "1", "-o", str(out))
    assert code == 3
    assert output.endswith(
        f"Error: aggregator is not bit-exact: reduced 87.50% (1 wrong); {str(out)!r} keeps the design"
        " it holds (more --restarts or --steps may reach 100%)\n"
    )
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_design_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    """A full disk at the last file (the lookup table) leaves the folder's design as it was."""
    out = tmp_path / "agg"
    shutil.copytree(DESIGN, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    chip = ev.load_design(DESIGN)
    real = files_module.write_text

    def full_at_the_lut(tmp: Path, text: str) -> None:
        if text == "{}":  # the lookup table of this call
            raise OSError(28, "No space left on device")
        real(tmp, text)

    monkeypatch.setattr(files_module, "write_text", full_at_the_lut)
    weights = {"other": np.eye(2, dtype=complex)}  # not the folder's: a write would show
    with pytest.raises(InputError, match=re.escape(f"cannot write {str(out / 'lut.json')!r}: No space left")):
        export.write_design(out, chip.program, chip.electronics, "{}", weights)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
