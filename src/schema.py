"""The config's schema: the type of every plain key, checked by OmegaConf, not by hand.

``conf/config.yaml`` starts its defaults list with ``schema``, this dataclass registered in
Hydra's ConfigStore, so every value that reaches a run (the YAML files, a ``+scale``, the
command line) is typed by OmegaConf: ``net.hidden_size=abc`` is refused at composition, as
is a key the schema does not know (``warmup.stepz=5``). The defaults stay in the YAML files,
where users read them; the schema holds types only (``MISSING`` where a file gives the value).

The groups whose keys differ per choice (``cell``, ``benchmark``) and the per-benchmark
``sizes`` of a scale are left untyped here: the cell and the data module check their own
arguments when they are built. The ranges (``warmup.fraction`` in [0, 1] ...) are checked in
``src/checks.py``, which types cannot say.

:func:`type_error` turns OmegaConf's multi-line error into the one line a run prints, and
:func:`check_overrides` applies the schema to the command line's overrides before Hydra
composes anything, so that a wrong type is refused in one line, in about a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException


@dataclass
class NetConf:
    hidden_size: int = MISSING
    num_layers: int = MISSING
    parallel: bool = MISSING


@dataclass
class TrainerConf:
    max_epochs: int = MISSING
    batch_size: int = MISSING
    lr: float = MISSING
    accelerator: str = MISSING
    devices: Any = MISSING  # Lightning's: an int, a list of ints or "auto"
    progress: bool = MISSING
    threads: Optional[int] = None


@dataclass
class WarmupConf:
    fraction: float = MISSING
    steps: int = MISSING
    active: bool = MISSING
    lr: float = MISSING
    vaa_target: float = MISSING
    max_horizon: int = MISSING
    horizon_growth: int = MISSING
    method: str = MISSING
    select_steps: int = MISSING
    gain: Optional[float] = None


@dataclass
class VAAConf:
    steps: int = MISSING
    group_size: int = MISSING
    groups: int = MISSING
    eps: float = MISSING
    every_epoch: bool = MISSING
    pictures: bool = MISSING


@dataclass
class MLflowConf:
    tracking_uri: Optional[str] = None
    experiment: str = MISSING
    skip_finished: bool = MISSING


@dataclass
class Config:
    seed: int = MISSING
    cell: Any = MISSING
    benchmark: Any = MISSING
    net: NetConf = field(default_factory=NetConf)
    trainer: TrainerConf = field(default_factory=TrainerConf)
    warmup: WarmupConf = field(default_factory=WarmupConf)
    vaa: VAAConf = field(default_factory=VAAConf)
    mlflow: MLflowConf = field(default_factory=MLflowConf)
    figure: Optional[str] = None
    sizes: Any = None  # a scale's sizes per benchmark (conf/scale/*.yaml)


#: The sections the schema types (``cell``, ``benchmark`` and ``sizes`` are free-form; ``figure``
#: is also a config group, whose choice Hydra checks).
TYPED = ("net", "trainer", "warmup", "vaa", "mlflow")


def register() -> None:
    """Register the schema as ``schema`` in Hydra's ConfigStore (conf/config.yaml names it)."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="schema", node=Config)


def type_error(err: OmegaConfBaseException, key: str, value: object) -> str:
    """OmegaConf's error on one line: ``net.hidden_size='abc': Value 'abc' of type 'str' could
    not be converted to Integer``. OmegaConf appends ``full_key:``, ``object_type=`` lines."""
    message = str(err).splitlines()[0].strip() if str(err).strip() else type(err).__name__
    shown = f"{key}={value!r}" if value is not None else key
    return f"{shown}: {message}"


def check_overrides(overrides: list[str]) -> None:
    """Apply the command line's overrides of typed keys to the schema alone, before Hydra runs:
    raise ``ValueError`` with one line for a value of the wrong type or an unknown key. Sweep
    values (``net.hidden_size=32,abc``) are checked one by one. Group choices (``cell=gru``),
    Hydra's own keys and anything the parser does not take are left to Hydra."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    schema = OmegaConf.structured(Config)
    for text in overrides:
        try:  # one at a time: an option's argument (`-cn NAME`) or a syntax error is Hydra's
            (override,) = parser.parse_overrides([text])
        except Exception:
            continue
        key = override.key_or_group
        typed = key == "seed" or "." in key and key.split(".")[0] in TYPED
        if not typed or override.is_delete() or override.is_force_add():
            continue  # a group choice (cell=gru, +figure=...), hydra.*, benchmark.*, ++key
        try:
            if override.is_sweep_override():
                if not override.is_discrete_sweep():
                    continue  # interval(...): a sweeper's business
                values = list(override.sweep_iterator())
            else:
                values = [override.value()]
        except Exception:  # glob(...) and the like: Hydra expands (or refuses) them
            continue
        for value in values:
            try:
                OmegaConf.update(schema, key, value, merge=True)
            except OmegaConfBaseException as err:
                raise ValueError(type_error(err, key, value)) from None
