"""The ``optinc`` command line.

Exit codes: 0 ok, 1 error (bad input, missing file or library), 2 usage error,
3 verification below threshold. Results go to files or stdout, messages to stderr.
Command bodies import their stage lazily so ``optinc --help`` starts fast.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click

from optinc_compiler import __version__
from optinc_compiler.clickutil import domain_errors, finite
from optinc_compiler.errors import OptincError
from optinc_compiler.files import (
    check_output,
    check_output_names,
    check_png_output,
    write_atomic,
    write_stdout,
)
from optinc_compiler.gds import LAYOUT_SUFFIXES
from optinc_compiler.guard import brief, quote
from optinc_compiler.limits import DAC_BITS_RANGE, MAX_MONTE_CARLO_SAMPLES
from optinc_compiler.pdks import DEFAULT_PDK, PDK_NAMES

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("optinc")

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_VERIFICATION = 0, 1, 2, 3


def _configure_logging(verbose: int, quiet: int) -> None:
    """INFO by default; each -v one level more verbose, each -q one level quieter."""
    level = logging.INFO - 10 * (verbose - quiet)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(max(logging.DEBUG, min(logging.CRITICAL, level)))
    log.propagate = False
    # Library warnings (numpy's RuntimeWarning, torch's UserWarning) are not messages
    # for the user: they go to the debug log (-vv), never raw onto stderr.
    logging.captureWarnings(True)
    library = logging.getLogger("py.warnings")
    library.handlers[:] = [handler]
    library.setLevel(logging.DEBUG if level <= logging.DEBUG else logging.CRITICAL + 1)
    library.propagate = False


EXAMPLES = """\b
Examples:
  optinc compile model.npz -o program.json
  optinc compile U.npy --method unitary --mesh reck -o unitary.json
  optinc inspect program.json
  optinc check program.json --against model.npz
  optinc program program.json --dac-bits 12 -o heaters.csv
"""


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXAMPLES)
@click.version_option(__version__, prog_name="optinc")
@click.option("-v", "--verbose", count=True, help="More messages on stderr (repeatable).")
@click.option("-q", "--quiet", count=True, help="Fewer messages on stderr (repeatable).")
def main(verbose: int, quiet: int) -> None:
    """OptINC compiler: ONN weights -> MZI mesh phases -> chip.

    Exit codes: 0 ok, 1 error, 2 usage error, 3 verification below threshold.
    """
    _configure_logging(verbose, quiet)


program_argument = click.argument(
    "program_file", metavar="PROGRAM", type=click.Path(dir_okay=False, path_type=Path)
)


def layers_option(what: str) -> Callable[[F], F]:
    """``--layer NAME`` (repeatable), with the verb of the command in its help."""
    return click.option(
        "--layer", "layers", multiple=True, metavar="NAME", help=f"{what} only this layer (repeatable)."
    )


def calibration_option(what: str) -> Callable[[F], F]:
    """``--calibration FILE`` (a chip calibration, ``optinc_compiler.calibration``)."""
    return click.option(
        "--calibration",
        "calibration_file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help=what,
    )


def pdk_auto_option(help_text: str) -> Callable[[F], F]:
    """``--pdk auto|NAME``: a PDK, or ``auto``, the one that drew a layout."""
    return click.option(
        "--pdk",
        "pdk_name",
        type=click.Choice(("auto", *PDK_NAMES)),
        default="auto",
        show_default=True,
        help=help_text,
    )


pdk_check_option = pdk_auto_option("PDK of the layout; auto: the PDK that drew it (its top cell's name).")

strict_option = click.option(
    "--strict",
    is_flag=True,
    help="Treat size and power warnings (reticle field, heater budget) as errors (exit 3).",
)

output_option = click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    default=Path("-"),
    show_default=True,
    help="Phase-program JSON to write; '-' for stdout.",
)


@main.command("compile")
@click.argument("weights", type=click.Path(dir_okay=False, path_type=Path))
@output_option
@click.option(
    "--method",
    type=click.Choice(["auto", "unitary", "svd", "ud", "ud-segmented"]),
    default="auto",
    show_default=True,
    help="auto: unitary if W is unitary, else svd. ud: OptINC's unitary x diagonal (approximate).",
)
@click.option(
    "--mesh", "topology", type=click.Choice(["clements", "reck"]), default="clements", show_default=True
)
@layers_option("Compile")
@click.option(
    "--block-size",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Tile size for ud-segmented.",
)
@click.option(
    "--unitary-tol",
    type=click.FloatRange(min=0, min_open=True),
    default=1e-9,
    show_default=True,
    callback=finite,
    help="Tolerance on max|U^H U - I|.",
)
@click.option(
    "--max-iter", type=click.IntRange(min=1), default=200, show_default=True, help="Steps of the ud fit."
)
@calibration_option("Chip calibration (.json/.csv) with measured splitter ratios per MZI.")
@click.option(
    "--error-correct",
    is_flag=True,
    help="Fit the phases to the calibrated chip's splitters (needs --calibration).",
)
@domain_errors
def compile_command(
    weights: Path,
    output: Path,
    method: str,
    topology: str,
    layers: tuple[str, ...],
    block_size: int,
    unitary_tol: float,
    max_iter: int,
    calibration_file: Path | None,
    error_correct: bool,
) -> None:
    """Compile the weight matrices in WEIGHTS into a phase program.

    WEIGHTS is .npy, .npz (one layer per array), .csv, .safetensors or a PyTorch .pt
    state dict; matrices are (out, in) as in PyTorch.
    """
    from optinc_compiler import program as prog
    from optinc_compiler.compiler import CompileOptions, compile_weights
    from optinc_compiler.io import load_weights
    from optinc_compiler.report import format_summary

    if error_correct and calibration_file is None:
        raise click.UsageError("--error-correct needs --calibration (the chip's measured splitters)")
    if calibration_file is not None and not error_correct:
        raise click.UsageError("--calibration is used with --error-correct here (and by 'optinc program')")
    options = CompileOptions(
        method=method, topology=topology, unitary_atol=unitary_tol, block_size=block_size, max_iter=max_iter
    )
    if str(output) != "-":
        check_output(output, inputs=[weights, calibration_file])
    calibration = None
    if calibration_file is not None:
        from optinc_compiler.calibration import load_calibration

        calibration = load_calibration(calibration_file)
    loaded = load_weights(weights, layers=layers)
    for key in loaded.skipped:
        log.info("skipped %s (bias vector)", key)
    program = compile_weights(loaded.layers, options)
    if calibration is not None:
        import dataclasses

        from optinc_compiler.calibration import check_calibration
        from optinc_compiler.correction import correct_program

        check_calibration(calibration, program)
        program, reports = correct_program(program, calibration.splitters, calibration_name=calibration.name)
        program = dataclasses.replace(program, calibration=calibration.name)
        for r in reports:
            log.info(
                "error-corrected %s for %r: matrix error on the chip %.3g -> %.3g",
                r.stage,
                calibration.name,
                r.error_uncorrected,
                r.error_corrected,
            )
    if str(output) == "-":
        write_stdout(prog.to_json(program))
    else:
        prog.save(program, output, inputs=[weights, calibration_file])
        log.info("wrote %s", output)
    log.info("%s", format_summary(program))


@main.command("inspect")
@program_argument
@domain_errors
def inspect_command(program_file: Path) -> None:
    """Print a per-layer summary of a phase program."""
    from optinc_compiler import program as prog
    from optinc_compiler.report import format_summary

    program = prog.load(program_file)
    click.echo(f"{program_file}: phase program v{prog.VERSION}, written by {program.generator}")
    click.echo(format_summary(program))


@main.command("check")
@program_argument
@click.option(
    "--against",
    "weights",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Weights file the program was compiled from.",
)
@layers_option("Check")
@click.option(
    "--rtol",
    type=click.FloatRange(min=0),
    default=1e-9,
    show_default=True,
    callback=finite,
    help="Allowed relative error of exact layers (beyond the recorded one for approximations).",
)
@click.option(
    "--max-rel-error",
    type=click.FloatRange(min=0),
    default=None,
    callback=finite,
    help="One bound on the relative error for every layer, approximations included.",
)
@domain_errors
def check_command(
    program_file: Path, weights: Path, layers: tuple[str, ...], rtol: float, max_rel_error: float | None
) -> None:
    """Compare PROGRAM's layers with the weights; exit 3 if off.

    Each layer is rebuilt from the phase program alone and compared with the matrix of
    the same name in the weights file (relative Frobenius error).
    """
    from optinc_compiler import program as prog
    from optinc_compiler.check import check_program, unchecked_layers
    from optinc_compiler.errors import VerificationError
    from optinc_compiler.io import load_weights
    from optinc_compiler.report import format_checks

    program = prog.load(program_file)
    if program.calibration is not None:
        log.warning(
            "note: the phases are error-corrected for calibration %r; this check rebuilds them on an "
            "ideal chip (simulate the calibrated chip with: optinc verify --calibration FILE)",
            program.calibration,
        )
    loaded = load_weights(weights, layers=layers)
    checks = check_program(program, loaded.layers, rtol=rtol, max_relative_error=max_rel_error)
    click.echo(format_checks(checks))
    unchecked = unchecked_layers(program, loaded.layers)
    if unchecked and not layers:  # the weights file has fewer layers than the program
        log.warning(
            "note: %d layer(s) of the program are not in %s and were not checked: %s",
            len(unchecked),
            quote(weights),
            brief(", ".join(unchecked)),
        )
    failed = [c.name for c in checks if not c.ok]
    if failed:
        raise VerificationError(f"{len(failed)} of {len(checks)} layer(s) off: {', '.join(failed)}")


@main.command("layout")
@program_argument
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="GDS (.gds) or OASIS (.oas) file to write.",
)
@click.option(
    "--png", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also render a PNG."
)
@layers_option("Lay out")
@click.option(
    "--pdk",
    "pdk_name",
    type=click.Choice(PDK_NAMES),
    default=DEFAULT_PDK,
    show_default=True,
    help="PDK to draw with (optinc pdks lists them).",
)
@click.option(
    "--institution",
    default=None,
    help="Foundry chips: the top cell is Cell0_<INSTITUTION> (default OptINC), as the foundry asks.",
)
@click.option("--no-route", is_flag=True, help="Draw the meshes without heater wiring and pads.")
@click.option(
    "--pads",
    type=click.Choice(["auto", "edge", "bumps"]),
    default="auto",
    show_default=True,
    help="Heater pads: rows at the die edge, flip-chip bumps over the heaters, or auto "
    "(edge pads where they fit, bumps where not).",
)
@click.option(
    "--io",
    "io",
    type=click.Choice(["grating", "edge", "none"]),
    default="grating",
    show_default=True,
    help="I/O couplers: grating couplers at the 127 um fibre pitch, edge couplers at the die "
    "edge (one layer at a time), or none.",
)
@strict_option
@domain_errors
def layout_command(
    program_file: Path,
    output: Path,
    png: Path | None,
    layers: tuple[str, ...],
    pdk_name: str,
    institution: str | None,
    no_route: bool,
    pads: str,
    io: str,
    strict: bool,
) -> None:
    """Draw the meshes of PROGRAM as a GDS layout (and a PNG)."""
    from optinc_compiler import program as prog
    from optinc_compiler.errors import InputError

    check_output(output, inputs=[program_file], what="layout")
    if png is not None:
        check_png_output(png, inputs=[program_file, output])
        if png.resolve() == output.resolve():
            raise InputError(f"--png and -o name the same file {str(png)!r}")
    program = prog.load(program_file)
    for name in layers:
        program.layer(name)  # unknown names fail before gdsfactory loads
    from optinc_compiler import pdk_flow

    result = pdk_flow.write_layout(
        program,
        output,
        pdk=pdk_name,
        png_path=png,
        layer_names=layers,
        route=not no_route,
        io=io,
        pads=pads,
        strict=strict,
        institution=institution,
    )
    for warning in result.warnings:
        log.warning("warning: %s", warning)
    log.info("wrote %s (%d cells, %.0f x %.0f um)", result.gds_path, result.n_instances, *result.size_um)
    if result.png_path is not None:
        log.info("wrote %s", result.png_path)


@main.command("drc")
@click.argument("layout_file", metavar="LAYOUT", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="KLayout marker database (.lyrdb) to write.",
)
@click.option(
    "--no-connectivity", is_flag=True, help="Widths and spaces only (layouts drawn with --no-route)."
)
@pdk_check_option
@domain_errors
def drc_command(layout_file: Path, report: Path | None, no_connectivity: bool, pdk_name: str) -> None:
    """Check widths, spaces and heater connectivity of LAYOUT with its PDK's rules (and,
    for a foundry, its submission check); exit 3 on violations."""
    from optinc_compiler import drc, pdk_flow
    from optinc_compiler.errors import VerificationError
    from optinc_compiler.report import format_table

    if report is not None:
        check_output(report, inputs=[layout_file], what="report")
    pdk_name = pdk_flow.resolve(pdk_name, layout_file)
    result = pdk_flow.drc(layout_file, pdk=pdk_name, connectivity=not no_connectivity)
    rows = [
        [r.rule, r.layer, r.limit, str(len(r.violations)), "ok" if not r.violations else "FAIL"]
        for r in result.results
    ]
    click.echo(format_table(["rule", "layer", "limit", "violations", "status"], rows))
    if pdk_name == "optinc":
        click.echo(
            f"nets: {result.n_signal_nets} signal, {result.n_ground_nets} ground; heaters: {result.n_heaters}"
        )
    else:
        click.echo(
            f"PDK {pdk_name}: {result.n_signal_nets + result.n_ground_nets} heater nets on pads "
            f"({result.n_ground_nets} shared returns); heaters: {result.n_heaters}"
        )
    if report is not None:
        from optinc_compiler.gds import read_layout

        drawn, top_cell = read_layout(layout_file)  # the chip's own top cell: markers attach to it
        top = top_cell.name
        del drawn
        write_atomic(report, lambda tmp: drc.write_marker_db(result, tmp, top_cell=top), inputs=[layout_file])
        log.info("wrote %s", report)
    if not result.clean:
        first = result.violations[0]
        raise VerificationError(
            f"{quote(layout_file)}: {len(result.violations)} violation(s); first: {first.rule} on "
            f"{first.layer} at ({first.x_um:.3f}, {first.y_um:.3f}) um: {first.detail}"
        )


@main.command("lvs")
@click.argument("layout_file", metavar="LAYOUT", type=click.Path(dir_okay=False, path_type=Path))
@program_argument
@layers_option("Check")
@pdk_check_option
@domain_errors
def lvs_command(layout_file: Path, program_file: Path, layers: tuple[str, ...], pdk_name: str) -> None:
    """Compare the netlist drawn in LAYOUT with PROGRAM's; exit 3 if they differ."""
    from optinc_compiler import lvs, pdk_flow
    from optinc_compiler import program as prog
    from optinc_compiler.errors import VerificationError
    from optinc_compiler.report import format_table

    program = prog.load(program_file)
    for name in layers:
        program.layer(name)
    if pdk_flow.resolve(pdk_name, layout_file) != "optinc":
        found = pdk_flow.foundry_lvs(layout_file, program, layers)
        first = found.mismatches[0] if found.mismatches else ""
        status = "ok" if found.equal else "FAIL"
        row = [found.layer, str(found.n_cells), str(found.n_heaters), status, first]
        click.echo(format_table(["layer", "cells", "heaters", "status", "first difference"], [row]))
        if not found.equal:
            n = len(found.mismatches)
            raise VerificationError(
                f"layout differs from the program in layer {found.layer}: {n} difference(s)"
            )
        return
    results = lvs.lvs_gds(layout_file, program, layer_names=layers)
    rows = [
        [r.layer, str(r.n_instances), str(r.n_connections), "ok" if r.ok else "FAIL", r.first_difference]
        for r in results
    ]
    click.echo(format_table(["layer", "instances", "connections", "status", "first difference"], rows))
    failed = [r.layer for r in results if not r.ok]
    if failed:
        raise VerificationError(f"layout differs from the schematic in layer(s) {', '.join(failed)}")


PROGRAM_EXAMPLES = """\b
Examples:
  optinc program program.json -o heaters.csv
  optinc program program.json --calibration chip_cal.json --dac-bits 12 -o heaters.csv
  optinc program program.json --rounding aware --gds chip.gds -o lab.json
"""


@main.command("program", epilog=PROGRAM_EXAMPLES)
@program_argument
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="heaters.csv (the heater table) or .json (the phase program with its heaters).",
)
@calibration_option("Chip calibration (.json or .csv); default: the PDK's heater model.")
@click.option(
    "--dac-bits", type=click.IntRange(*DAC_BITS_RANGE), default=12, show_default=True, help="DAC resolution."
)
@click.option(
    "--rounding",
    type=click.Choice(["nearest", "aware"]),
    default="nearest",
    show_default=True,
    help="aware: adjust codes by one step where that lowers the layer's matrix error.",
)
@click.option(
    "--crosstalk/--no-crosstalk",
    default=True,
    show_default=True,
    help="Compensate thermal crosstalk between neighbouring heaters.",
)
@click.option(
    "--gds",
    "gds_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Check that every heater has its pad label in this layout and no pad is unused.",
)
@click.option(
    "--power-budget-mW",
    "power_budget_mW",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    callback=finite,
    help="Warn above this total heater power (default: the PDK's budget).",
)
@pdk_auto_option("PDK whose heater model is the default; auto: the PDK that drew --gds, else optinc.")
@strict_option
@domain_errors
def program_command(
    program_file: Path,
    output: Path,
    calibration_file: Path | None,
    dac_bits: int,
    rounding: str,
    crosstalk: bool,
    gds_file: Path | None,
    power_budget_mW: float | None,
    pdk_name: str,
    strict: bool,
) -> None:
    """Heater settings of PROGRAM for the lab: phase, power, voltage and DAC code per heater."""
    from optinc_compiler import calibration as cal
    from optinc_compiler import program as prog
    from optinc_compiler.errors import VerificationError
    from optinc_compiler.limits import enforce, power_warnings
    from optinc_compiler.report import format_table
    from pdk import tech

    check_output(output, inputs=[program_file, calibration_file, gds_file])
    if output.suffix.lower() not in (".csv", ".json"):
        raise click.BadParameter(f"{output}: allowed suffixes .csv and .json", param_hint="'-o'")
    from optinc_compiler import pdk_flow, pdks

    program = prog.load(program_file)
    if pdk_name == "auto":
        pdk_name = pdk_flow.detect(gds_file) if gds_file is not None else DEFAULT_PDK
    chip = None
    if calibration_file is not None:
        chip = cal.load_calibration(calibration_file, heater=pdks.get(pdk_name).heater)
    calibration = pdk_flow.heater_calibration(pdk_name, program, chip)
    heaters = cal.heater_program(
        program, calibration, dac_bits=dac_bits, rounding=rounding, crosstalk=crosstalk
    )
    if gds_file is not None and pdk_name == "optinc":
        pads = cal.check_pads(heaters, cal.pad_labels(gds_file))
        if not pads.ok:
            raise VerificationError(f"{quote(gds_file)}: {pads.problem()}")
    elif gds_file is not None:  # foundry chips: their heaters traced to the pads
        found = pdk_flow.foundry_lvs(gds_file, program)
        if not found.equal:
            raise VerificationError(f"{quote(gds_file)}: not this program's chip: {found.mismatches[0]}")
    realised = cal.quantised_matrices(heaters, program, calibration)
    click.echo(format_table(*cal.summary(heaters, program, realised)))
    budget = cal.power_budget(heaters)
    click.echo(budget.line())
    limit_mW = power_budget_mW if power_budget_mW is not None else tech.LIMITS.heater_power_budget_mW
    for warning in enforce(power_warnings(budget.total_power_mW, budget_mW=limit_mW), strict=strict):
        log.warning("warning: %s", warning)
    cal.write_heater_program(heaters, program, output)
    log.info("wrote %s (%d heaters, calibration %r)", output, len(heaters.heaters), heaters.calibration)


VERIFY_EXAMPLES = """\b
Examples:
  optinc verify program.json --against model.npz
  optinc verify program.json --sweep 1.50:1.60:101 --report out/
  optinc verify program.json --monte-carlo 500 --coupler-sigma 0.02 --phase-sigma-rad 0.01 --seed 1
  optinc verify chip.gds --program program.json
"""


def _sweep_wavelengths(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[float, ...]:
    """Click callback: ``START:STOP:N`` -> wavelengths (a usage error, exit 2, if bad)."""
    if value is None:
        return ()
    from optinc_compiler.verify import parse_sweep

    try:
        return parse_sweep(value)
    except OptincError as exc:
        raise click.BadParameter(str(exc)) from None


@main.command("verify", epilog=VERIFY_EXAMPLES)
@click.argument("source_file", metavar="PROGRAM|LAYOUT", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--program",
    "program_for_layout",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The phase program of a LAYOUT (.gds/.oas): its phases set the extracted circuit.",
)
@click.option(
    "--against",
    "weights",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Weights to compare with (default: the program's own matrices).",
)
@click.option(
    "--models",
    "model_set",
    type=click.Choice(["ideal", "pdk"]),
    default="pdk",
    show_default=True,
    help="ideal: lossless 50:50 cells; pdk: the PDK's dispersive, lossy models.",
)
@click.option(
    "--wl",
    "wl_um",
    type=click.FloatRange(min=0.5, max=3.0),
    default=1.55,
    show_default=True,
    callback=finite,
    help="Design wavelength in um.",
)
@click.option(
    "--min-fidelity",
    type=click.FloatRange(min=0, max=1),
    default=0.999,
    show_default=True,
    callback=finite,
    help="Exit 3 below this fidelity at the design wavelength.",
)
@click.option(
    "--sweep",
    "sweep_wl_um",
    metavar="START:STOP:N",
    default=None,
    callback=_sweep_wavelengths,
    help="Wavelength sweep in um, N points.",
)
@click.option(
    "--monte-carlo",
    "samples",
    type=click.IntRange(1, MAX_MONTE_CARLO_SAMPLES),
    default=None,
    help="Monte Carlo samples.",
)
@click.option(
    "--coupler-sigma",
    type=click.FloatRange(min=0, max=0.5),
    default=0.0,
    show_default=True,
    callback=finite,
    help="Std of each coupler's power coupling (0.5 nominal).",
)
@click.option(
    "--phase-sigma-rad",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    callback=finite,
    help="Std of each heater's phase.",
)
@click.option(
    "--loss-sigma-dB",
    "loss_sigma_dB",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    callback=finite,
    help="Scale of each cell's extra loss (half-normal).",
)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Monte Carlo seed.")
@click.option(
    "--min-yield",
    type=click.FloatRange(min=0, max=1),
    default=None,
    callback=finite,
    help="Exit 3 when the Monte Carlo yield is below this fraction.",
)
@click.option(
    "--mc-min-fidelity",
    type=click.FloatRange(min=0, max=1),
    default=None,
    callback=finite,
    help="Fidelity a Monte Carlo sample needs to count towards the yield (default: --min-fidelity).",
)
@calibration_option("Simulate the calibrated chip: its measured splitter ratios per MZI.")
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for verify.json, verify.md and the plots.",
)
@layers_option("Verify")
@domain_errors
def verify_command(
    source_file: Path,
    program_for_layout: Path | None,
    weights: Path | None,
    model_set: str,
    wl_um: float,
    min_fidelity: float,
    sweep_wl_um: tuple[float, ...],
    samples: int | None,
    coupler_sigma: float,
    phase_sigma_rad: float,
    loss_sigma_dB: float,
    seed: int,
    min_yield: float | None,
    mc_min_fidelity: float | None,
    calibration_file: Path | None,
    report_dir: Path | None,
    layers: tuple[str, ...],
) -> None:
    """Simulate a program's circuits (or a chip's, extracted from its LAYOUT) with sax
    models and compare them with the targets; exit 3 below a threshold."""
    from optinc_compiler import program as prog
    from optinc_compiler import simulate, verify
    from optinc_compiler.errors import InputError, VerificationError
    from optinc_compiler.netlist import layer_netlist

    is_layout = source_file.suffix.lower() in LAYOUT_SUFFIXES
    if is_layout and program_for_layout is None:
        raise click.UsageError(f"{source_file} is a layout: give its phase program with --program")
    if not is_layout and program_for_layout is not None:
        raise click.UsageError("--program is only for a layout file (.gds or .oas)")
    if report_dir is not None:
        verify.check_report_folder(report_dir)
        inputs = [source_file, program_for_layout, weights, calibration_file]
        check_output_names(report_dir, verify.REPORT_FILES, inputs=inputs, what="report")
    chip = None
    if calibration_file is not None:
        from optinc_compiler.calibration import load_calibration

        chip = load_calibration(calibration_file)
    options = verify.VerifyOptions(
        model_set=model_set,
        wl_um=wl_um,
        min_fidelity=min_fidelity,
        sweep_wl_um=sweep_wl_um,
        monte_carlo_samples=samples or 0,
        variability=simulate.Variability(coupler_sigma, phase_sigma_rad, loss_sigma_dB),
        seed=seed,
        min_yield=min_yield,
        mc_min_fidelity=mc_min_fidelity,
        calibration=chip.name if chip is not None else None,
        splitters=chip.splitter_triples() if chip is not None else (),
    )
    program = prog.load(program_for_layout if program_for_layout is not None else source_file)
    if chip is not None:
        from optinc_compiler.calibration import check_calibration

        check_calibration(chip, program)
    if program.calibration is not None and weights is None:
        raise InputError(
            f"the program is error-corrected for calibration {program.calibration!r}, so its own "
            "matrices are not the targets: give the weights with --against"
        )
    chosen = [program.layer(n) for n in layers] if layers else list(program.layers)
    matrices = _verify_targets(program, chosen, weights)
    if is_layout:
        from optinc_compiler import pdk_flow

        models = pdk_flow.model_set(model_set, pdk_flow.detect(source_file))
        options = dataclasses.replace(options, model_set=models)
        targets = pdk_flow.layout_targets(source_file, program, chosen, matrices, models=models)
    else:
        targets = [verify.Target(layer, layer_netlist(layer), matrices[layer.name]) for layer in chosen]
    result = verify.verify_targets(targets, options, source="layout" if is_layout else "program")
    click.echo(verify.summary_table(result))
    if result.yield_unjudged:
        log.warning("Monte Carlo yield not judged: no --min-yield given")
    if report_dir is not None:
        for path in verify.write_report(result, report_dir):
            log.info("wrote %s", path)
    failure = result.failure()
    if failure is not None:
        raise VerificationError(failure)


@main.command("pdks")
def pdks_command() -> None:
    """List the PDKs: installed or not, die, pads, metals, heater model, cells by role."""
    from optinc_compiler import pdks
    from optinc_compiler.report import format_table

    rows = []
    for info in pdks.all_pdks():
        die = f"{info.die.size_um[0]:,.0f} x {info.die.size_um[1]:,.0f} um" if info.die.size_um else "reticle"
        rows.append(
            [
                info.name,
                "yes" if info.installed else "no",
                die,
                str(info.die.pads) if info.die.pads is not None else "any",
                str(info.die.metals),
                f"{info.heater.p_pi_mW:g} mW, {info.heater.resistance_ohm:g} ohm",
            ]
        )
    click.echo(format_table(["pdk", "installed", "die", "pads", "metals", "heater P_pi, R"], rows))
    for info in pdks.all_pdks():
        click.echo(f"\n{info.name}: {info.title}")
        if not info.installed:
            click.echo(f"  not installed: {info.install}")
        for role, cell in info.roles.items():
            click.echo(f"  {role:<22} {cell}")
        click.echo(f"  heater model           {info.heater.source}")
        for note in info.notes:
            click.echo(f"  note                   {note}")


BUILD_EXAMPLES = """\b
Examples:
  optinc build designs/aggregator_n4_b4/design.yaml --out build/demo   (make demo)
  optinc build designs/mlp_demo/design.yaml --out build/mlp
"""


@main.command("build", epilog=BUILD_EXAMPLES)
@click.argument("design_file", metavar="DESIGN.yaml", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Build folder (created with its parents); earlier build files in it are replaced.",
)
@strict_option
@domain_errors
def build_command(design_file: Path, out_dir: Path, strict: bool) -> None:
    """Run the whole flow of a design file: compile, layout, DRC, LVS, verify, report.

    Stops at the first failing check (exit 3), naming it; the files of the earlier
    stages stay in the build folder.
    """
    from optinc_compiler.build import build
    from optinc_compiler.design import load_design
    from optinc_compiler.report import format_summary

    design = load_design(design_file)
    with _build_progress() as progress:
        result = build(design, out_dir, progress=progress, strict=strict)
    click.echo(format_summary(result.program))
    click.echo(f"phase program: {result.program_path}")
    click.echo(f"layout:        {result.gds_path} ({result.png_path.name}, markers {result.drc_path.name})")
    click.echo(f"verification:  {result.verify_path} ({result.verify_path.with_suffix('.md').name})")
    heaters = result.heaters_path if result.heaters_path is not None else "not available yet"
    click.echo(f"heater table:  {heaters}")
    if result.heater_program is not None:
        from optinc_compiler.calibration import power_budget

        click.echo(power_budget(result.heater_program).line())
    click.echo(f"report:        {result.report_path}")


@contextlib.contextmanager
def _build_progress() -> Iterator[Callable[[Any], None]]:
    """Stage progress on stderr: a rich progress bar on a terminal, else log lines."""
    from optinc_compiler.build import STAGES, log_progress

    if not sys.stderr.isatty() or log.level > logging.INFO:
        yield log_progress
        return
    from rich.console import Console
    from rich.logging import RichHandler
    from rich.markup import escape
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    bar = Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    task = bar.add_task("build", total=len(STAGES))
    marks = {"done": "[green]ok     [/]", "skipped": "[yellow]skipped[/]", "failed": "[red]FAILED [/]"}

    def show(event: Any) -> None:
        if event.status == "start":
            bar.update(task, description=f"{event.stage} ...")
            return
        console.print(
            f"{event.stage:<8} {marks[event.status]} {event.seconds:5.1f} s  "
            + ("" if event.status == "failed" else escape(event.detail)),  # the error follows
            highlight=False,
        )
        bar.advance(task)

    handlers = log.handlers[:]
    log.handlers[:] = [RichHandler(console=console, show_time=False, show_path=False, show_level=False)]
    try:
        with bar:
            yield show
    finally:
        log.handlers[:] = handlers


def _verify_targets(program: Any, chosen: list[Any], weights: Path | None) -> dict[str, Any]:
    """Target matrix per layer: the program's own, or the weights file's."""
    from optinc_compiler.decompose import as_complex_matrix
    from optinc_compiler.errors import InputError
    from optinc_compiler.io import load_weights

    targets = {layer.name: layer.matrix() for layer in chosen}
    if weights is not None:
        for w in load_weights(weights, layers=[layer.name for layer in chosen]).layers:
            targets[w.name] = as_complex_matrix(w.matrix, what=f"layer {w.name!r}")
            if targets[w.name].shape != program.layer(w.name).shape:
                raise InputError(f"layer {w.name!r} has another shape in the weights than in the program")
    return targets


def _register_command_modules() -> None:
    """Commands defined in their own modules (their bodies import jax or torch lazily)."""
    from optinc_compiler.cli_aggregator import aggregator_group
    from optinc_compiler.distributed.cli import (
        comm_model_command,
        ddp_compare_command,
        ddp_experiment_command,
    )

    for command in (aggregator_group, ddp_experiment_command, ddp_compare_command, comm_model_command):
        main.add_command(command)


_register_command_modules()

if __name__ == "__main__":  # pragma: no cover
    main()
