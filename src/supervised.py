"""Stage 2: supervised training, a LightningModule (docs/method.md, "Supervised stage").

The loss is taken only at the steps the benchmark marks as outputs
(``pred[mask]``): MSE for regression, cross-entropy for classification.
Metrics are logged to the run's logger with the epoch as step:

* ``train/loss`` (mean over the epoch's batches) and ``val/loss`` every epoch
  (epoch e, 1-based, at step e);
* ``vaa``, ``attractors``, ``settled`` and ``fixed_points`` after every epoch, at step 1 + e (step 0 is the
  network at initialisation and step 1 the network after warm-up; both are
  logged by ``src/run.py``);
* ``test/loss`` (and ``test/acc``), averaged per sample over the whole test
  set (the authors divide a sum of batch means by floor(N / batch), which
  inflates the result slightly when the last batch is short).
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from src.vaa import VAAMeter, epoch_step, vaa_metrics


class SupervisedModule(pl.LightningModule):
    def __init__(
        self,
        net,
        task: str,
        lr: float = 1e-3,
        meter: VAAMeter | None = None,
        logged_until: tuple[int, int] = (0, 0),
    ):
        super().__init__()
        if task not in ("regression", "classification"):
            raise ValueError(f"task must be 'regression' or 'classification', got {task!r}")
        self.net = net
        self.task = task
        self.lr = lr
        self.meter = meter  # VAA after every epoch, when given
        self._sums: dict[str, float] = {}
        self.test_metrics: dict[str, float] = {}
        self.history: list[dict[str, float]] = []
        # a resumed run: the last epoch whose losses, and whose VAA, are in the store already
        # (a kill after an epoch's metrics were logged but before its checkpoint was
        # written): those epochs are run again but not logged again
        self.logged_until = logged_until

    def configure_optimizers(self):
        return torch.optim.Adam(self.net.parameters(), lr=self.lr)

    def masked_loss(self, batch, reduction: str = "mean"):
        """Loss over the output steps, and the number of correct predictions (classification)."""
        x, y, mask = batch
        pred, _ = self.net(x)
        pred, y = pred[mask], y[mask]
        if self.task == "regression":
            return F.mse_loss(pred, y, reduction=reduction), None
        correct = (pred.argmax(-1) == y).sum()
        return F.cross_entropy(pred, y, reduction=reduction), correct

    def _accumulate(self, prefix: str, batch) -> None:
        loss_sum, correct = self.masked_loss(batch, reduction="sum")
        mask = batch[2]
        # elements per sample: output steps x (output channels for MSE)
        count = int(mask.sum()) * (batch[1].shape[-1] if self.task == "regression" else 1)
        s = self._sums
        s[f"{prefix}/sum"] = s.get(f"{prefix}/sum", 0.0) + float(loss_sum)
        s[f"{prefix}/n"] = s.get(f"{prefix}/n", 0) + count
        if correct is not None:
            s[f"{prefix}/correct"] = s.get(f"{prefix}/correct", 0) + int(correct)
            s[f"{prefix}/outputs"] = s.get(f"{prefix}/outputs", 0) + int(mask.sum())

    def _collect(self, prefix: str) -> dict[str, float]:
        s = self._sums
        out = {f"{prefix}/loss": s.pop(f"{prefix}/sum") / s.pop(f"{prefix}/n")}
        if f"{prefix}/correct" in s:
            out[f"{prefix}/acc"] = s.pop(f"{prefix}/correct") / s.pop(f"{prefix}/outputs")
        return out

    def training_step(self, batch, batch_idx):
        loss, _ = self.masked_loss(batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"supervised loss became {loss.item()} at epoch {self.current_epoch + 1}, batch "
                f"{batch_idx + 1}: lower trainer.lr (now {self.lr})")
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, logger=False,
                 batch_size=batch[0].shape[1])
        return loss

    def validation_step(self, batch, batch_idx):
        self._accumulate("val", batch)

    def on_validation_epoch_end(self) -> None:
        val = self._collect("val")
        for key, value in val.items():
            self.log(key, value, prog_bar=True, logger=False)

    def on_train_epoch_end(self) -> None:
        epoch = self.current_epoch + 1
        metrics = {k: float(self.trainer.callback_metrics[k]) for k in ("train/loss", "val/loss")
                   if k in self.trainer.callback_metrics}
        if "val/acc" in self.trainer.callback_metrics:
            metrics["val/acc"] = float(self.trainer.callback_metrics["val/acc"])
        losses_logged, vaa_logged = self.logged_until
        if self.logger is not None and epoch > losses_logged:
            self.logger.log_metrics(metrics, step=epoch)
        if self.meter is not None:
            m = vaa_metrics(self.meter(self.net))
            metrics.update(m)
            if self.logger is not None and epoch > vaa_logged:
                self.logger.log_metrics(m, step=epoch_step(epoch))
            self.log("vaa", m["vaa"], prog_bar=True, logger=False)
        self.history.append({"epoch": epoch, **metrics})

    # A resumed fit continues torch's random stream where the checkpoint left it (the next
    # epoch's shuffle: the only draws of stage 2), so that it ends on the numbers of an
    # uninterrupted run.
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["torch_rng"] = torch.get_rng_state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "torch_rng" in checkpoint:
            torch.set_rng_state(checkpoint["torch_rng"])

    def test_step(self, batch, batch_idx):
        self._accumulate("test", batch)

    def on_test_epoch_end(self) -> None:
        self.test_metrics = self._collect("test")
        for key, value in self.test_metrics.items():
            self.log(key, value, logger=False)
