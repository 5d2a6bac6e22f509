"""Benchmarks: one ``LightningDataModule`` per file, one YAML per benchmark name.

``copy`` (copy.py), ``denoising`` (denoising.py), ``seq_digits``/``perm_digits``/
``row_digits`` (digits.py), ``seq_mnist``/``perm_mnist``/``row_mnist`` (mnist.py);
the shared contract (sizes, batches, validation) is in base.py, the image-to-
sequence construction common to digits and MNIST in images.py.
"""
