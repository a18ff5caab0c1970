"""``--design``: an aggregator design folder, found from any working directory (issue 12)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from optinc_compiler.aggregator.locate import CHECKOUT_DESIGNS, find_design
from optinc_compiler.cli import main
from optinc_compiler.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = "expected a design folder with lut.json (made by optinc aggregator train)"


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """A working directory outside the checkout, with a fake checkout's designs/ beside it."""
    work = tmp_path / "work"
    (work / "mine").mkdir(parents=True)
    (tmp_path / "checkout" / "designs" / "agg").mkdir(parents=True)
    monkeypatch.chdir(work)
    return Path.cwd(), tmp_path / "checkout" / "designs"


def test_the_checkout_is_the_one_the_tests_run_in():
    assert CHECKOUT_DESIGNS == ROOT / "designs"


def test_a_path_that_exists_is_the_design(elsewhere):
    _, designs = elsewhere
    assert find_design(Path("mine"), needs="lut.json", checkout_designs=designs) == Path("mine")


@pytest.mark.parametrize("name", ["agg", "designs/agg"])
def test_a_name_not_here_is_looked_up_in_the_checkout(elsewhere, name):
    _, designs = elsewhere
    assert find_design(Path(name), needs="lut.json", checkout_designs=designs) == designs / "agg"


@pytest.mark.parametrize(
    ("name", "where"),
    [
        ("designs/foo", "at {cwd}/designs/foo or in {designs}"),
        ("foo", "at {cwd}/foo or in {designs}"),
        ("no/such/agg", "at {cwd}/no/such/agg"),  # not designs/<name>: the checkout is not searched
        ("../agg", "at {cwd}/../agg"),
    ],
)
def test_not_found_says_what_was_expected_and_where_it_looked(elsewhere, name, where):
    cwd, designs = elsewhere
    message = f"design {name!r} not found: {EXPECTED} " + where.format(cwd=cwd, designs=designs)
    with pytest.raises(InputError, match=re.escape(message) + "$"):
        find_design(Path(name), needs="lut.json", checkout_designs=designs)


def test_without_a_checkout_only_the_path_is_tried(elsewhere):
    cwd, _ = elsewhere
    message = f"design 'designs/agg' not found: {EXPECTED} at {cwd}/designs/agg"
    with pytest.raises(InputError, match=re.escape(message) + "$"):
        find_design(Path("designs/agg"), needs="lut.json", checkout_designs=cwd / "no-checkout")


def test_a_file_is_not_a_design_folder(elsewhere):
    _, designs = elsewhere
    Path("lut.json").write_text("{}")
    message = f"design 'lut.json' is a file, not a folder: {EXPECTED}"
    with pytest.raises(InputError, match=re.escape(message) + "$"):
        find_design(Path("lut.json"), needs="lut.json", checkout_designs=designs)


def test_aggregator_eval_finds_the_committed_design_from_another_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["aggregator", "eval", "--design", "designs/aggregator_n4_b4", "--backend", "program"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[3].split()[:4] == ["raw", "program", "65536", "65536"]
    missing = CliRunner().invoke(main, ["aggregator", "eval", "--design", "designs/foo"])
    assert missing.exit_code == 1
    assert missing.output == (
        "Error: design 'designs/foo' not found: expected a design folder with electronics.json and "
        f"program.json (made by optinc aggregator train) at {Path.cwd()}/designs/foo or in {ROOT}/designs\n"
    )


def test_ddp_experiment_finds_the_committed_design_from_another_folder(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    common = ["ddp-experiment", "--world-size", "2", "--aggregation", "optinc", "--out", "run"]
    # found, read, and refused for its size before any process starts
    found = CliRunner().invoke(main, [*common, "--design", "designs/aggregator_n4_b4"])
    assert (found.exit_code, found.output) == (
        1,
        "Error: the aggregator chip serves 4 servers; the world size is 2\n",
    )
    missing = CliRunner().invoke(main, [*common, "--design", "designs/foo"])
    assert missing.exit_code == 1
    where = f"at {Path.cwd()}/designs/foo or in {ROOT}/designs"
    assert missing.output == f"Error: design 'designs/foo' not found: {EXPECTED} {where}\n"
    assert not Path("run").exists()  # nothing written for a run that cannot start
