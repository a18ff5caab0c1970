"""The aggregator's function, preprocessing, JAX layers and their compiled programs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import rebuild_layer
from hypothesis import given, settings
from hypothesis import strategies as st

from optinc_compiler.aggregator import encoding as enc
from optinc_compiler.aggregator import runtime
from optinc_compiler.errors import InputError
from optinc_compiler.program import to_json

SMALL = [(2, 1), (2, 3), (3, 2), (4, 2), (5, 2), (2, 5), (4, 4)]


@pytest.mark.parametrize(("n", "b"), SMALL)
def test_target_is_python_round_half_even_of_the_mean(n, b):
    spec = enc.AggregatorSpec(n, b)
    sums = np.arange(spec.max_sum + 1)
    assert enc.target_codes(sums, servers=n).tolist() == [round(s / n) for s in sums.tolist()]
    assert enc.target_codes(sums, servers=n).max() == spec.max_code


@pytest.mark.parametrize("preprocessing", enc.PREPROCESSINGS)
@pytest.mark.parametrize(("n", "b"), SMALL)
def test_reduced_input_determines_the_target_exhaustively(n, b, preprocessing):
    """Every raw input, through the preprocessing optics (incoherent detection), lands on a
    reduced input whose target is the raw input's target; the reduced set is all of them."""
    spec = enc.AggregatorSpec(n, b)
    codes = enc.all_raw_codes(spec)
    p = enc.preprocessing_matrix(spec, preprocessing)
    np.testing.assert_allclose(p @ p.T, np.eye(p.shape[0]), atol=1e-12)  # a slice of a unitary
    detected = enc.detected_intensities(p, enc.raw_channels(codes, bits=b))
    data = enc.reduced_dataset(spec, preprocessing)
    assert data.size == enc.reduced_size(spec, preprocessing)
    index = {tuple(np.round(row, 9)): i for i, row in enumerate(data.intensities)}
    hit = np.array([index[tuple(np.round(row, 9))] for row in detected])
    targets = enc.target_codes(codes.sum(axis=1), servers=n)
    np.testing.assert_array_equal(data.targets[hit], targets)
    assert len(set(hit.tolist())) == data.size  # no reduced input is unreachable
    assert data.size <= spec.raw_size


def test_dataset_sizes_of_the_issue():
    spec = enc.AggregatorSpec(4, 8)
    assert spec.raw_size == 2**32
    assert enc.reduced_size(spec, "sum") == 4 * 255 + 1
    assert enc.reduced_size(spec, "bitwise") == 5**8


@settings(max_examples=50, deadline=None)
@given(st.integers(2, 9), st.integers(1, 8), st.integers(0, 2**31))
def test_sum_port_measures_the_normalised_sum(n, b, seed):
    spec = enc.AggregatorSpec(n, b)
    codes = enc.sample_raw_codes(spec, 20, np.random.default_rng(seed))
    p = enc.preprocessing_matrix(spec, "sum")
    got = enc.detected_intensities(p, enc.raw_channels(codes, bits=b))[:, 0]
    np.testing.assert_allclose(got, codes.sum(axis=1) / spec.max_sum, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("n", "b", "message"),
    [
        (1, 4, "servers N = 1 is not allowed; use 2 <= N <= 64"),
        (4, 0, "bits b = 0 is not allowed; use 1 <= b <= 16"),
        (65, 4, "servers N = 65 is not allowed"),
    ],
)
def test_spec_rejects_bad_sizes(n, b, message):
    with pytest.raises(InputError, match=message):
        enc.AggregatorSpec(n, b)


def test_raw_enumeration_refuses_huge_spaces():
    with pytest.raises(InputError, match=r"N\*b = 32 gives 2\^32 raw inputs"):
        enc.all_raw_codes(enc.AggregatorSpec(8, 4))


# ----------------------------------------------------------------- JAX == program


runtime.configure_cpu()  # before jax starts: fast compiles (see runtime.py)
jax = pytest.importorskip("jax")


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


@pytest.mark.parametrize("width", [2, 5])
def test_jax_mesh_is_the_convention(width, x64, rng):
    from optinc_compiler.aggregator import model
    from optinc_compiler.mzi import Mesh

    lay = model.mesh_layout(width)
    m = lay.modes.size
    theta, phi = rng.uniform(-7, 7, m), rng.uniform(-7, 7, m)
    delta = rng.uniform(0, 2 * np.pi, width)
    got = np.asarray(
        model.mesh_matrix(jax.numpy.asarray(theta), jax.numpy.asarray(phi), jax.numpy.asarray(delta))
    )
    mesh = Mesh("clements", width, lay.modes, lay.columns, theta, phi, delta)
    np.testing.assert_allclose(got, mesh.matrix(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("layer_type", ["ud", "svd"])
def test_jax_layers_equal_the_compiled_program(layer_type, x64):
    """The trained model's layer matrices are what the program's JSON (rebuilt
    independently) and the sax simulation of its netlist give."""
    from optinc_compiler.aggregator import export, model
    from optinc_compiler.simulate import layer_smatrix

    spec = enc.AggregatorSpec(3, 2)
    arch = model.Architecture(spec, "sum", layer_type, width=4, depth=2)
    params = model.init_params(arch, jax.random.PRNGKey(3))
    program = export.build_program(spec, "sum", jax.tree.map(np.asarray, params), layer_type)
    doc = json.loads(to_json(program))
    for i, layer in enumerate(params["layers"]):
        w = np.asarray(model.layer_matrix(layer, layer_type))
        compiled = program.layer(f"onn{i + 1}")
        np.testing.assert_allclose(compiled.matrix(), w, rtol=0, atol=1e-9)
        np.testing.assert_allclose(rebuild_layer(doc["layers"][i + 1]), w, rtol=0, atol=1e-9)
        np.testing.assert_allclose(layer_smatrix(compiled, model_set="ideal")[0], w, rtol=0, atol=1e-9)
    pre = program.layer("preprocess")
    np.testing.assert_allclose(pre.matrix(), enc.preprocessing_matrix(spec, "sum"), atol=1e-12)


def test_jax_forward_equals_numpy_chip(x64):
    from optinc_compiler.aggregator import evaluate, export, model

    spec = enc.AggregatorSpec(3, 2)
    arch = model.Architecture(spec, "bitwise", "ud", width=3, depth=3)
    params = jax.tree.map(np.asarray, model.init_params(arch, jax.random.PRNGKey(1)))
    chip = evaluate.Chip(
        export.build_program(spec, "bitwise", params, "ud"),
        export.electronics_from_params(spec, preprocessing="bitwise", layer_type="ud", params=params),
    )
    data = enc.reduced_dataset(spec, "bitwise")
    want = np.asarray(model.forward(arch, params, jax.numpy.asarray(data.intensities)))
    got = evaluate.onn_outputs(chip.electronics, evaluate.layer_matrices(chip)[1:], data.intensities)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


def test_architecture_rejects_bad_shapes():
    from optinc_compiler.aggregator import model

    spec = enc.AggregatorSpec(4, 4)
    with pytest.raises(InputError, match="width K = 3 is too small; allowed K >= 4"):
        model.Architecture(spec, width=3)
    with pytest.raises(InputError, match="unknown layer type 'full'; allowed: ud, svd"):
        model.Architecture(spec, layer_type="full")
    with pytest.raises(InputError, match="depth D = 0 is not allowed"):
        model.Architecture(spec, depth=0)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0.01, 1.0), min_size=2, max_size=12))
def test_chain_combiner_realises_the_power_weights(raw):
    from optinc_compiler.aggregator.export import chain_combiner

    w = np.asarray(raw) / np.sum(raw)
    layer = chain_combiner("p", w)
    assert layer.n_mzis == w.size - 1
    np.testing.assert_allclose(layer.matrix(), np.sqrt(w)[None, :], rtol=0, atol=1e-12)


def test_sum_preprocessing_compiles_to_a_chain_that_simulates_exactly():
    from optinc_compiler.aggregator.export import preprocessing_layer
    from optinc_compiler.program import PhaseProgram, from_json
    from optinc_compiler.simulate import layer_smatrix

    spec = enc.AggregatorSpec(4, 4)
    layer = from_json(to_json(PhaseProgram(layers=(preprocessing_layer(spec, "sum"),)))).layers[0]
    assert layer.n_mzis == 15
    s = layer_smatrix(layer, model_set="ideal")[0]
    np.testing.assert_allclose(s, enc.preprocessing_matrix(spec, "sum"), rtol=0, atol=1e-12)


@pytest.mark.parametrize("layer_type", ["ud", "svd"])
def test_hardware_counts_of_a_program_match_the_formula(layer_type, x64):
    from optinc_compiler.aggregator import evaluate, export, model

    spec = enc.AggregatorSpec(3, 3)
    arch = model.Architecture(spec, "sum", layer_type, width=4, depth=3)
    params = jax.tree.map(np.asarray, model.init_params(arch, jax.random.PRNGKey(0)))
    chip = evaluate.Chip(
        export.build_program(spec, "sum", params, layer_type),
        export.electronics_from_params(spec, preprocessing="sum", layer_type=layer_type, params=params),
    )
    h = evaluate.hardware(chip)
    assert h == evaluate.hardware_of(
        layer_type, width=4, depth=3, ports=1, bits=3, preprocessing_mzis=spec.channels - 1
    )
    assert h.mzis == 3 * 6 * (1 if layer_type == "ud" else 2)
    assert (h.photodiodes, h.modulators) == (1 + 2 * 4 + 3, 3 * 4)


@pytest.mark.parametrize("bits", [1, 2, 4, 5])
def test_gray_output_bits_round_trip_and_change_one_bit_per_level(bits):
    codes = np.arange(2**bits)
    for code in enc.OUTPUT_CODES:
        out = enc.output_bits(codes, bits=bits, output_code=code)
        assert enc.codes_of_output_bits(out, output_code=code).tolist() == codes.tolist()
    gray = enc.output_bits(codes, bits=bits, output_code="gray")
    assert (np.abs(np.diff(gray, axis=0)).sum(axis=1) == 1).all()  # neighbours: one bit
    binary = enc.output_bits(codes, bits=bits, output_code="binary")
    assert binary.tolist() == enc.code_bits(codes, bits=bits).tolist()
    with pytest.raises(InputError, match="unknown output code 'grey'; allowed: binary, gray"):
        enc.output_bits(codes, bits=bits, output_code="grey")


def test_electronics_keep_their_output_code_and_old_files_read_binary():
    from optinc_compiler.aggregator import export

    spec = enc.AggregatorSpec(2, 2)
    e = export.Electronics(spec, "sum", "ud", 2, 1, np.ones(2), np.zeros(2), (), (), output_code="gray")
    text = export.electronics_to_json(e)
    assert export.electronics_from_json(text, source="x").output_code == "gray"
    doc = json.loads(text)
    del doc["output_code"]  # a design written before Gray outputs existed
    assert export.electronics_from_json(json.dumps(doc), source="x").output_code == "binary"
    with pytest.raises(InputError, match="unknown output code 'grey'"):
        export.Electronics(spec, "sum", "ud", 2, 1, np.ones(2), np.zeros(2), (), (), output_code="grey")
