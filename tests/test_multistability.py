"""Claims 1 and 2 of the paper on every cell, at a small size and a fixed seed:
standard cells are monostable at initialisation (VAA = 1/N), and warm-up makes
the network multistable (VAA >= 0.5). `python bench/multistability.py` prints the
same measurements at T = 10 000 for the README."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
from conftest import compose_config, names

from src.run import build
from src.vaa import measure_vaa
from src.warmup import WarmupModule

N = 32
T = 1_000  # steps of constant input (METHOD.md measures with 10 000; CALIBRATION.md with 1 000)
BRC_NOTE = ("BRC is bistable at initialisation (VAA ~0.5 here) and warm-up, a regression of "
            "VAA* to 0.95, lowers its reachable multistability at this size (README)")


def warm_and_measure(cell: str) -> tuple[float, float]:
    cfg = compose_config([f"cell={cell}", "warmup=full", "seed=0"])
    pl.seed_everything(0, verbose=False)
    dm, net, inputs = build(cfg)
    before = measure_vaa(net, inputs, steps=T, group_size=N)[0]
    pl.Trainer(max_steps=100, max_epochs=-1, logger=False, enable_checkpointing=False,
               enable_progress_bar=False, enable_model_summary=False).fit(
        WarmupModule(net), dm.train_dataloader())
    after = measure_vaa(net, inputs, steps=T, group_size=N)[0]
    return before, after


@pytest.mark.parametrize("cell", [
    pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=BRC_NOTE)) if c == "brc" else c
    for c in names("cell")
])
def test_warmup_makes_every_cell_multistable(cell):
    before, after = warm_and_measure(cell)
    if cell in ("gru", "lstm", "rnn", "mgu"):
        assert before == pytest.approx(1 / N), "monostable at initialisation (claim 1)"
    assert after >= 0.5, f"{cell}: VAA {before:.3f} -> {after:.3f} after warm-up (claim 2)"
