"""Copy first input: remember the first value of a noise sequence.

``x_t ~ N(0, 1)``, one channel, ``t = 1..L``; the target is ``x_1``, read at
the last step; MSE. Predicting 0 gives MSE 1, the chance level. The
dependency spans the whole sequence, so ``seq_length`` sets its length.
"""

from __future__ import annotations

import torch
from torch import Tensor

from src.benchmarks.base import SequenceDataModule, check_int


class CopyFirstInput(SequenceDataModule):
    """``seq_length`` steps of N(0, 1) noise; the target is the first one."""

    name = "copy"
    task = "regression"
    input_size = 1
    output_size = 1
    output_steps = 1

    def __init__(
        self,
        batch_size: int,
        seq_length: int,
        train_size: int,
        test_size: int,
        data_seed: int = 0,
    ) -> None:
        check_int("benchmark.seq_length", seq_length, 1)
        super().__init__(batch_size, train_size, test_size, data_seed)
        self.seq_length = seq_length

    def generate(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        # Own generator, never the global RNG: the same data for every cell and
        # warm-up setting of a sweep. Training sequences are drawn first.
        gen = torch.Generator().manual_seed(self.data_seed)
        x = torch.randn(self.train_size + self.test_size, self.seq_length, 1, generator=gen)
        y = x[:, :1, :].clone()  # (N, 1 output step, 1 channel)
        n = self.train_size
        return x[:n], y[:n], x[n:], y[n:]
