"""Embedding tables as they grow, on 1 and 2 processes: `nasrec bench embeddings` per world size.

The benchmark is the `nasrec bench embeddings` command (nasrec_torchrec/stages/bench/); this
script runs it once per --world-sizes value (under torchrun for more than one process) into
OUTPUT/ranks_N. Every other argument goes to the command unchanged: see
`nasrec bench embeddings --help`.

Example:
  python benchmarks/large_embeddings.py --output bench_out/large_embeddings --world-sizes 1 2 \\
      --total-rows 1e6 34e6 --sharding-types table_wise row_wise --max-memory-gb 10
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world-sizes", type=int, nargs="+", default=[1, 2],
                        help="processes of each run (default 1 2)")
    parser.add_argument("--output", default="bench_out/large_embeddings",
                        help="folder of the runs' ranks_N folders")
    args, bench_args = parser.parse_known_args(argv)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    for world_size in args.world_sizes:
        launcher = [sys.executable] if world_size == 1 else [
            sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={world_size}"]
        command = [*launcher, "-m", "nasrec_torchrec.cli", "bench", "embeddings", "--output",
                   os.path.join(args.output, f"ranks_{world_size}"), *bench_args]
        code = subprocess.run(command, env=env).returncode
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
