"""Segmented (ud-seg) aggregator layers: JAX == program, block structure, hardware, a
tiny training run, and the CLI's checks of --block-size."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import rebuild_layer

from optinc_compiler.aggregator import evaluate, export, runtime
from optinc_compiler.aggregator.encoding import AggregatorSpec, reduced_dataset
from optinc_compiler.cli import main
from optinc_compiler.compiler import CompileOptions, compile_layer
from optinc_compiler.errors import InputError
from optinc_compiler.program import from_json, to_json

runtime.configure_cpu()  # before jax starts: fast compiles (see runtime.py)
jax = pytest.importorskip("jax")
pytest.importorskip("optax")
model = pytest.importorskip("optinc_compiler.aggregator.model")
train = pytest.importorskip("optinc_compiler.aggregator.train")

SPEC = AggregatorSpec(3, 2)
#: (K, k, ceil(K / k)): divisible, and edge tiles of one mode.
GRIDS = [(8, 4, 2), (5, 2, 3)]


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


@functools.cache
def seg_chip(width: int, block: int) -> tuple[dict, evaluate.Chip]:
    """Random ud-seg parameters of depth 2 and their chip (program and electronics); call
    it under x64."""
    arch = model.Architecture(SPEC, "sum", "ud-seg", width=width, depth=2, block_size=block)
    params = jax.tree.map(np.asarray, model.init_params(arch, jax.random.PRNGKey(3)))
    chip = evaluate.Chip(
        export.build_program(SPEC, "sum", params, "ud-seg"),
        export.electronics_from_params(SPEC, preprocessing="sum", layer_type="ud-seg", params=params),
    )
    return params, chip


@pytest.mark.parametrize(("width", "block", "n"), GRIDS)
def test_program_matrix_is_the_jax_layer_times_sqrt_rc(width, block, n, x64):
    """``Layer.matrix()`` (and the JSON rebuilt independently) is ``sum_b embed(U_b D_b)``
    = the JAX matrix times ``sqrt(R C) = n``; the chip's matrices carry the fan amplitude."""
    params, chip = seg_chip(width, block)
    doc = json.loads(to_json(chip.program))
    loaded = from_json(to_json(chip.program))  # the schema accepts it
    optical = evaluate.layer_matrices(chip)
    for i, layer in enumerate(params["layers"]):
        w = np.asarray(model.layer_matrix(layer, "ud-seg"))
        compiled = chip.program.layer(f"onn{i + 1}")
        np.testing.assert_allclose(compiled.matrix(), n * w, rtol=0, atol=1e-9)
        np.testing.assert_allclose(rebuild_layer(doc["layers"][i + 1]), n * w, rtol=0, atol=1e-9)
        np.testing.assert_allclose(loaded.layer(f"onn{i + 1}").matrix(), n * w, rtol=0, atol=1e-9)
        np.testing.assert_allclose(optical[i + 1], w, rtol=0, atol=1e-9)
        assert evaluate.fan_amplitude(compiled) == pytest.approx(1 / n)
    weights = export.trained_matrices(SPEC, "sum", params, "ud-seg")
    np.testing.assert_allclose(weights["onn1"], chip.program.layer("onn1").matrix(), rtol=0, atol=1e-9)


def test_blocks_mirror_the_compilers_segmented_layers(x64):
    """Offsets, shapes, stage names and kinds, stage sizes and MZI ids as the compiler's
    ``ud-segmented`` method lays out the same K x K matrix."""
    _, chip = seg_chip(5, 2)
    layer = chip.program.layer("onn1")
    ref = compile_layer("onn1", layer.matrix(), CompileOptions(method="ud-segmented", block_size=2))
    assert (layer.method, layer.block_size, layer.exact, layer.scale) == ("ud-segmented", 2, False, 1.0)

    def structure(x):
        return [
            (b.row_offset, b.col_offset, b.shape, [(type(s).__name__, s.name, s.n_modes) for s in b.stages])
            for b in x.blocks
        ]

    assert structure(layer) == structure(ref)
    assert [b.stages[0].name for b in layer.blocks][:3] == ["D_b0_0", "D_b0_1", "D_b0_2"]
    assert [b.shape for b in layer.blocks][-3:] == [(1, 2), (1, 2), (1, 1)]
    assert layer.blocks[1].stages[1].mzi_ids == ref.blocks[1].stages[1].mzi_ids == ("onn1_U_b0_1_c0_m0",)


@pytest.mark.parametrize(
    ("width", "block", "mzis", "fan"),
    [
        (8, 4, 2 * (4 * 6 + 8 + 8), 2 * 16),  # 4 tiles of 6 MZIs, 1 splitter + 1 combiner MZI per port
        (5, 2, 2 * (8 * 1 + 10 + 10), 2 * 20),  # 8 two-mode tiles and a 1 x 1 one; 2 + 2 per port
    ],
)
def test_hardware_counts_tiles_and_fan_chains(width, block, mzis, fan, x64):
    _, chip = seg_chip(width, block)
    h = evaluate.hardware(chip)
    assert (h.mzis, h.fan_mzis) == (mzis, fan)
    assert h == evaluate.hardware_of(
        "ud-seg", width=width, depth=2, ports=1, bits=2, preprocessing_mzis=5, block_size=block
    )
    n = -(-width // block)
    assert h.attenuators == 2 * n * width  # one column per block row of tiles
    assert h.heaters == 2 * mzis + sum(s.n_modes for x in chip.onn_layers for s in x.stages)


def test_numpy_chip_and_noise_free_draws_equal_the_jax_forward(x64):
    params, chip = seg_chip(5, 2)
    arch = model.Architecture(SPEC, "sum", "ud-seg", width=5, depth=2, block_size=2)
    data = reduced_dataset(SPEC, "sum")
    want = np.asarray(model.forward(arch, params, jax.numpy.asarray(data.intensities)))
    got = evaluate.onn_outputs(chip.electronics, evaluate.layer_matrices(chip)[1:], data.intensities)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    rng = np.random.default_rng(0)
    exact = evaluate.noisy_matrix(chip.onn_layers[0], rng, draws=2, noise_rad=0.0, dac_bits=None)
    np.testing.assert_allclose(exact, np.stack([evaluate.layer_matrices(chip)[1]] * 2), rtol=0, atol=1e-12)


def test_sax_simulation_of_the_segmented_netlist_is_the_program(x64):
    """The netlist (splitter chains, crossings, tiles, combiner chains) simulated with the
    ideal models gives the chip's matrices: ``sum_b embed(U_b D_b) / sqrt(R C)``."""
    _, chip = seg_chip(5, 2)
    for sax, program in zip(
        evaluate.layer_matrices(chip, backend="sax"), evaluate.layer_matrices(chip), strict=True
    ):
        np.testing.assert_allclose(sax, program, rtol=0, atol=1e-12)


def test_fan_chains_are_noisy_heaters_too():
    """Robustness draws perturb the splitter and combiner MZIs as well: a 1-to-2 splitter
    keeps sin^2(theta/2) on its upper row with theta = pi/2 + noise."""
    from optinc_compiler.netlist import split_chain

    chain, _ = split_chain(2)
    got = evaluate._noisy_chain(chain, 2, np.random.default_rng(3), 4, 0.1, None)
    z = np.random.default_rng(3).standard_normal((4, 1))  # theta draws come first
    np.testing.assert_allclose(np.abs(got[:, 0, 0]) ** 2, np.sin((np.pi / 2 + 0.1 * z[:, 0]) / 2) ** 2)


# ------------------------------------------------------------------------- training

ARCH = model.Architecture(AggregatorSpec(2, 2), "sum", "ud-seg", width=4, depth=1, block_size=2)
OPTIONS = train.TrainOptions(restarts=2, steps=500, seed=7, noise_rad=0.002)
#: The same network through the CLI (same static options: the jitted steps are reused).
TRAIN_ARGS = "-n 2 -b 2 -k 4 -d 1 --layer-type ud-seg --block-size 2 --restarts 2 --steps 500 --seed 7"


def test_tiny_ud_seg_run_converges_and_is_bit_exact_through_the_program():
    result = train.train(ARCH, OPTIONS)
    assert result.accuracy[result.chosen] == 1.0
    assert result.min_margin[result.chosen] > 0.02
    chip = evaluate.Chip(
        export.build_program(ARCH.spec, "sum", result.params, "ud-seg"),
        export.electronics_from_params(
            ARCH.spec, preprocessing="sum", layer_type="ud-seg", params=result.params
        ),
    )
    matrices = evaluate.layer_matrices(chip)
    assert evaluate.reduced_accuracy(chip, matrices).percent == 100.0
    raw = evaluate.raw_accuracy(chip, matrices, np.array([[a, b] for a in range(4) for b in range(4)]))
    assert raw.correct == raw.inputs == 16


def test_train_command_writes_a_ud_seg_design_that_checks_and_evaluates(tmp_path):
    design = tmp_path / "seg"
    args = [*TRAIN_ARGS.split(), "--noise-rad", "0.002", "-o", str(design)]
    result = CliRunner().invoke(main, ["aggregator", "train", *args])
    assert result.exit_code == 0, result.output
    program, weights = str(design / "program.json"), str(design / "weights.npz")
    checked = CliRunner().invoke(main, ["check", program, "--against", weights])
    assert checked.exit_code == 0, checked.output  # compiled program == trained phases
    evaluated = CliRunner().invoke(
        main, ["aggregator", "eval", "-n", "2", "-b", "2", "--design", str(design), "--backend", "program"]
    )
    assert evaluated.exit_code == 0, evaluated.output
    assert "raw      program  16     16         100.00" in evaluated.output
    assert "this design  ud-seg k=2" in evaluated.output


# ----------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--layer-type", "ud-seg"], "layer type 'ud-seg' needs a block size k; allowed 1 < k < K = 8"),
        (
            ["--layer-type", "ud-seg", "--block-size", "8"],
            "block size k = 8 is not allowed for width K = 8; use 1 < k < 8",
        ),
        (
            ["--layer-type", "ud-seg", "--block-size", "1"],
            "block size k = 1 is not allowed for width K = 8; use 1 < k < 8",
        ),
        (["--block-size", "4"], "block size k = 4 is only for layer type 'ud-seg', not 'ud'"),
    ],
)
def test_bad_block_sizes_are_one_line_errors_before_training(args, message, tmp_path):
    result = CliRunner().invoke(main, ["aggregator", "train", "-k", "8", *args, "-o", str(tmp_path / "d")])
    assert (result.exit_code, result.output) == (1, f"Error: {message}\n")
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        model.Architecture(AggregatorSpec(4, 4), "sum", **_arch_kwargs(args), width=8)
    assert list(tmp_path.iterdir()) == []


def _arch_kwargs(args: list[str]) -> dict:
    pairs = dict(zip(args[::2], args[1::2], strict=True))
    block = pairs.get("--block-size")
    return {"layer_type": pairs.get("--layer-type", "ud"), "block_size": int(block) if block else None}


def test_block_size_must_be_an_integer():
    result = CliRunner().invoke(main, ["aggregator", "train", "--block-size", "two", "-o", "x"])
    assert result.exit_code == 2
    assert "'two' is not a valid integer" in result.output
