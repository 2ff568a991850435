"""Loading a supernet trained by `nasrec train-supernet` into this process, for scoring.

The run's `config.json` gives the space, LayerNorm, embedding width and cap; the checkpoint is
read with `torch.distributed.checkpoint` into a plain, unsharded model whose weights are
frozen (`SubnetScorer` copies the slices it scores).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Optional

from nasrec_torchrec.artifacts import CHECKPOINT_DIR, CONFIG_FILE, read_json
from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.nn.model import NASRecModel
from nasrec_torchrec.nn.networks import Supernet

logger = logging.getLogger(__name__)


@dataclass
class LoadedSupernet:
    """A trained supernet in this process: its tables and body, read from a run directory.

    Args:
        model: `NASRecModel` (plain, unsharded `EmbeddingBagCollection` + `Supernet` body).
        data: the prepared dataset the tables index.
        embedding_cap: the table cap the supernet was trained with.
        run_dir: the `train-supernet` output; checkpoint: the checkpoint loaded; step: its step.
        config: the run's `TrainConfig` as a dict (from `config.json`).
    """

    model: NASRecModel
    data: str
    embedding_cap: Optional[int]
    run_dir: str = ""
    checkpoint: str = ""
    step: int = 0
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def supernet(self) -> Supernet:
        """The supernet body."""
        return self.model.body  # type: ignore[return-value]


def load_supernet(run_dir: str, data: Optional[str] = None,
                  checkpoint: Optional[str] = None) -> LoadedSupernet:
    """Load a supernet trained by `nasrec train-supernet` (tables + body) into this process.

    The run's `config.json` gives the space, LayerNorm, embedding width and cap; the
    checkpoint (the latest under `run_dir/checkpoints` unless `checkpoint` is given) is read
    with `torch.distributed.checkpoint` into a plain, unsharded model (DCP reshards whatever
    plan and world size saved it). No process group is needed, and none is used: every rank
    of a multi-rank search loads its own copy.

    Args:
        run_dir: the supernet run directory.
        data: the prepared dataset (default: the one the supernet was trained on).
        checkpoint: a `step_*` directory to load instead of the latest.
    """
    from nasrec_torchrec.data.schema import Schema
    from nasrec_torchrec.embeddings import build_embedding_bag_collection
    from nasrec_torchrec.nn.model import NASRecModelTrain
    from nasrec_torchrec.model_spec import build_body, run_model_spec
    from nasrec_torchrec.train.checkpoint import latest_checkpoint, load_checkpoint
    from nasrec_torchrec.train.config import TrainConfig

    config_path = os.path.join(run_dir, CONFIG_FILE)
    if not os.path.exists(config_path):
        raise NASRecError(f"{config_path}: not found: is '{run_dir}' a train-supernet run "
                          "directory?")
    stored = read_json(config_path)
    if "config" not in stored:
        raise NASRecError(f"{config_path}: field 'config': missing: not a train-supernet run")
    run_config = TrainConfig.from_dict(stored["config"], source=config_path)
    spec = run_model_spec(run_config, config_path)
    space = spec.search_space(config_path)
    config = stored["config"]
    checkpoint = checkpoint or latest_checkpoint(os.path.join(run_dir, CHECKPOINT_DIR))
    if checkpoint is None:
        raise NASRecError(f"{run_dir}: no checkpoint under {CHECKPOINT_DIR}/ (is training "
                          "finished, or was it run with --checkpoint-every 0?)")
    data = data or config["data"]
    schema = Schema.load(data)
    embedding_dim = int(config.get("embedding_dim", 16))
    cap = config.get("embedding_cap")
    ebc = build_embedding_bag_collection(schema, embedding_dim, cap, device="cpu")
    supernet = build_body(spec, len(schema.dense), len(schema.sparse), embedding_dim)
    wrapper = NASRecModelTrain(NASRecModel(ebc, len(schema.dense), supernet))
    state = load_checkpoint(checkpoint, wrapper, collective=False)
    model = wrapper.model
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    logger.info("loaded supernet %s (step %d, space %s)", checkpoint, state["step"], space.name)
    return LoadedSupernet(model=model, data=data, embedding_cap=cap, run_dir=run_dir,
                          checkpoint=checkpoint, step=int(state["step"]), config=config)
