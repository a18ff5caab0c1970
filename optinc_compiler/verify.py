"""Verification stage: every layer of a program, or of a chip drawn from it, simulated
with the PDK's sax models (``optinc_compiler.simulate``) against its target matrix, at
the design wavelength, over a wavelength sweep and under fabrication Monte Carlo; a
machine-readable report (``verify.json``) and a human one (``verify.md`` with plots).

The fidelity is ``|tr(S^H W)|^2 / (tr(S^H S) tr(W^H W))`` after removing the layer's
known scale. A layer passes when

* its simulated circuit is passive: no input delivers more than ``1 + PASSIVE_ATOL`` of
  its power to the outputs, at ``wl_um`` or anywhere in the sweep (a gain means a wrong
  netlist or model, whatever the fidelity);
* verified from a layout, every programmed instance is in the drawing (one that is not
  would simulate at its cell's default settings);
* its fidelity at ``wl_um`` reaches ``min_fidelity``;
* and its Monte Carlo yield reaches ``min_yield`` when one is set. Without a threshold
  the yield is reported as not judged, never as passing.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from optinc_compiler import __version__
from optinc_compiler.errors import InputError
from optinc_compiler.files import write_atomic, write_text_atomic
from optinc_compiler.limits import SWEEP_POINTS_RANGE, report_progress
from optinc_compiler.netlist import Netlist
from optinc_compiler.program import Layer, PhaseProgram
from optinc_compiler.report import format_table
from optinc_compiler.simulate import (
    Fidelity,
    MonteCarlo,
    Sweep,
    Variability,
    fidelity,
    monte_carlo,
    netlist_smatrix,
    sample_smatrices,
    splitter_errors,
    sweep,
)

log = logging.getLogger("optinc.verify")

#: Files ``write_report`` writes into the report folder.
REPORT_FILES = ("verify.json", "verify.md", "sweep.png", "monte_carlo.png")
#: How far above 1 an input's delivered power may be before it is a gain: float
#: round-off of lossless models stays near 1e-15.
PASSIVE_ATOL = 1e-9
#: Status words of the summary table.
STATUS_OK, STATUS_UNJUDGED, STATUS_FAIL = "ok", "ok, yield not judged", "FAIL"


@dataclass(frozen=True)
class VerifyOptions:
    """What to simulate and the pass thresholds."""

    model_set: str = "pdk"
    wl_um: float = 1.55
    min_fidelity: float = 0.999
    sweep_wl_um: tuple[float, ...] = ()
    monte_carlo_samples: int = 0
    variability: Variability = field(default_factory=Variability)
    seed: int = 0
    min_yield: float | None = None
    #: the fidelity a Monte Carlo sample needs to count towards the yield (None: min_fidelity)
    mc_min_fidelity: float | None = None
    #: a chip calibration: its name and measured splitters ``(mzi id, kappa2_1, kappa2_2)``
    calibration: str | None = None
    splitters: tuple[tuple[str, float, float], ...] = ()

    @property
    def yield_fidelity(self) -> float:
        """The fidelity a Monte Carlo sample needs to count towards the yield."""
        return self.min_fidelity if self.mc_min_fidelity is None else self.mc_min_fidelity


@dataclass(frozen=True)
class Target:
    """A layer to verify: its circuit (schematic or extracted) and its target matrix;
    ``missing``: programmed instances (with settings) that an extracted circuit lacks."""

    layer: Layer
    netlist: Netlist
    matrix: npt.NDArray[np.complex128]
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class LayerVerification:
    """Results of one layer."""

    layer: str
    shape: tuple[int, int]
    nominal: Fidelity
    sweep: Sweep | None
    monte_carlo: MonteCarlo | None
    ok: bool
    #: programmed instances not found in the drawing (layout verification)
    missing_instances: tuple[str, ...] = ()

    @property
    def max_column_power(self) -> float:
        """The largest power an input delivers to the outputs, at ``wl_um`` or in the sweep."""
        return max(self.nominal.max_column_power, self.sweep.max_column_power if self.sweep else 0.0)

    @property
    def passive(self) -> bool:
        """No gain anywhere (``PASSIVE_ATOL``)."""
        return self.max_column_power <= 1 + PASSIVE_ATOL


@dataclass(frozen=True)
class Verification:
    """Results of every verified layer, with the options that produced them."""

    source: str  # "program" or "layout"
    options: VerifyOptions
    layers: tuple[LayerVerification, ...]

    @property
    def failed(self) -> tuple[str, ...]:
        """Names of the layers below a threshold."""
        return tuple(r.layer for r in self.layers if not r.ok)

    def failure(self) -> str | None:
        """What failed, in one line (None when every layer passes)."""
        o = self.options
        broken = [r.layer for r in self.layers if not math.isfinite(r.max_column_power)]
        parts = (
            [f"the simulated S-matrix holds NaN or inf in layer(s) {', '.join(broken)} (a model's numbers)"]
            if broken
            else []
        )
        parts += [
            f"layer {r.layer}: simulated gain (an input delivers {r.max_column_power:.6g} of its power "
            f"to the outputs, more than 1 + {PASSIVE_ATOL:g}); a passive chip cannot, so its netlist "
            "or models are wrong"
            for r in self.layers
            if not r.passive and r.layer not in broken
        ]
        parts += [
            f"layer {r.layer}: {len(r.missing_instances)} programmed instance(s) are not in the drawing "
            f"(first: {r.missing_instances[0]}) and simulate at their cells' defaults; "
            "optinc lvs lists the differences"
            for r in self.layers
            if r.missing_instances
        ]
        low = [r.layer for r in self.layers if r.nominal.fidelity < o.min_fidelity and r.layer not in broken]
        parts += [f"fidelity below {o.min_fidelity} in layer(s) {', '.join(low)}"] if low else []
        poor = [r.layer for r in self.layers if yield_verdict(r, o) is False]
        parts += [f"Monte Carlo yield below {o.min_yield} in layer(s) {', '.join(poor)}"] if poor else []
        if self.failed and not parts:  # every failing layer has a reason above; never a silent fail
            parts = [f"layer(s) {', '.join(self.failed)} failed"]
        return "; ".join(parts) or None

    @property
    def yield_unjudged(self) -> bool:
        """A Monte Carlo ran but no ``min_yield`` was set to judge it by."""
        return bool(self.options.monte_carlo_samples) and self.options.min_yield is None

    def to_json(self) -> str:
        """Stable JSON: sorted keys, no timestamps, no paths."""
        doc = {"generator": f"optinc-compiler {__version__}", **asdict(self)}
        doc["options"]["splitters"] = len(self.options.splitters)  # the count; the file has them
        for layer, result in zip(doc["layers"], self.layers, strict=True):
            if result.monte_carlo is not None:
                layer["monte_carlo"]["yield_fraction"] = result.monte_carlo.yield_fraction
        return json.dumps(doc, indent=1, sort_keys=True) + "\n"


def parse_sweep(text: str) -> tuple[float, ...]:
    """``START:STOP:N`` in um (N >= 2 points, 0.5 <= START < STOP <= 3.0) -> wavelengths."""
    parts = text.split(":")
    try:
        start, stop, n = float(parts[0]), float(parts[1]), int(parts[2])
        if len(parts) != 3:
            raise ValueError
    except (ValueError, IndexError):
        raise InputError(f"sweep {text!r} is not START:STOP:N (e.g. 1.50:1.60:101)") from None
    if not (math.isfinite(start) and math.isfinite(stop) and 0.5 <= start < stop <= 3.0):
        raise InputError(f"sweep {text!r}: allowed 0.5 <= START < STOP <= 3.0 um")
    low, high = SWEEP_POINTS_RANGE
    if not low <= n <= high:
        raise InputError(f"sweep {text!r}: N is {n}; allowed {low} to {high} points")
    return tuple(float(w) for w in np.linspace(start, stop, n))


def yield_verdict(result: LayerVerification, options: VerifyOptions) -> bool | None:
    """Whether a layer's Monte Carlo yield reaches ``min_yield``; None when there is no
    Monte Carlo or no threshold (not judged)."""
    if result.monte_carlo is None or options.min_yield is None:
        return None
    return result.monte_carlo.yield_fraction >= options.min_yield


def verify_targets(targets: Sequence[Target], options: VerifyOptions, *, source: str) -> Verification:
    """Nominal fidelity of each layer, plus the sweep and Monte Carlo when asked."""
    results = []
    splitters = {mzi: (k1, k2) for mzi, k1, k2 in options.splitters}
    for k, t in enumerate(targets):
        report_progress("verify", t.layer.name, t.layer.n_mzis, k, len(targets))
        n_out, n_in = t.matrix.shape
        chip = splitter_errors(t.netlist, splitters) if splitters else None
        kw = {"n_in": n_in, "n_out": n_out, "wl_um": options.wl_um, "model_set": options.model_set}
        s = (
            netlist_smatrix(t.netlist, **kw)[0]
            if chip is None
            else sample_smatrices(t.netlist, chip, **kw)[0, 0]
        )
        nominal = fidelity(s, t.matrix, scale=t.layer.scale)
        sw = (
            sweep(
                t.netlist,
                t.matrix,
                scale=t.layer.scale,
                wl_um=options.sweep_wl_um,
                model_set=options.model_set,
                chip_errors=chip,
            )
            if options.sweep_wl_um
            else None
        )
        mc = (
            monte_carlo(
                t.netlist,
                t.matrix,
                scale=t.layer.scale,
                n_samples=options.monte_carlo_samples,
                variability=options.variability,
                seed=options.seed,
                wl_um=options.wl_um,
                model_set=options.model_set,
                min_fidelity=options.yield_fidelity,
                chip_errors=chip,
            )
            if options.monte_carlo_samples
            else None
        )
        result = LayerVerification(t.layer.name, (n_out, n_in), nominal, sw, mc, False, t.missing)
        ok = (
            result.passive
            and not t.missing
            and nominal.fidelity >= options.min_fidelity
            and yield_verdict(result, options) is not False
        )
        results.append(dataclasses.replace(result, ok=ok))
    return Verification(source=source, options=options, layers=tuple(results))


def layout_targets(
    gds_path: Path, program: PhaseProgram, layers: Sequence[Layer], matrices: Mapping[str, Any]
) -> list[Target]:
    """The chosen layers' circuits as drawn in ``gds_path`` (the grid between its own
    ports: the I/O fans' per-port phases belong to the I/O calibration), with the
    program's settings by instance name, against ``matrices`` (by layer name)."""
    from optinc_compiler.lvs import extract_layers
    from optinc_compiler.netlist import extracted_netlist, strip_io

    _, extracted = extract_layers(gds_path, program, layer_names=[layer.name for layer in layers])
    targets = []
    for x in extracted:
        drawn = set(x.extracted.get("instances", {}))
        missing = tuple(sorted(i.name for i in x.schematic.instances if i.settings and i.name not in drawn))
        netlist = strip_io(extracted_netlist(x.extracted, x.schematic))
        if x.schematic.io is not None:
            log.info(
                "layer %s: %s couplers and fans left out; the grid is simulated between its own ports",
                x.layer.name,
                x.schematic.io.kind,
            )
        targets.append(Target(x.layer, netlist, np.asarray(matrices[x.layer.name]), missing))
    return targets


# --- what the user reads ----------------------------------------------------------------


def summary_table(v: Verification) -> str:
    """One row per layer: nominal fidelity, and the sweep and Monte Carlo in brief."""
    headers = ["layer", "models", "wl_um", "fidelity", "max_abs_error", "loss_dB"]
    headers += ["band_min_fidelity"] if v.options.sweep_wl_um else []
    headers += ["mc_median_fidelity", "mc_yield", "min_yield"] if v.options.monte_carlo_samples else []
    min_yield = "not set" if v.options.min_yield is None else f"{100 * v.options.min_yield:.1f}%"
    rows = []
    for r in v.layers:
        row = [
            r.layer,
            v.options.model_set,
            f"{v.options.wl_um:.4f}",
            f"{r.nominal.fidelity:.6f}",
            f"{r.nominal.max_abs_error:.3g}",
            f"{r.nominal.insertion_loss_dB:.3f}",
        ]
        if r.sweep is not None:
            row.append(f"{min(r.sweep.fidelity):.6f}")
        if r.monte_carlo is not None:
            row += [
                f"{np.median(r.monte_carlo.fidelity):.6f}",
                f"{100 * r.monte_carlo.yield_fraction:.1f}%",
                min_yield,
            ]
        rows.append([*row, layer_status(r, v.options)])
    return format_table([*headers, "status"], rows)


def layer_status(result: LayerVerification, options: VerifyOptions) -> str:
    """``FAIL``; ``ok``; or ``ok, yield not judged`` when a Monte Carlo ran without a
    ``min_yield`` (its yield is a number, not a pass)."""
    if not result.ok:
        return STATUS_FAIL
    return STATUS_UNJUDGED if result.monte_carlo is not None and options.min_yield is None else STATUS_OK


def result_line(v: Verification) -> str:
    """One sentence: which layers fail, or that all pass (and whether the yield was judged)."""
    if v.failed:
        return f"FAIL in {', '.join(v.failed)}."
    if v.yield_unjudged:
        return (
            "all layers pass the fidelity threshold; the Monte Carlo yield was not judged (no min_yield set)."
        )
    return "all layers pass."


def markdown(v: Verification, *, plots: Sequence[str] = ()) -> str:
    """The human report: settings, the summary table, per-layer details, the plots."""
    o = v.options
    lines = [
        f"# Verification report ({v.source})",
        "",
        f"optinc-compiler {__version__}; {o.model_set} models"
        + (f" on the chip of calibration {o.calibration!r}" if o.calibration else "")
        + f"; design wavelength {o.wl_um} um; "
        f"pass: fidelity >= {o.min_fidelity}"
        + (
            f" and Monte Carlo yield >= {o.min_yield} (samples at fidelity >= {o.yield_fidelity})"
            if o.min_yield is not None
            else ""
        )
        + ".",
        "",
        "```",
        summary_table(v),
        "```",
        "",
        f"Result: {result_line(v)}",
    ]
    for r in v.layers:
        lines += ["", f"## Layer {r.layer} ({r.shape[0]}x{r.shape[1]})", ""]
        paths = ", ".join(f"{x:.3f}" for x in r.nominal.path_loss_dB)
        lines.append(f"- insertion loss {r.nominal.insertion_loss_dB:.3f} dB; per input (dB): {paths}")
        if r.sweep is not None:
            k = int(np.argmin(r.sweep.fidelity))
            lines.append(
                f"- sweep {r.sweep.wl_um[0]:.4f}-{r.sweep.wl_um[-1]:.4f} um ({len(r.sweep.wl_um)} points): "
                f"lowest fidelity {r.sweep.fidelity[k]:.6f} at {r.sweep.wl_um[k]:.4f} um, "
                f"loss {min(r.sweep.insertion_loss_dB):.3f}-{max(r.sweep.insertion_loss_dB):.3f} dB"
            )
        if r.monte_carlo is not None:
            mc, f = r.monte_carlo, np.asarray(r.monte_carlo.fidelity)
            var = mc.variability
            lines.append(
                f"- Monte Carlo, {f.size} samples, seed {mc.seed}, coupler sigma {var.coupler_sigma}, "
                f"phase sigma {var.phase_sigma_rad} rad, loss sigma {var.loss_sigma_dB} dB: "
                f"fidelity median {np.median(f):.6f}, 5th percentile {np.percentile(f, 5):.6f}, "
                f"min {f.min():.6f}; yield {100 * mc.yield_fraction:.1f}% at {mc.min_fidelity}"
            )
    for name in plots:
        lines += ["", f"![{name}]({name})"]
    return "\n".join(lines) + "\n"


def check_report_folder(folder: Path) -> None:
    """InputError unless ``folder`` is a folder or can be created in an existing one."""
    if folder.exists() and not folder.is_dir():
        raise InputError(f"report folder {str(folder)!r} is a file, not a folder")
    if not folder.exists() and not folder.parent.is_dir():
        raise InputError(f"report folder {str(folder)!r}: its parent folder does not exist")


def write_report(v: Verification, folder: Path) -> tuple[Path, ...]:
    """``verify.json``, ``verify.md`` and the plots into ``folder`` (created if its
    parent exists); every file written atomically."""
    check_report_folder(folder)
    folder.mkdir(exist_ok=True)
    written = [write_text_atomic(folder / "verify.json", v.to_json())]
    plots = []
    if v.options.sweep_wl_um:
        written.append(write_atomic(folder / "sweep.png", lambda tmp: plot_sweep(v, tmp)))
        plots.append("sweep.png")
    if v.options.monte_carlo_samples:
        written.append(write_atomic(folder / "monte_carlo.png", lambda tmp: plot_monte_carlo(v, tmp)))
        plots.append("monte_carlo.png")
    written.append(write_text_atomic(folder / "verify.md", markdown(v, plots=plots)))
    return tuple(written)


def _figure(n_axes: int) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, n_axes, figsize=(5.5 * n_axes, 4), dpi=100, squeeze=False)
    return fig, axes[0]


def _save(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)


def plot_sweep(v: Verification, path: Path) -> None:
    """Infidelity (log) and insertion loss against wavelength, one line per layer."""
    fig, (ax_f, ax_l) = _figure(2)
    for r in v.layers:
        if r.sweep is None:
            continue
        wl = np.asarray(r.sweep.wl_um)
        ax_f.semilogy(wl, np.maximum(1 - np.asarray(r.sweep.fidelity), 1e-16), label=r.layer)
        ax_l.plot(wl, r.sweep.insertion_loss_dB, label=r.layer)
    ax_f.axhline(
        1 - v.options.min_fidelity, color="k", ls="--", lw=0.8, label=f"1 - {v.options.min_fidelity}"
    )
    ax_f.set(
        xlabel="wavelength (um)",
        ylabel="1 - fidelity",
        title=f"Fidelity vs wavelength ({v.options.model_set})",
    )
    ax_l.set(xlabel="wavelength (um)", ylabel="insertion loss (dB)", title="Insertion loss vs wavelength")
    for ax in (ax_f, ax_l):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    _save(fig, path)


def plot_monte_carlo(v: Verification, path: Path) -> None:
    """Histogram of 1 - fidelity (log bins) per layer with the threshold and the yield."""
    fig, (ax,) = _figure(1)
    threshold = 1 - v.options.yield_fidelity
    all_inf = [
        np.maximum(1 - np.asarray(r.monte_carlo.fidelity), 1e-16)
        for r in v.layers
        if r.monte_carlo is not None
    ]
    low = min(float(x.min()) for x in all_inf)
    high = max(max(float(x.max()) for x in all_inf), threshold)
    bins = np.geomspace(low / 1.5, high * 1.5, 40)
    for r, inf in zip((r for r in v.layers if r.monte_carlo is not None), all_inf, strict=True):
        assert r.monte_carlo is not None
        ax.hist(
            inf, bins=bins, alpha=0.6, label=f"{r.layer}: yield {100 * r.monte_carlo.yield_fraction:.1f}%"
        )
    ax.axvline(threshold, color="k", ls="--", lw=0.8, label=f"threshold 1 - {v.options.yield_fidelity}")
    var, n = v.options.variability, v.options.monte_carlo_samples
    ax.set_xscale("log")
    ax.set(
        xlabel="1 - fidelity",
        ylabel="samples",
        title=f"Monte Carlo: {n} samples, coupler {var.coupler_sigma}, phase {var.phase_sigma_rad} rad, "
        f"loss {var.loss_sigma_dB} dB",
    )
    ax.title.set_fontsize(9)
    ax.legend(fontsize=8)
    _save(fig, path)
