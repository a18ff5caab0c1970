"""Data-parallel training on the CPU with the gloo backend, real processes
(``torch.multiprocessing``), aggregating gradients by PyTorch's ring all-reduce or
through the OptINC chip's lookup (``hook.optinc_hook``).

Data: scikit-learn's handwritten digits (1,797 8x8 images shipped with the package, no
download), a fixed 80/20 split; model: an MLP 64-64-10; SGD with momentum. Rank 0
evaluates the test set after every epoch and writes ``metrics.json``, ``metrics.csv`` and
``config.json`` into the output folder (created with its parents).
"""

from __future__ import annotations

import csv
import io
import json
import math
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from optinc_compiler.aggregator.encoding import MAX_SEED
from optinc_compiler.distributed.lookup import DEFAULT_SCALE_CHUNK
from optinc_compiler.errors import InputError, OptincError
from optinc_compiler.files import check_output_names, make_folder, path_kind
from optinc_compiler.guard import (
    as_bool,
    as_dict,
    as_float,
    as_int,
    as_list,
    as_str,
    get,
    quote,
    read_json,
)

AGGREGATIONS = ("ring", "optinc", "ideal8")
#: Epochs of one run (the digits MLP converges in ~20; each epoch takes seconds).
MAX_EPOCHS = 1000
#: Elements per shared quantisation scale: more than one DDP bucket (25 MB of floats)
#: holds.
MAX_SCALE_CHUNK = 2**24
#: Phase noise per heater (rad, standard deviation): beyond pi every phase is random.
MAX_PHASE_NOISE_RAD = math.pi
#: The files of a run folder (``write_metrics`` writes config.json last).
RUN_FILES = ("config.json", "metrics.json", "metrics.csv")


@dataclass(frozen=True)
class ExperimentConfig:
    """One training run. ``aggregation``: ``ring`` (PyTorch's all-reduce), ``optinc``
    (the chip's lookup: ``lookup_file`` or an ideal chip of ``bits``), ``ideal8`` (an ideal
    8-bit aggregator, a reference line)."""

    world_size: int = 4
    aggregation: str = "ring"
    epochs: int = 20
    seed: int = 0
    batch_size: int = 16  # per rank
    lr: float = 0.05
    momentum: float = 0.9
    hidden: int = 64
    bits: int = 4
    lookup_file: str | None = None
    error_feedback: bool = True
    scale_chunk: int | None = DEFAULT_SCALE_CHUNK  # elements per shared scale (None: per bucket)
    design: str | None = None  # an aggregator design folder (its lut.json; noise draws)
    phase_noise_rad: float = 0.0  # Gaussian phase noise on every heater of the design's chip
    noise_per_step: bool = False  # a fresh chip each step (control noise), else one per run
    screen_chips: bool = False  # reject fabricated chips that fail the reduced-input test

    def __post_init__(self) -> None:
        if self.aggregation not in AGGREGATIONS:
            raise InputError(f"aggregation {self.aggregation!r}; allowed: {', '.join(AGGREGATIONS)}")
        if not 2 <= self.world_size <= 64:
            raise InputError(f"world size is {self.world_size}; allowed: 2 to 64")
        if not 1 <= self.epochs <= MAX_EPOCHS:
            raise InputError(f"epochs is {self.epochs}; allowed: 1 to {MAX_EPOCHS}")
        if not 0 <= self.seed <= MAX_SEED:
            raise InputError(f"seed is {self.seed}; allowed: 0 to {MAX_SEED}")
        if self.scale_chunk is not None and not 1 <= self.scale_chunk <= MAX_SCALE_CHUNK:
            raise InputError(
                f"scale chunk is {self.scale_chunk}; allowed: 1 to {MAX_SCALE_CHUNK} elements "
                "(None: one per bucket)"
            )
        if not 0 <= self.phase_noise_rad <= MAX_PHASE_NOISE_RAD:
            raise InputError(
                f"phase noise is {self.phase_noise_rad} rad; allowed: 0 to {MAX_PHASE_NOISE_RAD:.4f} (pi)"
            )
        if self.screen_chips and (not self.phase_noise_rad or self.noise_per_step):
            raise InputError(
                "--screen tests a fabricated chip: it needs --phase-noise-rad, not --noise-per-step"
            )
        if self.phase_noise_rad and self.design is None:
            raise InputError("phase noise needs the aggregator chip: give --design")
        if self.design is not None and self.lookup_file is not None:
            raise InputError("give --design or --lookup, not both")
        if (self.design is not None or self.lookup_file is not None) and self.aggregation != "optinc":
            raise InputError(f"--design and --lookup are for --aggregation optinc, not {self.aggregation}")


@dataclass(frozen=True)
class EpochMetrics:
    """Rank 0's view after one epoch."""

    epoch: int
    train_loss: float
    test_loss: float
    test_accuracy: float
    fallbacks: int
    bit_error_rate: float
    elapsed_s: float
    chips_rejected: int = 0
    mean_level_error: float = 0.0  # |delivered - ideal code| per element (hook.OptincState)
    large_error_rate: float = 0.0  # elements off by more than one level


def digits_split(seed: int = 0) -> tuple[Any, Any, Any, Any]:
    """Train and test tensors of scikit-learn's digits (80/20, fixed permutation)."""
    import numpy as np
    import torch
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.as_tensor(data.data / 16.0, dtype=torch.float32)
    y = torch.as_tensor(data.target, dtype=torch.int64)
    order = torch.as_tensor(np.random.default_rng(seed).permutation(len(y)))
    cut = int(0.8 * len(y))
    return x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]]


def run(config: ExperimentConfig, out_dir: Path) -> list[EpochMetrics]:
    """Train with ``config.world_size`` processes; write the metrics into ``out_dir``.

    ``config.design`` is found as :func:`~optinc_compiler.aggregator.locate.find_design`
    finds it (the path, else the checkout's ``designs/``); ``config.json`` records the
    folder used."""
    import torch.multiprocessing as mp

    from optinc_compiler.aggregator.locate import LUT_FILE, find_design
    from optinc_compiler.distributed.lookup import design_lookup, load_lookup

    if config.design is not None:  # the ranks load what was found here
        config = replace(config, design=str(find_design(Path(config.design), needs=LUT_FILE)))
    chip_file = config.lookup_file or config.design
    if chip_file is not None:
        path = Path(chip_file)
        lookup = load_lookup(path) if config.lookup_file is not None else design_lookup(path)
        if lookup.servers != config.world_size:
            raise InputError(
                f"the aggregator chip serves {lookup.servers} servers; the world size is {config.world_size}"
            )
    if config.phase_noise_rad and config.design is not None:  # fail here, not in every rank
        from optinc_compiler.distributed.lookup import noisy_chip_sampler

        noisy_chip_sampler(Path(config.design), noise_rad=config.phase_noise_rad)
    # before training: a run file may not be one of the run's inputs (--lookup run/config.json)
    check_output_names(out_dir, RUN_FILES, inputs=_inputs(config), what="run file")
    prepare_out_dir(out_dir)
    queue = mp.get_context("spawn").SimpleQueue()
    try:
        # a file rendezvous: no TCP store that rank 0 hosts and tears down under the others
        with tempfile.TemporaryDirectory(prefix="optinc-ddp-") as rendezvous:
            store = f"file://{rendezvous}/store"
            mp.spawn(_worker, args=(config, store, queue), nprocs=config.world_size, join=True)
    except (mp.ProcessExitedException, mp.ProcessRaisedException) as exc:  # one line, not a traceback
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise OptincError(
            f"a training process failed ({first}); no metrics written to {str(out_dir)!r}"
        ) from None
    metrics = [EpochMetrics(**m) for m in queue.get()]
    write_metrics(config, metrics, out_dir)
    return metrics


def _inputs(config: ExperimentConfig) -> tuple[Path, ...]:
    """The files a run reads, which its run files must not replace."""
    return (Path(config.lookup_file),) if config.lookup_file is not None else ()


def prepare_out_dir(out_dir: Path) -> Path:
    """Create the output folder with its parents, as ``optinc build --out`` does."""
    return make_folder(out_dir)


def write_metrics(config: ExperimentConfig, metrics: list[EpochMetrics], out_dir: Path) -> None:
    """``metrics.csv``, ``metrics.json`` then ``config.json`` (atomic writes; a folder
    with config.json is complete). InputError before writing if a metric is not finite
    (a diverged run), since :func:`load_metrics` would refuse the file."""
    from optinc_compiler.files import write_text_atomic

    doc = [asdict(m) for m in metrics]
    for m in doc:
        bad = [k for k, v in m.items() if isinstance(v, float) and not math.isfinite(v)]
        if bad:
            raise OptincError(
                f"epoch {m['epoch']}: {', '.join(bad)} not finite (training diverged); "
                f"no metrics written to {quote(out_dir)}"
            )
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(doc[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(doc)
    inputs = _inputs(config)
    write_text_atomic(out_dir / "metrics.csv", text.getvalue(), inputs=inputs)
    write_text_atomic(
        out_dir / "metrics.json", json.dumps(doc, indent=1, allow_nan=False) + "\n", inputs=inputs
    )
    config_text = json.dumps(asdict(config), indent=1, sort_keys=True, allow_nan=False) + "\n"
    write_text_atomic(out_dir / "config.json", config_text, inputs=inputs)


#: EpochMetrics fields: (kind, lo, hi); rates and accuracies are fractions.
_METRIC_FIELDS: dict[str, tuple[type, float, float]] = {
    "epoch": (int, 1, MAX_EPOCHS),
    "train_loss": (float, 0.0, 1e300),
    "test_loss": (float, 0.0, 1e300),
    "test_accuracy": (float, 0.0, 1.0),
    "fallbacks": (int, 0, 2**63 - 1),
    "bit_error_rate": (float, 0.0, 1.0),
    "elapsed_s": (float, 0.0, 1e300),
    "chips_rejected": (int, 0, 2**63 - 1),
    "mean_level_error": (float, 0.0, 1e300),
    "large_error_rate": (float, 0.0, 1.0),
}
_OPTIONAL_METRICS = ("chips_rejected", "mean_level_error", "large_error_rate")


def load_metrics(run_dir: Path) -> tuple[dict[str, Any], list[EpochMetrics]]:
    """A run's config and metrics, every field checked (InputError naming the file and
    the field); fields this version does not know are ignored."""
    where = quote(run_dir)
    kind = path_kind(run_dir, what="run folder")
    if kind != "folder":
        raise InputError(
            f"run folder {where} does not exist"
            if kind == "missing"
            else f"{where} is a file, not a run folder"
        )
    for name in RUN_FILES:
        if not (run_dir / name).is_file():
            raise InputError(
                f"{where} has no {name}; is it a complete 'optinc ddp-experiment' output folder?"
            )
    path = run_dir / "config.json"
    source = f"{quote(path)}"
    config = as_dict(read_json(path, what="run config"), what=source)
    as_str(get(config, "aggregation", source=source), what=f"{source}: aggregation", choices=AGGREGATIONS)
    checks = {
        "bits": lambda v, w: as_int(v, what=w, lo=1, hi=16),
        "design": lambda v, w: v if v is None else as_str(v, what=w),
        "phase_noise_rad": lambda v, w: as_float(v, what=w, lo=0.0, hi=MAX_PHASE_NOISE_RAD),
        "noise_per_step": lambda v, w: as_bool(v, what=w),
        "screen_chips": lambda v, w: as_bool(v, what=w),
    }
    for key, check in checks.items():
        if key in config:
            check(config[key], f"{source}: {key}")
    if config["aggregation"] == "optinc" and not config.get("design") and "bits" not in config:
        raise InputError(f"{source} has no field 'bits' (an optinc run without a design needs it)")
    path = run_dir / "metrics.json"
    source = f"{quote(path)}"
    rows = as_list(read_json(path, what="run metrics"), what=source, max_len=MAX_EPOCHS)
    if not rows:
        raise InputError(f"{source} holds no epochs; allowed: 1 to {MAX_EPOCHS}")
    metrics = [_epoch_metrics(row, f"{source}[{i}]") for i, row in enumerate(rows)]
    return config, metrics


def _epoch_metrics(row: Any, what: str) -> EpochMetrics:
    row = as_dict(row, what=what)
    values: dict[str, Any] = {}
    for key, (kind, lo, hi) in _METRIC_FIELDS.items():
        if key not in row and key in _OPTIONAL_METRICS:
            continue
        value = get(row, key, source=what)
        field = f"{what}.{key}"
        if kind is int:
            values[key] = as_int(value, what=field, lo=int(lo), hi=int(hi))
        else:
            values[key] = as_float(value, what=field, lo=lo, hi=hi)
    return EpochMetrics(**values)


def _worker(rank: int, config: ExperimentConfig, store: str, queue: Any) -> None:
    import torch
    import torch.distributed as dist
    from torch.nn import functional
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=store, rank=rank, world_size=config.world_size)
    try:
        torch.manual_seed(config.seed)
        x_train, y_train, x_test, y_test = digits_split()
        model = torch.nn.Sequential(
            torch.nn.Linear(64, config.hidden), torch.nn.ReLU(), torch.nn.Linear(config.hidden, 10)
        )
        ddp = DistributedDataParallel(model)
        state = _hook_state(config)
        if state is not None:
            from optinc_compiler.distributed.hook import optinc_hook

            ddp.register_comm_hook(state, optinc_hook)
        data = TensorDataset(x_train, y_train)
        sampler: DistributedSampler[Any] = DistributedSampler(
            data, num_replicas=config.world_size, rank=rank, shuffle=True, seed=config.seed
        )
        loader = DataLoader(data, batch_size=config.batch_size, sampler=sampler)
        opt = torch.optim.SGD(ddp.parameters(), lr=config.lr, momentum=config.momentum)
        metrics = []
        start = time.perf_counter()
        for epoch in range(config.epochs):
            sampler.set_epoch(epoch)
            ddp.train()
            losses = []
            for xb, yb in loader:
                opt.zero_grad()
                loss = functional.cross_entropy(ddp(xb), yb)
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
            if rank == 0:
                ddp.eval()
                with torch.no_grad():
                    logits = model(x_test)
                    metrics.append(
                        {
                            "epoch": epoch + 1,
                            "train_loss": sum(losses) / len(losses),
                            "test_loss": float(functional.cross_entropy(logits, y_test)),
                            "test_accuracy": float((logits.argmax(1) == y_test).float().mean()),
                            "fallbacks": state.fallbacks if state is not None else 0,
                            "bit_error_rate": state.bit_error_rate if state is not None else 0.0,
                            "chips_rejected": state.chips_rejected if state is not None else 0,
                            "mean_level_error": state.mean_level_error if state is not None else 0.0,
                            "large_error_rate": state.large_error_rate if state is not None else 0.0,
                            "elapsed_s": time.perf_counter() - start,
                        }
                    )
        if rank == 0:
            queue.put(metrics)
        # every rank done before any tears down: gloo aborts a rank whose peer closed first
        dist.barrier()
    finally:
        dist.destroy_process_group()


def _hook_state(config: ExperimentConfig) -> Any:
    """The hook's state for the run's aggregation (None: PyTorch's all-reduce)."""
    if config.aggregation == "ring":
        return None
    from optinc_compiler.distributed.hook import OptincState
    from optinc_compiler.distributed.lookup import (
        design_lookup,
        ideal_lookup,
        load_lookup,
        noisy_chip_sampler,
    )

    sampler = None
    if config.aggregation == "ideal8":
        lookup = ideal_lookup(config.world_size, 8)
    elif config.lookup_file is not None:
        lookup = load_lookup(Path(config.lookup_file))
    elif config.design is not None:
        lookup = design_lookup(Path(config.design))
        if config.phase_noise_rad > 0:
            sampler = noisy_chip_sampler(Path(config.design), noise_rad=config.phase_noise_rad)
    else:
        lookup = ideal_lookup(config.world_size, config.bits)
    return OptincState(
        lookup=lookup,
        error_feedback=config.error_feedback,
        scale_chunk=config.scale_chunk,
        seed=config.seed,
        table_sampler=sampler,
        resample_every_step=config.noise_per_step,
        screen_chips=config.screen_chips,
    )
