"""Layout speed and memory, printed as a table (not a timed test).

    python benchmarks/bench_layout.py [--sizes 8 16 32 64] [--io grating|edge|none]
                                      [--pads auto|edge|bumps]

For each N, a Haar-random N x N unitary is compiled (Clements), then ``optinc layout``
draws it with its I/O couplers (``--io``, grating by default) and every heater routed
(``--pads auto``: edge pad rows where they fit, N <= 16, flip-chip bumps above) and
``optinc drc`` checks it (widths, spaces, connectivity). Each step is one fresh process, so the times include
start-up (``import gdsfactory`` is 3-5 s); peak RSS is per process (GNU ``time``).
One BLAS thread.

Targets (layout issue): N=16 routed chip <= 10 s with start-up; N=64 with all 4,096
heaters routed <= 120 s and 4 GB; DRC of the N=64 chip <= 60 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.stats import unitary_group

from optinc_compiler.report import format_table

ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}


def run(cmd: list[str]) -> tuple[float, float]:
    """Wall time (s) and peak RSS (MB) of one child process (GNU time's %M)."""
    with tempfile.NamedTemporaryFile("r", suffix=".txt") as rss:
        t0 = time.perf_counter()
        subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", rss.name, *cmd],
            check=True,
            env=ENV,
            stdout=subprocess.DEVNULL,
        )
        elapsed = time.perf_counter() - t0
        peak_kb = float(rss.read().split()[-1])
    return elapsed, peak_kb / 1024


def _pad_kind(gds: Path) -> str:
    """``bumps`` if the file has flip-chip bumps, else ``edge``."""
    import klayout.db as kdb

    from pdk import tech

    layout = kdb.Layout()
    layout.read(str(gds))
    index = layout.find_layer(*tech.LAYERS["BUMP"])
    top = layout.top_cells()[0]
    has_bumps = index is not None and not kdb.Region(top.begin_shapes_rec(index)).is_empty()
    return "bumps" if has_bumps else "edge"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--io", choices=["grating", "edge", "none"], default="grating")
    parser.add_argument("--pads", choices=["auto", "edge", "bumps"], default="auto")
    args = parser.parse_args()
    exe = shutil.which("optinc") or str(Path(sys.executable).with_name("optinc"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            u = Path(tmp) / f"u{n}.npy"
            np.save(u, unitary_group.rvs(n, random_state=n))
            program, gds = Path(tmp) / f"p{n}.json", Path(tmp) / f"chip{n}.gds"
            subprocess.run([exe, "-q", "compile", str(u), "-o", str(program)], check=True, env=ENV)
            cmd = [exe, "-q", "layout", str(program), "-o", str(gds), "--io", args.io, "--pads", args.pads]
            t_layout, mb_layout = run(cmd)
            t_drc, mb_drc = run([exe, "-q", "drc", str(gds)])
            rows.append(
                [
                    str(n),
                    str(n * (n - 1) // 2),
                    _pad_kind(gds),
                    f"{t_layout:.1f}",
                    f"{mb_layout:.0f}",
                    f"{gds.stat().st_size / 1e6:.2f}",
                    f"{t_drc:.1f}",
                    f"{mb_drc:.0f}",
                ]
            )
    headers = ["N", "MZIs", "pads", "layout_s", "layout_peak_MB", "gds_MB", "drc_s", "drc_peak_MB"]
    print(f"OPENBLAS_NUM_THREADS=1; --io {args.io}; times are whole processes (start-up included)")
    print(format_table(headers, rows))


if __name__ == "__main__":
    main()
