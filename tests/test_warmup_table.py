"""The success-rate table of `make warmup-table` (bench/warmup_table.py), on made-up rows."""

from __future__ import annotations

import importlib.util

from conftest import ROOT

spec = importlib.util.spec_from_file_location("warmup_table", ROOT / "bench" / "warmup_table.py")
warmup_table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(warmup_table)


def _row(vaa, settled, seed, threads=1, method="paper"):
    return dict(cell="gru", warmup="full", method=method, seed=seed, threads=threads,
                vaa_init=1 / 32, vaa=vaa, attractors=32 * vaa, fixed_points=32 * vaa * settled,
                settled=settled, seconds=2.0)


def test_success_needs_many_attractors_and_settled_states():
    assert warmup_table.success(_row(0.5, 0.9, 0))
    assert not warmup_table.success(_row(1.0, 0.89, 0)), "moving states are not attractors"
    assert not warmup_table.success(_row(0.49, 1.0, 0))


def test_table_counts_successes_per_row_over_seeds_and_threads():
    rows = [_row(1.0, 1.0, 0), _row(1.0, 0.0, 1), _row(0.03125, 1.0, 0, threads=2),
            _row(0.6, 0.95, 0, method="robust")]
    text = warmup_table.table(rows)
    paper = next(line for line in text.splitlines() if "| paper |" in line)
    robust = next(line for line in text.splitlines() if "| robust |" in line)
    assert "| 1/3 (33%) | 2/3 |" in paper
    assert "| 1/1 (100%) | 1/1 |" in robust
    assert "1 thread: seeds 0-1; 2 threads: seeds 0-0" in text
