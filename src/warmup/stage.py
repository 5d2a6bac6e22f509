"""Stage 1 of a run, the paper's warm-up as a LightningModule: Lightning drives the steps, the
batches and the progress display; each step is :func:`src.warmup.paper.objective`, and the
parameters it trains are :func:`src.warmup.paper.trained_only`'s. Its metrics go to the run's
logger (``warmup/loss``, ``warmup/vaa_star``, per layer ``warmup/vaa_star_l<i>``).
"""

from __future__ import annotations

from contextlib import ExitStack

import pytorch_lightning as pl
import torch

from src import rules
from src.vaa import EPS
from src.warmup import paper


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
    ):
        super().__init__()
        if not net.warms_up:
            raise ValueError("WarmupModule: the network has no warmed sub-cells (warmup.fraction=0)")
        rules.one_of(rules.METHODS).check("warmup.method", method)
        if method == "excite":
            raise ValueError("warmup.method=excite takes no gradient steps: apply "
                             "src.warmup.select_excitation(net, inputs) instead of fitting "
                             "a WarmupModule")
        self.net = net
        self.lr = lr
        self.vaa_target = vaa_target
        self.max_horizon = max_horizon
        self.horizon_growth = horizon_growth
        self.eps = eps
        #: ``(step, loss, VAA* mean over layers, horizon T)`` of every step taken
        self.history: list[tuple[int, float, float, int]] = []
        self._frozen = ExitStack()  # the stage's frozen parameters, released at its end

    def horizon_bound(self, step: int) -> int:
        """Upper bound of the stabilisation length at (0-based) step k: min(1 + 10k, 200)."""
        return paper.horizon_bound(step, self.horizon_growth, self.max_horizon)

    # Only the warmed sub-cells learn: everything else is frozen for the stage.
    def on_fit_start(self) -> None:
        self._frozen.enter_context(paper.trained_only(self.net, self.net.warm_parameters()))

    def on_fit_end(self) -> None:
        self._frozen.close()

    def configure_optimizers(self):
        return torch.optim.Adam(self.net.warm_parameters(), lr=self.lr)

    # ---------------------------------------------------------------- the loss
    def vaa_star_per_layer(self, x: torch.Tensor, horizon: int) -> torch.Tensor:
        """VAA* of each layer's warmed sub-cell, ``(num_layers,)``, differentiable."""
        return paper.layer_vaa_star(self.net, x, horizon, self.eps)

    def training_step(self, batch, batch_idx):
        k = self.global_step
        loss, values, horizon = paper.objective(
            self.net, batch[0], k, self.vaa_target, self.horizon_growth, self.max_horizon,
            self.eps, "warm-up loss became {loss} at step {step}: lower warmup.lr (now "
            f"{self.lr}) or warmup.max_horizon (now {self.max_horizon})")
        values = values.detach()
        self.history.append((k, loss.item(), values.mean().item(), horizon))
        metrics = {"warmup/vaa_star": values.mean().item(), "warmup/loss": loss.item()}
        metrics.update({f"warmup/vaa_star_l{i}": v.item() for i, v in enumerate(values)})
        if self.logger is not None:
            self.logger.log_metrics(metrics, step=k)
        self.log("vaa*", values.mean(), prog_bar=True, logger=False)
        self.log("T", float(horizon), prog_bar=True, logger=False)
        return loss
