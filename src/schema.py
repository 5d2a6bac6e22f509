"""The config's schema: the type and the allowed range of every plain key, in one place.

``conf/config.yaml`` starts its defaults list with ``schema``, this dataclass registered in
Hydra's ConfigStore, so every value that reaches a run (the YAML files, a ``+scale``, the
command line) is typed by OmegaConf: ``net.hidden_size=abc`` is refused at composition, as
is a key the schema does not know (``warmup.stepz=5``). A key's range, which a type cannot
say, is the :class:`src.rules.Rule` in its field's metadata; :func:`check` applies them all
to a composed config. The defaults stay in the YAML files, where users read them; the
schema holds types and ranges only (``MISSING`` where a file gives the value).

The groups whose keys differ per choice (``cell``, ``benchmark``) and the per-benchmark
``sizes`` of a scale are left untyped here: the cell and the data module check their own
arguments when they are built (src/benchmarks/base.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Optional, get_type_hints

from omegaconf import MISSING, DictConfig
from omegaconf.errors import OmegaConfBaseException

from src import rules
from src.rules import (ACCELERATORS, FRACTION, METHODS, NAME, POSITIVE, SEED, SHARE, at_least,
                       one_of, or_null)


def key(rule: rules.Rule | None = None, default: Any = MISSING) -> Any:
    """A typed key, its value from the YAML files, its range ``rule``."""
    return field(default=default, metadata={"rule": rule} if rule else {})


@dataclass
class NetConf:
    hidden_size: int = key(at_least(1))
    num_layers: int = key(at_least(1))
    parallel: bool = key()


@dataclass
class TrainerConf:
    max_epochs: int = key(at_least(1))
    batch_size: int = key()  # checked by the data module, which knows the training set's size
    lr: float = key(POSITIVE)
    accelerator: str = key(one_of(ACCELERATORS))
    devices: Any = key()  # Lightning's: an int, a list of ints or "auto"
    progress: bool = key()
    threads: Optional[int] = key(or_null(at_least(1), "torch's default"), None)


@dataclass
class WarmupConf:
    fraction: float = key(FRACTION)
    steps: int = key(at_least(0))
    active: bool = key()
    lr: float = key(POSITIVE)
    vaa_target: float = key(SHARE)
    max_horizon: int = key(at_least(1))
    horizon_growth: int = key(at_least(0))
    method: str = key(one_of(METHODS))
    select_steps: int = key(at_least(1))
    gain: Optional[float] = key(or_null(at_least(0), "chosen by measurement"), None)


@dataclass
class VAAConf:
    steps: int = key(at_least(1))
    group_size: int = key(at_least(2))
    groups: int = key(at_least(1))
    eps: float = key(POSITIVE)
    every_epoch: bool = key()
    pictures: bool = key()


@dataclass
class MLflowConf:
    tracking_uri: Optional[str] = None  # checked by src/tracking.py (the schemes MLflow accepts)
    experiment: str = key(NAME)
    skip_finished: bool = MISSING


@dataclass
class Config:
    seed: int = key(SEED)
    cell: Any = MISSING
    benchmark: Any = MISSING
    net: NetConf = field(default_factory=NetConf)
    trainer: TrainerConf = field(default_factory=TrainerConf)
    warmup: WarmupConf = field(default_factory=WarmupConf)
    vaa: VAAConf = field(default_factory=VAAConf)
    mlflow: MLflowConf = field(default_factory=MLflowConf)
    figure: Optional[str] = None
    sizes: Any = None  # a scale's sizes per benchmark (conf/scale/*.yaml)


def register() -> None:
    """Register the schema as ``schema`` in Hydra's ConfigStore (conf/config.yaml names it)."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="schema", node=Config)


def check(cfg: DictConfig, schema: type = Config, prefix: str = "") -> None:
    """Apply every key's rule to a composed config, in the schema's order: raise
    :class:`src.rules.Refusal`, one line, at the first value out of range."""
    types = get_type_hints(schema)
    for f in fields(schema):
        if is_dataclass(types[f.name]):
            check(cfg[f.name], types[f.name], f"{prefix}{f.name}.")
        elif "rule" in f.metadata:
            f.metadata["rule"].check(f"{prefix}{f.name}", cfg[f.name])


def type_error(err: OmegaConfBaseException) -> str:
    """OmegaConf's error on one line: ``net.hidden_size='abc': Value 'abc' of type 'str' could
    not be converted to Integer``. OmegaConf appends ``full_key:``, ``object_type=`` lines."""
    message = str(err).splitlines()[0].strip() if str(err).strip() else type(err).__name__
    if not err.full_key:
        return message
    shown = f"{err.full_key}={err.value!r}" if err.value is not None else err.full_key
    return f"{shown}: {message}"
