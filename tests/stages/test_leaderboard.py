"""The leaderboard's rows, order and verdict, against hand-computed values (pure Python)."""

from __future__ import annotations

from nasrec_torchrec.stages.leaderboard import (FOUND, leaderboard, leaderboard_table,
                                                own_settings, verdict_line)


def _results(auc: float, log_loss: float, split: str = "val", params: int = 10) -> dict:
    return {"report_split": split, "metrics": {split: {"auc": auc, "log_loss": log_loss}},
            "cost": {"params": params, "dense_params": params - 4, "mflops": 0.25},
            "timing": {"train_seconds": 12.0}}


def test_rows_are_sorted_by_auc_and_the_verdict_is_the_margin_to_the_best_baseline():
    board = leaderboard(_results(0.9855, 0.150), {"dlrm": _results(0.9849, 0.140),
                                                  "deepfm": _results(0.9861, 0.145)})
    assert [row["model"] for row in board["rows"]] == ["deepfm", FOUND, "dlrm"]
    verdict = board["verdict"]
    assert verdict["best_baseline"] == "deepfm" and not verdict["found_wins"]
    assert abs(verdict["auc_margin"] - (0.9855 - 0.9861)) < 1e-12
    assert abs(verdict["log_loss_margin"] - (0.145 - 0.150)) < 1e-12
    assert verdict_line(board) == ("the found model trails the best baseline (deepfm) on val "
                                   "by 0.00060 AUC and is higher in log loss by 0.00500")
    table = leaderboard_table(board)
    assert table[0] == "| model | val AUC | val log loss | params | MFLOPs/sample | train time |"
    assert table[3] == f"| **{FOUND}** | 0.98550 | 0.15000 | 10 | 0.250 | 12 s |"


def test_a_found_model_that_wins_and_no_baselines():
    board = leaderboard(_results(0.99, 0.1, "test"), {"dlrm": _results(0.98, 0.2, "test")})
    assert board["split"] == "test" and board["verdict"]["found_wins"]
    assert verdict_line(board).startswith("the found model beats the best baseline (dlrm) on "
                                          "test by 0.01000 AUC and is lower in log loss")
    alone = leaderboard(_results(0.99, 0.1), {})
    assert alone["verdict"] is None and verdict_line(alone) == "no baseline to compare with"


def test_with_a_held_out_test_split_the_rows_and_the_verdict_follow_test_not_val():
    def bars(val_auc: float, test_auc: float, test_log_loss: float) -> dict:
        return {"report_split": "test", "metrics": {
            "val": {"auc": val_auc, "log_loss": 0.3},
            "test": {"auc": test_auc, "log_loss": test_log_loss}}}

    # the found model is first on val (where it was selected) but second on test
    board = leaderboard(bars(0.97, 0.95, 0.40), {"dlrm": bars(0.96, 0.96, 0.38),
                                                 "dcnv2": bars(0.95, 0.94, 0.41)})
    assert board["split"] == "test"
    assert [row["model"] for row in board["rows"]] == ["dlrm", FOUND, "dcnv2"]
    verdict = board["verdict"]
    assert (verdict["split"], verdict["best_baseline"], verdict["found_wins"]) == (
        "test", "dlrm", False)
    assert abs(verdict["auc_margin"] - (0.95 - 0.96)) < 1e-12
    assert verdict_line(board) == ("the found model trails the best baseline (dlrm) on test "
                                   "by 0.01000 AUC and is higher in log loss by 0.02000")
    table = leaderboard_table(board)
    assert table[0].startswith("| model | val AUC | val log loss | test AUC | test log loss |")
    assert table[3] == f"| **{FOUND}** | 0.97000 | 0.30000 | 0.95000 | 0.40000 | - | - | - |"


def test_own_settings_are_the_options_and_the_recipe_fields_that_differ():
    found = {"config": {"optimizer": "adam", "embedding_weight_decay": 0.05, "output": "f",
                        "model": {"kind": "architecture"}, "threads": 1}}
    baseline = {"config": {"optimizer": "adam", "embedding_weight_decay": 0.1, "output": "b",
                           "model": {"kind": "baseline", "baseline_options": ["dropout=0.2"]},
                           "threads": 2}}
    assert own_settings(baseline, found) == ["dropout=0.2", "embedding_weight_decay=0.1"]
    assert own_settings(found, found) == []
