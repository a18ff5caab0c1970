"""Size and power sanity: warnings when a chip exceeds its PDK's limits (``pdk.tech.LIMITS``).

A die larger than one reticle field cannot be exposed in one shot, and heater power
beyond what the package takes away heats the whole chip; both are legal layouts that no
fab or lab would want, so the flow says so (stderr and the build report) and, with
``--strict``, stops (exit 3) before writing the file that carries the problem.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from optinc_compiler.errors import InputError, VerificationError
from pdk import tech

#: DAC resolutions the heater drivers may have (design files, ``--dac-bits``, the lab program).
DAC_BITS_RANGE = (1, 24)
#: Monte Carlo samples a verification may draw (design files and ``--monte-carlo``).
MAX_MONTE_CARLO_SAMPLES = 1_000_000
#: Wavelengths of a sweep (design files and ``--sweep``).
SWEEP_POINTS_RANGE = (2, 10_001)


#: Layers with more MZIs than this report their progress on stderr in the long stages.
PROGRESS_MZIS = 5_000


def report_progress(stage: str, layer_name: str, n_mzis: int, k: int, n_layers: int) -> None:
    """One INFO line before a long stage works on a large layer (``PROGRESS_MZIS``)."""
    if n_mzis > PROGRESS_MZIS:
        logging.getLogger(f"optinc.{stage}").info(
            "%s: layer %s (%d of %d, %s MZIs) ...", stage, layer_name, k + 1, n_layers, f"{n_mzis:,}"
        )


class LimitError(VerificationError):
    """A limit warning that ``--strict`` turned into an error."""


def die_warnings(width_um: float, height_um: float, *, limits: tech.Limits | None = None) -> tuple[str, ...]:
    """One warning when the die does not fit one reticle field in either orientation
    (``limits``: the PDK's, ``pdk.tech.LIMITS``, unless given)."""
    short, long = sorted((limits or tech.LIMITS).reticle_um)
    if min(width_um, height_um) <= short and max(width_um, height_um) <= long:
        return ()
    return (
        f"die {width_um:,.0f} x {height_um:,.0f} um exceeds one reticle field "
        f"({short:,.0f} x {long:,.0f} um): no fab exposes it in one shot; split the design",
    )


def power_warnings(total_mW: float, *, budget_mW: float) -> tuple[str, ...]:
    """One warning when the heaters draw more than ``budget_mW`` in all."""
    if total_mW <= budget_mW:
        return ()
    return (
        f"heater power {total_mW:,.1f} mW exceeds the budget of {budget_mW:,.1f} mW "
        "(set another with --power-budget-mW or the design's heater_power_budget_mW)",
    )


def check_budget(budget_mW: float) -> float:
    """A power budget must be a finite number > 0 (mW)."""
    if not (budget_mW > 0 and budget_mW < float("inf")):
        raise InputError(f"heater power budget {budget_mW!r} mW; allowed: a finite number > 0")
    return float(budget_mW)


def enforce(warnings: Sequence[str], *, strict: bool) -> tuple[str, ...]:
    """The warnings, or LimitError naming them all when ``strict``."""
    if strict and warnings:
        raise LimitError("--strict: " + "; ".join(warnings))
    return tuple(warnings)
