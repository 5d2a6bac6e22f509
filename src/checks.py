"""The range checks of a run's config that need no data: one rule per key, one line per error.
(Types are checked by OmegaConf against the schema, src/schema.py.)

Kept apart from the pipeline (and from torch) so that a bad value is refused before the
heavy imports: ``python -m src.run warmup.fraction=1.5`` answers in about a second.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

#: ``warmup.method``: ``paper`` (the published algorithm, the default) or ``excite`` (this
#: project's construction), src/warmup.py.
METHODS = ("paper", "excite")
#: ``trainer.accelerator``: Lightning's names for the devices it can train on.
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")

def check_config(cfg: DictConfig) -> None:
    """Range checks of the plain keys, before anything is built (one-line errors). Their types
    are the schema's (src/schema.py), checked by OmegaConf when the config is composed. Each
    key has its rule in one place: the benchmark's keys and ``trainer.batch_size`` are
    checked by the data module (src/benchmarks/base.py), when it is built."""
    rules = [
        ("warmup.fraction", 0 <= cfg.warmup.fraction <= 1, "must be in [0, 1]"),
        ("warmup.steps", cfg.warmup.steps >= 0, "must be >= 0"),
        ("warmup.lr", cfg.warmup.lr > 0, "must be > 0"),
        ("warmup.vaa_target", 0 < cfg.warmup.vaa_target <= 1, "must be in (0, 1]"),
        ("warmup.max_horizon", cfg.warmup.max_horizon >= 1, "must be >= 1"),
        ("warmup.method", cfg.warmup.method in METHODS, f"must be one of {', '.join(METHODS)}"),
        ("warmup.gain", cfg.warmup.gain is None or cfg.warmup.gain >= 0,
         "must be >= 0 or null (chosen by measurement)"),
        ("warmup.select_steps", cfg.warmup.select_steps >= 1, "must be >= 1"),
        ("net.hidden_size", cfg.net.hidden_size >= 1, "must be >= 1"),
        ("net.num_layers", cfg.net.num_layers >= 1, "must be >= 1"),
        ("trainer.max_epochs", cfg.trainer.max_epochs >= 1, "must be >= 1"),
        ("trainer.lr", cfg.trainer.lr > 0, "must be > 0"),
        ("trainer.accelerator", cfg.trainer.accelerator in ACCELERATORS,
         f"must be one of {', '.join(ACCELERATORS)}"),
        ("trainer.threads", cfg.trainer.threads is None or cfg.trainer.threads >= 1,
         "must be >= 1 or null (torch's default)"),
        ("vaa.steps", cfg.vaa.steps >= 1, "must be >= 1"),
        ("vaa.groups", cfg.vaa.groups >= 1, "must be >= 1"),
        ("vaa.group_size", cfg.vaa.group_size >= 2, "must be >= 2"),
    ]
    for key, ok, rule in rules:
        if not ok:
            raise ValueError(f"{key}={OmegaConf.select(cfg, key)} {rule}")


def one_line(err: BaseException) -> str:
    """An error's message on one line: its lines joined, so that a cause that a library puts
    on the next line (Hydra's "Error loading 'x':" then the ImportError) is kept."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return " ".join(lines) if lines else type(err).__name__
