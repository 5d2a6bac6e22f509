"""Summaries over seeds: grouping, ordering, mean ± std, the final test metric."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass

from src.figures.runs import CELLS, VARIANTS, Run, of_sweeps


def order(values, preferred=()) -> list[str]:
    """Distinct values, the preferred ones first in their order, then the rest sorted."""
    values = set(values)
    return [v for v in preferred if v in values] + sorted(values - set(preferred))


def group(runs: list[Run], *keys: str) -> dict[tuple, list[Run]]:
    """Runs by the tuple of attributes ``keys`` (e.g. ``"cell", "variant"``)."""
    out: dict[tuple, list[Run]] = defaultdict(list)
    for r in runs:
        out[tuple(getattr(r, k) for k in keys)].append(r)
    return out


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value) of the non-missing values."""
    xs = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not xs:
        return math.nan, math.nan
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def fmt(values) -> str:
    """``mean ± std`` over seeds, 3 significant digits for the mean; ``–`` when empty."""
    xs = [v for v in values if v is not None and math.isfinite(v)]
    if not xs:
        return "–"
    m, s = mean_std(xs)
    return f"{m:.3g}" if len(xs) == 1 else f"{m:.3g} ± {s:.2g}"


@dataclass(frozen=True)
class Bar:
    """What counts as having learned a task: the final ``metric`` below ``bound`` (a test
    MSE) or at least ``bound`` (a test accuracy)."""

    metric: str  # "test/loss" or "test/acc"
    bound: float

    def met(self, value: float) -> bool:
        return value >= self.bound if self.metric == "test/acc" else value < self.bound

    def words(self, bench: str) -> str:
        return (f"test accuracy at least {self.bound} on {bench}" if self.metric == "test/acc"
                else f"test MSE below {self.bound} on {bench}")


#: The bar per benchmark. Copy splits at MSE 0.5 (warmed runs learn to 0.02-0.3, unwarmed ones
#: stay near 1, chance); a solved denoising run scores about 0.03 and an unsolved one 0.2-1.
#: Sequential digits: accuracy 0.5, five times chance (0.1), where the digit has crossed the
#: black pixels for at least half the test images; a run that only learns the class
#: frequencies stays near 0.1.
SOLVED = {"copy": Bar("test/loss", 0.5), "denoising": Bar("test/loss", 0.1),
          "seq_digits": Bar("test/acc", 0.5)}


def median(values) -> str:
    xs = [v for v in values if v is not None and math.isfinite(v)]
    return f"{statistics.median(xs):.3g}" if xs else "–"


def solved(runs: list[Run]) -> tuple[int, int] | None:
    """``(k, n)``: of the ``n`` runs with a finite final metric, ``k`` meet the benchmark's bar
    (``SOLVED``); ``None`` for a benchmark without one, or no such run."""
    bar = SOLVED.get(runs[0].benchmark) if runs else None
    if bar is None:
        return None
    values = [r.metrics.get(bar.metric) for r in runs]
    values = [x for x in values if x is not None and math.isfinite(x)]
    if not values:
        return None
    return sum(bar.met(x) for x in values), len(values)


def solved_share(runs: list[Run]) -> str:
    """``k/n`` runs that meet the benchmark's bar (``SOLVED``); ``–`` without one."""
    share = solved(runs)
    return "–" if share is None else f"{share[0]}/{share[1]}"


def test_metric(run: Run) -> tuple[str, float | None]:
    """The final test metric: accuracy for classification, MSE (test loss) otherwise."""
    if run.classification:
        return "test accuracy", run.metrics.get("test/acc")
    return "test MSE", run.metrics.get("test/loss")


@dataclass
class LengthSweep:
    """The runs of a sweep over a length (the memory horizon's L, the T-Maze's), by
    ``(cell, variant, L)``, with the cells, variants and lengths in the figures' order."""

    groups: dict[tuple[str, str, int], list[Run]]

    @property
    def cells(self) -> list[str]:
        return order({k[0] for k in self.groups}, CELLS)

    @property
    def variants(self) -> list[str]:
        return order({k[1] for k in self.groups}, VARIANTS)

    @property
    def lengths(self) -> list[int]:
        return sorted({k[2] for k in self.groups})


def length_sweep(runs: list[Run], sweeps: tuple[str, ...], metric: str, param: str) -> LengthSweep:
    """The runs of ``sweeps`` that logged ``metric``, grouped by cell, variant and the length
    they logged as ``param``."""
    groups: dict[tuple[str, str, int], list[Run]] = {}
    for r in of_sweeps(runs, sweeps):
        if metric in r.metrics and param in r.params:
            groups.setdefault((r.cell, r.variant, int(r.params[param])), []).append(r)
    return LengthSweep(groups)
