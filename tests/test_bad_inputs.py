"""Bad inputs over every command, as a user types them: each ends with exit code 2 and one
line `nasrec <stage>: error: ...` naming the file, line, field or flag at fault, no
traceback, nothing written anywhere (no output, no partial folder, no file of an existing run
changed), and nothing a run directory holds executed.

Every case runs `nasrec_torchrec.cli.main` in this process against the files of
`bad_inputs_world` (made once). `{name}` in a command line is one of its paths; `{out}` is a
fresh output path of the case.
"""

from __future__ import annotations

import os
import re
import shlex
from typing import NamedTuple

import pytest

pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("one_thread")

from bad_inputs_world import SMALL_RUN, build_world  # noqa: E402

from nasrec_torchrec.cli import COMMANDS, main  # noqa: E402

RUN = " ".join(SMALL_RUN)


class Case(NamedTuple):
    id: str
    command: str  # `nasrec` arguments with `{name}` placeholders
    message: str  # a regular expression the error line must match
    leaves_run: bool = False  # a run that stops midway keeps its metrics, never a checkpoint


CASES = [
    # --- prepare: formats and flags
    Case("prepare-no-format", "prepare --input {raw} --output {out}",
         r"field 'format' \(--format\): is required"),
    Case("prepare-unknown-format", "prepare --format tsv --input {raw} --output {out}",
         r"argument --format: invalid choice: 'tsv'"),
    Case("prepare-input-missing", "prepare --format criteo --input {root}/nope.txt "
         "--output {out}", r"nope\.txt: input file not found"),
    Case("prepare-truncated-gzip", "prepare --format criteo --input {truncated_gz} "
         "--output {out}", r"day_0\.gz: cannot decompress"),
    Case("prepare-binary-criteo", "prepare --format criteo --input {binary} --output {out}",
         r"blob\.bin:1: not UTF-8 text"),
    Case("prepare-binary-csv", "prepare --format csv --input {binary} --output {out}",
         r"blob\.bin:1: not UTF-8 text"),
    Case("prepare-binary-avazu", "prepare --format avazu --input {binary} --output {out}",
         r"blob\.bin:1: not UTF-8 text"),
    Case("prepare-binary-parquet", "prepare --format parquet --input {binary} --output {out}",
         r"blob\.bin: not a readable Parquet file"),
    Case("prepare-duplicate-csv-columns", "prepare --format csv --input {dup_csv} "
         "--output {out}", r"dup\.csv:1: field 'a': the column name appears twice"),
    Case("prepare-duplicate-parquet-columns", "prepare --format parquet --input {dup_parquet} "
         "--output {out}", r"dup\.parquet: field 'f': the column name appears twice"),
    Case("prepare-parquet-lists", "prepare --format parquet --input {lists_parquet} "
         "--output {out}", r"lists\.parquet: field 'tags': a column of list<"),
    Case("prepare-shard-rows-0", "prepare --format criteo --input {raw} --output {out} "
         "--shard-rows 0", r"field 'shard_rows' \(--shard-rows\): 0 must be at least 1"),
    Case("prepare-row-group-rows", "prepare --format criteo --input {raw} --output {out} "
         "--row-group-rows -1", r"\(--row-group-rows\): -1 must be at least 1"),
    Case("prepare-min-frequency", "prepare --format criteo --input {raw} --output {out} "
         "--min-frequency -1", r"\(--min-frequency\): -1 must be at least 1"),
    Case("prepare-split-sum", "prepare --format criteo --input {raw} --output {out} "
         "--split 50,50,50", r"--split: the train,val,test percentages '50,50,50' sum to 150"),
    Case("prepare-split-words", "prepare --format criteo --input {raw} --output {out} "
         "--split most", r"--split: expected three non-negative integers"),
    Case("prepare-given-unnamed", "prepare --format criteo --input {raw} --output {out} "
         "--split given", r"--input '.*train\.txt': with --split given, write SPLIT=PATH"),
    Case("prepare-val-from-train-and-val", "prepare --format criteo --split given "
         "--val-from-train 1/9 --input train={raw} val={raw} --output {out}",
         r"--val-from-train: a val input is given too"),
    Case("prepare-val-from-train-no-train", "prepare --format criteo --split given "
         "--val-from-train 1/9 --input test={raw} --output {out}",
         r"--val-from-train: no train input to carve val from"),
    Case("prepare-val-from-train-not-given", "prepare --format criteo --input {raw} "
         "--val-from-train 1/9 --output {out}", r"--val-from-train: .* not --split 80,10,10"),
    Case("prepare-val-from-train-share", "prepare --format criteo --split given "
         "--val-from-train 11.11 --input train={raw} --output {out}",
         r"--val-from-train: '11\.11' must lie strictly between 0 and 1 \(a percentage ends "
         r"with %"),
    Case("prepare-output-under-a-file", "prepare --format criteo --input {raw} "
         "--output {a_file}/out", r"a_file/out: cannot create the output there"),
    Case("prepare-output-exists", "prepare --format criteo --input {raw} --output {data}",
         r"/data: output already exists \(pass --overwrite"),
    Case("prepare-infinite-dense", "prepare --format csv --input {inf_csv} --output {out} "
         "--dense-columns d", r"values\.csv:3: field 'd': dense value is not a number"),
    Case("prepare-bad-label", "prepare --format criteo --input {bad_label} --output {out}",
         r"bad_label\.txt:2: field 'label': label must be 0 or 1"),
    Case("prepare-short-row", "prepare --format criteo --input {short_row} --output {out}",
         r"short\.txt:2: wrong field count: expected 40 fields, got 3"),
    Case("prepare-unknown-label-column", "prepare --format csv --input {ok_csv} "
         "--output {out} --label-column click", r"ok\.csv:1: field 'click': unknown column"),
    Case("prepare-profile-not-kdd", "prepare --format criteo --input {raw} --output {out} "
         "--kdd-user-profile {raw}", r"--kdd-user-profile applies to --format kdd only"),
    Case("prepare-empty-file", "prepare --format criteo --input {empty} --output {out}",
         r"empty\.txt:1: empty file: no data rows"),
    Case("prepare-schema-from-other-features", "prepare --format csv --input {ok_csv} "
         "--dense-columns d --output {out} --schema-from {data}",
         r"data/schema\.json: field 'dense'"),
    Case("prepare-seed-not-a-number", "prepare --format criteo --input {raw} --output {out} "
         "--seed one", r"argument --seed: invalid int value: 'one'"),
    # --- synth
    Case("synth-negative-rows", "synth --like criteo --rows -3 --output {out}",
         r"field 'rows' \(--rows\): -3 must be at least 0"),
    Case("synth-unknown-shape", "synth --like movielens --rows 10 --output {out}",
         r"argument --like: invalid choice: 'movielens'"),
    Case("synth-cardinality", "synth --like criteo --rows 10 --output {out} "
         "--max-cardinality 0", r"\(--max-cardinality\): 0 must be at least 1"),
    Case("synth-output-exists", "synth --like criteo --rows 10 --output {data}",
         r"/data: output already exists"),
    # --- train: flags, architecture files, configs, run directories
    Case("train-negative-lr", "train --data {data} --model dlrm --output {out} --lr -1",
         r"field 'train\.learning_rate' \(--lr\): -1\.0 must be greater than 0"),
    Case("train-nan-lr", "train --data {data} --model dlrm --output {out} --lr nan",
         r"\(--lr\): nan is not a number"),
    Case("train-infinite-lr", "train --data {data} --model dlrm --output {out} --lr inf",
         r"\(--lr\): inf is not a finite number"),
    Case("train-negative-max-steps", "train --data {data} --model dlrm --output {out} "
         "--max-steps -5", r"field 'train\.max_steps' \(--max-steps\): -5 must be at least 1"),
    Case("train-batch-size-0", "train --data {data} --model dlrm --output {out} "
         "--batch-size 0", r"\(--batch-size\): 0 must be at least 1"),
    Case("train-embedding-dim-0", "train --data {data} --model dlrm --output {out} "
         "--embedding-dim 0", r"\(--embedding-dim\): 0 must be at least 1"),
    Case("train-warmup-whole-run", "train --data {data} --model dlrm --output {out} "
         "--lr-warmup 1", r"\(--lr-warmup\): 1\.0 must be less than 1\.0"),
    Case("train-threads-0", "train --data {data} --model dlrm --output {out} --threads 0",
         r"\(--threads\): 0 must be at least 1"),
    Case("train-lr-not-a-number", "train --data {data} --model dlrm --output {out} --lr fast",
         r"argument --lr: invalid float value: 'fast'"),
    Case("train-unknown-flag", "train --data {data} --model dlrm --output {out} --rate 2",
         r"unrecognized arguments: --rate 2"),
    Case("train-abbreviated-flag", "train --data {data} --model dlrm --output {out} --epoch 2",
         r"unrecognized arguments: --epoch 2"),
    Case("train-arch-unknown-operator", "train --data {data} --arch {arch_unknown_op} "
         "--output {out}", r"unknown_op\.json: block 1: field 'dense_ops': 'warp' is not one"),
    Case("train-arch-source-past-last-block", "train --data {data} --arch {arch_past_last} "
         "--output {out}", r"past_last\.json: block 2: field 'dense_sources': 9 is not one of"),
    Case("train-arch-reads-a-later-block", "train --data {data} --arch {arch_later_block} "
         "--output {out}", r"later_block\.json: block 3: field 'sparse_sources': 5 is not"),
    Case("train-arch-negative-dim", "train --data {data} --arch {arch_negative_dim} "
         "--output {out}", r"negative_dim\.json: block 1: field 'dense_dim': -4 is not a "
         r"positive integer"),
    Case("train-arch-non-integer-dim", "train --data {data} --arch {arch_float_dim} "
         "--output {out}", r"float_dim\.json: block 1: field 'sparse_dim': 2\.5 is not an"),
    Case("train-arch-flag", "train --data {data} --arch {arch_flag} --output {out}",
         r"flag\.json: block 2: field 'fm': 'yes' is not true or false"),
    Case("train-arch-official-node", "train --data {data} --arch {arch_official_node} "
         "--output {out}", r"official\.json: block 2: field 'active_nodes': node 7"),
    Case("train-arch-not-json", "train --data {data} --arch {arch_not_json} --output {out}",
         r"broken\.json:2: invalid JSON"),
    Case("train-arch-missing", "train --data {data} --arch {root}/none.json --output {out}",
         r"none\.json: cannot read: No such file"),
    Case("train-no-model", "train --data {data} --output {out}",
         r"give --arch FILE\.json or --model NAME"),
    Case("train-unknown-baseline", "train --data {data} --model dlrn --output {out}",
         r"--model dlrn: unknown baseline; known: \['autoint'"),
    Case("train-baseline-option", "train --data {data} --model dlrm --output {out} "
         "--model-option dropout=2", r"--model dlrm: option 'dropout': 2\.0 is not in"),
    Case("train-data-missing", "train --data {root}/nowhere --model dlrm --output {out}",
         r"nowhere/schema\.json: not found"),
    Case("train-empty-val-split", "train --data {no_val} --model dlrm --output {out} {RUN}",
         r"no_val/val: the split has no rows, nothing for the evaluation \(--eval-split"),
    Case("train-config-not-json", "train --data {data} --model dlrm --output {out} "
         "--config {config_not_json}", r"broken\.json:2: invalid JSON"),
    Case("train-config-unknown-field", "train --data {data} --model dlrm --output {out} "
         "--config {config_unknown}", r"unknown\.json: unknown field 'learning_rte'"),
    Case("train-output-under-a-file", "train --data {data} --model dlrm "
         "--output {a_file}/out {RUN}", r"a_file/out: cannot create the folder"),
    Case("train-output-holds-a-run", "train --data {data} --model dlrm --output {model} "
         "--max-steps 2 {RUN}", r"/model: holds checkpoints of an earlier run"),
    Case("train-resume-other-settings", "train --data {data} --model dlrm --output {model} "
         "--max-steps 2 {RUN} --resume --lr 0.1 --seed 3",
         r"step_000000002: --resume with other settings than the run's: learning_rate "
         r"\(--lr\): 0\.04 -> 0\.1; seed \(--seed\): 0 -> 3"),
    Case("train-resume-truncated-checkpoint", "train --data {data} --model dlrm "
         "--output {model_truncated_shard} --max-steps 2 {RUN} --resume",
         r"model_ts/checkpoints/step_000000002: cannot read the checkpoint, truncated"),
    Case("train-diverging", "train --data {data} --model dlrm --output {out} --max-steps 6 "
         "{RUN} --lr 1e30 --embedding-lr 1e30",
         r"training diverged at step \d: the training loss is nan; stopped, no checkpoint",
         leaves_run=True),
    # --- train-supernet
    Case("supernet-no-space", "train-supernet --data {data} --output {out}",
         r"field 'space' \(--space\): is required"),
    Case("supernet-unknown-space", "train-supernet --data {data} --space huge --output {out}",
         r"unknown search space 'huge'"),
    Case("supernet-bad-space-file", "train-supernet --data {data} --space {space_bad} "
         "--output {out}", r"space\.yaml: field 'num_blocks'"),
    Case("supernet-unknown-strategy", "train-supernet --data {data} --space nasrec-small "
         "--strategy greedy --output {out}", r"argument --strategy: invalid choice: 'greedy'"),
    Case("supernet-path-warmup", "train-supernet --data {data} --space nasrec-small "
         "--path-warmup 1.5 --output {out}", r"\(--path-warmup\): 1\.5 must be less than 1"),
    Case("supernet-negative-probes", "train-supernet --data {data} --space nasrec-small "
         "--probe-subnets -1 --output {out}", r"\(--probe-subnets\): -1 must be at least 0"),
    Case("supernet-negative-probe-rows", "train-supernet --data {data} --space nasrec-small "
         "--probe-rows -2 --output {out}", r"\(--probe-rows\): -2 must be at least 0"),
    Case("supernet-negative-lr", "train-supernet --data {data} --space nasrec-small "
         "--lr -1 --output {out}", r"\(--lr\): -1\.0 must be greater than 0"),
    Case("supernet-resume-other-settings", "train-supernet --data {data} --space nasrec-small "
         "--output {supernet} --max-steps 2 {RUN} --resume --lr 0.1 --no-layer-norm",
         r"--resume with other settings than the run's: learning_rate \(--lr\): 0\.04 -> "
         r"0\.1; model\.layer_norm: True -> False"),
    # --- search
    Case("search-supernet-missing", "search --supernet {root}/none --output {out}",
         r"none/config\.json: not found: is '.*none' a train-supernet run directory"),
    Case("search-supernet-is-a-model", "search --supernet {model} --output {out}",
         r"model/config\.json: field 'model\.kind': 'baseline' is not a supernet"),
    Case("search-crafted-checkpoint", "search --supernet {supernet_crafted} --output {out} "
         "--no-progress", r"supernet_crafted/checkpoints/step_000000002/\.metadata: refused: "
         r"it asks for 'posix\.system'"),
    Case("search-random-needs-budget", "search --supernet {supernet} --output {out} "
         "--method random", r"--method random needs --budget N"),
    Case("search-finetune-lr", "search --supernet {supernet} --output {out} "
         "--finetune-lr 0", r"\(--finetune-lr\): 0\.0 must be greater than 0"),
    Case("search-unknown-split", "search --supernet {supernet} --output {out} --eval-split "
         "dev --method random --budget 1", r"data/dev: no Parquet shards"),
    Case("search-other-vocabularies", "search --supernet {supernet} --data {other} "
         "--output {out} --method random --budget 1",
         r"checkpoint does not match the model: model\..*weight: \[\d+, 16\] in the "
         r"checkpoint, \[\d+, 16\] here"),
    Case("search-earlier-search", "search --supernet {supernet} --output {search_earlier}",
         r"search_earlier: holds an earlier search; continue it with --resume"),
    Case("search-resume-other-settings", "search --supernet {supernet} "
         "--output {search_resume} --finetune-steps 4 --resume",
         r"search_run\.json: --resume with other settings than the search's: finetune_steps "
         r"\(--finetune-steps\): 3 -> 4"),
    # --- rank-study
    Case("rank-study-too-few", "rank-study --supernet {supernet} --output {out} "
         "--num-subnets 2", r"\(--num-subnets\): 2 must be at least 3"),
    Case("rank-study-batch-size", "rank-study --supernet {supernet} --output {out} "
         "--train-batch-size 0", r"\(--train-batch-size\): 0 must be at least 1"),
    Case("rank-study-lr", "rank-study --supernet {supernet} --output {out} --train-lr -1",
         r"\(--train-lr\): -1\.0 must be greater than 0"),
    Case("rank-study-scratch-config-missing", "rank-study --supernet {supernet} --output {out} "
         "--scratch-config {root}/none.json", r"none\.json: not found"),
    Case("rank-study-scratch-config-unknown", "rank-study --supernet {supernet} --output {out} "
         "--scratch-config {config_unknown}", r"unknown\.json: unknown field 'learning_rte'"),
    Case("rank-study-scratch-config-choice", "rank-study --supernet {supernet} --output {out} "
         "--scratch-config {recipe_bad_optimizer}",
         r"recipe_sgd\.json: field 'optimizer': 'sgd' is not one of adagrad, adam"),
    Case("rank-study-scratch-config-decay", "rank-study --supernet {supernet} --output {out} "
         "--scratch-config {recipe_decay_adagrad}",
         r"recipe_decay\.json: field 'embedding_weight_decay': 0\.05 needs optimizer 'adam'"),
    Case("rank-study-scratch-config-and-budget", "rank-study --supernet {supernet} --output "
         "{out} --scratch-config {recipe_decay_adagrad} --train-lr 0.1",
         r"--train-lr is the fixed budget's; with --scratch-config .*recipe_decay\.json"),
    Case("rank-study-scratch-dropout", "rank-study --supernet {supernet} --output {out} "
         "--scratch-dropout 1", r"\(--scratch-dropout\): 1\.0 must be less than 1"),
    Case("rank-study-crafted-checkpoint", "rank-study --supernet {supernet_crafted} "
         "--output {out}", r"\.metadata: refused: it asks for 'posix\.system'"),
    # --- retrain
    Case("retrain-search-missing", "retrain --search {root}/none --output {out}",
         r"none/candidates\.jsonl: not found: is '.*none' a `nasrec search` output"),
    Case("retrain-bad-candidate", "retrain --search {cands_bad_arch} --data {data} "
         "--output {out} --top-k 2 {RUN}",
         r"candidates\.jsonl:2: block 1: field 'dense_ops': 'warp' is not one of"),
    Case("retrain-candidates-not-json", "retrain --search {cands_bad_json} --data {data} "
         "--output {out} {RUN}", r"candidates\.jsonl:2: invalid JSON"),
    Case("retrain-top-k-0", "retrain --search {cands_bad_json} --data {data} --output {out} "
         "--top-k 0", r"\(--top-k\): 0 must be at least 1"),
    Case("retrain-select", "retrain --search {cands_bad_json} --data {data} --output {out} "
         "--select best", r"argument --select: invalid choice: 'best'"),
    # --- final
    Case("final-no-arch", "final --data {data} --output {out}",
         r"field 'arch' \(--arch\): is required"),
    Case("final-arch-reads-a-later-block", "final --data {data} --arch {arch_later_block} "
         "--output {out}", r"later_block\.json: block 3: field 'sparse_sources'"),
    Case("final-bars-without-val", "final --data {no_val} --arch {arch_ok} --output {out} "
         "--protocol bars {RUN}", r"no_val: the bars protocol needs a val split"),
    Case("final-nothing-to-report", "final --data {no_val} --arch {arch_ok} --output {out} "
         "{RUN}", r"no_val: neither a test nor a val split with rows"),
    Case("final-unknown-protocol", "final --data {data} --arch {arch_ok} --output {out} "
         "--protocol kaggle", r"argument --protocol: invalid choice: 'kaggle'"),
    Case("final-patience-0", "final --data {data} --arch {arch_ok} --output {out} "
         "--protocol bars --patience 0", r"\(--patience\): 0 must be at least 1"),
    Case("final-repeats-0", "final --data {data} --arch {arch_ok} --output {out} --repeats 0",
         r"field 'repeats' \(--repeats\): 0 must be at least 1"),
    # --- evaluate
    Case("evaluate-model-missing", "evaluate --model {root}/none", r"none/config\.json: not"),
    Case("evaluate-a-supernet", "evaluate --model {supernet}",
         r"supernet: a supernet run; score its subnets with `nasrec search`"),
    Case("evaluate-crafted-checkpoint", "evaluate --model {model_crafted}",
         r"model_crafted/checkpoints/step_000000002/\.metadata: refused: it asks for "
         r"'posix\.system', which is not a checkpoint metadata type"),
    Case("evaluate-truncated-metadata", "evaluate --model {model_truncated_metadata}",
         r"model_tm/checkpoints/step_000000002/\.metadata: truncated or corrupt checkpoint"),
    Case("evaluate-unknown-split", "evaluate --model {model} --split dev",
         r"data/dev: no Parquet shards"),
    Case("evaluate-other-vocabularies", "evaluate --model {model} --data {other}",
         r"other: feature 'C1' has \d+ table rows, the model \d+: prepare it with --schema-from"),
    Case("evaluate-other-vocabularies-data-gone", "evaluate --model {model_data_gone} "
         "--data {other}", r"checkpoint does not match the model: .*--schema-from"),
    Case("evaluate-data-gone", "evaluate --model {model_data_gone}",
         r"moved_away/schema\.json: not found"),
    Case("evaluate-batch-size-0", "evaluate --model {model} --batch-size 0",
         r"field 'batch_size' \(--batch-size\): 0 must be at least 1"),
    Case("evaluate-not-a-checkpoint", "evaluate --model {model} --checkpoint {data}",
         r"data/state\.json: not found: '.*data' is not a complete checkpoint"),
    # --- baselines
    Case("baselines-unknown-model", "baselines --data {data} --output {out} --models dlrm nope",
         r"field 'models' \(--models\): 'nope' is not one of autoint"),
    Case("baselines-bars-without-val", "baselines --data {no_val} --output {out} "
         "--protocol bars {RUN}", r"no_val: the bars protocol needs a val split"),
    Case("baselines-negative-lr", "baselines --data {data} --output {out} --lr -1",
         r"\(--lr\): -1\.0 must be greater than 0"),
    Case("baselines-repeats-0", "baselines --data {data} --output {out} --repeats 0",
         r"field 'repeats' \(--repeats\): 0 must be at least 1"),
    # --- predict
    Case("predict-binary-input", "predict --model {model} --format criteo --input {binary} "
         "--output {out}", r"blob\.bin:1: not UTF-8 text"),
    Case("predict-truncated-gzip", "predict --model {model} --format criteo "
         "--input {truncated_gz} --output {out}", r"day_0\.gz: cannot decompress"),
    Case("predict-crafted-checkpoint", "predict --model {model_crafted} --format criteo "
         "--input {raw} --output {out}", r"\.metadata: refused: it asks for 'posix\.system'"),
    Case("predict-a-supernet", "predict --model {supernet} --format criteo --input {raw} "
         "--output {out}", r"supernet: a supernet run"),
    Case("predict-input-missing", "predict --model {model} --format criteo "
         "--input {root}/none.txt --output {out}", r"none\.txt: input file not found"),
    # --- export
    Case("export-crafted-checkpoint", "export --model {model_crafted} --output {out}",
         r"\.metadata: refused: it asks for 'posix\.system'"),
    Case("export-a-supernet", "export --model {supernet} --output {out}",
         r"supernet: a supernet run"),
    Case("export-check-rows", "export --model {model} --output {out} --check-rows -1",
         r"\(--check-rows\): -1 must be at least 0"),
    Case("export-output-exists", "export --model {model} --output {data}",
         r"/data: output already exists \(pass --overwrite"),
    # --- pipeline
    Case("pipeline-config-missing", "pipeline --output {out} --config {root}/none.yaml",
         r"none\.yaml: not found"),
    Case("pipeline-config-broken", "pipeline --output {out} --config {experiment_broken}",
         r"broken\.yaml:\d+"),
    Case("pipeline-unknown-section", "pipeline --output {out} --synth criteo --rows 500 "
         "--set nothere.x=1", r"unknown field 'nothere'"),
    Case("pipeline-negative-steps", "pipeline --output {out} --synth criteo --rows 500 "
         "--set supernet.max_steps=-1", r"config: field 'supernet\.max_steps': -1 must be at "
         r"least 1"),
    Case("pipeline-negative-rows", "pipeline --output {out} --synth criteo --rows -5",
         r"field 'rows' \(--rows\): -5 must be at least 1"),
    Case("pipeline-no-data", "pipeline --output {out}", r"give --data \(a prepared dataset\)"),
    Case("pipeline-stop-after", "pipeline --output {out} --synth criteo --stop-after deploy",
         r"argument --stop-after: invalid choice: 'deploy'"),
    # --- bench (a group of benchmarks)
    Case("bench-no-benchmark", "bench", r"the following arguments are required: <benchmark>"),
    Case("bench-unknown-benchmark", "bench disks --output {out}",
         r"argument <benchmark>: invalid choice: 'disks'"),
    Case("bench-embeddings-no-output", "bench embeddings --total-rows 1e4",
         r"field 'output' \(--output\): is required"),
    Case("bench-embeddings-dim-0", "bench embeddings --output {out} --embedding-dim 0",
         r"field 'embedding_dim' \(--embedding-dim\): 0 must be at least 1"),
    Case("bench-embeddings-fractional-rows", "bench embeddings --output {out} --total-rows "
         "1e4 2.5e0", r"field 'total_rows' \(--total-rows\): 2\.5 is not a whole number"),
    Case("bench-embeddings-rows-not-a-number", "bench embeddings --output {out} --total-rows "
         "many", r"argument --total-rows: invalid float value: 'many'"),
    Case("bench-embeddings-two-sizes", "bench embeddings --output {out} --total-rows 1e6 "
         "--rows-per-table 1e4", r"give --total-rows or --rows-per-table, not both"),
    Case("bench-embeddings-too-few-rows", "bench embeddings --output {out} --total-rows 10 "
         "--num-tables 26", r"field 'total_rows' \(--total-rows\): 10 rows cannot fill "
         r"--num-tables 26 tables"),
    Case("bench-embeddings-unknown-sharding", "bench embeddings --output {out} "
         "--sharding-types table_wise diagonal",
         r"argument --sharding-types: invalid choice: 'diagonal'"),
    Case("bench-embeddings-pooling-0", "bench embeddings --output {out} --pooling-factor 0",
         r"\(--pooling-factor\): 0 must be at least 1"),
    Case("bench-embeddings-max-memory", "bench embeddings --output {out} --max-memory-gb 0",
         r"\(--max-memory-gb\): 0\.0 must be greater than 0"),
    Case("bench-embeddings-unknown-flag", "bench embeddings --output {out} --tables 3",
         r"unrecognized arguments: --tables 3"),
    # --- the command itself
    Case("unknown-command", "deploy --output {out}", r"argument <stage>: invalid choice"),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_world(str(tmp_path_factory.mktemp("world") / "w"))


def _snapshot(root: str) -> dict[str, tuple[int, int]]:
    """Every file under `root`: (size, modification time)."""
    found = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            status = os.stat(path)
            found[os.path.relpath(path, root)] = (status.st_size, status.st_mtime_ns)
    return found


def _command(argv: list[str]) -> str:
    """The command a line names in its errors: `bench embeddings` for a group's command."""
    from nasrec_torchrec.commands.bench import BENCHMARKS

    if argv[0] == "bench" and len(argv) > 1 and argv[1] in BENCHMARKS:
        return " ".join(argv[:2])
    return argv[0]


def test_the_table_is_large_and_every_command_is_in_it():
    assert len(CASES) >= 60 and len({case.id for case in CASES}) == len(CASES)
    assert set(COMMANDS) <= {case.command.split()[0] for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_bad_input_ends_in_one_clear_line_and_leaves_nothing(case, world, tmp_path, capsys):
    out = str(tmp_path / "out")
    argv = shlex.split(case.command.format(out=out, RUN=RUN, **world))
    before = _snapshot(world["root"])
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse
        code = exit_.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("nasrec")]
    assert code == 2, err
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith(f"nasrec {_command(argv)}: error: " if argv[0] in COMMANDS
                               else "nasrec: error: "), lines[0]
    assert re.search(case.message, lines[0]), lines[0]
    assert _snapshot(world["root"]) == before  # no file of the world written or changed
    assert not os.path.exists(world["payload"])  # nothing a checkpoint holds ran
    leftovers = [name for name in os.listdir(tmp_path) if name.lstrip(".").startswith("out")]
    if case.leaves_run:
        assert sorted(os.listdir(out)) == ["config.json", "metrics.jsonl"]
    else:
        assert leftovers == [], leftovers
