"""Shared helpers: compose the real config, shrink it, run the entry point."""

from __future__ import annotations

import gzip
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

import pytest
from hydra import compose, initialize_config_dir
from pytorch_lightning.loggers.logger import Logger

from src import schema  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
schema.register()  # every composition below is typed, as in src.run

# `make test` runs `pytest -n auto`: pytest-xdist workers side by side. A worker left at torch's
# default (one thread per core) would share the cores with the others: two threads per core
# runs torch many times slower here. With OMP_NUM_THREADS unset, each worker (and the runs it
# starts) takes one thread; with OMP_NUM_THREADS=k, there are cores // k workers of k threads.
if os.environ.get("PYTEST_XDIST_WORKER") and not os.environ.get("OMP_NUM_THREADS"):
    os.environ["OMP_NUM_THREADS"] = "1"  # for the subprocesses the tests start
    torch.set_num_threads(1)


def pytest_xdist_auto_num_workers(config) -> int:
    """``-n auto``: as many workers as the cores hold at the thread count each one uses."""
    threads = int(os.environ.get("OMP_NUM_THREADS") or 1)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // max(1, threads))

SYNTHETIC = ("copy", "denoising")
DIGITS = ("seq_digits", "perm_digits", "row_digits")
MNIST = ("seq_mnist", "perm_mnist", "row_mnist")


def tiny(benchmark: str = "copy", method: str | None = None) -> list[str]:
    """Overrides that shrink a run to a few seconds of work. ``method``: ``None`` keeps the
    config's default (paper, whose 4 gradient steps exercise stage 1's trainer and metrics);
    ``"excite"`` the project's construction."""
    common = [*([f"warmup.method={method}"] if method else []),
        "net.hidden_size=8", "trainer.max_epochs=2", "trainer.batch_size=16",
        "trainer.progress=false", "warmup.steps=4", "warmup.select_steps=30", "vaa.steps=30", "vaa.groups=1",
        "vaa.group_size=16", "vaa.pictures=false",
    ]
    if benchmark == "tmaze":
        sizes = ["benchmark.length=2", "benchmark.episodes=6", "benchmark.capacity=60",
                 "benchmark.steps_per_episode=2", "benchmark.eval_every=2",
                 "benchmark.eval_rollouts=4", "benchmark.vaa_every=3"]
    elif benchmark in SYNTHETIC:
        sizes = ["benchmark.seq_length=20", "benchmark.train_size=120", "benchmark.test_size=40"]
    else:
        sizes = ["benchmark.black_pixels=3", "benchmark.train_size=100", "benchmark.test_size=40"]
    return common + sizes


def compose_config(overrides: list[str], hydra: bool = False):
    """The real config with ``overrides`` (``hydra``: with the ``hydra`` node, launchers...)."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=overrides, return_hydra_config=hydra)


def train_in_process(tmp_path, overrides):
    """Both stages of one run, in-process, as src/run.py runs them: the pipeline's VAA meter,
    the metrics logged by the pipeline's MLflow logger into a real SQLite store (one per
    test worker, one run per call) and read back: ``(result, {key: [(step, value), ...]})``."""
    from mlflow.tracking import MlflowClient

    from src import tracking
    from src.pipeline import RunLogger, build, train, vaa_meter

    cfg = compose_config(overrides)
    torch.manual_seed(cfg.seed)
    dm, net, vaa_inputs = build(cfg)
    uri = f"sqlite:///{tmp_path.parent / 'in-process-mlflow.db'}"
    client = MlflowClient(uri)
    run_id = client.create_run(tracking.prepare_store(uri, "in-process"),
                               run_name=tmp_path.name).info.run_id
    logger = RunLogger(tracking_uri=uri, run_id=run_id)
    result = train(cfg, dm, net, vaa_meter(cfg, vaa_inputs), logger, tmp_path)
    client.set_terminated(run_id, "FINISHED")
    keys = client.get_run(run_id).data.metrics
    metrics = {k: sorted(((m.step, m.value) for m in client.get_metric_history(run_id, k)),
                         key=lambda sv: sv[0]) for k in keys}
    return result, metrics


def names(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def cli_in_process(args: list[str], monkeypatch) -> int:
    """``python -m src.run ARGS`` through its own entry (``src.run.cli``), in this process,
    ended by ``sys.exit``: its exit status (stderr is the caller's ``capsys``). Hydra's global
    state is cleared after."""
    import pytest
    from hydra.core.global_hydra import GlobalHydra

    from src import run

    monkeypatch.setattr(sys, "argv", ["src.run", *args])
    try:
        with pytest.raises(SystemExit) as ended:
            run.cli()
    finally:
        GlobalHydra.instance().clear()
    return ended.value.code


def run_cli(args: list[str], cwd: Path = ROOT, timeout: int = 300,
            extra_path: list[Path] = ()) -> subprocess.CompletedProcess:
    """``python -m src.run ARGS`` as a user would call it (``extra_path``: more of PYTHONPATH)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, [ROOT, *extra_path]))}
    return subprocess.run([sys.executable, "-m", "src.run", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


# -- services the cluster and UI tests start (tests/test_cluster.py, tests/test_ui.py) ---------
def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, timeout: float, what: str) -> None:
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise TimeoutError(f"{what}: not ready after {timeout:.0f} s")


def answers(url: str) -> bool:
    """Whether an MLflow server or UI at ``url`` says it is healthy."""
    import urllib.request

    try:
        return urllib.request.urlopen(f"{url}/health", timeout=2).status == 200
    except OSError:
        return False


def stop(proc: subprocess.Popen) -> None:
    """End a process started with a session of its own, and whatever it started."""
    import signal

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # children left behind in its group
    except ProcessLookupError:
        pass


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


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory) -> Path:
    """An embedded MLflow store with its tables created, once per session: creating them
    (MLflow's migrations) takes about a second, copying the file a millisecond."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def store(tmp_path, empty_store):
    """A fresh embedded MLflow store of its own: (tracking URI, client)."""
    from mlflow.tracking import MlflowClient

    shutil.copyfile(empty_store, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    return uri, MlflowClient(uri)


# -- MNIST files (small, random, in the real IDX format) ----------------------
N_FILE_TRAIN, N_FILE_TEST = 50, 15


def write_idx(path: Path, array: np.ndarray, magic: int, gz: bool) -> None:
    data = struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def write_mnist(directory: Path, gz: bool, seed: int = 0, side: int = 28) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (N_FILE_TRAIN, side, side)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, N_FILE_TRAIN),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (N_FILE_TEST, side, side)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, N_FILE_TEST),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        magic = 2051 if "images" in name else 2049
        write_idx(directory / (name + (".gz" if gz else "")), array, magic, gz)
    return arrays
