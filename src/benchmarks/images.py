"""Images read as sequences: the construction shared by digits and MNIST.

An ``H x W`` image becomes a sequence in one of three modes:

* ``seq``: one pixel per step, row by row (``H * W`` steps of 1 input);
* ``perm``: the same after a fixed permutation of the pixels, drawn once from
  a generator seeded by ``data_seed`` (the same for every run with that seed);
* ``row``: one row per step (``H`` steps of ``W`` inputs).

Then ``black_pixels`` zero steps are appended, which lengthens the dependency
between the image and the label. In ``row`` mode each black step is a whole
zero row (``W`` zeros), so ``black_pixels=B`` always means ``B`` extra time
steps: ``seq_length = H * W + B`` (seq, perm) or ``H + B`` (row).

Pixels are scaled to ``value / max_value - 0.5`` (MNIST: ``/255 - 0.5``;
digits, whose values run 0..16: ``/16 - 0.5``). The 10-class label is read
at the last step with cross-entropy. Images are stored as uint8 and scaled
per batch, and the black steps are only appended per batch.
"""

from __future__ import annotations

import torch
from torch import Tensor

from src.benchmarks.base import SequenceDataModule, check_int

MODES = ("seq", "perm", "row")


class ImageSequenceDataModule(SequenceDataModule):
    """Base for image classification read pixel by pixel or row by row.

    Subclasses set ``dataset`` and ``max_value``, call ``set_image_shape``
    once the image size is known, and implement ``load``."""

    task = "classification"
    output_size = 10
    output_steps = 1
    dataset: str  #: "digits", "mnist": the name is f"{mode}_{dataset}"
    max_value: float  #: the largest pixel value

    def __init__(
        self,
        batch_size: int,
        mode: str,
        black_pixels: int,
        train_size: int,
        test_size: int,
        data_seed: int,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"benchmark.mode={mode!r} is unknown: use one of {', '.join(MODES)}")
        check_int("benchmark.black_pixels", black_pixels, 0, "zero steps appended to each image")
        super().__init__(batch_size, train_size, test_size, data_seed)
        self.mode = mode
        self.name = f"{mode}_{self.dataset}"
        self.black_pixels = black_pixels
        self.black_steps = black_pixels

    def set_image_shape(self, height: int, width: int) -> None:
        """Fix ``input_size``, ``seq_length`` and the pixel permutation."""
        self.image_shape = (height, width)
        self.input_size = width if self.mode == "row" else 1
        self.seq_length = (height if self.mode == "row" else height * width) + self.black_pixels
        self.permutation: Tensor | None = None
        if self.mode == "perm":
            gen = torch.Generator().manual_seed(self.data_seed)
            self.permutation = torch.randperm(height * width, generator=gen)

    def load(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Return ``(train_images, train_labels, test_images, test_labels)``:
        uint8 ``(N, H, W)`` images and int64 ``(N,)`` labels, ``train_size``
        and ``test_size`` of them."""
        raise NotImplementedError

    def to_steps(self, images: Tensor) -> Tensor:
        """uint8 images ``(N, H, W)`` -> stored uint8 sequences ``(N, S, input_size)``."""
        if self.mode == "row":
            return images.contiguous()
        flat = images.reshape(len(images), -1)
        if self.permutation is not None:
            flat = flat[:, self.permutation]
        return flat.unsqueeze(2).contiguous()

    def generate(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        train_images, train_labels, test_images, test_labels = self.load()
        return (
            self.to_steps(train_images),
            train_labels.long().unsqueeze(1),
            self.to_steps(test_images),
            test_labels.long().unsqueeze(1),
        )

    def decode(self, inputs: Tensor) -> Tensor:
        return inputs.float() / self.max_value - 0.5
