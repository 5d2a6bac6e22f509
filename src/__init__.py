"""Warm-up for recurrent neural networks (Lambrechts et al., 2023), reference implementation.

The library calls, for a model of your own (``src/api.py``)::

    from src import warm_up, measure_vaa

They are loaded on first use, so that ``python -m src.run`` does not pay for them.
"""

__all__ = ["warm_up", "measure_vaa", "Multistability", "Excitation"]


def __getattr__(name: str):
    if name in __all__:
        from src import api

        return getattr(api, name)
    raise AttributeError(f"module 'src' has no attribute {name!r}")


def _register_schema() -> None:
    """The config's schema (src/schema.py) is registered with Hydra on import of the package, so
    that every composition of conf/config.yaml (a run, a sweep, a test, a script) is typed."""
    from src.schema import register

    register()


_register_schema()
