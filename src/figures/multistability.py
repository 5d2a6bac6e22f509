"""Figure 1 (claims 1, 2): reachable multistability per cell, at initialisation and after
warm-up: VAA, the attractor count (N * VAA) and the share of final states that settled on a
fixed point (states that still move are counted by VAA but are not attractors): the median
over seeds, whiskers from the lowest to the highest seed, seeds as dots. Runs logged before ``settled`` existed leave that panel empty.

"initialisation" is step 0 of the runs without warm-up (the cells as usually initialised);
"after full / partial warm-up" is step 1 of the warmed runs. Sweep: multistability_curves.

    python -m src.figures.multistability --experiment reproduce-cpu --out outputs/figures
"""

from __future__ import annotations

import matplotlib.pyplot as plt

from src.figures.cli import cli
from src.figures.plots import grouped_bars, nothing, save
from src.figures.runs import AFTER_WARMUP, CELLS, INIT, of_sweeps
from src.figures.stats import order

SWEEPS = ("multistability_curves",)
BARS = {"none": INIT, "full": AFTER_WARMUP, "partial": AFTER_WARMUP}  # variant -> step shown


def make(runs, out):
    runs = [r for r in of_sweeps(runs, SWEEPS) if r.variant in BARS]
    if not runs:
        return nothing("multistability", SWEEPS)
    cells = order({r.cell for r in runs}, CELLS)
    variants = order({r.variant for r in runs}, tuple(BARS))
    n = max(r.group_size for r in runs)
    fig, axes = plt.subplots(1, 3, figsize=(max(11, 2.2 * len(cells) + 4), 3.8))
    ylabels = {"vaa": "VAA", "attractors": f"attractors reached (of N = {n})",
               "settled": "share of states on a fixed point"}
    for ax, key in zip(axes, ylabels):
        values = {}
        for r in runs:
            v = r.at(key, BARS[r.variant])
            if v is not None:
                values.setdefault((r.cell, r.variant), []).append(v)
        grouped_bars(ax, cells, variants, values)
        if key != "settled":
            ax.axhline(1 / n if key == "vaa" else 1, ls="--", lw=0.8, color="k")
        ax.set_ylabel(ylabels[key])
    axes[0].set_title("VAA (dashed: 1/N, one attractor)")
    axes[1].set_title("attractor count")
    axes[2].set_title("settled (1: all on fixed points)")
    handles, labels = axes[0].get_legend_handles_labels()
    labels = [{"no warm-up": "initialisation"}.get(lab, f"after {lab}") for lab in labels]
    axes[1].legend(handles, labels, fontsize=8)
    fig.suptitle(f"Reachable multistability at initialisation and after warm-up "
                 f"({runs[0].benchmark})", fontsize=10)
    return save(fig, out, "multistability")


if __name__ == "__main__":
    cli(make, __doc__.splitlines()[0])
