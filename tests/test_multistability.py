"""Claims 1 and 2 of the paper, tested as rates over seeds (never on one seed: the outcome of
one warm-up flips with the last bits of a matrix product, so with the thread count).

Each bound below is one that a correct implementation misses with probability below about
1e-3, computed from the rates measured over 10 seeds with 1 and 2 threads (`make warmup-table`,
docs/excite.md; `python bench/warmup_table.py` for the full-size table at T = 10 000).
"""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
from conftest import compose_config

from src.pipeline import build, make_warmup
from src.vaa import measure_vaa

N = 32
MONOSTABLE = ("gru", "lstm", "chrono", "mgu", "rnn")
#: The smallest size where warm-up's effect is plain: one layer of 16 units, copy length 50.
SMALL = ["warmup.method=paper", "net.num_layers=1", "net.hidden_size=16", "benchmark.seq_length=50",
         "benchmark.train_size=400", "trainer.progress=false"]


def _build(cell: str, seed: int, overrides=()):
    cfg = compose_config([f"cell={cell}", "warmup=full", f"seed={seed}", *overrides])
    pl.seed_everything(seed, verbose=False)
    dm, net, inputs = build(cfg)
    return cfg, dm, net, inputs[:, :N]


@pytest.mark.parametrize("cell", MONOSTABLE)
def test_cells_are_monostable_at_initialisation(cell):
    """Claim 1: at the default size, every state ends on one attractor (VAA = 1/N at
    T = 10 000, the early exit makes this quick). Measured: 10/10 seeds for each cell."""
    monostable = 0
    for seed in range(4):
        _, _, net, inputs = _build(cell, seed)
        m = measure_vaa(net, inputs, steps=10_000, group_size=N, seed=seed)
        monostable += m.vaa == pytest.approx(1 / N) and m.settled == 1.0
    assert monostable >= 3, f"{cell}: monostable on {monostable}/4 seeds"


def warmed_vaa(cell: str, seed: int) -> tuple[float, float]:
    """VAA at T = 200 (the longest horizon the paper's warm-up trains on) before and after
    the paper's full warm-up (100 steps) of the small network."""
    cfg, dm, net, inputs = _build(cell, seed, SMALL)
    before = measure_vaa(net, inputs, steps=200, group_size=N, seed=seed).vaa
    pl.Trainer(max_steps=cfg.warmup.steps, max_epochs=-1, logger=False, enable_checkpointing=False,
               enable_progress_bar=False, enable_model_summary=False).fit(
        make_warmup(cfg, net), dm.train_dataloader())
    return before, measure_vaa(net, inputs, steps=200, group_size=N, seed=seed).vaa


def test_paper_warmup_makes_cells_multistable_over_its_horizon():
    """Claim 2, where the published algorithm holds: over the horizon it trains on, warm-up
    turns a monostable cell multistable (VAA >= 0.5), pooled over gru and rnn, 6 seeds each.

    Measured on this small network (10 seeds at 1 thread, 10 at 2): gru 19/20, rnn 7/10
    (1 thread); so p >= 0.8 and P(fewer than 5 of 12) < 1e-3. Not tested here because they
    are too fragile for a bound that cannot flip: lstm (7/20; P(0 of 10) would be 1 %), mgu
    and nbrc (7/10, 8/10). At T = 10 000 and counting only fixed points, the published
    algorithm mostly fails for every cell (make warmup-table): that is what the success table measures.
    """
    results = {(cell, seed): warmed_vaa(cell, seed) for cell in ("gru", "rnn") for seed in range(6)}
    assert all(before == pytest.approx(1 / N) for before, _ in results.values()), results
    multistable = sum(after >= 0.5 for _, after in results.values())
    assert multistable >= 5, f"multistable in {multistable}/12 runs: {results}"
