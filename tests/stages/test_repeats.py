"""The `repeats` section of a final run trained with several seeds (pure Python)."""

from __future__ import annotations

from nasrec_torchrec.stages.repeats import (seed_record, seeds_recorded, summary_lines,
                                            with_repeats)


def _run(val_auc: float, test_auc: float, best_epoch: int, seconds: float) -> dict:
    return {"final": True, "metrics": {"val": {"auc": val_auc, "log_loss": 0.2, "rows": 9},
                                       "test": {"auc": test_auc, "log_loss": 0.3, "rows": 9}},
            "selection": {"best_epoch": best_epoch},
            "timing": {"train_seconds": seconds - 1.0, "total_seconds": seconds},
            "command": "nasrec final"}


def test_the_section_holds_every_seed_and_the_mean_and_sample_std_per_split():
    runs = [_run(0.90, 0.80, 3, 10.0), _run(0.92, 0.83, 5, 20.0), _run(0.94, 0.86, 4, 30.0)]
    records = [seed_record(run, 7 + index, "." if index == 0 else f"repeat_{index}")
               for index, run in enumerate(runs)]
    results = with_repeats(runs[0], records)
    section = results["repeats"]
    assert section["seeds"] == [7, 8, 9]
    assert section["runs"][1] == {"seed": 8, "output": "repeat_1",
                                  "metrics": {"val": {"auc": 0.92, "log_loss": 0.2},
                                              "test": {"auc": 0.83, "log_loss": 0.3}},
                                  "best_epoch": 5, "train_seconds": 19.0, "total_seconds": 20.0}
    assert abs(section["mean"]["val"]["auc"] - 0.92) < 1e-12
    assert abs(section["std"]["val"]["auc"] - 0.02) < 1e-12  # sqrt((0.02² + 0.02²) / 2)
    assert abs(section["mean"]["test"]["auc"] - 0.83) < 1e-12
    assert abs(section["std"]["test"]["auc"] - 0.03) < 1e-12
    assert section["std"]["val"]["log_loss"] == 0.0
    # the first seed's metrics stay; the repeats' whole time is added to timing
    assert results["metrics"] == runs[0]["metrics"] and results["command"] == "nasrec final"
    assert results["timing"] == {"train_seconds": 9.0, "total_seconds": 10.0,
                                 "repeats_seconds": 50.0}
    assert seeds_recorded(results) == 3 and seeds_recorded(runs[0]) == 1
    assert summary_lines(results)[0] == ("val over seeds 7, 8, 9: AUC 0.92000 ± 0.02000, "
                                         "log loss 0.20000 ± 0.00000")
    # one seed: the results of a run without repeats, as they were
    assert with_repeats(results, records[:1]) == runs[0]
    assert summary_lines(runs[0]) == []
