"""Figures of a search, a ranking study and the embedding benchmark (matplotlib, Agg
backend: no display needed).

Each function writes one PNG and returns its path.
"""

from __future__ import annotations

import math
from typing import Mapping, Optional, Sequence


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _finite(values: Sequence[Optional[float]]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def plot_search_progress(history: Sequence[Mapping], path: str,
                         title: str = "Search progress") -> str:
    """Best validation loss so far, and the best of each generation, per generation.

    Args:
        history: the search's `history` (dicts with generation, best_loss,
            generation_best_loss, evaluations).
        path: the PNG to write.
    """
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 4))
    generations = [h["generation"] for h in history]
    axis.plot(generations, [h.get("best_loss") for h in history], marker="o", markersize=3,
              label="best so far")
    axis.plot(generations, [h.get("generation_best_loss") for h in history], linestyle="",
              marker=".", alpha=0.6, label="best of the generation")
    axis.set_xlabel("generation")
    from matplotlib.ticker import MaxNLocator

    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_ylabel("validation log loss")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def plot_loss_cdf(series: Mapping[str, Sequence[float]], path: str,
                  title: str = "CDF of candidate losses") -> str:
    """Empirical CDF of the candidates' validation losses, one curve per series (paper Fig. 5).

    Args:
        series: name -> losses (e.g. {"evolution": [...], "random": [...]}).
        path: the PNG to write.
    """
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 4))
    for name, losses in series.items():
        values = sorted(_finite(losses))
        if not values:
            continue
        fractions = [(i + 1) / len(values) for i in range(len(values))]
        axis.step(values, fractions, where="post", label=f"{name} ({len(values)})")
    axis.set_xlabel("validation log loss")
    axis.set_ylabel("fraction of candidates")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def plot_pareto(mflops: Sequence[float], losses: Sequence[float], front: Sequence[int],
                path: str, max_mflops: Optional[float] = None,
                title: str = "Loss vs FLOPs") -> str:
    """Every candidate's (MFLOPs, loss), the Pareto front joined, the FLOPs limit dashed.

    Args:
        mflops, losses: per candidate.
        front: indices of the Pareto front (by increasing MFLOPs).
        path: the PNG to write.
        max_mflops: the search's FLOPs limit, if any.
    """
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.scatter(mflops, losses, s=10, alpha=0.5, label="candidates")
    if front:
        axis.plot([mflops[i] for i in front], [losses[i] for i in front], color="C3",
                  marker="o", markersize=4, label="Pareto front")
    if max_mflops is not None:
        axis.axvline(max_mflops, color="gray", linestyle="--", label="FLOPs limit")
    axis.set_xlabel("MFLOPs per sample (fvcore, 1 per multiply-add)")
    axis.set_ylabel("validation log loss")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def plot_rank_correlation(supernet_losses: Sequence[float], scratch_losses: Sequence[float],
                          path: str, pearson: Optional[float] = None,
                          kendall: Optional[float] = None,
                          xlabel: str = "log loss scored from the supernet",
                          ylabel: str = "log loss trained from scratch",
                          title: str = "Ranking study") -> str:
    """Scatter of supernet-scored vs from-scratch losses (paper Fig. 3)."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(5, 5))
    axis.scatter(supernet_losses, scratch_losses, s=14)
    parts = [title]
    if pearson is not None and kendall is not None:
        parts.append(f"Pearson {pearson:.3f}, Kendall τ {kendall:.3f}")
    axis.set_title("\n".join(parts))
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def plot_embedding_benchmark(series: Mapping[str, Sequence[tuple[float, float, float, float]]],
                             path: str, title: str = "Embedding tables") -> str:
    """Samples/s (left) and memory per rank (right) against the total table rows, log scales.

    Args:
        series: path name -> (total rows, samples/s, peak RSS GB per rank, tables GB per
            rank) per measured size; memory: solid the peak RSS, dashed the tables' weights
            and optimizer state, in the path's colour.
        path: the PNG to write.
    """
    plt = _pyplot()
    figure, (speed, memory) = plt.subplots(1, 2, figsize=(11, 4.2))
    for index, (name, points) in enumerate(series.items()):
        points = sorted(points)
        rows = [point[0] for point in points]
        color = f"C{index % 10}"
        speed.plot(rows, [point[1] for point in points], marker="o", color=color, label=name)
        memory.plot(rows, [point[2] for point in points], marker="o", color=color,
                    label=f"{name}: peak RSS")
        memory.plot(rows, [point[3] for point in points], marker=".", linestyle="--",
                    color=color, label=f"{name}: tables")
    for axis, ylabel in ((speed, "samples/s (forward + backward + update)"),
                         (memory, "GB per rank (largest rank)")):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("total table rows")
        axis.set_ylabel(ylabel)
        axis.grid(alpha=0.3, which="both")
    speed.legend(fontsize=8)
    memory.legend(fontsize=7)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
