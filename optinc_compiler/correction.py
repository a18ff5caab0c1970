"""Error-corrected compilation for imperfect splitters: phases that realise a mesh's
target on a chip whose couplers are measured (calibration ``splitters``) or sampled.

Two steps per mesh stage:

1. Local correction (Bandyopadhyay, Hamerly and Englund, "Hardware error correction
   for programmable photonics", Optica 8, 1247 (2021)): with couplers of power coupling
   ``k1^2, k2^2`` an MZI's cross power is
   ``|T01|^2 = t2^2 k1^2 + k2^2 t1^2 + 2 t1 t2 k1 k2 cos(theta')``; choose ``theta'`` so it
   equals the ideal ``cos^2(theta / 2)`` (clipped where the chip cannot reach it).
2. Global refinement: all theta, phi and output phases fitted by L-BFGS to
   ``min ||D U_chip(theta, phi) - U_target||_F^2`` (theta bounded to [0, pi], the
   program's range), with ``U_chip`` built from the PDK's
   MZI model (``pdk.models._mzi_entries``, the same coupler model ``optinc verify`` uses)
   and gradients from JAX (jitted once per mesh shape).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from optinc_compiler.errors import InputError
from optinc_compiler.mzi import TWO_PI, Mesh
from optinc_compiler.program import Layer, MeshStage, PhaseProgram
from optinc_compiler.simulate import enable_x64

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class StageCorrection:
    """A mesh stage before and after correction, as errors on the imperfect chip."""

    stage: str
    error_uncorrected: float  # ||U_chip(original phases) - U||_F / ||U||_F
    error_local: float
    error_corrected: float


def splitter_errors(stage: MeshStage, splitters: Mapping[str, tuple[float, float]]) -> tuple[Floats, Floats]:
    """``dkappa2`` of coupler 1 and 2 of each MZI (0 where not measured)."""
    d1 = np.array([splitters.get(i, (0.5, 0.5))[0] - 0.5 for i in stage.mzi_ids])
    d2 = np.array([splitters.get(i, (0.5, 0.5))[1] - 0.5 for i in stage.mzi_ids])
    return d1, d2


def chip_matrix(mesh: Mesh, d1: Floats, d2: Floats) -> npt.NDArray[np.complex128]:
    """``D T_K ... T_1`` of the mesh on a chip with coupler errors (ideal otherwise)."""
    return np.asarray(
        _forward(mesh.n_modes, _plan(mesh))(mesh.theta_rad, mesh.phi_rad, mesh.output_phases_rad, d1, d2)
    )


def local_theta(theta: Floats, d1: Floats, d2: Floats) -> Floats:
    """Step 1: the theta whose cross power on the imperfect MZI equals the ideal one's."""
    k1, k2 = np.sqrt(0.5 + d1), np.sqrt(0.5 + d2)
    t1, t2 = np.sqrt(0.5 - d1), np.sqrt(0.5 - d2)
    want = np.cos(theta / 2) ** 2
    base = t2**2 * k1**2 + k2**2 * t1**2
    cos_theta = (want - base) / np.maximum(2 * t1 * t2 * k1 * k2, 1e-12)
    return np.asarray(np.arccos(np.clip(cos_theta, -1.0, 1.0)))


def correct_stage(
    stage: MeshStage, splitters: Mapping[str, tuple[float, float]], *, max_iter: int = 500
) -> tuple[MeshStage, StageCorrection]:
    """Phases of ``stage`` that realise its ideal matrix on the chip with ``splitters``."""
    mesh = stage.mesh
    target = mesh.matrix()
    d1, d2 = splitter_errors(stage, splitters)
    norm = float(np.linalg.norm(target))

    def error(m: Mesh) -> float:
        return float(np.linalg.norm(chip_matrix(m, d1, d2) - target) / norm)

    uncorrected = error(mesh)
    local = replace(mesh, theta_rad=local_theta(mesh.theta_rad, d1, d2))
    e_local = error(local)
    refined = _refine(local, target, d1, d2, max_iter=max_iter)
    e_refined = error(refined)
    best = refined if e_refined <= e_local else local
    corrected = replace(stage, mesh=_canonical(best))
    return corrected, StageCorrection(stage.name, uncorrected, e_local, min(e_refined, e_local))


def correct_program(
    program: PhaseProgram,
    splitters: Mapping[str, tuple[float, float]],
    *,
    max_iter: int = 500,
    calibration_name: str = "splitters",
) -> tuple[PhaseProgram, tuple[StageCorrection, ...]]:
    """Every mesh stage of every layer corrected for the measured splitters (MZI ids of
    the program: an unknown one is an error naming it)."""
    from optinc_compiler.calibration import unknown_ids_problem

    problem = unknown_ids_problem(calibration_name, heaters=(), mzis=splitters, program=program)
    if problem is not None:
        raise InputError(problem)
    reports = []
    layers = []
    for layer in program.layers:
        blocks = []
        for block in layer.blocks:
            stages = []
            for stage in block.stages:
                if isinstance(stage, MeshStage) and stage.mesh.n_mzis:
                    stage, report = correct_stage(stage, splitters, max_iter=max_iter)
                    reports.append(replace(report, stage=f"{layer.name}/{report.stage}"))
                stages.append(stage)
            blocks.append(replace(block, stages=tuple(stages)))
        layers.append(_with_blocks(layer, tuple(blocks)))
    return replace(program, layers=tuple(layers)), tuple(reports)


def _with_blocks(layer: Layer, blocks: Any) -> Layer:
    return replace(layer, blocks=blocks)


def _canonical(mesh: Mesh) -> Mesh:
    """Phases in the program's ranges: theta in [0, pi] (the fit is bounded there),
    phi and the output phases wrapped into [0, 2 pi)."""

    def wrap(x: Floats) -> Floats:
        y = np.mod(x, TWO_PI)
        return np.where(y >= TWO_PI, 0.0, y)

    return replace(
        mesh,
        theta_rad=np.clip(mesh.theta_rad, 0.0, np.pi),
        phi_rad=wrap(mesh.phi_rad),
        output_phases_rad=wrap(mesh.output_phases_rad),
    )


# --- the JAX model of a mesh on an imperfect chip ----------------------------------------


@dataclass(frozen=True)
class _Plan:
    """MZI indices and upper modes per column, padded to the widest column with a dummy
    MZI (index K, an identity) on two spare rows (N, N+1)."""

    n_modes: int
    index: tuple[tuple[int, ...], ...]
    modes: tuple[tuple[int, ...], ...]


def _plan(mesh: Mesh) -> _Plan:
    width = max((int(np.sum(mesh.columns == c)) for c in range(mesh.depth)), default=0)
    index, modes = [], []
    for c in range(mesh.depth):
        k = np.flatnonzero(mesh.columns == c).tolist()
        pad = width - len(k)
        index.append(tuple(k + [mesh.n_mzis] * pad))
        modes.append(tuple(mesh.modes[k].tolist() + [mesh.n_modes] * pad))
    return _Plan(mesh.n_modes, tuple(index), tuple(modes))


@functools.lru_cache(maxsize=32)
def _forward(n_modes: int, plan: _Plan) -> Any:
    """Jitted ``(theta, phi, delta, d1, d2) -> D T_K ... T_1`` for one mesh shape: a
    ``lax.scan`` over the columns, so the compile time does not grow with the depth."""
    enable_x64()
    import jax
    import jax.numpy as jnp

    from pdk.models import _mzi_entries

    index, modes = jnp.array(plan.index, dtype=int), jnp.array(plan.modes, dtype=int)

    def forward(theta: Any, phi: Any, delta: Any, d1: Any, d2: Any) -> Any:
        entries = _mzi_entries(1.55, theta, phi, ideal=True, dkappa2_1=d1, dkappa2_2=d2)
        t00, t01, t10, t11 = (
            jnp.append(t, identity) for t, identity in zip(entries, (1, 0, 0, 1), strict=True)
        )

        def column(u: Any, col: Any) -> Any:
            k, m = col
            upper, lower = u[m, :], u[m + 1, :]
            u = u.at[m, :].set(t00[k, None] * upper + t01[k, None] * lower)
            return u.at[m + 1, :].set(t10[k, None] * upper + t11[k, None] * lower), None

        u0 = jnp.eye(n_modes + 2, n_modes, dtype=jnp.complex128)
        u, _ = jax.lax.scan(column, u0, (index, modes))
        return jnp.exp(1j * delta)[:, None] * u[:n_modes]

    return jax.jit(forward)


@functools.lru_cache(maxsize=32)
def _loss_and_grad(n_modes: int, plan: _Plan) -> Any:
    import jax
    import jax.numpy as jnp

    forward = _forward(n_modes, plan)

    def loss(x: Any, target: Any, d1: Any, d2: Any, k: int) -> Any:
        u = forward(x[:k], x[k : 2 * k], x[2 * k :], d1, d2)
        return jnp.sum(jnp.abs(u - target) ** 2)

    return jax.jit(jax.value_and_grad(loss), static_argnums=4)


def _refine(mesh: Mesh, target: npt.NDArray[np.complex128], d1: Floats, d2: Floats, *, max_iter: int) -> Mesh:
    """Step 2: L-BFGS over all phases of the mesh on the imperfect chip."""
    from scipy.optimize import minimize

    k = mesh.n_mzis
    fn = _loss_and_grad(mesh.n_modes, _plan(mesh))
    x0 = np.concatenate([mesh.theta_rad, mesh.phi_rad, mesh.output_phases_rad])

    def fun(x: Floats) -> tuple[float, Floats]:
        value, grad = fn(x, target, d1, d2, k)
        return float(value), np.asarray(grad, dtype=np.float64)

    bounds = [(0.0, np.pi)] * k + [(None, None)] * (k + mesh.n_modes)
    options = {"maxiter": max_iter, "gtol": 1e-12, "ftol": 1e-15}
    result = minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=bounds, options=options)
    x = result.x
    return replace(mesh, theta_rad=x[:k], phi_rad=x[k : 2 * k], output_phases_rad=x[2 * k :])
