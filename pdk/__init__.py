"""The OptINC process design kit: gdsfactory cells (``pdk.cells``), sax models
(``pdk.models``) and technology data (``pdk.tech``).

Importing ``pdk`` has no side effects and does not import gdsfactory;
``pdk.get_pdk()`` builds the gdsfactory ``Pdk`` (cached) and the entry point
activates it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

NAME = "optinc"


@cache
def get_pdk() -> Any:
    """The gdsfactory PDK of OptINC (layers, cross-sections, cells)."""
    from pdk.layout_tech import build_pdk  # heavy: gdsfactory

    return build_pdk()
