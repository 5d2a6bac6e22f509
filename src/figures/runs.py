"""The run model the figures share: one completed MLflow run as plain Python (:class:`Run`),
its warm-up variant read from what it logged, and the names figures order things by."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from src.vaa import INIT_STEP, WARMUP_STEP


#: Metrics whose whole history (one value per step) the figures read.
HISTORIES = ("vaa", "attractors", "settled", "fixed_points", "train/loss", "val/loss")


#: The paper's cells in its order; a cell added to conf/cell/ (a user's) comes after them.
PAPER_CELLS = ("gru", "lstm", "chrono", "mgu", "brc", "nbrc", "rnn")
CONF_CELLS = Path(__file__).resolve().parents[2] / "conf" / "cell"


def cells(conf: Path = CONF_CELLS) -> tuple[str, ...]:
    """The cells of ``conf/cell/*.yaml``: the paper's in its order, then the others by name."""
    found = {p.stem for p in conf.glob("*.yaml")}
    return (tuple(c for c in PAPER_CELLS if c in found)
            + tuple(sorted(found - set(PAPER_CELLS))))


CELLS = cells()

VARIANTS = ("none", "full", "partial", "parallel", "full-excite", "partial-excite")


#: The ``vaa``/``attractors`` steps at initialisation and after warm-up (src/vaa.py).
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
    machine: str = ""  # where it ran (tag `machine`, src/machine.py): numbers differ by CPU

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
    ``warmup.steps``, ``warmup.active``, ``net.parallel``, ``warmup.method``), never from names: ``none``;
    ``parallel`` (the warmed/plain structure, nothing warmed); ``full``; ``partial`` (half of
    each layer); ``partial-<f>`` for another fraction f; ``-<method>`` appended (``-excite``)
    for a ``warmup.method`` other than ``paper``. Runs without those params fall back on the ``warmup`` tag."""
    if "warmup.fraction" not in params:
        warm = tags.get("warmup", "")
        return "parallel" if warm == "none" and params.get("net.parallel") == "True" else warm
    fraction = float(params["warmup.fraction"])
    steps = int(params.get("warmup.steps", "1"))
    split = params.get("net.parallel") == "True" or 0 < fraction < 1
    if fraction == 0 or steps == 0 or params.get("warmup.active") == "False":  # nothing warmed
        return "parallel" if split else "none"
    name = "full" if fraction == 1 else "partial" if fraction == 0.5 else f"partial-{fraction:g}"
    method = params.get("warmup.method", "paper")
    return name + (f"-{method}" if method != "paper" else "")


def of_sweeps(runs: list[Run], sweeps: tuple[str, ...]) -> list[Run]:
    return [r for r in runs if r.figure in sweeps]
