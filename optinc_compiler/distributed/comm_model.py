r"""Communication time per training step: ring all-reduce against OptINC's one optical
pass (OptINC, arXiv 2603.28290, Sec. I; ring all-reduce after Patarasuk and Yuan 2009).

Assumptions (stated in every report):

* Ring all-reduce of G bytes over N servers: ``2 (N - 1)`` steps, each moving ``G / N``
  bytes over every link at once: ``t_ring = 2 (N - 1) (alpha + G / (N B))``, with link
  bandwidth B (bytes/s) and per-step latency alpha.
* OptINC: every server sends its quantised gradient (``G * b_opt / b_grad`` bytes) once
  through the optical aggregator and receives the re-quantised average in the same
  pass: ``t_optinc = 2 alpha + G b_opt / (b_grad B) + t_chip`` (send and receive overlap
  on full-duplex links: one serialisation time; the chip's latency ``t_chip`` is
  nanoseconds of flight time plus detection).
* Training step = compute + communication, no overlap between them (the worst case for
  the baseline; overlap shrinks both communication terms alike).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from optinc_compiler.errors import InputError

#: Gradient sizes of common models (parameters x 4 bytes, fp32).
PRESETS_BYTES = {
    "resnet50": 25_557_032 * 4,
    "bert-large": 340_000_000 * 4,
    "llama-7b": 6_738_415_616 * 4,
}
#: Compute time per step on one server (s): a stated assumption, not a measurement.
PRESET_COMPUTE_S = {"resnet50": 0.12, "bert-large": 0.35, "llama-7b": 2.5}

#: Ranges of the model's inputs (``optinc comm-model`` checks them as usage errors):
#: beyond any cluster (servers), any model's gradients (1 PB), a day of compute per
#: step, a second of latency; links from 1 Mb/s to 1 Pb/s, the span
#: :func:`link_for_saving` searches.
SERVERS_RANGE = (2, 1_000_000)
GRADIENT_BYTES_RANGE = (1.0, 1e15)
COMPUTE_S_RANGE = (0.0, 86_400.0)
LINK_GBPS_RANGE = (1e-3, 1e6)
LATENCY_US_RANGE = (0.0, 1e6)
CHIP_LATENCY_US_RANGE = (0.0, 1e6)


@dataclass(frozen=True)
class CommParams:
    """Link and model parameters of the cost model."""

    gradient_bytes: float
    link_gbps: float = 400.0
    latency_us: float = 5.0
    compute_s: float = 0.1
    gradient_bits: int = 32
    optical_bits: int = 8
    chip_latency_us: float = 0.01

    def __post_init__(self) -> None:
        ranges = {
            "gradient_bytes": GRADIENT_BYTES_RANGE,
            "link_gbps": LINK_GBPS_RANGE,
            "latency_us": LATENCY_US_RANGE,
            "compute_s": COMPUTE_S_RANGE,
            "chip_latency_us": CHIP_LATENCY_US_RANGE,
        }
        for name, (lo, hi) in ranges.items():
            value = getattr(self, name)
            if not lo <= value <= hi:  # NaN fails too
                raise InputError(f"{name} is {value}; allowed: {lo:g} to {hi:g}")
        for name in ("gradient_bits", "optical_bits"):
            if not 1 <= getattr(self, name) <= 64:
                raise InputError(f"{name} is {getattr(self, name)}; allowed: 1 to 64")

    @property
    def bandwidth_bytes_per_s(self) -> float:
        """Link bandwidth in bytes per second."""
        return self.link_gbps * 1e9 / 8


def _check_servers(servers: int) -> None:
    lo, hi = SERVERS_RANGE
    if servers < lo:
        raise InputError(f"servers is {servers}; allowed: 2 or more")
    if servers > hi:
        raise InputError(f"servers is {servers}; allowed: at most {hi:,}")


def ring_allreduce_s(servers: int, p: CommParams) -> float:
    """``2 (N - 1) (alpha + G / (N B))``."""
    _check_servers(servers)
    return 2 * (servers - 1) * (p.latency_us * 1e-6 + p.gradient_bytes / (servers * p.bandwidth_bytes_per_s))


def optinc_s(servers: int, p: CommParams) -> float:
    """``2 alpha + G b_opt / (b_grad B) + t_chip`` (independent of N)."""
    _check_servers(servers)
    payload = p.gradient_bytes * p.optical_bits / p.gradient_bits
    return 2 * p.latency_us * 1e-6 + payload / p.bandwidth_bytes_per_s + p.chip_latency_us * 1e-6


@dataclass(frozen=True)
class StepTime:
    """Time per training step with each aggregation, and OptINC's saving."""

    servers: int
    ring_s: float
    optinc_s: float

    @property
    def saving(self) -> float:
        """``1 - t_optinc / t_ring`` of the whole step."""
        return 1 - self.optinc_s / self.ring_s


def step_times(servers: list[int], p: CommParams) -> list[StepTime]:
    """Compute plus communication per step for each N."""
    return [StepTime(n, p.compute_s + ring_allreduce_s(n, p), p.compute_s + optinc_s(n, p)) for n in servers]


def saving_at(servers: int, p: CommParams, link_gbps: float) -> float:
    """Step-time saving with another link bandwidth."""
    from dataclasses import replace

    q = replace(p, link_gbps=link_gbps)
    (t,) = step_times([servers], q)
    return t.saving


def link_for_saving(servers: int, p: CommParams, saving: float) -> float | None:
    """Link bandwidth (Gb/s) at which OptINC saves ``saving`` of the step (bisection on a
    log scale; the saving falls as links get faster); None if never reached."""
    lo, hi = 1e-3, 1e6
    if saving_at(servers, p, lo) < saving:
        return None
    if saving_at(servers, p, hi) >= saving:
        return hi
    for _ in range(100):
        mid = (lo * hi) ** 0.5
        lo, hi = (mid, hi) if saving_at(servers, p, mid) >= saving else (lo, mid)
    return lo


def describe_range(servers: int, p: CommParams) -> str:
    """The link bandwidths where the paper's 17-25% saving holds, as text."""
    fast, slow = link_for_saving(servers, p, 0.17), link_for_saving(servers, p, 0.25)
    if fast is None:
        return "never"
    return f"{slow:.3g}-{fast:.3g}" if slow is not None else f"<= {fast:.3g}"


def plot(p: CommParams, model: str, path: Any) -> None:
    """Step time against N for both aggregations, and the saving (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    servers = [2, 4, 8, 16, 32, 64, 128, 256]
    times = step_times(servers, p)
    fig, (ax_t, ax_s) = plt.subplots(1, 2, figsize=(11, 4), dpi=100)
    ax_t.plot(servers, [1e3 * t.ring_s for t in times], marker="o", label="ring all-reduce")
    ax_t.plot(servers, [1e3 * t.optinc_s for t in times], marker="s", label="OptINC")
    ax_t.set(
        xscale="log",
        xlabel="servers N",
        ylabel="time per step (ms)",
        title=f"{model}: {p.gradient_bytes / 1e6:.0f} MB, {p.link_gbps:g} Gb/s, compute {p.compute_s} s",
    )
    ax_s.plot(servers, [100 * t.saving for t in times], marker="o", color="C2")
    ax_s.axhspan(17, 25, color="C1", alpha=0.2, label="paper's claim: 17-25%")
    ax_s.set(xscale="log", xlabel="servers N", ylabel="step time saved by OptINC (%)", title="Saving")
    for ax in (ax_t, ax_s):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    ax_t.title.set_fontsize(9)
    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)
