"""S-matrices of compiled circuits from the shared netlist and the PDK's sax models.

Fast path (docs/architecture.md, "Verification at scale"): the circuits are feed-forward, so a
netlist's S-matrix is a product of its levels (a grid column is one level). Each cell
kind's sax model runs once for all its instances, wavelengths and Monte Carlo samples;
the levels are then applied to the fields of every input at once with numpy. The plan
(``feed_forward_plan``) follows the netlist's connections, not the grid, so a netlist
extracted from a layout, with whatever a drawing error did to it, simulates the same
way. The flat ``sax.circuit`` of a netlist is the cross-check (``flat_smatrix``).

Matrices are ``S[..., wl, out, in]`` for the layer's ``out x in`` ports, without the
layer ``scale``; ``fidelity`` compares them with a target after removing that scale.

Fabrication and control errors (``Variability``) are model settings (``pdk.models``):
per coupler a shift of the power coupling kappa^2 (Gaussian, ``coupler_sigma``), per
heater a phase error (Gaussian, ``phase_sigma_rad``), per cell an extra waveguide loss
(half-normal, ``loss_sigma_dB``). A sample is the netlist with other settings, so the
flat circuit checks the fast path on samples too.
"""

from __future__ import annotations

import functools
import itertools
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from optinc_compiler.errors import InputError
from optinc_compiler.netlist import TWO_ROW, Instance, Netlist, layer_netlist
from optinc_compiler.program import Layer
from pdk.tech import PORTS

#: ``pdk``: our PDK's models (``pdk.models``); ``cornerstone-si220``: the foundry's, for
#: our CORNERSTONE cells (``optinc_compiler.cornerstone.models``; cells carry ``slots``).
MODEL_SETS = ("ideal", "pdk", "cornerstone-si220")
#: Cells with two rows (upper = mode m, lower = m+1); every other cell has one row.
TWO_BY_TWO = TWO_ROW
#: Settings a Monte Carlo sample perturbs, per cell kind (``pdk.models`` declares them);
#: every other cell (waveguides, bypasses) gets an extra loss only.
ERROR_SETTINGS: dict[str, tuple[str, ...]] = {
    "mzi": ("theta_rad", "phi_rad", "dkappa2_1", "dkappa2_2", "loss_dB"),
    "attenuator": ("theta_error_rad", "phi_error_rad", "dkappa2_1", "dkappa2_2", "loss_dB"),
    "phase_shifter": ("phase_rad", "loss_dB"),
}
_LOSS_ONLY = ("loss_dB",)
#: Monte Carlo samples per vectorised evaluation; fixed so results do not depend on memory.
MC_CHUNK = 128

Complex = npt.NDArray[np.complex128]
Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


def _models(model_set: str) -> dict[str, Callable[..., Any]]:
    if model_set not in MODEL_SETS:
        raise InputError(f"unknown model set {model_set!r}; allowed: {', '.join(MODEL_SETS)}")
    if model_set == "cornerstone-si220":
        from optinc_compiler.cornerstone.models import models as foundry_models

        return foundry_models()
    from pdk.models import models

    return models(ideal=model_set == "ideal")


def enable_x64() -> None:
    """Float64 and complex128 in JAX (sax switches it on when imported; the fast paths
    do not import sax, and float32 would limit every fidelity to ~1e-7)."""
    import jax

    jax.config.update("jax_enable_x64", True)


@functools.cache
def _jitted_models(model_set: str) -> dict[str, Callable[..., Any]]:
    """The models, each under ``jax.jit``: one XLA compile per cell kind and array shape
    (cached for the process) instead of one per operation of an eager call."""
    enable_x64()
    import jax

    return {kind: jax.jit(model) for kind, model in _models(model_set).items()}


def _bucket(n: int) -> int:
    """Instance counts are padded to powers of two (>= 8), so few shapes compile."""
    return max(8, 1 << (n - 1).bit_length())


# --- the plan: slots (one per waveguide chain) and levels ----------------------------


def _rows(component: str) -> tuple[tuple[str, str], ...]:
    """(input, output) port of each row a cell carries."""
    if component in TWO_BY_TWO:
        return ((PORTS.upper_in, PORTS.upper_out), (PORTS.lower_in, PORTS.lower_out))
    return ((PORTS.through_in, PORTS.through_out),)


@dataclass(frozen=True)
class Level:
    """Instances that light meets at the same depth: 2x2 cells on (upper, lower) slots
    and 2-port cells on one slot each. Indices refer to ``Netlist.instances``."""

    pairs: Ints
    upper_slots: Ints
    lower_slots: Ints
    singles: Ints
    single_slots: Ints


@dataclass(frozen=True)
class FeedForwardPlan:
    """How to compose a feed-forward netlist: a slot per chain of connected waveguide
    rows holds that chain's field; levels are applied in order."""

    n_slots: int
    input_slots: Ints
    output_slots: Ints
    levels: tuple[Level, ...]


@functools.lru_cache(maxsize=16)
def feed_forward_plan(netlist: Netlist, *, n_in: int, n_out: int) -> FeedForwardPlan:
    """Slots and levels of ``netlist`` (InputError for loops, unknown or doubly used ports);
    cached, so repeated evaluations of one netlist (sweeps, reruns) plan once. 2-port
    cells are reciprocal: one met from its ``o2`` side (an input grating: fibre first)
    is used backwards."""
    index = {inst.name: k for k, inst in enumerate(netlist.instances)}
    flipped = _backwards(netlist, n_in)
    inputs: dict[str, str] = {}  # "inst,port" -> "inst,port" of the same row's output
    outputs: set[str] = set()
    for inst in netlist.instances:
        for a, b in _rows(inst.component):
            a, b = (b, a) if inst.name in flipped else (a, b)
            inputs[f"{inst.name},{a}"] = f"{inst.name},{b}"
            outputs.add(f"{inst.name},{b}")
    parent = {p: p for p in itertools.chain(inputs, outputs)}

    def find(p: str) -> str:
        while parent[p] != p:
            parent[p] = parent[parent[p]]
            p = parent[p]
        return p

    for a, b in inputs.items():
        parent[find(b)] = find(a)
    driver: dict[str, str] = {}  # input port -> the output port driving it
    driving: set[str] = set()
    for a, b in netlist.connections:
        for p in (a, b):
            if p not in parent:
                raise InputError(f"netlist {netlist.name!r}: connection {a} - {b} uses an unknown port {p}")
        src, dst = (a, b) if a in outputs else (b, a)
        if src not in outputs or dst not in inputs:
            both = "outputs" if a in outputs else "inputs"
            raise InputError(f"netlist {netlist.name!r}: connection {a} - {b} joins two {both}")
        if dst in driver or src in driving:
            raise InputError(
                f"netlist {netlist.name!r}: port {dst if dst in driver else src} is connected twice"
            )
        driver[dst] = src
        driving.add(src)
        parent[find(dst)] = find(src)
    ports = dict(netlist.ports)
    in_ports = [_external(netlist, ports, f"in{j}", inputs) for j in range(n_in)]
    out_ports = [_external(netlist, ports, f"out{i}", outputs) for i in range(n_out)]
    roots: dict[str, int] = {}
    for p in itertools.chain(in_ports, inputs):
        roots.setdefault(find(p), len(roots))
    for p in itertools.chain(out_ports, outputs):
        roots.setdefault(find(p), len(roots))
    slot = {p: roots[find(p)] for p in parent}
    levels = _levels(netlist, index, driver)
    return FeedForwardPlan(
        n_slots=len(roots),
        input_slots=np.array([slot[p] for p in in_ports], dtype=np.int64),
        output_slots=np.array([slot[p] for p in out_ports], dtype=np.int64),
        levels=tuple(_level(netlist.instances, members, slot, flipped) for members in levels),
    )


def _backwards(netlist: Netlist, n_in: int) -> set[str]:
    """2-port instances that light, followed from the layer inputs, enters at ``o2``."""
    component = {inst.name: inst.component for inst in netlist.instances}
    other = {}
    for a, b in netlist.connections:
        other[a], other[b] = b, a
    ports = dict(netlist.ports)
    queue = [ports[f"in{j}"] for j in range(n_in) if f"in{j}" in ports]
    seen, flipped = set(queue), set()
    while queue:
        name, port = queue.pop().rsplit(",", 1)
        kind = component.get(name)
        exits: tuple[str, ...]
        if kind is None or kind in TWO_BY_TWO:
            exits = (PORTS.upper_out, PORTS.lower_out) if kind is not None else ()
        elif port == PORTS.through_out:
            flipped.add(name)
            exits = (PORTS.through_in,)
        else:
            exits = (PORTS.through_out,)
        for e in exits:
            nxt = other.get(f"{name},{e}")
            if nxt is not None and nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return flipped


def _external(
    netlist: Netlist, ports: dict[str, str], name: str, allowed: Mapping[str, Any] | set[str]
) -> str:
    port = ports.get(name)
    if port is None or port not in allowed:
        raise InputError(
            f"netlist {netlist.name!r}: port {name} is {port or 'missing'}, not a cell {name[:-1]}put"
        )
    return port


def _levels(netlist: Netlist, index: dict[str, int], driver: dict[str, str]) -> list[list[int]]:
    """Instances grouped by depth (longest chain of connections from an input)."""
    successors: dict[int, set[int]] = defaultdict(set)
    for dst, src in driver.items():
        successors[index[src.split(",")[0]]].add(index[dst.split(",")[0]])
    indegree = [0] * len(netlist.instances)
    for targets in successors.values():
        for t in targets:
            indegree[t] += 1
    depth = [0] * len(netlist.instances)
    ready = [k for k, d in enumerate(indegree) if d == 0]
    done = 0
    while ready:
        k = ready.pop()
        done += 1
        for t in successors[k]:
            depth[t] = max(depth[t], depth[k] + 1)
            indegree[t] -= 1
            if indegree[t] == 0:
                ready.append(t)
    if done < len(netlist.instances):
        stuck = next(netlist.instances[k].name for k, d in enumerate(indegree) if d > 0)
        raise InputError(f"netlist {netlist.name!r} is not feed-forward: a loop runs through {stuck}")
    groups: list[list[int]] = [[] for _ in range(max(depth, default=-1) + 1)]
    for k, d in enumerate(depth):
        groups[d].append(k)
    return groups


def _level(
    instances: Sequence[Instance], members: list[int], slot: dict[str, int], flipped: set[str]
) -> Level:
    pairs = [k for k in members if instances[k].component in TWO_BY_TWO]
    singles = [k for k in members if instances[k].component not in TWO_BY_TWO]

    def slots(ks: list[int], port: str) -> Ints:
        return np.array([slot[f"{instances[k].name},{port}"] for k in ks], dtype=np.int64)

    def entry(k: int) -> str:
        return PORTS.through_out if instances[k].name in flipped else PORTS.through_in

    return Level(
        pairs=np.array(pairs, dtype=np.int64),
        upper_slots=slots(pairs, PORTS.upper_in),
        lower_slots=slots(pairs, PORTS.lower_in),
        singles=np.array(singles, dtype=np.int64),
        single_slots=np.array([slot[f"{instances[k].name},{entry(k)}"] for k in singles], dtype=np.int64),
    )


# --- cell coefficients and composition ------------------------------------------------


def _coefficients(
    instances: Sequence[Instance],
    models: Mapping[str, Callable[..., Any]],
    wl: Floats,
    errors: Mapping[str, Floats] | None = None,
) -> Complex:
    """(4, samples, wl, instances): T00, T01, T10, T11 of each 2x2 cell, (t, 0, 0, 0) of
    each 2-port cell; one model call per cell kind. ``errors`` maps a setting name to
    per-sample offsets of shape (samples, instances)."""
    n_samples = 1 if not errors else next(iter(errors.values())).shape[0]
    out = np.zeros((4, n_samples, wl.size, len(instances)), dtype=np.complex128)
    groups: dict[tuple[str, tuple[str, ...]], list[int]] = defaultdict(list)
    for k, inst in enumerate(instances):
        groups[inst.component, tuple(name for name, _ in inst.settings)].append(k)
    for (kind, names), idx in groups.items():
        if kind not in models:
            raise InputError(
                f"no model for cell {kind!r} (instance {instances[idx[0]].name}); "
                f"known cells: {', '.join(sorted(models))}"
            )
        kwargs: dict[str, Any] = {
            n: np.array([instances[k].settings[j][1] for k in idx])[None, None, :]
            for j, n in enumerate(names)
        }
        if errors is not None:
            for n in ERROR_SETTINGS.get(kind, _LOSS_ONLY):
                kwargs[n] = kwargs.get(n, 0.0) + errors[n][:, None, idx]
        pad = _bucket(len(idx)) - len(idx)
        kwargs = {n: np.pad(v, [(0, 0), (0, 0), (0, pad)], mode="edge") for n, v in kwargs.items()}
        s = models[kind](wl=wl[None, :, None], **kwargs)
        shape = (n_samples, wl.size, len(idx) + pad)
        for e, (a, b) in enumerate(_entries(kind)):
            out[e][..., idx] = np.broadcast_to(np.asarray(s[a, b], dtype=np.complex128), shape)[
                ..., : len(idx)
            ]
    return out


def _entries(kind: str) -> tuple[tuple[str, str], ...]:
    """S-dict keys of T00, T01, T10, T11 (2x2 cells) or of t (2-port cells)."""
    if kind in TWO_BY_TWO:
        up_in, up_out, lo_in, lo_out = PORTS.upper_in, PORTS.upper_out, PORTS.lower_in, PORTS.lower_out
        return ((up_in, up_out), (lo_in, up_out), (up_in, lo_out), (lo_in, lo_out))
    return ((PORTS.through_in, PORTS.through_out),)


def _compose(plan: FeedForwardPlan, t: Complex, n_in: int) -> Complex:
    """Apply the levels to unit fields on the inputs: (samples, wl, out, in)."""
    fields = np.zeros((*t.shape[1:3], plan.n_slots, n_in), dtype=np.complex128)
    fields[:, :, plan.input_slots, np.arange(n_in)] = 1.0
    for level in plan.levels:
        if level.pairs.size:
            tp = t[:, :, :, level.pairs, None]
            upper, lower = fields[:, :, level.upper_slots, :], fields[:, :, level.lower_slots, :]
            fields[:, :, level.upper_slots, :] = tp[0] * upper + tp[1] * lower
            fields[:, :, level.lower_slots, :] = tp[2] * upper + tp[3] * lower
        if level.singles.size:
            fields[:, :, level.single_slots, :] *= t[0][:, :, level.singles, None]
    return fields[:, :, plan.output_slots, :]


def netlist_smatrix(
    netlist: Netlist, *, n_in: int, n_out: int, wl_um: Sequence[float] | float = 1.55, model_set: str = "pdk"
) -> Complex:
    """``S[wl, out, in]`` of a feed-forward netlist, level by level."""
    wl = np.atleast_1d(np.asarray(wl_um, dtype=np.float64))
    plan = feed_forward_plan(netlist, n_in=n_in, n_out=n_out)
    return _compose(plan, _coefficients(netlist.instances, _jitted_models(model_set), wl), n_in)[0]


def sample_smatrices(
    netlist: Netlist,
    errors: Mapping[str, Floats],
    *,
    n_in: int,
    n_out: int,
    wl_um: Sequence[float] | float = 1.55,
    model_set: str = "pdk",
) -> Complex:
    """``S[sample, wl, out, in]`` of the netlist with per-sample setting offsets
    (``sample_errors``), all samples in one vectorised evaluation."""
    wl = np.atleast_1d(np.asarray(wl_um, dtype=np.float64))
    plan = feed_forward_plan(netlist, n_in=n_in, n_out=n_out)
    return _compose(plan, _coefficients(netlist.instances, _jitted_models(model_set), wl, errors), n_in)


def layer_smatrix(layer: Layer, *, wl_um: Sequence[float] | float = 1.55, model_set: str = "pdk") -> Complex:
    """``S[wl, out, in]`` of a compiled layer (without its scale)."""
    return netlist_smatrix(
        layer_netlist(layer), n_in=layer.shape[1], n_out=layer.shape[0], wl_um=wl_um, model_set=model_set
    )


def flat_smatrix(
    netlist: Netlist, *, n_in: int, n_out: int, wl_um: float = 1.55, model_set: str = "pdk"
) -> Complex:
    """``S[out, in]`` of the netlist through one flat ``sax.circuit`` (small N only)."""
    import sax

    circuit, _ = sax.circuit(netlist.to_dict(), models=_models(model_set))
    s = circuit(wl=wl_um)
    return np.array([[complex(s[f"in{j}", f"out{i}"]) for j in range(n_in)] for i in range(n_out)])


# --- metrics ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Fidelity:
    """How well a simulated layer matches its target at one wavelength.

    ``path_loss_dB[j]``: power lost from input j against the target's column j;
    ``max_column_power``: the most power any input delivers to the outputs in the
    simulated circuit itself (at most 1 in a passive chip; see :func:`column_power`)."""

    fidelity: float
    max_abs_error: float
    insertion_loss_dB: float
    path_loss_dB: tuple[float, ...]
    max_column_power: float


def fidelity(simulated: Complex, target: Complex, *, scale: float) -> Fidelity:
    """``|tr(S^H W)|^2 / (tr(S^H S) tr(W^H W))`` with ``S = scale * simulated``; the
    largest element error of ``a S - W`` with the best complex factor ``a`` (global loss
    and propagation phase, which the electronic gain calibrates out); the insertion loss
    of all paths together (``sum |S|^2`` against ``sum |W|^2``) and per input."""
    fid, err, loss = fidelity_arrays(simulated, target, scale=scale)
    s, w, _ = _normalised(simulated, target, scale)
    return Fidelity(
        fidelity=float(fid),
        max_abs_error=float(err),
        insertion_loss_dB=float(loss),
        path_loss_dB=tuple(
            float(x) for x in _loss_db(np.sum(np.abs(s) ** 2, -2), np.sum(np.abs(w) ** 2, -2))
        ),
        max_column_power=float(np.max(column_power(simulated), initial=0.0)),
    )


def column_power(simulated: Complex) -> Floats:
    """``sum_i |S[i, j]|^2`` per input j of a stack ``(..., out, in)``: the power input
    j delivers to the outputs. A passive circuit has every entry <= 1; more is a gain,
    which no chip of couplers, waveguides and heaters has (a wrong model or netlist)."""
    return np.asarray(np.sum(np.abs(np.asarray(simulated)) ** 2, axis=-2))


def fidelity_arrays(simulated: Complex, target: Complex, *, scale: float) -> tuple[Floats, Floats, Floats]:
    """Fidelity, max element error and insertion loss (dB) of a stack ``(..., out, in)``."""
    s, target, unit = _normalised(simulated, target, scale)
    overlap = np.sum(s.conj() * target, axis=(-2, -1))
    power_s = np.sum(np.abs(s) ** 2, axis=(-2, -1))
    power_w = float(np.sum(np.abs(target) ** 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        factor = np.where(power_s > 0, overlap / np.where(power_s > 0, power_s, 1.0), 1.0)
        den = power_s * power_w
        fid = np.where(den > 0, np.abs(overlap) ** 2 / np.where(den > 0, den, 1.0), 0.0)
    if power_w == 0:
        fid = np.where(power_s == 0, 1.0, 0.0)
    err = unit * np.max(np.abs(factor[..., None, None] * s - target), axis=(-2, -1))
    return fid, err, _loss_db(power_s, np.full_like(power_s, power_w))


def _normalised(simulated: Complex, target: Complex, scale: float) -> tuple[Complex, Complex, float]:
    """``scale * simulated`` and ``target`` divided by the largest ``|target|`` (returned):
    the ratios above do not change, and squares of weights near 1e308 stay finite."""
    target = np.asarray(target)
    unit = float(np.max(np.abs(target), initial=0.0)) or 1.0
    return (scale / unit) * np.asarray(simulated), target / unit, unit


def _loss_db(power: Floats, ideal_power: Floats) -> Floats:
    """``-10 log10(power / ideal)``; 0 where either is zero or the loss is below 1e-9 dB."""
    ok = (power > 0) & (ideal_power > 0)
    loss = np.where(ok, -10 * np.log10(np.where(ok, power, 1.0) / np.where(ok, ideal_power, 1.0)), 0.0)
    return np.where(np.abs(loss) > 1e-9, loss, 0.0)


# --- wavelength sweep and Monte Carlo ---------------------------------------------------


@dataclass(frozen=True)
class Sweep:
    """Fidelity, insertion loss and max element error of one layer against wavelength."""

    wl_um: tuple[float, ...]
    fidelity: tuple[float, ...]
    insertion_loss_dB: tuple[float, ...]
    max_abs_error: tuple[float, ...]
    #: the largest ``column_power`` at any wavelength (at most 1 when passive)
    max_column_power: float


def sweep(
    netlist: Netlist,
    target: Complex,
    *,
    scale: float,
    wl_um: Sequence[float],
    model_set: str = "pdk",
    chip_errors: Mapping[str, Floats] | None = None,
) -> Sweep:
    """The layer simulated at every wavelength at once (dispersive models: ``pdk``);
    ``chip_errors``: one sample of setting offsets, e.g. a calibrated chip's splitters."""
    n_out, n_in = target.shape
    if chip_errors is None:
        s = netlist_smatrix(netlist, n_in=n_in, n_out=n_out, wl_um=wl_um, model_set=model_set)
    else:
        s = sample_smatrices(netlist, chip_errors, n_in=n_in, n_out=n_out, wl_um=wl_um, model_set=model_set)[
            0
        ]
    fid, err, loss = fidelity_arrays(s, target, scale=scale)
    return Sweep(
        wl_um=tuple(float(w) for w in np.atleast_1d(wl_um)),
        fidelity=tuple(fid.tolist()),
        insertion_loss_dB=tuple(loss.tolist()),
        max_abs_error=tuple(err.tolist()),
        max_column_power=float(np.max(column_power(s), initial=0.0)),
    )


@dataclass(frozen=True)
class Variability:
    """Standard deviations of the fabrication and control errors of a Monte Carlo run.

    Attributes:
        coupler_sigma: of each coupler's power coupling kappa^2 (absolute; 0.5 nominal).
        phase_sigma_rad: of each heater's phase.
        loss_sigma_dB: scale of each cell's extra loss (half-normal, never a gain).
    """

    coupler_sigma: float = 0.0
    phase_sigma_rad: float = 0.0
    loss_sigma_dB: float = 0.0

    def __post_init__(self) -> None:
        for name in ("coupler_sigma", "phase_sigma_rad", "loss_sigma_dB"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise InputError(f"{name} is {value}; allowed: a finite number >= 0")


#: Order in which the errors are drawn (part of the seed's meaning: do not reorder).
_ERROR_DRAWS = (
    ("theta_rad", "phase_sigma_rad"),
    ("phi_rad", "phase_sigma_rad"),
    ("phase_rad", "phase_sigma_rad"),
    ("theta_error_rad", "phase_sigma_rad"),
    ("phi_error_rad", "phase_sigma_rad"),
    ("dkappa2_1", "coupler_sigma"),
    ("dkappa2_2", "coupler_sigma"),
    ("loss_dB", "loss_sigma_dB"),
)


def sample_errors(
    instances: Sequence[Instance], variability: Variability, n_samples: int, rng: np.random.Generator
) -> dict[str, Floats]:
    """Per-sample offsets of every perturbed setting: (samples, instances) arrays, zero
    where a cell has no such setting."""
    kinds = [inst.component for inst in instances]
    out = {}
    for name, sigma_name in _ERROR_DRAWS:
        x = rng.standard_normal((n_samples, len(instances)))
        has = np.array([name in ERROR_SETTINGS.get(k, _LOSS_ONLY) for k in kinds])
        x = np.abs(x) if name == "loss_dB" else x
        out[name] = getattr(variability, sigma_name) * x * has
    return out


@dataclass(frozen=True)
class MonteCarlo:
    """Fidelity of ``n_samples`` perturbed circuits and the yield at ``min_fidelity``."""

    seed: int
    variability: Variability
    wl_um: float
    min_fidelity: float
    fidelity: tuple[float, ...]

    @property
    def yield_fraction(self) -> float:
        """Fraction of samples at or above ``min_fidelity``."""
        return float(np.mean(np.asarray(self.fidelity) >= self.min_fidelity))


def monte_carlo(
    netlist: Netlist,
    target: Complex,
    *,
    scale: float,
    n_samples: int,
    variability: Variability,
    seed: int,
    wl_um: float = 1.55,
    model_set: str = "pdk",
    min_fidelity: float = 0.999,
    chip_errors: Mapping[str, Floats] | None = None,
) -> MonteCarlo:
    """Fidelity of perturbed copies of the circuit, ``MC_CHUNK`` samples per vectorised
    evaluation; chunk c draws from ``default_rng([seed, c])``, so a seed gives the same
    samples whatever the machine, and the first k samples of a longer run are the
    samples of a run of k. ``chip_errors`` (one sample) are added to every sample."""
    if n_samples < 1:
        raise InputError(f"Monte Carlo needs at least 1 sample, got {n_samples}")
    n_out, n_in = target.shape
    plan = feed_forward_plan(netlist, n_in=n_in, n_out=n_out)
    models, wl = _jitted_models(model_set), np.array([wl_um], dtype=np.float64)
    fids = []
    for c, start in enumerate(range(0, n_samples, MC_CHUNK)):
        rng = np.random.default_rng([seed, c])
        errors = sample_errors(netlist.instances, variability, MC_CHUNK, rng)
        for name, offset in (chip_errors or {}).items():
            errors[name] = errors[name] + offset
        s = _compose(plan, _coefficients(netlist.instances, models, wl, errors), n_in)[: n_samples - start, 0]
        fids.append(fidelity_arrays(s, target, scale=scale)[0])
    return MonteCarlo(
        seed=seed,
        variability=variability,
        wl_um=float(wl_um),
        min_fidelity=min_fidelity,
        fidelity=tuple(np.concatenate(fids).tolist()),
    )


def splitter_errors(netlist: Netlist, splitters: Mapping[str, tuple[float, float]]) -> dict[str, Floats]:
    """One sample of setting offsets: the measured power coupling of each MZI's two
    couplers (``{mzi id: (kappa2_1, kappa2_2)}``) as shifts from 0.5; zero elsewhere."""
    n = len(netlist.instances)
    errors = {name: np.zeros((1, n)) for name, _ in _ERROR_DRAWS}
    for k, inst in enumerate(netlist.instances):
        if inst.component in TWO_BY_TWO and inst.name in splitters:
            errors["dkappa2_1"][0, k] = splitters[inst.name][0] - 0.5
            errors["dkappa2_2"][0, k] = splitters[inst.name][1] - 0.5
    return errors


def perturbed_netlist(netlist: Netlist, errors: Mapping[str, Floats], sample: int) -> Netlist:
    """The netlist of one Monte Carlo sample, with the errors written into its settings
    (for the flat circuit as an independent check of the vectorised path)."""
    instances = []
    for k, inst in enumerate(netlist.instances):
        settings = dict(inst.settings)
        for n in ERROR_SETTINGS.get(inst.component, _LOSS_ONLY):
            settings[n] = settings.get(n, 0.0) + float(errors[n][sample, k])
        instances.append(
            Instance(inst.name, inst.component, inst.column, inst.mode, tuple(sorted(settings.items())))
        )
    return Netlist(
        name=netlist.name,
        id=netlist.id,
        n_modes=netlist.n_modes,
        n_columns=netlist.n_columns,
        instances=tuple(instances),
        connections=netlist.connections,
        ports=netlist.ports,
    )
