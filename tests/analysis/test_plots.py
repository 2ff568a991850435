"""Plots write PNGs, also with non-finite losses or an empty front."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("matplotlib")

from nasrec_torchrec.analysis.plots import (  # noqa: E402
    plot_embedding_benchmark, plot_loss_cdf, plot_pareto, plot_rank_correlation,
    plot_search_progress)


def test_plots_write_png_files(tmp_path):
    history = [{"generation": g, "best_loss": 0.5 - g / 100, "generation_best_loss": 0.5}
               for g in range(4)]
    paths = [
        plot_search_progress(history, str(tmp_path / "progress.png")),
        plot_loss_cdf({"evolution": [0.5, 0.45, math.inf], "random": [0.6, math.nan]},
                      str(tmp_path / "cdf.png")),
        plot_pareto([1.0, 2.0], [0.5, 0.4], [], str(tmp_path / "pareto.png"), max_mflops=1.5),
        plot_rank_correlation([0.5, 0.4, 0.45], [0.44, 0.43, 0.435], str(tmp_path / "rank.png"),
                              0.9, 0.33),
        plot_embedding_benchmark({"FBGEMM kernel (1 process)": [(1e7, 5e4, 1.7, 1.2),
                                                                (1e6, 9e4, 0.5, 0.1)],
                                  "row_wise (2 ranks)": [(1e6, 6e4, 0.5, 0.06)]},
                                 str(tmp_path / "embeddings.png")),
    ]
    for path in paths:
        with open(path, "rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
