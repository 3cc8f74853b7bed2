"""The LightningModule of the paper's method (section 2.2): ``q_hat = network(y)``,
``y_hat = analysis_chain(x, q_hat)``, loss = Mel(``y_hat``, ``y``) or 10 MSE(``q_hat``, ``q``)
(book chapter "Training the analysis network", ``book/10_training``).

Adam at the profile's learning rate; ``ReduceLROnPlateau`` (x 0.1) stepped on the validation
loss after each validation (patience counted in validations); early stopping is a callback.
Only the network is optimised: the analysis chain (e.g. the frozen neural proxy) is not.
"""
from __future__ import annotations

import time
from typing import Any, Optional

import lightning.pytorch as pl
import torch
from torch import Tensor

from ..effects import Chain, make
from ..losses import mel_loss, mse_q, params_loss
from .checkpoint import build_network, run_metadata
from .config import RunConfig

#: Effects whose forward runs on the CPU whatever the device (a CUDA batch makes a round trip).
CPU_ONLY_EFFECTS = ("Compressor",)


def cpu_only_effects(chain: Chain) -> list[str]:
    """Names of the chain's effects that compute on the CPU only (the numba compressor)."""
    return [key for key, e in chain.effects.items() if type(e).__name__ in CPU_ONLY_EFFECTS]


class AnalysisModule(pl.LightningModule):
    """Encoder + head trained through the analysis chain. Batches are ``(x, y, q)`` with
    ``x``, ``y`` ``(batch, 1, samples)`` and ``q`` ``(batch, C_synthesis)``."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.save_hyperparameters({"config": config})
        self.config = RunConfig.from_dict(config)
        self.profile = self.config.resolved_profile()
        self.analysis = self.config.analysis_chain()
        synthesis = make(self.config.synthesis)
        self.compare_q = RunConfig.same_parameters(synthesis, self.analysis)
        self.network = build_network(self.config, self.analysis.num_params)
        self.param_names = self.analysis.param_names
        self.cpu_only = cpu_only_effects(self.analysis)
        self.resume_step = 0
        for p in self.analysis.parameters():
            p.requires_grad_(False)

    def forward(self, y: Tensor) -> Tensor:
        return self.network(y)

    def _losses(self, x: Tensor, y: Tensor, q: Tensor, *, need_mel: bool) -> dict[str, Tensor]:
        timings = {}
        t0 = time.perf_counter()
        q_hat = self.network(y)
        out: dict[str, Tensor] = {}
        if need_mel or self.config.loss == "mel":
            t1 = time.perf_counter()
            y_hat = self.analysis(x, q_hat)
            timings["chain"] = time.perf_counter() - t1
            out["mel"] = mel_loss(y_hat, y)
        if self.compare_q:
            out["mse_q"] = mse_q(q_hat, q)
        out["loss"] = out["mel"] if self.config.loss == "mel" else params_loss(q_hat, q)
        timings["forward"] = time.perf_counter() - t0
        self._timings = timings
        return out

    def training_step(self, batch, batch_idx: int) -> Tensor:
        x, y, q = batch
        t0 = time.perf_counter()
        out = self._losses(x, y, q, need_mel=False)
        bs = x.shape[0]
        self.log("train_loss", out["loss"], on_step=True, on_epoch=False, prog_bar=True, batch_size=bs)
        if "chain" in self._timings:
            self.log("time_chain_s", self._timings["chain"], on_step=True, on_epoch=False, batch_size=bs)
        self.log("time_forward_s", time.perf_counter() - t0, on_step=True, on_epoch=False, batch_size=bs)
        return out["loss"]

    def validation_step(self, batch, batch_idx: int) -> None:
        x, y, q = batch
        out = self._losses(x, y, q, need_mel=True)
        bs = x.shape[0]
        self.log("val_loss", out["loss"], on_step=False, on_epoch=True, prog_bar=True, batch_size=bs)
        self.log("val_mel", out["mel"], on_step=False, on_epoch=True, batch_size=bs)
        if "mse_q" in out:
            self.log("val_mse_q", out["mse_q"], on_step=False, on_epoch=True, batch_size=bs)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        metric = self.trainer.callback_metrics.get("val_loss")
        if metric is None:
            return
        scheduler = self.lr_schedulers()
        scheduler.step(float(metric))
        lr = self.optimizers().param_groups[0]["lr"]
        self.log("lr", lr, on_step=False, on_epoch=True)

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.network.parameters(), lr=self.profile.lr)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=0.1, patience=self.profile.plateau_patience
        )
        # Stepped by hand after each validation (on_validation_epoch_end); see lr_scheduler_step.
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch", "monitor": "val_loss"}}

    def lr_scheduler_step(self, scheduler, metric: Optional[Any]) -> None:
        """Lightning's automatic stepping is replaced by the step after each validation."""

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["beafx"] = run_metadata(self.config, self.analysis.num_params, self.param_names)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.resume_step = int(checkpoint.get("global_step", 0))
