"""Denoising: recall the 5 marked values of a noise sequence, in order.

Two input channels over ``L`` steps:

* channel 1: noise ``~ N(0, 1)``;
* channel 2: a marker, 1 at 5 distinct random positions in ``[0, L - 5)``,
  -1 at position ``L - 5`` (the cue: "answer now"), 0 elsewhere.

The outputs are the 5 marked noise values in time order, read at the last 5
steps (``L - 5 .. L - 1``); MSE. Positions are 0-based.
"""

from __future__ import annotations

import torch
from torch import Tensor

from src.benchmarks.base import SequenceDataModule, is_int

MARKS = 5  #: values to remember (= output steps)
PAD = 5  #: final steps holding no mark: the cue and the answers


class Denoising(SequenceDataModule):
    """Noise and marker channels; the targets are the marked values in order."""

    name = "denoising"
    task = "regression"
    input_size = 2
    output_size = 1
    output_steps = MARKS

    def __init__(
        self,
        batch_size: int,
        seq_length: int,
        train_size: int,
        test_size: int,
        data_seed: int = 0,
    ) -> None:
        if not is_int(seq_length) or seq_length <= MARKS + PAD:
            raise ValueError(
                f"benchmark.seq_length={seq_length!r} is too short for denoising: it must be an "
                f"integer > {MARKS + PAD} ({MARKS} marks + pad {PAD})"
            )
        super().__init__(batch_size, train_size, test_size, data_seed)
        self.seq_length = seq_length

    def generate(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        gen = torch.Generator().manual_seed(self.data_seed)
        n, length = self.train_size + self.test_size, self.seq_length
        noise = torch.randn(n, length, generator=gen)
        # 5 distinct positions in [0, L - PAD) per sequence, in time order.
        positions = torch.rand(n, length - PAD, generator=gen).argsort(dim=1)[:, :MARKS]
        positions = positions.sort(dim=1).values
        marker = torch.zeros(n, length)
        marker.scatter_(1, positions, 1.0)
        marker[:, length - PAD] = -1.0
        x = torch.stack([noise, marker], dim=2)  # (N, L, 2)
        y = noise.gather(1, positions).unsqueeze(2)  # (N, 5 output steps, 1)
        k = self.train_size
        return x[:k], y[:k], x[k:], y[k:]
