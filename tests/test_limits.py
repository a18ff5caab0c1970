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
