"""The memory horizon (issue 9): the final test MSE of copy-first-input against the length L
of the dependency, one panel per cell, one line per warm-up variant (median over seeds, the
band their range, seeds as dots). Chance is MSE 1 (predicting 0). Sweep: memory_horizon.

    python -m src.figures.memory_horizon --experiment reproduce-cpu --out outputs/figures
"""

from __future__ import annotations

import statistics

import matplotlib.pyplot as plt

from src.figures.cli import cli
from src.figures.plots import COLORS, LABELS, nothing, save
from src.figures.runs import CELLS, VARIANTS, of_sweeps
from src.figures.stats import SOLVED_BELOW, group, order

SWEEPS = ("memory_horizon",)
SOLVED = SOLVED_BELOW["copy"]  # a run below this test MSE has learned the dependency


def horizon_runs(runs):
    sel = [r for r in of_sweeps(runs, SWEEPS)
           if "test/loss" in r.metrics and "benchmark.seq_length" in r.params]
    for r in sel:
        r.length = int(r.params["benchmark.seq_length"])  # for group()
    return sel


def table(runs) -> dict[tuple[str, str, int], list[float]]:
    """``(cell, variant, L) -> [test MSE per seed]``."""
    return {k: [r.metrics["test/loss"] for r in sel]
            for k, sel in group(runs, "cell", "variant", "length").items()}


def make(runs, out):
    runs = horizon_runs(runs)
    if not runs:
        return nothing("memory_horizon", SWEEPS)
    cells = order({r.cell for r in runs}, CELLS)
    variants = order({r.variant for r in runs}, VARIANTS)
    losses = table(runs)
    lengths = sorted({r.length for r in runs})
    fig, axes = plt.subplots(1, len(cells), figsize=(4.2 * len(cells), 3.8), squeeze=False,
                             sharey=True)
    for ax, cell in zip(axes[0], cells):
        for var in variants:
            xs = [L for L in lengths if (cell, var, L) in losses]
            if not xs:
                continue
            vals = [losses[(cell, var, L)] for L in xs]
            color = COLORS.get(var)
            ax.plot(xs, [statistics.median(v) for v in vals], "-o", ms=4, color=color,
                    label=LABELS.get(var, var))
            ax.fill_between(xs, [min(v) for v in vals], [max(v) for v in vals], color=color,
                            alpha=0.15)
            for x, v in zip(xs, vals):
                ax.plot([x] * len(v), v, ".", color=color, ms=3)
        ax.axhline(1.0, color="k", lw=0.6, ls=":")
        ax.set_xscale("log", base=2)
        ax.set_xticks(lengths, [str(L) for L in lengths])
        ax.set_title(cell)
        ax.set_xlabel("dependency length L (copy first input)")
    axes[0][0].set_ylabel("final test MSE, median (dotted: chance)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle("Memory horizon: how long a dependency each cell learns", fontsize=10)
    return save(fig, out, "memory_horizon")


def markdown(runs) -> list[str]:
    """The memory-horizon section of summary.md (empty without its runs)."""
    runs = horizon_runs(runs)
    if not runs:
        return []
    losses = table(runs)
    lengths = sorted({r.length for r in runs})
    lines = ["", "## Memory horizon (copy first input against L)", "",
             f"Per cell, warm-up and length L: median final test MSE over seeds, and the seeds "
             f"below {SOLVED} (chance is 1).", "",
             "| cell | warm-up | " + " | ".join(f"L = {L}" for L in lengths) + " |",
             "|---|---|" + "---|" * len(lengths)]
    for cell in order({r.cell for r in runs}, CELLS):
        for var in order({r.variant for r in runs}, VARIANTS):
            row = [f"{statistics.median(v):.3f} ({sum(x < SOLVED for x in v)}/{len(v)})"
                   if (v := losses.get((cell, var, L))) else "–" for L in lengths]
            if any(c != "–" for c in row):
                lines.append(f"| {cell} | {var} | " + " | ".join(row) + " |")
    return lines


if __name__ == "__main__":
    cli(make, __doc__.splitlines()[0])
