"""Figure 4 (claim 5): reachable multistability against learning, every completed run but
the memory-horizon sweep's:
VAA after warm-up (step 1, before any supervised step; the initial VAA for runs without
warm-up) against the final test loss, one panel per benchmark, with Spearman's rank
correlation printed (and in each panel's title).

    python -m src.figures.vaa_vs_test --experiment reproduce-cpu --out outputs/figures
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt

from src.figures.cli import cli
from src.figures.plots import COLORS, LABELS, log_if_wide, nothing, save
from src.figures.runs import AFTER_WARMUP, VARIANTS
from src.figures.stats import order


#: Sweeps left out: the memory horizon varies the length, which sets the loss by itself.
VARIED_LENGTH = ("memory_horizon",)


def points(runs, bench):
    """(VAA after warm-up, test loss, variant) of the runs on ``bench`` that have both, at the
    benchmark's one length (the memory-horizon sweep's other lengths are left out)."""
    out = []
    for r in runs:
        if r.figure in VARIED_LENGTH:
            continue
        v, loss = r.at("vaa", AFTER_WARMUP), r.metrics.get("test/loss")
        if r.benchmark == bench and v is not None and loss is not None and math.isfinite(loss):
            out.append((v, loss, r.variant))
    return out


def correlation(xs, ys) -> float:
    """Spearman's rank correlation; NaN for fewer than 3 points or a constant variable."""
    from scipy.stats import spearmanr

    if len(xs) < 3 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return math.nan
    return float(spearmanr(xs, ys).statistic)


def correlations(runs) -> dict[str, tuple[int, float]]:
    """Per benchmark: (number of runs, Spearman rho of VAA after warm-up vs test loss)."""
    out = {}
    for bench in order({r.benchmark for r in runs}):
        pts = points(runs, bench)
        if pts:
            out[bench] = (len(pts), correlation([p[0] for p in pts], [p[1] for p in pts]))
    return out


def make(runs, out):
    corr = correlations(runs)
    if not corr:
        return nothing("vaa_vs_test")
    fig, axes = plt.subplots(1, len(corr), figsize=(4.2 * len(corr), 3.6), squeeze=False)
    for ax, (bench, (n, rho)) in zip(axes[0], corr.items()):
        pts = points(runs, bench)
        for v in order({p[2] for p in pts}, VARIANTS):
            sel = [p for p in pts if p[2] == v]
            ax.scatter([p[0] for p in sel], [p[1] for p in sel], s=14, color=COLORS.get(v),
                       label=LABELS.get(v, v), alpha=0.8)
        ax.set_xscale("log")
        log_if_wide(ax, [p[1] for p in pts])
        ax.set_xlabel("VAA after warm-up")
        ax.set_ylabel("test loss")
        ax.set_title(f"{bench}: Spearman rho = {rho:.2f} (n = {n})", fontsize=9)
        print(f"vaa_vs_test: {bench}: Spearman rho(VAA after warm-up, test loss) = {rho:.3f}, "
              f"n = {n}")
    legend = {lab: h for ax in axes[0] for h, lab in zip(*ax.get_legend_handles_labels())}
    axes[0][-1].legend(legend.values(), legend.keys(), fontsize=7)
    fig.suptitle("Reachable multistability before training against the test loss", fontsize=10)
    return save(fig, out, "vaa_vs_test")


if __name__ == "__main__":
    cli(make, __doc__.splitlines()[0])
