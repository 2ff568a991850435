"""Runs a toy `Trainer` in its own process (for the kill-and-resume test).

    python toy_trainer_main.py OUTPUT [--resume] [--kill-after STEP] [--supernet]

`--kill-after k` SIGKILLs the process right after step k: no cleanup, no final checkpoint.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from toy_training import toy_trainer  # noqa: E402

from nasrec_torchrec.train.config import TrainConfig  # noqa: E402
from nasrec_torchrec.train.distributed import init_distributed, teardown  # noqa: E402


def resume_config(output: str, resume: bool) -> TrainConfig:
    return TrainConfig(output=output, batch_size=64, eval_batch_size=50, embedding_dim=4,
                       embedding_cap=None, log_every=1, checkpoint_every=3, epochs=2,
                       resume=resume, progress_bar=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("output")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--kill-after", type=int)
    parser.add_argument("--supernet", action="store_true")
    args = parser.parse_args()

    def kill(trainer) -> None:
        if trainer.step == args.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    context = init_distributed("cpu", num_threads=1)
    try:
        trainer = toy_trainer(resume_config(args.output, args.resume), context,
                              supernet=args.supernet,
                              callbacks=[kill] if args.kill_after else ())
        trainer.fit()
    finally:
        teardown(context)


if __name__ == "__main__":
    main()
