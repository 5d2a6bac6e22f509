"""The statistical rules behind the claims' verdicts: one-sided tests for ``shown``, confidence
bounds against a margin for ``not shown``, and the error rates of each rule under a fresh draw
of seeds, computed exactly (binomial enumeration) or, for a correlation, by the normal
approximation its interval already rests on.

A seed run on another CPU is a fresh draw: its last bits differ, and a run on the edge of
learning may fall the other way. So two machines that run the same grid are two independent
samples of the same experiment, and the chance that they *contradict* each other (one says
``shown``, the other ``not shown``) is ``2 * P(shown) * P(not shown)`` at the true effect. Each
rule below keeps that small for every true effect (:meth:`Rule.worst`), because its ``shown``
and ``not shown`` regions are far apart: ``shown`` needs the data to reject "no effect" at level
:data:`ALPHA`, ``not shown`` needs a ``1 - ALPHA`` upper bound on the effect below a margin
that sits well inside the region ``shown`` would need.

The rules (docs/results.md, "How a verdict is decided", says the same in words):

* :class:`Share` (claims 1, 2): ``k`` of ``n`` seeds have the property; the effect is the
  share ``p``; ``shown`` when the exact binomial test rejects ``p <= 1/2``, ``not shown`` when
  the Clopper-Pearson upper bound of ``p`` is below 1/2.
* :class:`Solved` (claims 3, 4 on a benchmark with a solved bar): the shares of seeds that
  solve the task under A and B; ``shown`` by Fisher's exact test (A solves more often),
  ``not shown`` when an exact test rejects a gain ``pA - pB`` of :data:`SOLVED_MARGIN` or more.
* :class:`Paired` (claims 3, 4 on classification): the seeds paired (the same seed, data and
  initialisation under A and B), the effect is ``q``, the chance that A beats B on a seed;
  ``shown`` by the sign test (``q > 1/2``), ``not shown`` when the Clopper-Pearson upper bound
  of ``q`` is below :data:`PAIRED_MARGIN`.
* :class:`Correlation` (claim 5): Spearman's rho of VAA after warm-up against the test loss;
  ``shown`` by a one-sided permutation test (rho < 0), ``not shown`` when the lower bound of rho
  (Fisher's z, Bonett-Wright variance) is above ``-CORRELATION_MARGIN``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

SHOWN, UNDECIDED, NOT_SHOWN = "shown", "undecided", "not shown"

#: The level of every one-sided test and bound.
ALPHA = 0.05
#: ``not shown`` for solved shares: the data exclude a gain in the solved share of this much.
SOLVED_MARGIN = 0.3
#: ``not shown`` for paired seeds: the data exclude A beating B on this share of seeds.
PAIRED_MARGIN = 0.7
#: ``not shown`` for a correlation: the data exclude a rho at or below ``-CORRELATION_MARGIN``.
#: Zero: any negative correlation is the claim, and a fixed margin above zero would bring the
#: two regions within a few standard errors of each other as the runs grow in number.
CORRELATION_MARGIN = 0.0
#: Permutations of the correlation's test (seeded: the same data give the same p-value).
PERMUTATIONS = 20000


def cp_upper(k: int, n: int, alpha: float = ALPHA) -> float:
    """Clopper-Pearson one-sided ``1 - alpha`` upper bound of a binomial share ``k/n``."""
    from scipy.stats import beta

    return 1.0 if k >= n else float(beta.ppf(1 - alpha, k + 1, n - k))


def cp_lower(k: int, n: int, alpha: float = ALPHA) -> float:
    from scipy.stats import beta

    return 0.0 if k <= 0 else float(beta.ppf(alpha, k, n - k + 1))


def wilson(k: int, n: int, alpha: float = ALPHA) -> tuple[float, float]:
    """Wilson's score bounds (each one-sided ``1 - alpha``) of ``k/n``."""
    from scipy.stats import norm

    z = float(norm.ppf(1 - alpha))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(ka: int, na: int, kb: int, nb: int, alpha: float = ALPHA) -> tuple[float, float]:
    """Newcombe's hybrid score bounds (each one-sided ``1 - alpha``) of ``pA - pB``."""
    pa, pb = ka / na, kb / nb
    la, ua = wilson(ka, na, alpha)
    lb, ub = wilson(kb, nb, alpha)
    d = pa - pb
    return (d - math.sqrt((pa - la) ** 2 + (ub - pb) ** 2),
            d + math.sqrt((ua - pa) ** 2 + (pb - lb) ** 2))


def binom_sf(k: int, n: int, p: float = 0.5) -> float:
    """``P(X >= k)`` for ``X ~ Binomial(n, p)``."""
    from scipy.stats import binom

    return float(binom.sf(k - 1, n, p))


def fisher_greater(ka: int, na: int, kb: int, nb: int) -> float:
    """One-sided Fisher's exact p-value of "A's share is not above B's"."""
    from scipy.stats import fisher_exact

    return float(fisher_exact([[ka, na - ka], [kb, nb - kb]], alternative="greater").pvalue)


def significant(p: float) -> bool:
    """``p <= ALPHA``, a p-value that lands on the level exactly included (Fisher's 3/3
    against 0/3 is 1/20, which floating point gives as a hair above 0.05)."""
    return p <= ALPHA * (1 + 1e-9)


def p_text(p: float) -> str:
    return f"p = {p:.2g}" if p >= 0.001 else "p < 0.001"


@dataclass(frozen=True)
class Decision:
    """A verdict, its one-sided p-value of "no effect", the ``1 - ALPHA`` bounds of the effect
    and the words printed with it."""

    verdict: str
    estimate: float
    p: float
    low: float
    high: float
    text: str


class Rule:
    """A decision rule: :meth:`decide` on data; :meth:`chances` the probabilities of its
    ``shown`` and ``not shown`` at a true effect; :meth:`worst` the largest chance that two
    independent draws contradict each other, over every true effect."""

    name = ""

    def chances(self, *truth) -> tuple[float, float]:
        raise NotImplementedError

    def grid(self):
        raise NotImplementedError

    @lru_cache(maxsize=None)  # noqa: B019 (the rules are frozen, hashable and few)
    def worst(self) -> float:
        """``max over truths of 2 P(shown) P(not shown)``: the chance that two machines
        contradict each other, at the least favourable true effect."""
        return max(2 * s * n for s, n in (self.chances(*t) for t in self.grid()))


def moves(a: Rule, b: Rule, *truth) -> tuple[float, float]:
    """At a true effect, for the same claim decided by rule ``a`` on one machine and ``b`` on
    another (their sample sizes may differ): the chance that the two contradict each other,
    and that one decides while the other is undecided."""
    sa, na = a.chances(*truth)
    sb, nb = b.chances(*truth)
    return sa * nb + na * sb, (sa + na) * (1 - sb - nb) + (1 - sa - na) * (sb + nb)


GRID = np.linspace(0.0, 1.0, 101)


@dataclass(frozen=True)
class Share(Rule):
    """``k`` of ``n`` seeds have the property: ``shown`` when the binomial test rejects
    ``p <= 1/2``, ``not shown`` when the upper bound of ``p`` is below 1/2."""

    n: int
    name = "share"

    def decide(self, k: int) -> Decision:
        p = binom_sf(k, self.n)
        low, high = cp_lower(k, self.n), cp_upper(k, self.n)
        verdict = SHOWN if significant(p) else NOT_SHOWN if high < 0.5 else UNDECIDED
        return Decision(verdict, k / self.n, p, low, high,
                        f"{k}/{self.n} seeds; {p_text(p)}, share in [{low:.2f}, {high:.2f}]")

    @lru_cache(maxsize=None)  # noqa: B019 (frozen, hashable, few instances)
    def regions(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        ks = range(self.n + 1)
        return (tuple(k for k in ks if self.decide(k).verdict == SHOWN),
                tuple(k for k in ks if self.decide(k).verdict == NOT_SHOWN))

    def chances(self, p: float) -> tuple[float, float]:
        from scipy.stats import binom

        shown, not_shown = self.regions()
        return (float(binom.pmf(shown, self.n, p).sum()),
                float(binom.pmf(not_shown, self.n, p).sum()))

    def grid(self):
        return [(p,) for p in GRID]


@dataclass(frozen=True)
class Paired(Share):
    """A beats B on ``k`` of ``n`` paired seeds (ties left out): ``shown`` by the sign test,
    ``not shown`` when the upper bound of ``q`` (A's chance to beat B on a seed) is below
    :data:`PAIRED_MARGIN`."""

    name = "paired"

    def decide(self, k: int) -> Decision:
        p = binom_sf(k, self.n)
        low, high = cp_lower(k, self.n), cp_upper(k, self.n)
        verdict = SHOWN if significant(p) else NOT_SHOWN if high < PAIRED_MARGIN else UNDECIDED
        return Decision(verdict, k / self.n, p, low, high,
                        f"sign test {p_text(p)}, chance to beat in [{low:.2f}, {high:.2f}]")


@dataclass(frozen=True)
class Solved(Rule):
    """A solves the task in ``ka`` of ``na`` seeds, B in ``kb`` of ``nb``: ``shown`` by
    Fisher's exact test (no gain rejected), ``not shown`` by an exact unconditional test that
    rejects a gain ``pA - pB`` of :data:`SOLVED_MARGIN` or more (its p-value: the largest
    chance, over every pair of true shares with that gain, of an outcome whose Newcombe upper
    bound is as low as the one observed)."""

    na: int
    nb: int
    name = "solved"

    @lru_cache(maxsize=None)  # noqa: B019 (frozen, hashable, few instances)
    def uppers(self) -> np.ndarray:
        """``uppers[ka, kb]``: Newcombe's upper bound of the gain at each outcome."""
        return np.array([[newcombe(a, self.na, b, self.nb)[1] for b in range(self.nb + 1)]
                         for a in range(self.na + 1)])

    def p_margin(self, ka: int, kb: int) -> float:
        """The exact p-value of "the gain is at least SOLVED_MARGIN"."""
        from scipy.stats import binom

        low = self.uppers() <= self.uppers()[ka, kb] + 1e-12
        worst = 0.0
        for pb in np.linspace(0.0, 1.0 - SOLVED_MARGIN, 61):
            joint = np.outer(binom.pmf(np.arange(self.na + 1), self.na, pb + SOLVED_MARGIN),
                             binom.pmf(np.arange(self.nb + 1), self.nb, pb))
            worst = max(worst, float(joint[low].sum()))
        return worst

    def decide(self, ka: int, kb: int) -> Decision:
        p = fisher_greater(ka, self.na, kb, self.nb)
        low, high = newcombe(ka, self.na, kb, self.nb)
        pm = self.p_margin(ka, kb)
        verdict = SHOWN if significant(p) else NOT_SHOWN if significant(pm) else UNDECIDED
        return Decision(verdict, ka / self.na - kb / self.nb, p, low, high,
                        f"Fisher {p_text(p)}; a gain of {SOLVED_MARGIN:g} or more: "
                        f"{p_text(pm)}; gain in [{low:+.2f}, {high:+.2f}]")

    @lru_cache(maxsize=None)  # noqa: B019
    def table(self) -> np.ndarray:
        """``table[ka, kb]``: 1 shown, -1 not shown, 0 undecided."""
        code = {SHOWN: 1, NOT_SHOWN: -1, UNDECIDED: 0}
        return np.array([[code[self.decide(a, b).verdict] for b in range(self.nb + 1)]
                         for a in range(self.na + 1)])

    def chances(self, pa: float, pb: float) -> tuple[float, float]:
        from scipy.stats import binom

        joint = np.outer(binom.pmf(np.arange(self.na + 1), self.na, pa),
                         binom.pmf(np.arange(self.nb + 1), self.nb, pb))
        t = self.table()
        return float(joint[t == 1].sum()), float(joint[t == -1].sum())

    def grid(self):
        coarse = GRID[::2]
        return [(a, b) for a in coarse for b in coarse]


@dataclass(frozen=True)
class Correlation(Rule):
    """Spearman's rho over ``n`` runs: ``shown`` by a one-sided permutation test (rho < 0),
    ``not shown`` when the lower bound of rho is above ``-CORRELATION_MARGIN``."""

    n: int
    name = "correlation"

    def bounds(self, rho: float) -> tuple[float, float]:
        from scipy.stats import norm

        z = math.atanh(max(-0.999999, min(0.999999, rho)))
        se = math.sqrt((1 + rho * rho / 2) / (self.n - 3))
        c = float(norm.ppf(1 - ALPHA))
        return math.tanh(z - c * se), math.tanh(z + c * se)

    def decide(self, xs, ys) -> Decision:
        from scipy.stats import rankdata

        rx, ry = rankdata(xs), rankdata(ys)
        rx, ry = (rx - rx.mean()) / (rx.std() or 1), (ry - ry.mean()) / (ry.std() or 1)
        rho = float(np.mean(rx * ry))
        rng = np.random.default_rng(0)
        perms = np.stack([rng.permutation(ry) for _ in range(PERMUTATIONS)])
        null = perms @ rx / len(rx)
        p = (1 + int(np.sum(null <= rho + 1e-12))) / (PERMUTATIONS + 1)
        low, high = self.bounds(rho)
        verdict = SHOWN if significant(p) else NOT_SHOWN if low > -CORRELATION_MARGIN else UNDECIDED
        return Decision(verdict, rho, p, low, high,
                        f"rho {rho:.2f} over {self.n} runs; permutation {p_text(p)}, "
                        f"rho in [{low:.2f}, {high:.2f}]")

    def chances(self, rho: float) -> tuple[float, float]:
        """By the normal approximation of Fisher's z (the permutation test's threshold taken
        as its large-sample value)."""
        from scipy.stats import norm

        c = float(norm.ppf(1 - ALPHA))
        se0 = 1 / math.sqrt(self.n - 3)
        se = math.sqrt((1 + rho * rho / 2) / (self.n - 3))
        z = math.atanh(max(-0.999, min(0.999, rho)))
        shown = float(norm.cdf((-c * se0 - z) / se))
        # not shown: z_hat - c * se > atanh(-margin)
        not_shown = float(norm.sf((math.atanh(-CORRELATION_MARGIN) + c * se - z) / se))
        return shown, not_shown

    def grid(self):
        return [(r,) for r in np.linspace(-0.95, 0.95, 191)]
