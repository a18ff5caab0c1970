r"""A ``torch.distributed`` DDP communication hook that aggregates gradients the way the
OptINC chip does, bit for bit (OptINC, arXiv 2603.28290).

Per bucket, on every rank::

    v      = grad + residual                       # error feedback (Karimireddy et al. 2019)
    scale  = all_reduce_max(max |v| per chunk)     # shared scales: one per chunk of
                                                   # ``scale_chunk`` elements (QSGD's
                                                   # bucketing, Alistarh et al. 2017)
    q      = round((v / scale + 1) / 2 * L)        # offset binary, 0..L, L = 2^b - 1
    residual = v - dequantise(q)                   # kept on the server
    index  = all_reduce_sum(q)                     # the optical preprocessing ("sum"),
                                                   # or of the bit planes ("per_bit")
    code   = table[index]                          # what the chip outputs
    grad   = dequantise(code) = (2 code / L - 1) * scale

A bucket with a NaN or inf on any rank (one flag all-reduced with the scale, so every
rank takes the same path) is averaged by a plain all-reduce instead and counted in
``state.fallbacks``. ``OptincState`` refuses a process group whose size is not the
chip's number of servers. A noisy chip: ``table_sampler`` draws a table (fixed per run or
fresh per step, from a seed every rank shares) and bit errors against the ideal table
are counted.

The same hook runs under ``torchrun`` with NCCL on GPUs: ``model.register_comm_hook(state,
optinc_hook)``.
"""

# No "from __future__ import annotations": DDP checks the hook's annotations at run time.

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from optinc_compiler.distributed.lookup import DEFAULT_SCALE_CHUNK, ChipLookup, ideal_lookup
from optinc_compiler.errors import InputError

#: The screen gives up after this many rejected chips.
MAX_SCREENED_CHIPS = 1000


@dataclass
class OptincState:
    """What the hook keeps between steps (one per rank).

    Attributes:
        lookup: the chip's table (ideal or a fabricated chip's).
        error_feedback: keep each bucket's quantisation residual and add it next step.
        scale_chunk: elements per shared scale (None: one scale per bucket).
        table_sampler: ``rng -> table`` for a noisy chip (None: always ``lookup``).
        resample_every_step: draw a fresh table each step (control noise) rather than
            once per run (a fabricated chip).
        seed: shared by all ranks, so they draw the same tables.
        screen_chips: a fabricated chip must output the ideal code for every reduced
            input (a test of N L + 1 inputs after fabrication); failing chips are
            rejected and another is drawn (``chips_rejected`` counts them).
    """

    lookup: ChipLookup
    process_group: Any = None
    error_feedback: bool = True
    scale_chunk: int | None = DEFAULT_SCALE_CHUNK
    table_sampler: Callable[[np.random.Generator], np.ndarray] | None = None
    resample_every_step: bool = False
    seed: int = 0
    screen_chips: bool = False
    chips_rejected: int = 0
    residuals: dict[int, torch.Tensor] = field(default_factory=dict)
    fallbacks: int = 0
    buckets: int = 0
    elements: int = 0
    bit_errors: int = 0
    level_errors: int = 0
    large_errors: int = 0
    steps: int = 0
    _table: torch.Tensor | None = None
    _ideal: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.scale_chunk is not None and self.scale_chunk < 1:
            raise InputError(f"scale chunk is {self.scale_chunk}; allowed: 1 or more elements")
        world = dist.get_world_size(self.process_group)
        if world != self.lookup.servers:
            raise InputError(
                f"the aggregator chip serves {self.lookup.servers} servers; this process group has "
                f"{world} ranks (compile a chip for {world} servers or change the world size)"
            )
        ideal = ideal_lookup(self.lookup.servers, self.lookup.bits, self.lookup.preprocessing)
        self._ideal = torch.as_tensor(ideal.table, dtype=torch.int64)
        self._table = torch.as_tensor(self.lookup.table, dtype=torch.int64)
        if self.table_sampler is not None and not self.resample_every_step:
            self._table = self._draw(0)
            while self.screen_chips and not torch.equal(self._table, self._ideal):
                self.chips_rejected += 1
                if self.chips_rejected >= MAX_SCREENED_CHIPS:
                    raise InputError(
                        f"no chip of {MAX_SCREENED_CHIPS} drawn passed the screen: too much phase noise"
                    )
                self._table = self._draw_chip(self.chips_rejected)

    def _draw(self, step: int) -> torch.Tensor:
        assert self.table_sampler is not None
        rng = np.random.default_rng([self.seed, step])
        return torch.as_tensor(np.asarray(self.table_sampler(rng)), dtype=torch.int64)

    def _draw_chip(self, attempt: int) -> torch.Tensor:
        """Another fabricated chip (the screen's next candidate)."""
        assert self.table_sampler is not None
        rng = np.random.default_rng([self.seed, 0, attempt])
        return torch.as_tensor(np.asarray(self.table_sampler(rng)), dtype=torch.int64)

    def table_for_step(self, bucket_index: int) -> torch.Tensor:
        """The table of this step (a new draw at bucket 0 when resampling per step)."""
        if self.table_sampler is not None and self.resample_every_step and bucket_index == 0:
            self._table = self._draw(self.steps + 1)
        assert self._table is not None
        return self._table

    @property
    def bit_error_rate(self) -> float:
        """Wrong output bits per aggregated bit so far."""
        total = self.elements * self.lookup.bits
        return self.bit_errors / total if total else 0.0

    @property
    def mean_level_error(self) -> float:
        """Mean ``|code - ideal code|`` per aggregated element, in levels of the average (a
        wrong LSB costs 1, a wrong MSB ``2^(b-1)``)."""
        return self.level_errors / self.elements if self.elements else 0.0

    @property
    def large_error_rate(self) -> float:
        """Aggregated elements off by more than one level."""
        return self.large_errors / self.elements if self.elements else 0.0


def quantise(v: torch.Tensor, scale: torch.Tensor, bits: int) -> torch.Tensor:
    """Offset-binary codes 0..L of ``v`` in [-scale, scale] (round half to even);
    ``scale`` is one number or one per element. Where it is 0 (all zero) the code is
    L // 2 (any code dequantises to 0 there)."""
    top = (1 << bits) - 1
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    codes = torch.clamp(torch.round((v / safe + 1) / 2 * top), 0, top).to(torch.int64)
    return torch.where(scale > 0, codes, torch.full_like(codes, top // 2))


def chunk_maxima(v: torch.Tensor, chunk: int | None) -> torch.Tensor:
    """``max |v|`` of each chunk of ``chunk`` elements (the last may be shorter)."""
    if chunk is None or v.numel() <= chunk:
        return v.abs().amax().reshape(1) if v.numel() else torch.zeros(1, dtype=v.dtype)
    pad = (-v.numel()) % chunk
    return torch.nn.functional.pad(v.abs(), (0, pad)).reshape(-1, chunk).amax(1)


def element_scales(maxima: torch.Tensor, chunk: int | None, n: int) -> torch.Tensor:
    """Each element's scale: the maximum of its chunk."""
    if maxima.numel() == 1:
        return maxima[0]
    assert chunk is not None
    return maxima.repeat_interleave(chunk)[:n]


def dequantise(q: torch.Tensor, scale: torch.Tensor, bits: int) -> torch.Tensor:
    """Values of codes: ``(2 q / L - 1) * scale``."""
    top = (1 << bits) - 1
    return (2 * q.to(torch.float64) / top - 1) * scale


def reduced_index(q: torch.Tensor, lookup: ChipLookup, group: Any) -> torch.Tensor:
    """The chip's reduced input, formed electronically by a sum all-reduce."""
    if lookup.preprocessing == "sum":
        s = q.clone()
        dist.all_reduce(s, op=dist.ReduceOp.SUM, group=group)
        return s
    planes = torch.stack([(q >> k) & 1 for k in range(lookup.bits)])
    dist.all_reduce(planes, op=dist.ReduceOp.SUM, group=group)
    weights = torch.tensor([(lookup.servers + 1) ** k for k in range(lookup.bits)], dtype=torch.int64)
    return (planes * weights[:, None]).sum(0)


def aggregate(state: OptincState, grad: torch.Tensor, bucket_index: int) -> torch.Tensor:
    """The averaged gradient as the chip delivers it (same on every rank)."""
    group, lookup = state.process_group, state.lookup
    flat = grad.detach().reshape(-1).to(torch.float64)
    residual = state.residuals.get(bucket_index) if state.error_feedback else None
    v = flat + residual if residual is not None and residual.shape == flat.shape else flat
    finite = bool(torch.isfinite(v).all())
    # the chunks' scales and the NaN/inf flag in one small all-reduce (same length on all ranks)
    maxima = chunk_maxima(v if finite else torch.zeros_like(v), state.scale_chunk)
    head = torch.cat([maxima, torch.tensor([0.0 if finite else 1.0], dtype=v.dtype)])
    dist.all_reduce(head, op=dist.ReduceOp.MAX, group=group)
    state.buckets += 1
    if head[-1] > 0:  # NaN or inf somewhere: average as is, count it, drop the residual
        state.fallbacks += 1
        state.residuals.pop(bucket_index, None)
        out = grad.detach().clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM, group=group)
        return out / lookup.servers
    scale = element_scales(head[:-1].to(torch.float64), state.scale_chunk, v.numel())
    q = quantise(v, scale, lookup.bits)
    if state.error_feedback:
        state.residuals[bucket_index] = v - dequantise(q, scale, lookup.bits)
    index = reduced_index(q, lookup, group)
    table = state.table_for_step(bucket_index)
    code = table[index]
    if state.table_sampler is not None:
        assert state._ideal is not None
        wrong = torch.bitwise_xor(code, state._ideal[index])
        state.bit_errors += int(sum(int(((wrong >> k) & 1).sum()) for k in range(lookup.bits)))
        off = (code - state._ideal[index]).abs()
        state.level_errors += int(off.sum())
        state.large_errors += int((off > 1).sum())
    state.elements += int(flat.numel())
    if bucket_index == 0:
        state.steps += 1
    return dequantise(code, scale, lookup.bits).to(grad.dtype).reshape(grad.shape)


def optinc_hook(state: OptincState, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
    """DDP communication hook: ``model.register_comm_hook(state, optinc_hook)``."""
    result = aggregate(state, bucket.buffer(), bucket.index())
    future: torch.futures.Future[torch.Tensor] = torch.futures.Future()
    future.set_result(result)
    return future
