"""Benchmarks: the batch contract, targets agree with inputs, seeds, splits,
validation messages, and the MNIST IDX reader on small files written here.

Every benchmark is built from its own YAML the way ``src/run.py`` does
(``hydra.utils.instantiate(cfg.benchmark, batch_size=...)``), shrunk."""

from __future__ import annotations

import struct
from pathlib import Path

import hydra
import numpy as np
import pytest
import torch
from hydra.errors import InstantiationException
from omegaconf import OmegaConf
from sklearn.datasets import load_digits

from conftest import N_FILE_TEST, N_FILE_TRAIN, write_mnist

from src.benchmarks.copy import CopyFirstInput
from src.benchmarks.denoising import Denoising
from src.benchmarks.mnist import MNIST, read_idx

CONF = Path(__file__).resolve().parents[1] / "conf" / "benchmark"
SRC = Path(__file__).resolve().parents[1] / "src" / "benchmarks"
SYNTHETIC = ["copy", "denoising"]
DIGITS = ["seq_digits", "perm_digits", "row_digits"]
MNISTS = ["seq_mnist", "perm_mnist", "row_mnist"]
ALL = SYNTHETIC + DIGITS + MNISTS
BATCH = 8
# Small sizes for tests; MNIST files written below hold N_FILE_TRAIN / N_FILE_TEST images.
SMALL = {"train_size": 40, "test_size": 12}


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("mnist")
    write_mnist(directory, gz=True)
    return directory


def build(name: str, mnist_dir: Path | None = None, **overrides):
    """Instantiate conf/benchmark/<name>.yaml as src/run.py does, shrunk."""
    cfg = OmegaConf.load(CONF / f"{name}.yaml")
    sizes = dict(SMALL, black_pixels=3) if "black_pixels" in cfg else dict(SMALL, seq_length=20)
    if "data_dir" in cfg:
        sizes["data_dir"] = str(mnist_dir)
    cfg.merge_with(dict(sizes, **overrides))
    try:
        return hydra.utils.instantiate(cfg, batch_size=BATCH)
    except InstantiationException as err:  # hydra wraps the one-line error: unwrap it
        raise err.__cause__ from None


def stored_image(x: torch.Tensor, dm) -> torch.Tensor:
    """Time-major inputs of one sample (L, input_size) -> the uint8 image it came from."""
    height, width = dm.image_shape
    pixels = x[: dm.seq_length - dm.black_pixels]
    assert torch.all(x[dm.seq_length - dm.black_pixels :] == 0)  # black steps are zero
    flat = ((pixels.reshape(-1) + 0.5) * dm.max_value).round().to(torch.uint8)
    if dm.permutation is not None:
        unpermuted = torch.empty_like(flat)
        unpermuted[dm.permutation] = flat
        flat = unpermuted
    return flat.reshape(height, width)


def all_batches(loader):
    xs, ys, masks = zip(*loader)
    return torch.cat(xs, 1), torch.cat(ys, 1), torch.cat(masks, 1)


# -- the contract, for every benchmark ----------------------------------------
def test_every_benchmark_has_a_yaml_and_no_hydra_below_run():
    assert sorted(p.stem for p in CONF.glob("*.yaml")) == sorted([*ALL, "tmaze"])
    for path in CONF.glob("*.yaml"):  # the T-Maze (reinforcement learning) lives in src/rl/
        prefix = "src.rl." if path.stem == "tmaze" else "src.benchmarks."
        assert OmegaConf.load(path)["_target_"].startswith(prefix)
    for path in [*SRC.glob("*.py"), *(SRC.parent / "rl").glob("*.py")]:
        text = path.read_text()
        assert "import hydra" not in text and "omegaconf" not in text, path


@pytest.mark.parametrize("name", SYNTHETIC + DIGITS)
def test_default_sizes_validate(name):
    cfg = OmegaConf.load(CONF / f"{name}.yaml")
    dm = hydra.utils.instantiate(cfg, batch_size=32)  # constructor only: cheap
    assert dm.name == name and dm.train_size == cfg.train_size


@pytest.mark.parametrize("name", ALL)
def test_batches_and_train_inputs(name, mnist_dir):
    dm = build(name, mnist_dir)
    assert dm.name == name
    length, inputs = dm.seq_length, dm.input_size
    expected = {
        "copy": (20, 1, 1, "regression"),
        "denoising": (20, 2, 1, "regression"),
        "seq_digits": (67, 1, 10, "classification"),
        "perm_digits": (67, 1, 10, "classification"),
        "row_digits": (11, 8, 10, "classification"),
        "seq_mnist": (787, 1, 10, "classification"),
        "perm_mnist": (787, 1, 10, "classification"),
        "row_mnist": (31, 28, 10, "classification"),
    }[name]
    assert (length, inputs, dm.output_size, dm.task) == expected
    dm.setup()
    outputs = 5 if name == "denoising" else 1
    for loader, n in [
        (dm.train_dataloader(), 32),
        (dm.val_dataloader(), 8),
        (dm.test_dataloader(), 12),
    ]:
        x, y, mask = all_batches(loader)
        assert x.shape == (length, n, inputs) and x.dtype == torch.float32
        assert mask.shape == (length, n) and mask.dtype == torch.bool
        assert mask[-outputs:].all() and not mask[:-outputs].any()
        if dm.task == "regression":
            assert y.shape == (length, n, dm.output_size) and y.dtype == torch.float32
        else:
            assert y.shape == (length, n) and y.dtype == torch.int64
            assert 0 <= y[mask].min() and y[mask].max() < 10
        assert torch.all(y[~mask] == 0)
        assert next(iter(loader))[0].shape[1] == BATCH
    first = dm.train_inputs(5)
    assert first.shape == (length, 5, inputs) and first.dtype == torch.float32
    assert torch.equal(first, dm.train_inputs(5))
    # the first training sequences, in the stored order (the unshuffled split)
    unshuffled = dm.collate(dm._splits["train"].__getitems__(list(range(5))))[0]
    assert torch.equal(first, unshuffled)
    with pytest.raises(ValueError, match="benchmark.train_size"):
        dm.train_inputs(33)


@pytest.mark.parametrize("name", ["copy", "seq_digits"])
def test_loader_order(name):
    dm = build(name)
    x1, x2 = all_batches(dm.val_dataloader())[0], all_batches(dm.val_dataloader())[0]
    assert torch.equal(x1, x2)  # validation (and test) are not shuffled
    torch.manual_seed(0)
    a = all_batches(dm.train_dataloader())[0]
    torch.manual_seed(0)
    b = all_batches(dm.train_dataloader())[0]
    c = all_batches(dm.train_dataloader())[0]
    assert torch.equal(a, b) and not torch.equal(a, c)  # shuffled by the global RNG


def test_setup_is_idempotent(monkeypatch):
    dm = build("copy")
    calls = []
    original = dm.generate
    monkeypatch.setattr(dm, "generate", lambda: calls.append(1) or original())
    dm.setup("fit")
    first = dm.train_inputs(2)
    dm.setup("test")
    dm.train_dataloader()
    assert calls == [1] and torch.equal(dm.train_inputs(2), first)  # generated once


# -- targets agree with the inputs ----------------------------------------------
def test_copy_target_is_the_first_input():
    dm = build("copy")
    x, y, _ = all_batches(dm.test_dataloader())
    assert torch.equal(y[-1, :, 0], x[0, :, 0]) and torch.all(y[:-1] == 0)
    assert 0.5 < x.std() < 1.5


def test_denoising_targets_are_the_marked_values_in_order():
    dm = build("denoising", seq_length=30)
    x, y, mask = all_batches(dm.train_dataloader())
    noise, marker = x[..., 0], x[..., 1]
    length = dm.seq_length
    assert torch.all(marker[length - 5] == -1)
    assert torch.all(marker[length - 4 :] == 0)
    assert torch.all((marker[: length - 5] == 0) | (marker[: length - 5] == 1))
    assert torch.all((marker[: length - 5] == 1).sum(0) == 5)
    for i in range(x.shape[1]):
        marked = noise[: length - 5, i][marker[: length - 5, i] == 1]  # time order
        assert torch.equal(y[mask].reshape(5, -1)[:, i], marked)
        assert torch.equal(y[length - 5 :, i, 0], marked)
    positions = (marker[: length - 5] == 1).nonzero()[:, 0]
    assert len(positions.unique()) == length - 5  # over many sequences, every position is used


@pytest.mark.parametrize("name", DIGITS)
def test_digit_labels_match_their_images(name):
    digits = load_digits()
    label_of = {
        img.astype(np.uint8).tobytes(): int(t) for img, t in zip(digits.images, digits.target)
    }
    assert len(label_of) == 1797  # no duplicate images, so an image identifies its label
    dm = build(name)
    seen = []
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
        x, y, _ = all_batches(loader)
        for i in range(x.shape[1]):
            image = stored_image(x[:, i], dm).numpy().tobytes()
            assert label_of[image] == y[-1, i]
            seen.append(image)
    assert len(set(seen)) == len(seen) == 52  # train, validation and test are disjoint
    # the stored order is the data-seed shuffle: test images are load_digits()[test_index]
    x, y, _ = all_batches(dm.test_dataloader())
    assert torch.equal(y[-1], torch.from_numpy(digits.target)[dm.test_index])


def test_digit_pixels_are_scaled_per_the_mnist_rule():
    dm = build("seq_digits", black_pixels=0)
    x = dm.train_inputs(32)
    assert x.min() == -0.5 and x.max() == 0.5  # 0 -> -0.5, 16 -> 0.5


def test_permutation_is_a_fixed_permutation(mnist_dir):
    for name, pixels in (("perm_digits", 64), ("perm_mnist", 784)):
        a, b = build(name, mnist_dir), build(name, mnist_dir)
        assert torch.equal(a.permutation.sort().values, torch.arange(pixels))
        assert torch.equal(a.permutation, b.permutation)
        assert not torch.equal(a.permutation, torch.arange(pixels))
        assert not torch.equal(a.permutation, build(name, mnist_dir, data_seed=1).permutation)
    assert build("seq_digits").permutation is None


# -- seeds and splits --------------------------------------------------------------
def data(dm):
    return [all_batches(loader) for loader in (dm.val_dataloader(), dm.test_dataloader())] + [
        dm.train_inputs(32)
    ]


@pytest.mark.parametrize("name", SYNTHETIC + DIGITS + ["perm_mnist"])
def test_data_seed(name, mnist_dir):
    same = [data(build(name, mnist_dir, data_seed=3)) for _ in range(2)]
    other = data(build(name, mnist_dir, data_seed=4))
    flat = [torch.cat([t.reshape(-1).float() for t in _flatten(d)]) for d in (*same, other)]
    assert torch.equal(flat[0], flat[1])
    assert not torch.equal(flat[0], flat[2])


def _flatten(d):
    for item in d:
        yield from (item if isinstance(item, tuple) else (item,))


def test_global_rng_does_not_change_the_data():
    torch.manual_seed(0)
    a = build("denoising").train_inputs(4)
    torch.manual_seed(1)
    assert torch.equal(a, build("denoising").train_inputs(4))


@pytest.mark.parametrize("name", SYNTHETIC)
def test_synthetic_splits_are_disjoint(name):
    dm = build(name)
    rows = [
        all_batches(loader)[0].transpose(0, 1).reshape(-1, dm.seq_length * dm.input_size)
        for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader())
    ]
    everything = torch.cat(rows)
    assert len(everything) == 52 and len(everything.unique(dim=0)) == 52


# -- validation: one line naming the key -------------------------------------------------
BAD = [
    ("copy", {"seq_length": 0}, "benchmark.seq_length"),
    ("copy", {"train_size": -5}, "benchmark.train_size"),
    ("copy", {"train_size": 1}, "benchmark.train_size"),
    ("copy", {"train_size": 2.5}, "benchmark.train_size"),
    ("copy", {"test_size": 0}, "benchmark.test_size"),
    ("copy", {"data_seed": "zero"}, "benchmark.data_seed"),
    ("denoising", {"seq_length": 8}, "benchmark.seq_length"),
    ("denoising", {"seq_length": 10}, "benchmark.seq_length"),
    ("denoising", {"train_size": 0}, "benchmark.train_size"),
    ("seq_digits", {"black_pixels": -1}, "benchmark.black_pixels"),
    ("seq_digits", {"mode": "col"}, "benchmark.mode"),
    ("row_digits", {"train_size": 1500, "test_size": 360}, "benchmark.train_size"),
    ("perm_digits", {"test_size": -1}, "benchmark.test_size"),
    ("seq_mnist", {"train_size": N_FILE_TRAIN + 1}, "benchmark.train_size"),
    ("row_mnist", {"test_size": N_FILE_TEST + 1}, "benchmark.test_size"),
    ("perm_mnist", {"black_pixels": -3}, "benchmark.black_pixels"),
    ("seq_mnist", {"mode": "diagonal"}, "benchmark.mode"),
]


@pytest.mark.parametrize("name, overrides, key", BAD)
def test_bad_values_raise_one_line_naming_the_key(name, overrides, key, mnist_dir):
    with pytest.raises(ValueError) as err:
        build(name, mnist_dir, **overrides)
    message = str(err.value)
    assert key in message and "\n" not in message, message


def test_bad_batch_size():
    """The one rule for trainer.batch_size: at least 2, since warm-up compares samples."""
    for size in (0, 1):
        with pytest.raises(ValueError, match=r"trainer.batch_size=.* compares samples"):
            CopyFirstInput(batch_size=size, seq_length=5, train_size=10, test_size=5)
    assert Denoising(batch_size=2, seq_length=11, train_size=2, test_size=1).n_val == 1


# -- MNIST: IDX files --------------------------------------------------------------------
@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path, gz):
    arrays = write_mnist(tmp_path, gz)
    suffix = ".gz" if gz else ""
    images = read_idx(str(tmp_path / ("train-images-idx3-ubyte" + suffix)), 2051)
    labels = read_idx(str(tmp_path / ("t10k-labels-idx1-ubyte" + suffix)), 2049)
    assert images.dtype == torch.uint8 and images.shape == (N_FILE_TRAIN, 28, 28)
    assert np.array_equal(images.numpy(), arrays["train-images-idx3-ubyte"])
    assert np.array_equal(labels.numpy(), arrays["t10k-labels-idx1-ubyte"])


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("mode", ["seq", "perm", "row"])
def test_mnist_sequences_are_the_files_images(tmp_path, gz, mode):
    arrays = write_mnist(tmp_path, gz)
    dm = MNIST(
        batch_size=BATCH,
        mode=mode,
        black_pixels=2,
        train_size=10,
        test_size=6,
        data_dir=str(tmp_path),
    )
    x, y, _ = all_batches(dm.test_dataloader())  # the first test_size images, in order
    for i in range(6):
        assert np.array_equal(
            stored_image(x[:, i], dm).numpy(), arrays["t10k-images-idx3-ubyte"][i]
        )
        assert y[-1, i] == arrays["t10k-labels-idx1-ubyte"][i]
    train = dm.train_inputs(8)
    for i in range(8):
        assert np.array_equal(
            stored_image(train[:, i], dm).numpy(), arrays["train-images-idx3-ubyte"][i]
        )
    x, y, _ = all_batches(dm.val_dataloader())  # images 8, 9 of the training file
    assert y[-1].tolist() == arrays["train-labels-idx1-ubyte"][8:10].tolist()


def test_mnist_other_image_size(tmp_path):
    write_mnist(tmp_path, gz=False, side=5)
    dm = MNIST(
        batch_size=4, mode="row", black_pixels=1, train_size=10, test_size=3, data_dir=str(tmp_path)
    )
    assert (dm.input_size, dm.seq_length) == (5, 6)


def test_mnist_missing_files_names_them(tmp_path):
    write_mnist(tmp_path, gz=True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError) as err:
        MNIST(
            batch_size=4,
            mode="seq",
            black_pixels=0,
            train_size=10,
            test_size=3,
            data_dir=str(tmp_path),
        )
    message = str(err.value)
    assert "\n" not in message and "benchmark.data_dir=" in message and str(tmp_path) in message
    assert "missing: t10k-labels-idx1-ubyte[.gz])" in message
    for name in [
        "train-images-idx3-ubyte[.gz]",
        "train-labels-idx1-ubyte[.gz]",
        "t10k-images-idx3-ubyte[.gz]",
        "t10k-labels-idx1-ubyte[.gz]",
    ]:
        assert name in message
    with pytest.raises(FileNotFoundError, match="benchmark.data_dir"):
        build("seq_mnist", tmp_path / "nowhere", download=False)


def corrupt_magic(path: Path) -> None:
    path.write_bytes(struct.pack(">I", 2049) + path.read_bytes()[4:])


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-3])


def not_gzip(path: Path) -> None:
    path.write_bytes(b"this is not gzip data at all")


@pytest.mark.parametrize(
    "name, gz, damage, at_setup",
    [
        ("train-images-idx3-ubyte", False, corrupt_magic, False),
        ("t10k-labels-idx1-ubyte", False, truncate, True),
        ("t10k-images-idx3-ubyte.gz", True, not_gzip, False),
    ],
)
def test_mnist_corrupt_file_names_it(tmp_path, name, gz, damage, at_setup):
    write_mnist(tmp_path, gz=gz)
    damage(tmp_path / name)
    with pytest.raises(ValueError) as err:
        dm = MNIST(
            batch_size=4,
            mode="seq",
            black_pixels=0,
            train_size=10,
            test_size=3,
            data_dir=str(tmp_path),
        )
        assert at_setup, "the constructor should have caught this"
        dm.setup()
    message = str(err.value)
    assert str(tmp_path / name) in message and "\n" not in message, message


def test_each_benchmark_says_what_data_it_used(mnist_dir):
    """The record MLflow's dataset input is made of: a name, a digest of the stored splits
    (the same data, the same digest; another data seed, another), and the source."""
    records = {}
    for name, seed in (("copy", 0), ("copy", 0), ("copy", 1), ("seq_digits", 0),
                       ("perm_mnist", 0)):
        dm = build(name, mnist_dir, data_seed=seed)
        dm.setup("fit")
        records.setdefault((name, seed), []).append(dm.data_record())
    (a, b), (c,) = records[("copy", 0)], records[("copy", 1)]
    assert a == b and a["digest"] != c["digest"] and a["name"] == "copy"
    assert a["source"] == "generated by src.benchmarks.copy.CopyFirstInput, data_seed 0"
    (digits,) = records[("seq_digits", 0)]
    assert digits["source"].startswith("sklearn.datasets.load_digits (scikit-learn ")
    (mnist,) = records[("perm_mnist", 0)]  # random files in MNIST's format: said so
    assert mnist["name"] == "perm_mnist" and "not MNIST's" in mnist["source"]
