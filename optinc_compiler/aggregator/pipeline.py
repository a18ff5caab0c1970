"""The two flows behind ``optinc aggregator train`` and ``eval``: short pipelines of the
stage modules, returning the printed table and the verdict."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from optinc_compiler.aggregator import evaluate as ev
from optinc_compiler.aggregator.encoding import (
    MAX_EXHAUSTIVE_RAW_BITS,
    MAX_SEED,
    PREPROCESSINGS,
    AggregatorSpec,
    all_raw_codes,
    check_reduced_size,
    reduced_size,
    sample_raw_codes,
)
from optinc_compiler.aggregator.locate import CHECKOUT_DESIGNS, ELECTRONICS_FILE, PROGRAM_FILE, find_design
from optinc_compiler.errors import InputError, VerificationError
from optinc_compiler.files import check_output_folder, check_png_output, make_folder, write_atomic
from optinc_compiler.guard import quote
from optinc_compiler.report import format_table

#: What ``evaluate.load_design`` reads from a design folder.
DESIGN_FILES = f"{ELECTRONICS_FILE} and {PROGRAM_FILE}"
NOISE_LEVELS_RAD = (0.001, 0.002, 0.003, 0.004, 0.005, 0.01, 0.02)
DAC_BITS = (8, 10, 12)


@dataclass(frozen=True)
class Report:
    """Text to print and the accuracies it is about."""

    table: str
    accuracies: tuple[ev.Accuracy, ...]

    def raise_below_100(self) -> None:
        """VerificationError (exit 3) unless every accuracy is 100%."""
        bad = [a for a in self.accuracies if a.correct < a.inputs]
        if bad:
            parts = ", ".join(f"{a.what} {a.percent:.2f}% ({a.inputs - a.correct} wrong)" for a in bad)
            raise VerificationError(f"aggregator is not bit-exact: {parts}")


def default_design(spec: AggregatorSpec) -> Path:
    """``designs/aggregator_n{N}_b{b}`` in the current folder, else in this checkout."""
    name = Path("designs") / f"aggregator_n{spec.servers}_b{spec.bits}"
    for folder in (name, CHECKOUT_DESIGNS / name.name):
        if folder.is_dir():
            return folder
    raise InputError(
        f"no design for N={spec.servers}, b={spec.bits}: {str(name)!r} does not exist; "
        "train one with 'optinc aggregator train' or pass --design"
    )


def check_seed(seed: int) -> int:
    """A seed of numpy and jax: 0 .. MAX_SEED."""
    if not 0 <= seed <= MAX_SEED:
        raise InputError(f"seed = {seed} is not allowed; use 0 <= seed <= {MAX_SEED}")
    return seed


def raw_codes(spec: AggregatorSpec, sample: int | None, seed: int) -> np.ndarray:
    """All raw inputs, or ``sample`` seeded ones; InputError if all are too many."""
    if sample is not None:
        return sample_raw_codes(spec, sample, np.random.default_rng(seed))
    if spec.channels > MAX_EXHAUSTIVE_RAW_BITS:
        raise InputError(
            f"N*b = {spec.channels} is too large to evaluate all 2^{spec.channels} raw inputs; "
            f"allowed N*b <= {MAX_EXHAUSTIVE_RAW_BITS} without --sample, or pass --sample M"
        )
    return all_raw_codes(spec)


def evaluate_design(
    *,
    servers: int,
    bits: int,
    design: Path | None,
    sample: int | None,
    seed: int,
    backend: str,
    draws: int,
    plot: Path | None = None,
) -> Report:
    """Accuracy (reduced and raw inputs), hardware, dataset sizes, and optionally robustness."""
    spec = AggregatorSpec(servers, bits)
    if not 0 <= draws <= ev.MAX_DRAWS:
        raise InputError(f"draws = {draws} is not allowed; use 0 <= draws <= {ev.MAX_DRAWS:,}")
    check_seed(seed)
    if plot is not None and not draws:
        raise InputError("--plot needs noise draws; pass --draws 100 (for example)")
    if plot is not None:
        check_png_output(plot, what="plot")
    codes = raw_codes(spec, sample, seed)
    folder = default_design(spec) if design is None else find_design(design, needs=DESIGN_FILES)
    chip = ev.load_design(folder)
    if chip.electronics.spec != spec:
        e = chip.electronics.spec
        raise InputError(f"the design is for N={e.servers}, b={e.bits}, not N={servers}, b={bits}")
    matrices = ev.layer_matrices(chip, backend=backend)
    accuracies = (ev.reduced_accuracy(chip, matrices), ev.raw_accuracy(chip, matrices, codes))
    tables = [
        _accuracy_table(accuracies, backend),
        _hardware_table(chip),
        _dataset_table(spec),
    ]
    if draws:
        grid = robustness_grid(chip, draws=draws, seed=seed)
        tables.append(robustness_table(grid))
        if plot is not None:
            plot_robustness(grid, plot, title=f"OptINC aggregator N={servers}, b={bits}")
    return Report(table="\n\n".join(tables), accuracies=accuracies)


def _accuracy_table(accuracies: tuple[ev.Accuracy, ...], backend: str) -> str:
    rows = [
        [a.what, backend, str(a.inputs), str(a.correct), f"{a.percent:.2f}", f"{a.min_margin:.4f}"]
        for a in accuracies
    ]
    return format_table(["inputs", "backend", "count", "bit_exact", "accuracy_%", "min_margin"], rows)


def _hardware_table(chip: ev.Chip) -> str:
    """The design's hardware, and both layer types at its width and depth for comparison."""
    e, h = chip.electronics, ev.hardware(chip)
    k = chip.onn_layers[0].block_size
    networks = [("this design", e.layer_type + (f" k={k}" if k is not None else ""), h)]
    for layer_type in ("ud", "svd"):
        other = ev.hardware_of(
            layer_type,
            width=e.width,
            depth=e.depth,
            ports=e.ports,
            bits=e.spec.bits,
            preprocessing_mzis=h.preprocessing_mzis,
        )
        networks.append(("same K, D", layer_type, other))
    counts = ("mzis", "fan_mzis", "heaters", "attenuators", "preprocessing_mzis", "photodiodes", "modulators")
    rows = [
        [name, kind, e.preprocessing, str(e.width), str(e.depth)] + [str(getattr(x, c)) for c in counts]
        for name, kind, x in networks
    ]
    headers = ["network", "layer_type", "preprocessing", "width", "depth", "MZIs", "fan_MZIs", "heaters"]
    return format_table([*headers, "attenuators", "preprocess_MZIs", "photodiodes", "modulators"], rows)


def _dataset_table(spec: AggregatorSpec) -> str:
    rows = [["raw", f"2^{spec.channels} = {spec.raw_size}"]]
    rows += [[f"reduced ({p})", str(reduced_size(spec, p))] for p in PREPROCESSINGS]
    return format_table(["dataset", "inputs"], rows)


@dataclass(frozen=True)
class RobustnessGrid:
    """Draws at 100% per noise level (rows) and DAC depth (columns), ONN heaters only,
    plus one column with every heater (preprocessing included) at 12 bits."""

    draws: int
    onn: dict[tuple[float, int], int]
    all_heaters_dac12: dict[float, int]


def robustness_grid(chip: ev.Chip, *, draws: int, seed: int) -> RobustnessGrid:
    """Seeded draws for every noise level in NOISE_LEVELS_RAD and DAC depth in DAC_BITS."""
    onn = {
        (noise, dac): ev.robustness(chip, noise_rad=noise, dac_bits=dac, draws=draws, seed=seed).draws_at_100
        for noise in NOISE_LEVELS_RAD
        for dac in DAC_BITS
    }
    full = {
        noise: ev.robustness(
            chip, noise_rad=noise, dac_bits=12, draws=draws, seed=seed, include_preprocessing=True
        ).draws_at_100
        for noise in NOISE_LEVELS_RAD
    }
    return RobustnessGrid(draws=draws, onn=onn, all_heaters_dac12=full)


def robustness_table(grid: RobustnessGrid) -> str:
    """The grid as text: ``k/draws`` per cell."""
    rows = []
    for noise in NOISE_LEVELS_RAD:
        cells = [f"{grid.onn[noise, dac]}/{grid.draws}" for dac in DAC_BITS]
        rows.append([f"{noise:g}", *cells, f"{grid.all_heaters_dac12[noise]}/{grid.draws}"])
    headers = ["noise_rad", *(f"onn_dac{b}_at_100" for b in DAC_BITS), "all_heaters_dac12_at_100"]
    return format_table(headers, rows)


def plot_robustness(grid: RobustnessGrid, path: Path, *, title: str) -> Path:
    """Draws at 100% against noise level, one line per DAC depth; PNG written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.5), dpi=120)
    noise = list(NOISE_LEVELS_RAD)
    for dac in DAC_BITS:
        ax.plot(
            noise,
            [100 * grid.onn[n, dac] / grid.draws for n in noise],
            marker="o",
            label=f"ONN, {dac}-bit DAC",
        )
    full = [100 * grid.all_heaters_dac12[n] / grid.draws for n in noise]
    ax.plot(noise, full, marker="s", linestyle="--", label="all heaters, 12-bit DAC")
    ax.set(xscale="log", xlabel="phase noise (rad, Gaussian std)", ylabel="draws bit-exact (%)", title=title)
    ax.set_ylim(-5, 105)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", metadata={"Software": None}))
    plt.close(fig)
    return path


def train_design(
    *,
    servers: int,
    bits: int,
    layer_type: str,
    preprocessing: str,
    width: int | None,
    depth: int,
    restarts: int,
    steps: int,
    seed: int,
    noise_rad: float,
    dac_bits: int | None,
    margin: float,
    output: Path,
    input_noise_levels: float = 0.4,
    encoder_init: str = "bits",
    block_size: int | None = None,
    output_code: str = "binary",
    preprocessing_noise: bool = False,
    phase_gain_steps: bool = False,
) -> Report:
    """Train, compile, check through the program, and write the design folder, created
    with its parents after training (``block_size``: the tile size k of ud-seg layers)."""
    check_output_folder(output)  # before jax, before training; nothing is created yet
    check_seed(seed)
    spec = AggregatorSpec(servers, bits)
    check_reduced_size(spec, preprocessing)
    from optinc_compiler.aggregator import export, model, train  # lazy: jax, optax

    ports = 1 if preprocessing == "sum" else bits
    width = width if width is not None else max(ports, bits, 2)
    arch = model.Architecture(spec, preprocessing, layer_type, width, depth, block_size)
    options = train.TrainOptions(
        restarts=restarts,
        steps=steps,
        seed=seed,
        noise_rad=noise_rad,
        dac_bits=dac_bits,
        margin=margin,
        input_noise_levels=input_noise_levels,
        encoder_init=encoder_init,
        output_code=output_code,
        preprocessing_noise=preprocessing_noise,
        phase_gain_steps=phase_gain_steps,
    )
    result = train.train(arch, options)
    program = export.build_program(spec, preprocessing, result.params, layer_type)
    settings = {
        "restarts": restarts, "steps": options.steps, "seed": seed, "noise_rad": noise_rad,
        "dac_bits": dac_bits, "margin": margin, "learning_rate": options.learning_rate,
        "input_noise_levels": input_noise_levels, "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "encoder_init": encoder_init,
        **({"block_size": block_size} if block_size is not None else {}),
        "preprocessing_noise": preprocessing_noise,
        **({"phase_gain_steps": True} if phase_gain_steps else {}),
        "chosen_restart": result.chosen,
        "restarts_at_100": int(np.sum(result.accuracy == 1.0)),
    }  # fmt: skip
    electronics = export.electronics_from_params(
        spec,
        preprocessing=preprocessing,
        layer_type=layer_type,
        params=result.params,
        training=settings,
        output_code=output_code,
    )
    chip = ev.Chip(program=program, electronics=electronics)
    keys, codes = ev.lookup_table(chip)
    lut = export.lut_to_json(spec, preprocessing, keys, codes)
    accuracy = ev.reduced_accuracy(chip, ev.layer_matrices(chip))
    files = (export.WEIGHTS_FILE, PROGRAM_FILE, ELECTRONICS_FILE, export.LUT_FILE)
    existing = [name for name in files if (output / name).exists()]
    if accuracy.correct < accuracy.inputs and existing:  # never a failed design over a design
        raise VerificationError(
            f"aggregator is not bit-exact: {accuracy.what} {accuracy.percent:.2f}% "
            f"({accuracy.inputs - accuracy.correct} wrong); {quote(output)} keeps the design it holds "
            "(more --restarts or --steps may reach 100%)"
        )
    make_folder(output)
    weights = export.trained_matrices(spec, preprocessing, result.params, layer_type)
    export.write_design(output, program, electronics, lut, weights)
    robust = ev.robustness(
        chip, noise_rad=0.002, dac_bits=12, draws=100, seed=seed, include_preprocessing=True
    )
    h = ev.hardware(chip)
    row = [
        f"{arch.layer_type}", f"{width}", f"{depth}", f"{restarts}", f"{settings['restarts_at_100']}",
        f"{accuracy.percent:.2f}", f"{accuracy.min_margin:.4f}", f"{robust.draws_at_100}/100",
        f"{h.mzis}", f"{h.heaters}", f"{result.seconds:.1f}",
    ]  # fmt: skip
    headers = ["layer_type", "width", "depth", "restarts", "at_100", "accuracy_%", "min_margin"]
    headers += ["0.002rad_dac12_at_100", "MZIs", "heaters", "train_s"]  # noise on all heaters
    table = format_table(headers, [row]) + f"\n\ndesign written to {output}"
    return Report(table=table, accuracies=(accuracy,))
