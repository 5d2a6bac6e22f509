"""Figure 1b (claims 1, 2) as pictures: for one seed, each cell's VAA states at
initialisation and after full and partial warm-up, traced under one constant input and
projected to 2-D (``src/attractors/``; PCA per panel). One dot per attractor: a reader sees
"one point" against "many points", and black crosses where states never settle.

Columns: the run without warm-up (its initial network), and the warmed runs after warm-up.
Rows: cells. Sweep: multistability_curves, lowest seed. Runs logged before the weights were
(``weights/*.pt``) leave their warm-up panels empty.

    python -m src.figures.attractors --experiment reproduce-cpu --out outputs/figures
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

from src.figures.cli import cli
from src.figures.plots import LABELS, nothing, save
from src.figures.runs import CELLS, of_sweeps
from src.figures.stats import order

SWEEPS = ("multistability_curves",)
COLUMNS = {"none": "init", "full": "warmup", "partial": "warmup"}  # variant -> stage shown


def traced(run, stage: str):
    """The run's trajectories at ``stage``, or None when its weights were not logged."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from src import attractors
    from src.attractors import rerun

    client = MlflowClient(run.store)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            cfg, net, inputs = rerun.rebuild(client, run.run_id, Path(tmp))
            weights = rerun.run_weights(client, run.run_id, cfg, net, Path(tmp))
        except (MlflowException, OSError):  # no config or weights among its artifacts
            return None, None
    if stage not in weights:
        return None, cfg
    net.load_state_dict(weights[stage])
    return attractors.trajectories(net, inputs, cfg.vaa.steps, cfg.vaa.group_size, cfg.seed,
                                   cfg.vaa.eps), cfg


def make(runs, out):
    from src import attractors

    runs = [r for r in of_sweeps(runs, SWEEPS) if r.variant in COLUMNS]
    if not runs:
        return nothing("attractors", SWEEPS)
    seed = min(r.seed for r in runs)
    chosen = {(r.cell, r.variant): r for r in runs if r.seed == seed}
    cells = order({c for c, _ in chosen}, CELLS)
    variants = order({v for _, v in chosen}, tuple(COLUMNS))
    fig, axes = plt.subplots(len(cells), len(variants), squeeze=False,
                             figsize=(3.3 * len(variants), 3.0 * len(cells)))
    steps = None
    for i, cell in enumerate(cells):
        for j, variant in enumerate(variants):
            ax, run = axes[i][j], chosen.get((cell, variant))
            stage = COLUMNS[variant]
            tr, cfg = traced(run, stage) if run is not None else (None, None)
            where = "at initialisation" if stage == "init" else "after warm-up"
            if tr is None:
                ax.text(0.5, 0.5, "no run" if run is None else "weights not logged",
                        ha="center", va="center", transform=ax.transAxes)
                ax.set_xticks([])
                ax.set_yticks([])
            else:
                steps = cfg.vaa.steps
                attractors.draw({stage: tr}, "", Path(), axes_row=[ax])
                n, moving = tr.labels.numel(), int((~tr.settled).sum())
                ax.set_ylabel("")
                ax.set_xlabel("")
                ax.set_title(f"{cell}, {LABELS[variant]}, {where}\n"
                             f"{tr.attractors} of {n} apart; {tr.fixed_points} fixed, "
                             f"{moving} moving", fontsize=8)
            ax.tick_params(labelsize=6)
    handles, labels = next(((a.get_legend_handles_labels()) for row in axes for a in row
                            if a.get_legend_handles_labels()[0]), ([], []))
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle(f"Final states of the VAA measurement (T = {steps}), seed {seed}: dots are "
                 "fixed points coloured by attractor, crosses still move", fontsize=10)
    return save(fig, out, "attractors", rect=(0, 0.04, 1, 1))


if __name__ == "__main__":
    cli(make, __doc__.splitlines()[0])
