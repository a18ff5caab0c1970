"""The flow stages that depend on the PDK, one function per stage, chosen by name.

``layout``, ``drc``, ``lvs`` and the layout side of ``verify`` call these with the PDK
the user named (``--pdk``, a design's ``pdk:``) or, for a GDS, the PDK that drew it
(``detect``: our chips' top cell is ``optinc_chip``, CORNERSTONE's ``Cell0_<...>``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from optinc_compiler import pdks
from optinc_compiler.errors import InputError
from optinc_compiler.program import Layer, PhaseProgram

#: ``--pdk auto``: the PDK that drew the GDS.
AUTO = "auto"


def detect(gds_path: str | os.PathLike[str]) -> str:
    """The PDK whose chip ``gds_path`` holds, from its top cell's name."""
    from optinc_compiler.gds import read_layout

    _, top = read_layout(Path(gds_path))
    return "cornerstone-si220" if top.name.startswith("Cell0_") else pdks.DEFAULT_PDK


def resolve(name: str, gds_path: str | os.PathLike[str] | None = None) -> str:
    """``name``, or with ``auto`` the PDK of ``gds_path``; InputError for unknown names
    and for our PDK's checks on a foundry chip (they would find none of its layers)."""
    if name == AUTO and gds_path is not None:
        return detect(gds_path)
    pdks.check_name(name)
    if gds_path is not None and name == "optinc" and (drawn := detect(gds_path)) != name:
        raise InputError(
            f"{str(gds_path)!r} is a {drawn} chip (top cell Cell0_...); our PDK's checks see none of its "
            f"layers: use --pdk auto or --pdk {drawn}"
        )
    return name


def model_set(requested: str, pdk: str) -> str:
    """The simulator's model set: ``pdk`` means the chosen PDK's own models."""
    return "cornerstone-si220" if requested == "pdk" and pdk == "cornerstone-si220" else requested


def write_layout(
    program: PhaseProgram,
    gds_path: str | os.PathLike[str],
    *,
    pdk: str = pdks.DEFAULT_PDK,
    png_path: str | os.PathLike[str] | None = None,
    layer_names: Sequence[str] = (),
    route: bool = True,
    io: str = "grating",
    pads: str = "auto",
    strict: bool = False,
    institution: str | None = None,
) -> Any:
    """Draw and write the chip with ``pdk``; the ``layout.LayoutResult``. ``institution``
    names a foundry chip's top cell (``Cell0_<institution>``)."""
    pdks.require(pdk)
    if pdk == "optinc":
        if institution is not None:
            raise InputError("--institution names the top cell of foundry chips; our PDK's is optinc_chip")
        from optinc_compiler import layout

        layout.activate_pdk()
        return layout.write_layout(
            program,
            gds_path,
            png_path=png_path,
            layer_names=layer_names,
            route=route,
            io=io,
            pads=pads,
            strict=strict,
        )
    if io != "grating":
        raise InputError(f"I/O couplers {io!r}: the {pdk} die has grating couplers only; allowed: grating")
    if pads not in ("auto", "edge"):
        raise InputError(f"pads {pads!r}: the {pdk} die has edge pad rows only; allowed: auto, edge")
    if not route:
        raise InputError(f"--no-route: the {pdk} flow always wires its heaters to the die's pads")
    from optinc_compiler.cornerstone.chip import write_chip
    from optinc_compiler.files import check_output
    from optinc_compiler.gds import LAYOUT_SUFFIXES

    for path in (gds_path, png_path):
        if path is not None:
            check_output(Path(path))
    if Path(gds_path).suffix.lower() not in LAYOUT_SUFFIXES:
        raise InputError(f"layout file {str(gds_path)!r} must end in .gds or .oas")
    from optinc_compiler.cornerstone import tech

    name = institution or tech.INSTITUTION
    return write_chip(program, gds_path, png_path=png_path, layer_names=layer_names, institution=name)


def top_cell(pdk: str) -> str:
    """The top cell's name on chips of ``pdk`` (a foundry chip's default)."""
    if pdk == "optinc":
        from optinc_compiler.layout import CHIP_CELL

        return CHIP_CELL
    from optinc_compiler.cornerstone import tech

    return tech.TOP_CELL


def default_calibration(pdk: str, program: PhaseProgram) -> Any:
    """The heater program's calibration when none is given: the PDK's heater model
    (``pdks.PdkInfo.heater``; its ``source`` names it) and its thermal crosstalk;
    ``None`` for our PDK (the calibration module's defaults are its numbers). On the
    foundry chip the crosstalk links come from the drawn heaters' distances
    (``cornerstone.chip.crosstalk_links``), not from our grid's distance model."""
    from optinc_compiler.calibration import Calibration, HeaterCal

    if pdks.check_name(pdk) == "optinc":
        return None
    from optinc_compiler.cornerstone.chip import crosstalk_links, plan_chip

    h = pdks.get(pdk).heater
    return Calibration(
        name=f"{pdk}-default",
        v_max_V=h.v_max_V,
        default=HeaterCal(p_pi_mW=h.p_pi_mW, resistance_ohm=h.resistance_ohm),
        crosstalk=crosstalk_links(plan_chip(_one_layer(program, ()))),
        distance_model=False,
    )


def heater_calibration(pdk: str, program: PhaseProgram, chip: Any = None) -> Any:
    """The calibration the heater program uses on ``pdk``: ``chip`` (a file read with
    ``load_calibration(..., heater=pdks.get(pdk).heater)``, so what it omits is the
    PDK's) or ``default_calibration``. On the foundry chip its crosstalk joins the
    drawn heaters' links (the file's coefficient wins for a pair both name)."""
    base = default_calibration(pdk, program)
    if chip is None or base is None:
        return chip if chip is not None else base
    own = {(v, a): c for v, a, c in chip.crosstalk}
    drawn = tuple(link for link in base.crosstalk if (link[0], link[1]) not in own)
    return dataclasses.replace(chip, crosstalk=(*drawn, *chip.crosstalk), distance_model=False)


def drc(gds_path: str | os.PathLike[str], *, pdk: str, connectivity: bool = True) -> Any:
    """The PDK's DRC of a GDS (a ``drc.DrcReport``)."""
    pdks.require(pdk)
    if pdk == "optinc":
        from optinc_compiler import drc as own

        return own.check_gds(gds_path, connectivity=connectivity)
    from optinc_compiler.cornerstone import drc as foundry

    return foundry.check_gds(gds_path, connectivity=connectivity)


def _one_layer(program: PhaseProgram, layer_names: Sequence[str]) -> Layer:
    layers = [program.layer(n) for n in layer_names] if layer_names else list(program.layers)
    if len(layers) != 1:
        raise InputError(
            f"a cornerstone-si220 chip holds one layer; the program has {len(layers)} "
            f"({', '.join(layer.name for layer in layers)})"
        )
    return layers[0]


def foundry_lvs(
    gds_path: str | os.PathLike[str], program: PhaseProgram, layer_names: Sequence[str] = ()
) -> Any:
    """LVS of a CORNERSTONE chip (``cornerstone.lvs.CornerstoneLvs``)."""
    pdks.require("cornerstone-si220")
    from optinc_compiler.cornerstone import lvs

    return lvs.extract(gds_path, _one_layer(program, layer_names))


def layout_targets(
    gds_path: Path,
    program: PhaseProgram,
    layers: Sequence[Layer],
    matrices: Mapping[str, Any],
    *,
    models: str,
) -> list[Any]:
    """The circuits drawn in ``gds_path`` to simulate with ``models`` (``verify``)."""
    from optinc_compiler import verify

    pdk = detect(gds_path)
    if pdk == "optinc":
        return verify.layout_targets(gds_path, program, layers, matrices)
    result = foundry_lvs(gds_path, program, [layer.name for layer in layers])
    if not result.equal:
        raise InputError(f"{str(gds_path)!r} is not this program's chip: {result.mismatches[0]}")
    netlist = result.netlist
    if models != "cornerstone-si220":  # other models know no slots
        netlist = dataclasses.replace(
            netlist,
            instances=tuple(
                dataclasses.replace(i, settings=tuple(kv for kv in i.settings if kv[0] != "slots"))
                for i in netlist.instances
            ),
        )
    layer = program.layer(result.layer)
    return [verify.Target(layer, netlist, matrices[layer.name])]
