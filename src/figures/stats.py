"""Summaries over seeds: grouping, ordering, mean ± std, the final test metric."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict

from src.figures.runs import Run


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


def test_metric(run: Run) -> tuple[str, float | None]:
    """The final test metric: accuracy for classification, MSE (test loss) otherwise."""
    if run.classification:
        return "test accuracy", run.metrics.get("test/acc")
    return "test MSE", run.metrics.get("test/loss")
