"""Sequential, permuted and row digits: scikit-learn's 8x8 digits as sequences.

The 1797 images of ``sklearn.datasets.load_digits`` (values 0..16) stand in
for MNIST where it cannot be downloaded: the same construction (images.py)
on 8x8 images, so ``seq``/``perm`` give 64 steps of 1 pixel and ``row`` 8
steps of 8, before the ``black_pixels`` zero steps. Pixels are scaled
``/16 - 0.5``, the digits counterpart of MNIST's ``/255 - 0.5``.

Train/test split: a fixed shuffle of the 1797 images drawn from a generator
seeded by ``data_seed``; training takes the first ``train_size`` of that
order, test the last ``test_size``, so each is unchanged when only the other
size changes, and they never overlap (``train_size + test_size <= 1797``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from src.benchmarks.images import ImageSequenceDataModule

N_DIGITS = 1797  #: images in scikit-learn's digits set
SIDE = 8  #: digits are 8 x 8


class Digits(ImageSequenceDataModule):
    """``mode`` in ``seq``, ``perm``, ``row``: benchmarks ``<mode>_digits``."""

    dataset = "digits"
    max_value = 16.0

    def __init__(
        self,
        batch_size: int,
        mode: str,
        black_pixels: int,
        train_size: int,
        test_size: int,
        data_seed: int = 0,
    ) -> None:
        super().__init__(batch_size, mode, black_pixels, train_size, test_size, data_seed)
        if train_size + test_size > N_DIGITS:
            raise ValueError(
                f"benchmark.train_size={train_size} + benchmark.test_size={test_size} = "
                f"{train_size + test_size} exceeds the {N_DIGITS} digits images: lower one of them"
            )
        self.set_image_shape(SIDE, SIDE)
        order = torch.randperm(N_DIGITS, generator=torch.Generator().manual_seed(data_seed))
        #: Indices into ``load_digits()`` of the training and test images.
        self.train_index = order[:train_size]
        self.test_index = order[N_DIGITS - test_size :]

    def source(self) -> str:
        import sklearn

        return (f"sklearn.datasets.load_digits (scikit-learn {sklearn.__version__}), split by "
                f"data_seed {self.data_seed}")

    def load(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        from sklearn.datasets import load_digits  # imported here: slow, and only needed here

        digits = load_digits()
        images = torch.from_numpy(digits.images).to(torch.uint8)  # exact: values are 0..16
        labels = torch.from_numpy(digits.target).long()
        return (
            images[self.train_index],
            labels[self.train_index],
            images[self.test_index],
            labels[self.test_index],
        )
