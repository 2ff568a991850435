"""A baseline's own options and settings beside the final recipe: parsed, typed, checked."""

from __future__ import annotations

import pytest

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.stages.baselines import BaselinesRun


def test_each_model_gets_its_own_options_and_typed_settings():
    run = BaselinesRun(models=["dlrm", "deepfm"],
                       model_option=["deepfm:dropout=0.2", "deepfm:batch_norm=true"],
                       model_setting=["dlrm:embedding_weight_decay=0.1", "dlrm:patience=3"])
    plans = run.plans("test")
    assert plans["deepfm"] == (["dropout=0.2", "batch_norm=true"], {})
    assert plans["dlrm"] == ([], {"embedding_weight_decay": 0.1, "patience": 3})
    assert isinstance(plans["dlrm"][1]["embedding_weight_decay"], float)


@pytest.mark.parametrize("change, message", [
    ({"model_option": ["deepfm=dropout"]}, r"field 'model_option': 'deepfm=dropout' is not "
                                           r"MODEL:KEY=VALUE"),
    ({"model_option": ["dcnv2:dropout=0.1"]}, r"'dcnv2' has options or settings but is not"),
    ({"model_setting": ["dlrm:output=x"]}, r"'output' is not a training setting"),
    ({"model_setting": ["dlrm:learning_rate=-1"]}, r"'learning_rate' \(--lr\): -1\.0 must be"),
    ({"model_setting": ["dlrm:epochs=many"]}, r"field 'epochs': expected int, got 'many'"),
    ({"models": ["dlrm", "nope"]}, r"'nope' is not one of"),
])
def test_a_bad_item_is_refused_naming_it(change, message):
    run = BaselinesRun(**{"models": ["dlrm", "deepfm"], **change})
    with pytest.raises(NASRecError, match=message):
        run.plans("test")
