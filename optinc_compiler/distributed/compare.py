"""Side-by-side training curves of experiment runs (``optinc ddp-compare``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from optinc_compiler.distributed.experiment import EpochMetrics, load_metrics

#: Runs side by side: the table and the plot's legend stay readable.
MAX_RUNS = 32


@dataclass(frozen=True)
class RunSummary:
    """A run's name, aggregation and final numbers."""

    name: str
    aggregation: str
    final_accuracy: float
    best_accuracy: float
    final_test_loss: float
    bit_error_rate: float
    fallbacks: int
    mean_level_error: float = 0.0
    large_error_rate: float = 0.0


def summarise(run_dir: Path) -> tuple[RunSummary, list[EpochMetrics]]:
    """Read a run folder."""
    config, metrics = load_metrics(run_dir)
    last = metrics[-1]
    label = _label(config)
    return (
        RunSummary(
            name=run_dir.name,
            aggregation=label,
            final_accuracy=last.test_accuracy,
            best_accuracy=max(m.test_accuracy for m in metrics),
            final_test_loss=last.test_loss,
            bit_error_rate=last.bit_error_rate,
            fallbacks=last.fallbacks,
            mean_level_error=last.mean_level_error,
            large_error_rate=last.large_error_rate,
        ),
        metrics,
    )


def plot_runs(runs: list[tuple[RunSummary, list[EpochMetrics]]], path: Path) -> None:
    """Test accuracy and test loss against epoch, one line per run (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_a, ax_l) = plt.subplots(1, 2, figsize=(11, 4 + 0.2 * ((len(runs) + 1) // 2)), dpi=100)
    # a marker and a dash pattern per run: runs that agree (ring and ideal8) stay visible
    markers, dashes = "osv^Dxp*", ["-", "--", "-.", ":"]
    for i, (summary, metrics) in enumerate(runs):
        epochs = [m.epoch for m in metrics]
        what = (
            summary.aggregation
            if summary.aggregation == summary.name
            else f"{summary.name}: {summary.aggregation}"
        )
        style = {"marker": markers[i % len(markers)], "ls": dashes[i % len(dashes)], "ms": 4, "mfc": "none"}
        label = f"{what}, final {100 * summary.final_accuracy:.2f}%"
        ax_a.plot(epochs, [100 * m.test_accuracy for m in metrics], label=label, **style)
        ax_l.plot(epochs, [m.test_loss for m in metrics], **style)
    ax_a.set(xlabel="epoch", ylabel="test accuracy (%)", title="Digits, data-parallel training")
    ax_l.set(xlabel="epoch", ylabel="test loss (cross-entropy)", title="Test loss")
    ax_l.set_yscale("log")
    from matplotlib.ticker import MaxNLocator

    for ax in (ax_a, ax_l):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
    fig.legend(loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.045 * ((len(runs) + 1) // 2), 1, 1))
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)


def _label(config: dict[str, object]) -> str:
    """``ring``, ``ideal8``, ``optinc (4-bit)``, ``optinc (aggregator_n4_b4, 0.01 rad per run)``
    or ``optinc (aggregator_n4_b4, 0.01 rad per run, screened)``."""
    aggregation = str(config["aggregation"])
    if aggregation != "optinc":
        return aggregation
    design = config.get("design")
    if not design:
        return f"optinc ({config['bits']}-bit)"
    noise = float(str(config.get("phase_noise_rad") or 0.0))
    when = "per step" if config.get("noise_per_step") else "per run"
    if config.get("screen_chips"):
        when += ", screened"
    return f"optinc ({Path(str(design)).name}" + (f", {noise} rad {when})" if noise else ")")
