"""Data path throughput: `prepare` rows/s on a synthetic Criteo TSV, loader samples/s.

    python benchmarks/data_throughput.py --rows 2000000 --output bench_out/data_throughput.json

Steps: `synth --raw` writes an N-row Criteo-format TSV; `prepare` splits and encodes it
(80/10/10); the loader then reads the train split at each batch size (shuffled, capped tables).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import time

logger = logging.getLogger("data_throughput")


def measure_loader(data_dir: str, batch_size: int, max_samples: int) -> dict:
    """Samples/s of one pass (at most `max_samples` rows) of the shuffled train split."""
    from nasrec_torchrec.data.loader import ParquetBatchLoader

    loader = ParquetBatchLoader(data_dir, "train", batch_size, embedding_cap=500_000,
                                shuffle=True, drop_last=True)
    samples = 0
    started = time.perf_counter()
    for batch in loader:
        samples += len(batch.labels)
        if samples >= max_samples:
            break
    seconds = time.perf_counter() - started
    return {"batch_size": batch_size, "samples": samples, "seconds": round(seconds, 3),
            "samples_per_second": round(samples / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows of the TSV")
    parser.add_argument("--batch-sizes", default="256,4096", help="loader batch sizes")
    parser.add_argument("--loader-samples", type=int, default=1_000_000,
                        help="rows read per loader measurement")
    parser.add_argument("--work-dir", default="bench_out/data_throughput_work",
                        help="scratch directory (deleted at the end unless --keep)")
    parser.add_argument("--output", default="bench_out/data_throughput.json", help="JSON result")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    import torch

    from nasrec_torchrec.data.formats import ReaderOptions
    from nasrec_torchrec.data.prepare import SplitPlan, file_source, prepare_source
    from nasrec_torchrec.data.synth import write_synthetic

    raw_dir = os.path.join(args.work_dir, "raw")
    prepared_dir = os.path.join(args.work_dir, "prepared")
    shutil.rmtree(args.work_dir, ignore_errors=True)

    started = time.perf_counter()
    write_synthetic("criteo", args.rows, raw_dir, raw=True)
    raw_seconds = time.perf_counter() - started
    tsv = os.path.join(raw_dir, "train.txt")
    logger.info("wrote %d rows (%.0f MB) in %.1f s", args.rows, os.path.getsize(tsv) / 1e6,
                raw_seconds)

    started = time.perf_counter()
    stats = prepare_source(file_source("criteo", [(None, tsv)], ReaderOptions()), prepared_dir,
                           SplitPlan.parse("80,10,10", seed=0))
    prepare_seconds = time.perf_counter() - started
    logger.info("prepared %d rows in %.1f s (%.0f rows/s)", args.rows, prepare_seconds,
                args.rows / prepare_seconds)

    loader = [measure_loader(prepared_dir, int(size), args.loader_samples)
              for size in args.batch_sizes.split(",")]
    for result in loader:
        logger.info("loader batch %d: %.0f samples/s", result["batch_size"],
                    result["samples_per_second"])

    from bench_host import host_section

    result = {
        # the data path runs no matrix products: its rates are not set against the peak
        **host_section(torch.get_num_threads()),
        "rows": args.rows,
        "tsv_bytes": os.path.getsize(tsv),
        "synth_raw": {"seconds": round(raw_seconds, 3),
                      "rows_per_second": round(args.rows / raw_seconds, 1)},
        "prepare": {"seconds": round(prepare_seconds, 3),
                    "rows_per_second": round(args.rows / prepare_seconds, 1),
                    "count_seconds": stats["timings"]["count_seconds"],
                    "encode_seconds": stats["timings"]["encode_seconds"]},
        "loader": loader,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as handle:
        json.dump(result, handle, indent=2)
    print(json.dumps(result, indent=2))
    if not args.keep:
        shutil.rmtree(args.work_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
