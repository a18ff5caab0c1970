"""gdsfactory side of the technology: layer map, cross-sections, the Pdk object."""

from __future__ import annotations

from functools import partial

import gdsfactory as gf
from gdsfactory.cross_section import cross_section
from gdsfactory.technology import LayerMap

from pdk import NAME, tech


class LAYER(LayerMap):
    """GDS layers of the OptINC PDK (the values of ``pdk.tech.LAYERS``)."""

    WG: tuple[int, int] = tech.LAYERS["WG"]
    HEATER: tuple[int, int] = tech.LAYERS["HEATER"]
    VIA: tuple[int, int] = tech.LAYERS["VIA"]
    M2: tuple[int, int] = tech.LAYERS["M2"]
    PAD: tuple[int, int] = tech.LAYERS["PAD"]
    PADOPEN: tuple[int, int] = tech.LAYERS["PADOPEN"]
    BUMP: tuple[int, int] = tech.LAYERS["BUMP"]
    FLOORPLAN: tuple[int, int] = tech.LAYERS["FLOORPLAN"]
    TAPER: tuple[int, int] = tech.LAYERS["TAPER"]
    TEXT: tuple[int, int] = tech.LAYERS["TEXT"]


CROSS_SECTIONS = {
    "strip": partial(
        cross_section,
        width=tech.WAVEGUIDE.width_um,
        layer="WG",
        radius=tech.WAVEGUIDE.bend_radius_um,
        radius_min=tech.WAVEGUIDE.bend_radius_um,
    ),
    "heater_metal": partial(
        cross_section,
        width=tech.HEATER.width_um,
        layer="HEATER",
        radius=None,
        port_names=("e1", "e2"),
        port_types=("electrical", "electrical"),
    ),
    "metal_routing": partial(
        cross_section,
        width=10.0,
        layer="M2",
        radius=None,
        port_names=("e1", "e2"),
        port_types=("electrical", "electrical"),
    ),
}


def build_pdk() -> gf.Pdk:
    """The Pdk: our layers and cross-sections, gdsfactory's generic cells plus ours."""
    from gdsfactory.get_factories import get_cells

    from pdk import cells

    all_cells = get_cells([gf.components])
    all_cells.update(cells.GRID_CELLS)
    all_cells.update(cells.IO_CELLS)
    all_cells.update(cells.PARTS)
    return gf.Pdk(name=NAME, layers=LAYER, cross_sections=CROSS_SECTIONS, cells=all_cells)
