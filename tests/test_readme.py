"""The README's commands run as written, and its demo output is what the demo prints."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import haar

from optinc_compiler.cli import main
from optinc_compiler.compiler import CompileOptions, compile_weights
from optinc_compiler.io import load_weights
from optinc_compiler.report import format_summary

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def readme_commands() -> list[str]:
    """Lines starting with ``optinc`` in the README's sh blocks, comments removed."""
    blocks = re.findall(r"```sh\n(.*?)```", README, flags=re.S)
    lines = [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith("optinc ")]


def test_readme_starts_with_the_two_setup_commands():
    first_block = re.search(r"```sh\n(.*?)```", README, flags=re.S).group(1)
    assert [line.split("#")[0].strip() for line in first_block.splitlines()] == ["make demo", "make test"]


def test_readme_commands_run_in_order(tmp_path, monkeypatch):
    """A newcomer runs the README's commands one after the other in one folder."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    np.savez("model.npz", **{"fc1.weight": rng.normal(size=(6, 4)), "fc2.weight": rng.normal(size=(3, 6))})
    np.save("U.npy", haar(6, 1))
    np.save("U4.npy", haar(4, 2))
    commands = readme_commands()
    assert any(c.startswith("optinc layout") for c in commands)
    for command in commands:
        if "chip_cal.json" in command and not Path("chip_cal.json").exists():
            _write_calibration("U.npy", "chip_cal.json")
        if "model.pt" in command:
            torch = pytest.importorskip("torch")
            torch.save({"fc1.weight": torch.randn(6, 4)}, "model.pt")
        if "seq.pt" in command:
            torch = pytest.importorskip("torch")
            seq = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))
            torch.save(seq.state_dict(), "seq.pt")
        result = CliRunner().invoke(main, shlex.split(command)[1:], catch_exceptions=False)
        assert result.exit_code == 0, f"{command}: {result.output}"


def _write_calibration(weights: str, path: str) -> None:
    """A measured chip for the README's error-correction example: splitters off by 2%."""
    import json

    layer = compile_weights(load_weights(weights).layers, CompileOptions()).layers[0]
    rng = np.random.default_rng(3)
    ids = [i for stage in layer.stages for i in getattr(stage, "mzi_ids", ())]
    splitters = {i: [float(x) for x in 0.5 + 0.02 * rng.standard_normal(2)] for i in ids}
    doc = {"format": "optinc-calibration", "version": 1, "name": "chip 3", "splitters": splitters}
    Path(path).write_text(json.dumps(doc))


def test_readme_shows_what_the_demo_prints():
    """make demo builds the aggregator design: its program's summary is in the README."""
    from optinc_compiler import program as prog

    summary = format_summary(prog.load(ROOT / "designs" / "aggregator_n4_b4" / "program.json"))
    for line in summary.splitlines()[:5]:
        assert line in README, line
    makefile = (ROOT / "Makefile").read_text()
    assert "optinc build designs/aggregator_n4_b4/design.yaml --out $(DEMO_OUT)" in makefile


def test_a_design_file_that_speaks_of_the_default_design_names_what_make_demo_builds():
    """The default design is what ``make demo`` builds; no other design file claims it."""
    makefile = (ROOT / "Makefile").read_text()
    demo = re.search(r"^demo:.*\n\t\S+ build (designs/[^/]+)/design.yaml ", makefile, flags=re.M).group(1)
    assert demo == "designs/aggregator_n4_b4"
    for path in sorted(ROOT.glob("designs/*/design.yaml")):
        text = path.read_text()
        if "default design" in text.lower():
            assert demo in text, f"{path.relative_to(ROOT)} calls itself the default design"


def test_the_build_section_names_every_file_the_build_writes():
    """``optinc build`` writes BUILD_FILES and a phase map per layer (test_build checks
    that on a real build); the README's list of them misses none."""
    from optinc_compiler.build import BUILD_FILES

    section = README.split("## Build the whole chip\n", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`([A-Za-z_<>]+\.[a-z]+)`", section))
    assert sorted({*BUILD_FILES, "phases_<layer>.png"} - named) == []


def test_readme_shows_what_the_mlp_compiles_to():
    weights = load_weights(ROOT / "designs" / "mlp_demo" / "weights.npz")
    summary = format_summary(compile_weights(weights.layers, CompileOptions()))
    shown = {
        line.split()[0]: line.split() for line in README.splitlines() if line.startswith(("fc1 ", "fc2 "))
    }
    for line in summary.splitlines():
        if line.startswith(("fc1 ", "fc2 ")):
            tokens = line.split()
            # everything but the rounding-level reconstruction error
            assert shown[tokens[0]][:8] == tokens[:8]
    total = next(line for line in summary.splitlines() if line.startswith("total:"))
    assert total in README


#: What the repository's own files may not point to: notes that are not in it.
OUTSIDE_NOTES = ("DESIGN" + ".md", "ECOSYSTEM" + ".md", "../" + "shared")
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".json", ".c", ".txt", ""}


def repository_text_files() -> list[Path]:
    """README.md, Makefile, pyproject.toml and the text files of the package, the PDK, the
    designs, the docs, the tests and the benchmarks."""
    files = [ROOT / "README.md", ROOT / "Makefile", ROOT / "pyproject.toml"]
    for folder in ("optinc_compiler", "pdk", "designs", "docs", "tests", "benchmarks", ".ci"):
        files += [
            p
            for p in sorted((ROOT / folder).rglob("*"))
            if p.is_file() and p.suffix in TEXT_SUFFIXES and "__pycache__" not in p.parts
        ]
    return files


def test_no_file_points_to_notes_outside_the_repository():
    files = repository_text_files()
    assert ROOT / "optinc_compiler" / "mzi.py" in files
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if any(note in line for note in OUTSIDE_NOTES)
    ]
    assert found == []


def test_references_to_the_architecture_page_name_its_sections():
    """A reference to the architecture page by section names one of its headings."""
    page = (ROOT / "docs" / "architecture.md").read_text()
    headings = set(re.findall(r"^#+ (.+)$", page, flags=re.M))
    cited = {
        (path.relative_to(ROOT).as_posix(), section)
        for path in repository_text_files()
        for section in re.findall(r'docs/architecture\.md, "([^"]+)"', path.read_text(encoding="utf-8"))
    }
    assert len(cited) >= 5
    assert sorted(c for c in cited if c[1] not in headings) == []


def test_readme_design_file_is_a_valid_design(tmp_path):
    """The README's design-file example names only real keys with valid values."""
    from optinc_compiler.design import load_design

    block = re.search(r"```yaml\n(.*?)```", README, flags=re.S).group(1)
    np.savez(tmp_path / "weights.npz", fc1=np.eye(2), fc2=np.eye(2))
    (tmp_path / "design.yaml").write_text(block)
    design = load_design(tmp_path / "design.yaml")
    assert (design.layers, design.verify.min_yield, design.heater_power_budget_mW) == (
        ("fc1", "fc2"),
        None,
        None,
    )
