"""`nasrec export`: a torch.export program of the whole model that a process without
nasrec_torchrec (nor TorchRec, nor FBGEMM) loads, scoring as `nasrec evaluate` does."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from nasrec_torchrec.data.loader import ParquetBatchLoader
from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.nn.serving import serving_inputs

from serving_helpers import evaluated_probabilities, run_command

pytestmark = pytest.mark.usefixtures("one_thread")

# Runs in a fresh interpreter where importing nasrec_torchrec, torchrec or fbgemm_gpu fails.
SERVE = '''
import json, sys

class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("nasrec_torchrec", "torchrec", "fbgemm_gpu"):
            raise ModuleNotFoundError(f"{name} is blocked", name=name)

sys.meta_path.insert(0, Blocked())
import torch

directory, inputs_file, output_file = sys.argv[1:]
manifest = json.load(open(f"{directory}/manifest.json"))
program = torch.export.load(f"{directory}/{manifest['program']}").module()
batches = torch.load(inputs_file)
names = [item["name"] for item in manifest["inputs"]]
scores = [program(*(batch[name] for name in names)) for batch in batches]
torch.save(torch.cat(scores), output_file)
assert not any(name.partition(".")[0] in ("nasrec_torchrec", "torchrec", "fbgemm_gpu")
               for name in sys.modules)
'''


def _export(model_dir: str, output: str, *extra: str) -> dict:
    assert run_command("export", ["--model", model_dir, "--output", output, "--threads", "1",
                                  *extra]) == 0
    with open(os.path.join(output, "manifest.json")) as handle:
        return json.load(handle)


def _serving_batches(data: str, split: str, sizes: list[int]) -> list[dict[str, torch.Tensor]]:
    """The split's rows (full-vocabulary ids) as the program's inputs, in batches of `sizes`."""
    rows = next(iter(ParquetBatchLoader(data, split, sum(sizes), embedding_cap=None)))
    dense, values, lengths = serving_inputs(rows.dense_features, rows.sparse_features)
    batches, begin = [], 0
    for size in sizes:
        part = slice(begin, begin + size)
        features = lengths.shape[0]
        per_feature = values.view(features, -1)  # one id per feature and row
        batches.append({"dense_features": dense[part],
                        "sparse_values": per_feature[:, part].reshape(-1),
                        "sparse_lengths": lengths[:, part]})
        begin += size
    return batches


def test_exported_program_scores_as_nasrec_evaluate_without_the_package(
        architecture_run, new_data, serving_root, tmp_path):
    output = str(tmp_path / "export")
    manifest = _export(architecture_run, output)
    assert [item["name"] for item in manifest["inputs"]] == \
        ["dense_features", "sparse_values", "sparse_lengths"]
    schema = json.load(open(os.path.join(serving_root, "data", "schema.json")))
    assert manifest["inputs"][0]["features"] == schema["dense"]
    names = [feature["name"] for feature in schema["sparse"]]
    assert manifest["inputs"][2]["features"] == names
    assert [feature["name"] for feature in manifest["sparse_features"]] == names
    for feature in manifest["sparse_features"]:
        with open(os.path.join(output, feature["vocabulary"]), "rb") as copied, \
                open(os.path.join(serving_root, "data", feature["vocabulary"]), "rb") as source:
            assert copied.read() == source.read()
    assert manifest["check"]["max_abs_difference"] <= 1e-6 and manifest["check"]["rows"] == 200

    inputs_file, scores_file = str(tmp_path / "inputs.pt"), str(tmp_path / "scores.pt")
    torch.save(_serving_batches(new_data, "test", [1, 7, 392]), inputs_file)
    env = {**os.environ, "PYTHONPATH": "", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", SERVE, output, inputs_file, scores_file],
                            cwd=str(tmp_path), env=env, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    probability = torch.load(scores_file).double().numpy()
    expected, _ = evaluated_probabilities(architecture_run, new_data, "test")
    assert probability.shape == (400,)
    np.testing.assert_allclose(probability, expected, rtol=0, atol=1e-6)

    with pytest.raises(NASRecError, match="--overwrite"):
        _export(architecture_run, output)


def test_fp16_tables_export_reports_their_error_against_fp32(baseline_run, tmp_path):
    output = str(tmp_path / "export")
    manifest = _export(baseline_run, output, "--precision", "fp16", "--check-rows", "150")
    assert manifest["precision"] == "fp16" and manifest["check"]["rows"] == 150
    assert 0 < manifest["check"]["max_abs_difference"] < 1e-2
    program = torch.export.load(os.path.join(output, "model.pt2"))
    assert program.state_dict["weight"].dtype == torch.float16
    check = manifest["check"]
    assert check["exported"]["log_loss"] == pytest.approx(check["model_fp32"]["log_loss"],
                                                          rel=1e-2)
