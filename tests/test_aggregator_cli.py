"""``optinc aggregator``: exit codes, one-line errors, and the committed design."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from optinc_compiler.aggregator import evaluate
from optinc_compiler.aggregator.encoding import AggregatorSpec, target_codes
from optinc_compiler.cli import main

ROOT = Path(__file__).resolve().parents[1]
DESIGN = ROOT / "designs" / "aggregator_n4_b4"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["aggregator", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--servers", "1"], "Error: servers N = 1 is not allowed; use 2 <= N <= 64"),
        (["--bits", "0"], "Error: bits b = 0 is not allowed; use 1 <= b <= 16"),
        (
            ["--servers", "8", "--bits", "4"],
            "Error: N*b = 32 is too large to evaluate all 2^32 raw inputs; "
            "allowed N*b <= 20 without --sample, or pass --sample M",
        ),
        (
            ["--servers", "3", "--bits", "2", "--design", str(DESIGN)],
            "Error: the design is for N=4, b=4, not N=3, b=2",
        ),
        (
            ["--design", "no/such/folder"],
            "Error: design 'no/such/folder' not found: expected a design folder with electronics.json "
            f"and program.json (made by optinc aggregator train) at {Path.cwd() / 'no/such/folder'}",
        ),
        (["--sample", "0"], "Error: sample size 0 is not allowed; use a positive number"),
    ],
)
def test_eval_errors_are_one_line_exit_1(args, message):
    code, output = run("eval", *args)
    assert code == 1
    assert output == message + "\n"


def test_eval_usage_error_exits_2():
    code, output = run("eval", "--servers", "four")
    assert code == 2
    assert "'four' is not a valid integer" in output


def test_train_refuses_bad_sizes_before_training(tmp_path):
    code, output = run("train", "--servers", "4", "--bits", "0", "-o", str(tmp_path / "d"))
    assert (code, output) == (1, "Error: bits b = 0 is not allowed; use 1 <= b <= 16\n")
    code, output = run("train", "--width", "3", "-o", str(tmp_path / "d"))
    assert (code, output) == (1, "Error: width K = 3 is too small; allowed K >= 4 for this N, b\n")
    (tmp_path / "f").write_text("a file where a folder should be")
    code, output = run("train", "-o", str(tmp_path / "f" / "d"))
    assert code == 1
    assert f"cannot create output folder {str(tmp_path / 'f' / 'd')!r}: its parent" in output
    (tmp_path / "f").unlink()
    assert list(tmp_path.iterdir()) == []  # no partial files
    code, output = run(
        "train", "--preprocessing", "bitwise", "--encoder-init", "code", "-o", str(tmp_path / "d")
    )
    assert (code, output) == (1, "Error: encoder init 'code' needs the 'sum' preprocessing, not 'bitwise'\n")
    assert list(tmp_path.iterdir()) == []


def test_committed_design_is_bit_exact_through_the_simulated_program():
    code, output = run("eval", "--servers", "4", "--bits", "4", "--design", str(DESIGN))
    assert code == 0, output
    assert "reduced  sax      61     61         100.00" in output
    assert "raw      sax      65536  65536      100.00" in output
    assert "2^16 = 65536" in output


def test_committed_n8_b4_design_is_bit_exact_on_sampled_raw_inputs():
    code, output = run("eval", "--servers", "8", "--bits", "4", "--sample", "20000")
    assert code == 0, output
    assert "reduced  sax      121    121        100.00" in output
    assert "raw      sax      20000  20000      100.00" in output


def test_committed_n4_b8_design_is_bit_exact_on_reduced_and_sampled_raw_inputs():
    code, output = run("eval", "--servers", "4", "--bits", "8", "--sample", "20000")
    assert code == 0, output
    assert "reduced  sax      1021   1021       100.00" in output
    assert "raw      sax      20000  20000      100.00" in output


def test_committed_n4_b8_design_stays_bit_exact_with_12_bit_dacs_on_every_heater():
    chip = evaluate.load_design(ROOT / "designs" / "aggregator_n4_b8")
    r = evaluate.robustness(chip, noise_rad=0.0, dac_bits=12, draws=1, seed=0, include_preprocessing=True)
    assert r.draws_at_100 == 1


@pytest.mark.parametrize(("n", "b"), [(4, 4), (8, 4), (4, 8)])
def test_committed_design_files_agree(n, b):
    folder = ROOT / "designs" / f"aggregator_n{n}_b{b}"
    chip = evaluate.load_design(folder)
    lut = json.loads((folder / "lut.json").read_text())
    keys, codes = evaluate.lookup_table(chip)
    assert [e["input"] for e in lut["entries"]] == keys.tolist()
    assert [e["output"] for e in lut["entries"]] == codes.tolist()
    assert codes.tolist() == target_codes(np.arange(n * (2**b - 1) + 1), servers=n).tolist()  # exact
    assert chip.electronics.spec == AggregatorSpec(n, b)


@pytest.mark.parametrize(("n", "b"), [(4, 4), (8, 4)])
def test_committed_design_is_robust_at_2_mrad_on_every_heater(n, b):
    chip = evaluate.load_design(ROOT / "designs" / f"aggregator_n{n}_b{b}")
    r = evaluate.robustness(chip, noise_rad=0.002, dac_bits=12, draws=100, seed=0, include_preprocessing=True)
    assert r.draws_at_100 >= 95


def test_eval_exits_3_below_100_percent(tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(DESIGN, broken)
    doc = json.loads((broken / "electronics.json").read_text())
    doc["threshold"] = 5.0  # every bit reads zero
    (broken / "electronics.json").write_text(json.dumps(doc))
    code, output = run("eval", "--design", str(broken), "--backend", "program")
    assert code == 3
    assert output.splitlines()[-1].startswith("Error: aggregator is not bit-exact: reduced ")


def test_help_and_compile_do_not_import_jax():
    code = "import sys; from optinc_compiler.cli import main; assert 'jax' not in sys.modules, 'jax'"
    subprocess.run([sys.executable, "-c", code], check=True)
    out = subprocess.run(
        [sys.executable, "-m", "optinc_compiler.cli", "aggregator", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert "train" in out.stdout
    assert "eval" in out.stdout
