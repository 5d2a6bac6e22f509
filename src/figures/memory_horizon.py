"""The memory horizon: the final test MSE of copy-first-input against the length L
of the dependency, one panel per cell, one line per warm-up variant (median over seeds, the
band their range, seeds as dots). Chance is MSE 1 (predicting 0). Sweep: memory_horizon.

    python -m src.figures.memory_horizon --experiment reproduce-cpu --out outputs/figures
"""

from __future__ import annotations

import statistics

import matplotlib.pyplot as plt

from src.figures.cli import cli
from src.figures.plots import COLORS, LABELS, nothing, save
from src.figures.stats import SOLVED, length_sweep

SWEEPS = ("memory_horizon",)
SOLVED_MSE = SOLVED["copy"].bound  # a run below this test MSE has learned the dependency


def horizon_sweep(runs):
    return length_sweep(runs, SWEEPS, "test/loss", "benchmark.seq_length")


def table(sweep) -> dict[tuple[str, str, int], list[float]]:
    """``(cell, variant, L) -> [test MSE per seed]``."""
    return {k: [r.metrics["test/loss"] for r in sel] for k, sel in sweep.groups.items()}


def make(runs, out):
    sweep = horizon_sweep(runs)
    if not sweep.groups:
        return nothing("memory_horizon", SWEEPS)
    cells, variants, lengths = sweep.cells, sweep.variants, sweep.lengths
    losses = table(sweep)
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
    sweep = horizon_sweep(runs)
    if not sweep.groups:
        return []
    losses = table(sweep)
    lengths = sweep.lengths
    lines = ["", "## Memory horizon (copy first input against L)", "",
             f"Per cell, warm-up and length L: median final test MSE over seeds, and the seeds "
             f"below {SOLVED_MSE} (chance is 1).", "",
             "| cell | warm-up | " + " | ".join(f"L = {L}" for L in lengths) + " |",
             "|---|---|" + "---|" * len(lengths)]
    for cell in sweep.cells:
        for var in sweep.variants:
            row = [f"{statistics.median(v):.3f} ({sum(x < SOLVED_MSE for x in v)}/{len(v)})"
                   if (v := losses.get((cell, var, L))) else "–" for L in lengths]
            if any(c != "–" for c in row):
                lines.append(f"| {cell} | {var} | " + " | ".join(row) + " |")
    return lines


if __name__ == "__main__":
    cli(make, __doc__.splitlines()[0])
