"""A hand-made baseline (DLRM, DeepFM, DCN-V2, ...) trained in the same TorchRec loop.

The same collection, wrapper, optimizers and `TrainPipelineSparseDist` as
`train_found_architecture.py`; only the body on top of the embeddings differs.

    python examples/train_baseline.py --model dlrm --steps 20
    torchrun --nproc_per_node 2 examples/train_baseline.py --model deepfm --steps 20
"""

from __future__ import annotations

from train_found_architecture import (DENSE_FEATURES, EMBEDDING_DIM, SPARSE_FEATURES,
                                      parse_args, run)

from nasrec_torchrec.baselines import BASELINES, get_baseline
from nasrec_torchrec.nn.model import NASRecModel


def main() -> None:
    parser = parse_args(__doc__.splitlines()[0])
    parser.add_argument("--model", default="dlrm", choices=sorted(BASELINES),
                        help="the baseline")
    args = parser.parse_args()
    body = get_baseline(args.model, DENSE_FEATURES, len(SPARSE_FEATURES), EMBEDDING_DIM)
    run(lambda ebc: NASRecModel(ebc, DENSE_FEATURES, body), args)


if __name__ == "__main__":
    main()
