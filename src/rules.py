"""The allowed range of every configurable number and choice, each written once.

A :class:`Rule` is a test and the words for it. The structured config (``src/schema.py``)
attaches one to each key it covers, so that ``python -m src.run warmup.fraction=1.5`` is
refused in one line before torch is imported; the library's constructors (``src/rnn.py``,
``src/warmup/``, ``src/api.py``) apply the same rules to their own arguments, for users of
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
    bad: object = None  # a value the rule refuses, as typed on the command line (the tests')

    def check(self, key: str, value: object) -> None:
        """Raise :class:`Refusal` ``KEY=VALUE <says>`` unless ``value`` passes."""
        if not self.test(value):
            shown = repr(value) if isinstance(value, str) and not value.strip() else value
            raise Refusal(f"{key}={shown} {self.says}")


def at_least(low: int) -> Rule:
    return Rule(lambda v: v >= low, f"must be >= {low}", low - 1)


def one_of(names: tuple[str, ...]) -> Rule:
    return Rule(lambda v: v in names, f"must be one of {', '.join(names)}", "nonesuch")


def integer(rule: Rule) -> Rule:
    """``rule`` for a Python int (not a bool): what a library argument gets, which no schema
    has typed."""
    return Rule(lambda v: isinstance(v, int) and not isinstance(v, bool) and rule.test(v),
                rule.says.replace("must be", "must be an integer", 1), rule.bad)


def or_null(rule: Rule, meaning: str) -> Rule:
    """``rule``, or null, which means ``meaning``."""
    return Rule(lambda v: v is None or rule.test(v), f"{rule.says} or null ({meaning})", rule.bad)


POSITIVE = Rule(lambda v: v > 0 and math.isfinite(v), "must be a finite number > 0", 0)
FRACTION = Rule(lambda v: 0 <= v <= 1, "must be in [0, 1]", 1.5)
SHARE = Rule(lambda v: 0 < v <= 1, "must be in (0, 1]", 0)
#: ``seed``: what numpy's and Lightning's seeding accept.
SEED = Rule(lambda v: 0 <= v <= 2**32 - 1,
            "must be in [0, 4294967295] (what numpy and Lightning can seed)", -1)
#: A name (``mlflow.experiment``): not empty, not blank.
NAME = Rule(lambda v: isinstance(v, str) and v.strip() != "", "must be a name, not blank", "' '")
#: ``warmup.method``: ``paper``, the published algorithm (the default), or ``excite``, this
#: project's construction (src/warmup/excite.py).
METHODS = ("paper", "excite")
#: ``trainer.accelerator``: Lightning's names for the devices it trains on.
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")


def one_line(err: BaseException) -> str:
    """An error's message on one line: its lines joined, so that a cause that a library puts
    on the next line (Hydra's "Error loading 'x':" then the ImportError) is kept."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return " ".join(lines) if lines else type(err).__name__
