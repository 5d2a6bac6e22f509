"""The paper's warm-up (docs/method.md, "Warm-up"), once, in plain torch: the horizon of a
step, the objective and its check, the parameters it trains, and the loop the library runs.
The pipeline's Lightning stage (:mod:`src.warmup.stage`) calls the same :func:`objective`
from its training step, and :func:`trained_only` around its fit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from src.vaa import EPS, flat_state, prefix_lengths, sample_prefix_states, vaa_star


def horizon_bound(step: int, growth: int = 10, max_horizon: int = 200) -> int:
    """Upper bound of the stabilisation length at (0-based) step k: min(1 + 10k, 200)."""
    return min(1 + growth * step, max_horizon)


def layer_vaa_star(net, x: torch.Tensor, horizon: int, eps: float = EPS) -> torch.Tensor:
    """One evaluation of the warm-up objective's VAA*, per layer: ``(num_layers,)``, differentiable.

    ``net`` has the interface of :class:`src.rnn.StackedRNN` (``recurrent``, and ``layers``
    whose ``warm`` sub-cell runs alone); ``x`` is a time-major batch ``(L, N, I)``. Draws the
    prefix lengths, then one constant input per layer, from the global random state.
    """
    seq_len, n, _ = x.shape
    lengths = prefix_lengths(seq_len, n, None, x.device)
    states = sample_prefix_states(net, x, lengths)
    values = []
    for layer, (warm_state, _plain_state) in zip(net.layers, states):
        cell = layer.warm
        u = torch.randn(1, 1, cell.input_size, device=x.device, dtype=x.dtype)
        _, final = cell(u.expand(horizon, n, cell.input_size), warm_state)
        values.append(vaa_star(flat_state(final), eps))
    return torch.stack(values)


def objective(net, x: torch.Tensor, step: int, vaa_target: float, horizon_growth: int,
              max_horizon: int, eps: float, diverged: str) -> tuple[torch.Tensor, torch.Tensor, int]:
    """One step's loss: the horizon T drawn in 1..min(1 + growth * step, max_horizon), each
    layer's VAA* (:func:`layer_vaa_star`) and mean over layers of (VAA*_l - vaa_target)^2.
    Returns ``(loss, VAA* per layer, T)``. A non-finite loss raises ``FloatingPointError``
    with ``diverged`` filled in (``{loss}``, ``{step}``): the caller names its own knobs."""
    horizon = int(torch.randint(1, horizon_bound(step, horizon_growth, max_horizon) + 1, (1,)))
    values = layer_vaa_star(net, x, horizon, eps)
    loss = ((values - vaa_target) ** 2).mean()
    if not math.isfinite(loss.item()):
        raise FloatingPointError(diverged.format(loss=loss.item(), step=step))
    return loss, values, horizon


@contextmanager
def trained_only(module: torch.nn.Module, params: list) -> Iterator[None]:
    """Freeze every parameter of ``module`` that requires a gradient and is not in ``params``
    (the warmed sub-cells'): unlike the authors' code, no gradient reaches the plain halves
    or the read-out through the prefix runs. Restored on exit."""
    chosen = {id(p) for p in params}
    frozen = [p for p in module.parameters() if id(p) not in chosen and p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in frozen:
            p.requires_grad_(True)


def run(net, module: torch.nn.Module, batch: Callable[[], torch.Tensor], steps: int,
        lr: float, vaa_target: float, horizon_growth: int, max_horizon: int, eps: float,
        diverged: str) -> list[float]:
    """The paper's warm-up as a plain loop: ``steps`` Adam steps (``lr``) on
    :func:`objective` of the batch ``batch()`` draws, training ``net.warm_parameters()`` only
    (:func:`trained_only` on ``module``); their ``.grad`` is left as it was found. Returns the
    VAA* (mean over layers) of every step."""
    params = net.warm_parameters()
    saved_grads = [p.grad for p in params]
    history: list[float] = []
    with trained_only(module, params):
        opt = torch.optim.Adam(params, lr=lr)
        try:
            for k in range(steps):
                x = batch()
                loss, values, _ = objective(net, x, k, vaa_target, horizon_growth, max_horizon,
                                            eps, diverged)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                history.append(values.detach().mean().item())
        finally:
            for p, g in zip(params, saved_grads):
                p.grad = g
    return history
