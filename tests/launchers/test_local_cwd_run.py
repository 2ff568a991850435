"""A real `torchx run -s local_cwd` of the train_supernet component: two gloo ranks under
torchrun train a few supernet steps on tiny synthetic data and leave checkpoints, metrics and
results in an output directory whose name is hostile to shells and to TorchX macros."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

from launcher_cases import COMPONENTS_FILE

OUTPUT_NAME = "run; $(touch pwned) 'q' \"d\" ${app_id} $HOME"


def test_local_cwd_train_supernet_on_two_ranks_writes_checkpoints_metrics_and_results(
    synthetic_criteo: str, tmp_path: Path,
) -> None:
    output = tmp_path / OUTPUT_NAME
    bin_dir = str(Path(sys.executable).parent)  # torchx and torchrun of this environment
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [os.path.join(bin_dir, "torchx"), "run", "-s", "local_cwd",
         "-cfg", f"log_dir={tmp_path / 'torchx_logs'}",
         f"{COMPONENTS_FILE}:train_supernet", "--data", synthetic_criteo, "--output", str(output),
         "--", "--space", "nasrec-small", "--max-steps", "4", "--batch-size", "128",
         "--checkpoint-every", "2", "--log-every", "1", "--no-progress"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert "SUCCEEDED" in result.stdout + result.stderr

    checkpoints = output / "checkpoints"
    assert sorted(path.name for path in checkpoints.iterdir()) == [
        "step_000000002", "step_000000004"]
    for checkpoint in checkpoints.iterdir():
        shards = sorted(path.name for path in checkpoint.glob("*.distcp"))
        assert len(shards) == 2, f"{checkpoint}: {shards} (one shard file per rank)"

    results = json.loads((output / "results.json").read_text())
    assert results["steps"] == 4 and results["world_size"] == 2
    assert math.isfinite(results["val"]["log_loss"]) and 0.0 <= results["val"]["auc"] <= 1.0
    assert results["config"]["output"] == str(output)  # the hostile name arrived intact
    assert results["config"]["resume"] is True  # the component asks for --resume
    assert results["config"]["model"]["space"]["name"] == "nasrec-small"  # passed-through args
    config = json.loads((output / "config.json").read_text())
    assert config["world_size"] == 2 and config["backend"] == "gloo"

    steps = [json.loads(line)["step"]
             for line in (output / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]
    assert not list(tmp_path.glob("pwned*")), "a command substitution ran"
