"""Table (claims 1-5 in numbers): per benchmark x cell x warm-up variant, mean ± std over
seeds of the final test metric and of the attractor count (at initialisation, after
warm-up, after the last epoch), the VAA / test-loss correlation of figure 4, the memory
horizon's and the T-Maze's tables, and the claims' verdicts (src/figures/claims.py) with the
machines the runs came from.
Every completed run of the experiment counts. Written to ``summary.md``, the verdicts also
to ``verdicts.json`` (what ``python -m src.reproduce --check`` compares).

    python -m src.figures.summary --experiment reproduce-cpu --out outputs/figures
"""

from __future__ import annotations

from pathlib import Path

from src.figures import claims, memory_horizon, tmaze
from src.figures.cli import cli
from src.figures.plots import nothing
from src.figures.runs import AFTER_WARMUP, CELLS, INIT, VARIANTS
from src.figures.stats import SOLVED, fmt, group, median, order, solved_share
from src.figures.vaa_vs_test import correlations

COLUMNS = ("benchmark", "cell", "warm-up", "seeds", "test loss", "median", "solved", "test acc",
           "attractors at init", "attractors after warm-up", "settled after warm-up",
           "attractors final")


def rows(runs) -> list[list[str]]:
    # the T-Maze and the memory horizon (copy at other lengths) have their own tables
    runs = [r for r in runs if "episodes_to_solve" not in r.metrics
            and r.figure not in memory_horizon.SWEEPS]
    by = group(runs, "benchmark", "cell", "variant")
    keys = sorted(by, key=lambda k: (k[0], order({r.cell for r in runs}, CELLS).index(k[1]),
                                     order({r.variant for r in runs}, VARIANTS).index(k[2])))
    table = []
    for bench, cell, var in keys:
        sel = by[(bench, cell, var)]
        table.append([bench, cell, var, str(len(sel)),
                      fmt([r.metrics.get("test/loss") for r in sel]),
                      median([r.metrics.get("test/loss") for r in sel]),
                      solved_share(sel),
                      fmt([r.metrics.get("test/acc") for r in sel]),
                      fmt([r.at("attractors", INIT) for r in sel]),
                      fmt([r.at("attractors", AFTER_WARMUP) for r in sel]),
                      fmt([r.at("settled", AFTER_WARMUP) for r in sel]),
                      fmt([r.last("attractors") for r in sel])])
    return table


def make(runs, out: Path, title: str = "") -> list[Path]:
    if not runs:
        return nothing("summary")
    n = max(r.group_size for r in runs)
    legend = (f"{len(runs)} completed runs. Each cell of the table: mean ± standard deviation "
              "over seeds (sample std; a single value when one seed); median: the median test loss; "
              "solved: the runs with a "
              + ", ".join(bar.words(k) for k, bar in SOLVED.items())
              + " (chance: MSE 1, accuracy 0.1). Test acc: classification "
              f"only. Attractors: distinct attractors reached by N = {n} sequences (N x VAA; 1 = "
              "monostable) at initialisation, after warm-up (= at initialisation without "
              "warm-up) and after the last epoch; settled: the share of those final states "
              "that sit on a fixed point (the rest still move: cycles, chaos or drift, "
              "counted by VAA but not attractors). Warm-up `parallel`: the warmed/plain "
              "structure, nothing warmed (the ablation).")
    lines = [f"# Summary{': ' + title if title else ''}", "", legend, "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in rows(runs)]
    corr = correlations(runs)
    if corr:
        about = ("Spearman's rank correlation between VAA after warm-up (before any supervised "
                 "step) and the final test loss; negative: more attractors, lower loss.")
        lines += ["", "## Multistability and learning (figure 4)", "", about, "",
                  "| benchmark | runs | Spearman rho |", "|---|---|---|"]
        lines += [f"| {b} | {k} | {rho:.2f} |" for b, (k, rho) in corr.items()]
    lines += memory_horizon.markdown(runs) + tmaze.markdown(runs)
    verdicts = claims.decide(runs)
    lines += claims.markdown(verdicts, machines(runs))
    out.mkdir(parents=True, exist_ok=True)
    path = out / "summary.md"
    path.write_text("\n".join(lines) + "\n")
    return [path, claims.write(verdicts, machines(runs), out / "verdicts.json")]


def machines(runs) -> str:
    """The machines the runs were made on (tag ``machine``), the most used first, with their
    run counts."""
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.machine or "not recorded"] = counts.get(r.machine or "not recorded", 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])
    return "; ".join(f"{m} ({n} runs)" for m, n in ranked)


if __name__ == "__main__":
    cli(make, __doc__.splitlines()[0], titled=True)
