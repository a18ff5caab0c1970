"""DRC with CORNERSTONE SOI 220's rules (``tech.RULES``) in ``klayout.db``, and the
foundry's own submission check.

* Width and space on merged WG, GRA, HEATER and PAD regions (width with the 1 nm
  curve tolerance, ``tech.WIDTH_TOLERANCE_UM``).
* Heater-pad overlap: where PAD lands on HEATER, the overlap must be at least
  ``HEATER.PAD.overlap`` wide.
* Layers: every drawn layer one of ``tech.LAYERS`` (those we may draw; the foundry's
  designated list is wider and its check below sees it).
* Connectivity on the one metal: merged PAD regions are nets; pad labels (LBL) name
  the die's pads (``die_pads``) end them. Each heater (merged HEATER polygon) joins
  exactly two nets; a net reaches at most one pad (more is a short); a net touching a
  heater reaches a pad. The report's ``n_signal_nets`` counts the nets joining one
  heater (signals and unshared returns), ``n_ground_nets`` those joining several (the
  shared returns).
* ``cspdk.si220.submission.check_submission``: file format, designated layers, 1 nm
  grid, one full or half design area on 99/0 containing everything, and the top cell
  ``Cell0_<Institution>``. Its problems are violations of rule ``submission``.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import klayout.db as kdb

from optinc_compiler.cornerstone import tech
from optinc_compiler.drc import (
    IGNORE_ANGLE_DEG,
    DrcReport,
    RuleResult,
    Violation,
    layer_region,
    rule_result,
    space_pairs,
    violation_at,
)
from optinc_compiler.errors import MissingDependencyError
from optinc_compiler.gds import read_layout

#: Layers the width and space rules cover.
CHECKED_LAYERS = ("WG", "GRA", "HEATER", "PAD")


def check_gds(
    path: str | os.PathLike[str], *, connectivity: bool = True, submission: bool = True
) -> DrcReport:
    """Every check on the top cell of a GDS/OASIS file (``connectivity=False``: rules
    only; ``submission=False``: without the foundry's submission check)."""
    path = Path(path)
    layout, top = read_layout(path)
    dbu = layout.dbu
    regions = {name: _region(layout, top, name) for name in tech.LAYERS}
    results = [*_width_and_space(regions, dbu), _overlap(regions, dbu), _layers(layout, top)]
    signal = ground = heaters = 0
    if connectivity:
        net_results, (signal, ground, heaters) = _connectivity(layout, top, regions, dbu)
        results.extend(net_results)
    if submission:
        results.append(_submission(path))
    return DrcReport(results=tuple(results), n_signal_nets=signal, n_ground_nets=ground, n_heaters=heaters)


def _region(layout: kdb.Layout, top: kdb.Cell, name: str) -> kdb.Region:
    return layer_region(layout, top, tech.LAYERS[name])


def _width_and_space(regions: dict[str, kdb.Region], dbu: float) -> list[RuleResult]:
    out = []
    for layer in CHECKED_LAYERS:
        width, space = tech.RULES[f"{layer}.width"], tech.RULES[f"{layer}.space"]
        threshold = round((width - tech.WIDTH_TOLERANCE_UM) / dbu)
        pairs = regions[layer].width_check(threshold, ignore_angle=IGNORE_ANGLE_DEG)
        out.append(rule_result("min_width", layer, width, pairs, dbu))
        out.append(
            rule_result("min_space", layer, space, space_pairs(regions[layer], round(space / dbu)), dbu)
        )
    return out


def _overlap(regions: dict[str, kdb.Region], dbu: float) -> RuleResult:
    """Heater contacts: the HEATER and PAD overlap at least ``HEATER.PAD.overlap`` wide."""
    limit = tech.RULES["HEATER.PAD.overlap"]
    overlap = regions["HEATER"] & regions["PAD"]
    pairs = overlap.width_check(round((limit - tech.WIDTH_TOLERANCE_UM) / dbu), ignore_angle=IGNORE_ANGLE_DEG)
    return rule_result("min_overlap", "HEATER.PAD", limit, pairs, dbu)


def _layers(layout: kdb.Layout, top: kdb.Cell) -> RuleResult:
    """Shapes on layers this PDK does not draw."""
    allowed = set(tech.LAYERS.values())
    violations = []
    for index in layout.layer_indexes():
        info = layout.get_info(index)
        box = top.bbox_per_layer(index)
        if box.empty() or (info.layer, info.datatype) in allowed:
            continue
        detail = f"layer {info.layer}/{info.datatype}; allowed: " + ", ".join(
            f"{name} {number}/{datatype}" for name, (number, datatype) in tech.LAYERS.items()
        )
        violations.append(violation_at("layer", f"{info.layer}/{info.datatype}", box, layout.dbu, detail))
    return RuleResult(rule="layer", layer="all", limit="foundry layers", violations=tuple(violations))


def die_pads(dbu: float) -> list[tuple[str, kdb.Box]]:
    """(name, box) of every pad of the die (``N0`` .. ``S30``, west to east)."""
    from optinc_compiler.cornerstone.chip import pad_centre_y_um, pad_x_um

    w, h = (round(v / dbu) for v in tech.PAD_SIZE_UM)
    out = []
    for side in ("N", "S"):
        y = round(pad_centre_y_um(side) / dbu)
        for i in range(tech.PADS_PER_SIDE):
            x = round(pad_x_um(i) / dbu)
            out.append((f"{side}{i}", kdb.Box(x - w // 2, y - h // 2, x + w // 2, y + h // 2)))
    return out


def _connectivity(
    layout: kdb.Layout, top: kdb.Cell, regions: dict[str, kdb.Region], dbu: float
) -> tuple[list[RuleResult], tuple[int, int, int]]:
    """Nets of the one metal against the heaters and the die's pads."""
    del layout, top
    nets = list(regions["PAD"].each())
    net_region = [kdb.Region(poly) for poly in nets]
    pads_on: dict[int, list[str]] = defaultdict(list)
    for name, box in die_pads(dbu):
        centre = kdb.Region(
            kdb.Box(box.center().x - 1, box.center().y - 1, box.center().x + 1, box.center().y + 1)
        )
        for k, region in enumerate(net_region):
            if region.bbox().overlaps(box) and not (region & centre).is_empty():
                pads_on[k].append(name)
    shorts, floating, heater_faults = [], [], []
    touched: dict[int, int] = defaultdict(int)
    heaters = list(regions["HEATER"].each())
    for poly in heaters:
        hr = kdb.Region(poly)
        joined = [
            k
            for k, region in enumerate(net_region)
            if region.bbox().overlaps(poly.bbox()) and not (region & hr).is_empty()
        ]
        for k in joined:
            touched[k] += 1
        if len(joined) != 2:
            what = "is joined to one net (shorted)" if len(joined) == 1 else f"touches {len(joined)} nets"
            heater_faults.append(
                violation_at(
                    "heater_nets", "HEATER", poly.bbox(), dbu, f"a heater {what}; a heater joins two nets"
                )
            )
    for k, poly in enumerate(nets):
        names = pads_on.get(k, [])
        if len(names) > 1:
            shorts.append(
                violation_at("short", "PAD", poly.bbox(), dbu, f"one net joins pads {', '.join(names)}")
            )
        if k in touched and not names:
            floating.append(violation_at("open", "PAD", poly.bbox(), dbu, "a heater's net reaches no pad"))
    shared = sum(1 for k, n in touched.items() if n > 1)
    results = [
        RuleResult("heater_nets", "HEATER", "two nets per heater", tuple(heater_faults)),
        RuleResult("short", "PAD", "one pad per net", tuple(shorts)),
        RuleResult("open", "PAD", "every heater net on a pad", tuple(floating)),
    ]
    return results, (len(touched) - shared, shared, len(heaters))


@functools.cache
def _submission_module() -> Any:
    """``cspdk/si220/submission.py`` loaded from its file: importing it through the cspdk
    package would load gdsfactory and every foundry cell first (about 10 s), and the
    checker itself needs only ``klayout.db``."""
    spec = importlib.util.find_spec("cspdk")  # finds the package without running it
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("the submission check needs cspdk: pip install --no-deps cspdk==2.1.0")
    location = Path(next(iter(spec.submodule_search_locations))) / "si220" / "submission.py"
    module_spec = importlib.util.spec_from_file_location("optinc_cspdk_submission", location)
    if module_spec is None or module_spec.loader is None:
        raise MissingDependencyError(f"cspdk's submission check is missing at {str(location)!r}")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def _submission(path: Path) -> RuleResult:
    """The foundry's submission check, each problem a violation at the die's centre."""
    problems = _submission_module().check_submission(path)
    violations = tuple(
        Violation(rule="submission", layer="all", x_um=0.0, y_um=0.0, detail=problem) for problem in problems
    )
    return RuleResult(rule="submission", layer="all", limit="cspdk.si220.submission", violations=violations)
