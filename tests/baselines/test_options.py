"""Baseline options: KEY=VALUE strings typed by the model's dataclass; errors name the option."""

from __future__ import annotations

import pytest

from nasrec_torchrec.baselines import BASELINES, baseline_entry, get_baseline
from nasrec_torchrec.baselines.deepfm import DeepFMOptions
from nasrec_torchrec.baselines.options import options_dict, parse_key_values, resolve_options
from nasrec_torchrec.baselines.xdeepfm import XDeepFMOptions
from nasrec_torchrec.errors import NASRecError


def test_key_values_are_split_once_and_dashes_become_underscores() -> None:
    assert parse_key_values(["dropout=0.2", "layer-sizes=400-400", "interaction=dot"]) == {
        "dropout": "0.2", "layer_sizes": "400-400", "interaction": "dot"}
    with pytest.raises(NASRecError, match="KEY=VALUE"):
        parse_key_values(["dropout"])


def test_strings_are_typed_by_the_dataclass_fields() -> None:
    options = resolve_options(DeepFMOptions, {"dropout": "0.2", "batch_norm": "true",
                                              "layer_sizes": "400,200"}, model="deepfm")
    assert options == DeepFMOptions(layer_sizes=(400, 200), dropout=0.2, batch_norm=True)
    assert resolve_options(DeepFMOptions, {"layer_sizes": "none"}, "deepfm").layer_sizes == ()
    assert resolve_options(DeepFMOptions, {"layer_sizes": [64, 32]}, "deepfm").layer_sizes == (
        64, 32)
    assert options_dict(XDeepFMOptions())["cin_layer_sizes"] == [200, 200, 200]


@pytest.mark.parametrize("options, message", [
    ({"dropuot": "0.2"}, "option 'dropuot': unknown"),
    ({"dropout": "high"}, "option 'dropout': cannot read 'high'"),
    ({"batch_norm": "maybe"}, "option 'batch_norm'"),
    ({"dropout": "1.5"}, "'dropout': 1.5 is not in"),
    ({"layer_sizes": "400-0"}, "must be positive"),
])
def test_bad_options_raise_one_error_naming_the_model_and_option(options, message) -> None:
    with pytest.raises(NASRecError, match="--model deepfm") as error:
        get_baseline("deepfm", 0, 10, 12, **options)
    assert message in str(error.value)


def test_model_specific_values_are_checked() -> None:
    with pytest.raises(NASRecError, match="'interaction'"):
        get_baseline("dlrm", 0, 3, 4, interaction="outer")
    with pytest.raises(NASRecError, match="'structure'"):
        get_baseline("dcnv2", 0, 3, 4, structure="sideways")
    with pytest.raises(NASRecError, match="cin_layer_sizes"):
        get_baseline("xdeepfm", 0, 3, 4, cin_layer_sizes="none")
    with pytest.raises(NASRecError, match="num_heads"):
        get_baseline("autoint", 0, 3, 4, num_heads=0)


def test_names_are_case_insensitive_with_aliases_and_unknown_names_list_the_known() -> None:
    assert baseline_entry("AutoInt+").name == "autoint"
    assert baseline_entry("DCN-V2").name == "dcnv2"
    with pytest.raises(NASRecError, match="known: .*deepfm"):
        baseline_entry("wide_and_deep")


def test_every_baseline_builds_with_its_defaults() -> None:
    for name in BASELINES:
        assert get_baseline(name, 0, 2, 4) is not None
