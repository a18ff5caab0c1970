"""A tiny hardware-aware training run converges, reproducibly, and survives export."""

from __future__ import annotations

import numpy as np
import pytest

from optinc_compiler.aggregator import evaluate, export, runtime
from optinc_compiler.aggregator.encoding import AggregatorSpec
from optinc_compiler.errors import InputError

runtime.configure_cpu()  # before jax starts: fast compiles (see runtime.py)
pytest.importorskip("optax")
model = pytest.importorskip("optinc_compiler.aggregator.model")
train = pytest.importorskip("optinc_compiler.aggregator.train")

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
        ({"restarts": 0}, "restarts = 0 is not allowed; use restarts >= 1"),
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
