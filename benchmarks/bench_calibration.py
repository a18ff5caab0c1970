"""Error correction and DAC quantisation, printed as tables (not timed tests).

    python benchmarks/bench_calibration.py [--n 16] [--chips 20] [--sigma 0.02]

1. Error-corrected compilation (``optinc_compiler.correction``): Haar-random N x N
   unitaries on simulated chips whose couplers' power coupling is 0.5 + N(0, sigma),
   seeded; the matrix error on the chip ``||U_chip - U||_F / ||U||_F`` with the plain
   phases, after local correction, after the global fit. Target (issue): median after
   correction at least 10x lower than uncorrected, N=16, sigma 2%.
2. DAC quantisation (``optinc_compiler.calibration``) on the MLP design
   (designs/mlp_demo): relative matrix error and fidelity of the realised layers for
   6-12 bit DACs, nearest against quantisation-aware rounding.

One BLAS thread; JAX on the CPU; the first correction includes the jit compile.
"""

from __future__ import annotations

import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"

import argparse
import time
from pathlib import Path

import numpy as np
from scipy.stats import unitary_group

from optinc_compiler import calibration as cal
from optinc_compiler.compiler import CompileOptions, compile_layer, compile_weights
from optinc_compiler.correction import correct_stage
from optinc_compiler.io import load_weights
from optinc_compiler.report import format_table
from optinc_compiler.simulate import fidelity

ROOT = Path(__file__).resolve().parents[1]


def correction_table(n: int, chips: int, sigma: float) -> str:
    rows, before, after, times = [], [], [], []
    for seed in range(chips):
        stage = compile_layer("L", unitary_group.rvs(n, random_state=seed), CompileOptions()).stages[0]
        rng = np.random.default_rng(1000 + seed)
        splitters = {i: tuple(np.clip(0.5 + sigma * rng.standard_normal(2), 0, 1)) for i in stage.mzi_ids}
        t0 = time.perf_counter()
        _, r = correct_stage(stage, splitters)
        times.append(time.perf_counter() - t0)
        before.append(r.error_uncorrected)
        after.append(r.error_corrected)
        rows.append(
            [
                str(seed),
                f"{r.error_uncorrected:.3g}",
                f"{r.error_local:.3g}",
                f"{r.error_corrected:.3g}",
                f"{r.error_uncorrected / r.error_corrected:.0f}x",
                f"{times[-1]:.2f}",
            ]
        )
    median_ratio = np.median(before) / np.median(after)
    rows.append(
        [
            "median",
            f"{np.median(before):.3g}",
            "-",
            f"{np.median(after):.3g}",
            f"{median_ratio:.0f}x",
            f"{np.median(times[1:] or times):.2f}",
        ]
    )
    head = f"Error correction: N={n} Clements, {chips} chips, coupler kappa^2 sigma {sigma}"
    return head + "\n" + format_table(["chip", "uncorrected", "local", "corrected", "ratio", "time_s"], rows)


def dac_table() -> str:
    weights = load_weights(ROOT / "designs" / "mlp_demo" / "weights.npz")
    program = compile_weights(weights.layers, CompileOptions())
    rows = []
    for bits in (6, 8, 10, 12):
        for rounding in ("nearest", "aware"):
            t0 = time.perf_counter()
            hp = cal.heater_program(program, dac_bits=bits, rounding=rounding)
            dt = time.perf_counter() - t0
            realised = cal.quantised_program(hp, program)
            errors = cal.layer_errors(program, realised)
            fids = [
                fidelity(r.matrix(), p.matrix(), scale=1.0).fidelity
                for p, r in zip(program.layers, realised.layers, strict=True)
            ]
            rows.append(
                [
                    str(bits),
                    rounding,
                    *(f"{errors[p.name]:.3g}" for p in program.layers),
                    f"{min(fids):.6f}",
                    f"{dt:.2f}",
                ]
            )
    names = [f"rel_error_{p.name}" for p in program.layers]
    return "DAC quantisation, designs/mlp_demo (PDK heater model, crosstalk compensated)\n" + format_table(
        ["dac_bits", "rounding", *names, "min_fidelity", "time_s"], rows
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--chips", type=int, default=20)
    parser.add_argument("--sigma", type=float, default=0.02)
    args = parser.parse_args()
    print("OPENBLAS_NUM_THREADS=1")
    print(correction_table(args.n, args.chips, args.sigma))
    print()
    print(dac_table())


if __name__ == "__main__":
    main()
