"""Figure 2 (claim 3): validation loss per epoch, with and without warm-up, one panel per
cell; the line is the median over seeds, the band spans the lowest to the highest seed.
Sweep: multistability_curves.

    python -m src.figures.learning_curves --experiment reproduce-cpu --out outputs/figures
"""

from __future__ import annotations

import math
import statistics

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from src.figures.cli import cli
from src.figures.plots import COLORS, LABELS, log_if_wide, nothing, save
from src.figures.runs import CELLS, VARIANTS, of_sweeps
from src.figures.stats import group, order

SWEEPS = ("multistability_curves",)


def make(runs, out):
    runs = [r for r in of_sweeps(runs, SWEEPS) if r.history.get("val/loss")]
    if not runs:
        return nothing("learning_curves", SWEEPS)
    cells = order({r.cell for r in runs}, CELLS)
    cols = min(4, len(cells))
    rows = math.ceil(len(cells) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.8 * rows), squeeze=False,
                             sharey=True)
    by = group(runs, "cell", "variant")
    for ax, cell in zip(axes.flat, cells):
        for v in order({r.variant for r in runs}, VARIANTS):
            curves = [dict(r.history["val/loss"]) for r in by.get((cell, v), [])]
            epochs = sorted({e for c in curves for e in c})
            if not epochs:
                continue
            seeds = [[c[e] for c in curves if e in c] for e in epochs]
            ax.plot(epochs, [statistics.median(s) for s in seeds], color=COLORS.get(v),
                    label=f"{LABELS.get(v, v)} ({len(curves)})")
            ax.fill_between(epochs, [min(s) for s in seeds], [max(s) for s in seeds],
                            color=COLORS.get(v), alpha=0.2, lw=0)
        ax.set_title(cell)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    log_if_wide(axes.flat[0], [v for r in runs for _, v in r.history["val/loss"]])  # shared y
    for ax in axes.flat[len(cells):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("validation loss")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(f"Learning curves on {runs[0].benchmark}: median and range over seeds (runs)",
                 fontsize=10)
    return save(fig, out, "learning_curves")


if __name__ == "__main__":
    cli(make, __doc__.splitlines()[0])
