"""The size-search table (bench/size_search.py), on made-up runs."""

from __future__ import annotations

import importlib.util

import pytest
from conftest import ROOT

spec = importlib.util.spec_from_file_location("size_search", ROOT / "bench" / "size_search.py")
size_search = importlib.util.module_from_spec(spec)
spec.loader.exec_module(size_search)


def _run(variant, seed, valid, code="ours", bench="denoising"):
    return dict(code=code, benchmark=bench, hidden=64, length=300, train=8000,
                epochs=len(valid), variant=variant, seed=seed, valid=valid, seconds=60.0 * len(valid))


def _line(lines, code, budget):
    return next(x for x in lines if f"| {code} | {budget} |" in x).split(" | ")


def test_a_budget_is_read_off_the_validation_curve_of_the_longest_run():
    plateau, learns = [1.0] * 4, [1.0, 0.5, 0.05, 0.02]
    runs = [_run("none", s, plateau) for s in range(5)]
    runs += [_run("full", s, learns if s < 3 else plateau) for s in range(5)]
    runs += [_run("partial", s, plateau) for s in range(5)]
    runs.append(_run("partial", 0, [1.0, 0.05]))  # a shorter run of seed 0: the longer one counts
    lines = size_search.table(runs, [2, 3, 4, 6])
    cells = _line(lines, "ours", 3)
    assert cells[6:11] == ["5", "0/5", "3/5", "0/5", "yes"]  # none fails 5/5, full solves 3/5
    assert _line(lines, "ours", 2)[6:11] == ["5", "0/5", "0/5", "0/5", "no"]
    assert float(cells[11].rstrip(" |")) == pytest.approx(3.0)  # 60 s an epoch, 3 epochs
    assert not any("| ours | 6 |" in x for x in lines)  # no run trained 6 epochs


def test_the_baseline_must_fail_in_four_of_five():
    runs = [_run("none", s, [0.05] if s < 2 else [1.0]) for s in range(5)]  # solves 2/5
    runs += [_run("partial", s, [0.05]) for s in range(5)]
    assert _line(size_search.table(runs, [1]), "ours", 1)[10] == "no"
    runs[1] = _run("none", 1, [1.0])  # now 1/5: fails in 4 of 5
    assert _line(size_search.table(runs, [1]), "ours", 1)[10] == "yes"


def test_digits_are_judged_by_accuracy_and_codes_apart():
    runs = [_run("none", s, [0.1], code="authors", bench="seq_digits") for s in range(3)]
    runs += [_run("partial", s, [0.5 + 0.1 * s], code="authors", bench="seq_digits")
             for s in range(3)]
    line = _line(size_search.table(runs, [1]), "authors", 1)
    assert line[0] == "| seq_digits" and line[7:11] == ["0/3", "–", "3/3", "yes"]
