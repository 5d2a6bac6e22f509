"""Stage 1: warm-up, a LightningModule (METHOD.md, "Warm-up stage").

Each step, per layer l with a warmed sub-cell:

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
"""

from __future__ import annotations

import math

import pytorch_lightning as pl
import torch

from src.vaa import EPS, flat_state, prefix_lengths, sample_prefix_states, vaa_star


class WarmupModule(pl.LightningModule):
    def __init__(
        self,
        net,
        lr: float = 1e-2,
        vaa_target: float = 0.95,
        max_horizon: int = 200,
        horizon_growth: int = 10,
        eps: float = EPS,
    ):
        super().__init__()
        if not net.warms_up:
            raise ValueError("WarmupModule: the network has no warmed sub-cells (warmup.fraction=0)")
        self.net = net
        self.lr = lr
        self.vaa_target = vaa_target
        self.max_horizon = max_horizon
        self.horizon_growth = horizon_growth
        self.eps = eps
        self._frozen: list[torch.nn.Parameter] = []

    def horizon_bound(self, step: int) -> int:
        """Upper bound of the stabilisation length at (0-based) step k: min(1 + 10k, 200)."""
        return min(1 + self.horizon_growth * step, self.max_horizon)

    # Only the warmed sub-cells learn: freeze everything else for the stage.
    def on_fit_start(self) -> None:
        warm = {id(p) for p in self.net.warm_parameters()}
        self._frozen = [p for p in self.net.parameters() if id(p) not in warm and p.requires_grad]
        for p in self._frozen:
            p.requires_grad_(False)

    def on_fit_end(self) -> None:
        for p in self._frozen:
            p.requires_grad_(True)
        self._frozen = []

    def configure_optimizers(self):
        return torch.optim.Adam(self.net.warm_parameters(), lr=self.lr)

    def vaa_star_per_layer(self, x: torch.Tensor, horizon: int) -> torch.Tensor:
        """VAA* of each layer's warmed sub-cell, ``(num_layers,)``, differentiable."""
        seq_len, n, _ = x.shape
        lengths = prefix_lengths(seq_len, n, None, x.device)
        states = sample_prefix_states(self.net, x, lengths)
        values = []
        for layer, (warm_state, _plain_state) in zip(self.net.layers, states):
            cell = layer.warm
            u = torch.randn(1, 1, cell.input_size, device=x.device, dtype=x.dtype)
            _, final = cell(u.expand(horizon, n, cell.input_size), warm_state)
            values.append(vaa_star(flat_state(final), self.eps))
        return torch.stack(values)

    def training_step(self, batch, batch_idx):
        x = batch[0]
        k = self.global_step
        horizon = int(torch.randint(1, self.horizon_bound(k) + 1, (1,)))
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
