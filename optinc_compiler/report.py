"""Plain-text tables for the terminal: program summaries and check results."""

from __future__ import annotations

from collections.abc import Sequence

from optinc_compiler.check import LayerCheck
from optinc_compiler.program import Layer, MeshStage, PhaseProgram

SUMMARY_HEADERS = ("layer", "shape", "method", "mesh", "MZIs", "attenuators", "depth", "scale", "rel_error")
CHECK_HEADERS = ("layer", "method", "rel_error", "allowed", "max_abs_error", "status")


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned text columns separated by two spaces, with a rule under the header."""
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=True)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)


def summary_rows(program: PhaseProgram) -> list[list[str]]:
    """One row per layer: counts of MZIs and attenuators, depth and errors."""
    rows = []
    for layer in program.layers:
        topologies = sorted({s.mesh.topology for s in layer.stages if isinstance(s, MeshStage)})
        method = layer.method + ("" if layer.block_size is None else f" (k={layer.block_size})")
        rows.append(
            [
                layer.name,
                f"{layer.shape[0]}x{layer.shape[1]}",
                method,
                ",".join(topologies) or "-",
                str(layer.n_mzis),
                str(layer.n_attenuators),
                str(layer.depth),
                f"{layer.scale:.6g}",
                f"{layer.relative_error:.3g}" + ("" if layer.exact else " (approx.)"),
            ]
        )
    return rows


def format_summary(program: PhaseProgram) -> str:
    """The per-layer summary table plus totals and a note on approximations."""
    text = format_table(SUMMARY_HEADERS, summary_rows(program))
    mzis = sum(layer.n_mzis for layer in program.layers)
    atts = sum(layer.n_attenuators for layer in program.layers)
    heaters = 2 * mzis + sum(
        s.mesh.n_modes for layer in program.layers for s in layer.stages if isinstance(s, MeshStage)
    )
    text += (
        f"\ntotal: {len(program.layers)} layer(s), {mzis} MZIs, {atts} attenuators, {heaters} phase shifters"
    )
    for layer in program.layers:
        if layer.block_size is not None:
            text += "\n" + _segmented_note(layer)
    approx = [layer for layer in program.layers if not layer.exact]
    for layer in approx:
        text += (
            f"\nnote: layer {layer.name!r} ({layer.method}) approximates W: "
            f"relative error {layer.relative_error:.3g} (||W - W_rebuilt||_F / ||W||_F)"
        )
    return text


def _segmented_note(layer: Layer) -> str:
    """What the chip adds to a segmented layer's tiles (its netlist)."""
    from optinc_compiler.netlist import segmented_counts

    fans, crossings = segmented_counts(layer)
    return (
        f"note: layer {layer.name!r} ({layer.method}) also has {fans} splitter/combiner MZIs and "
        f"{crossings} waveguide crossings on the chip"
    )


def format_checks(checks: Sequence[LayerCheck]) -> str:
    """Table of check results, one row per layer."""
    rows = [
        [
            c.name,
            c.method,
            f"{c.relative_error:.3g}",
            f"{c.allowed_relative_error:.3g}",
            f"{c.max_abs_error:.3g}",
            "ok" if c.ok else "FAIL",
        ]
        for c in checks
    ]
    return format_table(CHECK_HEADERS, rows)
