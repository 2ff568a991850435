"""Hand-made CTR baselines as `NASRecModel` bodies, trained by the same trainer as NASRecNet.

Every body is `body(dense [B, Dn], sparse [B, F, E]) -> logits [B]` (Dn may be 0), built from
`(dense_in_features, num_sparse_features, embedding_dim, options)` where `options` is the
model's dataclass of defaults (its paper's hyper-parameters), overridable by name.

Example::

    body = get_baseline("deepfm", 0, 10, 10, dropout=0.2, batch_norm=True)
    body = get_baseline("dcnv2", 13, 26, 16, structure="stacked", layer_sizes="512-256")
    model = NASRecModel(ebc, dense_in_features=13, body=body)

    nasrec train --data data/frappe --model deepfm --model-option dropout=0.2 ...
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from nasrec_torchrec.baselines.autoint import AutoIntOptions, AutoIntPlusBody
from nasrec_torchrec.baselines.dcnv2 import DCNv2Body, DCNv2Options
from nasrec_torchrec.baselines.deepfm import DeepFMBody, DeepFMOptions
from nasrec_torchrec.baselines.dlrm import DLRMBody, DLRMOptions
from nasrec_torchrec.baselines.linear import LinearBody, LinearOptions
from nasrec_torchrec.baselines.options import options_dict, parse_key_values, resolve_options
from nasrec_torchrec.baselines.xdeepfm import XDeepFMBody, XDeepFMOptions
from nasrec_torchrec.errors import NASRecError


@dataclass(frozen=True)
class Baseline:
    """A registered baseline: its body class and its options dataclass."""

    name: str
    body: type[nn.Module]
    options: type
    summary: str


BASELINES: dict[str, Baseline] = {entry.name: entry for entry in (
    Baseline("linear", LinearBody, LinearOptions, "logistic regression on the embeddings"),
    Baseline("dlrm", DLRMBody, DLRMOptions, "DLRM: bottom MLP, dot interaction, top MLP"),
    Baseline("deepfm", DeepFMBody, DeepFMOptions, "DeepFM: linear + FM + DNN"),
    Baseline("autoint", AutoIntPlusBody, AutoIntOptions,
             "AutoInt+: multi-head self-attention + DNN"),
    Baseline("xdeepfm", XDeepFMBody, XDeepFMOptions, "xDeepFM: linear + CIN + DNN"),
    Baseline("dcnv2", DCNv2Body, DCNv2Options, "DCN-V2: cross network v2 + DNN"),
)}

_ALIASES = {"autoint+": "autoint", "autoint_plus": "autoint", "dcn_v2": "dcnv2",
            "dcn-v2": "dcnv2", "lr": "linear"}


def baseline_entry(name: str) -> Baseline:
    """The registered baseline called `name` (case-insensitive; e.g. "AutoInt+")."""
    key = name.lower()
    key = _ALIASES.get(key, key)
    if key not in BASELINES:
        raise NASRecError(f"--model {name}: unknown baseline; known: {sorted(BASELINES)}")
    return BASELINES[key]


def get_baseline(name: str, dense_in_features: int, num_sparse_features: int,
                 embedding_dim: int, **options: Any) -> nn.Module:
    """The body of baseline `name`, its options' defaults overridden by `options`.

    Args:
        name: a key of `BASELINES` (or an alias such as "AutoInt+").
        dense_in_features: Dn (may be 0).
        num_sparse_features: F.
        embedding_dim: E.
        **options: fields of the model's options dataclass; string values (from
            `--model-option KEY=VALUE`) are typed by the field.

    Raises `NASRecError` for an unknown model, option or bad value.
    """
    entry = baseline_entry(name)
    resolved = resolve_options(entry.options, options, entry.name)
    return entry.body(dense_in_features, num_sparse_features, embedding_dim, resolved)


__all__ = [
    "BASELINES", "Baseline", "get_baseline", "baseline_entry", "parse_key_values",
    "options_dict", "resolve_options", "AutoIntOptions", "AutoIntPlusBody", "DCNv2Body",
    "DCNv2Options", "DeepFMBody", "DeepFMOptions", "DLRMBody", "DLRMOptions", "LinearBody",
    "LinearOptions", "XDeepFMBody", "XDeepFMOptions",
]
