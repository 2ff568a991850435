"""nasrec_torchrec: weight-sharing NAS for CTR models on TorchRec.

`import nasrec_torchrec` imports no torch; `load_model` imports it when called.
"""

from __future__ import annotations

from typing import Any, Optional


def load_model(run_dir: str, device: Any = "cpu", checkpoint: Optional[str] = None) -> Any:
    """The trained model of a `nasrec train` / `retrain` / `final` run directory.

    Args:
        run_dir: the run directory (a found architecture or a baseline).
        device: where the model is put ("cpu", "cuda:0", a `torch.device`).
        checkpoint: a `step_*` directory (default: the one `results.json` names, else the
            latest).

    Returns:
        a `stages.evaluate.TrainedModel`: `.model` (`NASRecModel`, eval mode, unsharded:
        `model(dense_features [B, Dn], sparse_features KJT) -> logits [B]`), `.schema`,
        `.embedding_cap`, `.data` (the prepared data it trained on), `.checkpoint`, `.step`.

    Example::

        import nasrec_torchrec

        trained = nasrec_torchrec.load_model("runs/final")
        logits = trained.model(batch.dense_features, batch.sparse_features)  # [B]
    """
    from nasrec_torchrec.stages.evaluate import load_model as load

    return load(run_dir, device, checkpoint)


__all__ = ["load_model"]
