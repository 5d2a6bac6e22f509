"""``warmup.method=excite``, this project's construction of true attractors (docs/excite.md): no
gradient steps; each warmed unit's feedback into its own candidate state is raised by a gain
chosen by measuring the hard VAA on held-out sequences (:func:`select_excitation`). Plain
torch: no Lightning, Hydra or MLflow.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from src.vaa import EPS, measure_vaa


#: The gains ``excite`` chooses from by default, per layer: wide enough for every cell of the
#: project at the default size (measured on seeds 0-19: docs/excite.md; a layer
#: fed by a weak input takes a small gain, one fed by saturated states up to 16)...
EXCITATION_GAINS = (1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)
#: ...those of them with a loop gain (``gain * cell.excitation_scale``) of at least this: at a
#: loop gain of 1 a unit sits at its bifurcation, where its states settle slowly and, under
#: some constant inputs, not at all (a GRU at gain 2: docs/excite.md).
MIN_LOOP_GAIN = 1.5


def default_gains(net) -> tuple[float, ...]:
    """``EXCITATION_GAINS`` whose loop gain reaches ``MIN_LOOP_GAIN`` in every warmed cell
    (a gated cell, whose gates halve the loop at init, from 3; a tanh RNN from 1.5)."""
    scale = min(cell.excitation_scale for cell in net.warm_cells())
    return tuple(g for g in EXCITATION_GAINS if g * scale >= MIN_LOOP_GAIN)


def excitable(net) -> bool:
    """Whether every warmed sub-cell of ``net`` declares an excitation block."""
    return all(cell.excitation_rows is not None for cell in net.warm_cells())


def excite(net, gain, centre: bool = False) -> None:
    """Add ``gain * I`` to each warmed sub-cell's excitation block (the recurrent weights
    through which a unit feeds its own candidate state), so that every warmed unit is
    bistable on its own and the layer has many true fixed points. ``gain``: one number for
    every layer, or one per layer (0: that layer unchanged). ``centre``: also zero the
    candidate's biases of the excited layers, so that a unit's two stable states sit
    symmetrically and the input, not the bias, decides between them. Raises a one-line
    ``ValueError`` for a cell without a block, before any weight changes."""
    cells = net.warm_cells()
    gains = [float(gain)] * len(cells) if isinstance(gain, (int, float)) else list(gain)
    if len(gains) != len(cells):
        raise ValueError(f"excite: {len(gains)} gains for {len(cells)} warmed layers")
    if not any(gains):
        return
    blocks = [(cell.excitation_block(), cell.excitation_biases()) for cell in cells]
    with torch.no_grad():
        for (block, biases), g in zip(blocks, gains):
            if not g:
                continue
            block.add_(g * torch.eye(block.shape[0], dtype=block.dtype, device=block.device))
            if centre:
                for b in biases:
                    b.zero_()


class Excitation(NamedTuple):
    """What :func:`select_excitation` chose and measured: the gain of each warmed layer
    (all 0: the network as built), whether the candidate biases were zeroed, the held-out
    VAA, settled share and distinct fixed points (per group), and every candidate tried as
    ``(gains, centre, vaa, settled, fixed_points)``."""

    gains: tuple[float, ...]
    centre: bool
    vaa: float
    settled: float
    fixed_points: float
    tried: list


def select_excitation(net, inputs: torch.Tensor, gains=None, steps: int = 10_000,
                      group_size: int = 32, eps: float = EPS, seed: int = 0,
                      screens: tuple[int, ...] = (1_000, 3_000), finalists: int = 3) -> Excitation:
    """``warmup.method=excite``: build candidates, measure each, keep the best, in place.

    Each candidate is measured by the hard VAA on ``inputs`` (held-out training sequences,
    groups of ``group_size``, each group its own constant input, the same draws for every
    candidate) and scored by its distinct fixed points (``fixed_points``): a state still
    moving counts for nothing, as in the success criterion of `make warmup-table`. The
    candidates, in order:

    1. the network as built;
    2. every gain of ``gains`` (default: :func:`default_gains`) on every layer
       (:func:`excite`), with the candidate biases
       as built, then zeroed (``centre``; skipped when they are all zero already);
    3. from the best so far, one layer at a time (first to last), every other gain for that
       layer. Layers see different inputs (the first a benchmark's few features, the next
       the saturated states of the layer below) and want different gains: measured on
       partial LSTM warm-up, this step took success from 7 to 10 seeds of 10 (make warmup-table).

    The candidates are screened at a short T, the first of ``screens``; when no excited
    candidate has 90 % of its states settled there (a slow cell: chrono's states are
    all still moving at T = 1 000), the screening starts over at the next. The
    ``finalists`` best, and the network as built, are then measured at T = ``steps`` (the
    measure's own T), and the best of those is kept; a tie keeps the earlier one, so a
    network that no gain improves is left as built. A network whose cells have no
    excitation block (BRC, NBRC) is left as built without a measurement (``vaa`` NaN).
    ``tried`` holds the last screening's measurements; the chosen one's are at T = ``steps``.
    """
    cells = net.warm_cells()
    if not excitable(net):  # nothing to build: left as built, unmeasured
        nan = float("nan")
        return Excitation((0.0,) * len(cells), False, nan, nan, nan, [])
    gains = default_gains(net) if gains is None else gains
    original = [{k: v.detach().clone() for k, v in cell.state_dict().items()} for cell in cells]

    def build(layer_gains: tuple[float, ...], centre: bool) -> None:
        for cell, state in zip(cells, original):
            cell.load_state_dict(state)
        excite(net, layer_gains, centre)

    def measure(layer_gains: tuple[float, ...], centre: bool, t: int):
        build(layer_gains, centre)
        m = measure_vaa(net, inputs, steps=t, group_size=group_size, eps=eps, seed=seed)
        return (layer_gains, centre, m.vaa, m.settled, m.fixed_points)

    def score(candidate) -> float:  # distinct fixed points: moving states count for nothing
        return candidate[4]

    def screening(t: int) -> list:
        tried: list = []

        def screen(layer_gains: tuple[float, ...], centre: bool):
            for candidate in tried:  # the layer pass can come back to a candidate already seen
                if candidate[:2] == (layer_gains, centre):
                    return candidate
            tried.append(measure(layer_gains, centre, t))
            return tried[-1]

        best = screen((0.0,) * len(cells), False)
        # zeroing biases that are zero already (gru, mgu, chrono at init) builds nothing new
        biased = any(b.any() for cell in cells for b in cell.excitation_biases())
        for centre in (False, True)[:1 + biased]:
            for g in gains:
                candidate = screen((float(g),) * len(cells), centre)
                best = candidate if score(candidate) > score(best) else best
        if len(cells) > 1 and any(best[0]):
            for layer in range(len(cells)):
                start = best
                for g in gains:
                    if float(g) != start[0][layer]:
                        candidate = screen(tuple(float(g) if i == layer else x
                                                 for i, x in enumerate(start[0])), start[1])
                        best = candidate if score(candidate) > score(best) else best
        return tried

    horizons = [t for t in screens if t < steps] or [steps]
    for t in horizons:
        tried = screening(t)
        if max((c[3] for c in tried[1:]), default=1.0) >= 0.9:  # excited candidates settle
            break
    # the most fixed points; among equals (none settled at all), the most settled, then VAA;
    # the sort is stable: full ties keep the order tried
    ranked = sorted(range(len(tried)), key=lambda i: (-tried[i][4], -tried[i][3], -tried[i][2]))
    chosen = None
    for i in sorted({0, *ranked[:finalists]}):
        candidate = measure(*tried[i][:2], steps) if t < steps else tried[i]
        chosen = candidate if chosen is None or score(candidate) > score(chosen) else chosen
    build(*chosen[:2])
    return Excitation(*chosen, tried)
