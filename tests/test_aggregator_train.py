"""A tiny hardware-aware training run converges, reproducibly, and survives export."""

from __future__ import annotations

import numpy as np
import pytest

from optinc_compiler.aggregator import encoding as enc
from optinc_compiler.aggregator import evaluate, export, runtime
from optinc_compiler.aggregator.encoding import AggregatorSpec
from optinc_compiler.errors import InputError

runtime.configure_cpu()  # before jax starts: fast compiles (see runtime.py)
pytest.importorskip("optax")
model = pytest.importorskip("optinc_compiler.aggregator.model")
train = pytest.importorskip("optinc_compiler.aggregator.train")
jax = pytest.importorskip("jax")
jnp = jax.numpy

ARCH = model.Architecture(AggregatorSpec(2, 2), "sum", "ud", width=2, depth=2)
OPTIONS = train.TrainOptions(restarts=2, steps=500, seed=7, noise_rad=0.002)
#: The same network through the CLI (same static options: the jitted steps are reused).
TRAIN_ARGS = "-n 2 -b 2 -k 2 -d 2 --restarts 2 --steps 500 --seed 7 --noise-rad 0.002"


@pytest.fixture(scope="module")
def trained():
    return train.train(ARCH, OPTIONS)


def test_tiny_run_reaches_100_percent_with_margin(trained):
    assert trained.accuracy[trained.chosen] == 1.0
    assert trained.min_margin[trained.chosen] > 0.02
    assert trained.accuracy.shape == (2,)


def test_tiny_run_is_reproducible(trained):
    again = train.train(ARCH, OPTIONS)
    for a, b in zip(
        np.concatenate([np.ravel(v) for layer in trained.params["layers"] for v in layer.values()]),
        np.concatenate([np.ravel(v) for layer in again.params["layers"] for v in layer.values()]),
        strict=True,
    ):
        assert a == b


def test_tiny_run_is_bit_exact_through_the_compiled_program(trained):
    spec = ARCH.spec
    chip = evaluate.Chip(
        export.build_program(spec, "sum", trained.params, "ud"),
        export.electronics_from_params(spec, preprocessing="sum", layer_type="ud", params=trained.params),
    )
    matrices = evaluate.layer_matrices(chip)
    assert evaluate.reduced_accuracy(chip, matrices).percent == 100.0
    raw = evaluate.raw_accuracy(chip, matrices, np.array([[a, b] for a in range(4) for b in range(4)]))
    assert raw.correct == raw.inputs == 16
    keys, codes = evaluate.lookup_table(chip)
    assert keys.tolist() == list(range(7))
    assert codes.tolist() == [0, 0, 1, 2, 2, 2, 3]  # round half to even of s / 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"restarts": 0}, "restarts = 0 is not allowed; use 1 <= restarts <= 256"),
        ({"steps": 300}, "steps = 300 is not allowed; use a multiple of 250"),
        ({"dac_bits": 0}, "DAC bits 0 is not allowed; use 1 .. 24"),
    ],
)
def test_options_are_checked(kwargs, message):
    with pytest.raises(InputError, match=message):
        train.TrainOptions(**kwargs)


def test_train_command_writes_a_design_that_checks_and_evaluates(tmp_path):
    from click.testing import CliRunner

    from optinc_compiler.cli import main

    design = tmp_path / "agg"
    result = CliRunner().invoke(main, ["aggregator", "train", *TRAIN_ARGS.split(), "-o", str(design)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in design.iterdir()) == [
        "electronics.json",
        "lut.json",
        "program.json",
        "weights.npz",
    ]
    program, weights = str(design / "program.json"), str(design / "weights.npz")
    checked = CliRunner().invoke(main, ["check", program, "--against", weights])
    assert checked.exit_code == 0, checked.output  # compiled program == trained phases
    evaluated = CliRunner().invoke(
        main, ["aggregator", "eval", "-n", "2", "-b", "2", "--design", str(design)]
    )
    assert evaluated.exit_code == 0, evaluated.output
    assert "raw      sax      16     16         100.00" in evaluated.output


@pytest.mark.parametrize("preprocessing", ["sum", "bitwise"])
def test_random_raw_codes_map_to_their_reduced_input(preprocessing):
    from optinc_compiler.aggregator.encoding import reduced_dataset

    data = reduced_dataset(AggregatorSpec(3, 3), preprocessing)
    codes = train.random_raw_codes(data, np.random.default_rng(0), 50)
    assert codes.shape == (50, data.size, 3)
    assert codes.min() == 0
    assert codes.max() == 7
    np.testing.assert_array_equal(codes.sum(axis=-1), np.broadcast_to(data.sums, (50, data.size)))
    assert len({tuple(c) for c in codes[:, data.size // 2]}) > 1  # different raw inputs, not one


def test_preprocessing_bank_is_the_reduced_input_without_noise_and_spreads_with_it():
    from optinc_compiler.aggregator.encoding import reduced_dataset

    data = reduced_dataset(AggregatorSpec(4, 4), "sum")
    exact = train.preprocessing_bank(data, noise_rad=0.0, dac_bits=None, seed=0, draws=8)
    assert exact.shape == (8, 61, 1)
    np.testing.assert_allclose(exact, np.broadcast_to(data.intensities, exact.shape), atol=1e-12)
    noisy = train.preprocessing_bank(data, noise_rad=0.01, dac_bits=12, seed=0, draws=256)
    spread_levels = 60 * (noisy - data.intensities).std(axis=0)[:, 0]
    assert 0.05 < spread_levels[30] < 1.0  # a fraction of a level at 0.01 rad
    assert spread_levels[0] == 0.0  # all channels dark: no light, no error


def test_gray_training_is_bit_exact_in_gray_through_the_compiled_program():
    spec = ARCH.spec
    options = train.TrainOptions(
        restarts=2, steps=500, seed=7, noise_rad=0.002, output_code="gray", preprocessing_noise=True
    )
    result = train.train(ARCH, options)
    assert result.accuracy[result.chosen] == 1.0
    chip = evaluate.Chip(
        export.build_program(spec, "sum", result.params, "ud"),
        export.electronics_from_params(
            spec, preprocessing="sum", layer_type="ud", params=result.params, output_code="gray"
        ),
    )
    assert evaluate.reduced_accuracy(chip, evaluate.layer_matrices(chip)).percent == 100.0
    _, codes = evaluate.lookup_table(chip)
    assert codes.tolist() == [0, 0, 1, 2, 2, 2, 3]  # decoded from Gray: the same averages


@pytest.mark.parametrize(("servers", "bits"), [(2, 3), (3, 5), (4, 4), (4, 8), (5, 3), (8, 4)])
def test_code_encoder_features_are_the_gray_output_bits(servers, bits):
    spec = AggregatorSpec(servers, bits)
    gain, bias = model.code_features(spec, "gray", bits)
    sums = np.arange(spec.max_sum + 1)
    feature = np.cos(gain * sums[:, None] / spec.max_sum + bias) ** 2
    want = enc.output_bits(enc.target_codes(sums, servers=servers), bits=bits, output_code="gray")
    assert np.array_equal(feature > 0.5, want == 1)  # every sum, every bit
    assert np.abs(feature - 0.5).min() > 0  # never on the threshold


def test_code_encoder_features_are_binary_bits_above_the_lsb_for_even_n():
    spec = AggregatorSpec(4, 8)
    gain, bias = model.code_features(spec, "binary", 8)
    sums = np.arange(spec.max_sum + 1)
    feature = np.cos(gain * sums[:, None] / spec.max_sum + bias) ** 2
    want = enc.output_bits(enc.target_codes(sums, servers=4), bits=8, output_code="binary")
    assert np.array_equal(feature[:, 1:] > 0.5, want[:, 1:] == 1)
    assert not np.array_equal(feature[:, 0] > 0.5, want[:, 0] == 1)  # on 3 sums of 8: not cos^2


def test_code_encoder_init_needs_the_sum_preprocessing():
    arch = model.Architecture(AggregatorSpec(2, 2), "bitwise", "ud", width=2, depth=1)
    with pytest.raises(InputError, match="encoder init 'code' needs the 'sum' preprocessing"):
        model.init_params(arch, jax.random.PRNGKey(0), "code", "gray")


def test_phase_gain_steps_divide_the_encoder_gain_steps_by_the_gain():
    options = train.TrainOptions(phase_gain_steps=True)
    with jax.enable_x64(True):
        params = model.init_params(ARCH, jax.random.PRNGKey(0), "bits")
        params["encoder"]["log_gain"] = jnp.log(jnp.array([400.0, 0.5]))
        grads = jax.tree.map(jnp.ones_like, params)
        scaled, _ = train._optimiser(options).update(grads, train._optimiser(options).init(params), params)
        plain, _ = train._optimiser(train.TrainOptions()).update(
            grads, train._optimiser(train.TrainOptions()).init(params), params
        )
    ratio = np.asarray(scaled["encoder"]["log_gain"]) / np.asarray(plain["encoder"]["log_gain"])
    np.testing.assert_allclose(ratio, [1 / 400.0, 1.0])  # gains below 1 keep relative steps
    np.testing.assert_array_equal(scaled["layers"][0]["theta"], plain["layers"][0]["theta"])


def test_code_init_with_phase_gain_steps_trains_n4_b4_in_gray():
    spec = AggregatorSpec(4, 4)
    arch = model.Architecture(spec, "sum", "ud", width=4, depth=1)
    options = train.TrainOptions(
        restarts=2, steps=500, seed=7, noise_rad=0.002, encoder_init="code", output_code="gray",
        phase_gain_steps=True, input_noise_levels=0.0, margin=0.05,
    )  # fmt: skip
    result = train.train(arch, options)
    assert result.accuracy[result.chosen] == 1.0
    chip = evaluate.Chip(
        export.build_program(spec, "sum", result.params, "ud"),
        export.electronics_from_params(
            spec, preprocessing="sum", layer_type="ud", params=result.params, output_code="gray"
        ),
    )
    assert evaluate.reduced_accuracy(chip, evaluate.layer_matrices(chip)).percent == 100.0


def test_code_encoder_extra_features_are_third_harmonics_of_the_top_bits():
    spec = AggregatorSpec(4, 8)
    gain, bias = model.code_features(spec, "gray", 11)
    np.testing.assert_allclose(gain[8:], 3 * gain[[7, 6, 5]])
    np.testing.assert_allclose(bias[8:], 3 * bias[[7, 6, 5]])
