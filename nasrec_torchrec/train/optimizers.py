"""Optimizers of a sharded model.

`adagrad` (the paper's, default): embedding tables get exact Adagrad fused into the FBGEMM
backward (`dmp.fused_optimizer`, set up by `nasrec_torchrec.embeddings.shard_model`); dense
parameters `torch.optim.Adagrad` in a `KeyedOptimizerWrapper`. Both in one TorchRec
`CombinedOptimizer`. torch's Adagrad and Adam run fused (`fused=True`: one kernel per
tensor, on CPU and CUDA) rather than as its foreach sequence of ops.

`adam`: dense parameters `torch.optim.Adam`. The tables: on CUDA the fused FBGEMM ADAM
(`attach_fused_adam`, weight decay in L2 mode on the rows of the batch); on CPU FBGEMM has no
Adam kernel (only exact/row-wise Adagrad and SGD), so the tables are planned data-parallel
(dense kernel, replicated, gradients all-reduced by DDP: fine for small vocabularies such as
Frappe's, slow for Criteo-size tables) and updated by the same `torch.optim.Adam`, with
`embedding_weight_decay` as Adam's `weight_decay` on whole tables (FuxiCTR's
`embedding_regularizer`: the gradient of `lambda / 2 * ||W||^2`).

A supernet (`slice_gradients`): its body is updated slice by slice, by `SlicedAdagrad` or
`SlicedAdam` (exact per-element Adam); with `adam` on CPU its data-parallel tables are in the
same optimizer (a param group of their own, already averaged by DDP) and get torch Adam's
whole-table update.

Gradient clipping (`max_grad_norm`, the official NASRec code's 5.0): the global L2 norm of the
gradients the dense optimizer applies is clipped before its step, after the cross-rank
reduction (DDP's in the backward; the sliced optimizers' inside their step), so it is the same
on every rank. The fused tables are updated inside the backward by FBGEMM and are not included.

The schedule (`train.schedules.LRSchedule`) sets the `lr` of every param group of the
combined optimizer, the fused ones included: TorchRec's fused optimizer
pushes `param_groups[0]["lr"]` into the FBGEMM kernel on `zero_grad()` and `step()`, so the
rows updated in a step's backward use the rate set before that step's `zero_grad()` (which
TorchRec's train pipelines call first thing in `progress()`).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torchrec.optim.clipping import GradientClipping, GradientClippingOptimizer
from torchrec.optim.keyed import CombinedOptimizer, KeyedOptimizer, KeyedOptimizerWrapper
from torchrec.optim.optimizers import in_backward_optimizer_filter

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.nn.elastic import SliceGradients
from nasrec_torchrec.train.config import OPTIMIZER_CHOICES
from nasrec_torchrec.train.sliced_adagrad import SlicedAdagrad
from nasrec_torchrec.train.sliced_adam import SlicedAdam

DEFAULT_DENSE_LR = 0.04
DEFAULT_EPS = 1e-8


DEFAULT_BETAS = (0.9, 0.999)


def is_table_parameter(name: str) -> bool:
    """Whether a parameter name (of a possibly sharded model) is an embedding table's weight."""
    parts = name.split(".")
    return len(parts) >= 3 and parts[-1] == "weight" and parts[-3] == "embedding_bags"


def attach_fused_adam(model: nn.Module, learning_rate: float, eps: float = DEFAULT_EPS,
                      betas: tuple[float, float] = DEFAULT_BETAS,
                      weight_decay: float = 0.0) -> None:
    """Give every table of `model` (before sharding) FBGEMM's fused ADAM (CUDA only).

    Weight decay is FBGEMM's L2 mode (`weight_decay * w` added to the gradient of the rows in
    the batch). `shard_model` then leaves these tables' optimizer alone.
    """
    from fbgemm_gpu.tbe.config.optimizer_config import WeightDecayMode
    from torch.distributed.optim import _apply_optimizer_in_backward
    from torchrec.optim import Adam as FusedAdamPlaceholder

    params = [p for name, p in model.named_parameters() if is_table_parameter(name)]
    _apply_optimizer_in_backward(FusedAdamPlaceholder, params, {
        "lr": learning_rate, "eps": eps, "beta1": betas[0], "beta2": betas[1],
        "weight_decay": weight_decay,
        "weight_decay_mode": WeightDecayMode.L2 if weight_decay else WeightDecayMode.NONE})


def _with_adam_state(adam: torch.optim.Adam) -> torch.optim.Adam:
    """Adam with its state created now, as its first step would (step 0, zero moments).

    torch's Adam creates its state lazily; a checkpoint loaded into an optimizer without
    state would silently skip it (the load allows missing optimizer keys).
    """
    for group in adam.param_groups:
        for param in group["params"]:
            adam.state[param] = {
                "step": torch.tensor(0.0),
                "exp_avg": torch.zeros_like(param, memory_format=torch.preserve_format),
                "exp_avg_sq": torch.zeros_like(param, memory_format=torch.preserve_format)}
    return adam


def _fused(params: list[torch.Tensor]) -> Optional[bool]:
    """torch's fused (one kernel per tensor) step where it has one: floating CPU or CUDA
    parameters; None (its default, foreach) elsewhere."""
    fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return True if fused and params else None


def dense_optimizer(model: nn.Module, learning_rate: float = DEFAULT_DENSE_LR,
                    eps: float = DEFAULT_EPS,
                    slice_gradients: Optional[SliceGradients] = None,
                    optimizer: str = "adagrad", betas: tuple[float, float] = DEFAULT_BETAS,
                    table_learning_rate: Optional[float] = None,
                    table_weight_decay: float = 0.0,
                    max_grad_norm: Optional[float] = None) -> KeyedOptimizer:
    """The optimizer of every parameter of `model` not updated in the backward.

    `optimizer` "adagrad" (`torch.optim.Adagrad`) or "adam" (`torch.optim.Adam`). Tables
    among these parameters (data-parallel tables) form the first param group, with
    `table_learning_rate` (default `learning_rate`) and, for Adam, `table_weight_decay`.
    With `slice_gradients` (a supernet recording the gradients of the slices it used), a
    `SlicedAdagrad` or `SlicedAdam` that all-reduces and updates those slices only (the
    tables' gradients, averaged by DDP, are not reduced again).
    `max_grad_norm`: clip the global L2 norm of these parameters' (reduced) gradients to it
    before each step (None: no clipping; the fused tables are not included).
    """
    if optimizer not in OPTIMIZER_CHOICES:
        raise NASRecError(f"optimizer must be one of {OPTIMIZER_CHOICES}, got '{optimizer}'")
    if max_grad_norm is not None and max_grad_norm <= 0:
        raise NASRecError(f"max_grad_norm must be > 0, got {max_grad_norm}")
    params = dict(in_backward_optimizer_filter(model.named_parameters()))
    if slice_gradients is not None and optimizer == "adagrad":
        return KeyedOptimizerWrapper(params, lambda group: SlicedAdagrad(
            group, slice_gradients, lr=learning_rate, eps=eps, max_grad_norm=max_grad_norm))
    if table_weight_decay and optimizer != "adam":
        raise NASRecError("embedding weight decay needs --optimizer adam")
    tables = {id(p) for name, p in params.items() if is_table_parameter(name)}
    table_lr = learning_rate if table_learning_rate is None else table_learning_rate

    def make(group: list[torch.Tensor]) -> torch.optim.Optimizer:
        groups = [{"params": [p for p in group if id(p) in tables], "lr": table_lr},
                  {"params": [p for p in group if id(p) not in tables]}]
        groups = [g for g in groups if g["params"]]
        if slice_gradients is not None:  # adam: the tables are data-parallel, DDP-averaged
            if tables:
                groups[0].update(weight_decay=table_weight_decay, synchronised=True)
            return SlicedAdam(groups, slice_gradients, lr=learning_rate, betas=betas, eps=eps,
                              max_grad_norm=max_grad_norm)
        if optimizer == "adam":
            if tables:
                groups[0]["weight_decay"] = table_weight_decay
            return _with_adam_state(torch.optim.Adam(groups, lr=learning_rate, eps=eps,
                                                     betas=betas, fused=_fused(group)))
        return torch.optim.Adagrad(groups, lr=learning_rate, eps=eps, fused=_fused(group))

    wrapper = KeyedOptimizerWrapper(params, make)
    if max_grad_norm is None or slice_gradients is not None:  # the sliced ones clip
        return wrapper
    # DDP has averaged the .grads in the backward: the same norm on every rank
    return GradientClippingOptimizer(wrapper, GradientClipping.NORM, max_grad_norm)


def build_optimizer(dmp: nn.Module, learning_rate: float = DEFAULT_DENSE_LR,
                    eps: float = DEFAULT_EPS,
                    slice_gradients: Optional[SliceGradients] = None,
                    optimizer: str = "adagrad", betas: tuple[float, float] = DEFAULT_BETAS,
                    table_learning_rate: Optional[float] = None,
                    table_weight_decay: float = 0.0,
                    max_grad_norm: Optional[float] = None) -> CombinedOptimizer:
    """`CombinedOptimizer` of the model's fused embedding optimizer ("embeddings") and the
    dense one ("dense", see `dense_optimizer`); `dmp` is a `DistributedModelParallel`."""
    fused: KeyedOptimizer = dmp.fused_optimizer  # type: ignore[assignment]
    return CombinedOptimizer([
        ("embeddings", fused),
        ("dense", dense_optimizer(dmp, learning_rate, eps, slice_gradients, optimizer, betas,
                                  table_learning_rate, table_weight_decay, max_grad_norm)),
    ])
