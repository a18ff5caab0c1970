"""Errors of a noisy aggregator chip as data-parallel training sees them.

    python benchmarks/bench_chip_errors.py [--design designs/aggregator_n4_b4] [--draws 2000]

For each phase-noise level (0.005, 0.01, 0.02 rad, Gaussian, on the heaters after 12-bit
DACs) and each place of the noise (every heater; the preprocessing chain only; the ONN
only), ``--draws`` fresh chips (seeded) are evaluated on every sum s, one raw input per
s, as ``aggregator.evaluate.noisy_lookup`` does for the DDP hook. Columns:

* ``chips_wrong``: share of draws with at least one wrong entry (a fabricated chip that
  ``--screen`` would reject); ``chips_wrong_busy``: wrong at one of the five busiest sums;
* ``elements_wrong``, ``mse_levels^2``, ``off_gt_1``: share of aggregated elements that
  are wrong, mean squared error in levels, share off by more than one level, each
  weighted by how often training sends each sum.

The traffic: the histogram of the sums in a one-process emulation of the digits
experiment (4 servers, MLP 64-64-10, 20 epochs, seed 0, the ideal 4-bit chip, the hook's
shared scales per 256 elements and its ``quantise``/``dequantise``, error feedback).
Near-zero gradients quantise to codes 7 and 8, so most sums are 28-32: an error there
costs far more than one at s = 0 or 60. Needs the ``distributed`` extra (torch, scikit-learn).

Threads: OPENBLAS_NUM_THREADS=1 and one torch thread, in one process, on a shared 2-core
machine; about 15 s here at 2,000 draws, most of it the emulation.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

from optinc_compiler.aggregator import evaluate
from optinc_compiler.aggregator.encoding import reduced_dataset
from optinc_compiler.aggregator.locate import find_design
from optinc_compiler.aggregator.pipeline import DESIGN_FILES
from optinc_compiler.report import format_table

LEVELS_RAD = (0.005, 0.01, 0.02)
PLACES = {"every heater": (True, True), "preprocessing only": (True, False), "ONN only": (False, True)}


def sum_traffic(servers: int, bits: int, epochs: int = 20, seed: int = 0) -> npt.NDArray[np.float64]:
    """Share of aggregated elements per sum s (0 .. N L) in the emulated experiment."""
    import torch
    from torch.nn import functional

    from optinc_compiler.distributed.experiment import digits_split
    from optinc_compiler.distributed.hook import chunk_maxima, dequantise, element_scales, quantise
    from optinc_compiler.distributed.lookup import DEFAULT_SCALE_CHUNK, ideal_lookup

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    x_train, y_train, _, _ = digits_split()
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    table = torch.as_tensor(ideal_lookup(servers, bits).table)
    max_sum = servers * ((1 << bits) - 1)
    counts = np.zeros(max_sum + 1)
    residuals = [torch.zeros(sum(p.numel() for p in model.parameters()), dtype=torch.float64)] * servers
    order = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(y_train), generator=order)
        shards = [perm[r::servers] for r in range(servers)]
        for start in range(0, len(shards[-1]), 16):
            vs = []
            for r in range(servers):
                idx = shards[r][start : start + 16]
                model.zero_grad()
                functional.cross_entropy(model(x_train[idx]), y_train[idx]).backward()
                grad = torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None])
                vs.append(grad.double() + residuals[r])
            maxima = torch.stack([chunk_maxima(v, DEFAULT_SCALE_CHUNK) for v in vs]).amax(0)
            scale = element_scales(maxima, DEFAULT_SCALE_CHUNK, vs[0].numel())
            qs = [quantise(v, scale, bits) for v in vs]
            residuals = [v - dequantise(q, scale, bits) for v, q in zip(vs, qs, strict=True)]
            s = torch.stack(qs).sum(0)
            counts += np.bincount(s.numpy(), minlength=max_sum + 1)
            avg = dequantise(table[s], scale, bits).float()
            offset = 0
            for p in model.parameters():
                p.grad = avg[offset : offset + p.numel()].reshape(p.shape)
                offset += p.numel()
            opt.step()
    return counts / counts.sum()


def noisy_codes(
    chip: evaluate.Chip, rng: np.random.Generator, *, draws: int, pre_rad: float, onn_rad: float
) -> npt.NDArray[np.int64]:
    """(draws, N L + 1) codes of ``draws`` chips, noise ``pre_rad`` on the preprocessing
    chain and ``onn_rad`` on the ONN (as ``evaluate.noisy_lookup``, which draws both)."""
    e = chip.electronics
    data = reduced_dataset(e.spec, e.preprocessing)
    onn = [
        evaluate.noisy_matrix(x, rng, draws=draws, noise_rad=onn_rad, dac_bits=12) for x in chip.onn_layers
    ]
    pre = evaluate.noisy_matrix(
        chip.program.layer("preprocess"), rng, draws=draws, noise_rad=pre_rad, dac_bits=12
    )
    channels = evaluate._representative_channels(e.spec, data)
    intensities = np.einsum("dpc,sc->dsp", np.abs(pre) ** 2, channels)  # (draws, S, ports)
    out = np.stack(
        [evaluate._batched(e, [w[d : d + 1] for w in onn], intensities[d])[0] for d in range(draws)]
    )
    return evaluate.decode(e, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--design", type=Path, default=Path("designs/aggregator_n4_b4"))
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    chip = evaluate.load_design(find_design(args.design, needs=DESIGN_FILES))
    spec = chip.electronics.spec
    start = time.perf_counter()
    traffic = sum_traffic(spec.servers, spec.bits, seed=args.seed)
    traffic_s = time.perf_counter() - start
    ideal = reduced_dataset(spec, chip.electronics.preprocessing).targets  # round_half_to_even(s / N)
    busiest = np.argsort(traffic)[::-1][:5]
    rows = []
    for i, noise in enumerate(LEVELS_RAD):
        for j, (place, (on_pre, on_onn)) in enumerate(PLACES.items()):
            rng = np.random.default_rng([args.seed, i, j])
            codes = noisy_codes(
                chip,
                rng,
                draws=args.draws,
                pre_rad=noise if on_pre else 0.0,
                onn_rad=noise if on_onn else 0.0,
            )
            err = (codes - ideal[None]).astype(np.float64)
            rows.append(
                [
                    f"{noise:g}",
                    place,
                    f"{(err != 0).any(axis=1).mean():.3f}",
                    f"{(err[:, busiest] != 0).any(axis=1).mean():.3f}",
                    f"{(err != 0).mean(axis=0) @ traffic:.2e}",
                    f"{(err**2).mean(axis=0) @ traffic:.2e}",
                    f"{(np.abs(err) > 1).mean(axis=0) @ traffic:.2e}",
                ]
            )
    wall_s = time.perf_counter() - start
    print(f"{args.design}: N={spec.servers}, b={spec.bits}, {args.draws} draws per row, seed {args.seed}")
    print("busiest sums: " + ", ".join(f"s={s} {100 * traffic[s]:.1f}%" for s in sorted(busiest)))
    headers = [
        "noise_rad",
        "noise_on",
        "chips_wrong",
        "chips_wrong_busy",
        "elements_wrong",
        "mse_levels^2",
        "off_gt_1",
    ]
    print(format_table(headers, rows))
    print(f"\n{wall_s:.1f} s wall ({traffic_s:.1f} s of it the traffic emulation)")


if __name__ == "__main__":
    main()
