"""MLflow runs -> the paper's figures and a summary table (one script per figure).

``make_all`` makes every figure from the runs read once from the store; each module also runs
alone: ``python -m src.figures.<name> --tracking-uri URI --experiment NAME --out DIR``, and
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
