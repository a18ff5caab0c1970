"""Optical in-network aggregation in training: the chip's lookup, the DDP hook (4 gloo
processes, bit for bit against the lookup), the experiment CLI and the cost model."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from click.testing import CliRunner

from optinc_compiler.cli import main
from optinc_compiler.distributed import comm_model as cm
from optinc_compiler.distributed.lookup import ChipLookup, ideal_lookup, load_lookup, n_inputs, save_lookup
from optinc_compiler.errors import InputError


@pytest.mark.parametrize(("servers", "bits"), [(2, 1), (2, 3), (3, 2), (4, 2)])
def test_reduced_inputs_determine_the_target_exhaustively(servers, bits):
    """Every raw input (q_1..q_N): the per-bit counts and the sum give the same code,
    round_half_to_even(sum / N)."""
    by_sum, by_bit = ideal_lookup(servers, bits, "sum"), ideal_lookup(servers, bits, "per_bit")
    for q in itertools.product(range(2**bits), repeat=servers):
        s = sum(q)
        counts = [sum((x >> k) & 1 for x in q) for k in range(bits)]
        index = sum(c * (servers + 1) ** k for k, c in enumerate(counts))
        expected = round(s / servers)  # Python rounds half to even
        assert by_sum.table[s] == by_bit.table[index] == expected
    assert by_sum.table.size == n_inputs(servers, bits, "sum") == servers * (2**bits - 1) + 1
    assert by_bit.table.size == (servers + 1) ** bits


def test_lookup_files_round_trip_and_bad_tables_are_refused(tmp_path):
    chip = ideal_lookup(4, 4)
    flipped = chip.table.copy()
    flipped[7] ^= 1
    noisy = ChipLookup(4, 4, "sum", flipped, source="chip 3")
    back = load_lookup(save_lookup(noisy, tmp_path / "lut.json"))
    assert back.source == "chip 3"
    np.testing.assert_array_equal(back.table, flipped)
    assert back.bit_errors(chip) == 1
    with pytest.raises(InputError, match=r"^lookup table has shape \(3,\); allowed: \(61,\) integers$"):
        ChipLookup(4, 4, "sum", np.zeros(3, dtype=np.int64))
    with pytest.raises(InputError, match=r"^servers is 1; allowed: 2 or more$"):
        ideal_lookup(1, 4)
    with pytest.raises(InputError, match=r"codes must lie in 0\.\.15"):
        ChipLookup(4, 4, "sum", np.full(61, 16))
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(
        InputError, match=r"is not an optinc-lookup \(or optinc-aggregator-lut\) file of version 1"
    ):
        load_lookup(tmp_path / "x.json")


def test_the_aggregator_lookup_format_is_read(tmp_path):
    entries = [{"input": s, "output": round(s / 2), "bits": []} for s in range(7)]
    doc = {"format": "optinc-aggregator-lut", "version": 1, "servers": 2, "bits": 2, "preprocessing": "sum"}
    (tmp_path / "lut.json").write_text(json.dumps({**doc, "entries": entries}))
    chip = load_lookup(tmp_path / "lut.json")
    np.testing.assert_array_equal(chip.table, ideal_lookup(2, 2).table)
    counts = [
        {"input": [a, b], "output": int(ideal_lookup(2, 2, "per_bit").table[a + 3 * b]), "bits": []}
        for b in range(3)
        for a in range(3)
    ]
    (tmp_path / "bitwise.json").write_text(json.dumps({**doc, "preprocessing": "bitwise", "entries": counts}))
    per_bit = load_lookup(tmp_path / "bitwise.json")
    assert per_bit.preprocessing == "per_bit"
    np.testing.assert_array_equal(per_bit.table, ideal_lookup(2, 2, "per_bit").table)
    (tmp_path / "short.json").write_text(json.dumps({**doc, "entries": entries[:3]}))
    with pytest.raises(InputError, match="the lookup misses 4 reduced input"):
        load_lookup(tmp_path / "short.json")


def test_the_committed_aggregator_chip_and_its_noisy_copies():
    from pathlib import Path

    from optinc_compiler.distributed.lookup import design_lookup, noisy_chip_sampler

    design = Path(__file__).resolve().parents[1] / "designs" / "aggregator_n4_b4"
    chip = design_lookup(design)
    assert chip.bit_errors(ideal_lookup(4, 4)) == 0  # the simulated chip is bit-exact
    exact = noisy_chip_sampler(design, noise_rad=0.0)
    np.testing.assert_array_equal(exact(np.random.default_rng(0)), chip.table)
    noisy = noisy_chip_sampler(design, noise_rad=0.03)
    draws = [noisy(np.random.default_rng([7, k])) for k in range(10)]
    np.testing.assert_array_equal(draws[3], noisy(np.random.default_rng([7, 3])))  # seeded
    assert any((d != chip.table).any() for d in draws)  # 0.03 rad breaks some chips


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"aggregation": "optinc", "phase_noise_rad": 0.01},
            "phase noise needs the aggregator chip: give --design",
        ),
        ({"aggregation": "optinc", "design": "d", "lookup_file": "l"}, "give --design or --lookup, not both"),
        (
            {"aggregation": "ring", "design": "d"},
            "--design and --lookup are for --aggregation optinc, not ring",
        ),
        ({"aggregation": "tree"}, "aggregation 'tree'; allowed: ring, optinc, ideal8"),
        ({"world_size": 1}, "world size is 1; allowed: 2 to 64"),
        ({"scale_chunk": 0}, "scale chunk is 0; allowed: 1 to 16777216 elements (None: one per bucket)"),
        (
            {"aggregation": "optinc", "design": "d", "screen_chips": True},
            "--screen tests a fabricated chip: it needs --phase-noise-rad, not --noise-per-step",
        ),
    ],
)
def test_experiment_settings_are_checked(kwargs, message):
    from optinc_compiler.distributed.experiment import ExperimentConfig

    with pytest.raises(InputError) as info:
        ExperimentConfig(**kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("extra", "label"),
    [
        ({}, "optinc (aggregator_n4_b4)"),
        ({"phase_noise_rad": 0.01}, "optinc (aggregator_n4_b4, 0.01 rad per run)"),
        (
            {"phase_noise_rad": 0.01, "screen_chips": True},
            "optinc (aggregator_n4_b4, 0.01 rad per run, screened)",
        ),
        ({"phase_noise_rad": 0.01, "noise_per_step": True}, "optinc (aggregator_n4_b4, 0.01 rad per step)"),
    ],
)
def test_compare_labels_say_how_the_chip_was_drawn(extra, label):
    from optinc_compiler.distributed.compare import _label

    config = {"aggregation": "optinc", "design": "designs/aggregator_n4_b4", "bits": 4, **extra}
    assert _label(config) == label


def test_ring_allreduce_formula_and_optinc_pass():
    p = cm.CommParams(gradient_bytes=1e8, link_gbps=100, latency_us=10, compute_s=0.1, optical_bits=8)
    bandwidth = 100e9 / 8
    for n in (2, 4, 8, 64):
        assert cm.ring_allreduce_s(n, p) == pytest.approx(
            2 * (n - 1) * (10e-6 + 1e8 / (n * bandwidth)), rel=1e-15
        )
        assert cm.optinc_s(n, p) == pytest.approx(2 * 10e-6 + 1e8 * 8 / 32 / bandwidth + 0.01e-6, rel=1e-15)
    (t,) = cm.step_times([8], p)
    assert t.saving == pytest.approx(1 - (0.1 + cm.optinc_s(8, p)) / (0.1 + cm.ring_allreduce_s(8, p)))
    link = cm.link_for_saving(8, p, 0.2)
    assert link is not None
    assert cm.saving_at(8, p, link) == pytest.approx(0.2, abs=1e-6)
    with pytest.raises(InputError, match="servers is 1; allowed: 2 or more"):
        cm.ring_allreduce_s(1, p)


def test_comm_model_cli(tmp_path):
    result = CliRunner().invoke(
        main, ["comm-model", "--servers", "4", "16", "--plot", str(tmp_path / "c.png")]
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("resnet50: 102.2 MB of gradients, compute 0.12 s/step, link 400.0 Gb/s")
    rows = [line.split()[0] for line in result.output.splitlines()[3:] if line[:1].isdigit()]
    assert rows == ["4", "16"]
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


# --- the hook in real processes ----------------------------------------------------------

torch = pytest.importorskip("torch")


def _hook_worker(rank: int, world: int, store: str, queue) -> None:
    import torch.distributed as dist

    from optinc_compiler.distributed import hook

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=store, rank=rank, world_size=world)
    report = {}
    try:
        gen = torch.Generator().manual_seed(100 + rank)
        # sum preprocessing with a scale per 256 elements (the default), per-bit with one
        # scale per bucket
        for preprocessing, chunk in (("sum", 256), ("per_bit", None)):
            ideal = ideal_lookup(world, 4, preprocessing)
            table = ideal.table.copy()
            table[::5] = (table[::5] + 3) % 16  # a chip that is often wrong
            chip = ChipLookup(world, 4, preprocessing, table, source="broken")
            state = hook.OptincState(lookup=chip, error_feedback=True, scale_chunk=chunk)
            grad = torch.randn(1000, generator=gen, dtype=torch.float32)
            grad[256:512] *= 1e-3  # a chunk of small gradients gets its own, finer scale
            out = hook.aggregate(state, grad, 0)
            # what each rank sent: the shared scales and its codes, gathered for the check
            step = chunk or 1000
            maxima = torch.tensor([float(grad[i : i + step].abs().max()) for i in range(0, 1000, step)])
            dist.all_reduce(maxima, op=dist.ReduceOp.MAX)
            sizes = torch.tensor([min(step, 1000 - i) for i in range(0, 1000, step)])
            scale = torch.repeat_interleave(maxima, sizes).to(torch.float64)
            q = hook.quantise(grad.to(torch.float64), scale, 4)
            report[f"{preprocessing}_small_codes"] = int(q[256:512].unique().numel())
            gathered = [torch.zeros_like(q) for _ in range(world)]
            dist.all_gather(gathered, q)
            raw = torch.stack(gathered)
            if preprocessing == "sum":
                index = raw.sum(0)
            else:
                counts = torch.stack([((raw >> k) & 1).sum(0) for k in range(4)])
                index = sum(counts[k] * (world + 1) ** k for k in range(4))
            expected = hook.dequantise(torch.as_tensor(table)[index], scale, 4).to(torch.float32)
            report[f"{preprocessing}_equal"] = bool(torch.equal(out, expected))
            report[f"{preprocessing}_residual"] = float(
                (state.residuals[0] - (grad.to(torch.float64) - hook.dequantise(q, scale, 4))).abs().max()
            )
        nan_grad = torch.ones(10) * (rank + 1)
        if rank == 2:
            nan_grad[3] = float("nan")
        state = hook.OptincState(lookup=ideal_lookup(world, 4))
        out = hook.aggregate(state, nan_grad, 1)
        report["fallbacks"] = state.fallbacks
        report["fallback_value"] = float(out[0])
        sampler_state = hook.OptincState(
            lookup=ideal_lookup(world, 4), table_sampler=lambda rng: np.full(n_inputs(world, 4, "sum"), 15)
        )
        hook.aggregate(sampler_state, torch.zeros(100), 0)
        report["ber"] = sampler_state.bit_error_rate
        report["level_error"] = sampler_state.mean_level_error
        report["large_errors"] = sampler_state.large_error_rate
        perfect = ideal_lookup(world, 4).table
        drawn = []

        def flaky(rng):  # the first two chips are wrong at one sum
            table = perfect.copy()
            if len(drawn) < 2:
                table[30] = 7
            drawn.append(1)
            return table

        screened = hook.OptincState(lookup=ideal_lookup(world, 4), table_sampler=flaky, screen_chips=True)
        report["rejected"] = screened.chips_rejected
        report["screened_ok"] = bool(torch.equal(screened.table_for_step(0), torch.as_tensor(perfect)))
        try:
            hook.OptincState(lookup=ideal_lookup(world + 1, 4))
        except InputError as exc:
            report["mismatch"] = str(exc)
        dist.barrier()  # no rank tears down while another still talks to it
    finally:
        dist.destroy_process_group()
    queue.put((rank, report))


def test_quantiser_scales_per_element_and_zero_chunks_sit_at_the_middle_code():
    from optinc_compiler.distributed import hook

    v = torch.tensor([1.0, -1.0, 0.5, 0.0, 0.0, 0.001], dtype=torch.float64)
    maxima = hook.chunk_maxima(v, 2)
    assert maxima.tolist() == [1.0, 0.5, 0.001]
    scale = hook.element_scales(torch.tensor([1.0, 0.0, 0.001], dtype=torch.float64), 2, 6)
    assert scale.tolist() == [1.0, 1.0, 0.0, 0.0, 0.001, 0.001]
    # a zero scale (an all-zero chunk) gives the middle code L // 2; 0 on a real scale is
    # 7.5, rounded half to even: 8
    assert hook.quantise(v, scale, 4).tolist() == [15, 0, 7, 7, 8, 15]
    np.testing.assert_allclose(hook.dequantise(hook.quantise(v, scale, 4), scale, 4)[:2], [1.0, -1.0])


def test_the_hook_equals_the_chip_lookup_bit_for_bit_in_four_gloo_processes(tmp_path):
    import torch.multiprocessing as mp

    world = 4
    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    mp.spawn(_hook_worker, args=(world, f"file://{tmp_path}/store", queue), nprocs=world, join=True)
    reports = dict(queue.get() for _ in range(world))
    for rank, r in reports.items():
        assert r["sum_equal"], rank
        assert r["per_bit_equal"], rank
        assert r["sum_residual"] < 1e-12
        assert r["sum_small_codes"] > 8  # its own scale: the small chunk spans the codes
        assert r["per_bit_small_codes"] <= 2  # one bucket scale: all near code 7.5
        assert r["fallbacks"] == 1  # every rank took the all-reduce path for the NaN bucket
        assert r["fallback_value"] == pytest.approx((1 + 2 + 3 + 4) / 4)
        # the chip outputs 15 (1111) where the ideal says 7 or 8 (0111 or 1000) for zeros
        assert 0.25 <= r["ber"] <= 1.0
        # zeros quantise to code 7 on every rank (s = 28, ideal 7): 15 is 8 levels off
        assert r["level_error"] == 8.0
        assert r["large_errors"] == 1.0
        assert r["rejected"] == 2
        assert r["screened_ok"]
        assert r["mismatch"] == (
            "the aggregator chip serves 5 servers; this process group has 4 ranks "
            "(compile a chip for 4 servers or change the world size)"
        )


def test_ddp_experiment_and_compare_cli(tmp_path):
    pytest.importorskip("sklearn")
    runner = CliRunner()
    common = ["--world-size", "2", "--epochs", "2", "--seed", "1"]
    runs = tmp_path / "runs" / "seed1"  # as the README's --out runs/ring: the parents do not exist yet
    for agg in ("ring", "optinc"):
        result = runner.invoke(
            main, ["ddp-experiment", *common, "--aggregation", agg, "--out", str(runs / agg)]
        )
        assert result.exit_code == 0, result.output
        metrics = json.loads((runs / agg / "metrics.json").read_text())
        assert [m["epoch"] for m in metrics] == [1, 2]
        assert metrics[-1]["test_accuracy"] > 0.5
    compare = runner.invoke(
        main,
        [
            "ddp-compare",
            str(runs / "ring"),
            str(runs / "optinc"),
            "--plot",
            str(tmp_path / "cmp.png"),
        ],
    )
    assert compare.exit_code == 0, compare.output
    assert "optinc (4-bit)" in compare.output
    assert (tmp_path / "cmp.png").is_file()
    save_lookup(ideal_lookup(4, 4), tmp_path / "lut4.json")
    wrong = runner.invoke(
        main,
        [
            "ddp-experiment",
            *common,
            "--aggregation",
            "optinc",
            "--lookup",
            str(tmp_path / "lut4.json"),
            "--out",
            str(tmp_path / "x"),
        ],
    )
    assert wrong.exit_code == 1
    assert wrong.output.strip() == "Error: the aggregator chip serves 4 servers; the world size is 2"
    (tmp_path / "lutonly").mkdir()
    save_lookup(ideal_lookup(2, 4), tmp_path / "lutonly" / "lut.json")
    noisy = runner.invoke(
        main,
        [
            *["ddp-experiment", *common, "--aggregation", "optinc", "--design", str(tmp_path / "lutonly")],
            *["--phase-noise-rad", "0.01", "--out", str(tmp_path / "y")],
        ],
    )
    assert noisy.exit_code == 1
    assert noisy.output.strip() == f"Error: design folder '{tmp_path / 'lutonly'}' has no electronics.json"
    missing = runner.invoke(main, ["ddp-compare", str(tmp_path)])
    assert missing.exit_code == 1
    assert "has no config.json" in missing.output


def test_ddp_experiment_says_when_its_output_folder_cannot_be_made(tmp_path):
    pytest.importorskip("torch")
    (tmp_path / "runs").write_text("a file where the folder should be")
    out = tmp_path / "runs" / "ring"
    result = CliRunner().invoke(main, ["ddp-experiment", "--world-size", "2", "--out", str(out)])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: cannot create output folder {str(out)!r}: its parent {str(tmp_path / 'runs')!r} is a file\n"
    )
