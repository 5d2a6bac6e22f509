"""The T-Maze figure: episodes until a DRQN solves the maze, against its length L,
per cell, with and without warm-up. Top row: the median over seeds (line) and each seed
(dots; a hollow dot above the budget is a seed that never solved it). Bottom row: the share of
seeds that solved it. Sweep: tmaze.

    python -m src.figures.tmaze --experiment reproduce-cpu --out outputs/figures
"""

from __future__ import annotations

import statistics

import matplotlib.pyplot as plt

from src.figures.cli import cli
from src.figures.plots import COLORS, LABELS, nothing, save
from src.figures.stats import length_sweep

SWEEPS = ("tmaze",)


def budget(run) -> int:
    """The episodes a run may learn for; an unsolved run logs this plus one evaluation."""
    return int(run.params["benchmark.episodes"])


def tmaze_sweep(runs):
    return length_sweep(runs, SWEEPS, "episodes_to_solve", "benchmark.length")


def table(sweep) -> dict[tuple[str, str, int], tuple[int, int, float]]:
    """``(cell, variant, L) -> (solved, seeds, median episodes to solve)``; the median counts
    an unsolved seed as solved one evaluation after the budget (it is censored there)."""
    out = {}
    for key, sel in sweep.groups.items():
        solved = sum(r.metrics["solved"] == 1.0 for r in sel)
        median = statistics.median(r.metrics["episodes_to_solve"] for r in sel)
        out[key] = (solved, len(sel), median)
    return out


def make(runs, out):
    sweep = tmaze_sweep(runs)
    if not sweep.groups:
        return nothing("tmaze", SWEEPS)
    cells, variants, lengths = sweep.cells, sweep.variants, sweep.lengths
    stats = table(sweep)
    fig, axes = plt.subplots(2, len(cells), figsize=(4.2 * len(cells), 5.6), squeeze=False,
                             sharex=True, gridspec_kw={"height_ratios": [3, 1.3]})
    width = 0.06 * (lengths[-1] - lengths[0] if len(lengths) > 1 else 1)
    for col, cell in enumerate(cells):
        top, bottom = axes[0][col], axes[1][col]
        for j, var in enumerate(variants):
            shift = (j - (len(variants) - 1) / 2) * width
            xs = [L for L in lengths if (cell, var, L) in stats]
            if not xs:
                continue
            color = COLORS.get(var)
            top.plot([x + shift for x in xs], [stats[(cell, var, L)][2] for L in xs], "-o",
                     color=color, label=LABELS.get(var, var), ms=4)
            for L in xs:
                for r in sweep.groups[(cell, var, L)]:
                    solved = r.metrics["solved"] == 1.0
                    top.plot(L + shift, r.metrics["episodes_to_solve"], "o", ms=4,
                             color=color, alpha=0.5, fillstyle="full" if solved else "none")
            shares = [stats[(cell, var, L)][0] / stats[(cell, var, L)][1] for L in xs]
            bottom.bar([x + shift for x in xs], shares, width, color=color, alpha=0.75)
        cap = max(budget(r) for (c, _, _), sel in sweep.groups.items() if c == cell for r in sel)
        top.axhline(cap, color="k", lw=0.6, ls=":")
        top.set_title(cell)
        top.set_ylabel("episodes to solve (median)")
        bottom.set_ylabel("share solved")
        bottom.set_ylim(0, 1.05)
        bottom.set_xlabel("maze length L")
        bottom.set_xticks(lengths)
    axes[0][0].legend(fontsize=8)
    fig.suptitle("T-Maze: episodes until the greedy policy is optimal (dotted: the budget; "
                 "hollow: never solved)", fontsize=10)
    return save(fig, out, "tmaze")


def markdown(runs) -> list[str]:
    """The T-Maze section of summary.md (empty without T-Maze runs)."""
    sweep = tmaze_sweep(runs)
    if not sweep.groups:
        return []
    stats = table(sweep)
    cells, variants, lengths = sweep.cells, sweep.variants, sweep.lengths
    cap = max(budget(r) for sel in sweep.groups.values() for r in sel)
    lines = ["", "## T-Maze (reinforcement learning)", "",
             "Per cell, warm-up and maze length L: seeds that solved the maze (greedy policy "
             "optimal both ways) / seeds, and the median episodes until then (an unsolved seed "
             f"counts as solved one evaluation after the budget of {cap} "
             "episodes).", "",
             "| cell | warm-up | " + " | ".join(f"L = {L}" for L in lengths) + " |",
             "|---|---|" + "---|" * len(lengths)]
    for cell in cells:
        for var in variants:
            row = [f"{s[0]}/{s[1]}, {s[2]:.0f}" if (s := stats.get((cell, var, L))) else "–"
                   for L in lengths]
            if any(v != "–" for v in row):
                lines.append(f"| {cell} | {var} | " + " | ".join(row) + " |")
    return lines


if __name__ == "__main__":
    cli(make, __doc__.splitlines()[0])
