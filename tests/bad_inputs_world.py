"""The files the bad-input table runs against: datasets, raw inputs, architecture files,
configs, and run directories (trained, crafted, truncated), made once per session.

A plain module beside `test_bad_inputs.py` (not a fixture file), so that the table reads as
a list of command lines over the names of `World.paths`.
"""

from __future__ import annotations

import copy
import gzip
import json
import os
import pickle
import shutil
from dataclasses import asdict

SMALL_RUN = ["--batch-size", "128", "--eval-batch-size", "512", "--embedding-cap", "500",
             "--no-progress", "--threads", "1", "--device", "cpu", "--log-every", "1"]


class _CreatesFile:
    """Unpickling it would create `path` (what a crafted checkpoint could hold)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def _write(path: str, content: str | bytes) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb" if isinstance(content, bytes) else "w") as handle:
        handle.write(content)
    return path


def _checkpoint(run_dir: str) -> str:
    checkpoints = os.path.join(run_dir, "checkpoints")
    return os.path.join(checkpoints, sorted(os.listdir(checkpoints))[-1])


def _copy_run(source: str, target: str) -> str:
    shutil.copytree(source, target)
    return target


def _architecture_files(root: str) -> dict[str, str]:
    import random

    from nasrec_torchrec.space import get_space, sample_architecture, to_official

    valid = sample_architecture(get_space("nasrec-small"), random.Random(0)).to_dict()

    def variant(name: str, block: int, **genes: object) -> str:
        data = copy.deepcopy(valid)
        data["blocks"][block - 1].update(genes)
        return _write(os.path.join(root, "arch", f"{name}.json"), json.dumps(data))

    official = to_official(sample_architecture(get_space("official-small"), random.Random(0)),
                           "autoctr")
    official["micro"][1]["active_nodes"] = [0, 7]
    return {
        "arch_ok": _write(os.path.join(root, "arch", "ok.json"), json.dumps(valid)),
        "arch_unknown_op": variant("unknown_op", 1, dense_ops=["warp"]),
        "arch_past_last": variant("past_last", 2, dense_sources=[0, 9]),
        "arch_later_block": variant("later_block", 3, sparse_sources=[0, 5]),
        "arch_negative_dim": variant("negative_dim", 1, dense_dim=-4),
        "arch_float_dim": variant("float_dim", 1, sparse_dim=2.5),
        "arch_flag": variant("flag", 2, fm="yes"),
        "arch_official_node": _write(os.path.join(root, "arch", "official.json"),
                                     json.dumps(official)),
        "arch_not_json": _write(os.path.join(root, "arch", "broken.json"), "{\"blocks\": [\n"),
    }


def _raw_inputs(root: str) -> dict[str, str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nasrec_torchrec.data.synth import write_synthetic

    raw = os.path.join(root, "raw")
    write_synthetic("criteo", 300, raw, seed=0, raw=True)
    text = open(os.path.join(raw, "train.txt")).read()
    lines = text.splitlines(keepends=True)
    fields = lines[1].split("\t")
    paths = {
        "raw": os.path.join(raw, "train.txt"),
        "truncated_gz": _write(os.path.join(raw, "day_0.gz"),
                               gzip.compress(text.encode())[:2000]),
        "binary": _write(os.path.join(raw, "blob.bin"), b"\x89PNG\r\n\x1a\n\x00\xff" * 40),
        "bad_label": _write(os.path.join(raw, "bad_label.txt"),
                            lines[0] + "\t".join(["2", *fields[1:]])),
        "short_row": _write(os.path.join(raw, "short.txt"), lines[0] + "1\t2\t3\n"),
        "empty": _write(os.path.join(raw, "empty.txt"), ""),
        "dup_csv": _write(os.path.join(raw, "dup.csv"), "label,a,b,a\n1,x,y,z\n"),
        "inf_csv": _write(os.path.join(raw, "values.csv"), "label,d,s\n1,2,x\n0,inf,y\n"),
        "ok_csv": _write(os.path.join(raw, "ok.csv"), "label,d,s\n1,2,x\n0,3,y\n"),
        "lists_parquet": os.path.join(raw, "lists.parquet"),
        "dup_parquet": os.path.join(raw, "dup.parquet"),
    }
    pq.write_table(pa.table({"label": [1, 0], "tags": [[1, 2], [3]]}), paths["lists_parquet"])
    pq.write_table(pa.Table.from_arrays([pa.array([1, 0]), pa.array(["a", "b"]),
                                         pa.array(["c", "d"])], names=["label", "f", "f"]),
                   paths["dup_parquet"])
    return paths


def _configs(root: str, paths: dict[str, str]) -> dict[str, str]:
    import random

    from nasrec_torchrec.search.settings import SearchRun
    from nasrec_torchrec.space import get_space, sample_architecture

    search_resume = os.path.join(root, "search_resume")
    _write(os.path.join(search_resume, "search_run.json"), json.dumps(asdict(SearchRun(
        supernet=paths["supernet"], output=search_resume, finetune_steps=3))))
    search_earlier = os.path.join(root, "search_earlier")
    _write(os.path.join(search_earlier, "search_state.json"), "{}")
    record = {"index": 0, "generation": 0, "loss": 0.5, "architecture":
              sample_architecture(get_space("nasrec-small"), random.Random(1)).to_dict()}
    bad = copy.deepcopy(record)
    bad["architecture"]["blocks"][0]["dense_ops"] = ["warp"]
    return {
        "config_not_json": _write(os.path.join(root, "cfg", "broken.json"), "{\"lr\": \n"),
        "config_unknown": _write(os.path.join(root, "cfg", "unknown.json"),
                                 json.dumps({"learning_rte": 0.1})),
        "recipe_bad_optimizer": _write(os.path.join(root, "cfg", "recipe_sgd.json"),
                                       json.dumps({"optimizer": "sgd", "patience": 2})),
        "recipe_decay_adagrad": _write(os.path.join(root, "cfg", "recipe_decay.json"),
                                       json.dumps({"embedding_weight_decay": 0.05})),
        "experiment_broken": _write(os.path.join(root, "cfg", "broken.yaml"),
                                    "supernet:\n  max_steps: [\n"),
        "space_bad": _write(os.path.join(root, "cfg", "space.yaml"),
                            "name: mine\nnum_blocks: 0\ndense_ops: [fc]\nsparse_ops: "
                            "[embed_fc]\ndense_dims: [16]\nsparse_dims: [16]\n"),
        "search_earlier": search_earlier,
        "search_resume": search_resume,
        "cands_bad_arch": os.path.dirname(_write(
            os.path.join(root, "cands_bad_arch", "candidates.jsonl"),
            json.dumps(record) + "\n" + json.dumps(bad) + "\n")),
        "cands_bad_json": os.path.dirname(_write(
            os.path.join(root, "cands_bad_json", "candidates.jsonl"),
            json.dumps(record) + "\n{\"index\": 1,\n")),
    }


def _runs(root: str) -> dict[str, str]:
    """The trained runs (supernet, DLRM) and their crafted, truncated and moved copies."""
    from nasrec_torchrec.cli import main

    data = os.path.join(root, "data")
    supernet, model = os.path.join(root, "supernet"), os.path.join(root, "model")
    assert main(["train-supernet", "--data", data, "--space", "nasrec-small", "--output",
                 supernet, "--max-steps", "2", *SMALL_RUN]) == 0
    assert main(["train", "--data", data, "--model", "dlrm", "--output", model,
                 "--max-steps", "2", *SMALL_RUN]) == 0
    paths = {"supernet": supernet, "model": model,
             "payload": os.path.join(os.path.dirname(root), "created_by_payload")}
    for name, source in (("model_crafted", model), ("supernet_crafted", supernet)):
        paths[name] = _copy_run(source, os.path.join(root, name))
        with open(os.path.join(_checkpoint(paths[name]), ".metadata"), "wb") as handle:
            pickle.dump(_CreatesFile(paths["payload"]), handle)
    paths["model_truncated_metadata"] = _copy_run(model, os.path.join(root, "model_tm"))
    metadata = os.path.join(_checkpoint(paths["model_truncated_metadata"]), ".metadata")
    os.truncate(metadata, os.path.getsize(metadata) // 2)
    paths["model_truncated_shard"] = _copy_run(model, os.path.join(root, "model_ts"))
    shard = os.path.join(_checkpoint(paths["model_truncated_shard"]), "__0_0.distcp")
    os.truncate(shard, 64)
    paths["model_data_gone"] = _copy_run(model, os.path.join(root, "model_gone"))
    config_path = os.path.join(paths["model_data_gone"], "config.json")
    with open(config_path) as handle:
        config = json.load(handle)
    config["config"]["data"] = os.path.join(root, "moved_away")
    _write(config_path, json.dumps(config))
    paths["checkpoint"] = _checkpoint(model)
    return paths


def build_world(root: str) -> dict[str, str]:
    """Make every file of the table under `root`; their paths by name."""
    from nasrec_torchrec.data.synth import write_synthetic

    paths = {"root": root}
    for name, rows, seed, split in (("data", 1200, 0, "80,10,10"), ("other", 600, 1, "80,10,10"),
                                    ("no_val", 600, 0, "100,0,0")):
        paths[name] = os.path.join(root, name)
        write_synthetic("criteo", rows, paths[name], seed=seed, split=split,
                        row_group_rows=500)
    paths.update(_raw_inputs(root))
    paths.update(_architecture_files(root))
    paths.update(_runs(root))
    paths.update(_configs(root, paths))
    paths["a_file"] = _write(os.path.join(root, "a_file"), "not a folder\n")
    return paths
