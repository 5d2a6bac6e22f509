"""Drawing: the variants' labels and colours, saving a figure as PNG and PDF, grouped bars."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display: before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402

import math  # noqa: E402
import statistics  # noqa: E402

LABELS = {"none": "no warm-up", "full": "full warm-up", "partial": "partial warm-up",
          "parallel": "parallel, no warm-up", "full-excite": "full warm-up (excite)",
          "partial-excite": "partial warm-up (excite)"}

COLORS = {"none": "#7f7f7f", "full": "#d62728", "partial": "#1f77b4", "parallel": "#9467bd",
          "full-excite": "#8c564b", "partial-excite": "#17becf"}


def save(fig, out: Path, name: str, rect=(0, 0, 1, 1)) -> list[Path]:
    """``out/name.png`` and ``out/name.pdf``, laid out within ``rect`` of the figure."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    fig.tight_layout(rect=rect)
    for p in paths:
        fig.savefig(p, dpi=150)
    plt.close(fig)
    return paths


def grouped_bars(ax, cells: list[str], variants: list[str], values: dict[tuple, list[float]]):
    """Per (cell, variant): a bar at the median over seeds, whiskers from the lowest to the
    highest seed (so they never leave the quantity's range: a share stays in [0, 1]), and each
    seed as a dot; x = cells."""
    width = 0.8 / max(len(variants), 1)
    for j, v in enumerate(variants):
        xs = [i + (j - (len(variants) - 1) / 2) * width for i in range(len(cells))]
        seeds = [[p for p in values.get((c, v), []) if p is not None and math.isfinite(p)]
                 for c in cells]
        mid = [statistics.median(p) if p else math.nan for p in seeds]
        low = [m - min(p) if p else 0.0 for m, p in zip(mid, seeds)]
        high = [max(p) - m if p else 0.0 for m, p in zip(mid, seeds)]
        ax.bar(xs, mid, width, yerr=[low, high], capsize=2, color=COLORS.get(v), alpha=0.75,
               label=LABELS.get(v, v))
        for x, c in zip(xs, cells):
            pts = [p for p in values.get((c, v), []) if p is not None]
            ax.plot([x] * len(pts), pts, ".", color="k", ms=3)
    ax.set_xticks(range(len(cells)), cells)


def log_if_wide(ax, values, decades: float = 1.0) -> None:
    """A log y axis when the positive values span more than ``decades`` decades."""
    xs = [v for v in values if v is not None and v > 0]
    if xs and max(xs) / min(xs) > 10**decades:
        ax.set_yscale("log")


def nothing(name: str, sweeps: tuple[str, ...] | None = None) -> list[Path]:
    where = f"of sweep(s) {', '.join(sweeps)} " if sweeps else ""
    print(f"{name}: no completed runs {where}in this experiment, nothing drawn "
          f"(make reproduce runs them)")
    return []
