"""The allowed range of every configurable number and choice, each written once.

A :class:`Rule` is a test and the words for it. The structured config (``src/schema.py``)
attaches one to each key it covers, so that ``python -m src.run warmup.fraction=1.5`` is
refused in one line before torch is imported; the library's constructors (``src/rnn.py``,
``src/warmup.py``, ``src/api.py``) apply the same rules to their own arguments, for users of
the library who never compose a config. This module imports nothing of the project's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable


class Refusal(ValueError):
    """Bad input, refused before any run exists: ``src/run.py`` prints it on one line and
    exits with status 2."""


@dataclass(frozen=True)
class Rule:
    test: Callable[[object], bool]
    says: str  # what follows ``KEY=VALUE`` in the refusal: "must be in [0, 1]"

    def check(self, key: str, value: object) -> None:
        """Raise :class:`Refusal` ``KEY=VALUE <says>`` unless ``value`` passes."""
        if not self.test(value):
            raise Refusal(f"{key}={value} {self.says}")


def at_least(low: int) -> Rule:
    return Rule(lambda v: v >= low, f"must be >= {low}")


def one_of(names: tuple[str, ...]) -> Rule:
    return Rule(lambda v: v in names, f"must be one of {', '.join(names)}")


def integer(rule: Rule) -> Rule:
    """``rule`` for a Python int (not a bool): what a library argument gets, which no schema
    has typed."""
    return Rule(lambda v: isinstance(v, int) and not isinstance(v, bool) and rule.test(v),
                rule.says.replace("must be", "must be an integer", 1))


def or_null(rule: Rule, meaning: str) -> Rule:
    """``rule``, or null, which means ``meaning``."""
    return Rule(lambda v: v is None or rule.test(v), f"{rule.says} or null ({meaning})")


POSITIVE = Rule(lambda v: v > 0 and math.isfinite(v), "must be a finite number > 0")
FRACTION = Rule(lambda v: 0 <= v <= 1, "must be in [0, 1]")
SHARE = Rule(lambda v: 0 < v <= 1, "must be in (0, 1]")
#: ``warmup.method``: ``paper``, the published algorithm (the default), or ``excite``, this
#: project's construction (src/warmup.py).
METHODS = ("paper", "excite")
#: ``trainer.accelerator``: Lightning's names for the devices it trains on.
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")


def one_line(err: BaseException) -> str:
    """An error's message on one line: its lines joined, so that a cause that a library puts
    on the next line (Hydra's "Error loading 'x':" then the ImportError) is kept."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return " ".join(lines) if lines else type(err).__name__
