"""The paper's claims decided from the runs: one verdict per claim and subject (a cell, a
benchmark), each with the statistic that decided it.

Numbers differ between CPUs in their last digits, and a run that sits on the edge of learning
a task may fall either way; a verdict is meant to hold on any machine. Each is ``shown``,
``undecided`` or ``not shown`` by a rule written below, on a statistic over seeds:

* a share of seeds (claims 1 and 2): ``shown`` from 2/3 of the seeds, ``not shown`` at 1/3 or
  fewer, ``undecided`` between (claim 1 leaves out BRC and nBRC, multistable by construction);
* "A learns better than B" (claims 3 and 4), on the regression tasks (copy, denoising, with
  an MSE bar in :data:`~src.figures.stats.SOLVED`): ``shown`` when A's share of solved seeds
  exceeds B's by at least one half, ``not shown`` when it does not exceed it at all; on
  classification, the pairwise win rate of A's test accuracy over B's (the share of seed pairs
  in which A is better): ``shown`` from 0.8, ``not shown`` at 0.5 or below. A classifier can
  learn better (well above chance) without reaching the solved bar, so the bar (accuracy 0.5
  on sequential digits) is reported beside the verdict, not used for it;
* a correlation (claim 5): Spearman's rho between VAA after warm-up and the final test loss,
  over at least 8 runs: ``shown`` at -0.3 or below, ``not shown`` at 0 or above.

``make reproduce`` writes them into ``summary.md`` and ``verdicts.json``; ``python -m
src.reproduce --check`` compares this machine's with the committed reference.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from src.figures.runs import AFTER_WARMUP, CELLS, INIT, Run
from src.figures.stats import SOLVED, group, order, solved
from src.figures.vaa_vs_test import correlations

SHOWN, UNDECIDED, NOT_SHOWN = "shown", "undecided", "not shown"

#: The claims, in the paper's words (the project's docs: method, "What the paper claims").
CLAIMS = {
    "1": "standard cells are monostable at initialisation",
    "2": "warm-up raises reachable multistability",
    "3": "warmed-up networks learn long dependencies better",
    "4a": "full warm-up impedes precision: partial warm-up learns better than full",
    "4b": "the split structure alone is not the cause: partial learns better than parallel",
    "5": "multistability after warm-up correlates with learning",
}

#: Cells built multistable (bistable units by construction): not the "standard cells" of
#: claim 1, which they would contradict by design; claims 2-5 include them.
BISTABLE_BY_CONSTRUCTION = ("brc", "nbrc")

#: The sweeps whose runs decide claims 1 and 2 (every cell, copy) and 3-4 (the precision
#: tasks); claim 3 also reads copy.
MULTISTABILITY, PRECISION = ("multistability_curves",), ("precision",)


@dataclass(frozen=True)
class Verdict:
    claim: str
    subject: str
    verdict: str
    statistic: str

    @property
    def key(self) -> str:
        return f"{self.claim} | {self.subject}"


def by_share(k: int, n: int) -> str:
    return SHOWN if 3 * k >= 2 * n else NOT_SHOWN if 3 * k <= n else UNDECIDED


def finite(values) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def one_per_seed(runs: list[Run]) -> list[Run]:
    """The runs of distinct seeds (the network at initialisation depends on the seed only)."""
    return list({r.seed: r for r in sorted(runs, key=lambda r: r.variant)}.values())


def monostable(runs: list[Run]) -> list[Verdict]:
    """Claim 1, per standard cell (not :data:`BISTABLE_BY_CONSTRUCTION`): the seeds whose
    network has at most 2 attractors at initialisation (VAA <= 2/N)."""
    out = []
    runs = [r for r in runs if r.cell not in BISTABLE_BY_CONSTRUCTION]
    for (cell,), sel in sorted(group(runs, "cell").items(), key=lambda kv: cell_order(kv[0][0])):
        counts = finite(r.at("attractors", INIT) for r in one_per_seed(sel))
        if counts:
            k = sum(c <= 2 for c in counts)
            out.append(Verdict("1", cell, by_share(k, len(counts)),
                               f"at most 2 attractors at init in {k}/{len(counts)} seeds"))
    return out


def raised(runs: list[Run]) -> list[Verdict]:
    """Claim 2, per cell and warmed variant: the seeds whose VAA after warm-up is at least
    twice its value at initialisation."""
    out = []
    for (cell, var), sel in sorted(group(runs, "cell", "variant").items(),
                                   key=lambda kv: (cell_order(kv[0][0]), kv[0][1])):
        if var in ("none", "parallel"):
            continue
        pairs = [(r.at("vaa", INIT), r.at("vaa", AFTER_WARMUP)) for r in sel]
        pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
        if pairs:
            k = sum(b >= 2 * a for a, b in pairs)
            out.append(Verdict("2", f"{cell}, {var}", by_share(k, len(pairs)),
                               f"VAA at least doubled by warm-up in {k}/{len(pairs)} seeds"))
    return out


def better(claim: str, bench: str, cell: str, a: list[Run], b: list[Run], name_a: str,
           name_b: str) -> Verdict | None:
    """Whether the runs ``a`` learn ``bench`` better than the runs ``b``."""
    subject = f"{bench}, {cell}, {name_a} vs {name_b}"
    classification = any(r.classification for r in a + b)
    if bench in SOLVED and not classification:
        shares = solved(a), solved(b)
        if None in shares:
            return None
        (ka, na), (kb, nb) = shares
        gap = ka / na - kb / nb
        verdict = SHOWN if gap >= 0.5 else NOT_SHOWN if gap <= 0 else UNDECIDED
        return Verdict(claim, subject, verdict, f"{name_a} solves {ka}/{na} seeds, "
                                                f"{name_b} {kb}/{nb}")
    key, sign = ("test/acc", 1) if classification else ("test/loss", -1)
    xa, xb = (finite(r.metrics.get(key) for r in runs) for runs in (a, b))
    if not xa or not xb:
        return None
    wins = sum((sign * (x - y) > 0) + 0.5 * (x == y) for x in xa for y in xb)
    rate = wins / (len(xa) * len(xb))
    verdict = SHOWN if rate >= 0.8 else NOT_SHOWN if rate <= 0.5 else UNDECIDED
    shares = solved(a), solved(b)
    bar = ("" if None in shares else
           f"; solved {shares[0][0]}/{shares[0][1]} and {shares[1][0]}/{shares[1][1]}")
    return Verdict(claim, subject, verdict,
                   f"{name_a} beats {name_b} in {rate:.0%} of seed pairs ({key}){bar}")


def learning(runs: list[Run]) -> list[Verdict]:
    """Claims 3 (full and partial against none) and 4 (partial against full and against
    parallel, on the precision tasks), per benchmark and cell."""
    comparisons = {"3": (("full", "none"), ("partial", "none")),
                   "4a": (("partial", "full"),), "4b": (("partial", "parallel"),)}
    by = group(runs, "benchmark", "cell", "variant")
    benches = order({k[0] for k in by})
    out = []
    for claim, pairs in comparisons.items():
        for bench in benches:
            if claim != "3" and not any(r.benchmark == bench and r.figure in PRECISION
                                        for r in runs):
                continue
            for cell in sorted({k[1] for k in by if k[0] == bench}, key=cell_order):
                for va, vb in pairs:
                    a, b = by.get((bench, cell, va)), by.get((bench, cell, vb))
                    if a and b and (v := better(claim, bench, cell, a, b, va, vb)):
                        out.append(v)
    return out


def correlated(runs: list[Run]) -> list[Verdict]:
    """Claim 5, per benchmark: Spearman's rho of VAA after warm-up against the test loss."""
    out = []
    for bench, (n, rho) in correlations(runs).items():
        if n < 8 or not math.isfinite(rho):
            continue
        verdict = SHOWN if rho <= -0.3 else NOT_SHOWN if rho >= 0 else UNDECIDED
        out.append(Verdict("5", bench, verdict, f"Spearman rho {rho:.2f} over {n} runs"))
    return out


def cell_order(cell: str) -> int:
    return CELLS.index(cell) if cell in CELLS else len(CELLS)


def decide(runs: list[Run]) -> list[Verdict]:
    """Every verdict the runs allow: claims 1 and 2 from the multistability sweep, 3 and 4
    from every benchmark's runs (the memory horizon's and the T-Maze's have tables of their
    own and stay out), 5 from every run with VAA after warm-up and a test loss."""
    from src.figures import memory_horizon

    tasks = [r for r in runs if "episodes_to_solve" not in r.metrics
             and r.figure not in memory_horizon.SWEEPS]
    multi = [r for r in tasks if r.figure in MULTISTABILITY] or tasks
    return monostable(multi) + raised(multi) + learning(tasks) + correlated(tasks)


def markdown(verdicts: list[Verdict], machine: str) -> list[str]:
    if not verdicts:
        return []
    lines = ["", "## The paper's claims, decided", "",
             f"Runs made on: {machine}. Numbers differ between CPUs in their last digits; the "
             "verdicts are meant to agree (`python -m src.reproduce --check` compares them "
             "with the reference). Rules: src/figures/claims.py.", "",
             "| claim | subject | verdict | statistic |", "|---|---|---|---|"]
    lines += [f"| {v.claim}: {CLAIMS[v.claim]} | {v.subject} | **{v.verdict}** | {v.statistic} |"
              for v in verdicts]
    counts = {s: sum(v.verdict == s for v in verdicts) for s in (SHOWN, UNDECIDED, NOT_SHOWN)}
    lines += ["", ", ".join(f"{n} {s}" for s, n in counts.items()) + f" of {len(verdicts)}."]
    return lines


def write(verdicts: list[Verdict], machines: str, path: Path) -> Path:
    """``verdicts.json``: the verdicts and the machines of the runs, what ``--check`` reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machines": machines, "verdicts": [asdict(v) for v in verdicts]},
                               indent=1) + "\n")
    return path


def read(path: Path) -> tuple[str, list[Verdict]]:
    """``(machines, verdicts)`` of a ``verdicts.json``."""
    data = json.loads(path.read_text())
    return data.get("machines", ""), [Verdict(**v) for v in data["verdicts"]]


def compare(mine: list[Verdict], reference: list[Verdict]) -> tuple[list[str], int, int]:
    """Lines, one per claim and subject of either list, and the counts (agreeing, compared)."""
    ref, here = {v.key: v for v in reference}, {v.key: v for v in mine}
    lines, agree, compared = [], 0, 0
    for key in list(ref) + [k for k in here if k not in ref]:
        r, h = ref.get(key), here.get(key)
        if r and h:
            compared += 1
            agree += r.verdict == h.verdict
            mark = "agree   " if r.verdict == h.verdict else "DIFFER  "
            lines.append(f"  {mark} {key}: here {h.verdict} ({h.statistic}); "
                         f"reference {r.verdict} ({r.statistic})")
        elif r:
            lines.append(f"  missing  {key}: not decided here (no runs); reference {r.verdict}")
        else:
            lines.append(f"  new      {key}: here {h.verdict} ({h.statistic}); not in the "
                         "reference")
    return lines, agree, compared
