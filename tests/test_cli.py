"""The optinc CLI as a user runs it: outputs, exit codes and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import haar, rebuild_layer

from optinc_compiler import __version__
from optinc_compiler.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def model(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "model.npz"
    np.savez(
        path,
        **{
            "fc1.weight": rng.normal(size=(6, 4)),
            "fc1.bias": np.zeros(6),
            "fc2.weight": rng.normal(size=(3, 6)),
        },
    )
    return path


def run(runner: CliRunner, *args: str):
    return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_version_and_help(runner):
    assert run(runner, "--version").output.strip() == f"optinc, version {__version__}"
    result = run(runner, "--help")
    assert result.exit_code == 0
    assert "compile" in result.output
    assert "Exit codes" in result.output


def test_compile_writes_program_and_prints_summary(runner, model, tmp_path):
    out = tmp_path / "program.json"
    result = run(runner, "compile", model, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert "skipped fc1.bias (bias vector)" in result.stderr
    assert "fc1    6x4    svd" in result.stderr
    assert "total: 2 layer(s)" in result.stderr
    doc = json.loads(out.read_text())
    weights = np.load(model)
    np.testing.assert_allclose(rebuild_layer(doc["layers"][0]), weights["fc1.weight"], atol=1e-12)
    assert result.stdout == ""


def test_compile_to_stdout_is_pure_json(runner, model):
    result = run(runner, "-q", "compile", model, "--layer", "fc2")
    assert result.exit_code == 0
    assert [layer["name"] for layer in json.loads(result.stdout)["layers"]] == ["fc2"]
    assert result.stderr == ""


def test_compile_unitary_reck_then_inspect_and_check(runner, tmp_path):
    u = haar(6, 3)
    np.save(tmp_path / "U.npy", u)
    out = tmp_path / "p.json"
    assert (
        run(
            runner, "compile", tmp_path / "U.npy", "--method", "unitary", "--mesh", "reck", "-o", out
        ).exit_code
        == 0
    )
    inspect = run(runner, "inspect", out)
    assert inspect.exit_code == 0
    assert "U      6x6    unitary  reck  15    0            9" in inspect.stdout
    check = run(runner, "check", out, "--against", tmp_path / "U.npy")
    assert check.exit_code == 0
    assert "ok" in check.stdout


def test_inspect_of_a_segmented_layer_counts_the_chips_fan_chains_and_crossings(runner, tmp_path):
    np.save(tmp_path / "W.npy", np.random.default_rng(0).normal(size=(8, 8)))
    out = tmp_path / "p.json"
    args = ("compile", tmp_path / "W.npy", "--method", "ud-segmented", "--block-size", "4", "-o", out)
    assert run(runner, *args).exit_code == 0
    inspect = run(runner, "inspect", out)
    assert inspect.exit_code == 0
    # 8 splitters (one per input into 2 block rows) + 8 combiners; 40 crossings (netlist)
    assert (
        "note: layer 'W' (ud-segmented) also has 16 splitter/combiner MZIs and 40 waveguide crossings"
        in inspect.stdout
    )


def test_same_input_gives_identical_bytes(runner, model, tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    run(runner, "compile", model, "-o", a)
    run(runner, "compile", model, "-o", b)
    assert a.read_bytes() == b.read_bytes()


def test_check_exit_3_when_the_weights_changed(runner, model, tmp_path):
    out = tmp_path / "p.json"
    run(runner, "compile", model, "-o", out)
    data = dict(np.load(model))
    data["fc2.weight"] = data["fc2.weight"] + 1e-3
    np.savez(tmp_path / "changed.npz", **data)
    result = run(runner, "check", out, "--against", tmp_path / "changed.npz")
    assert result.exit_code == 3
    assert "fc2    svd" in result.stdout
    assert "FAIL" in result.stdout
    assert result.stderr.strip() == "Error: 1 of 2 layer(s) off: fc2"


def test_check_of_an_approximation(runner, model, tmp_path):
    out = tmp_path / "p.json"
    result = run(runner, "compile", model, "--method", "ud", "-o", out)
    assert "note: layer 'fc1' (ud) approximates W: relative error" in result.stderr
    assert run(runner, "check", out, "--against", model).exit_code == 0
    strict = run(runner, "check", out, "--against", model, "--max-rel-error", "1e-6")
    assert strict.exit_code == 3


@pytest.mark.parametrize(
    ("make_input", "extra", "message"),
    [
        (lambda p: np.save(p / "w.npy", np.array([[1.0, np.nan]])), [], "layer 'w' has 1 non-finite entries"),
        (
            lambda p: np.save(p / "w.npy", np.ones((2, 2, 2))),
            [],
            "layer 'w' has 3 dimension(s) (2, 2, 2); allowed: 2",
        ),
        (lambda p: np.save(p / "w.npy", np.ones((0, 2))), [], "layer 'w' is empty"),
        (
            lambda p: np.save(p / "w.npy", np.array([["a"]])),
            [],
            "dtype <U1; allowed: integer, real or complex",
        ),
        (lambda p: (p / "w.npy").write_bytes(b""), [], "is empty"),
        (lambda p: (p / "w.npy").write_bytes(b"\x93NUMPY\x01\x00"), [], "is not a readable .npy file"),
        (lambda p: np.save(p / "w.npy", np.ones((3, 3))), ["--method", "unitary"], "is not unitary"),
        (lambda p: np.save(p / "w.npy", np.ones((3, 3))), ["--layer", "fc9"], "no layer 'fc9'"),
    ],
)
def test_bad_input_is_one_line_exit_1_and_no_output_file(runner, tmp_path, make_input, extra, message):
    make_input(tmp_path)
    out = tmp_path / "p.json"
    result = run(runner, "compile", tmp_path / "w.npy", "-o", out, *extra)
    assert result.exit_code == 1
    assert message in result.stderr
    assert result.stderr.startswith("Error: ")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npy"]


def test_output_in_missing_folder(runner, model, tmp_path):
    result = run(runner, "compile", model, "-o", tmp_path / "nope" / "p.json")
    assert result.exit_code == 1
    assert "output folder" in result.stderr
    assert "does not exist; create it first" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["compile"],
        ["compile", "x.npy", "--method", "qr"],
        ["compile", "x.npy", "--block-size", "0"],
        ["frobnicate"],
        ["check", "p.json"],
    ],
)
def test_usage_errors_exit_2(runner, args):
    assert runner.invoke(main, args).exit_code == 2


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_non_finite_tolerances_are_usage_errors(runner, model, tmp_path, value):
    out = tmp_path / "p.json"
    run(runner, "compile", model, "-o", out)
    for args in (
        ["check", out, "--against", model, "--rtol", value],
        ["check", out, "--against", model, "--max-rel-error", value],
        ["compile", model, "--unitary-tol", value],
    ):
        result = runner.invoke(main, [str(a) for a in args])
        assert result.exit_code == 2
        assert "is not a finite number" in result.output


def test_huge_weights_compile_without_traceback(runner, tmp_path):
    np.save(tmp_path / "big.npy", np.full((3, 2), 1e200))
    result = run(runner, "compile", tmp_path / "big.npy", "-o", tmp_path / "p.json")
    assert result.exit_code == 0
    assert run(runner, "check", tmp_path / "p.json", "--against", tmp_path / "big.npy").exit_code == 0


def test_inspect_of_bad_program(runner, tmp_path):
    (tmp_path / "p.json").write_text('{"format": "optinc-phase-program", "version": 7}')
    result = run(runner, "inspect", tmp_path / "p.json")
    assert result.exit_code == 1
    assert result.stderr.strip().endswith("has phase-program version 7; this optinc reads version 1")


def test_cli_shim_and_console_script_run_from_a_checkout(tmp_path):
    np.save(tmp_path / "U.npy", np.eye(2))
    shim = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "compile", str(tmp_path / "U.npy")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert shim.returncode == 0
    assert json.loads(shim.stdout)["layers"][0]["method"] == "unitary"
    script = Path(sys.executable).with_name("optinc")
    assert script.exists(), "the console script is installed next to the interpreter"
    bad = subprocess.run(
        [str(script), "compile", str(tmp_path / "missing.npy")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1
    assert bad.stderr.strip() == f"Error: weights file '{tmp_path / 'missing.npy'}' does not exist"


def test_missing_c_extension_is_one_clear_line(tmp_path):
    np.save(tmp_path / "U.npy", np.eye(2))
    code = (
        "import sys; sys.modules['optinc_compiler._kernels'] = None\n"
        "from optinc_compiler.cli import main\n"
        f"main(['compile', {str(tmp_path / 'U.npy')!r}])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "Error: the C kernels (optinc_compiler._kernels) are not built for this Python: "
        "run `pip install -e .` in the checkout (or `make test`)"
    )


NOISY = """
import sys, warnings
import optinc_compiler.compiler as compiler
from optinc_compiler.cli import main
original = compiler.compile_weights
def noisy(*args, **kwargs):
    warnings.warn("overflow encountered in divide", RuntimeWarning, stacklevel=1)
    return original(*args, **kwargs)
compiler.compile_weights = noisy
sys.argv = ["optinc", *sys.argv[1:]]
main()
"""


def test_library_warnings_stay_off_stderr(tmp_path):
    """A library's RuntimeWarning (outside pytest, which captures warnings itself) is not
    printed; with -vv it is in the debug log."""
    import subprocess
    import sys

    np.save(tmp_path / "W.npy", np.eye(2))

    def run(*flags: str) -> str:
        command = ["compile", str(tmp_path / "W.npy"), "-o", str(tmp_path / "p.json")]
        done = subprocess.run([sys.executable, "-c", NOISY, *flags, *command], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stderr

    assert "RuntimeWarning" not in run()
    assert "RuntimeWarning: overflow encountered in divide" in run("-vv")


def test_subnormal_weights_compile(tmp_path):
    np.save(tmp_path / "tiny.npy", np.array([[1e-320, 0.0], [0.0, 2e-320]]))
    result = CliRunner().invoke(main, ["compile", str(tmp_path / "tiny.npy"), "-o", str(tmp_path / "p.json")])
    assert result.exit_code == 0, result.output


def test_check_says_which_program_layers_the_weights_do_not_have(tmp_path):
    rng = np.random.default_rng(2)
    np.savez(tmp_path / "w.npz", fc1=rng.normal(size=(3, 3)), fc2=rng.normal(size=(2, 3)))
    np.savez(tmp_path / "one.npz", fc1=np.load(tmp_path / "w.npz")["fc1"])
    runner = CliRunner()
    assert (
        runner.invoke(main, ["compile", str(tmp_path / "w.npz"), "-o", str(tmp_path / "p.json")]).exit_code
        == 0
    )
    result = runner.invoke(main, ["check", str(tmp_path / "p.json"), "--against", str(tmp_path / "one.npz")])
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        f"note: 1 layer(s) of the program are not in {str(tmp_path / 'one.npz')!r} and were not checked:"
        " fc2\n"
    )
    chosen = ["check", str(tmp_path / "p.json"), "--against", str(tmp_path / "w.npz"), "--layer", "fc1"]
    assert runner.invoke(main, chosen).stderr == ""  # --layer chose them: nothing to say
