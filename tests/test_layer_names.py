"""Layer names a weights file can carry (``0`` from an ``nn.Sequential``, ``fc-1``,
unicode) round-trip through compile, layout, LVS, verify and the heater program: the
compiler maps each once to an id (``Layer.id``) that the program stores beside it."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from optinc_compiler import program as prog
from optinc_compiler.cli import main
from optinc_compiler.compiler import CompileOptions, compile_layer, compile_weights
from optinc_compiler.errors import InputError, ProgramFormatError
from optinc_compiler.io import NamedMatrix

#: Awkward names and the ids they map to.
NAMES = {"0": "L0", "fc-1": "fc_1", "héad": "h_ad", "layers.3": "layers_3"}


@pytest.mark.parametrize(("name", "expected"), [*NAMES.items(), ("fc1", "fc1"), ("_x_", "x"), ("+", "layer")])
def test_layer_id_examples(name, expected):
    assert prog.layer_id(name) == expected


@given(st.text(min_size=1, max_size=30))
def test_every_name_maps_to_a_valid_id_and_safe_names_keep_theirs(name):
    lid = prog.layer_id(name)
    assert prog.ID_PATTERN.fullmatch(lid)
    if prog.ID_PATTERN.fullmatch(name):
        assert lid == name


def test_the_program_stores_the_mapping_where_the_id_differs():
    weights = [
        NamedMatrix(n, np.random.default_rng(k).normal(size=(2, 3))) for k, n in enumerate([*NAMES, "fc1"])
    ]
    program = compile_weights(weights, CompileOptions())
    doc = json.loads(prog.to_json(program))
    stored = [(d["name"], d.get("id")) for d in doc["layers"]]
    assert stored == [*NAMES.items(), ("fc1", None)]
    for d, layer in zip(doc["layers"], program.layers, strict=True):
        ids = [z["id"] for s in d["stages"] if s["kind"] == "mesh" for z in s["mzis"]]
        assert ids
        assert all(i.startswith(layer.id + "_") for i in ids)
    again = prog.from_json(prog.to_json(program))
    assert [(x.name, x.id) for x in again.layers] == [(x.name, x.id) for x in program.layers]
    assert prog.to_json(again) == prog.to_json(program)
    assert program.layer("0") is program.layer("L0")


def test_ids_are_validated_at_the_boundary():
    layer = compile_layer("x", np.eye(2), CompileOptions())
    message = "layer 'x': id '0x' is not a letter followed by letters, digits and _"
    with pytest.raises(InputError, match=re.escape(message) + "$"):
        dataclasses.replace(layer, id="0x")
    program = compile_weights([NamedMatrix("0", np.eye(2))], CompileOptions())
    doc = json.loads(prog.to_json(program))
    doc["layers"][0]["id"] = "9"
    message = (
        "p.json: layers[0].id: '9' is not allowed: A letter, then letters, digits and _: the identifier of "
        "the layer's instances, cells, heaters and pads, stored where it differs from the name (default: "
        "the name)."
    )
    with pytest.raises(ProgramFormatError, match=re.escape(message) + "$"):
        prog.from_json(json.dumps(doc), source="p.json")


def test_a_program_refuses_two_layers_with_one_id():
    program = compile_weights([NamedMatrix("a-b", np.eye(2)), NamedMatrix("c", np.eye(2))], CompileOptions())
    doc = json.loads(prog.to_json(program))
    doc["layers"][1]["name"] = "a b"
    for mzi in doc["layers"][1]["stages"][0]["mzis"]:
        mzi["id"] = mzi["id"].replace("c_", "a_b_", 1)
    message = (
        "p.json: layers 'a-b' and 'a b' both have the id 'a_b'; each layer needs its own "
        "(its instances, heaters and pads are named by it)"
    )
    with pytest.raises(ProgramFormatError, match=re.escape(message) + "$"):
        prog.from_json(json.dumps(doc), source="p.json")


def test_mzi_ids_are_canonical():
    program = compile_weights([NamedMatrix("fc1", np.eye(2))], CompileOptions())
    doc = json.loads(prog.to_json(program))
    doc["layers"][0]["stages"][0]["mzis"][0]["id"] = "fc2_U_c0_m0"
    message = (
        "p.json: MZI 0 of stage 'U' in layer 'fc1' has id 'fc2_U_c0_m0'; its id is 'fc1_U_c0_m0' "
        "({layer id}_{stage}_c{column}_m{mode})"
    )
    with pytest.raises(ProgramFormatError, match=re.escape(message) + "$"):
        prog.from_json(json.dumps(doc), source="p.json")


@pytest.fixture(scope="module")
def awkward_chip(tmp_path_factory):
    """A two-layer program with an nn.Sequential name and a unicode name, laid out."""
    folder = tmp_path_factory.mktemp("names")
    rng = np.random.default_rng(3)
    np.savez(folder / "w.npz", **{"0": rng.normal(size=(3, 4)), "héad": rng.normal(size=(2, 3))})
    runner = CliRunner()
    for args in (
        ["compile", str(folder / "w.npz"), "-o", str(folder / "p.json")],
        ["layout", str(folder / "p.json"), "-o", str(folder / "chip.gds")],
    ):
        result = runner.invoke(main, args)
        assert result.exit_code == 0, result.output
    return folder


def test_awkward_names_pass_lvs(awkward_chip):
    result = CliRunner().invoke(main, ["lvs", str(awkward_chip / "chip.gds"), str(awkward_chip / "p.json")])
    assert result.exit_code == 0, result.output
    assert [line.split()[:4] for line in result.output.splitlines()[2:]] == [
        ["0", "46", "51", "ok"],
        ["héad", "28", "29", "ok"],
    ]


def test_awkward_names_verify_from_the_gds(awkward_chip):
    result = CliRunner().invoke(
        main, ["verify", str(awkward_chip / "chip.gds"), "--program", str(awkward_chip / "p.json")]
    )
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines() if line.startswith(("0 ", "héad "))]
    assert [r[0] for r in rows] == ["0", "héad"]
    assert all(float(r[3]) >= 0.999 and float(r[5]) >= 0 and r[-1] == "ok" for r in rows)


def test_awkward_names_have_their_pads(awkward_chip):
    out = awkward_chip / "heaters.csv"
    result = CliRunner().invoke(
        main,
        ["program", str(awkward_chip / "p.json"), "--gds", str(awkward_chip / "chip.gds"), "-o", str(out)],
    )
    assert result.exit_code == 0, result.output
    ids = [line.split(",")[0] for line in out.read_text().splitlines()[2:]]
    assert ids
    assert all(i.startswith(("L0_", "h_ad_")) for i in ids)


def test_lvs_of_a_one_layer_gds_names_the_layers_it_draws(awkward_chip):
    one = awkward_chip / "one.gds"
    runner = CliRunner()
    assert (
        runner.invoke(
            main, ["layout", str(awkward_chip / "p.json"), "--layer", "héad", "-o", str(one)]
        ).exit_code
        == 0
    )
    result = runner.invoke(main, ["lvs", str(one), str(awkward_chip / "p.json")])
    assert result.exit_code == 1
    message = (
        f"Error: {str(one)!r} has no cell 'L0_grid' for layer '0'; it draws layer(s) héad of the program: "
        "check those with --layer 'héad'\n"
    )
    assert result.output == message


def _verify_with(tmp_path: Path, doc: dict, chip: Path) -> object:
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(doc))
    return CliRunner().invoke(main, ["verify", str(chip), "--program", str(path), "--layer", "0"])


def test_verify_names_programmed_instances_missing_from_the_drawing(awkward_chip, tmp_path):
    """The program's first mesh renamed (V -> X, canonical ids): none of its MZIs is drawn."""
    doc = json.loads((awkward_chip / "p.json").read_text())
    stage = doc["layers"][0]["stages"][0]
    assert stage["name"] == "V"
    stage["name"] = "X"
    for mzi in stage["mzis"]:
        mzi["id"] = mzi["id"].replace("L0_V_", "L0_X_")
    missing = sorted([m["id"] for m in stage["mzis"]] + [f"L0_X_ps_m{k}" for k in range(stage["n_modes"])])
    result = _verify_with(tmp_path, doc, awkward_chip / "chip.gds")
    assert result.exit_code == 3
    assert result.output.splitlines()[-1] == (
        f"Error: layer 0: {len(missing)} programmed instance(s) are not in the drawing (first: {missing[0]}) "
        "and simulate at their cells' defaults; optinc lvs lists the differences; fidelity below 0.999 in "
        "layer(s) 0"
    )


def test_a_simulated_gain_fails_whatever_the_fidelity(monkeypatch):
    from optinc_compiler import verify
    from optinc_compiler.netlist import layer_netlist

    layer = compile_layer("fc1", np.eye(2), CompileOptions())
    monkeypatch.setattr(verify, "netlist_smatrix", lambda *a, **k: np.array([1.2 * np.eye(2)]))
    target = verify.Target(layer, layer_netlist(layer), layer.matrix())
    result = verify.verify_targets([target], verify.VerifyOptions(), source="program")
    assert result.layers[0].nominal.fidelity == pytest.approx(1.0)
    assert result.failed == ("fc1",)
    assert result.failure() == (
        "layer fc1: simulated gain (an input delivers 1.44 of its power to the outputs, "
        "more than 1 + 1e-09); a passive chip cannot, so its netlist or models are wrong"
    )
    assert verify.summary_table(result).splitlines()[-1].split()[-1] == "FAIL"


def test_a_nan_fidelity_is_a_named_failure(monkeypatch):
    from optinc_compiler import verify
    from optinc_compiler.netlist import layer_netlist

    layer = compile_layer("fc1", np.eye(2), CompileOptions())
    monkeypatch.setattr(verify, "netlist_smatrix", lambda *a, **k: np.full((1, 2, 2), np.nan + 0j))
    result = verify.verify_targets(
        [verify.Target(layer, layer_netlist(layer), layer.matrix())], verify.VerifyOptions(), source="program"
    )
    assert result.failed == ("fc1",)
    assert result.failure() == "the simulated S-matrix holds NaN or inf in layer(s) fc1 (a model's numbers)"
