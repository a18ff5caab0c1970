"""Rebuild each compiled layer from the phase program and compare it with the weights.

For exact layers (unitary, svd) the allowed relative error is ``rtol``; for the
unitary x diagonal approximations it is the approximation error recorded at compile
time plus ``rtol``, unless ``max_relative_error`` sets one bound for all layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from optinc_compiler.decompose import as_complex_matrix, relative_error
from optinc_compiler.errors import InputError
from optinc_compiler.io import NamedMatrix
from optinc_compiler.program import PhaseProgram

#: Default relative tolerance for exact layers (float64 mesh reconstruction: ~1e-14).
RTOL = 1e-9


@dataclass(frozen=True)
class LayerCheck:
    """Result of comparing one rebuilt layer with its target matrix."""

    name: str
    method: str
    exact: bool
    relative_error: float
    max_abs_error: float
    allowed_relative_error: float

    @property
    def ok(self) -> bool:
        """True when the relative error is within the allowed bound."""
        return self.relative_error <= self.allowed_relative_error


def check_program(
    program: PhaseProgram,
    weights: Sequence[NamedMatrix],
    *,
    rtol: float = RTOL,
    max_relative_error: float | None = None,
) -> tuple[LayerCheck, ...]:
    """Compare every layer of ``program`` that ``weights`` names (matched by name)."""
    results = []
    for w in weights:
        layer = program.layer(w.name)
        target = as_complex_matrix(w.matrix, what=f"layer {w.name!r}")
        if target.shape != layer.shape:
            raise InputError(
                f"layer {w.name!r} is {target.shape[0]} x {target.shape[1]} in the weights "
                f"but {layer.shape[0]} x {layer.shape[1]} in the program"
            )
        rebuilt = layer.matrix()
        if max_relative_error is not None:
            allowed = max_relative_error
        else:
            allowed = rtol if layer.exact else layer.relative_error * (1 + rtol) + rtol
        results.append(
            LayerCheck(
                name=w.name,
                method=layer.method,
                exact=layer.exact,
                relative_error=relative_error(rebuilt, target),
                max_abs_error=float(np.abs(rebuilt - target).max()),
                allowed_relative_error=allowed,
            )
        )
    return tuple(results)


def unchecked_layers(program: PhaseProgram, weights: Sequence[NamedMatrix]) -> tuple[str, ...]:
    """Names of the program's layers that no matrix of ``weights`` names (by name or id),
    which :func:`check_program` therefore leaves unchecked."""
    matched = {program.layer(w.name).name for w in weights}
    return tuple(x.name for x in program.layers if x.name not in matched)
