"""``optinc build``: the whole flow for one design file, into one build folder.

Stages, in order (each calls the same library functions as its ``optinc`` command)::

    compile  -> program.json       (each layer rebuilt from it must match its weights)
    layout   -> chip.gds, chip.png
    drc      -> drc.lyrdb          (stops the build on violations)
    lvs                            (stops the build when the drawn netlist differs)
    verify   -> verify.json, verify.md, sweep.png, monte_carlo.png
                                   (the netlist extracted from chip.gds, with the PDK's
                                    models; stops the build below a threshold)
    heaters  -> heaters.csv        (per heater: pad, phase, mW, V, DAC code; pads checked)
    report   -> report.html, chip_detail.png, phases_<layer>.png

A check that fails raises :class:`BuildCheckError` (exit code 3) naming the check; the
files of the earlier stages stay in place. Files a stage not reached would write are
removed at the start, so the folder never mixes two builds. The same design gives the
same bytes in every file (no timestamps, no absolute paths).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from optinc_compiler.design import Design
from optinc_compiler.errors import InputError, OptincError, VerificationError
from optinc_compiler.files import check_output_names, remove_stale_temporaries
from optinc_compiler.io import NamedMatrix
from optinc_compiler.program import PhaseProgram

if TYPE_CHECKING:
    from optinc_compiler.calibration import Calibration, HeaterProgram

log = logging.getLogger("optinc.build")

STAGES = ("compile", "layout", "drc", "lvs", "verify", "heaters", "report")

#: Fixed file names of a build folder (plus ``phases_<layer>.png``, one per layer).
BUILD_FILES = (
    "program.json",
    "chip.gds",
    "chip.png",
    "chip_detail.png",
    "drc.lyrdb",
    "verify.json",
    "verify.md",
    "sweep.png",
    "monte_carlo.png",
    "heaters.csv",
    "report.html",
)
PHASE_MAP_GLOB = "phases_*.png"

T = TypeVar("T")


@dataclass(frozen=True)
class StageEvent:
    """A stage started, finished, was skipped or failed (for progress displays)."""

    stage: str
    status: str  # "start", "done", "skipped" or "failed"
    detail: str = ""
    seconds: float = 0.0


Progress = Callable[[StageEvent], None]


def log_progress(event: StageEvent) -> None:
    """The default progress: one log line per finished, skipped or failed stage (a
    failure's message is the exception's, raised right after)."""
    if event.status != "start":
        detail = "" if event.status == "failed" else event.detail
        log.info("%-8s %-7s %5.1f s  %s", event.stage, event.status, event.seconds, detail)


@dataclass(frozen=True)
class BuildResult:
    """Where a finished build put its files (all inside ``out_dir``)."""

    out_dir: Path
    program: PhaseProgram
    program_path: Path
    gds_path: Path
    png_path: Path
    drc_path: Path
    verify_path: Path
    report_path: Path
    heaters_path: Path | None
    files: tuple[Path, ...]
    stage_seconds: tuple[tuple[str, float], ...]
    heater_program: HeaterProgram | None = None  # what heaters.csv lists
    #: size and power warnings of the build (``optinc_compiler.limits``)
    warnings: tuple[str, ...] = ()


class BuildCheckError(VerificationError):
    """A check stage (DRC, LVS, verification) failed; ``stage`` names it."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(f"{stage.upper() if stage in ('drc', 'lvs') else stage} failed: {message}")
        self.stage = stage


class _Runner:
    """Runs stages in order, timing them and reporting to ``progress``."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.seconds: list[tuple[str, float]] = []

    def __call__(self, stage: str, step: Callable[[], tuple[T, str]]) -> T:
        self.progress(StageEvent(stage, "start"))
        start = time.perf_counter()
        try:
            value, detail = step()
        except OptincError as exc:
            self.progress(StageEvent(stage, "failed", str(exc), time.perf_counter() - start))
            raise
        elapsed = time.perf_counter() - start
        self.seconds.append((stage, elapsed))
        self.progress(StageEvent(stage, "skipped" if value is None else "done", detail, elapsed))
        return value


def build(
    design: Design, out_dir: str | Path, *, progress: Progress = log_progress, strict: bool = False
) -> BuildResult:
    """Run every stage of ``design`` into ``out_dir`` (created with its parents).

    Size and power warnings (``optinc_compiler.limits``) are logged, kept in the result
    and shown in the report; ``strict`` makes them fail their stage (exit 3) before it
    writes its files."""
    from optinc_compiler import pdks
    from optinc_compiler.calibration import load_calibration

    path = design.calibration_path  # read before anything is written: a bad file fails first
    chip = load_calibration(path, heater=pdks.get(design.pdk).heater) if path is not None else None
    with locked_folder(Path(out_dir), inputs=design_inputs(design)) as out:
        return _build(design, chip, out, progress=progress, strict=strict)


def _build(
    design: Design, chip: Calibration | None, out: Path, *, progress: Progress, strict: bool
) -> BuildResult:
    from optinc_compiler import build_report

    run = _Runner(progress)
    weights, program = run("compile", lambda: _compile(design, chip, out))
    gds, png, die_warnings = run("layout", lambda: _layout(design, program, out, strict=strict))
    drc_report = run("drc", lambda: _drc(gds, out, design.pdk))
    lvs_results = run("lvs", lambda: _lvs(gds, program, design.pdk))
    verification = run("verify", lambda: _verify(design, chip, program, weights, gds, out))
    heater_stage = run("heaters", lambda: _heaters(design, chip, program, gds, out, strict=strict))
    heater_prog, heaters, power_warnings = heater_stage if heater_stage is not None else (None, None, ())
    warnings = (*die_warnings, *power_warnings)
    facts = build_report.BuildFacts(
        design=design,
        program=program,
        drc=drc_report,
        lvs=tuple(lvs_results),
        verification=verification,
        heaters_csv=heaters.name if heaters is not None else None,
        heater_program=heater_prog,
        warnings=warnings,
    )
    written = run("report", lambda: _report(facts, out))
    files = [out / name for name in BUILD_FILES if (out / name).is_file()]
    return BuildResult(
        out_dir=out,
        program=program,
        program_path=out / "program.json",
        gds_path=gds,
        png_path=png,
        drc_path=out / "drc.lyrdb",
        verify_path=out / "verify.json",
        report_path=written[0],
        heaters_path=heaters,
        files=tuple(sorted({*files, *written})),
        stage_seconds=tuple(run.seconds),
        heater_program=heater_prog,
        warnings=warnings,
    )


def design_inputs(design: Design) -> tuple[Path, ...]:
    """The files a build reads: none of them may be a file the build writes."""
    optional = (design.program_path, design.calibration_path)
    return (design.source, design.weights_path, *(p for p in optional if p is not None))


#: Held (flock) by the build running in a folder; it names that build's process.
LOCK_FILE = ".optinc-build.lock"


@contextlib.contextmanager
def locked_folder(out: Path, *, inputs: Sequence[Path] = ()) -> Iterator[Path]:
    """The build folder, created with its parents, locked against a second build (an
    InputError naming the holder's pid), with the temporaries of killed builds and the
    files of an earlier build removed. The lock is the kernel's (``flock`` on
    ``LOCK_FILE``, which names the holder and is removed when the build ends), so a build
    killed with ``kill -9`` leaves no lock that holds."""
    if out.exists() and not out.is_dir():
        raise InputError(f"build folder {str(out)!r} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create build folder {str(out)!r}: {exc.strerror}") from None
    handle = _acquire(out / LOCK_FILE, out)
    try:
        yield prepare_folder(out, inputs=inputs)
    finally:
        with contextlib.suppress(OSError):
            (out / LOCK_FILE).unlink()  # while still held: no other build can own this file
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def _acquire(lock: Path, out: Path) -> Any:
    """The open, flocked lock file. A build that opened the file just before its holder
    removed it locks a file no longer in the folder: the inode check sends it round again."""
    for _ in range(100):
        try:
            handle = lock.open("a+", encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot create build folder {str(out)!r}: {exc.strerror}") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise InputError(
                f"build folder {str(out)!r} is in use by another optinc build (pid {holder}); "
                "wait for it to finish or build into another --out"
            ) from None
        try:
            current = os.stat(lock).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(handle.fileno()).st_ino:
            try:
                handle.seek(0)
                handle.truncate()
                handle.write(f"{os.getpid()}\n")
                handle.flush()
            except OSError as exc:
                with contextlib.suppress(OSError):  # close flushes the write that failed
                    handle.close()
                with contextlib.suppress(OSError):
                    lock.unlink()
                raise InputError(f"cannot write the build lock in {str(out)!r}: {exc.strerror}") from None
            return handle
        handle.close()
    raise InputError(f"build folder {str(out)!r}: could not take its lock (another build keeps replacing it)")


def prepare_folder(out: Path, *, inputs: Sequence[Path] = ()) -> Path:
    """Remove the files of an earlier build and the temporaries of killed ones from the
    (locked) build folder; refuse when one of ``inputs`` is a file the build writes."""
    earlier = [*BUILD_FILES, *(p.name for p in sorted(out.glob(PHASE_MAP_GLOB)))]
    check_output_names(out, earlier, inputs=inputs, what="build file")
    for path in remove_stale_temporaries(out):
        log.info("removed %s, left by a build that was killed", path)
    for name in earlier:
        (out / name).unlink(missing_ok=True)
    return out


# --- the stages: each returns (value, one-line detail) -------------------------------


def _compile(
    design: Design, chip: Calibration | None, out: Path
) -> tuple[tuple[Sequence[NamedMatrix], PhaseProgram], str]:
    from optinc_compiler import program as prog
    from optinc_compiler.calibration import check_calibration
    from optinc_compiler.check import check_program
    from optinc_compiler.compiler import CompileOptions, compile_weights
    from optinc_compiler.io import load_weights

    options = CompileOptions(method=design.method, topology=design.mesh, block_size=design.block_size)
    loaded = load_weights(design.weights_path, layers=design.layers)
    if design.program_path is not None:  # trained phases: built as they are
        program = prog.load(design.program_path)
        if design.layers:
            program = dataclasses.replace(program, layers=tuple(program.layer(n) for n in design.layers))
    else:
        program = compile_weights(loaded.layers, options)
    check_calibration(chip, program)  # ids of another chip fail before program.json is written
    prog.save(program, out / "program.json")
    # as `optinc check`: each layer rebuilt from the program alone matches its weights
    off = [c.name for c in check_program(program, loaded.layers) if not c.ok]
    if off:
        raise BuildCheckError("compile", f"the program does not rebuild layer(s) {', '.join(off)}")
    mzis = sum(layer.n_mzis for layer in program.layers)
    return (loaded.layers, program), f"{len(program.layers)} layer(s), {mzis} MZIs -> program.json"


def _layout(
    design: Design, program: PhaseProgram, out: Path, *, strict: bool
) -> tuple[tuple[Path, Path, tuple[str, ...]], str]:
    from optinc_compiler import pdk_flow

    result = pdk_flow.write_layout(
        program,
        out / "chip.gds",
        pdk=design.pdk,
        png_path=out / "chip.png",
        io=design.io,
        strict=strict,
        institution=design.institution,
    )
    assert result.png_path is not None
    _warn(result.warnings)
    size = "{:.0f} x {:.0f} um".format(*result.size_um)
    return (
        (result.gds_path, result.png_path, result.warnings),
        f"{result.n_instances} cells, {size} -> chip.gds, chip.png",
    )


def _warn(warnings: Sequence[str]) -> None:
    for warning in warnings:
        log.warning("warning: %s", warning)


def _drc(gds: Path, out: Path, pdk: str) -> tuple[Any, str]:
    from optinc_compiler import drc, pdk_flow
    from optinc_compiler.files import write_atomic

    report = pdk_flow.drc(gds, pdk=pdk)
    write_atomic(
        out / "drc.lyrdb", lambda tmp: drc.write_marker_db(report, tmp, top_cell=pdk_flow.top_cell(pdk))
    )
    if not report.clean:
        first = report.violations[0]
        raise BuildCheckError(
            "drc",
            f"{len(report.violations)} violation(s), markers in drc.lyrdb; first: {first.rule} on "
            f"{first.layer} at ({first.x_um:.3f}, {first.y_um:.3f}) um: {first.detail}",
        )
    if pdk != "optinc":  # one metal: nets by the heaters they join (cornerstone.drc)
        nets = report.n_signal_nets + report.n_ground_nets
        shared = f"{nets} heater nets on pads ({report.n_ground_nets} shared returns)"
        return report, f"clean, {report.n_heaters} heaters, {shared}, submission check passed -> drc.lyrdb"
    return report, f"clean, {report.n_heaters} heaters, {report.n_signal_nets} signal nets -> drc.lyrdb"


def _lvs(gds: Path, program: PhaseProgram, pdk: str) -> tuple[Any, str]:
    from optinc_compiler import lvs

    if pdk != "optinc":
        from optinc_compiler import pdk_flow

        found = pdk_flow.foundry_lvs(gds, program)
        result = lvs.LvsResult(
            layer=found.layer,
            n_instances=found.n_cells,
            n_connections=found.n_heaters,
            wiring_mismatches=found.mismatches,
        )
        if not result.ok:
            raise BuildCheckError(
                "lvs", f"layout differs from the program in layer {found.layer}: {result.first_difference}"
            )
        return [
            result
        ], f"layer {found.layer}: {found.n_cells} cells and {found.n_heaters} heaters' pads match"
    _forget_chip()
    results = lvs.lvs_gds(gds, program)
    bad = [r for r in results if not r.ok]
    if bad:
        raise BuildCheckError(
            "lvs",
            f"layout differs from the schematic in layer(s) {', '.join(r.layer for r in bad)}; "
            f"first: {bad[0].first_difference}",
        )
    return results, f"{len(results)} layer(s) match the schematic"


def _verify(
    design: Design,
    chip: Calibration | None,
    program: PhaseProgram,
    weights: Sequence[NamedMatrix],
    gds: Path,
    out: Path,
) -> tuple[Any, str]:
    from optinc_compiler import pdk_flow, simulate, verify
    from optinc_compiler.decompose import as_complex_matrix

    spec = design.verify
    models = pdk_flow.model_set(spec.models, design.pdk)
    options = verify.VerifyOptions(
        model_set=models,
        wl_um=spec.wl_um,
        min_fidelity=spec.min_fidelity,
        sweep_wl_um=design.sweep.wavelengths_um(),
        monte_carlo_samples=spec.monte_carlo_samples,
        variability=simulate.Variability(spec.coupler_sigma, spec.phase_sigma_rad, spec.loss_sigma_dB),
        seed=spec.seed,
        min_yield=spec.min_yield,
        mc_min_fidelity=spec.mc_min_fidelity,
        calibration=chip.name if chip is not None else None,
        splitters=chip.splitter_triples() if chip is not None else (),
    )
    matrices = {w.name: as_complex_matrix(w.matrix, what=f"layer {w.name!r}") for w in weights}
    _forget_chip()
    targets = pdk_flow.layout_targets(gds, program, program.layers, matrices, models=models)
    result = verify.verify_targets(targets, options, source="layout")
    verify.write_report(result, out)
    failure = result.failure()
    if failure is not None:
        raise BuildCheckError("verify", f"{failure} (see verify.md)")
    worst = min(r.nominal.fidelity for r in result.layers)
    unjudged = "; Monte Carlo yield not judged (no verify.min_yield)" if result.yield_unjudged else ""
    return result, f"lowest fidelity {worst:.6f} at {spec.wl_um} um{unjudged} -> verify.json, verify.md"


def _forget_chip() -> None:
    """Drop the chip cells built or imported earlier in this process, so the next import
    of chip.gds does not clash with their name (gdsfactory logs each clash as an error)."""
    import gdsfactory as gf

    from optinc_compiler.layout import CHIP_CELL

    while gf.kcl.layout.has_cell(CHIP_CELL):
        gf.kcl[CHIP_CELL].delete()


def _heaters(
    design: Design, chip: Calibration | None, program: PhaseProgram, gds: Path, out: Path, *, strict: bool
) -> tuple[tuple[HeaterProgram, Path, tuple[str, ...]] | None, str]:
    """heaters.csv: phase, power, voltage and DAC code per heater (``optinc program``),
    after checking that every heater has its pad label in chip.gds and no pad is unused;
    the heater program too (the report's power budget is its)."""
    from optinc_compiler import calibration as cal
    from optinc_compiler import pdk_flow
    from optinc_compiler.files import write_text_atomic
    from optinc_compiler.limits import enforce, power_warnings
    from pdk import tech

    heaters = cal.heater_program(
        program, pdk_flow.heater_calibration(design.pdk, program, chip), dac_bits=design.dac_bits
    )
    if design.pdk == "optinc":  # foundry chips carry no text labels: LVS traced their pads
        pads = cal.check_pads(heaters, cal.pad_labels(gds))
        if not pads.ok:
            raise BuildCheckError("heaters", pads.problem())
    power_mW = cal.power_budget(heaters).total_power_mW
    budget = design.heater_power_budget_mW or tech.LIMITS.heater_power_budget_mW
    warnings = enforce(power_warnings(power_mW, budget_mW=budget), strict=strict)
    path = write_text_atomic(out / "heaters.csv", heaters.to_csv())
    _warn(warnings)
    return (
        (heaters, path, warnings),
        f"{len(heaters.heaters)} heaters, {power_mW:,.1f} mW, {design.dac_bits}-bit codes -> heaters.csv",
    )


def _report(facts: Any, out: Path) -> tuple[tuple[Path, ...], str]:
    from optinc_compiler import build_report

    written = build_report.write_report(facts, out)
    maps = sum(1 for p in written if p.name.startswith("phases_"))
    return written, f"{maps} phase map(s) -> report.html"


def phase_map_name(layer_id: str) -> str:
    """File name of a layer's phase-map figure in the build folder (by ``Layer.id``)."""
    return f"phases_{layer_id}.png"
