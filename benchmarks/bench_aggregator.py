"""OptINC aggregator: training time, accuracy, robustness and MZI counts, ud against svd.

For each layer type, architectures are tried in order of increasing MZI count; each is
trained (seeded, several restarts in one vmapped run), compiled, and evaluated through
the compiled program. "Robust" means 100% bit-exact in at least 95 of 100 seeded draws of
0.002 rad Gaussian noise on every heater (preprocessing included) with 12-bit phase DACs.
The first robust architecture of each type is the smallest robust one; the ratio of their
MZI counts is the issue's hardware target (<= 65%).

Run: ``.venv/bin/python benchmarks/bench_aggregator.py [--servers 4 --bits 4]``.
Threads: OPENBLAS_NUM_THREADS=1, XLA on the CPU with one Eigen thread and backend
optimisation level 0 (optinc_compiler.aggregator.runtime), on a shared 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from optinc_compiler.aggregator import runtime

runtime.configure_cpu()

from optinc_compiler.aggregator import evaluate, export, model, train  # noqa: E402
from optinc_compiler.aggregator.encoding import AggregatorSpec, all_raw_codes  # noqa: E402
from optinc_compiler.aggregator.pipeline import default_design  # noqa: E402
from optinc_compiler.report import format_table  # noqa: E402

ROBUST_NOISE_RAD, ROBUST_DRAWS, ROBUST_NEEDED = 0.002, 100, 95


def candidates(layer_type: str, bits: int) -> list[tuple[int, int]]:
    """(width, depth) in order of increasing MZI count, widths >= b."""
    per_mesh = {"ud": 1, "svd": 2}[layer_type]
    shapes = [(w, d) for w in range(max(bits, 2), 8) for d in (1, 2, 3, 4)]
    return sorted(shapes, key=lambda s: (per_mesh * s[1] * s[0] * (s[0] - 1) // 2, s[1]))


def run_one(
    spec: AggregatorSpec, layer_type: str, width: int, depth: int, options: train.TrainOptions
) -> list[str]:
    arch = model.Architecture(spec, "sum", layer_type, width, depth)
    start = time.perf_counter()
    result = train.train(arch, options)
    wall_s = time.perf_counter() - start
    chip = evaluate.Chip(
        export.build_program(spec, "sum", result.params, layer_type),
        export.electronics_from_params(
            spec, preprocessing="sum", layer_type=layer_type, params=result.params
        ),
    )
    acc = evaluate.reduced_accuracy(chip, evaluate.layer_matrices(chip))
    robust = evaluate.robustness(
        chip, noise_rad=ROBUST_NOISE_RAD, dac_bits=12, draws=ROBUST_DRAWS, include_preprocessing=True
    )
    h = evaluate.hardware(chip)
    return [
        layer_type, str(width), str(depth), str(h.mzis), str(h.heaters), str(h.electronic_stages),
        f"{acc.percent:.2f}", f"{acc.min_margin:.4f}", f"{robust.draws_at_100}/{ROBUST_DRAWS}",
        f"{wall_s:.1f}",
    ]  # fmt: skip


def committed_design_robustness(spec: AggregatorSpec) -> None:
    """Draws at 100% of the committed design with noise on every heater, every raw input
    pushed through the noisy preprocessing (exhaustive raw inputs: N b <= 20 only)."""
    if spec.channels > 20:
        return
    chip = evaluate.load_design(default_design(spec))
    codes = all_raw_codes(spec)
    rows = []
    for noise in (0.002, 0.003, 0.004, 0.005):
        r = evaluate.robustness(
            chip,
            noise_rad=noise,
            dac_bits=12,
            draws=ROBUST_DRAWS,
            include_preprocessing=True,
            raw_codes=codes,
        )
        rows.append([f"{noise:g}", f"{r.draws_at_100}/{ROBUST_DRAWS}", f"{r.mean_accuracy_percent:.4f}"])
    where = default_design(spec)
    print(f"\ncommitted design {where}: every heater, all {codes.shape[0]} raw inputs, 12-bit DACs")
    print(format_table(["noise_rad", "draws_at_100", "mean_accuracy_%"], rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=4)
    parser.add_argument("--bits", type=int, default=4)
    parser.add_argument("--restarts", type=int, default=4)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--max-tries", type=int, default=6, help="Architectures per layer type at most.")
    args = parser.parse_args()
    spec = AggregatorSpec(args.servers, args.bits)
    options = train.TrainOptions(restarts=args.restarts, steps=args.steps)
    headers = ["layer_type", "width", "depth", "MZIs", "heaters", "electronic", "accuracy_%", "min_margin"]
    headers += [f"robust_{ROBUST_NOISE_RAD}rad_dac12", "train_wall_s"]
    rows, smallest = [], {}
    for layer_type in ("ud", "svd"):
        for width, depth in candidates(layer_type, spec.bits)[: args.max_tries]:
            row = run_one(spec, layer_type, width, depth, options)
            rows.append(row)
            print("  ".join(row), flush=True)
            if row[6] == "100.00" and int(row[8].split("/")[0]) >= ROBUST_NEEDED:
                smallest[layer_type] = int(row[3])
                break
    print(
        f"\nN={spec.servers}, b={spec.bits}, {args.restarts} restarts x {args.steps} steps per architecture"
    )
    print(format_table(headers, rows))
    committed_design_robustness(spec)
    if len(smallest) == 2:
        ratio = 100 * smallest["ud"] / smallest["svd"]
        print(f"\nsmallest robust: ud {smallest['ud']} MZIs, svd {smallest['svd']} MZIs, ratio {ratio:.0f}%")
    else:
        print(f"\nsmallest robust found for: {', '.join(smallest) or 'none'} (within --max-tries)")


if __name__ == "__main__":
    main()
