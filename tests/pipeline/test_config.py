"""Experiment configs: every spec file loads and validates; overrides; located errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.pipeline.config import ExperimentConfig, load_experiment

SPECS = Path(__file__).resolve().parents[2] / "specs" / "experiments"
SPEC_FILES = sorted(SPECS.glob("*.yaml"))


def test_there_is_a_spec_per_dataset_and_space_plus_frappe_and_demo() -> None:
    names = {path.stem for path in SPEC_FILES}
    expected = {f"{data}-nasrec-{space}" for data in ("criteo", "avazu", "kdd", "frappe")
                for space in ("small", "full")} | {"demo"}
    assert expected <= names


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.stem)
def test_every_spec_file_loads_and_validates(path: Path) -> None:
    config = load_experiment(str(path))
    assert isinstance(config, ExperimentConfig)
    assert config.supernet.space in ("nasrec-small", "nasrec-full", "nasrec-small-plus")
    if path.stem.split("-")[0] in ("criteo", "avazu", "kdd"):
        # the paper's hyper-parameters
        assert (config.supernet.epochs, config.supernet.batch_size, config.supernet.lr,
                config.supernet.embedding_cap, config.supernet.path_warmup,
                config.supernet.strategy) == (1, 256, 0.04, 500_000, 0.25, "single_op_any_conn")
        assert (config.search.method, config.search.population, config.search.generations,
                config.search.sample_size, config.search.children,
                config.search.finetune_steps) == ("evolution", 64, 100, 32, 16, 500)
        assert config.retrain.top_k == 15
        assert (config.final.protocol, config.final.embedding_cap) == ("paper", None)
    if path.stem.startswith("frappe"):
        assert config.final.protocol == "bars"
        assert config.prepare.format == "csv" and config.prepare.split == "given"
        held_out = path.stem == "frappe-heldout"  # val carved from train.csv, valid.csv: test
        assert [item.split("=")[0] for item in config.prepare.inputs] == (
            ["train", "test"] if held_out else ["train", "val"])
        assert config.prepare.val_from_train == ("1/9" if held_out else None)
    if path.stem == "demo":
        assert config.prepare.synth == "criteo"


def test_frappe_heldout_is_frappe_small_but_for_its_prepare_section() -> None:
    """frappe-heldout.yaml keeps in step with frappe-nasrec-small.yaml: only the data
    differ (train.csv split 8:1 into train and val, valid.csv the test split)."""
    held_out = load_experiment(str(SPECS / "frappe-heldout.yaml")).to_dict()
    small = load_experiment(str(SPECS / "frappe-nasrec-small.yaml")).to_dict()
    for key in ("prepare", "name", "description"):
        held_out.pop(key), small.pop(key)
    assert held_out == small
    prepare = load_experiment(str(SPECS / "frappe-heldout.yaml")).prepare
    files = [item.split("=", 1)[1] for item in prepare.inputs]
    assert [Path(file).name for file in files] == ["train.csv", "valid.csv"]
    assert (prepare.val_from_train, prepare.split) == ("1/9", "given")


def test_val_from_train_faults_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "heldout.yaml"
    for prepare, message in (
            ("split: given\n  val_from_train: 1/9\n  inputs: [train=a.csv, val=b.csv]",
             "a val input is given too"),
            ("split: given\n  val_from_train: '11.11'\n  inputs: [train=a.csv, test=b.csv]",
             "must lie strictly between 0 and 1"),
            ("val_from_train: 0.1\n  inputs: [a.csv]", "use it with --split given")):
        path.write_text(f"prepare:\n  format: csv\n  {prepare}\n")
        with pytest.raises(NASRecError, match=f"heldout.yaml: field 'prepare.val_from_train': "
                                              f"--val-from-train: .*{message}"):
            load_experiment(str(path))
    path.write_text("prepare:\n  synth: criteo\n  val_from_train: 0.1\n")
    with pytest.raises(NASRecError, match="'prepare.val_from_train': applies to raw inputs"):
        load_experiment(str(path))
    path.write_text("prepare:\n  format: csv\n  split: given\n  val_from_train: 0.1\n"
                    "  inputs: [train=a.csv, test=b.csv]\n")
    assert load_experiment(str(path)).prepare.val_from_train == "0.1"  # a YAML number


def test_overrides_replace_fields_and_parse_values_as_yaml() -> None:
    config = load_experiment(str(SPECS / "demo.yaml"),
                             ["supernet.max_steps=7", "search.eval_rows=null", "final.lr=0.1"])
    assert config.supernet.max_steps == 7
    assert config.search.eval_rows is None
    assert config.final.lr == 0.1


def test_unknown_field_and_bad_type_name_the_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("supernet:\n  spcae: nasrec-small\n")
    with pytest.raises(NASRecError, match=r"bad.yaml: unknown field 'supernet.spcae'"):
        load_experiment(str(path))
    path.write_text("retrain:\n  top_k: many\n")
    with pytest.raises(NASRecError, match=r"bad.yaml: field 'retrain.top_k': expected int"):
        load_experiment(str(path))
    path.write_text("final:\n  protocol: fastest\n")
    with pytest.raises(NASRecError, match=r"field 'final.protocol'"):
        load_experiment(str(path))
    with pytest.raises(NASRecError, match=r"--set 'oops'"):
        load_experiment(None, ["oops"])


def test_retrain_args_reach_the_retrain_stage_with_early_stopping(tmp_path: Path) -> None:
    """The retrain section's `args` take the final recipe's early stopping and --select; the
    stage's command line repeats them."""
    from nasrec_torchrec.pipeline.stages import plan_stages

    config = load_experiment(str(SPECS / "demo.yaml"), [
        "retrain.args=[--patience, '2', --monitor, log_loss, --lr-plateau-factor, '0.1', "
        "--select, auc, --epochs, '5']", "baselines.models=[]"])  # (baselines need torch)
    stages = {stage.name: stage for stage in plan_stages(config, str(tmp_path), None)}
    retrain = stages["retrain"].run
    assert (retrain.train.patience, retrain.train.monitor, retrain.train.lr_plateau_factor,
            retrain.train.epochs, retrain.select) == (2, "log_loss", 0.1, 5, "auc")
    command = stages["retrain"].command_line()
    for flag in ("--patience 2", "--monitor log_loss", "--lr-plateau-factor 0.1",
                 "--select auc", "--epochs 5"):
        assert flag in command


def test_final_repeats_must_be_at_least_one_and_names_the_field(tmp_path: Path) -> None:
    assert load_experiment(None).final.repeats == 1
    assert load_experiment(None, ["final.repeats=3"]).final.repeats == 3
    path = tmp_path / "repeats.yaml"
    path.write_text("final:\n  repeats: 0\n")
    with pytest.raises(NASRecError, match=r"repeats.yaml: field 'final.repeats': 0 must be at "
                                          r"least 1"):
        load_experiment(str(path))
    with pytest.raises(NASRecError, match=r"field 'final.repeats': expected int"):
        load_experiment(None, ["final.repeats=two"])


@pytest.mark.parametrize("setting", ["final.repeats=3", "final.args=[--repeats, '3']"])
def test_the_baselines_are_trained_with_the_final_stages_repeats(setting: str,
                                                                tmp_path: Path) -> None:
    pytest.importorskip("torch")  # the baselines' registry
    from nasrec_torchrec.pipeline.stages import plan_stages

    config = load_experiment(str(SPECS / "demo.yaml"), [setting, "baselines.models=[dlrm]"])
    stages = {stage.name: stage for stage in plan_stages(config, str(tmp_path), None)}
    assert stages["final"].run.repeats == stages["baselines"].run.repeats == 3
    assert "--repeats 3" in stages["final"].command_line()
    assert "--repeats 3" in stages["baselines"].command_line()


def test_the_baselines_spread_over_the_ranks_as_the_final_stage_does(tmp_path: Path) -> None:
    pytest.importorskip("torch")  # the baselines' registry
    from nasrec_torchrec.pipeline.stages import plan_stages

    assert load_experiment(None).final.spread is False
    config = load_experiment(str(SPECS / "demo.yaml"), ["final.spread=true",
                                                        "baselines.models=[dlrm]"])
    stages = {stage.name: stage for stage in plan_stages(config, str(tmp_path), None)}
    assert stages["final"].run.spread and stages["baselines"].run.spread
    assert "--spread" in stages["final"].command_line()
    assert "--spread" in stages["baselines"].command_line()
