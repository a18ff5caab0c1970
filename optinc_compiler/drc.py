"""Rule and connectivity checks of a GDS file with ``klayout.db`` (no GUI).

* Enclosure: vias inside the heater and the routing metal, pad openings inside pads.
* Width and space per layer from ``pdk.tech.RULES`` on merged regions, with the grid
  tolerance for discretised bends (docs/architecture.md: a check at exactly the minimum flags
  hundreds of 1 nm bend edges). Inside the TAPER marker (edge couplers' inverse
  tapers) the WG width rule is ``RULES.taper_tip_min_width_um`` instead.
* Connectivity: merged routing, pad and bump metal (M2, PAD, BUMP) regions are nets;
  pad labels name them (each label once, each on a pad or bump).
  Every heater contact (VIA) must be on a labelled net; a net may carry one pad
  (two labels on one net is a short); a signal net reaches exactly one contact; each
  heater (a merged HEATER polygon) joins one signal net and one ground net.

``write_marker_db`` saves the violations as a KLayout marker database (``.lyrdb``).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import klayout.db as kdb

from optinc_compiler.gds import read_layout
from optinc_compiler.guard import brief, quote
from pdk import tech

GROUND_PREFIX = "GND"

#: Edge pairs meeting at this angle or more are not width/space pairs: the end of a
#: bend meets its side at ~88 deg once discretised, which a plain check reports as a
#: zero width. Parallel and acute pairs (real thin or close features) are still checked.
IGNORE_ANGLE_DEG = 80


@dataclass(frozen=True)
class Violation:
    """One rule violation at a place (um)."""

    rule: str
    layer: str
    x_um: float
    y_um: float
    detail: str
    box_um: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class RuleResult:
    """Violations of one rule on one layer."""

    rule: str
    layer: str
    limit: str
    violations: tuple[Violation, ...]


@dataclass(frozen=True)
class DrcReport:
    """All checks of one layout, and the net counts of the connectivity check."""

    results: tuple[RuleResult, ...]
    n_signal_nets: int = 0
    n_ground_nets: int = 0
    n_heaters: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def violations(self) -> tuple[Violation, ...]:
        """Every violation of every rule."""
        return tuple(v for r in self.results for v in r.violations)

    @property
    def clean(self) -> bool:
        """No violation."""
        return not self.violations


def check_gds(path: str | os.PathLike[str], *, connectivity: bool = True) -> DrcReport:
    """Run every check on the top cell of a GDS or OASIS file (``connectivity=False``:
    width and space only, for layouts drawn without heater wiring)."""
    layout, top = read_layout(Path(path))
    regions = {name: _region(layout, top, name) for name in tech.LAYERS}
    results = [*_width_and_space(regions, layout.dbu), *_enclosures(regions, layout.dbu)]
    if not connectivity:
        return DrcReport(results=tuple(results), n_heaters=regions["HEATER"].count())
    net_results, (signal, ground, heaters) = _connectivity(layout, top, regions)
    results.extend(net_results)
    return DrcReport(results=tuple(results), n_signal_nets=signal, n_ground_nets=ground, n_heaters=heaters)


def _region(layout: kdb.Layout, top: kdb.Cell, name: str) -> kdb.Region:
    return layer_region(layout, top, tech.LAYERS[name])


def layer_region(layout: kdb.Layout, top: kdb.Cell, layer: tuple[int, int]) -> kdb.Region:
    """The merged shapes of ``layer`` (layer, datatype) under ``top`` (empty if absent)."""
    index = layout.find_layer(*layer)
    if index is None:
        return kdb.Region()
    return kdb.Region(top.begin_shapes_rec(index)).merged()


def _width_and_space(regions: dict[str, kdb.Region], dbu: float) -> list[RuleResult]:
    tol = tech.RULES.width_tolerance_um
    out = []
    for rule, table in (("min_width", tech.RULES.min_width_um), ("min_space", tech.RULES.min_space_um)):
        for layer, limit in table:
            region, threshold = regions[layer], round((limit - tol) / dbu)
            if rule == "min_width":
                pairs = region.width_check(threshold, ignore_angle=IGNORE_ANGLE_DEG)
            else:
                pairs = space_pairs(region, threshold)
            if rule == "min_width" and layer == "WG":  # inverse tapers: their own rule
                pairs = pairs.not_inside(regions["TAPER"])
            out.append(rule_result(rule, layer, limit, pairs, dbu))
    tip = tech.RULES.taper_tip_min_width_um
    # the marker cuts waveguides across (ends at right angles: ignored like bend ends)
    tapers = regions["WG"] & regions["TAPER"]
    pairs = tapers.width_check(round((tip - tol) / dbu), ignore_angle=IGNORE_ANGLE_DEG)
    out.append(rule_result("min_width_taper", "WG", tip, pairs, dbu))
    return out


#: Merged polygons are broken into pieces of at most this many vertices and bounding
#: boxes at most this many times their area before the space check (see space_pairs).
BREAK_VERTICES, BREAK_AREA_RATIO = 1000, 100.0


def space_pairs(region: kdb.Region, threshold_dbu: int) -> kdb.EdgePairs:
    """Space violations of a merged region: inside one polygon (notch) and between two.

    A merged waveguide row runs from its input coupler through the whole grid to its
    output coupler, and the fans give every row's bounding box the height of the coupler
    column: every pair of rows is then compared edge by edge (47 s at N=64). Broken into
    compact pieces, only neighbours are compared (a few s). The pieces of one polygon
    touch along their cuts, with zero distance; distinct merged polygons never touch,
    so zero-distance pairs are the cuts and are dropped."""
    pieces = region.dup()
    pieces.break_(BREAK_VERTICES, BREAK_AREA_RATIO)
    pieces.merged_semantics = False
    pairs = pieces.notch_check(threshold_dbu, ignore_angle=IGNORE_ANGLE_DEG)
    pairs += pieces.isolated_check(threshold_dbu, ignore_angle=IGNORE_ANGLE_DEG)
    return pairs.with_distance(1, None, False)


def rule_result(rule: str, layer: str, limit: float, pairs: kdb.EdgePairs, dbu: float) -> RuleResult:
    violations = tuple(
        violation_at(rule, layer, pair.bbox(), dbu, f"{pair.distance() * dbu:.3f} um < {limit} um")
        for pair in pairs.each()
    )
    return RuleResult(rule=rule, layer=layer, limit=f">= {limit} um", violations=violations)


#: (inner layer, outer layer): every inner shape must lie inside the outer layer.
ENCLOSURES = (("VIA", "HEATER"), ("VIA", "M2"), ("PADOPEN", "PAD"), ("BUMP", "M2"))


def _enclosures(regions: dict[str, kdb.Region], dbu: float) -> list[RuleResult]:
    out = []
    for inner, outer in ENCLOSURES:
        outside = regions[inner] - regions[outer]
        detail = f"{inner} outside {outer}"
        violations = tuple(violation_at("enclosure", inner, p.bbox(), dbu, detail) for p in outside.each())
        out.append(RuleResult(rule="enclosure", layer=inner, limit=f"inside {outer}", violations=violations))
    return out


def _labels(layout: kdb.Layout, top: kdb.Cell) -> list[tuple[str, kdb.Point]]:
    index = layout.find_layer(*tech.LAYERS["TEXT"])
    if index is None:
        return []
    out = []
    it = top.begin_shapes_rec(index)
    while not it.at_end():
        shape = it.shape()
        if shape.is_text():
            out.append((shape.text_string, it.trans() * shape.text.trans.disp.to_p()))
        it.next()
    return out


def _connectivity(
    layout: kdb.Layout, top: kdb.Cell, regions: dict[str, kdb.Region]
) -> tuple[list[RuleResult], tuple[int, int, int]]:
    dbu = layout.dbu
    # routing metal and pad metal conduct together: a pad-layer bridge is a short too
    nets = list((regions["M2"] + regions["PAD"] + regions["BUMP"]).merged().each())
    net_of_label: dict[str, int] = {}
    labels_on_net: dict[int, list[str]] = {i: [] for i in range(len(nets))}
    problems: dict[str, list[Violation]] = {
        "short": [],
        "floating": [],
        "signal_fanout": [],
        "heater_nets": [],
        "labels": [],
    }
    pads = list((regions["PAD"] + regions["BUMP"]).each())  # bond pads and flip-chip bumps
    net_index, pad_index = _BoxIndex(nets), _BoxIndex(pads)
    seen: set[str] = set()
    for text, point in _labels(layout, top):
        if text in seen:
            problems["labels"].append(_point("labels", point, dbu, f"pad label {quote(text)} appears twice"))
        seen.add(text)
        probe = kdb.Box(point, point)
        if not any(pads[k].inside(point) for k in pad_index.near(probe)):
            problems["labels"].append(_point("labels", point, dbu, f"label {quote(text)} is not on a pad"))
        for i in net_index.near(probe):
            if nets[i].inside(point):
                labels_on_net[i].append(text)
                net_of_label[text] = i
    for i, labels in labels_on_net.items():
        if len(labels) > 1:
            problems["short"].append(
                _at("short", nets[i], dbu, f"one net carries pads {brief(', '.join(sorted(labels)))}")
            )
    vias = list(regions["VIA"].each())
    via_net: list[int | None] = []
    for via in vias:
        hit = [i for i in net_index.near(via.bbox()) if nets[i].touches(via)]
        via_net.append(hit[0] if hit else None)
        if not hit or not labels_on_net[hit[0]]:
            problems["floating"].append(_at("floating", via, dbu, "heater contact on no labelled net"))
    vias_per_net = Counter(n for n in via_net if n is not None)
    for i, labels in labels_on_net.items():
        if len(labels) == 1 and not labels[0].startswith(GROUND_PREFIX) and vias_per_net[i] != 1:
            problems["signal_fanout"].append(
                _at(
                    "signal_fanout",
                    nets[i],
                    dbu,
                    f"pad {quote(labels[0])} reaches {vias_per_net[i]} contacts, expected 1",
                )
            )

    def net_kind(net: int | None) -> str | None:
        if net is None or not labels_on_net[net]:
            return None
        return "ground" if labels_on_net[net][0].startswith(GROUND_PREFIX) else "signal"

    heaters = list(regions["HEATER"].each())
    via_index = _BoxIndex(vias)
    for heater in heaters:
        touched = (net_kind(via_net[k]) for k in via_index.near(heater.bbox()) if heater.touches(vias[k]))
        kinds = sorted(kind for kind in touched if kind is not None)
        if kinds != ["ground", "signal"]:
            problems["heater_nets"].append(
                _at("heater_nets", heater, dbu, f"heater joins {kinds or 'nothing'}")
            )
    results = [
        RuleResult(rule=rule, layer="M2", limit=limit, violations=tuple(problems[rule]))
        for rule, limit in (
            ("short", "one pad per net"),
            ("floating", "every contact on a pad's net"),
            ("signal_fanout", "one contact per signal pad"),
            ("heater_nets", "each heater: one signal + one ground net"),
            ("labels", "one label per pad, each on a pad"),
        )
    ]
    ground = sum(1 for labels in labels_on_net.values() if labels and labels[0].startswith(GROUND_PREFIX))
    signal = sum(1 for labels in labels_on_net.values() if labels and not labels[0].startswith(GROUND_PREFIX))
    return results, (signal, ground, len(heaters))


class _BoxIndex:
    """Polygons bucketed by bounding box on a coarse grid: ``near(box)`` gives the
    indices of those whose box may touch ``box`` (keeps the net checks linear)."""

    def __init__(self, polygons: Sequence[kdb.Polygon], cell_dbu: int = 500_000) -> None:
        self.cell = cell_dbu
        self.buckets: dict[tuple[int, int], list[int]] = {}
        self.boxes = [p.bbox() for p in polygons]
        for i, box in enumerate(self.boxes):
            for key in self._keys(box):
                self.buckets.setdefault(key, []).append(i)

    def _keys(self, box: kdb.Box) -> list[tuple[int, int]]:
        c = self.cell
        return [
            (ix, iy)
            for ix in range(box.left // c, box.right // c + 1)
            for iy in range(box.bottom // c, box.top // c + 1)
        ]

    def near(self, box: kdb.Box) -> list[int]:
        found = {i for key in self._keys(box) for i in self.buckets.get(key, ())}
        return sorted(i for i in found if self.boxes[i].touches(box))


def _point(rule: str, point: kdb.Point, dbu: float, detail: str) -> Violation:
    x, y = point.x * dbu, point.y * dbu
    return Violation(
        rule=rule, layer="TEXT", x_um=x, y_um=y, detail=detail, box_um=(x - 1, y - 1, x + 1, y + 1)
    )


def _at(rule: str, poly: kdb.Polygon, dbu: float, detail: str) -> Violation:
    return violation_at(rule, "M2", poly.bbox(), dbu, detail)


def violation_at(rule: str, layer: str, box: kdb.Box, dbu: float, detail: str) -> Violation:
    """A violation marked by a box (database units) on ``layer``."""
    return Violation(
        rule=rule,
        layer=layer,
        x_um=box.center().x * dbu,
        y_um=box.center().y * dbu,
        detail=detail,
        box_um=(box.left * dbu, box.bottom * dbu, box.right * dbu, box.top * dbu),
    )


def write_marker_db(
    report: DrcReport, path: str | os.PathLike[str], *, top_cell: str = "optinc_chip"
) -> None:
    """Save the violations as a KLayout marker database a designer can open."""
    import klayout.rdb as rdb

    db = rdb.ReportDatabase("optinc drc")
    cell = db.create_cell(top_cell)
    for result in report.results:
        category = db.create_category(f"{result.rule}_{result.layer}")
        category.description = f"{result.rule} on {result.layer}: {result.limit}"
        for v in result.violations:
            item = db.create_item(cell.rdb_id(), category.rdb_id())
            item.add_value(kdb.DBox(*v.box_um))
            item.add_value(v.detail)
    db.save(str(path))
