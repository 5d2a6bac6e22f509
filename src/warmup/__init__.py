"""Warm-up, in one place (docs/method.md, "Warm-up"; docs/excite.md).

Two methods, chosen by ``warmup.method``:

``paper`` (the default) -- the published algorithm (:mod:`src.warmup.paper`). Each step, per
layer l with a warmed sub-cell:

1. draw prefix lengths c_i in 1..L and run the whole stack on the prefixes of a
   batch of training inputs (targets unused), in one pass: each layer's state;
2. run layer l's warmed sub-cell *alone* from its state, with one constant
   random input u_l ~ N(0, I) of the layer's input size, for T_k steps, where
   T_k ~ U{1..min(1 + 10k, 200)} grows with the step k;
3. VAA*_l of the final states.

The loss is mean_l (VAA*_l - 0.95)^2, minimised by Adam (lr 1e-2) over the
warmed sub-cells' parameters only. Gradients flow through the prefix runs,
but every other parameter (plain sub-cells, read-out) is frozen for the
stage, so unlike the authors' code no gradient reaches the plain halves of
lower layers through the prefixes.

``excite`` -- this project's construction (docs/excite.md, :mod:`src.warmup.excite`): no
gradient steps; each warmed unit's feedback into its own candidate state is raised by a gain
chosen by measuring the hard VAA on held-out sequences, :func:`select_excitation`.

Both are plain torch functions, which the library (``src.api.warm_up``) and the pipeline call
alike. The pipeline's stage 1 is :class:`WarmupModule` (:mod:`src.warmup.stage`), a thin
LightningModule around :func:`src.warmup.paper.objective`; it is imported only when asked for,
so that ``from src import warm_up`` imports no Lightning.
"""

from __future__ import annotations

from src.warmup.excite import (EXCITATION_GAINS, MIN_LOOP_GAIN, Excitation, default_gains,
                               excitable, excite, select_excitation)
from src.warmup.paper import horizon_bound, layer_vaa_star, objective, trained_only

__all__ = ["EXCITATION_GAINS", "MIN_LOOP_GAIN", "Excitation", "WarmupModule", "default_gains",
           "excitable", "excite", "horizon_bound", "layer_vaa_star", "objective",
           "select_excitation", "trained_only"]


def __getattr__(name: str):
    """``WarmupModule``, the Lightning stage, imported on first use (it imports Lightning)."""
    if name == "WarmupModule":
        from src.warmup.stage import WarmupModule

        return WarmupModule
    raise AttributeError(f"module 'src.warmup' has no attribute {name!r}")
