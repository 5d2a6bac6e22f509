"""Stage 1: warm-up, a LightningModule (METHOD.md, "Warm-up stage").

Three methods, chosen by ``warmup.method`` (``excite``, a construction rather than gradient
steps, is :func:`excite`; the other two are the LightningModule below):

``paper`` -- the published algorithm, exactly as METHOD.md gives it. Each step,
per layer l with a warmed sub-cell:

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

``robust`` -- the same objective, with three changes aimed at the failure modes
measured on the paper's algorithm (README, "Warm-up that holds"):

* **selection**: every ``select_every`` steps, and before the first, the hard VAA
  of the whole network is measured at T = ``select_steps`` (10 000, the measure's
  own T) on held-out training inputs (three groups, each with its own constant input,
  averaged: one input is a noisy judge); the stage
  ends on the best network seen, scored by ``vaa * (1 + settled) / 2`` (states
  on a fixed point count fully, moving ones half). The untouched network is a
  candidate, so warm-up never leaves fewer attractors than it found *on the
  selection inputs*;
* **no zero-gradient steps**: when every pair of a layer's final states is within
  eps, VAA* is exactly 1/N and its gradient exactly zero; the step is redrawn with
  a horizon eight times shorter (at most three times);
* **learning-rate decay**: cosine from ``lr`` to 0 over the steps, so that the last
  steps refine rather than jump (the optimisation is chaotic at lr 1e-2).
"""

from __future__ import annotations

import math

import pytorch_lightning as pl
import torch

from src.checks import METHODS
from src.vaa import EPS, flat_state, measure_vaa, prefix_lengths, sample_prefix_states, vaa_star


def excitation_plan(net, gain: float | None = None) -> list[tuple[torch.Tensor, float]]:
    """What :func:`excite` will do, checked before anything changes: per warmed sub-cell, its
    excitation block (a view of its weights) and the gain to add. Raises a one-line
    ``ValueError`` for a cell without a block, or without a gain when ``gain`` is ``None``;
    ``src/run.py`` calls it after the build, so that such a run is refused before it exists."""
    plan = []
    for cell in net.warm_cells():
        block = cell.excitation_block()  # refuses a cell without one
        g = cell.excitation_gain if gain is None else gain
        if g is None:
            raise ValueError(f"warmup.method=excite: cell {type(cell).__name__} has no "
                             "excitation gain; set warmup.gain")
        plan.append((block, float(g)))
    return plan


def excite(net, gain: float | None = None) -> list[float]:
    """``warmup.method=excite``: add ``gain * I`` to each warmed sub-cell's excitation block
    (the recurrent weights through which a unit feeds its own candidate state), so that
    every warmed unit is bistable on its own and the layer has many true fixed points.

    Not a gradient method: a construction, measured to leave true attractors where the
    paper's objective leaves transients (README, "Warm-up that holds"). ``gain``: ``None``
    takes each cell's ``excitation_gain``. Returns the gains applied, per layer.
    """
    plan = excitation_plan(net, gain)
    with torch.no_grad():
        for block, g in plan:
            block.add_(g * torch.eye(block.shape[0], dtype=block.dtype, device=block.device))
    return [g for _, g in plan]


def selection_score(vaa: float, settled: float) -> float:
    """What the robust method maximises: VAA, with moving states counted half."""
    return vaa * (1.0 + settled) / 2.0


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


class WarmupModule(pl.LightningModule):
    def __init__(
        self,
        net,
        lr: float = 1e-2,
        vaa_target: float = 0.95,
        max_horizon: int = 200,
        horizon_growth: int = 10,
        eps: float = EPS,
        method: str = "paper",
        steps: int = 100,
        select_every: int = 10,
        select_steps: int = 10_000,
        select_inputs: torch.Tensor | None = None,
        select_group_size: int | None = None,
        select_seed: int = 0,
    ):
        super().__init__()
        if not net.warms_up:
            raise ValueError("WarmupModule: the network has no warmed sub-cells (warmup.fraction=0)")
        if method not in METHODS:
            raise ValueError(f"warmup.method={method!r} is not one of {', '.join(METHODS)}")
        if method == "excite":
            raise ValueError("warmup.method=excite takes no gradient steps: apply "
                             "src.warmup.excite(net) instead of fitting a WarmupModule")
        if method == "robust" and select_inputs is None:
            raise ValueError("warmup.method=robust needs held-out select_inputs to select on")
        self.net = net
        self.lr = lr
        self.vaa_target = vaa_target
        self.max_horizon = max_horizon
        self.horizon_growth = horizon_growth
        self.eps = eps
        self.method = method
        self.steps = steps
        self.select_every = select_every
        self.select_steps = select_steps
        self.select_inputs = select_inputs
        self.select_seed = select_seed
        self.select_group_size = select_group_size
        self.best: tuple[float, int, dict] | None = None  # (score, step, warm weights)
        self.selections: list[tuple[int, float, float]] = []  # (step, vaa, settled)
        self._frozen: list[torch.nn.Parameter] = []

    @property
    def robust(self) -> bool:
        return self.method == "robust"

    def horizon_bound(self, step: int) -> int:
        """Upper bound of the stabilisation length at (0-based) step k: min(1 + 10k, 200)."""
        return horizon_bound(step, self.horizon_growth, self.max_horizon)

    # Only the warmed sub-cells learn: freeze everything else for the stage.
    def on_fit_start(self) -> None:
        warm = {id(p) for p in self.net.warm_parameters()}
        self._frozen = [p for p in self.net.parameters() if id(p) not in warm and p.requires_grad]
        for p in self._frozen:
            p.requires_grad_(False)
        if self.robust:
            self.select(0)

    def on_fit_end(self) -> None:
        for p in self._frozen:
            p.requires_grad_(True)
        self._frozen = []
        if self.robust and self.best is not None:
            _, step, weights = self.best
            for cell, state in zip(self.net.warm_cells(), weights):
                cell.load_state_dict(state)
            if self.logger is not None:
                self.logger.log_metrics({"warmup/selected_step": step}, step=self.global_step)

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.net.warm_parameters(), lr=self.lr)
        if not self.robust:
            return opt
        total = max(1, self.steps)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda k: 0.5 * (1.0 + math.cos(math.pi * min(k, total) / total)))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # ------------------------------------------------------------- selection
    def select(self, step: int) -> None:
        """Measure the whole network's hard VAA on the held-out inputs; keep the best."""
        inputs = self.select_inputs.to(self.device)
        m = measure_vaa(self.net, inputs, steps=self.select_steps,
                        group_size=self.select_group_size or inputs.shape[1], eps=self.eps,
                        seed=self.select_seed)
        self.selections.append((step, m.vaa, m.settled))
        score = selection_score(m.vaa, m.settled)
        if self.logger is not None:
            self.logger.log_metrics({"warmup/select_vaa": m.vaa, "warmup/select_settled": m.settled},
                                    step=step)
        if self.best is None or score > self.best[0]:
            weights = [{k: v.detach().clone() for k, v in cell.state_dict().items()}
                       for cell in self.net.warm_cells()]
            self.best = (score, step, weights)

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        step = self.global_step  # steps done so far
        if self.robust and (step % self.select_every == 0 or step == self.steps):
            self.select(step)

    # ---------------------------------------------------------------- the loss
    def vaa_star_per_layer(self, x: torch.Tensor, horizon: int) -> torch.Tensor:
        """VAA* of each layer's warmed sub-cell, ``(num_layers,)``, differentiable."""
        return layer_vaa_star(self.net, x, horizon, self.eps)

    def training_step(self, batch, batch_idx):
        x = batch[0]
        k = self.global_step
        horizon = int(torch.randint(1, self.horizon_bound(k) + 1, (1,)))
        values = self.vaa_star_per_layer(x, horizon)
        if self.robust:
            # VAA* == 1/N exactly: all final states within eps, zero gradient; shorten
            floor = 1.0 / x.shape[1] + 1e-6
            for _ in range(3):
                if horizon == 1 or bool((values > floor).all()):
                    break
                horizon = max(1, horizon // 8)
                values = self.vaa_star_per_layer(x, horizon)
        loss = ((values - self.vaa_target) ** 2).mean()
        if not math.isfinite(loss.item()):
            raise FloatingPointError(
                f"warm-up loss became {loss.item()} at step {k}: lower warmup.lr (now {self.lr}) "
                f"or warmup.max_horizon (now {self.max_horizon})"
            )
        values = values.detach()
        metrics = {"warmup/vaa_star": values.mean().item(), "warmup/loss": loss.item()}
        metrics.update({f"warmup/vaa_star_l{i}": v.item() for i, v in enumerate(values)})
        if self.logger is not None:
            self.logger.log_metrics(metrics, step=k)
        self.log("vaa*", values.mean(), prog_bar=True, logger=False)
        self.log("T", float(horizon), prog_bar=True, logger=False)
        return loss
