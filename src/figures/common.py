"""What every figure script shares: load the runs of an MLflow experiment into plain Python,
group them, summarise over seeds, save a figure, and a command line.

Only completed runs count (tag ``completed='true'``, set by ``src/run.py`` when a run
finished). A run's *variant* is its warm-up with the structure: ``none``, ``full``,
``partial``, or ``parallel`` (the warmed/plain structure without warm-up, the ablation).
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display: before pyplot is imported
import matplotlib.pyplot as plt

from src import tracking
from src.vaa import INIT_STEP, WARMUP_STEP

#: Metrics whose whole history (one value per step) the figures read.
HISTORIES = ("vaa", "attractors", "settled", "fixed_points", "train/loss", "val/loss")
CELLS = ("gru", "lstm", "chrono", "mgu", "brc", "nbrc", "rnn")
VARIANTS = ("none", "full", "partial", "parallel", "full-robust", "partial-robust")
LABELS = {"none": "no warm-up", "full": "full warm-up", "partial": "partial warm-up",
          "parallel": "parallel, no warm-up", "full-robust": "full warm-up (robust)",
          "partial-robust": "partial warm-up (robust)"}
COLORS = {"none": "#7f7f7f", "full": "#d62728", "partial": "#1f77b4", "parallel": "#9467bd",
          "full-robust": "#ff9896", "partial-robust": "#aec7e8"}
#: The ``vaa``/``attractors`` steps: 0 at initialisation, 1 after warm-up, 1 + e after epoch e.
INIT, AFTER_WARMUP = INIT_STEP, WARMUP_STEP


@dataclass
class Run:
    run_id: str
    name: str
    figure: str  # the sweep that made it (tag `figure`), "" for a run outside the sweeps
    cell: str
    benchmark: str
    variant: str
    seed: int
    params: dict[str, str]
    metrics: dict[str, float]  # last value of every metric
    history: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # sorted by step
    store: str = ""  # the tracking URI it was read from (for its artifacts)

    def at(self, key: str, step: int) -> float | None:
        """The value of ``key`` logged at ``step``, or None."""
        return next((v for s, v in self.history.get(key, []) if s == step), None)

    def last(self, key: str) -> float | None:
        """The value of ``key`` at its largest step (the final one), or None."""
        hist = self.history.get(key)
        return hist[-1][1] if hist else self.metrics.get(key)

    @property
    def group_size(self) -> int:
        """N, the sequences per VAA measurement (VAA = 1/N: a single attractor)."""
        return int(self.params.get("vaa.group_size", 32))

    @property
    def classification(self) -> bool:
        return "test/acc" in self.metrics


def variant(tags: dict[str, str], params: dict[str, str]) -> str:
    """The run's warm-up variant, read from what it logged (``warmup.fraction``,
    ``warmup.steps``, ``net.parallel``, ``warmup.method``), never from names: ``none``;
    ``parallel`` (the warmed/plain structure, nothing warmed); ``full``; ``partial`` (half of
    each layer); ``partial-<f>`` for another fraction f; ``-robust`` appended for
    ``warmup.method=robust``. Runs without those params fall back on the ``warmup`` tag."""
    if "warmup.fraction" not in params:
        warm = tags.get("warmup", "")
        return "parallel" if warm == "none" and params.get("net.parallel") == "True" else warm
    fraction = float(params["warmup.fraction"])
    steps = int(params.get("warmup.steps", "1"))
    split = params.get("net.parallel") == "True" or 0 < fraction < 1
    if fraction == 0 or steps == 0:  # nothing warmed
        return "parallel" if split else "none"
    name = "full" if fraction == 1 else "partial" if fraction == 0.5 else f"partial-{fraction:g}"
    return name + ("-robust" if params.get("warmup.method") == "robust" else "")


def load_runs(uri: str, experiment: str) -> list[Run]:
    """The completed runs of ``experiment`` (summary runs excluded), with their histories."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    found, token = [], None
    while True:
        page = client.search_runs([exp.experiment_id], filter_string="tags.completed = 'true'",
                                  max_results=1000, page_token=token)
        found.extend(page)
        token = page.token
        if not token:
            break
    # One run per configuration: two jobs of the same config (e.g. a job re-run by hand or by
    # two overlapping sweeps) would otherwise count as two seeds. The latest one is kept.
    latest: dict[str, object] = {}
    for r in sorted(found, key=lambda r: r.info.start_time):
        latest[r.data.tags.get("config_hash", r.info.run_id)] = r
    runs = []
    for r in latest.values():
        tags, params = r.data.tags, r.data.params
        if tags.get("figure") == "summary":
            continue
        history = {
            key: sorted((m.step, m.value) for m in client.get_metric_history(r.info.run_id, key))
            for key in HISTORIES if key in r.data.metrics
        }
        runs.append(Run(run_id=r.info.run_id, name=r.info.run_name or r.info.run_id,
                        figure=tags.get("figure", ""), cell=tags.get("cell", "?"),
                        benchmark=tags.get("benchmark", "?"), variant=variant(tags, params),
                        seed=int(tags.get("seed", 0)), params=dict(params),
                        metrics=dict(r.data.metrics), history=history, store=uri))
    return runs


# ------------------------------------------------------------------- grouping
def of_sweeps(runs: list[Run], sweeps: tuple[str, ...]) -> list[Run]:
    return [r for r in runs if r.figure in sweeps]


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


# ----------------------------------------------------------------- plotting
def save(fig, out: Path, name: str, rect=(0, 0, 1, 1)) -> list[Path]:
    """``out/name.png`` and ``out/name.pdf``, laid out within ``rect`` of the figure."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    fig.tight_layout(rect=rect)
    for p in paths:
        fig.savefig(p, dpi=150)
    plt.close(fig)
    return paths


def grouped_bars(ax, cells: list[str], variants: list[str], values: dict[tuple, list[float]]):
    """Bars of mean ± std per (cell, variant), seeds as dots; x = cells."""
    width = 0.8 / max(len(variants), 1)
    for j, v in enumerate(variants):
        xs = [i + (j - (len(variants) - 1) / 2) * width for i in range(len(cells))]
        stats = [mean_std(values.get((c, v), [])) for c in cells]
        low = [min(s, m) if m >= 0 else s for m, s in stats]  # the bars of >= 0 metrics stay >= 0
        ax.bar(xs, [m for m, _ in stats], width, yerr=[low, [s for _, s in stats]], capsize=2,
               color=COLORS.get(v), alpha=0.75, label=LABELS.get(v, v))
        for x, c in zip(xs, cells):
            pts = [p for p in values.get((c, v), []) if p is not None]
            ax.plot([x] * len(pts), pts, ".", color="k", ms=3)
    ax.set_xticks(range(len(cells)), cells)


def log_if_wide(ax, values, decades: float = 1.0) -> None:
    """A log y axis when the positive values span more than ``decades`` decades."""
    xs = [v for v in values if v is not None and v > 0]
    if xs and max(xs) / min(xs) > 10**decades:
        ax.set_yscale("log")


def nothing(name: str, sweeps: tuple[str, ...] | None = None) -> list[Path]:
    where = f"of sweep(s) {', '.join(sweeps)} " if sweeps else ""
    print(f"{name}: no completed runs {where}in this experiment, nothing drawn "
          f"(make reproduce runs them)")
    return []


# -------------------------------------------------------------- command line
def cli(make, description: str, argv=None, titled: bool = False) -> None:
    """``python -m src.figures.<name> --tracking-uri URI --experiment NAME --out DIR``:
    ``make(runs, out)`` (``titled``: with ``title=`` naming the experiment) on the store's runs."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--tracking-uri", default=None,
                   help="MLflow tracking URI (default: the embedded store outputs/mlflow.db)")
    p.add_argument("--experiment", default="reproduce-cpu", help="MLflow experiment name")
    p.add_argument("--out", type=Path, default=Path("outputs/figures"), help="output directory")
    args = p.parse_args(argv)
    uri = tracking.resolve_uri(args.tracking_uri, Path.cwd())
    runs = load_runs(uri, args.experiment)
    if not runs:
        print(f"no completed runs in experiment '{args.experiment}' at {uri}: nothing to draw")
        return
    title = {"title": f"experiment `{args.experiment}`"} if titled else {}
    for path in make(runs, args.out, **title):
        print(path)
