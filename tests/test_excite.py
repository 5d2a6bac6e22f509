"""warmup.method=excite (src/warmup.py::excite): what it changes, where it is refused, and
that it leaves true attractors, as a rate over seeds."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from conftest import compose_config, tiny

from src.checks import check_config
from src.run import build
from src.vaa import measure_vaa
from src.warmup import excite

EXCITABLE = ("gru", "lstm", "chrono", "mgu", "rnn")


@pytest.mark.parametrize("cell", EXCITABLE)
@pytest.mark.parametrize("warmup", ["full", "partial"])
def test_excite_adds_the_gain_to_each_warmed_units_own_candidate_weight(cell, warmup):
    """gain * I on the declared block of each warmed sub-cell; nothing else changes (the
    plain halves, the read-out, the other blocks and the biases)."""
    cfg = compose_config([f"cell={cell}", f"warmup={warmup}", *tiny()])
    _, net, _ = build(cfg)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    gains = excite(net)
    after = net.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    warmed = [f"layers.{i}.warm.weight_hh" for i in range(len(net.layers))]
    assert changed == set(warmed)
    for i, cell_i in enumerate(net.warm_cells()):
        H, (first, last) = cell_i.hidden_size, cell_i.excitation_rows
        delta = after[warmed[i]] - before[warmed[i]]
        expected = torch.zeros_like(delta)
        expected[first * H:last * H] = gains[i] * torch.eye(H)
        torch.testing.assert_close(delta, expected)
        assert gains[i] == type(cell_i).excitation_gain


def test_excite_takes_the_configured_gain_and_refuses_cells_without_a_block():
    _, net, _ = build(compose_config(["cell=gru", "warmup=full", *tiny()]))
    assert excite(net, 0.5) == [0.5, 0.5]
    _, brc, _ = build(compose_config(["cell=brc", "warmup=full", *tiny()]))
    with pytest.raises(ValueError, match="BRC declares no excitation block"):
        excite(brc)
    with pytest.raises(ValueError, match=r"warmup.gain=-1.0 must be >= 0 or null"):
        check_config(compose_config(["warmup.method=excite", "warmup.gain=-1.0"]))


def test_excite_leaves_true_attractors_on_most_seeds():
    """The success of README's table (VAA >= 0.5 at T = 10 000 with >= 90 % of the final
    states settled), full warm-up, pooled over gru and rnn, 4 seeds each, N = 32.

    Measured (bench/warmup_table.py, seeds 0-19, 1 and 2 threads, which agree run for run):
    gru full 20/20, rnn full 19/20. With p >= 0.95 the bound (at least 5 of 8) fails with
    probability below 4e-4. Before excitation every run is monostable (1 attractor)."""
    successes = monostable = 0
    for cell in ("gru", "rnn"):
        for seed in range(4):
            cfg = compose_config([f"cell={cell}", "warmup=full", f"seed={seed}"])
            pl.seed_everything(seed, verbose=False)
            _, net, inputs = build(cfg)
            inputs = inputs[:, :32]
            monostable += measure_vaa(net, inputs, steps=10_000, group_size=32, seed=seed).vaa < 0.05
            excite(net)
            m = measure_vaa(net, inputs, steps=10_000, group_size=32, seed=seed)
            successes += m.vaa >= 0.5 and m.settled >= 0.9
    assert monostable >= 7
    assert successes >= 5, f"true attractors in {successes}/8 runs"


def test_a_warmup_module_refuses_excite():
    """excite takes no gradient steps: fitting a WarmupModule with it would silently run the
    paper's objective instead."""
    from src.warmup import WarmupModule

    _, net, _ = build(compose_config(["warmup=full", *tiny()]))
    with pytest.raises(ValueError, match="takes no gradient steps"):
        WarmupModule(net, method="excite")


def test_excite_checks_every_cell_before_it_changes_any(monkeypatch):
    """A cell with a block but no gain of its own (a user's cell) is refused, with warmup.gain
    unset, before any weight moves: src/run.py runs this check before the run exists."""
    from src.cells.gru import GRU
    from src.warmup import excitation_plan

    _, net, _ = build(compose_config(["cell=gru", "warmup=full", *tiny()]))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    monkeypatch.setattr(GRU, "excitation_gain", None)
    with pytest.raises(ValueError, match="GRU has no excitation gain; set warmup.gain"):
        excite(net)
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    assert [g for _, g in excitation_plan(net, 2.0)] == [2.0, 2.0]
