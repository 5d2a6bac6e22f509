"""What every benchmark shares: validation, the 80/20 split, batching.

A benchmark is a ``LightningDataModule`` built from plain Python arguments
(its YAML in ``conf/benchmark/`` plus ``batch_size``). Right after
construction it exposes the sizes the network needs::

    input_size   channels per time step
    output_size  regression: channels of the target; classification: classes
    task         "regression" (MSE) or "classification" (cross-entropy)
    seq_length   time steps the network sees, black pixels included
    name         the benchmark's name (``copy``, ``seq_digits``, ...)

The constructor checks every argument cheaply and raises a one-line
``ValueError`` naming the config key before any data is built; ``setup()``
builds the data once (calling it again does nothing).

Batches are time-major tuples ``(x, y, mask)``:

* ``x``: float32 ``(L, N, input_size)``;
* ``mask``: bool ``(L, N)``, True at the steps where an output is read;
* ``y``: float32 ``(L, N, output_size)`` for regression, int64 ``(L, N)`` for
  classification; only ``y[mask]`` is meaningful (zeros elsewhere).

The supervised loss is ``loss_fn(pred[mask], y[mask])``. Every benchmark here
reads its outputs at the *last* ``output_steps`` time steps, so the data is
stored compactly, batch-first, without the appended black steps::

    inputs   (N, S, input_size)   S = seq_length - black_steps (any dtype;
                                  ``decode`` turns it into float32)
    targets  (N, output_steps, output_size) float32   for regression
             (N, output_steps) int64                  for classification

and the time-major batch is assembled per batch in ``collate``, so MNIST with
1000 black pixels still fits in memory.
"""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset


def is_int(value: object) -> bool:
    """True for a Python or NumPy integer, not a bool (config values arrive as either)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_int(key: str, value: object, minimum: int, why: str = "") -> None:
    """Raise a one-line ValueError unless ``value`` is an int >= ``minimum``."""
    if not is_int(value) or value < minimum:
        reason = f" ({why})" if why else ""
        raise ValueError(f"{key}={value!r} is invalid: it must be an integer >= {minimum}{reason}")


class _Stored(Dataset):
    """Compact batch-first tensors, indexed a whole batch at a time."""

    def __init__(self, inputs: Tensor, targets: Tensor) -> None:
        self.inputs, self.targets = inputs, targets

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.inputs[i], self.targets[i]

    def __getitems__(self, indices: list[int]) -> tuple[Tensor, Tensor]:
        # DataLoader hands the whole batch of indices here: one gather per tensor.
        # index_select, not tensor[idx]: advanced indexing goes multi-threaded even
        # for one small batch, ~10 ms when the other core is busy; this takes µs.
        idx = torch.as_tensor(indices, dtype=torch.long)
        return self.inputs.index_select(0, idx), self.targets.index_select(0, idx)


class SequenceDataModule(pl.LightningDataModule):
    """Base class. Subclasses set the attributes listed in the module docstring
    (before or after calling ``super().__init__``) and implement ``generate``."""

    name: str
    task: str
    input_size: int
    output_size: int
    seq_length: int
    #: Number of final time steps at which an output is read.
    output_steps: int = 1
    #: Zero steps appended to every stored sequence (black pixels / rows).
    black_steps: int = 0

    def __init__(self, batch_size: int, train_size: int, test_size: int, data_seed: int) -> None:
        super().__init__()
        check_int("trainer.batch_size", batch_size, 2, "warm-up's VAA* compares samples")
        check_int(
            "benchmark.train_size",
            train_size,
            2,
            "it is split 80/20 into non-empty training and validation sets",
        )
        check_int("benchmark.test_size", test_size, 1)
        if not is_int(data_seed):
            raise ValueError(f"benchmark.data_seed={data_seed!r} is invalid: it must be an integer")
        self.batch_size = batch_size
        self.train_size = train_size
        self.test_size = test_size
        self.data_seed = data_seed
        self.n_train = train_size * 4 // 5  # 80% train, 20% validation
        self.n_val = train_size - self.n_train
        self._splits: dict[str, _Stored] | None = None

    # -- what a benchmark provides -------------------------------------------
    def generate(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Return stored ``(train_inputs, train_targets, test_inputs,
        test_targets)``, ``train_size`` and ``test_size`` sequences, compact
        and batch-first (see the module docstring)."""
        raise NotImplementedError

    def source(self) -> str:
        """Where the data comes from, in words (MLflow's dataset source): for a generated task,
        its generator and data seed."""
        return f"generated by {type(self).__module__}.{type(self).__name__}, data_seed {self.data_seed}"

    def data_record(self) -> dict[str, str]:
        """What data a run uses, for MLflow's dataset inputs (after :meth:`setup`): a name, a
        digest of the stored splits (the same data, the same digest) and :meth:`source`."""
        import hashlib

        digest = hashlib.sha256()
        for split in ("train", "val", "test"):
            stored = self._splits[split]
            for t in (stored.inputs, stored.targets):
                digest.update(t.contiguous().numpy().tobytes())
        name = getattr(self, "name", None) or type(self).__name__
        return {"name": str(name), "digest": digest.hexdigest()[:16], "source": self.source()}

    def decode(self, inputs: Tensor) -> Tensor:
        """Stored inputs -> float32 network inputs (identity by default)."""
        return inputs.float()

    # -- Lightning hooks -------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        """Build the train/validation/test sets (once; later calls do nothing).
        The first 80% of the ``train_size`` sequences train, the rest validate."""
        if self._splits is not None:
            return
        train_x, train_y, test_x, test_y = self.generate()
        assert len(train_x) == self.train_size and len(test_x) == self.test_size
        n = self.n_train
        self._splits = {
            "train": _Stored(train_x[:n], train_y[:n]),
            "val": _Stored(train_x[n:], train_y[n:]),
            "test": _Stored(test_x, test_y),
        }

    def train_dataloader(self) -> DataLoader:
        # shuffle=True draws from torch's global RNG (seeded by seed_everything).
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        self.setup()
        return DataLoader(
            self._splits[split],
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=0,
            collate_fn=self.collate,
        )

    # -- batches ---------------------------------------------------------------
    def time_major_inputs(self, inputs: Tensor) -> Tensor:
        """Stored ``(N, S, I)`` inputs -> float32 ``(L, N, I)``, black steps appended."""
        n, steps, channels = inputs.shape
        x = torch.zeros(steps + self.black_steps, n, channels)
        x[:steps] = self.decode(inputs).transpose(0, 1)
        return x

    def collate(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """Stored ``(inputs, targets)`` of one batch -> time-major ``(x, y, mask)``."""
        inputs, targets = batch
        x = self.time_major_inputs(inputs)
        length, n, k = x.shape[0], x.shape[1], self.output_steps
        mask = torch.zeros(length, n, dtype=torch.bool)
        mask[length - k :] = True
        if self.task == "regression":
            y = torch.zeros(length, n, self.output_size)
        else:
            y = torch.zeros(length, n, dtype=torch.long)
        y[length - k :] = targets.transpose(0, 1)
        return x, y, mask

    def train_inputs(self, n: int) -> Tensor:
        """The first ``n`` training input sequences, time-major ``(L, n,
        input_size)``, black steps included; the same every call (used by
        warm-up and the VAA measurement)."""
        if not is_int(n) or not 1 <= n <= self.n_train:
            raise ValueError(
                f"train_inputs(n={n!r}): n must be between 1 and the {self.n_train} training "
                f"sequences (80% of benchmark.train_size={self.train_size}); raise "
                "benchmark.train_size or ask for fewer"
            )
        self.setup()
        return self.time_major_inputs(self._splits["train"].inputs[:n])
