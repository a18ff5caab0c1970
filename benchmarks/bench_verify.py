"""Verification speed, printed as a table (not a timed test).

    python benchmarks/bench_verify.py [--sizes 16 64]

A Haar-random N x N unitary compiled to a Clements mesh is simulated with the PDK's
sax models by the composed fast path (``simulate.layer_smatrix``), after a warm-up, in
one process, one BLAS thread. References in the same run: a plain numpy product of the
2x2 MZI blocks (one wavelength, ideal couplers: the arithmetic floor) and, for N <= 8,
the flat ``sax.circuit`` of the same netlist.

Targets (verify issue): N=64 with PDK models, one wavelength <= 1 s and 101 wavelengths
<= 5 s, within 5x of the numpy block product.
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


def numpy_block_product(mesh, n_wl: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Column by column with numpy only: the 2x2 blocks applied to N x N fields."""
    t = mzi_matrix(mesh.theta_rad, mesh.phi_rad)
    fields = np.broadcast_to(np.eye(mesh.n_modes, dtype=complex), (n_wl, mesh.n_modes, mesh.n_modes)).copy()
    for col in range(mesh.depth):
        k = np.flatnonzero(mesh.columns == col)
        m = mesh.modes[k]
        a, b = fields[:, m, :], fields[:, m + 1, :]
        fields[:, m, :] = t[k, 0, 0][:, None] * a + t[k, 0, 1][:, None] * b
        fields[:, m + 1, :] = t[k, 1, 0][:, None] * a + t[k, 1, 1][:, None] * b
    return fields


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 16, 64])
    args = parser.parse_args()
    rows = []
    for n in args.sizes:
        layer = compile_layer("L", unitary_group.rvs(n, random_state=n), CompileOptions())
        mesh = layer.stages[0].mesh
        for n_wl in (1, 101):
            wl = np.linspace(1.50, 1.60, n_wl) if n_wl > 1 else 1.55
            t_fast = best_s(lambda layer=layer, wl=wl: simulate.layer_smatrix(layer, wl_um=wl))
            t_np = best_s(lambda mesh=mesh, n_wl=n_wl: numpy_block_product(mesh, n_wl))
            flat = "-"
            if n <= 8 and n_wl == 1:
                netlist = layer_netlist(layer)
                t_flat = best_s(
                    lambda netlist=netlist, n=n: simulate.flat_smatrix(netlist, n_in=n, n_out=n), repeats=1
                )
                flat = f"{t_flat:.3f} ({t_flat / t_fast:.0f}x slower)"
            rows.append([str(n), str(n_wl), f"{t_fast:.3f}", f"{t_np:.4f}", f"{t_fast / t_np:.1f}x", flat])
    print("OPENBLAS_NUM_THREADS=1, PDK models, best of 3 after warm-up")
    print(
        format_table(
            ["N", "wavelengths", "composed_s", "numpy_blocks_s", "ratio", "flat_sax_circuit_s"], rows
        )
    )


if __name__ == "__main__":
    main()
