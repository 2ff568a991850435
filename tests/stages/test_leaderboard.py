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


def _seeds(aucs: list[float], log_losses: list[float], split: str = "val") -> dict:
    """The results of a model trained with one seed per AUC (seeds 0, 1, ...): the first
    seed's metrics and the `repeats` section of them all."""
    from nasrec_torchrec.stages.repeats import seed_record, with_repeats

    runs = [_results(auc, log_loss, split) for auc, log_loss in zip(aucs, log_losses)]
    records = [seed_record(run, seed, f"repeat_{seed}") for seed, run in enumerate(runs)]
    return with_repeats(runs[0], records)


def test_models_of_several_seeds_are_sorted_and_judged_by_their_means():
    # seed 0 alone: the found model (0.9850) trails deepfm (0.9853); on the means it wins
    found = _seeds([0.9850, 0.9860, 0.9855], [0.150, 0.152, 0.148])
    deepfm = _seeds([0.9853, 0.9846, 0.9845], [0.151, 0.153, 0.155])
    board = leaderboard(found, {"deepfm": deepfm, "dlrm": _results(0.9840, 0.160)})
    assert [row["model"] for row in board["rows"]] == [FOUND, "deepfm", "dlrm"]
    mine, theirs, single = board["rows"]
    assert abs(mine["metrics"]["val"]["auc"] - 0.9855) < 1e-12
    assert abs(mine["std"]["val"]["auc"] - 0.0005) < 1e-12  # sample std: divides by n - 1
    assert abs(mine["std"]["val"]["log_loss"] - 0.002) < 1e-12
    assert abs(theirs["metrics"]["val"]["auc"] - 0.9848) < 1e-12
    assert abs(theirs["std"]["val"]["auc"] - 19e-8 ** 0.5) < 1e-12  # (25+4+9)e-8 / 2
    assert mine["seeds"] == theirs["seeds"] == 3 and "seeds" not in single
    verdict = board["verdict"]
    assert (verdict["best_baseline"], verdict["found_wins"], verdict["seeds"],
            verdict["baseline_seeds"]) == ("deepfm", True, 3, 3)
    assert abs(verdict["auc_margin"] - 0.0007) < 1e-12
    assert abs(verdict["log_loss_margin"] - 0.003) < 1e-12
    standard_error = ((25e-8 + 19e-8) / 3) ** 0.5  # sqrt(sd_f²/3 + sd_b²/3) = 0.00038297
    assert abs(verdict["auc_margin_standard_error"] - standard_error) < 1e-12
    assert verdict_line(board) == (
        "the found model beats the best baseline (deepfm) on val by 0.00070 AUC (mean of 3 "
        "seeds; standard error 0.00038) and is lower in log loss by 0.00300")
    table = leaderboard_table(board)
    assert table[2] == (f"| **{FOUND}** (3 seeds) | 0.98550 ± 0.00050 | 0.15000 ± 0.00200 | "
                        "10 | 0.250 | 12 s |")
    assert table[3].startswith("| deepfm (3 seeds) | 0.98480 ± 0.00044 | 0.15300 ± 0.00200 |")
    assert table[4] == "| dlrm | 0.98400 | 0.16000 | 10 | 0.250 | 12 s |"


def test_a_found_model_of_several_seeds_that_trails_and_a_best_baseline_of_one():
    found = _seeds([0.9850, 0.9844, 0.9847], [0.150, 0.150, 0.150])
    deepfm = _seeds([0.9853, 0.9846, 0.9845], [0.151, 0.153, 0.155])
    trailing = leaderboard(found, {"deepfm": deepfm})["verdict"]
    assert not trailing["found_wins"] and abs(trailing["auc_margin"] + 0.0001) < 1e-12
    assert abs(trailing["auc_margin_standard_error"] - ((9e-8 + 19e-8) / 3) ** 0.5) < 1e-12

    board = leaderboard(found, {"dlrm": _results(0.9849, 0.140), "deepfm": deepfm})
    verdict = board["verdict"]  # dlrm's one run (0.9849) beats deepfm's mean (0.9848)
    assert (verdict["best_baseline"], verdict["seeds"], verdict["baseline_seeds"],
            verdict["auc_margin_standard_error"]) == ("dlrm", 3, 1, None)
    assert verdict_line(board) == (
        "the found model trails the best baseline (dlrm) on val by 0.00020 AUC (the found "
        "model: mean of 3 seeds, dlrm: one seed; no standard error with one seed) and is "
        "higher in log loss by 0.01000")


def test_seeds_of_a_baseline_that_is_not_the_best_leave_the_verdict_as_it_was():
    board = leaderboard(_results(0.9855, 0.150), {
        "dlrm": _results(0.9849, 0.140), "deepfm": _seeds([0.9840, 0.9842], [0.15, 0.16])})
    assert board["verdict"] == {"split": "val", "best_baseline": "dlrm",
                                "auc_margin": board["verdict"]["auc_margin"],
                                "log_loss_margin": board["verdict"]["log_loss_margin"],
                                "found_wins": True}
    assert verdict_line(board).startswith("the found model beats the best baseline (dlrm) on "
                                          "val by 0.00060 AUC and")
    assert [sorted(row) for row in board["rows"][:2]] == [
        ["dense_params", "found", "metrics", "mflops", "model", "params", "train_seconds"],
        ["dense_params", "found", "metrics", "mflops", "model", "own_settings", "params",
         "train_seconds"]]
