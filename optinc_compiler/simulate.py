"""S-matrices of compiled layers from the shared netlist and the PDK's sax models.

Fast path (DESIGN.md, "Verification at scale"): a layer's grid is feed-forward, so its
S-matrix is the product of its columns. Each column's cells are evaluated with their
sax models in one vectorised call per cell kind (all instances, all wavelengths), and
the column is applied to the fields of every input at once: O(columns) numpy steps.
The flat ``sax.circuit`` of the same netlist is the cross-check (``flat_smatrix``)
and the path for arbitrary netlists.

Matrices are ``S[wl, out, in]`` for the layer's ``out x in`` ports, without the layer
``scale``; ``fidelity`` compares them with a target after removing that known scale.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from optinc_compiler.netlist import Instance, Netlist, layer_netlist
from optinc_compiler.program import Layer

MODEL_SETS = ("ideal", "pdk")


def _models(model_set: str) -> dict[str, Callable[..., Any]]:
    from optinc_compiler.errors import InputError

    if model_set not in MODEL_SETS:
        raise InputError(f"unknown model set {model_set!r}; allowed: {', '.join(MODEL_SETS)}")
    from pdk.models import models

    return models(ideal=model_set == "ideal")


def layer_smatrix(
    layer: Layer, *, wl_um: Sequence[float] | float = 1.55, model_set: str = "pdk"
) -> npt.NDArray[np.complex128]:
    """``S[wl, out, in]`` of a compiled layer (without its scale), column by column."""
    netlist = layer_netlist(layer)
    return netlist_smatrix(
        netlist, n_in=layer.shape[1], n_out=layer.shape[0], wl_um=wl_um, model_set=model_set
    )


def netlist_smatrix(
    netlist: Netlist, *, n_in: int, n_out: int, wl_um: Sequence[float] | float = 1.55, model_set: str = "pdk"
) -> npt.NDArray[np.complex128]:
    """Compose a grid netlist's columns (fields of shape (wl, modes, inputs)).

    Each cell kind's model runs once for all its instances and wavelengths; the
    columns are then applied with numpy alone."""
    wl = np.atleast_1d(np.asarray(wl_um, dtype=np.float64))
    coefficients = _coefficients(netlist.instances, _models(model_set), wl)
    fields = np.zeros((wl.size, netlist.n_modes, n_in), dtype=np.complex128)
    fields[:, np.arange(n_in), np.arange(n_in)] = 1.0
    columns: dict[int, list[int]] = defaultdict(list)
    for k, inst in enumerate(netlist.instances):
        columns[inst.column].append(k)
    rows = np.array([inst.mode for inst in netlist.instances])
    two_by_two = np.array([inst.component == "mzi" for inst in netlist.instances])
    for c in range(netlist.n_columns):
        idx = np.array(columns[c])
        fields = _apply_column(fields, coefficients[:, :, idx], rows[idx], two_by_two[idx])
    return fields[:, :n_out, :]


def _coefficients(
    instances: Sequence[Instance], models: dict[str, Callable[..., Any]], wl: npt.NDArray[np.float64]
) -> npt.NDArray[np.complex128]:
    """(4, wl, instances): T00, T01, T10, T11 of each MZI; (t, 0, 0, 0) of 2-port cells."""
    out = np.zeros((4, wl.size, len(instances)), dtype=np.complex128)
    by_kind: dict[str, list[int]] = defaultdict(list)
    for k, inst in enumerate(instances):
        by_kind[inst.component].append(k)
    for kind, idx in by_kind.items():
        group = [instances[k] for k in idx]
        names = dict(group[0].settings)
        settings = {n: np.array([dict(i.settings)[n] for i in group])[None, :] for n in names}
        s = models[kind](wl=wl[:, None], **settings)
        ports = [("o2", "o3"), ("o1", "o3"), ("o2", "o4"), ("o1", "o4")] if kind == "mzi" else [("o1", "o2")]
        for e, (a, b) in enumerate(ports):
            out[e][:, idx] = np.broadcast_to(np.asarray(s[a, b], dtype=np.complex128), (wl.size, len(idx)))
    return out


def _apply_column(
    fields: npt.NDArray[np.complex128],
    t: npt.NDArray[np.complex128],
    rows: npt.NDArray[np.int64],
    two_by_two: npt.NDArray[np.bool_],
) -> npt.NDArray[np.complex128]:
    """One column: 2x2 blocks on rows (m, m+1) of MZIs, a factor on 2-port rows."""
    out = np.empty_like(fields)
    m, one = rows[two_by_two], rows[~two_by_two]
    tm, to = t[:, :, two_by_two, None], t[:, :, ~two_by_two, None]
    upper, lower = fields[:, m, :], fields[:, m + 1, :]
    out[:, m, :] = tm[0] * upper + tm[1] * lower
    out[:, m + 1, :] = tm[2] * upper + tm[3] * lower
    out[:, one, :] = to[0] * fields[:, one, :]
    return out


def flat_smatrix(
    netlist: Netlist, *, n_in: int, n_out: int, wl_um: float = 1.55, model_set: str = "pdk"
) -> npt.NDArray[np.complex128]:
    """``S[out, in]`` of the netlist through one flat ``sax.circuit`` (small N only)."""
    import sax

    circuit, _ = sax.circuit(netlist.to_dict(), models=_models(model_set))
    s = circuit(wl=wl_um)
    return np.array([[complex(s[f"in{j}", f"out{i}"]) for j in range(n_in)] for i in range(n_out)])


@dataclass(frozen=True)
class Fidelity:
    """How well a simulated layer matches its target at one wavelength."""

    fidelity: float
    max_abs_error: float
    insertion_loss_dB: float


def fidelity(
    simulated: npt.NDArray[np.complex128], target: npt.NDArray[np.complex128], *, scale: float
) -> Fidelity:
    """``|tr(S^H W)|^2 / (tr(S^H S) tr(W^H W))`` with ``S = scale * simulated``; the
    largest element error of ``a S - W`` with the best complex factor ``a`` (global loss
    and propagation phase, which the electronic gain calibrates out); and the insertion
    loss of all paths together (``sum |S|^2`` against ``sum |W|^2``)."""
    s = scale * simulated
    overlap = np.vdot(s, target)
    power_s = np.vdot(s, s).real
    aligned = s * (overlap / power_s) if power_s > 0 else s
    num = abs(overlap) ** 2
    den = np.vdot(s, s).real * np.vdot(target, target).real
    fid = float(num / den) if den > 0 else float(np.allclose(s, target))
    ideal_power = np.sum(np.abs(target) ** 2)
    power = np.sum(np.abs(s) ** 2)
    loss_dB = float(-10 * np.log10(power / ideal_power)) if ideal_power > 0 and power > 0 else 0.0
    loss_dB = loss_dB if abs(loss_dB) > 1e-9 else 0.0
    return Fidelity(
        fidelity=fid, max_abs_error=float(np.abs(aligned - target).max()), insertion_loss_dB=loss_dB
    )
