"""The build report: one self-contained ``report.html`` (PNGs embedded as base64) and a
phase-map figure per layer (``phases_<layer>.png``).

It shows the design, the compiled layers, the layout, the DRC and LVS results, the
verification (fidelity vs wavelength, Monte Carlo histogram), the phase maps of every
layer and the heater power budget. No timestamps, no absolute paths: same build, same bytes.

The heater power budget is the heater program's that the build writes to heaters.csv
(``calibration.power_budget``): crosstalk compensated with the design's calibration (or
the PDK's defaults), targets mod 2 pi chosen for the least total power, free heaters at
0 mW. Without a heater program (the heaters stage did not run) the section says so.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from optinc_compiler import __version__
from optinc_compiler.design import Design
from optinc_compiler.files import write_atomic, write_text_atomic
from optinc_compiler.mzi import TWO_PI, wrap_phase
from optinc_compiler.netlist import heater_roles, layer_netlist
from optinc_compiler.program import Layer, PhaseProgram
from optinc_compiler.report import SUMMARY_HEADERS, summary_rows
from pdk import tech

if TYPE_CHECKING:
    from optinc_compiler.calibration import HeaterProgram

#: Close-up of the first layer's mesh, written next to chip.png.
DETAIL_PNG = "chip_detail.png"


@dataclass(frozen=True)
class BuildFacts:
    """What the stages of a build found, for the report."""

    design: Design
    program: PhaseProgram
    drc: Any  # drc.DrcReport (klayout is imported by that stage only)
    lvs: tuple[Any, ...]  # lvs.LvsResult per layer
    verification: Any  # verify.Verification
    heaters_csv: str | None
    heater_program: HeaterProgram | None = None  # what heaters.csv lists (None: no heaters stage)
    warnings: tuple[str, ...] = ()  # size and power warnings (``optinc_compiler.limits``)


# --- phase maps ---------------------------------------------------------------------

#: Instance names of heater-bearing cells (``netlist``): ``{layer}_{stage}_c{column}_m{mode}``
#: (MZIs, fan chains ``FO`` / ``FI`` too), ``{layer}_{stage}_att_m{mode}``,
#: ``{layer}_{stage}_ps_m{mode}``; a segmented layer's tiles name stages ``U_b{r}_{c}``.
_CELL_NAME = re.compile(r"_(?P<stage>[^_]+)(?:_b\d+_\d+)?_(?:c(?P<column>\d+)|att|ps)_m\d+$")
#: What a phase-map column holds, by cell kind (MZI columns are named by their column).
_CELL_KINDS = {"attenuator": "att", "phase_shifter": "out"}


@dataclass(frozen=True, eq=False)
class PhaseColumn:
    """One heater-bearing column of a layer's grid and its heater phases by row.

    Attributes:
        grid_column: the netlist column (light order).
        stage: the stage its cells belong to (``U``, ``D``; ``FO`` / ``FI``: the fan
            chains of a segmented layer, whose tiles' stages lose their block suffix).
        cells: ``c3`` (MZIs of the stage's mesh column 3), ``att`` (attenuators) or
            ``out`` (the mesh's output phase shifters).
        theta_rad: (rows,) in [0, 2 pi), NaN where no heater: an MZI's theta (at its
            upper row), an attenuator's theta; NaN for output phase shifters.
        phi_rad: (rows,) likewise: an MZI's or attenuator's phi, a phase shifter's phase.
    """

    grid_column: int
    stage: str
    cells: str
    theta_rad: npt.NDArray[np.float64]
    phi_rad: npt.NDArray[np.float64]

    @property
    def label(self) -> str:
        """``U c3``, ``D att``, ``U out``."""
        return f"{self.stage} {self.cells}".strip()


def phase_columns(layer: Layer) -> tuple[PhaseColumn, ...]:
    """Every heater-bearing column of the layer's grid netlist, in light order, with the
    phases its heaters are set to (those of ``calibration.program_heaters``: attenuators
    by ``pdk.tech.attenuator_heater_phases``), wrapped into [0, 2 pi)."""
    netlist = layer_netlist(layer)
    cells_by_column: dict[int, list[Any]] = {}
    for inst in netlist.instances:
        if heater_roles(inst.component):
            cells_by_column.setdefault(inst.column, []).append(inst)
    columns = []
    for column, cells in sorted(cells_by_column.items()):
        theta, phi = np.full(netlist.n_modes, np.nan), np.full(netlist.n_modes, np.nan)
        for inst in cells:
            theta[inst.mode], phi[inst.mode] = _cell_phases_rad(inst.component, dict(inst.settings))
        names = [_cell_name(inst.name, inst.component) for inst in cells]
        stages, kinds = (" / ".join(dict.fromkeys(part)) for part in zip(*names, strict=True))
        columns.append(PhaseColumn(column, stages, kinds, theta, phi))
    return tuple(columns)


def _cell_phases_rad(component: str, settings: dict[str, float]) -> tuple[float, float]:
    """(theta, phi) of a heater-bearing cell in [0, 2 pi); (NaN, phase) for a phase shifter."""
    if component == "mzi":
        theta, phi = settings["theta_rad"], settings["phi_rad"]
    elif component == "attenuator":
        theta, phi = tech.attenuator_heater_phases(settings["amplitude"], settings["phase_rad"])
    elif component == "phase_shifter":
        return float("nan"), float(wrap_phase(settings["phase_rad"]))
    else:
        raise ValueError(f"no phase map for cell {component!r}; allowed: mzi, attenuator, phase_shifter")
    return float(wrap_phase(theta)), float(wrap_phase(phi))


def _cell_name(name: str, component: str) -> tuple[str, str]:
    """(stage, cells) of an instance name: ``("U", "c3")``, ``("D", "att")``, ``("U", "out")``."""
    match = _CELL_NAME.search(name)
    if match is None:  # a name outside the netlist's scheme: the kind alone
        return "", _CELL_KINDS.get(component, "MZI")
    column = match["column"]
    return match["stage"], f"c{column}" if column is not None else _CELL_KINDS.get(component, "?")


def plot_phase_maps(layer: Layer, path: Path) -> None:
    """Heat-maps of every heater's phase by grid column (light order: attenuator
    columns, mesh columns and output phase screens alike) and row: theta above, phi
    (and the output phase shifters' phases) below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = phase_columns(layer)
    n_rows = max((c.theta_rad.size for c in columns), default=1)
    grids = {
        name: np.column_stack([getattr(c, name) for c in columns]) if columns else np.full((1, 1), np.nan)
        for name in ("theta_rad", "phi_rad")
    }
    panel_in = float(np.clip(1.0 + 0.22 * n_rows, 2.2, 6.0))
    fig, axes = plt.subplots(2, 1, figsize=(11, 2 * panel_in + 1.6), dpi=100, sharex=True, squeeze=False)
    for ax, name, title, vmax, cmap in (
        (axes[0, 0], "theta_rad", "theta (rad): MZI internal phase, attenuator theta", np.pi, "viridis"),
        (axes[1, 0], "phi_rad", "phi (rad): MZI and attenuator phi; out: output phase", TWO_PI, "twilight"),
    ):
        _phase_panel(fig, ax, np.ma.masked_invalid(grids[name]), columns, vmax=vmax, cmap=cmap)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel("row (mode; an MZI's upper mode)")
    _column_ticks(axes[1, 0], columns)
    axes[1, 0].set_xlabel("grid column, in the order light meets them")
    fig.suptitle(f"Layer {layer.name}: heater phases (hatched: no heater)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)


def _phase_panel(
    fig: Any, ax: Any, grid: np.ma.MaskedArray, columns: Sequence[PhaseColumn], *, vmax: float, cmap: str
) -> None:
    """One heat-map, hatched where no heater sits, a line between stages and cell kinds."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    colors = plt.get_cmap(cmap).with_extremes(bad=(1.0, 1.0, 1.0, 0.0))  # the hatching shows
    ax.add_patch(
        Rectangle((-0.5, -0.5), grid.shape[1], grid.shape[0], hatch="///", fill=False, ec="0.75", lw=0)
    )
    image = ax.imshow(grid, cmap=colors, vmin=0, vmax=vmax, aspect="auto", interpolation="none", zorder=1)
    for i in range(1, len(columns)):
        if _section(columns[i]) != _section(columns[i - 1]):
            ax.axvline(i - 0.5, color="0.15", lw=1.0, zorder=2)
    ax.set_yticks(range(0, grid.shape[0], max(1, grid.shape[0] // 16)))
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02)


def _section(column: PhaseColumn) -> tuple[str, str]:
    """Stage and cell kind: a mesh's MZI columns are one section."""
    return column.stage, "mzi" if column.cells.startswith("c") else column.cells


def _column_ticks(ax: Any, columns: Sequence[PhaseColumn]) -> None:
    """A label per column (``D att``, ``U c0``, ``U out``); beyond ~40 columns every k-th
    MZI column, and every attenuator and output column."""
    step = max(1, -(-len(columns) // 40))
    shown = [i for i, c in enumerate(columns) if i % step == 0 or _section(c)[1] != "mzi"]
    upright = len(columns) > 16
    ax.set_xticks(
        shown, [columns[i].label for i in shown], rotation=90 if upright else 0, fontsize=7 if upright else 8
    )


# --- the HTML page ------------------------------------------------------------------

CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; margin-top: 1.8em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f2f2f2; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: #176b1d; font-weight: bold; } .fail { color: #b00020; font-weight: bold; }
.note { color: #8a5a00; font-size: 0.7em; font-weight: normal; }
img { max-width: 100%; border: 1px solid #ddd; } .note { color: #555; font-size: 0.92em; }
"""


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{html.escape(str(c))}</td>'
            if isinstance(c, int | float)
            else f"<td>{html.escape(str(c))}</td>"
            for c in row
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _image(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<p><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></p>'


def _status(ok: bool) -> str:
    return '<span class="ok">pass</span>' if ok else '<span class="fail">FAIL</span>'


def _warnings_section(warnings: Sequence[str]) -> str:
    """The build's size and power warnings, first on the page (nothing without any)."""
    if not warnings:
        return ""
    items = "".join(f"<li>{html.escape(w)}</li>" for w in warnings)
    return f'<h2 class="fail">Warnings</h2><ul>{items}</ul>'


def _design_section(d: Design) -> str:
    v, s = d.verify, d.sweep
    rows = [
        ("design file", d.source.name),
        ("weights", d.weights),
        ("layers", ", ".join(d.layers) or "all"),
        (
            "method / mesh",
            f"{d.method} / {d.mesh}" + (f", block {d.block_size}" if "segmented" in d.method else ""),
        ),
        ("PDK", d.pdk),
        ("I/O couplers", d.io),
        ("sweep", f"{s.start_um}-{s.stop_um} um, {s.points} points"),
        (
            "verification",
            f"{v.models} models at {v.wl_um} um; pass: fidelity >= {v.min_fidelity}"
            + (
                f", Monte Carlo yield >= {v.min_yield} at fidelity >= "
                f"{v.min_fidelity if v.mc_min_fidelity is None else v.mc_min_fidelity}"
                if v.min_yield is not None
                else ", Monte Carlo yield not judged (no min_yield)"
            ),
        ),
        (
            "Monte Carlo",
            f"{v.monte_carlo_samples} samples, seed {v.seed}, coupler sigma {v.coupler_sigma}, "
            f"phase sigma {v.phase_sigma_rad} rad, loss sigma {v.loss_sigma_dB} dB",
        ),
        ("DAC", f"{d.dac_bits} bits"),
        ("calibration", d.calibration or "none (PDK defaults)"),
    ]
    return "<h2>Design</h2>" + _table(["setting", "value"], rows)


def _checks_section(facts: BuildFacts) -> str:
    drc = facts.drc
    drc_rows = [
        (r.rule, r.layer, r.limit, len(r.violations), "ok" if not r.violations else "FAIL")
        for r in drc.results
    ]
    lvs_rows = [
        (r.layer, r.n_instances, r.n_connections, "ok" if r.ok else "FAIL", r.first_difference or "-")
        for r in facts.lvs
    ]
    if facts.design.pdk == "optinc":
        nets = f"{drc.n_signal_nets} signal nets, {drc.n_ground_nets} ground nets"
    else:
        nets = (
            f"{drc.n_signal_nets + drc.n_ground_nets} heater nets on pads ({drc.n_ground_nets} shared "
            f"returns), the {html.escape(facts.design.pdk)} rules and its submission check"
        )
    return (
        f"<h2>DRC {_status(drc.clean)}</h2>"
        f"<p>{drc.n_heaters} heaters, {nets}; "
        "markers (none when clean) in <code>drc.lyrdb</code>.</p>"
        + _table(["rule", "layer", "limit", "violations", "status"], drc_rows)
        + f"<h2>LVS {_status(all(r.ok for r in facts.lvs))}</h2>"
        + _table(["layer", "instances", "connections", "status", "first difference"], lvs_rows)
    )


def _verify_section(v: Any, out: Path) -> str:
    from optinc_compiler.verify import summary_table

    unjudged = ' <span class="note">(Monte Carlo yield not judged: no min_yield set)</span>'
    parts = [
        f"<h2>Verification {_status(not v.failed)}{unjudged if v.yield_unjudged else ''}</h2>",
        f"<p>Simulated from the netlist extracted from <code>chip.gds</code> ({v.options.model_set} models). "
        "Every number in <code>verify.json</code>, tables in <code>verify.md</code>.</p>",
        f"<pre>{html.escape(summary_table(v))}</pre>",
    ]
    for name, alt in (("sweep.png", "fidelity and loss vs wavelength"), ("monte_carlo.png", "Monte Carlo")):
        if (out / name).is_file():
            parts.append(f"<h3>{html.escape(alt[0].upper() + alt[1:])}</h3>" + _image(out / name, alt))
    return "".join(parts)


def _detail_legend(pdk: str) -> str:
    """What the detail render shows, in the PDK's layers and KLayout's colours."""
    if pdk == "optinc":
        return "waveguides and MZIs (red), heaters (blue), heater wiring on M2 (purple) to the pad rows."
    return (
        "the foundry's waveguides, couplers and heaters, and the heater wiring on PAD, its one metal, "
        "rising straight to the mesh edge (shared returns joined above their rows)."
    )


def _power_section(heater_prog: HeaterProgram | None, drawn_heaters: int, pdk: str = "optinc") -> str:
    """The heater power budget: ``calibration.power_budget`` of the heater program (the
    numbers of heaters.csv), per layer and in all; ``pdk`` gives the heater model."""
    from optinc_compiler.pdks import get

    model = get(pdk).heater
    source = "" if pdk == "optinc" else f" ({html.escape(model.source)})"
    head = "<h2>Heater power budget</h2>"
    if heater_prog is None:
        return (
            f"{head}<p>Not available: the heaters stage did not run, so there is no heater program "
            f"(heaters.csv) to take the powers from. The layout draws {drawn_heaters} heaters.</p>"
        )
    from optinc_compiler.calibration import PHASE_ATOL_RAD, power_budget

    budget = power_budget(heater_prog)
    rows: list[list[Any]] = [
        [b.layer, b.n_heaters, b.n_free, f"{b.total_power_mW:,.1f}", f"{b.max_power_mW:.1f}"]
        for b in budget.layers
    ]
    max_mW = max((b.max_power_mW for b in budget.layers), default=0.0)
    rows.append(["total", budget.n_heaters, budget.n_free, f"{budget.total_power_mW:,.1f}", f"{max_mW:.1f}"])
    atol = f"{PHASE_ATOL_RAD:.0e}".replace("e-0", "e-")  # 1e-9
    largest = budget.largest
    biggest = (
        f"; largest {html.escape(largest.id)}: {largest.power_mW:.1f} mW at {largest.voltage_V:.2f} V"
        if largest is not None
        else ""
    )
    crosstalk = (
        "crosstalk compensated: each heater's power solves the thermal crosstalk system "
        "K P = P_pi / &pi; (phase &minus; offset + 2&pi; n), K the PDK's distance model plus the "
        "calibration's coefficients, with the multiples n &ge; 0 chosen for the least total power "
        "with every P &ge; 0"
        if heater_prog.crosstalk
        else "without crosstalk compensation: each heater draws P = P_pi / &pi; (phase &minus; offset), "
        "the phase taken mod 2&pi; into [0, 2&pi;)"
    )
    return (
        f"{head}<p>{budget.n_heaters} heaters (the layout draws {drawn_heaters}); total "
        f"{budget.total_power_mW:,.1f} mW = {budget.total_power_mW / 1000:.3f} W{biggest}. "
        "The same numbers as heaters.csv.</p>"
        + _table(["layer", "heaters", "free", "power_mW", "max_heater_power_mW"], rows)
        + f'<p class="note">The powers of the heater program (heaters.csv) with calibration '
        f"{html.escape(repr(heater_prog.calibration))} (P_pi = {model.p_pi_mW:g} mW and "
        f"{model.resistance_ohm:g} &Omega; per heater, the PDK's{source}, unless it measured them; V_max = "
        f"{heater_prog.v_max_V:g} V), {crosstalk}. A target within {atol} rad of a multiple of 2&pi; "
        "drives 0. Free heaters are output phase shifters whose phase no read output sees (their rows "
        "end in terminators): they are drawn, set to 0 mW and listed with the phase their neighbours' "
        f"heat gives them. Powers before rounding to the {heater_prog.dac_bits}-bit DAC codes.</p>"
    )


def render_html(facts: BuildFacts, out: Path, phase_maps: Sequence[Path]) -> str:
    """The whole page; images read from ``out`` and embedded."""
    program = facts.program
    heaters = (
        f"<code>{html.escape(facts.heaters_csv)}</code>"
        if facts.heaters_csv
        else "not available yet (comes with the calibration stage)"
    )
    body = [
        f"<h1>OptINC build: {html.escape(facts.design.name)}</h1>",
        f'<p class="note">optinc-compiler {html.escape(__version__)}. Files in this folder: '
        "<code>program.json</code> (phase program), <code>chip.gds</code>, <code>chip.png</code>, "
        f"<code>{DETAIL_PNG}</code>, "
        "<code>drc.lyrdb</code>, <code>verify.json</code>, <code>verify.md</code>, "
        "<code>sweep.png</code>, <code>monte_carlo.png</code>, <code>phases_&lt;layer&gt;.png</code>; "
        f"heater table: {heaters}.</p>",
        _warnings_section(facts.warnings),
        _design_section(facts.design),
        "<h2>Compiled layers</h2>",
        _table(SUMMARY_HEADERS, summary_rows(program)),
        "<h2>Layout</h2>",
        _image(out / "chip.png", "layout of the chip"),
        f'<p class="note">Detail (<code>{DETAIL_PNG}</code>): the input end of layer '
        f"{html.escape(program.layers[0].name)}: {_detail_legend(facts.design.pdk)}</p>",
        _image(out / DETAIL_PNG, "detail of the first mesh"),
        _checks_section(facts),
        _verify_section(facts.verification, out),
        "<h2>Phase maps</h2>",
        '<p class="note">Per layer: the phase of every heater by grid column (the order light meets '
        "them) and row: theta and phi of each MZI (at its upper mode, columns <code>c0</code>, "
        "<code>c1</code>, ... of its mesh) and of each attenuator (<code>att</code>), and the phase "
        "of each output phase shifter (<code>out</code>).</p>",
        *(_image(path, f"phase maps of {path.stem}") for path in phase_maps),
        _power_section(facts.heater_program, facts.drc.n_heaters, facts.design.pdk),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>OptINC build: {html.escape(facts.design.name)}</title><style>{CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def detail_box_um(gds: Path, layer_id: str) -> tuple[float, float, float, float]:
    """A window on the input end of a layer's mesh (by its ``Layer.id``): its waveguides
    plus 250 um of heater wiring above and below, twice as wide as high (at most the
    whole mesh)."""
    import klayout.db as kdb

    layout = kdb.Layout()
    layout.read(str(gds))
    top = layout.top_cells()[0]
    grid = f"{layer_id}_grid"
    found = [i.dbbox() for i in top.each_inst() if i.cell.name == grid]
    if found:
        box = next(i.dbbox(layout.layer(*tech.LAYERS["WG"])) for i in top.each_inst() if i.cell.name == grid)
    else:  # a foundry chip: the layer's mesh cell
        box = next(i.dbbox() for i in top.each_inst() if i.cell.name == f"{layer_id}_mesh")
    height = box.height() + 500.0
    width = min(2.0 * height, box.width() + 100.0)
    return (box.left - 50.0, box.bottom - 250.0, box.left - 50.0 + width, box.top + 250.0)


def write_detail_png(
    gds: Path,
    layer_id: str,
    path: Path,
    *,
    width_px: int = 1600,
    floorplan: tuple[int, int] = tech.LAYERS["FLOORPLAN"],
) -> Path:
    """A close-up render of the input end of a layer's mesh (``detail_box_um``), the die
    outline on ``floorplan`` drawn hollow."""
    from optinc_compiler.layout import render_png

    box = detail_box_um(gds, layer_id)
    height_px = round(width_px * (box[3] - box[1]) / (box[2] - box[0]))
    return write_atomic(
        path,
        lambda tmp: render_png(
            gds, tmp, width_px=width_px, height_px=height_px, box_um=box, floorplan=floorplan
        ),
    )


def _write_phase_maps(layer: Layer, path: Path) -> Path:
    return write_atomic(path, lambda tmp: plot_phase_maps(layer, tmp))


def write_report(facts: BuildFacts, out: Path) -> tuple[Path, ...]:
    """``report.html`` (first) and one ``phases_<layer>.png`` per layer, atomically."""
    from optinc_compiler.build import phase_map_name

    maps = [_write_phase_maps(layer, out / phase_map_name(layer.id)) for layer in facts.program.layers]
    from optinc_compiler.pdks import get

    floorplan = get(facts.design.pdk).layers["FLOORPLAN"]
    detail = write_detail_png(
        out / "chip.gds", facts.program.layers[0].id, out / DETAIL_PNG, floorplan=floorplan
    )
    page = write_text_atomic(out / "report.html", render_html(facts, out, maps))
    return (page, detail, *maps)
