"""Precise BatchNorm: the trained model's running statistics re-estimated before evaluating.

BatchNorm's running statistics follow training with momentum 0.1: after a few dozen steps of
a fast-changing model (the BARS recipe's N(0, 1e-4) tables grow quickly, and a dot-product
operator squares their scale) they describe an earlier model, and an evaluation with them can
be far worse than training suggests. With `TrainConfig.bn_recalibration_batches` N > 0 the
trainer re-estimates them (`nn.batch_norm.recalibrate_batch_norm`: the plain average over
the first N unshuffled training batches, the same batches every time, as the search does for
the subnets it scores) before each epoch's early-stopping evaluation and, when no best epoch
is restored, before the last checkpoint and the end-of-run evaluation. The statistics stay in
the model: the checkpoint of that step (and so the exported and served model) carries them,
and training continues from them with BatchNorm's momentum updates.

The forwards run without autograd, with the BatchNorms in training mode and every other
module in eval mode (no dropout; no random number is drawn), through the trainer's sharded
model. On several ranks each rank runs its own share of every batch
(`probes.make_recalibration_loader`), then the ranks' statistics are averaged (all-reduce),
so that every rank evaluates and saves the same statistics: the average over all ranks'
per-rank batches (not the statistics of the global batch).
"""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.distributed as dist
from torch import nn

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.nn.batch_norm import batch_norms, recalibrate_batch_norm
from nasrec_torchrec.train.probes import make_recalibration_loader


class BatchNormRecalibration:
    """Re-estimates the BatchNorm statistics of a trainer's model on fixed training batches.

    Args:
        norms: the BatchNorm layers of the model's body.
        loader: this rank's recalibration batches (torchrec `Batch`es, the same at every
            pass).
        device: where the batches go.
        world_size: ranks whose statistics are averaged.

    Example::

        recalibration = batch_norm_recalibration(config, context, body)
        if recalibration is not None:
            recalibration(trainer.dmp)  # then trainer.evaluate()
    """

    def __init__(self, norms: list[nn.Module], loader: Any, device: torch.device,
                 world_size: int) -> None:
        self.norms = norms
        self.loader = loader
        self.device = device
        self.world_size = world_size

    def _forward(self, model: nn.Module, batch: Any) -> None:
        model.eval()
        for norm in self.norms:
            norm.train()
        model(batch.to(self.device))

    @torch.no_grad()
    def __call__(self, model: nn.Module) -> int:
        """Recalibrate through `model` (the sharded train model holding the body; left in
        eval mode; a collective on several ranks); the number of batches run."""
        count = recalibrate_batch_norm(model, self.loader, forward=self._forward)
        if self.world_size > 1 and dist.is_available() and dist.is_initialized():
            for norm in self.norms:
                for statistic in (norm.running_mean, norm.running_var):
                    dist.all_reduce(statistic)
                    statistic.div_(self.world_size)
        return count


def batch_norm_recalibration(config: Any, context: Any, body: nn.Module,
                             supernet: bool = False) -> Optional[BatchNormRecalibration]:
    """The recalibration of `config.bn_recalibration_batches` (a `TrainConfig`) for `body`
    on this rank (`context` from `init_distributed`); None when off or `body` has no
    BatchNorm. Refused for a `supernet` (its statistics are shared by every path: the probes
    and the search recalibrate each path on their own)."""
    if supernet and config.bn_recalibration_batches:
        raise NASRecError(f"{config.output}: field 'bn_recalibration_batches' "
                          "(--bn-recalibration-batches): not for a supernet (the probes and "
                          "the search recalibrate each path; see --probe-recalibration-batches)")
    norms = batch_norms(body)
    if not config.bn_recalibration_batches or not norms:
        return None
    loader = make_recalibration_loader(config, context, config.bn_recalibration_batches)
    return BatchNormRecalibration(norms, loader, context.device, context.world_size)
