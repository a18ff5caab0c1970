"""Phase program v1: JSON schema, round trip, determinism and readable format errors."""

from __future__ import annotations

import copy
import json
import re

import jsonschema
import numpy as np
import pytest
from conftest import haar, rebuild_layer

from optinc_compiler import program as prog
from optinc_compiler.compiler import CompileOptions, compile_weights
from optinc_compiler.errors import InputError, ProgramFormatError
from optinc_compiler.io import NamedMatrix


@pytest.fixture(scope="module")
def program() -> prog.PhaseProgram:
    rng = np.random.default_rng(11)
    weights = [
        NamedMatrix("u", haar(5, 1)),
        NamedMatrix("fc1", rng.normal(size=(6, 4))),
        NamedMatrix("fc2", rng.normal(size=(3, 6)) + 1j * rng.normal(size=(3, 6))),
    ]
    p = compile_weights(weights, CompileOptions())
    seg = compile_weights(
        [NamedMatrix("seg", rng.normal(size=(5, 6)))], CompileOptions(method="ud-segmented", block_size=3)
    )
    ud = compile_weights(
        [NamedMatrix("ud", rng.normal(size=(4, 4)))], CompileOptions(method="ud", topology="reck")
    )
    return prog.PhaseProgram(layers=p.layers + seg.layers + ud.layers)


@pytest.fixture(scope="module")
def doc(program) -> dict:
    return json.loads(prog.to_json(program))


def test_document_validates_against_the_shipped_schema(doc):
    jsonschema.Draft202012Validator.check_schema(prog.schema())
    jsonschema.validate(doc, prog.schema(), cls=jsonschema.Draft202012Validator)
    assert doc["format"] == "optinc-phase-program"
    assert doc["version"] == 1
    assert [layer["method"] for layer in doc["layers"]] == ["unitary", "svd", "svd", "ud-segmented", "ud"]


def test_every_layer_rebuilds_from_json_alone(program, doc):
    for layer, data in zip(program.layers, doc["layers"], strict=True):
        np.testing.assert_allclose(rebuild_layer(data), layer.matrix(), atol=1e-12)


def test_round_trip_is_byte_identical(tmp_path, program):
    path = prog.save(program, tmp_path / "p.json")
    again = prog.load(path)
    assert prog.to_json(again) == path.read_text()
    for a, b in zip(program.layers, again.layers, strict=True):
        assert a.name == b.name
        assert a.shape == b.shape
        assert a.method == b.method
        np.testing.assert_array_equal(a.matrix(), b.matrix())


def test_same_input_compiles_to_identical_bytes():
    w = [NamedMatrix("fc", np.random.default_rng(5).normal(size=(7, 5)))]
    assert prog.to_json(compile_weights(w, CompileOptions())) == prog.to_json(
        compile_weights(w, CompileOptions())
    )


def test_save_leaves_no_temporary_files_and_refuses_missing_folder(tmp_path, program):
    prog.save(program, tmp_path / "p.json")
    assert [p.name for p in tmp_path.iterdir()] == ["p.json"]
    (tmp_path / "plain.txt").write_text("x")  # same permissions as a plain open()
    assert (tmp_path / "p.json").stat().st_mode == (tmp_path / "plain.txt").stat().st_mode
    with pytest.raises(InputError, match=r"output folder '.*missing' does not exist; create it first"):
        prog.save(program, tmp_path / "missing" / "p.json")
    assert not (tmp_path / "missing").exists()


def test_layer_lookup_names_known_layers(program):
    with pytest.raises(
        InputError, match=r"no layer 'fc9' in the program; layers: 'u', 'fc1', 'fc2', 'seg', 'ud'"
    ):
        program.layer("fc9")


def _mutated(doc: dict, edit) -> str:
    d = copy.deepcopy(doc)
    edit(d)
    return json.dumps(d)


def _mesh(d: dict) -> dict:
    return d["layers"][0]["stages"][0]


def _set(path, value):
    def edit(d):
        target = d
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_set(["version"], 2), r"has phase-program version 2; this optinc reads version 1"),
        (_set(["format"], "gds"), r'is not a phase program: expected "format": "optinc-phase-program"'),
        (lambda d: d["layers"][0].pop("scale"), r"layers\[0\]: 'scale' is a required property"),
        (
            lambda d: _mesh(d)["mzis"][0].update(theta=4.0),
            r"layers\[0\].stages\[0\].mzis\[0\].theta: 4.0 is greater than",
        ),
        (
            lambda d: _mesh(d)["mzis"][1].update(phi=-0.1),
            r"mzis\[1\].phi: -0.1 is less than the minimum of 0",
        ),
        (lambda d: _mesh(d).update(topology="hex"), r"stages\[0\]"),
        (
            lambda d: _mesh(d)["mzis"][2].pop("phi"),
            r"mzis\[2\]: expected an object with keys id, column, mode",
        ),
        (
            lambda d: _mesh(d)["mzis"][2].update(id="a-b"),
            r"mzis\[2\].id: 'a-b' is not a letter followed by letters, digits and _$",
        ),
        (lambda d: _mesh(d)["mzis"][2].update(column="3"), r"mzis\[2\].column: '3' is not an integer"),
        (lambda d: _mesh(d)["mzis"][2].update(mode=True), r"mzis\[2\].mode: True is not an integer"),
        (lambda d: _mesh(d)["mzis"][2].update(theta=None), r"mzis\[2\].theta: None is not a number"),
        (
            lambda d: _mesh(d)["mzis"][2].update(phi=2 * np.pi),
            r"mzis\[2\].phi: 6.28\d+ is greater than or equal to",
        ),
        (
            lambda d: _mesh(d)["mzis"][2].update(column=-1),
            r"mzis\[2\].column: -1 is outside 0..9 \(n_modes 5\)$",
        ),
        (lambda d: _mesh(d)["mzis"][0].update(mode=4), r"mzis\[0\].mode: 4 is outside 0..3 \(n_modes 5\)$"),
        (lambda d: _mesh(d)["mzis"][3].update(column=0), r"mzis\[3\]: column 0 is not after the column"),
        (lambda d: _mesh(d)["output_phases"].pop(), r"output_phases has 4 entries; n_modes is 5"),
        (
            lambda d: _mesh(d)["mzis"][1].update(id=_mesh(d)["mzis"][0]["id"]),
            r"MZI 1 of stage 'U' in layer 'u' has id 'u_U_c0_m0'; its id is 'u_U_c0_m2' "
            r"\(\{layer id\}_\{stage\}_c\{column\}_m\{mode\}\)$",
        ),
        (
            lambda d: d["layers"][1]["stages"][1].update(n_modes=9),
            r"amplitude and phase need n_modes = 9 entries",
        ),
        (
            lambda d: d["layers"][1]["stages"][1]["amplitude"].__setitem__(0, 1.5),
            r"amplitude\[0\]: 1.5 is greater than the maximum of 1",
        ),
        (
            lambda d: d["layers"][1]["stages"][1].update(n_modes=9, amplitude=[0.5] * 9, phase=[0.0] * 9),
            r"layers\[1\].stages\[1\] acts on 9 modes; the layer has 6 \(max of shape\)",
        ),
        (lambda d: d["layers"][3]["blocks"][0].update(row_offset=4), r"lies outside the layer \(5, 6\)"),
        (lambda d: d["layers"][0].update(blocks=[]), r"layers\[0\]"),
    ],
)
def test_malformed_programs_give_one_readable_line(doc, edit, message):
    with pytest.raises(ProgramFormatError, match=message) as info:
        prog.from_json(_mutated(doc, edit), source="p.json")
    assert "\n" not in str(info.value)


def test_overflowing_numbers_are_rejected(doc):
    text = json.dumps(doc).replace('"scale": 1.0', '"scale": 1e999', 1)
    with pytest.raises(ProgramFormatError, match=r"p.json is not valid JSON: 1e999 overflows float64"):
        prog.from_json(text, source="p.json")


@pytest.mark.parametrize(("layer", "exact"), [(1, False), (4, True)])
def test_exact_flag_must_match_the_method(doc, layer, exact):
    edited = _mutated(doc, lambda d: d["layers"][layer]["approximation"].update(exact=exact))
    with pytest.raises(ProgramFormatError, match=rf"layers\[{layer}\]"):
        prog.from_json(edited, source="p.json")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(json.loads(edited), prog.schema(), cls=jsonschema.Draft202012Validator)


def test_integral_floats_are_integers_as_in_json_schema(doc):
    edited = _mutated(doc, lambda d: _mesh(d)["mzis"][0].update(column=0.0, mode=0.0))
    assert prog.from_json(edited).layers[0].stages[0].mesh.columns[0] == 0


def test_schema_and_loader_refuse_an_id_with_a_trailing_newline(doc):
    edited = _mutated(doc, lambda d: _mesh(d)["mzis"][0].update(id="u_U_c0_m0\n"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(json.loads(edited), prog.schema(), cls=jsonschema.Draft202012Validator)
    with pytest.raises(
        ProgramFormatError,
        match=re.escape("mzis[0].id: 'u_U_c0_m0\\n' is not a letter followed by letters, digits and _") + "$",
    ):
        prog.from_json(edited)


def test_unwritable_output_is_one_line(tmp_path, program, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(prog.os, "replace", refuse)
    with pytest.raises(InputError, match=r"cannot write '.*p.json': Permission denied"):
        prog.save(program, tmp_path / "p.json")
    assert list(tmp_path.iterdir()) == []  # the temporary file is gone too


def test_output_folder_that_is_a_file(tmp_path, program):
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(InputError, match=r"output folder '.*f.txt' is a file, not a folder"):
        prog.save(program, tmp_path / "f.txt" / "p.json")


def test_nan_and_broken_json_are_rejected(doc):
    text = json.dumps(doc).replace('"scale": 1.0', '"scale": NaN', 1)
    with pytest.raises(ProgramFormatError, match=r"p.json is not valid JSON: NaN is not allowed"):
        prog.from_json(text, source="p.json")
    with pytest.raises(ProgramFormatError, match=r"p.json is not valid JSON: Expecting"):
        prog.from_json('{"format": ', source="p.json")


def test_load_missing_file(tmp_path):
    with pytest.raises(ProgramFormatError, match=r"phase program '.*nope.json' does not exist"):
        prog.load(tmp_path / "nope.json")


def test_mzis_appear_in_light_order_with_documented_fields(doc):
    mzi = _mesh(doc)["mzis"][0]
    assert list(mzi) == ["id", "column", "mode", "theta", "phi"]
    layer = doc["layers"][0]
    assert list(layer) == ["name", "shape", "method", "scale", "approximation", "stages"]


def _fc1_doc() -> dict:
    program = compile_weights(
        [NamedMatrix("fc1", np.random.default_rng(0).normal(size=(3, 3)))], CompileOptions()
    )
    return json.loads(prog.to_json(program))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: d["layers"][0].update(shape=[10**9, 10**9]),
            "layers[0].shape[1]: 1000000000 is greater than the maximum of 4096",
        ),
        (
            lambda d: d["layers"][0]["stages"][0]["mzis"][0].update(column=1e300),
            "layers[0].stages[0].mzis[0].column: 1e+300 is outside 0..5 (n_modes 3)",
        ),
        (
            lambda d: d["layers"][0]["stages"][0]["mzis"][0].update(column=10**30),
            "layers[0].stages[0].mzis[0].column: 1000000000000000000000000000000 is outside 0..5 (n_modes 3)",
        ),
        (
            lambda d: d["layers"][0]["stages"][0].update(name="a/b"),
            "layers[0].stages[0].name: 'a/b' is not allowed: A letter, then letters and digits; "
            "a segmented layer's tiles add _b<row>_<column>.",
        ),
        (
            lambda d: d["layers"][0].update(name="fc\n1"),
            "layers[0].name: 'fc\\n1' is not allowed: Any text without control characters, at most 200 "
            "characters.",
        ),
        (
            lambda d: d["layers"][0].update(name="x" * 100_000),
            "layers[0].name: '" + "x" * 80 + "'... is longer than 200 characters",
        ),
        (
            lambda d: d["layers"][0]["stages"][0].update(n_modes=10**9),
            "layers[0].stages[0].n_modes: 1000000000 is greater than the maximum of 4096",
        ),
        (
            lambda d: d["layers"][0]["stages"][1].update(n_modes=-1),
            "layers[0].stages[1].n_modes: -1 is less than the minimum of 1",
        ),
        (
            lambda d: d["layers"][0]["stages"][0].update(kind="magic"),
            "layers[0].stages[0].kind: 'magic' is not one of ['mesh', 'diagonal']",
        ),
        (lambda d: d["layers"][0]["stages"][2].update(name="V"), "layer 'fc1' has two stages named 'V'"),
    ],
)
def test_hostile_programs_are_one_line_naming_the_value(edit, message):
    doc = _fc1_doc()
    edit(doc)
    with pytest.raises(ProgramFormatError, match=re.escape(f"p.json: {message}") + "$"):
        prog.from_json(json.dumps(doc), source="p.json")


def test_a_key_given_twice_is_refused():
    with pytest.raises(
        ProgramFormatError, match=re.escape("p.json: key 'format' appears twice in one object") + "$"
    ):
        prog.from_json('{"format": "optinc-phase-program", "format": "x"}', source="p.json")


def test_an_integer_past_the_digit_limit_is_refused_naming_the_file():
    with pytest.raises(ProgramFormatError) as info:
        prog.from_json('{"version": ' + "9" * 5000 + "}", source="p.json")
    assert str(info.value) == "p.json: an integer of 5,000 digits; allowed: -2^63 .. 2^63 - 1"


def test_deep_json_is_refused_without_a_recursion_error():
    with pytest.raises(
        ProgramFormatError, match=re.escape("p.json nests deeper than a phase program does") + "$"
    ):
        prog.from_json("[" * 100_000, source="p.json")


def test_an_unknown_layer_name_is_quoted_short():
    (layer,) = compile_weights([NamedMatrix("fc1", np.eye(2))], CompileOptions()).layers
    with pytest.raises(InputError) as info:
        prog.PhaseProgram(layers=(layer,)).layer("n" * 100_000)
    quoted = "'" + "n" * 132 + "..." + "n" * 49 + "' (100,000 characters)"
    assert str(info.value) == f"no layer {quoted} in the program; layers: 'fc1'"
