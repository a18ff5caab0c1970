"""Verification speed, printed as a table (not a timed test).

    python benchmarks/bench_verify.py [--sizes 4 16 64] [--mc-size 16] [--mc-samples 1000]

A Haar-random N x N unitary compiled to a Clements mesh is simulated with the PDK's
sax models by the composed fast path, after a warm-up (jit compiles), in one process,
one BLAS thread:

* ``from_layer_s``: ``simulate.layer_smatrix`` (builds the netlist, plans, evaluates);
* ``from_netlist_s``: ``simulate.netlist_smatrix`` on a built netlist (what sweeps and
  reruns pay);

References in the same run: a plain numpy product of the 2x2 MZI blocks (ideal couplers,
precomputed blocks: the arithmetic floor) and, for N <= 8, the flat ``sax.circuit``.
Monte Carlo: ``simulate.monte_carlo`` (coupler 0.02, phase 0.01 rad, loss 0.05 dB)
against the numpy block product of the same number of phase-perturbed meshes.

Targets (verify issue): N=64 with PDK models, one wavelength <= 1 s and 101 wavelengths
<= 5 s; 1,000 Monte Carlo samples at N=16 <= 10 s; within 5x of the numpy block product.
"""

from __future__ import annotations

import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"

import argparse
import time

import numpy as np
from scipy.stats import unitary_group

from optinc_compiler import simulate
from optinc_compiler.compiler import CompileOptions, compile_layer
from optinc_compiler.mzi import mzi_matrix
from optinc_compiler.netlist import layer_netlist
from optinc_compiler.report import format_table


def best_s(fn, repeats: int = 3) -> float:  # type: ignore[no-untyped-def]
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def numpy_block_product(mesh, n_batch: int, theta=None, phi=None) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Column by column with numpy only: the 2x2 blocks applied to N x N fields of
    ``n_batch`` wavelengths or samples (per-sample phases if given)."""
    theta = np.broadcast_to(mesh.theta_rad, (n_batch, mesh.n_mzis)) if theta is None else theta
    phi = np.broadcast_to(mesh.phi_rad, (n_batch, mesh.n_mzis)) if phi is None else phi
    t = mzi_matrix(theta.ravel(), phi.ravel()).reshape(n_batch, mesh.n_mzis, 2, 2)
    fields = np.broadcast_to(
        np.eye(mesh.n_modes, dtype=complex), (n_batch, mesh.n_modes, mesh.n_modes)
    ).copy()
    for col in range(mesh.depth):
        k = np.flatnonzero(mesh.columns == col)
        m = mesh.modes[k]
        a, b = fields[:, m, :], fields[:, m + 1, :]
        fields[:, m, :] = t[:, k, 0, 0, None] * a + t[:, k, 0, 1, None] * b
        fields[:, m + 1, :] = t[:, k, 1, 0, None] * a + t[:, k, 1, 1, None] * b
    return fields


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 16, 64])
    parser.add_argument("--mc-size", type=int, default=16)
    parser.add_argument("--mc-samples", type=int, default=1000)
    args = parser.parse_args()
    rows = []
    for n in args.sizes:
        layer = compile_layer("L", unitary_group.rvs(n, random_state=n), CompileOptions())
        mesh, netlist = layer.stages[0].mesh, layer_netlist(layer)
        for n_wl in (1, 101):
            wl = np.linspace(1.50, 1.60, n_wl) if n_wl > 1 else 1.55
            t_layer = best_s(lambda layer=layer, wl=wl: simulate.layer_smatrix(layer, wl_um=wl))
            t_net = best_s(
                lambda nl=netlist, n=n, wl=wl: simulate.netlist_smatrix(nl, n_in=n, n_out=n, wl_um=wl)
            )
            t_np = best_s(lambda mesh=mesh, n_wl=n_wl: numpy_block_product(mesh, n_wl))
            flat = "-"
            if n <= 8 and n_wl == 1:
                t_flat = best_s(lambda nl=netlist, n=n: simulate.flat_smatrix(nl, n_in=n, n_out=n), repeats=1)
                flat = f"{t_flat:.3f} ({t_flat / t_net:.0f}x slower)"
            rows.append(
                [
                    f"N={n}, {n_wl} wl",
                    f"{t_layer:.3f}",
                    f"{t_net:.4f}",
                    f"{t_np:.4f}",
                    f"{t_net / t_np:.1f}x",
                    flat,
                ]
            )
    n, samples = args.mc_size, args.mc_samples
    layer = compile_layer("L", unitary_group.rvs(n, random_state=n), CompileOptions())
    mesh, netlist = layer.stages[0].mesh, layer_netlist(layer)
    var = simulate.Variability(coupler_sigma=0.02, phase_sigma_rad=0.01, loss_sigma_dB=0.05)

    def mc() -> None:
        simulate.monte_carlo(
            netlist, layer.matrix(), scale=layer.scale, n_samples=samples, variability=var, seed=0
        )

    rng = np.random.default_rng(0)
    theta = mesh.theta_rad + 0.01 * rng.standard_normal((samples, mesh.n_mzis))
    phi = mesh.phi_rad + 0.01 * rng.standard_normal((samples, mesh.n_mzis))
    t_mc = best_s(mc, repeats=2)
    t_np = best_s(lambda: numpy_block_product(mesh, samples, theta, phi), repeats=2)
    rows.append(
        [f"N={n}, MC {samples} samples", f"{t_mc:.3f}", "-", f"{t_np:.4f}", f"{t_mc / t_np:.1f}x", "-"]
    )
    print("OPENBLAS_NUM_THREADS=1, PDK models, best of 3 (MC: of 2) after warm-up")
    print(
        format_table(
            [
                "case",
                "from_layer_s",
                "from_netlist_s",
                "numpy_blocks_s",
                "netlist/numpy",
                "flat_sax_circuit_s",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
