"""`--precision bf16`: the body's forward under bf16 autocast, fp32 weights; refused on a CPU
without bf16 instructions; recorded in config.json and fixed on resume."""

from __future__ import annotations

import argparse
import json
import random

import pytest
import torch

from nasrec_torchrec.analysis.host import cpu_has_bf16
from nasrec_torchrec.commands import train
from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.nn.elastic import SliceGradients, attach_slice_gradients
from nasrec_torchrec.nn.networks import Supernet
from nasrec_torchrec.nn.precision import body_autocast
from nasrec_torchrec.space import get_space, sample_architecture, sample_single_op_any_conn
from nasrec_torchrec.train import precision
from nasrec_torchrec.train.sliced_adagrad import SlicedAdagrad

needs_bf16 = pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no bf16 instructions")


def test_bf16_is_refused_on_a_cpu_without_bf16_instructions(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    with pytest.raises(NASRecError, match=r"runs/x: --precision bf16: this CPU has no bf16 "
                       r"matrix instructions \(none of avx512_bf16, amx_bf16"):
        precision.check_precision("bf16", torch.device("cpu"), "runs/x")
    precision.check_precision("fp32", torch.device("cpu"))
    precision.check_precision("bf16", torch.device("cuda"))  # a GPU takes it as is


@needs_bf16
def test_a_bf16_supernet_step_keeps_fp32_weights_and_slice_gradients():
    torch.manual_seed(0)
    space = get_space("nasrec-small")
    supernet = Supernet(space, 13, 26)
    store = SliceGradients()
    attach_slice_gradients(supernet, store)
    optimizer = SlicedAdagrad(supernet.parameters(), store, lr=0.05)
    path = sample_single_op_any_conn(space, random.Random(3))
    dense, sparse = torch.randn(64, 13), torch.randn(64, 26, 16)
    with torch.no_grad():
        reference = supernet(dense, sparse, path)
    with body_autocast("bf16", "cpu"):
        logits = supernet(dense, sparse, path)
    assert logits.dtype == torch.bfloat16
    torch.testing.assert_close(logits.float(), reference, atol=0.1, rtol=0.05)
    before = [p.detach().clone() for p in supernet.parameters()]
    logits.float().sum().backward()
    assert store.entries and all(grad.dtype == torch.float32 for *_, grad in store.entries)
    optimizer.step()
    assert all(p.dtype == torch.float32 for p in supernet.parameters())
    assert any(not torch.equal(p, q) for p, q in zip(supernet.parameters(), before))


@pytest.fixture(scope="module")
def tiny_criteo(tmp_path_factory) -> str:
    from nasrec_torchrec.data.synth import write_synthetic

    output = str(tmp_path_factory.mktemp("data") / "criteo")
    write_synthetic("criteo", 2000, output, seed=0, row_group_rows=1000)
    return output


def _train(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    train.add_arguments(parser)
    return train.run(parser.parse_args(argv))


@needs_bf16
def test_bf16_training_runs_close_to_fp32_and_is_fixed_on_resume(tiny_criteo, tmp_path):
    arch_file = tmp_path / "arch.json"
    arch_file.write_text(sample_architecture(get_space("nasrec-small"), random.Random(0))
                         .to_json())
    common = ["--data", tiny_criteo, "--arch", str(arch_file), "--max-steps", "6",
              "--batch-size", "128", "--eval-batch-size", "512", "--embedding-cap", "2000",
              "--lr", "0.005", "--embedding-lr", "0.005",
              "--log-every", "1", "--no-progress", "--threads", "1", "--device", "cpu"]
    losses = {}
    for name in ("fp32", "bf16"):
        output = tmp_path / name
        assert _train([*common, "--output", str(output), "--precision", name]) == 0
        config = json.loads((output / "config.json").read_text())["config"]
        assert config["precision"] == name
        losses[name] = [json.loads(line)["loss"]
                        for line in (output / "metrics.jsonl").read_text().splitlines()]
        results = json.loads((output / "results.json").read_text())
        assert 0.0 < results["val"]["auc"] < 1.0
    assert len(losses["bf16"]) == len(losses["fp32"]) == 6
    assert losses["bf16"] != losses["fp32"]  # bf16 products did run
    for bf16, fp32 in zip(losses["bf16"], losses["fp32"]):
        assert bf16 == pytest.approx(fp32, rel=0.03)
    with pytest.raises(NASRecError, match=r"--resume with other settings than the run's: "
                       r"precision \(--precision\): 'bf16' -> 'fp32'"):
        _train([*common, "--output", str(tmp_path / "bf16"), "--resume", "--precision", "fp32"])
