"""Warm-up for recurrent neural networks (Lambrechts et al., 2023), reference implementation.

The library calls, for a model of your own (``src/api.py``)::

    from src import warm_up, measure_vaa

They are loaded on first use, so that ``python -m src.run`` does not pay for them, and
neither they nor ``import src`` import Hydra or MLflow. Whatever composes ``conf/config.yaml``
registers its schema first (``src.schema.register``): ``src.run``, ``src.reproduce``, the tests.
"""

__all__ = ["warm_up", "measure_vaa", "Multistability", "Excitation"]


def __getattr__(name: str):
    if name in __all__:
        from src import api

        return getattr(api, name)
    raise AttributeError(f"module 'src' has no attribute {name!r}")

