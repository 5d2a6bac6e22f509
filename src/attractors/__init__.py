"""Pictures of attractors: where the states of the VAA measurement go, and where they stop.

For one network, the first group of the VAA measurement (the same prefixes and constant
input as the logged ``vaa``, same seed): each sequence's prefix state, its trajectory under
the constant input for T steps (log-spaced points), and its final state, projected to 2-D
by one PCA fitted on every panel of the run, so that the panels share axes. Final states on
a fixed point are dots coloured by attractor; states still moving at T (a cycle, chaos, a
slow drift) are black crosses. One attractor shows as one dot; many as many dots.

    python -m src.attractors RUN_ID                 # any finished run of the store
    python -m src.attractors RUN_ID --tracking-uri sqlite:///path/mlflow.db --out pic.png

This package draws (pure: a network, its weights and inputs in, a PNG out); its module
``rerun`` rebuilds a finished run from the store for the command above
(``src/attractors/__main__.py``).

A run logs the network's weights at initialisation and after warm-up (artifacts
``weights/init.pt``, ``weights/warmup.pt``) beside its best checkpoint, so the command
redraws any run; for runs older than that, the initial weights are rebuilt from the seed and
the warm-up panel is left out. ``src/run.py`` draws the picture at the end of every run
(``vaa.pictures=true``, the default), as ``attractors.png`` in the run's artifacts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from src.vaa import (
    EPS,
    SETTLE_WINDOW,
    flat_state,
    frozen,
    is_settled,
    measurement_draws,
    sample_prefix_states,
)

#: The stages a run passes through, and their panel titles.
STAGES = {"init": "at initialisation", "warmup": "after warm-up", "trained": "after training"}
#: Points recorded along each trajectory (log-spaced in time).
POINTS = 60


@dataclass
class Trajectories:
    """One group of the VAA measurement: ``path`` ``(K, N, D)`` at ``times`` (0 = the prefix
    state, last = T), which final states are settled, and their attractor labels."""

    path: Tensor
    times: list[int]
    settled: Tensor
    labels: Tensor

    @property
    def attractors(self) -> int:
        return int(self.labels.max()) + 1

    @property
    def fixed_points(self) -> int:
        return len(set(self.labels[self.settled].tolist()))


def attractor_labels(final: Tensor, eps: float = EPS) -> Tensor:
    """Group final states ``(N, D)`` closer than ``eps`` (chained), largest group first."""
    n = final.shape[0]
    close = torch.cdist(final, final, compute_mode="donot_use_mm_for_euclid_dist") < eps
    parent = list(range(n))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in close.nonzero().tolist():
        parent[root(i)] = root(j)
    roots = [root(i) for i in range(n)]
    by_size = sorted(set(roots), key=lambda r: (-roots.count(r), roots.index(r)))
    rank = {r: k for k, r in enumerate(by_size)}
    return torch.tensor([rank[r] for r in roots])


@torch.no_grad()
def trajectories(net, inputs: Tensor, steps: int, group_size: int, seed: int,
                 eps: float = EPS) -> Trajectories:
    """The first group of ``measure_vaa(net, inputs, steps, group_size, seed=seed)``, traced
    (on the net's device; the trajectories come back on the CPU)."""
    inputs = inputs.to(next(net.parameters()).device)
    input_size = inputs.shape[2]
    lengths, u = measurement_draws(inputs, group_size, seed)  # the measurement's own draws
    lengths, u = lengths[:group_size], u[:1].expand(1, group_size, input_size)
    was_training = net.training
    net.eval()
    states = sample_prefix_states(net, inputs[:, :group_size], lengths)
    times = sorted({0, *torch.logspace(0, torch.log10(torch.tensor(float(steps))), POINTS - 1)
                    .round().long().tolist()})
    path, done = [flat_state(states)], 0
    for t in times[1:]:
        if t - done >= 100 and len(path) > 1 and frozen(path[-2], path[-1]):
            path.append(path[-1])  # nothing moved over the last stretch: the rest is the same
            continue
        _, states = net.recurrent(u.expand(t - done, group_size, input_size), states)
        done = t
        path.append(flat_state(states))
    _, one = net.recurrent(u, states)
    _, window = net.recurrent(u.expand(SETTLE_WINDOW - 1, group_size, input_size), one)
    net.train(was_training)
    final = path[-1]
    return Trajectories(torch.stack(path).cpu(), times,
                        is_settled(final, flat_state(one), flat_state(window)).cpu(),
                        attractor_labels(final, eps).cpu())


def pca_2d(*paths: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and the two leading principal directions ``(D, 2)`` of every point of ``paths``."""
    points = torch.cat([p.reshape(-1, p.shape[-1]) for p in paths]).double()
    mean = points.mean(0)
    _, _, v = torch.linalg.svd(points - mean, full_matrices=False)
    axes = v[:2].T
    if axes.shape[1] < 2:  # a one-unit network: a flat second axis
        axes = torch.cat([axes, torch.zeros_like(axes)], 1)
    return mean, axes


def draw(stages: dict[str, Trajectories], title: str, path: Path, axes_row=None) -> Path | None:
    """One panel per stage, shared PCA axes; a PNG at ``path`` (or into ``axes_row``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mean, pcs = pca_2d(*(t.path for t in stages.values()))
    own = axes_row is None
    if own:
        fig, axes_row = plt.subplots(1, len(stages), figsize=(4.2 * len(stages), 4.2),
                                     sharex=True, sharey=True, squeeze=False)
        axes_row = axes_row[0]
    colours = plt.get_cmap("tab20").colors
    for ax, (stage, tr) in zip(axes_row, stages.items()):
        xy = ((tr.path.double() - mean) @ pcs).numpy()  # (K, N, 2)
        n = xy.shape[1]
        for i in range(n):
            ax.plot(xy[:, i, 0], xy[:, i, 1], color="0.6", lw=0.5, alpha=0.6, zorder=1)
        ax.scatter(xy[0, :, 0], xy[0, :, 1], s=10, facecolors="none", edgecolors="0.45",
                   lw=0.6, zorder=2, label="prefix state (start)")
        settled = tr.settled.numpy()
        labels = tr.labels.numpy()
        end = xy[-1]
        ax.scatter(end[settled, 0], end[settled, 1], s=36, zorder=3, edgecolors="k", lw=0.4,
                   c=[colours[k % len(colours)] for k in labels[settled]],
                   label="final state on a fixed point (colour: attractor)")
        ax.scatter(end[~settled, 0], end[~settled, 1], s=30, marker="x", color="k", lw=1,
                   zorder=4, label="final state still moving")
        moving = int((~settled).sum())
        ax.set_title(f"{STAGES.get(stage, stage)}\n{plural(tr.attractors, 'distinct final state')}"
                     f" of {n}: {plural(tr.fixed_points, 'fixed point')}, {moving} moving",
                     fontsize=9)
        ax.set_xlabel("PC 1")
    axes_row[0].set_ylabel("PC 2")
    if not own:
        return None
    handles, names = axes_row[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def picture(net, weights: dict[str, dict], inputs: Tensor, steps: int, group_size: int,
            seed: int, eps: float, title: str, path: Path) -> Path:
    """Trace ``net`` with each stage's weights (``{stage: state_dict}``) and draw them; the net
    is left with the last stage's weights."""
    traced = {}
    for stage, state in weights.items():
        net.load_state_dict(state)
        traced[stage] = trajectories(net, inputs, steps, group_size, seed, eps)
    return draw(traced, title, path)


def title_of(name: str, cfg) -> str:
    return (f"{name}: the first VAA group (N = {cfg.vaa.group_size}, T = {cfg.vaa.steps}) "
            "under one constant input, 2-D PCA of all panels")
