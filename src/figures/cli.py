"""The command line every figure module shares: ``python -m src.figures.<name> --tracking-uri
URI --experiment NAME --out DIR``."""

from __future__ import annotations

import argparse
from pathlib import Path

from src import tracking
from src.figures.store import load_runs


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
