"""``optinc ddp-experiment``, ``optinc ddp-compare`` and ``optinc comm-model``.

PyTorch and scikit-learn are imported only inside the experiment commands."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import click

from optinc_compiler.clickutil import domain_errors, finite
from optinc_compiler.distributed import comm_model as cm
from optinc_compiler.distributed import experiment as ex
from optinc_compiler.distributed.lookup import DEFAULT_SCALE_CHUNK

log = logging.getLogger("optinc")


@click.command("ddp-experiment")
@click.option(
    "--world-size", type=click.IntRange(2, 64), default=4, show_default=True, help="Processes (servers)."
)
@click.option(
    "--aggregation",
    type=click.Choice(["ring", "optinc", "ideal8"]),
    default="ring",
    show_default=True,
    help="ring: PyTorch's all-reduce; optinc: through the aggregator chip; ideal8: an ideal 8-bit chip.",
)
@click.option(
    "--lookup",
    "lookup_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The chip's lookup table (optinc-lookup JSON); default: an ideal chip of --bits.",
)
@click.option(
    "--design",
    "design",
    type=click.Path(path_type=Path),
    default=None,
    help="An aggregator design folder, its path or a name in the checkout's designs/ "
    "(designs/aggregator_n4_b4): its simulated lookup.",
)
@click.option(
    "--phase-noise-rad",
    type=click.FloatRange(0, ex.MAX_PHASE_NOISE_RAD),
    callback=finite,
    default=0.0,
    show_default=True,
    help="Phase noise on every heater of the --design chip (one chip per run).",
)
@click.option("--noise-per-step", is_flag=True, help="Draw a fresh noisy chip every step instead.")
@click.option(
    "--screen", "screen_chips", is_flag=True, help="Reject noisy chips that fail the test of every sum."
)
@click.option(
    "--bits", type=click.IntRange(1, 16), default=4, show_default=True, help="Bits of the ideal chip."
)
@click.option("--epochs", type=click.IntRange(1, ex.MAX_EPOCHS), default=20, show_default=True)
@click.option("--seed", type=click.IntRange(0, ex.MAX_SEED), default=0, show_default=True)
@click.option(
    "--no-error-feedback", is_flag=True, help="Drop the quantisation residual instead of keeping it."
)
@click.option(
    "--scale-chunk",
    type=click.IntRange(0, ex.MAX_SCALE_CHUNK),
    default=DEFAULT_SCALE_CHUNK,
    show_default=True,
    help="Elements per shared quantisation scale (0: one scale per DDP bucket).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Output folder (created with its parents).",
)
@domain_errors
def ddp_experiment_command(
    world_size: int,
    aggregation: str,
    lookup_file: Path | None,
    design: Path | None,
    phase_noise_rad: float,
    noise_per_step: bool,
    screen_chips: bool,
    bits: int,
    epochs: int,
    seed: int,
    no_error_feedback: bool,
    scale_chunk: int,
    out_dir: Path,
) -> None:
    """Data-parallel training of an MLP on scikit-learn's digits, gloo on the CPU."""
    from optinc_compiler.files import check_output_folder
    from optinc_compiler.report import format_table

    check_output_folder(out_dir)  # before training: nothing is created until the end
    config = ex.ExperimentConfig(
        world_size=world_size,
        aggregation=aggregation,
        epochs=epochs,
        seed=seed,
        bits=bits,
        lookup_file=str(lookup_file) if lookup_file is not None else None,
        error_feedback=not no_error_feedback,
        scale_chunk=scale_chunk or None,
        design=str(design) if design is not None else None,
        phase_noise_rad=phase_noise_rad,
        noise_per_step=noise_per_step,
        screen_chips=screen_chips,
    )
    metrics = ex.run(config, out_dir)
    rows = [
        [
            str(m.epoch),
            f"{m.train_loss:.4f}",
            f"{m.test_loss:.4f}",
            f"{100 * m.test_accuracy:.2f}",
            f"{m.elapsed_s:.1f}",
        ]
        for m in metrics
    ]
    click.echo(format_table(["epoch", "train_loss", "test_loss", "test_accuracy_%", "elapsed_s"], rows))
    log.info("wrote %s/metrics.json, metrics.csv, config.json", out_dir)


@click.command("ddp-compare")
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), default=None, help="PNG."
)
@domain_errors
def ddp_compare_command(runs: tuple[Path, ...], plot_path: Path | None) -> None:
    """Final accuracies of experiment RUNS side by side (the first is the reference)."""
    from optinc_compiler.distributed.compare import MAX_RUNS, plot_runs, summarise
    from optinc_compiler.files import check_png_output, path_kind, write_atomic
    from optinc_compiler.guard import quote
    from optinc_compiler.report import format_table

    if len(runs) > MAX_RUNS:
        raise click.BadParameter(f"{len(runs)} runs; allowed: at most {MAX_RUNS}", param_hint="RUNS")
    seen: dict[Path, Path] = {}
    for r in runs:
        key = r.resolve() if path_kind(r, what="run folder") != "missing" else r.absolute()
        if key in seen:
            raise click.BadParameter(f"run folder {quote(r)} is given twice", param_hint="RUNS")
        seen[key] = r
    if plot_path is not None:
        check_png_output(plot_path, what="plot")
    loaded = [summarise(r) for r in runs]
    names = [s.name for s, _ in loaded]
    loaded = [  # folders of the same name (seed1/ring, seed2/ring) go by their paths
        (replace(s, name=str(r)) if names.count(s.name) > 1 else s, m)
        for r, (s, m) in zip(runs, loaded, strict=True)
    ]
    ref = loaded[0][0].final_accuracy
    rows = [
        [
            s.name,
            s.aggregation,
            f"{100 * s.final_accuracy:.2f}",
            f"{100 * (s.final_accuracy - ref):+.2f}",
            f"{100 * s.best_accuracy:.2f}",
            f"{s.bit_error_rate:.2e}",
            f"{s.mean_level_error:.2e}",
            f"{s.large_error_rate:.2e}",
            str(s.fallbacks),
        ]
        for s, _ in loaded
    ]
    headers = [
        "run",
        "aggregation",
        "final_accuracy_%",
        "vs_first_pp",
        "best_%",
        "bit_error_rate",
        "level_error",
        "over_1_level",
        "fallbacks",
    ]
    click.echo(format_table(headers, rows))
    if plot_path is not None:
        write_atomic(plot_path, lambda tmp: plot_runs(loaded, tmp))
        log.info("wrote %s", plot_path)


@click.command("comm-model")
@click.option(
    "--servers",
    type=click.IntRange(*cm.SERVERS_RANGE),
    multiple=True,
    help="Server counts: --servers 4 8 16 64 (the default), or repeated.",
)
@click.argument("more_servers", metavar="[N]...", nargs=-1, type=click.IntRange(*cm.SERVERS_RANGE))
@click.option(
    "--model",
    type=click.Choice(["resnet50", "bert-large", "llama-7b"]),
    default="resnet50",
    show_default=True,
    help="Gradient size and compute time preset.",
)
@click.option(
    "--gradient-bytes",
    type=click.FloatRange(*cm.GRADIENT_BYTES_RANGE),
    callback=finite,
    default=None,
    help="Overrides the preset's size.",
)
@click.option(
    "--compute-s",
    type=click.FloatRange(*cm.COMPUTE_S_RANGE),
    callback=finite,
    default=None,
    help="Overrides the preset's compute time.",
)
@click.option(
    "--link-gbps",
    type=click.FloatRange(*cm.LINK_GBPS_RANGE),
    callback=finite,
    default=400.0,
    show_default=True,
)
@click.option(
    "--latency-us",
    type=click.FloatRange(*cm.LATENCY_US_RANGE),
    callback=finite,
    default=5.0,
    show_default=True,
)
@click.option("--optical-bits", type=click.IntRange(1, 32), default=8, show_default=True)
@click.option(
    "--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), default=None, help="PNG."
)
@domain_errors
def comm_model_command(
    servers: tuple[int, ...],
    more_servers: tuple[int, ...],
    model: str,
    gradient_bytes: float | None,
    compute_s: float | None,
    link_gbps: float,
    latency_us: float,
    optical_bits: int,
    plot_path: Path | None,
) -> None:
    """Time per training step: ring all-reduce against one pass through OptINC.

    ``--servers 4 8 16`` works as written: the values after the first are taken as N..."""
    from optinc_compiler.distributed import comm_model as cm
    from optinc_compiler.files import check_png_output, write_atomic
    from optinc_compiler.report import format_table

    if plot_path is not None:
        check_png_output(plot_path, what="plot")
    params = cm.CommParams(
        gradient_bytes=gradient_bytes if gradient_bytes is not None else cm.PRESETS_BYTES[model],
        link_gbps=link_gbps,
        latency_us=latency_us,
        compute_s=compute_s if compute_s is not None else cm.PRESET_COMPUTE_S[model],
        optical_bits=optical_bits,
    )
    counts = sorted(set(servers) | set(more_servers)) or [4, 8, 16, 64]
    times = cm.step_times(counts, params)
    rows = [
        [
            str(t.servers),
            f"{1e3 * cm.ring_allreduce_s(t.servers, params):.3f}",
            f"{1e3 * cm.optinc_s(t.servers, params):.3f}",
            f"{1e3 * t.ring_s:.2f}",
            f"{1e3 * t.optinc_s:.2f}",
            f"{100 * t.saving:.1f}",
            cm.describe_range(t.servers, params),
        ]
        for t in times
    ]
    headers = [
        "servers",
        "ring_comm_ms",
        "optinc_comm_ms",
        "ring_step_ms",
        "optinc_step_ms",
        "saving_%",
        "link_gbps_for_17-25%_saving",
    ]
    click.echo(
        f"{model}: {params.gradient_bytes / 1e6:.1f} MB of gradients, compute {params.compute_s} s/step, "
        f"link {link_gbps} Gb/s, latency {latency_us} us, optical path {optical_bits} bits per value"
    )
    click.echo(format_table(headers, rows))
    if plot_path is not None:
        write_atomic(plot_path, lambda tmp: cm.plot(params, model, tmp))
        log.info("wrote %s", plot_path)
