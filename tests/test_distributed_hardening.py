"""Bad input to the distributed-training tools: lookup files, run folders, comm-model and
ddp-experiment options (issue 13). One line and exit 1 for bad files, exit 2 for bad
options, never a traceback; fuzzing of every loader and every numeric option."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optinc_compiler.cli import main
from optinc_compiler.distributed import comm_model as cm
from optinc_compiler.distributed import experiment as ex
from optinc_compiler.distributed.lookup import ideal_lookup, load_lookup, save_lookup
from optinc_compiler.errors import InputError, OptincError

ROOT = Path(__file__).resolve().parents[1]
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


def own_errors_only(func, *args) -> None:
    """``func(*args)`` raises nothing, or an OptincError of one line."""
    message = ""
    try:
        func(*args)
    except OptincError as exc:
        message = str(exc)
    assert "\n" not in message


def one_line_error(func, *args) -> str:
    with pytest.raises(InputError) as info:
        func(*args)
    message = str(info.value)
    assert "\n" not in message
    assert len(message) < 600, message
    return message


# ------------------------------------------------------------------------ lookup files

LUT = {"format": "optinc-lookup", "version": 1, "servers": 2, "bits": 1, "preprocessing": "sum"}
AGG = {"format": "optinc-aggregator-lut", "version": 1, "servers": 2, "bits": 1, "preprocessing": "sum"}


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        (b"[" * 100_000 + b"]" * 100_000, r"nests lists or objects too deep; allowed: the JSON parser"),
        (b'{"format": "\xe9"}', r"is not UTF-8 text \(byte 0xe9 at offset 12\)"),
        (
            b'{"servers": ' + b"9" * 5000 + b"}",
            r": an integer of 5,000 digits; allowed: -2\^63 \.\. 2\^63 - 1$",
        ),
        (b'{"a": NaN}', r"NaN; allowed: finite numbers"),
        (b'{"servers": 2, "servers": 4}', r"key 'servers' appears twice in one object"),
        (
            json.dumps({**LUT, "servers": 10**30, "table": []}).encode(),
            r"servers is 100000000000\.\.\..*2 \.\. 64",
        ),
        (
            json.dumps({**LUT, "servers": True, "table": []}).encode(),
            r"servers is a boolean; allowed: an integer",
        ),
        (
            json.dumps({**LUT, "servers": "2", "table": []}).encode(),
            r"servers is a string; allowed: an integer",
        ),
        (
            json.dumps({**LUT, "table": [0, 1.0, 1]}).encode(),
            r"table\[1\] is '1.0'; allowed: integer codes 0 \.\. 1",
        ),
        (json.dumps({**LUT, "table": [0, 1, 2**63]}).encode(), r"table\[2\] is '9223372036854775808'"),
        (json.dumps({**LUT, "table": [0] * 10**4}).encode(), r"table has 10,000 items; allowed: at most 3"),
        (json.dumps({**LUT, "table": {"0": 1}}).encode(), r"table is an object; allowed: a list"),
        (
            json.dumps({**LUT, "servers": 64, "bits": 16, "preprocessing": "per_bit", "table": []}).encode(),
            r"has 101,[0-9,]+ entries; allowed: at most 4,194,304",
        ),
        (
            json.dumps([1, 2]).encode(),
            r"is not an optinc-lookup \(or optinc-aggregator-lut\) file of version 1",
        ),
        (json.dumps({**AGG, "entries": [{"input": -1, "output": 0}]}).encode(), r"entries\[0\]\.input is -1"),
        (
            json.dumps({**AGG, "entries": [{"input": 0, "output": 0}, {"input": 0, "output": 1}]}).encode(),
            r"entries\[1\]: input 0 is in the table twice",
        ),
        (json.dumps({**AGG, "entries": [[0, 0]]}).encode(), r"entries\[0\] is a list; allowed: an object"),
        (
            json.dumps(
                {**AGG, "preprocessing": "bitwise", "entries": [{"input": [3], "output": 0}]}
            ).encode(),
            r"entries\[0\]\.input\[0\] is 3; allowed: 0 \.\. 2",
        ),
        (json.dumps({**AGG, "preprocessing": "magic", "entries": []}).encode(), r"preprocessing is 'magic'"),
    ],
)
def test_bad_lookup_files(tmp_path, content, pattern):
    (tmp_path / "lut.json").write_bytes(content)
    message = one_line_error(load_lookup, tmp_path / "lut.json")
    assert re.search(pattern, message), message


def test_lookup_files_that_are_folders_or_missing(tmp_path):
    assert "does not exist" in one_line_error(load_lookup, tmp_path / "nope.json")
    assert "is not a file" in one_line_error(load_lookup, tmp_path)
    long = tmp_path / ("l" * 300 + ".json")
    assert "characters): File name too long" in one_line_error(load_lookup, long)


def _lookup_docs() -> st.SearchStrategy[object]:
    fields = {
        "format": st.sampled_from(["optinc-lookup", "optinc-aggregator-lut"]) | JSON,
        "version": st.just(1) | JSON,
        "servers": st.integers(-2, 70) | JSON,
        "bits": st.integers(-1, 17) | JSON,
        "preprocessing": st.sampled_from(["sum", "per_bit", "bitwise"]) | JSON,
        "table": st.lists(st.integers(-2, 20), max_size=40) | JSON,
        "entries": st.lists(
            st.fixed_dictionaries(
                {"input": st.integers(-2, 40) | JSON, "output": st.integers(-2, 20) | JSON}
            ),
            max_size=40,
        )
        | JSON,
    }
    return st.fixed_dictionaries({}, optional=fields) | JSON


@FUZZ
@given(doc=_lookup_docs())
def test_fuzz_lookup_documents(tmp_path, doc):
    (tmp_path / "lut.json").write_text(json.dumps(doc))
    own_errors_only(load_lookup, tmp_path / "lut.json")


@FUZZ
@given(data=st.data())
def test_fuzz_mutated_lookup_files(tmp_path, data):
    path = tmp_path / "lut.json"
    valid = json.dumps({**LUT, "servers": 4, "bits": 2, "table": ideal_lookup(4, 2).table.tolist()}).encode()
    raw = bytearray(valid)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at : at + data.draw(st.integers(0, 3))] = data.draw(st.binary(max_size=3))
    path.write_bytes(bytes(raw))
    own_errors_only(load_lookup, path)


def test_the_committed_designs_lookups_still_load():
    for lut in sorted((ROOT / "designs").glob("aggregator_*/lut.json")):
        assert load_lookup(lut).servers >= 2


# ------------------------------------------------------------------------- run folders

METRIC = {
    "epoch": 1,
    "train_loss": 1.0,
    "test_loss": 1.0,
    "test_accuracy": 0.5,
    "fallbacks": 0,
    "bit_error_rate": 0.0,
    "elapsed_s": 1.0,
}


def run_folder(path: Path, config: object = None, metrics: object = None, *, csv: bool = True) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    config = {"aggregation": "ring", "bits": 4} if config is None else config
    metrics = [METRIC] if metrics is None else metrics
    for name, doc in (("config.json", config), ("metrics.json", metrics)):
        (path / name).write_bytes(doc if isinstance(doc, bytes) else json.dumps(doc).encode())
    if csv:
        (path / "metrics.csv").write_text("epoch\n1\n")
    return path


def compare(*runs: Path, extra: tuple[str, ...] = ()) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["ddp-compare", *map(str, runs), *extra])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"csv": False}, r"has no metrics.csv; is it a complete 'optinc ddp-experiment' output folder"),
        ({"config": [1]}, r"config.json' is a list; allowed: an object"),
        ({"config": {"bits": 4}}, r"config.json' has no field 'aggregation'"),
        ({"config": {"aggregation": {"a": 1}}}, r"aggregation is an object; allowed: a string"),
        ({"config": {"aggregation": "x" * 100_000}}, r"aggregation is 'x+\.\.\.x+' \(100,000 characters\)"),
        ({"config": {"aggregation": "optinc"}}, r"has no field 'bits'"),
        (
            {"config": {"aggregation": "optinc", "design": "d", "phase_noise_rad": "a"}},
            r"phase_noise_rad is a",
        ),
        ({"config": b"[" * 100_000 + b"]" * 100_000}, r"nests lists or objects too deep"),
        ({"config": b'{"aggregation": "\xe9"}'}, r"is not UTF-8 text"),
        ({"metrics": {"a": 1}}, r"metrics.json' is an object; allowed: a list"),
        ({"metrics": []}, r"holds no epochs; allowed: 1 to 1000"),
        ({"metrics": [{"x": 1}]}, r"\[0\] has no field 'epoch'"),
        ({"metrics": [{**METRIC, "test_accuracy": "high"}]}, r"test_accuracy is a string"),
        ({"metrics": [{**METRIC, "test_accuracy": None}]}, r"test_accuracy is null"),
        ({"metrics": [{**METRIC, "test_accuracy": 2}]}, r"test_accuracy is 2; allowed: 0 \.\. 1"),
        ({"metrics": [{**METRIC, "epoch": True}]}, r"epoch is a boolean"),
        (
            {"metrics": [{**METRIC, "fallbacks": 10**30}]},
            r"fallbacks is 100000000000\.\.\.000000 \(31 digits\)",
        ),
        (
            {"metrics": json.dumps([{**METRIC, "test_loss": math.nan}]).encode()},
            r"NaN; allowed: finite numbers",
        ),
        ({"metrics": json.dumps([METRIC]).replace("1.0", "1e999", 1).encode()}, r"train_loss is inf"),
        (
            {"metrics": b'[{"epoch": ' + b"9" * 5000 + b"}]"},
            r": an integer of 5,000 digits; allowed: -2\^63 \.\. 2\^63 - 1$",
        ),
        ({"metrics": b"[" * 100_000 + b"]" * 100_000}, r"nests lists or objects too deep"),
    ],
)
def test_malformed_run_folders_are_one_line_exit_1(tmp_path, kwargs, pattern):
    run_folder(tmp_path / "ok")
    code, output = compare(tmp_path / "ok", run_folder(tmp_path / "bad", **kwargs))
    assert code == 1, output
    assert output.count("\n") == 1
    assert output.startswith("Error: ")
    assert re.search(pattern, output), output


@pytest.mark.parametrize("missing", ["config.json", "metrics.json"])
def test_run_folders_without_their_json(tmp_path, missing):
    run = run_folder(tmp_path / "r")
    (run / missing).unlink()
    assert compare(run) == (
        1,
        f"Error: {str(run)!r} has no {missing}; is it a complete 'optinc ddp-experiment' output folder?\n",
    )
    (run / missing).mkdir()  # a folder where the file should be
    assert compare(run)[0] == 1


def test_folders_given_twice_or_files_given_as_folders_are_usage_errors(tmp_path):
    run = run_folder(tmp_path / "ring")
    code, output = compare(run, tmp_path / "." / "ring")
    assert code == 2
    assert f"run folder {str(tmp_path / '.' / 'ring')!r} is given twice" in output
    (tmp_path / "afile").write_text("x")
    assert compare(run, tmp_path / "afile")[0] == 2
    code, output = compare(run, tmp_path / "nope")
    assert (code, output) == (1, f"Error: run folder {str(tmp_path / 'nope')!r} does not exist\n")
    code, output = compare(*[run_folder(tmp_path / f"r{i}") for i in range(33)])
    assert code == 2
    assert "33 runs; allowed: at most 32" in output


def test_runs_of_the_same_name_go_by_their_paths(tmp_path):
    a, b = run_folder(tmp_path / "s1" / "ring"), run_folder(tmp_path / "s2" / "ring")
    code, output = compare(a, b)
    assert code == 0, output
    assert str(a) in output
    assert str(b) in output


def test_the_plot_path_is_checked_before_the_table(tmp_path):
    run = run_folder(tmp_path / "r")
    (tmp_path / "f").write_text("x")
    for plot, message in [
        (tmp_path / "no" / "p.png", "does not exist; create it first"),
        (tmp_path / "f" / "p.png", "is a file, not a folder"),
        (tmp_path / ("p" * 300 + ".png"), "bytes; allowed: at most 255"),
        (tmp_path, "is a directory"),
    ]:
        code, output = compare(run, extra=("--plot", str(plot)))
        assert code in (1, 2), output
        assert message in output
        assert output.count("\n") <= 4
        assert "run " not in output  # no table was printed first


def _run_docs() -> st.SearchStrategy[object]:
    metric = st.fixed_dictionaries(
        {},
        optional={
            k: st.sampled_from([0, 1, 0.5, -1, 2, 10**20]) | JSON
            for k in (*METRIC, "chips_rejected", "mean_level_error")
        },
    )
    config = st.fixed_dictionaries(
        {},
        optional={
            "aggregation": st.sampled_from(["ring", "optinc", "ideal8"]) | JSON,
            "bits": st.integers(-1, 20) | JSON,
            "design": st.none() | st.text(max_size=5) | JSON,
            "phase_noise_rad": st.floats(-1, 5) | JSON,
            "noise_per_step": JSON,
            "screen_chips": JSON,
        },
    )
    return st.tuples(config | JSON, st.lists(metric, max_size=3) | JSON)


@FUZZ
@given(docs=_run_docs())
def test_fuzz_run_folders(tmp_path, docs):
    config, metrics = docs
    run = run_folder(tmp_path / "r", json.dumps(config).encode(), json.dumps(metrics).encode())
    own_errors_only(ex.load_metrics, run)
    code, _ = compare(run)
    assert code in (0, 1)


def test_metrics_that_are_not_finite_are_not_written(tmp_path):
    metrics = [ex.EpochMetrics(**{**METRIC, "train_loss": math.nan})]
    with pytest.raises(OptincError, match=r"epoch 1: train_loss not finite \(training diverged\)"):
        ex.write_metrics(ex.ExperimentConfig(), metrics, tmp_path)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ numeric options

INTS = st.sampled_from([-(10**30), -1, 0, 1, 2, 63, 64, 65, 1000, 1001, 2**24, 2**32, 10**6 + 1, 10**30])
FLOATS = st.sampled_from(
    [
        "nan",
        "inf",
        "-inf",
        "-0.0",
        "0",
        "1e-300",
        "1e-3",
        "0.5",
        "3.2",
        "86400",
        "86401",
        "1e6",
        "1e15",
        "1e308",
    ]
)


def invoke(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(main, args)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 1, 2, 3), result.output
    return result.exit_code, result.output


@FUZZ
@given(
    options=st.dictionaries(
        st.sampled_from(["--gradient-bytes", "--compute-s", "--link-gbps", "--latency-us"]),
        FLOATS,
        max_size=4,
    ),
    ints=st.dictionaries(st.sampled_from(["--servers", "--optical-bits"]), INTS, max_size=2),
)
def test_fuzz_comm_model_options(options, ints):
    args = ["comm-model"] + [x for kv in {**options, **ints}.items() for x in (kv[0], str(kv[1]))]
    code, output = invoke(args)
    if code == 0:
        assert "nan" not in output
        assert " inf " not in output


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
@pytest.mark.parametrize("option", ["--gradient-bytes", "--compute-s", "--link-gbps", "--latency-us"])
def test_comm_model_refuses_nan_and_inf_as_usage_errors(option, value):
    code, output = invoke(["comm-model", option, value])
    assert code == 2
    assert option in output


def test_comm_model_limits_are_stated():
    with pytest.raises(InputError, match=r"link_gbps is 0.0001; allowed: 0.001 to 1e\+06"):
        cm.CommParams(gradient_bytes=1e6, link_gbps=1e-4)
    with pytest.raises(InputError, match=r"servers is 1000001; allowed: at most 1,000,000"):
        cm.ring_allreduce_s(1_000_001, cm.CommParams(gradient_bytes=1e6))


@FUZZ
@given(
    ints=st.dictionaries(
        st.sampled_from(["--world-size", "--bits", "--epochs", "--seed", "--scale-chunk"]), INTS, max_size=5
    ),
    noise=st.none() | FLOATS,
)
def test_fuzz_ddp_experiment_options(tmp_path, monkeypatch, ints, noise):
    ran = []
    monkeypatch.setattr(ex, "run", lambda config, out: ran.append(config) or [])  # no training
    args = ["ddp-experiment", "--out", str(tmp_path / "out")]
    args += [x for kv in ints.items() for x in (kv[0], str(kv[1]))]
    if noise is not None:
        args += [
            "--aggregation",
            "optinc",
            "--design",
            "designs/aggregator_n4_b4",
            "--phase-noise-rad",
            noise,
        ]
    code, _ = invoke(args)
    assert (code == 0) == bool(ran)


def test_ddp_experiment_output_folder_checked_before_training(tmp_path, monkeypatch):
    monkeypatch.setattr(ex, "run", lambda config, out: pytest.fail("training started"))
    (tmp_path / "f").write_text("x")
    code, output = invoke(["ddp-experiment", "--out", str(tmp_path / "f" / "run")])
    assert code == 1
    assert "its parent" in output
    assert "is a file" in output
    code, output = invoke(["ddp-experiment", "--out", str(tmp_path / ("r" * 300))])
    assert (code, output.count("\n")) == (1, 1)
    assert "bytes; allowed: at most 255" in output


# ---------------------------------------------------------------------- closed pipes


@pytest.mark.parametrize("args", [["comm-model"], ["ddp-compare", "RUN"]])
def test_a_closed_stdout_is_no_traceback(tmp_path, args):
    run_folder(tmp_path / "r")
    args = [str(tmp_path / "r") if a == "RUN" else a for a in args]
    read, write = os.pipe()
    os.close(read)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "optinc_compiler.cli", *args],
            stdout=write,
            stderr=subprocess.PIPE,
            env=env,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write)
    assert done.returncode in (0, 1)
    assert b"Traceback" not in done.stderr
    assert b"Exception ignored" not in done.stderr


def test_large_lookups_still_round_trip(tmp_path):
    save_lookup(ideal_lookup(64, 10), tmp_path / "big.json")
    assert load_lookup(tmp_path / "big.json").table.size == 64 * 1023 + 1


def test_300_character_run_folder_names_are_one_line(tmp_path):
    code, output = compare(tmp_path / ("q" * 300))
    assert code == 1
    assert output.count("\n") == 1
    assert "characters): File name too long" in output


def test_a_run_never_writes_over_its_lookup_file(tmp_path):
    """``--lookup run/config.json --out run``: refused before training, the file kept."""
    from optinc_compiler.distributed.lookup import ideal_lookup, save_lookup

    run = tmp_path / "run"
    run.mkdir()
    lookup = save_lookup(ideal_lookup(2, 4), run / "config.json")
    before = lookup.read_bytes()
    args = ["ddp-experiment", "--world-size", "2", "--epochs", "1", "--aggregation", "optinc", "--bits", "4"]
    result = CliRunner().invoke(main, [*args, "--lookup", str(lookup), "--out", str(run)])
    assert result.exit_code == 1, result.output
    assert (
        result.stderr
        == f"Error: run file {str(lookup)!r} is the input {str(lookup)!r}: writing it would destroy it\n"
    )
    assert lookup.read_bytes() == before
    assert sorted(p.name for p in run.iterdir()) == ["config.json"]
