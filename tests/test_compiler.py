"""Weights -> layers: every method, any shape, rebuilt independently from the JSON."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from conftest import haar, rebuild_layer
from hypothesis import given, settings
from hypothesis import strategies as st

from optinc_compiler import program as prog
from optinc_compiler.compiler import CompileOptions, choose_method, compile_layer, compile_weights
from optinc_compiler.errors import InputError
from optinc_compiler.io import NamedMatrix

seeds = st.integers(min_value=0, max_value=2**32 - 1)


def layer_json(layer: prog.Layer) -> dict:
    return json.loads(prog.to_json(prog.PhaseProgram(layers=(layer,))))["layers"][0]


def random_matrix(rows: int, cols: int, seed: int, complex_: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(rows, cols))
    return w + 1j * rng.normal(size=(rows, cols)) if complex_ else w


@pytest.mark.parametrize("topology", ["clements", "reck"])
@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 9), cols=st.integers(1, 9), seed=seeds, complex_=st.booleans())
def test_svd_layer_rebuilds_from_json(topology, rows, cols, seed, complex_):
    w = random_matrix(rows, cols, seed, complex_)
    layer = compile_layer("fc", w, CompileOptions(method="svd", topology=topology))
    assert layer.exact
    assert layer.relative_error < 1e-12
    np.testing.assert_allclose(rebuild_layer(layer_json(layer)), w, rtol=0, atol=1e-12 * max(1, abs(w).max()))
    np.testing.assert_allclose(layer.matrix(), w, atol=1e-12 * max(1, abs(w).max()))
    # meshes on `in` then `out` modes, attenuators on min(out, in)
    v, s, u = layer.stages
    assert (v.n_modes, s.n_modes, u.n_modes) == (cols, min(rows, cols), rows)
    assert np.all((s.amplitude >= 0) & (s.amplitude <= 1))
    assert s.amplitude.max() == 1.0


@pytest.mark.parametrize("topology", ["clements", "reck"])
@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 12), seed=seeds)
def test_unitary_layer_rebuilds_from_json(topology, n, seed):
    u = haar(n, seed)
    layer = compile_layer("u", u, CompileOptions(method="unitary", topology=topology))
    assert layer.scale == 1.0
    assert layer.n_mzis == n * (n - 1) // 2
    np.testing.assert_allclose(rebuild_layer(layer_json(layer)), u, rtol=0, atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(rows=st.integers(1, 9), cols=st.integers(1, 9), seed=seeds, complex_=st.booleans())
def test_ud_layer_realises_its_recorded_approximation(rows, cols, seed, complex_):
    w = random_matrix(rows, cols, seed, complex_)
    layer = compile_layer("fc", w, CompileOptions(method="ud"))
    assert not layer.exact
    d, u = layer.stages
    assert d.n_modes == cols
    assert u.n_modes == max(rows, cols)
    rebuilt = rebuild_layer(layer_json(layer))
    err = np.linalg.norm(rebuilt - w) / np.linalg.norm(w)
    assert err == pytest.approx(layer.relative_error, rel=1e-6, abs=1e-12)


def test_ud_uses_about_half_the_mzis_of_svd():
    w = np.random.default_rng(0).normal(size=(16, 16))
    ud = compile_layer("a", w, CompileOptions(method="ud"))
    svd = compile_layer("a", w, CompileOptions(method="svd"))
    assert ud.n_mzis == 120
    assert svd.n_mzis == 240
    assert ud.n_attenuators == svd.n_attenuators == 16


@pytest.mark.parametrize(("shape", "k"), [((8, 8), 4), ((10, 7), 4), ((5, 12), 3), ((6, 6), 6), ((3, 3), 8)])
def test_segmented_ud_tiles_and_rebuilds(shape, k):
    w = np.random.default_rng(1).normal(size=shape)
    layer = compile_layer("seg", w, CompileOptions(method="ud-segmented", block_size=k))
    assert layer.block_size == k
    n_blocks = -(-shape[0] // k) * -(-shape[1] // k)
    assert len(layer.blocks) == n_blocks
    amplitudes = np.concatenate([s.amplitude for s in layer.stages if isinstance(s, prog.DiagonalStage)])
    assert amplitudes.max() == pytest.approx(1.0)
    assert amplitudes.min() >= 0
    rebuilt = rebuild_layer(layer_json(layer))
    err = np.linalg.norm(rebuilt - w) / np.linalg.norm(w)
    assert err == pytest.approx(layer.relative_error, rel=1e-6, abs=1e-12)
    if n_blocks == 1:  # one tile is the plain unitary x diagonal fit
        whole = compile_layer("seg", w, CompileOptions(method="ud"))
        assert layer.relative_error == pytest.approx(whole.relative_error, rel=1e-12)


def test_segmented_block_of_unitary_times_diagonal_is_exact():
    blocks = [
        [haar(3, 1) @ np.diag([1, 2, 3]), haar(3, 2)],
        [haar(3, 3) * 0.5, haar(3, 4) @ np.diag([3, 1, 1])],
    ]
    w = np.block(blocks)
    layer = compile_layer("seg", w, CompileOptions(method="ud-segmented", block_size=3))
    assert layer.relative_error < 1e-9


def test_auto_picks_unitary_only_for_unitary_matrices():
    opts = CompileOptions()
    assert choose_method(haar(5, 0), opts) == "unitary"
    assert choose_method(np.eye(4)[::-1].astype(complex), opts) == "unitary"
    assert choose_method(2 * haar(5, 0), opts) == "svd"
    assert choose_method(np.ones((2, 3), dtype=complex), opts) == "svd"
    assert choose_method(haar(5, 0) * (1 + 1e-6), opts) == "svd"
    assert choose_method(haar(5, 0) * (1 + 1e-6), CompileOptions(unitary_atol=1e-5)) == "unitary"


@pytest.mark.parametrize("method", ["svd", "ud", "ud-segmented", "auto"])
@pytest.mark.parametrize(
    "w",
    [
        np.zeros((3, 3)),
        np.zeros((2, 5)),
        np.eye(4),
        np.diag([1.0, 0.0, 2.0]),
        np.ones((3, 3)),
        np.array([[0.0, 3.0]]),
    ],
    ids=["zero3", "zero2x5", "eye4", "rank_deficient_diag", "rank1", "1x2"],
)
def test_degenerate_weights_are_finite_and_exact_where_promised(method, w):
    layer = compile_layer("d", w, CompileOptions(method=method, block_size=2))
    data = layer_json(layer)  # allow_nan=False: raises on NaN
    rebuilt = rebuild_layer(data)
    assert np.all(np.isfinite(rebuilt))
    if layer.exact:
        np.testing.assert_allclose(rebuilt, w, atol=1e-12)
    if not np.any(w):
        assert layer.scale == 0.0
        assert layer.relative_error == 0.0


@pytest.mark.parametrize("method", ["svd", "ud", "ud-segmented", "auto"])
@pytest.mark.parametrize("magnitude", [1e-300, 1e-150, 1e150, 1e200, 1e300])
def test_extreme_magnitudes_compile_to_finite_programs(method, magnitude):
    base = np.random.default_rng(2).normal(size=(4, 3)) + 1j * np.random.default_rng(3).normal(size=(4, 3))
    w = magnitude * base
    layer = compile_layer("big", w, CompileOptions(method=method, block_size=2))
    data = layer_json(layer)  # to_json refuses NaN and inf
    reference = compile_layer("ref", base, CompileOptions(method=method, block_size=2))
    assert layer.relative_error == pytest.approx(reference.relative_error, rel=1e-6, abs=1e-12)
    assert layer.scale / magnitude == pytest.approx(reference.scale, rel=1e-12)
    if layer.exact:
        np.testing.assert_allclose(rebuild_layer(data) / magnitude, base, atol=1e-12)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "layer name '' must be non-empty text"),
        ("fc\n1", "layer name 'fc\\n1' holds a control character (newline, tab, ...)"),
        ("x" * 300, "layer name '" + "x" * 80 + "'... is longer than 200 characters"),
    ],
)
def test_bad_layer_names_are_rejected(name, message):
    with pytest.raises(InputError, match=re.escape(message) + "$"):
        compile_layer(name, np.eye(2), CompileOptions())
    with pytest.raises(InputError, match=re.escape(message) + "$"):
        compile_weights([NamedMatrix(name, np.eye(2))], CompileOptions())


def test_unitary_method_rejects_general_matrix():
    with pytest.raises(InputError, match=r"unitary is not unitary: .*use method 'svd' or 'ud'"):
        compile_layer("fc", np.ones((3, 3)), CompileOptions(method="unitary"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "qr"}, r"unknown method 'qr'; allowed: auto, unitary, svd, ud, ud-segmented"),
        ({"topology": "hex"}, r"unknown mesh topology 'hex'; allowed: clements, reck"),
        ({"block_size": 0}, r"block size 0 must be >= 1"),
        ({"unitary_atol": -1.0}, r"unitary tolerance -1.0 must be a positive number"),
        ({"max_iter": 0}, r"max_iter 0 must be >= 1"),
    ],
)
def test_bad_options(kwargs, message):
    with pytest.raises(InputError, match=message):
        CompileOptions(**kwargs)


def test_ids_are_stable_and_prefixed_by_layer_name():
    weights = [NamedMatrix("layers.0", np.eye(3)), NamedMatrix("head", np.ones((2, 3)))]
    program = compile_weights(weights, CompileOptions())
    ids = [
        i
        for layer in program.layers
        for s in layer.stages
        if isinstance(s, prog.MeshStage)
        for i in s.mzi_ids
    ]
    assert len(ids) == len(set(ids))
    assert ids[0] == "layers_0_U_c0_m0"
    assert all(i.startswith(("layers_0_U_", "head_V_", "head_U_")) for i in ids)


def test_layer_names_that_collide_as_ids_are_rejected():
    weights = [NamedMatrix("a.b", np.eye(2)), NamedMatrix("a_b", np.eye(2))]
    message = (
        "layers 'a.b' and 'a_b' both have the id 'a_b'; each layer needs its own "
        "(its instances, heaters and pads are named by it)"
    )
    with pytest.raises(InputError, match=re.escape(message) + "$"):
        compile_weights(weights, CompileOptions())
