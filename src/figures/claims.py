"""The paper's claims decided from the runs: one verdict per claim and subject (a cell, a
benchmark), each with the statistic, p-value and interval that decided it.

Numbers differ between CPUs in their last digits, and a run that sits on the edge of learning
a task may fall either way: on another machine a seed is a fresh draw. A verdict is a
statistical decision with stated error rates (src/figures/inference.py, docs/results.md):

* ``shown``: a one-sided test rejects "no effect" at level ``ALPHA`` (0.05);
* ``not shown``: the data exclude the claimed effect, a one-sided bound on the effect lying
  beyond a stated margin;
* ``undecided``: neither.

The statistic per claim:

* claims 1 and 2, the share of seeds with the property (1: at most 2 attractors at
  initialisation, standard cells only; 2: VAA after warm-up at least twice that at
  initialisation, or all N states apart): a binomial test of share 1/2 (:class:`Share`);
* claims 3 and 4, "A learns better than B": on copy and denoising, the shares of seeds that
  solve the task (the bar of :data:`~src.figures.stats.SOLVED`), by Fisher's exact test
  (:class:`Solved`); on classification, the seeds paired, by the sign test on the test accuracy
  (:class:`Paired`), the solved shares (accuracy 0.5 on sequential digits) printed beside it;
* claim 5, Spearman's rho between VAA after warm-up and the final test loss, by a permutation
  test (:class:`Correlation`), over at least 8 runs.

``make reproduce`` writes them into ``summary.md`` and ``verdicts.json``; ``python -m
src.reproduce --check`` compares this machine's with the committed reference and tells a
contradiction (shown against not shown) from a difference in certainty.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from src.figures import inference
from src.figures.inference import NOT_SHOWN, SHOWN, UNDECIDED, Correlation, Paired, Share, Solved
from src.figures.runs import AFTER_WARMUP, CELLS, INIT, Run
from src.figures.stats import SOLVED, group, order, solved
from src.figures.vaa_vs_test import correlations, points

__all__ = ["SHOWN", "UNDECIDED", "NOT_SHOWN", "Verdict", "decide", "compare", "read", "write"]

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
    """One claim on one subject: the verdict, the words printed with it, and what decided it:
    the rule (``share``, ``paired``, ``solved``, ``correlation``), its data (``[k, n]``,
    ``[wins, pairs]``, ``[ka, na, kb, nb]``, ``[rho, n]``), the one-sided p-value of "no
    effect" and the bounds of the effect."""

    claim: str
    subject: str
    verdict: str
    statistic: str
    rule: str = ""
    data: list = field(default_factory=list)
    p: float | None = None
    low: float | None = None
    high: float | None = None

    @property
    def key(self) -> str:
        return f"{self.claim} | {self.subject}"


def verdict(claim: str, subject: str, words: str, rule: str, data: list,
            d: inference.Decision) -> Verdict:
    return Verdict(claim, subject, d.verdict, f"{words}; {d.text}", rule, data,
                   round(d.p, 6), round(d.low, 4), round(d.high, 4))


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
            k, n = sum(c <= 2 for c in counts), len(counts)
            out.append(verdict("1", cell, "at most 2 attractors at init", "share", [k, n],
                               Share(n).decide(k)))
    return out


def raised(runs: list[Run]) -> list[Verdict]:
    """Claim 2, per cell and warmed variant: the seeds whose VAA after warm-up is at least
    twice its value at initialisation, or 1 (every state apart: a cell that starts with more
    than N/2 attractors cannot double them)."""
    out = []
    for (cell, var), sel in sorted(group(runs, "cell", "variant").items(),
                                   key=lambda kv: (cell_order(kv[0][0]), kv[0][1])):
        if var in ("none", "parallel"):
            continue
        pairs = [(r.at("vaa", INIT), r.at("vaa", AFTER_WARMUP)) for r in sel]
        pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
        if pairs:
            k, n = sum(b >= min(2 * a, 1.0) for a, b in pairs), len(pairs)
            out.append(verdict("2", f"{cell}, {var}", "VAA at least doubled by warm-up",
                               "share", [k, n], Share(n).decide(k)))
    return out


def paired_wins(a: list[Run], b: list[Run], key: str, sign: int) -> tuple[int, int, int]:
    """``(wins, losses, ties)`` of A against B over the seeds both have a finite ``key``."""
    xa = {r.seed: r.metrics.get(key) for r in a}
    xb = {r.seed: r.metrics.get(key) for r in b}
    diffs = [sign * (xa[s] - xb[s]) for s in xa.keys() & xb.keys()
             if finite([xa[s], xb[s]]) == [xa[s], xb[s]]]
    return sum(d > 0 for d in diffs), sum(d < 0 for d in diffs), sum(d == 0 for d in diffs)


def better(claim: str, bench: str, cell: str, a: list[Run], b: list[Run], name_a: str,
           name_b: str) -> Verdict | None:
    """Whether the runs ``a`` learn ``bench`` better than the runs ``b``."""
    subject = f"{bench}, {cell}, {name_a} vs {name_b}"
    classification = any(r.classification for r in a + b)
    shares = solved(a), solved(b)
    if bench in SOLVED and not classification:
        if None in shares:
            return None
        (ka, na), (kb, nb) = shares
        return verdict(claim, subject, f"{name_a} solves {ka}/{na} seeds, {name_b} {kb}/{nb}",
                       "solved", [ka, na, kb, nb], Solved(na, nb).decide(ka, kb))
    key, sign = ("test/acc", 1) if classification else ("test/loss", -1)
    wins, losses, ties = paired_wins(a, b, key, sign)
    if wins + losses == 0:
        return None
    bar = ("" if None in shares else
           f", solved {shares[0][0]}/{shares[0][1]} and {shares[1][0]}/{shares[1][1]}")
    words = (f"{name_a} beats {name_b} on {wins} of {wins + losses} seeds ({key}"
             + (f", {ties} tied" if ties else "") + f"{bar})")
    return verdict(claim, subject, words, "paired", [wins, wins + losses],
                   Paired(wins + losses).decide(wins))


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
    """Claim 5, per benchmark: Spearman's rho of VAA after warm-up against the test loss, over
    the runs at the benchmark's one length (``vaa_vs_test.points``), at least 8 of them."""
    out = []
    for bench, (n, rho) in correlations(runs).items():
        if n < 8 or not math.isfinite(rho):  # too few runs, or a constant variable
            continue
        pts = points(runs, bench)
        d = Correlation(n).decide([p[0] for p in pts], [p[1] for p in pts])
        out.append(verdict("5", bench, "VAA after warm-up against test loss", "correlation",
                           [round(d.estimate, 4), n], d))
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


def rule_of(v: Verdict) -> inference.Rule | None:
    """The rule that decided ``v``, at its sample sizes (None for a verdict without one)."""
    d = v.data
    try:
        if v.rule == "share":
            return Share(int(d[1]))
        if v.rule == "paired":
            return Paired(int(d[1]))
        if v.rule == "solved":
            return Solved(int(d[1]), int(d[3]))
        if v.rule == "correlation":
            return Correlation(int(d[1]))
    except (IndexError, TypeError, ValueError):
        return None
    return None


def truth(v: Verdict, w: Verdict | None = None) -> tuple | None:
    """The effect estimated from ``v``'s data, pooled with ``w``'s (the same claim on another
    machine) where given: the true effect at which :func:`chances` are read."""
    both = [x for x in (v, w) if x is not None and x.rule == v.rule and x.data]
    if not both:
        return None
    if v.rule in ("share", "paired"):
        return (sum(x.data[0] for x in both) / max(1, sum(x.data[1] for x in both)),)
    if v.rule == "solved":
        return (sum(x.data[0] for x in both) / sum(x.data[1] for x in both),
                sum(x.data[2] for x in both) / sum(x.data[3] for x in both))
    if v.rule == "correlation":
        return (sum(x.data[0] * x.data[1] for x in both) / sum(x.data[1] for x in both),)
    return None


def worst_contradiction(verdicts: list[Verdict]) -> float:
    """The largest, over these verdicts, of their rule's worst-case chance that two machines
    contradict each other (:meth:`~src.figures.inference.Rule.worst`)."""
    rules = {r for v in verdicts if (r := rule_of(v)) is not None}
    return max((r.worst() for r in rules), default=0.0)


def markdown(verdicts: list[Verdict], machine: str) -> list[str]:
    if not verdicts:
        return []
    worst = worst_contradiction(verdicts)
    lines = ["", "## The paper's claims, decided", "",
             f"Runs made on: {machine}. Numbers differ between CPUs in their last digits; a "
             "seed on another machine is a fresh draw, so each verdict is a test: **shown** "
             f"when a one-sided test rejects \"no effect\" at level {inference.ALPHA:g}, "
             "**not shown** when a one-sided bound excludes the claimed effect (a gain in the "
             f"solved share of {inference.SOLVED_MARGIN:g} or more, a chance to beat of "
             f"{inference.PAIRED_MARGIN:g} or more, a share of 1/2 or more, a negative rho), "
             "**undecided** otherwise. Two machines "
             f"contradict each other (shown against not shown) on one of these verdicts with a "
             f"chance of at most {worst:.1%}, whatever the true effect. The rules: "
             "docs/results.md (\"How a verdict is decided\"), src/figures/inference.py; "
             "`python -m src.reproduce --check` compares these verdicts with the reference.", "",
             "| claim | subject | verdict | statistic |", "|---|---|---|---|"]
    lines += [f"| {v.claim}: {CLAIMS[v.claim]} | {v.subject} | **{v.verdict}** | {v.statistic} |"
              for v in verdicts]
    counts = {s: sum(v.verdict == s for v in verdicts) for s in (SHOWN, UNDECIDED, NOT_SHOWN)}
    lines += ["", ", ".join(f"{n} {s}" for s, n in counts.items()) + f" of {len(verdicts)}."]
    return lines


def write(verdicts: list[Verdict], machines: str, path: Path) -> Path:
    """``verdicts.json``: the verdicts and the machines of the runs, what ``--check`` reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rules = {"alpha": inference.ALPHA, "solved_margin": inference.SOLVED_MARGIN,
             "paired_margin": inference.PAIRED_MARGIN,
             "correlation_margin": inference.CORRELATION_MARGIN,
             "worst_contradiction": round(worst_contradiction(verdicts), 5)}
    path.write_text(json.dumps({"machines": machines, "rules": rules,
                                "verdicts": [asdict(v) for v in verdicts]}, indent=1) + "\n")
    return path


def read(path: Path) -> tuple[str, list[Verdict]]:
    """``(machines, verdicts)`` of a ``verdicts.json``."""
    data = json.loads(path.read_text())
    return data.get("machines", ""), [Verdict(**v) for v in data["verdicts"]]


#: The kinds of comparison of two verdicts on the same claim and subject.
AGREE, CONTRADICTION, CERTAINTY, MISSING, NEW = (
    "agree", "CONTRADICTION", "certainty", "missing", "new")


@dataclass
class Comparison:
    """``--check``'s result: one line per claim and subject, the count of each kind, and the
    chances, under the rules at the effects both machines' runs estimate together, of a
    contradiction and of a difference in certainty, summed over the verdicts (the numbers of
    each to expect from two fresh draws)."""

    lines: list[str]
    counts: dict[str, int]
    expected_contradictions: float
    expected_certainty: float
    worst: float


def kind(here: str, ref: str) -> str:
    if here == ref:
        return AGREE
    return CERTAINTY if UNDECIDED in (here, ref) else CONTRADICTION


def compare(mine: list[Verdict], reference: list[Verdict]) -> Comparison:
    """Each claim and subject of either list: agree, a contradiction (shown on one machine,
    not shown on the other), a difference in certainty (decided on one, undecided on the
    other), missing here, or new here."""
    ref, here = {v.key: v for v in reference}, {v.key: v for v in mine}
    lines, counts = [], dict.fromkeys((AGREE, CONTRADICTION, CERTAINTY, MISSING, NEW), 0)
    contra = certain = 0.0
    for key in list(ref) + [k for k in here if k not in ref]:
        r, h = ref.get(key), here.get(key)
        if r and h:
            k = kind(h.verdict, r.verdict)
            risk = ""
            rh, rr, t = rule_of(h), rule_of(r), truth(h, r)
            if rh is not None and rr is not None and t is not None and rh.name == rr.name:
                pc, pu = inference.moves(rh, rr, *t)
                contra, certain = contra + pc, certain + pu
                risk = f" [chance: contradiction {pc:.1%}, certainty {pu:.0%}]"
            counts[k] += 1
            lines.append(f"  {k:<13} {key}: here {h.verdict} ({h.statistic}); reference "
                         f"{r.verdict} ({r.statistic}){risk}")
        elif r:
            counts[MISSING] += 1
            lines.append(f"  {MISSING:<13} {key}: not decided here (no runs); reference "
                         f"{r.verdict}")
        else:
            counts[NEW] += 1
            lines.append(f"  {NEW:<13} {key}: here {h.verdict} ({h.statistic}); not in the "
                         "reference")
    return Comparison(lines, counts, contra, certain, worst_contradiction(reference + mine))
