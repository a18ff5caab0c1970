"""``optinc aggregator``: train and evaluate the OptINC aggregator ONN (arXiv 2603.28290).

Registered on the main group at the end of :mod:`optinc_compiler.cli`. Only click is
imported here; jax, optax and sax load inside the commands, so ``optinc --help`` and
``optinc compile`` stay fast.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from optinc_compiler.clickutil import domain_errors, finite


@click.group("aggregator")
def aggregator_group() -> None:
    """The OptINC aggregator: N servers' b-bit codes in, their rounded average out."""


spec_options = [
    click.option("--servers", "-n", type=int, default=4, show_default=True, help="Servers N (>= 2)."),
    click.option("--bits", "-b", type=int, default=4, show_default=True, help="Bits per code b (>= 1)."),
]


def _spec_options[F: Callable[..., Any]](func: F) -> F:
    for option in reversed(spec_options):
        func = option(func)
    return func


@aggregator_group.command("train")
@_spec_options
@click.option("--layer-type", type=click.Choice(["ud", "svd", "ud-seg"]), default="ud", show_default=True)
@click.option(
    "--block-size", type=int, default=None, help="Tile size k of ud-seg layers (1 < k < K); ud-seg only."
)
@click.option("--preprocessing", type=click.Choice(["sum", "bitwise"]), default="sum", show_default=True)
@click.option("--width", "-k", type=int, default=None, help="Modes K per layer  [default: the smallest, b]")
@click.option("--depth", "-d", type=int, default=1, show_default=True, help="Optical layers D.")
@click.option("--restarts", type=int, default=4, show_default=True, help="Initialisations trained at once.")
@click.option("--steps", type=int, default=2000, show_default=True, help="Adam steps (multiple of 250).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--noise-rad",
    type=float,
    callback=finite,
    default=0.01,
    show_default=True,
    help="Phase noise in the loop.",
)
@click.option("--dac-bits", type=int, default=12, show_default=True, help="Phase DAC depth in the loop.")
@click.option(
    "--margin",
    type=float,
    callback=finite,
    default=0.15,
    show_default=True,
    help="Intensity margin to the threshold.",
)
@click.option(
    "--input-noise",
    "input_noise_levels",
    type=float,
    callback=finite,
    default=0.4,
    show_default=True,
    help="Noise on the preprocessing intensities in the loop, in level spacings.",
)
@click.option(
    "--encoder-init",
    type=click.Choice(["random", "bits", "code"]),
    default="bits",
    show_default=True,
    help="Encoder gains at the periods of the output bits, or random; code: gains and biases "
    "so each feature is one output bit of --output-code (sum preprocessing).",
)
@click.option(
    "--output-code",
    type=click.Choice(["binary", "gray"]),
    default="binary",
    show_default=True,
    help="Output bits: the average's binary code, or its Gray code (one bit changes per level).",
)
@click.option(
    "--preprocessing-noise",
    is_flag=True,
    help="Also put the phase noise on the preprocessing stage's heaters in the loop.",
)
@click.option(
    "--phase-gain-steps",
    is_flag=True,
    help="Adam steps on the encoder gains in rad of phase at full scale, not relative.",
)
@click.option(
    "-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True, help="Design folder."
)
@domain_errors
def train_command(
    servers: int,
    bits: int,
    layer_type: str,
    block_size: int | None,
    preprocessing: str,
    width: int | None,
    depth: int,
    restarts: int,
    steps: int,
    seed: int,
    noise_rad: float,
    dac_bits: int,
    margin: float,
    input_noise_levels: float,
    encoder_init: str,
    output_code: str,
    preprocessing_noise: bool,
    phase_gain_steps: bool,
    output: Path,
) -> None:
    """Train an aggregator, compile it and write its design folder (exit 3 below 100%).

    JAX runs on the CPU with XLA_FLAGS from optinc_compiler.aggregator.runtime.
    """
    from optinc_compiler.aggregator import runtime

    runtime.configure_cpu()
    from optinc_compiler.aggregator import pipeline

    result = pipeline.train_design(
        servers=servers,
        bits=bits,
        layer_type=layer_type,
        preprocessing=preprocessing,
        width=width,
        depth=depth,
        restarts=restarts,
        steps=steps,
        seed=seed,
        noise_rad=noise_rad,
        dac_bits=dac_bits,
        margin=margin,
        output=output,
        input_noise_levels=input_noise_levels,
        encoder_init=encoder_init,
        block_size=block_size,
        output_code=output_code,
        preprocessing_noise=preprocessing_noise,
        phase_gain_steps=phase_gain_steps,
    )
    click.echo(result.table)
    result.raise_below_100()


@aggregator_group.command("eval")
@_spec_options
@click.option(
    "--design",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Design folder, its path or a name in the checkout's designs/ "
    "(default: designs/aggregator_n{N}_b{b} of this checkout).",
)
@click.option("--sample", type=int, default=None, help="Raw inputs to sample (default: all 2^(N b)).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds samples and noise draws.")
@click.option(
    "--backend",
    type=click.Choice(["sax", "program"]),
    default="sax",
    show_default=True,
    help="sax: simulate the layers' netlists (ideal cells); program: rebuild from the phases.",
)
@click.option(
    "--draws", type=int, default=0, show_default=True, help="Noise draws per robustness cell (0: skip)."
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="PNG of bit-exact draws against noise level (needs --draws).",
)
@domain_errors
def eval_command(
    servers: int,
    bits: int,
    design: Path | None,
    sample: int | None,
    seed: int,
    backend: str,
    draws: int,
    plot: Path | None,
) -> None:
    """Evaluate a design bit-exactly through its compiled program (exit 3 below 100%)."""
    from optinc_compiler.aggregator import pipeline

    report = pipeline.evaluate_design(
        servers=servers,
        bits=bits,
        design=design,
        sample=sample,
        seed=seed,
        backend=backend,
        draws=draws,
        plot=plot,
    )
    click.echo(report.table)
    report.raise_below_100()
