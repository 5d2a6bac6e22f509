"""Figure 3 (claims 3, 4): the final test metric per cell without warm-up, with full and
partial warm-up, and with the parallel structure but no warm-up (the ablation), one panel
per benchmark (MSE for regression, accuracy for classification); the median over seeds,
whiskers from the lowest to the highest seed, seeds as dots. Sweeps: precision (the paper's warm-up; precision_parallel: its ablation runs
in stores made before the two were one sweep) and precision_excite (full and partial warm-up
by excite, drawn beside the paper's).

    python -m src.figures.precision --experiment reproduce-cpu --out outputs/figures
"""

from __future__ import annotations

import matplotlib.pyplot as plt

from src.figures.cli import cli
from src.figures.plots import grouped_bars, nothing, save
from src.figures.runs import CELLS, VARIANTS, of_sweeps
from src.figures.stats import order, test_metric

SWEEPS = ("precision", "precision_parallel", "precision_excite")


def make(runs, out):
    runs = [r for r in of_sweeps(runs, SWEEPS) if test_metric(r)[1] is not None]
    if not runs:
        return nothing("precision", SWEEPS)
    benchmarks = order({r.benchmark for r in runs})
    fig, axes = plt.subplots(1, len(benchmarks), figsize=(5 * len(benchmarks), 4.3), squeeze=False)
    for ax, bench in zip(axes[0], benchmarks):
        sel = [r for r in runs if r.benchmark == bench]
        values = {}
        for r in sel:
            values.setdefault((r.cell, r.variant), []).append(test_metric(r)[1])
        grouped_bars(ax, order({r.cell for r in sel}, CELLS), order({r.variant for r in sel}, VARIANTS),
                     values)
        metric = test_metric(sel[0])[0]
        better = "higher" if sel[0].classification else "lower"
        ax.set_title(bench)
        ax.set_ylabel(f"{metric} ({better} is better)")
    legend = {}  # every panel's variants (excite runs only on some benchmarks), once each
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    fig.legend(legend.values(), legend.keys(), loc="lower center", ncol=3, fontsize=8,
               frameon=False)  # below the panels, where it hides no bar
    fig.suptitle("Final test metric: warm-up, partial warm-up and the parallel structure",
                 fontsize=10)
    return save(fig, out, "precision", rect=(0, 0.11, 1, 1))


if __name__ == "__main__":
    cli(make, __doc__.splitlines()[0])
