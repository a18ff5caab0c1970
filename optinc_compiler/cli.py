"""The ``optinc`` command line.

Exit codes: 0 ok, 1 error (bad input, missing file or library), 2 usage error,
3 verification below threshold. Results go to files or stdout, messages to stderr.
Command bodies import their stage lazily so ``optinc --help`` starts fast.
"""

from __future__ import annotations

import functools
import logging
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from optinc_compiler import __version__
from optinc_compiler.errors import OptincError

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("optinc")

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_VERIFICATION = 0, 1, 2, 3


class OptincClickError(click.ClickException):
    """A domain error shown as one line, with the error's own exit code."""

    def __init__(self, error: OptincError) -> None:
        super().__init__(str(error))
        self.exit_code = error.exit_code  # type: ignore[misc]  # click declares a ClassVar


def domain_errors(func: F) -> F:
    """Turn :class:`OptincError` into a one-line message and its exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except OptincError as exc:
            raise OptincClickError(exc) from None

    return wrapper  # type: ignore[return-value]


def finite(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """Click callback: reject nan and inf (a usage error, exit 2)."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number")
    return value


def _configure_logging(verbose: int, quiet: int) -> None:
    """INFO by default; each -v one level more verbose, each -q one level quieter."""
    level = logging.INFO - 10 * (verbose - quiet)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(max(logging.DEBUG, min(logging.CRITICAL, level)))
    log.propagate = False


EXAMPLES = """\b
Examples:
  optinc compile model.npz -o program.json
  optinc compile U.npy --method unitary --mesh reck -o unitary.json
  optinc inspect program.json
  optinc check program.json --against model.npz
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
) -> None:
    """Compile the weight matrices in WEIGHTS into a phase program.

    WEIGHTS is .npy, .npz (one layer per array), .csv, .safetensors or a PyTorch .pt
    state dict; matrices are (out, in) as in PyTorch.
    """
    from optinc_compiler import program as prog
    from optinc_compiler.compiler import CompileOptions, compile_weights
    from optinc_compiler.io import load_weights
    from optinc_compiler.report import format_summary

    options = CompileOptions(
        method=method, topology=topology, unitary_atol=unitary_tol, block_size=block_size, max_iter=max_iter
    )
    loaded = load_weights(weights, layers=layers)
    for key in loaded.skipped:
        log.info("skipped %s (bias vector)", key)
    program = compile_weights(loaded.layers, options)
    if str(output) == "-":
        click.echo(prog.to_json(program), nl=False)
    else:
        prog.save(program, output)
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
    from optinc_compiler.check import check_program
    from optinc_compiler.errors import VerificationError
    from optinc_compiler.io import load_weights
    from optinc_compiler.report import format_checks

    program = prog.load(program_file)
    loaded = load_weights(weights, layers=layers)
    checks = check_program(program, loaded.layers, rtol=rtol, max_relative_error=max_rel_error)
    click.echo(format_checks(checks))
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
@click.option("--pdk", "pdk_name", default="optinc", show_default=True, help="PDK to draw with.")
@click.option("--no-route", is_flag=True, help="Draw the meshes without heater wiring and pads.")
@domain_errors
def layout_command(
    program_file: Path, output: Path, png: Path | None, layers: tuple[str, ...], pdk_name: str, no_route: bool
) -> None:
    """Draw the meshes of PROGRAM as a GDS layout (and a PNG)."""
    from optinc_compiler import program as prog

    program = prog.load(program_file)
    for name in layers:
        program.layer(name)  # unknown names fail before gdsfactory loads
    from optinc_compiler import layout

    layout.activate_pdk(pdk_name)
    result = layout.write_layout(program, output, png_path=png, layer_names=layers, route=not no_route)
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
@domain_errors
def drc_command(layout_file: Path, report: Path | None, no_connectivity: bool) -> None:
    """Check widths, spaces and heater connectivity of LAYOUT; exit 3 on violations."""
    from optinc_compiler import drc
    from optinc_compiler.errors import VerificationError
    from optinc_compiler.report import format_table

    result = drc.check_gds(layout_file, connectivity=not no_connectivity)
    rows = [
        [r.rule, r.layer, r.limit, str(len(r.violations)), "ok" if not r.violations else "FAIL"]
        for r in result.results
    ]
    click.echo(format_table(["rule", "layer", "limit", "violations", "status"], rows))
    click.echo(
        f"nets: {result.n_signal_nets} signal, {result.n_ground_nets} ground; heaters: {result.n_heaters}"
    )
    if report is not None:
        drc.write_marker_db(result, report)
        log.info("wrote %s", report)
    if not result.clean:
        first = result.violations[0]
        raise VerificationError(
            f"{len(result.violations)} violation(s); first: {first.rule} on {first.layer} at "
            f"({first.x_um:.3f}, {first.y_um:.3f}) um: {first.detail}"
        )


@main.command("lvs")
@click.argument("layout_file", metavar="LAYOUT", type=click.Path(dir_okay=False, path_type=Path))
@program_argument
@layers_option("Check")
@domain_errors
def lvs_command(layout_file: Path, program_file: Path, layers: tuple[str, ...]) -> None:
    """Compare the netlist drawn in LAYOUT with PROGRAM's; exit 3 if they differ."""
    from optinc_compiler import lvs
    from optinc_compiler import program as prog
    from optinc_compiler.errors import VerificationError
    from optinc_compiler.report import format_table

    program = prog.load(program_file)
    for name in layers:
        program.layer(name)
    results = lvs.lvs_gds(layout_file, program, layer_names=layers)
    rows = [
        [r.layer, str(r.n_instances), str(r.n_connections), "ok" if r.ok else "FAIL", r.first_difference]
        for r in results
    ]
    click.echo(format_table(["layer", "instances", "connections", "status", "first difference"], rows))
    failed = [r.layer for r in results if not r.ok]
    if failed:
        raise VerificationError(f"layout differs from the schematic in layer(s) {', '.join(failed)}")


@main.command("verify")
@program_argument
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
    help="Wavelength in um.",
)
@click.option(
    "--min-fidelity",
    type=click.FloatRange(min=0, max=1),
    default=0.999,
    show_default=True,
    callback=finite,
    help="Exit 3 below this fidelity.",
)
@layers_option("Verify")
@domain_errors
def verify_command(
    program_file: Path,
    weights: Path | None,
    model_set: str,
    wl_um: float,
    min_fidelity: float,
    layers: tuple[str, ...],
) -> None:
    """Simulate PROGRAM's circuits with sax models and compare with the targets."""
    from optinc_compiler import program as prog
    from optinc_compiler import simulate
    from optinc_compiler.decompose import as_complex_matrix
    from optinc_compiler.errors import InputError, VerificationError
    from optinc_compiler.io import load_weights
    from optinc_compiler.report import format_table

    program = prog.load(program_file)
    chosen = [program.layer(n) for n in layers] if layers else list(program.layers)
    targets = {layer.name: layer.matrix() for layer in chosen}
    if weights is not None:
        for w in load_weights(weights, layers=[layer.name for layer in chosen]).layers:
            targets[w.name] = as_complex_matrix(w.matrix, what=f"layer {w.name!r}")
            if targets[w.name].shape != program.layer(w.name).shape:
                raise InputError(f"layer {w.name!r} has another shape in the weights than in the program")
    rows, failed = [], []
    for layer in chosen:
        s = simulate.layer_smatrix(layer, wl_um=wl_um, model_set=model_set)[0]
        f = simulate.fidelity(s, targets[layer.name], scale=layer.scale)
        ok = f.fidelity >= min_fidelity
        failed += [] if ok else [layer.name]
        rows.append(
            [
                layer.name,
                model_set,
                f"{wl_um:.4f}",
                f"{f.fidelity:.6f}",
                f"{f.max_abs_error:.3g}",
                f"{f.insertion_loss_dB:.3f}",
                "ok" if ok else "FAIL",
            ]
        )
    click.echo(
        format_table(["layer", "models", "wl_um", "fidelity", "max_abs_error", "loss_dB", "status"], rows)
    )
    if failed:
        raise VerificationError(f"fidelity below {min_fidelity} in layer(s) {', '.join(failed)}")


from optinc_compiler.cli_aggregator import aggregator_group  # noqa: E402  (needs domain_errors above)

main.add_command(aggregator_group)

if __name__ == "__main__":  # pragma: no cover
    main()
