"""Aggregate statistics over the targets (games or levels) of a study, the rliable way (Agarwal et al. 2021).

With several targets, per-target curves are hard to summarise by eye. Each run's final return is
normalised per target, then for every run label present on all targets:

* **IQM**: the interquartile mean of the normalised scores of all its runs and targets
  (``rliable.metrics.aggregate_iqm``), with the mean next to it;
* **probability of improvement** over scratch, ``P(X > Y)`` averaged over targets
  (``rliable.metrics.probability_of_improvement``, a Mann-Whitney statistic per target);
* **performance profile**: the fraction of runs whose normalised score exceeds ``tau``, for ``tau`` in
  [0, 1] (rliable's score distribution);

each with a 95% **stratified bootstrap** CI: runs are resampled with replacement within each target,
independently per label, ``n_boot`` times (seeded). Normalisation: ``(score - low) / (high - low)`` per
target, ``low`` the random policy's mean return when the study has it (else the worst run on that
target), ``high`` the best run on that target.

rliable's point statistics come from ``rliable.metrics`` (numpy/scipy only). Its bootstrap,
``rliable.library``, subclasses ``arch.bootstrap.IIDBootstrap`` and passes ``random_state``: rliable 1.2.0
requires ``arch<8``, whose last release (7.2) does not import under pandas 3, and arch 8 renamed the
argument to ``seed``. So the stratified bootstrap is done here in numpy (a few lines, seeded like every
other CI of the report) and ``arch`` is never imported; ``tests/test_analysis_aggregate.py`` checks both.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from .curves import atomic_write, curves_by_seed, order_conditions, select
from .stats import StatsConfig, common_grid, final_return, seeds_on_grid

#: Conditions that are not agents on a target (pre-training runs aggregated with the study).
_NOT_AGENTS = ("pretrain", "pretrain_agent")


def _rliable_metrics():
    from rliable import metrics  # numpy/scipy only; rliable.library would import arch

    return metrics


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean of a (runs, targets) matrix (rliable's ``aggregate_iqm``)."""
    return float(_rliable_metrics().aggregate_iqm(scores))


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """``P(X > Y)`` averaged over targets (rliable's ``probability_of_improvement``)."""
    return float(_rliable_metrics().probability_of_improvement(x, y))


def score_distribution(scores: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """Fraction of (run, target) scores above each ``tau`` (rliable's score distribution)."""
    return (np.asarray(scores, dtype=float)[..., None] > np.asarray(taus, dtype=float)).mean(axis=(0, 1))


def stratified_resample(scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One stratified bootstrap resample of a (runs, targets) matrix: runs drawn with replacement
    within each target (column), independently per column."""
    n, m = scores.shape
    idx = rng.integers(0, n, size=(n, m))
    return np.take_along_axis(scores, idx, axis=0)


def stratified_bootstrap_ci(samples: list[np.ndarray], statistic: Callable[..., np.ndarray | float],
                            n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> tuple:
    """Point value and percentile CI of ``statistic(*samples)``, each (runs, targets) matrix resampled
    stratified by target, independently of the others. Returns ``(point, low, high)`` (arrays when the
    statistic returns one)."""
    rng = np.random.default_rng(seed)
    point = np.asarray(statistic(*samples), dtype=float)
    boot = np.stack([np.asarray(statistic(*(stratified_resample(s, rng) for s in samples)), dtype=float)
                     for _ in range(n_boot)])
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(boot, [alpha, 1.0 - alpha], axis=0)
    return point, low, high


def normalised_scores(table: pd.DataFrame, cfg: StatsConfig, random_levels: dict[str, float] | None = None,
                      metric: str = "episode_return") -> tuple[dict[str, np.ndarray], list[str]]:
    """``({label: (seeds, targets)}, targets)``: normalised final returns of the labels shared by the
    compared targets (those with more than one label, when there are two or more such), for the seeds
    every target has; targets in sorted order (empty when fewer than two targets qualify)."""
    rows = select(table, metric=metric)
    rows = rows[~rows["condition"].isin(_NOT_AGENTS).to_numpy(dtype=bool)]
    # targets with something to compare (more than one label; a study's per-level baseline-only targets
    # drop out), then the labels they all share
    per_target = rows.groupby("target")["condition"].nunique()
    compared = per_target[per_target > 1]
    targets = sorted(compared.index if len(compared) >= 2 else per_target.index)
    rows = rows[rows["target"].isin(targets).to_numpy(dtype=bool)]
    finals: dict[tuple[str, str], dict[int, float]] = {}
    for target in targets:
        sub = select(rows, target=target)
        grid = common_grid(float(select(table, target=target)["env_step"].max()), cfg.grid_points)
        for label in sub["condition"].unique():
            curves = curves_by_seed(select(sub, condition=label))
            values = seeds_on_grid(list(curves.values()), grid, cfg.smooth_window)
            finals[(target, str(label))] = dict(zip(curves, final_return(grid, values, cfg.last_frac),
                                                    strict=True))
    labels = [c for c in order_conditions(rows["condition"].unique())
              if all((t, c) in finals for t in targets)]
    if len(targets) < 2 or not labels:
        return {}, targets
    bounds = {}
    for target in targets:
        every = np.array([v for (t, _), d in finals.items() if t == target for v in d.values()], dtype=float)
        low = (random_levels or {}).get(target, float(np.nanmin(every)))
        high = float(np.nanmax(every))
        bounds[target] = (low, max(high - low, 1e-12))
    out = {}
    for label in labels:
        seeds = sorted(set.intersection(*(set(finals[(t, label)]) for t in targets)))
        if len(seeds) < 2:
            continue
        out[label] = np.array([[(finals[(t, label)][s] - bounds[t][0]) / bounds[t][1] for t in targets]
                               for s in seeds])
    return out, targets


def aggregate(scores: dict[str, np.ndarray], cfg: StatsConfig, reference: str = "scratch",
              taus: np.ndarray | None = None) -> dict:
    """IQM, mean, probability of improvement over ``reference`` and performance profiles, with CIs."""
    taus = np.linspace(0.0, 1.0, 21) if taus is None else np.asarray(taus, dtype=float)
    boot = {"n_boot": cfg.n_boot, "level": cfg.ci_level}
    out: dict = {"taus": taus.tolist(), "labels": {}}
    for i, (label, s) in enumerate(scores.items()):
        entry = {"runs": int(s.shape[0]), "targets": int(s.shape[1])}
        for name, fn in (("iqm", iqm), ("mean", lambda x: float(np.mean(x)))):
            point, low, high = stratified_bootstrap_ci([s], fn, seed=cfg.seed + i, **boot)
            entry[name] = [float(point), float(low), float(high)]
        point, low, high = stratified_bootstrap_ci([s], lambda x: score_distribution(x, taus),
                                                   seed=cfg.seed + i, **boot)
        entry["profile"] = [point.tolist(), low.tolist(), high.tolist()]
        if reference in scores and label != reference:
            point, low, high = stratified_bootstrap_ci([s, scores[reference]], probability_of_improvement,
                                                       seed=cfg.seed + i, **boot)
            entry["p_improvement"] = [float(point), float(low), float(high)]
        out["labels"][label] = entry
    return out


def plot_aggregate(result: dict, palette: dict, targets: list[str]):
    """IQM with CIs, probability of improvement over scratch, performance profiles (rliable's three)."""
    import matplotlib
    import seaborn as sns

    from .figures import _STYLE, _new_figure

    labels = list(result["labels"])
    taus = np.asarray(result["taus"])
    with matplotlib.rc_context(_STYLE):
        fig, axes = _new_figure(1, 3, width=4.4, height=3.6)
        ax = axes[0, 0]
        for i, label in enumerate(labels):
            p, lo, hi = result["labels"][label]["iqm"]
            ax.errorbar(p, i, xerr=[[p - lo], [hi - p]], fmt="o", color=palette[label], capsize=4)
        ax.set_yticks(range(len(labels)), labels)
        ax.set_title("IQM of normalised final return")
        ax.set_xlabel("normalised score")
        ax = axes[0, 1]
        better = [lb for lb in labels if "p_improvement" in result["labels"][lb]]
        for i, label in enumerate(better):
            p, lo, hi = result["labels"][label]["p_improvement"]
            ax.errorbar(p, i, xerr=[[p - lo], [hi - p]], fmt="o", color=palette[label], capsize=4)
        ax.axvline(0.5, color="0.5", linestyle="--", linewidth=1)
        ax.set_yticks(range(len(better)), better)
        ax.set_xlim(0, 1)
        ax.set_title("P(label > scratch)")
        ax.set_xlabel("probability of improvement")
        ax = axes[0, 2]
        for label in labels:
            p, lo, hi = (np.asarray(v) for v in result["labels"][label]["profile"])
            ax.plot(taus, p, color=palette[label], label=label)
            ax.fill_between(taus, lo, hi, color=palette[label], alpha=0.2, linewidth=0)
        ax.set_title("performance profile")
        ax.set_xlabel("normalised score tau")
        ax.set_ylabel("fraction of runs > tau")
        ax.legend(fontsize="x-small")
        sns.despine(fig)
        fig.suptitle(f"Aggregate over {len(targets)} targets: {', '.join(targets)}", fontsize="small")
    return fig


def build_aggregate(table: pd.DataFrame, out_dir: str | Path, cfg: StatsConfig | None = None,
                    random_levels: dict[str, float] | None = None) -> dict | None:
    """Write ``aggregate.png/.svg`` and ``aggregate.json`` into ``out_dir``; None (nothing written) for
    a study with fewer than two targets or labels with fewer than two seeds on every target."""
    from .figures import condition_palette, save_figure

    cfg = cfg or StatsConfig()
    scores, targets = normalised_scores(table, cfg, random_levels)
    if not scores:
        return None
    result = aggregate(scores, cfg)
    result["targets"] = targets
    parts = []
    for label, entry in result["labels"].items():
        p, lo, hi = entry["iqm"]
        text = f"{label} IQM {p:.2f} [{lo:.2f}, {hi:.2f}]"
        if "p_improvement" in entry:
            q, qlo, qhi = entry["p_improvement"]
            text += f", P(> scratch) {q:.2f} [{qlo:.2f}, {qhi:.2f}]"
        parts.append(text)
    result["summary"] = (f"Aggregate over {len(targets)} targets (normalised final return, stratified "
                         f"bootstrap {cfg.ci_level:.0%} CIs): " + "; ".join(parts))
    fig = plot_aggregate(result, condition_palette(list(scores)), targets)
    out_dir = Path(out_dir)
    save_figure(fig, out_dir, "aggregate")
    text = json.dumps(result, indent=2) + "\n"
    atomic_write(out_dir / "aggregate.json", lambda p: Path(p).write_text(text))
    return result
