"""Shared helpers: compose the real config, shrink it, run the entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from pytorch_lightning.loggers.logger import Logger

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

SYNTHETIC = ("copy", "denoising")
DIGITS = ("seq_digits", "perm_digits", "row_digits")
MNIST = ("seq_mnist", "perm_mnist", "row_mnist")


def tiny(benchmark: str = "copy") -> list[str]:
    """Overrides that shrink a run to a few seconds of work."""
    common = [
        "net.hidden_size=8", "trainer.max_epochs=2", "trainer.batch_size=16",
        "trainer.progress=false", "warmup.steps=4", "vaa.steps=30", "vaa.groups=1",
        "vaa.group_size=16", "vaa.pictures=false",
    ]
    if benchmark in SYNTHETIC:
        sizes = ["benchmark.seq_length=20", "benchmark.train_size=120", "benchmark.test_size=40"]
    else:
        sizes = ["benchmark.black_pixels=3", "benchmark.train_size=100", "benchmark.test_size=40"]
    return common + sizes


def compose_config(overrides: list[str], hydra: bool = False):
    """The real config with ``overrides`` (``hydra``: with the ``hydra`` node, launchers...)."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=overrides, return_hydra_config=hydra)


def names(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def run_cli(args: list[str], cwd: Path = ROOT, timeout: int = 300,
            extra_path: list[Path] = ()) -> subprocess.CompletedProcess:
    """``python -m src.run ARGS`` as a user would call it (``extra_path``: more of PYTHONPATH)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, [ROOT, *extra_path]))}
    return subprocess.run([sys.executable, "-m", "src.run", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


class MemoryLogger(Logger):
    """A Lightning logger that keeps ``{key: [(step, value), ...]}`` in memory."""

    def __init__(self):
        super().__init__()
        self.metrics: dict[str, list[tuple[int, float]]] = {}

    @property
    def name(self):
        return "memory"

    @property
    def version(self):
        return 0

    def log_hyperparams(self, params, *args, **kwargs):
        pass

    def log_metrics(self, metrics, step=None):
        for key, value in metrics.items():
            self.metrics.setdefault(key, []).append((step, float(value)))


@pytest.fixture
def store(tmp_path):
    """A fresh embedded MLflow store: (tracking URI, client)."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    return uri, MlflowClient(uri)
