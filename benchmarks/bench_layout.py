"""Layout speed and memory, printed as tables (not a timed test).

    python benchmarks/bench_layout.py [--sizes 8 16 32 64] [--io grating|edge|none]
                                      [--pads auto|edge|bumps] [--foundry-only]

For each N, a Haar-random N x N unitary is compiled (Clements), then ``optinc layout``
draws it with its I/O couplers (``--io``, grating by default) and every heater routed
(``--pads auto``: edge pad rows where they fit, N <= 16, flip-chip bumps above) and
``optinc drc`` checks it (widths, spaces, connectivity). Each step is one fresh process, so the times include
start-up (``import gdsfactory`` is 3-5 s); peak RSS is per process (GNU ``time``).
One BLAS thread.

Targets (layout issue): N=16 routed chip <= 10 s with start-up; N=64 with all 4,096
heaters routed <= 120 s and 4 GB; DRC of the N=64 chip <= 60 s.

The second table: the foundry designs (designs/clements4_cornerstone and the same
unitary on a Reck mesh) on CORNERSTONE SOI 220 (``--pdk cornerstone-si220``) against
the same designs on our own PDK, in the same run: ``optinc layout``, ``optinc drc``
(the foundry's: rules, connectivity and its submission check) and ``optinc build``,
whole processes, with the foundry / own ratio.
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


ROOT = Path(__file__).resolve().parents[1]
FOUNDRY_DESIGN = ROOT / "designs" / "clements4_cornerstone" / "design.yaml"


def _design(tmp: Path, mesh: str, pdk: str) -> Path:
    """The foundry design with another mesh and PDK, its weights by absolute path."""
    text = FOUNDRY_DESIGN.read_text()
    text = text.replace("mesh: clements", f"mesh: {mesh}").replace("pdk: cornerstone-si220", f"pdk: {pdk}")
    text = text.replace("weights: weights.npz", f"weights: {FOUNDRY_DESIGN.parent / 'weights.npz'}")
    path = tmp / f"{mesh}_{pdk}" / "design.yaml"
    path.parent.mkdir()
    path.write_text(text)
    return path


def foundry_table(exe: str, tmp: Path) -> str:
    """Layout, DRC and build of the foundry designs on both PDKs, with ratios."""
    rows = []
    for mesh in ("clements", "reck"):
        times = {}
        for pdk in ("optinc", "cornerstone-si220"):
            design = _design(tmp, mesh, pdk)
            out = design.parent / "build"
            t_build, mb_build = run([exe, "-q", "build", str(design), "--out", str(out)])
            gds = design.parent / "chip.gds"
            t_layout, _ = run([exe, "-q", "layout", str(out / "program.json"), "--pdk", pdk, "-o", str(gds)])
            t_drc, _ = run([exe, "-q", "drc", str(gds)])
            times[pdk] = (t_layout, t_drc, t_build, mb_build)
        own, cs = times["optinc"], times["cornerstone-si220"]
        for pdk, t in times.items():
            rows.append([f"4x4 {mesh}", pdk, *(f"{v:.1f}" for v in t[:3]), f"{t[3]:.0f}"])
        ratio = [f"{c / o:.2f}x" for c, o in zip(cs[:3], own[:3], strict=True)]
        rows.append([f"4x4 {mesh}", "ratio foundry / own", *ratio, ""])
    headers = ["design", "pdk", "layout_s", "drc_s", "build_s", "build_peak_MB"]
    return format_table(headers, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--io", choices=["grating", "edge", "none"], default="grating")
    parser.add_argument("--pads", choices=["auto", "edge", "bumps"], default="auto")
    parser.add_argument("--foundry-only", action="store_true", help="Only the foundry table.")
    args = parser.parse_args()
    exe = shutil.which("optinc") or str(Path(sys.executable).with_name("optinc"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        foundry = foundry_table(exe, Path(tmp))
        for n in [] if args.foundry_only else args.sizes:
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
    print("OPENBLAS_NUM_THREADS=1; times are whole processes (start-up included)")
    if rows:
        print(f"--io {args.io}")
        print(format_table(headers, rows))
        print()
    print(foundry)


if __name__ == "__main__":
    main()
