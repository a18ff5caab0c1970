"""Decomposition speed and accuracy, printed as a table (not a timed test).

    python benchmarks/bench_decompose.py [--sizes 8 16 ... 256] [--ref-max-n 64]

Haar-random complex unitaries (seeded), one BLAS thread (set before numpy loads).
Times are the minimum over repeats after a warm-up call. When the ``interferometer``
package is installed (``pip install -e '.[bench]'``), its Clements and Reck
decompositions are timed in the same run up to ``--ref-max-n`` and shown as a ratio.
The last table is the wall clock of ``optinc compile`` on a 256 x 256 real matrix
(method svd), start-up included.

Targets (issue: compile): max error <= 1e-12; N=256 <= 30 ms and N=64 <= 2 ms per
decomposition; ``optinc compile`` 256 x 256 <= 1.5 s.
"""

from __future__ import annotations

import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.stats import unitary_group

from optinc_compiler.decompose import clements, reck
from optinc_compiler.report import format_table


def best_time_s(fn: Callable[[], object], *, min_repeats: int = 10, budget_s: float = 1.0) -> float:
    """Minimum wall time of ``fn`` over repeats (at least ``min_repeats``, about ``budget_s``)."""
    fn()  # warm-up
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_repeats or time.perf_counter() - start < budget_s:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= 200:
            break
    return min(times)


def reference() -> dict[str, Callable[[np.ndarray], tuple[float, float]]]:
    """The interferometer package's decompositions as (time_s, max_error) runners."""
    try:
        import interferometer
    except ImportError:
        return {}

    def runner(decompose: Callable[[np.ndarray], object]) -> Callable[[np.ndarray], tuple[float, float]]:
        def run(u: np.ndarray) -> tuple[float, float]:
            t0 = time.perf_counter()
            mesh = decompose(u)
            elapsed = time.perf_counter() - t0
            return elapsed, float(np.abs(mesh.calculate_transformation() - u).max())  # type: ignore[attr-defined]

        return run

    return {
        "clements": runner(interferometer.square_decomposition),
        "reck": runner(interferometer.triangle_decomposition),
    }


def decomposition_table(sizes: list[int], ref_max_n: int) -> str:
    ours = {"clements": clements, "reck": reck}
    refs = reference()
    rows = []
    for n in sizes:
        u = unitary_group.rvs(n, random_state=n)
        for name, fn in ours.items():
            mesh = fn(u)
            err = float(np.abs(mesh.matrix() - u).max())
            t = best_time_s(lambda fn=fn, u=u: fn(u))
            ref_t = ref_err = ratio = "-"
            if name in refs and n <= ref_max_n:
                rt, re = refs[name](u)
                ref_t, ref_err, ratio = f"{rt * 1e3:.1f}", f"{re:.1e}", f"{rt / t:.0f}x"
            rows.append([str(n), name, f"{t * 1e3:.3f}", f"{err:.1e}", ref_t, ref_err, ratio])
    headers = ["N", "mesh", "time_ms", "max_error", "interferometer_ms", "interferometer_error", "speed-up"]
    return format_table(headers, rows)


def compile_table(repeats: int = 3) -> str:
    """Wall clock of the installed ``optinc`` on a 256 x 256 real matrix (svd)."""
    exe = shutil.which("optinc") or str(Path(sys.executable).with_name("optinc"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "w256.npy"
        np.save(weights, np.random.default_rng(0).normal(size=(256, 256)))
        cmd = [exe, "-q", "compile", str(weights), "-o", str(Path(tmp) / "p.json")]
        subprocess.run(cmd, check=True)  # warm-up (file caches)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True)
            times.append(time.perf_counter() - t0)
        size_mb = (Path(tmp) / "p.json").stat().st_size / 1e6
    rows.append(
        ["optinc compile 256x256 (svd)", f"{min(times):.2f}", f"{np.median(times):.2f}", f"{size_mb:.1f}"]
    )
    return format_table(["command", "best_s", "median_s", "program_MB"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32, 64, 128, 256])
    parser.add_argument("--ref-max-n", type=int, default=64, help="largest N for the reference (O(N^5))")
    parser.add_argument("--skip-compile", action="store_true")
    args = parser.parse_args()
    print(
        f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}, numpy {np.__version__}, "
        f"Python {sys.version.split()[0]}"
    )
    print(decomposition_table(args.sizes, args.ref_max_n))
    if not args.skip_compile:
        print()
        print(compile_table())


if __name__ == "__main__":
    main()
