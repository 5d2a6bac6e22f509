"""MLflow runs -> the paper's figures and a summary table (one script per figure).

``build_all`` reads the store once and makes every figure; each module also runs alone:
``python -m src.figures.<name> --tracking-uri URI --experiment NAME --out DIR``, and
``python -m src.figures`` makes them all.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

#: The figure modules, in the order of the paper's claims; ``summary`` writes the table.
FIGURES = ("multistability", "attractors", "learning_curves", "precision", "vaa_vs_test",
           "memory_horizon", "tmaze")


def make_all(runs, out: Path, title: str = "") -> list[Path]:
    """Every figure (PNG and PDF) and ``summary.md`` in ``out``; returns the files written."""
    # imported here, so that `python -m src.figures.<name>` finds its module not yet imported
    paths = [p for name in FIGURES for p in import_module(f"src.figures.{name}").make(runs, out)]
    return paths + import_module("src.figures.summary").make(runs, out, title)


def build_all(uri: str, experiment: str, out: Path) -> list[Path]:
    """``make_all`` on the completed runs of ``experiment`` in the store at ``uri``."""
    from src.figures.store import load_runs

    runs = load_runs(uri, experiment)
    if not runs:
        print(f"no completed runs in experiment '{experiment}' at {uri}: nothing to draw")
        return []
    return make_all(runs, out, f"experiment `{experiment}`")
