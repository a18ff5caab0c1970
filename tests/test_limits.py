"""Size and power sanity: a die beyond one reticle field and heater power beyond the
budget are warnings (stderr, report), and errors with --strict, before any file is written."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from click.testing import CliRunner

from optinc_compiler import limits
from optinc_compiler.cli import main
from optinc_compiler.compiler import CompileOptions, compile_weights
from optinc_compiler.errors import InputError
from optinc_compiler.io import NamedMatrix
from optinc_compiler.program import save
from pdk import tech


@pytest.mark.parametrize(
    ("size_um", "warned"),
    [
        ((26_000, 33_000), False),
        ((33_000, 26_000), False),
        ((26_001, 26_001), True),
        ((76_462, 25_493), True),
    ],
)
def test_a_die_must_fit_one_reticle_field_either_way(size_um, warned):
    assert bool(limits.die_warnings(*size_um)) == warned


def test_the_warnings_say_what_and_how_much():
    assert limits.die_warnings(76_462.4, 25_493.0) == (
        "die 76,462 x 25,493 um exceeds one reticle field (26,000 x 33,000 um): no fab exposes it in one "
        "shot; split the design",
    )
    assert limits.power_warnings(98_600.0, budget_mW=10_000.0) == (
        "heater power 98,600.0 mW exceeds the budget of 10,000.0 mW (set another with --power-budget-mW "
        "or the design's heater_power_budget_mW)",
    )
    assert limits.power_warnings(10_000.0, budget_mW=10_000.0) == ()


def test_strict_turns_warnings_into_one_error():
    with pytest.raises(limits.LimitError, match=re.escape("--strict: a; b") + "$"):
        limits.enforce(["a", "b"], strict=True)
    assert limits.enforce(["a"], strict=False) == ("a",)
    assert limits.enforce([], strict=True) == ()


@pytest.mark.parametrize("budget", [0.0, -1.0, float("nan"), float("inf")])
def test_a_budget_is_a_positive_finite_number(budget):
    with pytest.raises(
        InputError, match=re.escape(f"heater power budget {budget!r} mW; allowed: a finite number > 0")
    ):
        limits.check_budget(budget)


def test_layout_warns_and_strict_refuses_before_writing(tmp_path, monkeypatch):
    monkeypatch.setattr(tech, "LIMITS", dataclasses.replace(tech.LIMITS, reticle_um=(100.0, 200.0)))
    program = save(compile_weights([NamedMatrix("fc1", np.eye(2))], CompileOptions()), tmp_path / "p.json")
    runner = CliRunner()
    warned = runner.invoke(main, ["layout", str(program), "-o", str(tmp_path / "a.gds")])
    assert warned.exit_code == 0, warned.output
    assert re.match(
        r"warning: die [\d,]+ x [\d,]+ um exceeds one reticle field \(100 x 200 um\)", warned.stderr
    )
    assert (tmp_path / "a.gds").is_file()
    strict = runner.invoke(main, ["layout", str(program), "-o", str(tmp_path / "b.gds"), "--strict"])
    assert strict.exit_code == 3
    assert re.fullmatch(
        r"Error: --strict: die [\d,]+ x [\d,]+ um exceeds one reticle field \(100 x 200 um\): "
        r"no fab exposes it in one shot; split the design\n",
        strict.stderr,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gds", "p.json"]


def test_program_warns_above_the_power_budget_and_strict_refuses(tmp_path):
    program = save(
        compile_weights([NamedMatrix("fc1", np.eye(4)[::-1])], CompileOptions()), tmp_path / "p.json"
    )
    runner = CliRunner()
    args = ["program", str(program), "--power-budget-mW", "1", "-o"]
    warned = runner.invoke(main, [*args, str(tmp_path / "a.csv")])
    assert warned.exit_code == 0, warned.output
    total = re.search(r"total ([\d,.]+) mW", warned.stdout).group(1)
    warning = (
        f"heater power {total} mW exceeds the budget of 1.0 mW (set another with --power-budget-mW "
        "or the design's heater_power_budget_mW)"
    )
    assert f"warning: {warning}\n" in warned.stderr
    strict = runner.invoke(main, [*args, str(tmp_path / "b.csv"), "--strict"])
    assert strict.exit_code == 3
    assert strict.stderr.endswith(f"Error: --strict: {warning}\n")
    assert not (tmp_path / "b.csv").exists()
    assert runner.invoke(main, [*args[:-2], "0", "-o", str(tmp_path / "c.csv")]).exit_code == 2


def test_build_reports_the_warnings_and_strict_stops_before_heaters_csv(tmp_path):
    np.savez(tmp_path / "w.npz", fc1=np.eye(4)[::-1])
    design = tmp_path / "design.yaml"
    design.write_text(
        "version: 1\nweights: w.npz\nheater_power_budget_mW: 1\nio: none\n"
        "sweep: {start_um: 1.54, stop_um: 1.56, points: 2}\nverify: {monte_carlo_samples: 0}\n"
    )
    runner = CliRunner()
    ok = runner.invoke(main, ["build", str(design), "--out", str(tmp_path / "a")])
    assert ok.exit_code == 0, ok.output
    assert "warning: heater power " in ok.stderr
    page = (tmp_path / "a" / "report.html").read_text()
    assert '<h2 class="fail">Warnings</h2><ul><li>heater power ' in page
    strict = runner.invoke(main, ["build", str(design), "--out", str(tmp_path / "b"), "--strict"])
    assert strict.exit_code == 3
    assert "Error: --strict: heater power " in strict.stderr
    assert not (tmp_path / "b" / "heaters.csv").exists()
    assert (tmp_path / "b" / "chip.gds").exists()


def test_long_stages_say_which_large_layer_they_work_on(tmp_path):
    rng = np.random.default_rng(0)
    program = compile_weights(
        [NamedMatrix("small", rng.normal(size=(2, 2))), NamedMatrix("big", rng.normal(size=(80, 80)))],
        CompileOptions(),
    )
    path = save(program, tmp_path / "p.json")
    result = CliRunner().invoke(main, ["verify", str(path), "--models", "ideal"])
    assert result.exit_code == 0, result.output
    assert result.stderr == "verify: layer big (2 of 2, 6,320 MZIs) ...\n"
