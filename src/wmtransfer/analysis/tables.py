"""The results table of a study: final return, AUC and steps-to-threshold speed-up vs scratch, with CIs.

One row per (target, return metric, condition). Every number is over seeds, with a percentile-bootstrap
CI (:mod:`wmtransfer.analysis.stats` gives the definitions). All conditions of one target share one
env-step grid from 0 to the largest env step logged on that target (the budget), so AUCs compare and a run
that stopped early shows it (NaN final return, smaller AUC). The threshold of steps-to-threshold is set
on scratch's mean curve (``threshold_frac`` of its rise); without a scratch run on a target, threshold,
steps and speed-up are NaN.

Nothing is printed from noise: the threshold is only used when scratch's rise (final minus first return,
per seed) has a CI above zero, and a speed-up is only printed when at least ``min_seeds`` seeds of both
groups reached the threshold and its CI excludes 1 (:func:`~wmtransfer.analysis.stats.ratio_verdict`);
otherwise the Markdown table says "inconclusive" and why. ``table.csv`` keeps the numbers next to
``speedup_verdict`` / ``speedup_reason`` for whoever wants to look at them anyway.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .curves import atomic_write, curves_by_seed, order_conditions, select
from .stats import (
    HOLDS,
    INCONCLUSIVE,
    StatsConfig,
    area_under_curve,
    common_grid,
    difference_ci,
    final_return,
    ratio_verdict,
    scalar_ci,
    seeds_on_grid,
    speedup_ci,
    steps_to_threshold,
    threshold_from_reference,
    verdict,
)

#: Return metrics a table is made for, when present in the study table.
TABLE_METRICS = ("episode_return", "eval_return")
REFERENCE = "scratch"


def study_table(table: pd.DataFrame, cfg: StatsConfig | None = None) -> pd.DataFrame:
    """The results table (one row per target, metric, condition) of a long study table."""
    cfg = cfg or StatsConfig()
    out = []
    for metric in TABLE_METRICS:
        rows_m = select(table, metric=metric)
        for target in sorted(rows_m["target"].unique()):
            rows_t = select(rows_m, target=target)
            grid = common_grid(float(select(table, target=target)["env_step"].max()), cfg.grid_points)
            per_cond = {}
            for cond in order_conditions(rows_t["condition"].unique()):
                curves = curves_by_seed(select(rows_t, condition=cond))
                if curves:
                    per_cond[cond] = seeds_on_grid(list(curves.values()), grid, cfg.smooth_window)
            threshold = float("nan")
            rise = None
            threshold_ok, threshold_reason = INCONCLUSIVE, "no scratch run on this target"
            if REFERENCE in per_cond:
                threshold = threshold_from_reference(grid, per_cond[REFERENCE], cfg.threshold_frac,
                                                     cfg.last_frac)
                rise = scratch_rise(grid, per_cond[REFERENCE], cfg)
                threshold_ok, threshold_reason = verdict(rise, +1, cfg.min_seeds)
                threshold_reason = f"scratch's rise: {threshold_reason}"
            ref_steps = (steps_to_threshold(grid, per_cond[REFERENCE], threshold)
                         if REFERENCE in per_cond else np.array([]))
            n_ref = int(np.sum(~np.isnan(ref_steps)))
            for i, (cond, values) in enumerate(per_cond.items()):
                boot = {"n_boot": cfg.n_boot, "level": cfg.ci_level, "seed": cfg.seed + i}
                fin = scalar_ci(final_return(grid, values, cfg.last_frac), **boot)
                auc = scalar_ci(area_under_curve(grid, values), **boot)
                steps = (steps_to_threshold(grid, values, threshold) if not math.isnan(threshold)
                         else np.full(values.shape[0], np.nan))
                st = scalar_ci(steps, **boot)
                sp = speedup_ci(ref_steps, steps, **boot)
                if cond == REFERENCE:
                    sp_verdict, sp_reason = "reference", "the reference itself"
                elif threshold_ok != HOLDS:
                    sp_verdict, sp_reason = INCONCLUSIVE, threshold_reason
                else:
                    sp_verdict, sp_reason = ratio_verdict(sp, n_ref, cfg.min_seeds)
                out.append({
                    "study": str(rows_t["study"].iloc[0]), "target": target, "metric": metric,
                    "condition": cond, "n_seeds": values.shape[0], "budget_env_steps": float(grid[-1]),
                    "final_return": fin.mean, "final_return_low": fin.low, "final_return_high": fin.high,
                    "auc": auc.mean, "auc_low": auc.low, "auc_high": auc.high,
                    "threshold": threshold, "steps_to_threshold": st.mean, "steps_low": st.low,
                    "steps_high": st.high, "n_reached": st.n,
                    "speedup_vs_scratch": sp.mean, "speedup_low": sp.low, "speedup_high": sp.high,
                    "speedup_verdict": sp_verdict, "speedup_reason": sp_reason,
                    "scratch_rise": rise.mean if rise else float("nan"),
                    "scratch_rise_low": rise.low if rise else float("nan"),
                    "scratch_rise_high": rise.high if rise else float("nan"),
                    "threshold_verdict": threshold_ok, "threshold_reason": threshold_reason,
                })
    return pd.DataFrame(out)


def scratch_rise(grid: np.ndarray, values: np.ndarray, cfg: StatsConfig):
    """Per seed, final return minus the first defined return of scratch's curve, with its CI: whether
    scratch learned anything that a threshold could be set on."""
    first = np.array([row[~np.isnan(row)][0] if np.any(~np.isnan(row)) else np.nan for row in values])
    rise = final_return(grid, values, cfg.last_frac) - first
    return difference_ci(rise, np.array([]), cfg.n_boot, cfg.ci_level, cfg.seed)


def _fmt(x: float, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and (math.isnan(x) or math.isinf(x))):
        return "-"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


def _with_ci(mean: float, low: float, high: float) -> str:
    if math.isnan(low):
        return _fmt(mean)
    return f"{_fmt(mean)} [{_fmt(low)}, {_fmt(high)}]"


def to_markdown(results: pd.DataFrame, cfg: StatsConfig | None = None) -> str:
    """The results table as Markdown, one section per target and metric, ``mean [low, high]`` cells."""
    cfg = cfg or StatsConfig()
    lines = [
        f"Mean over seeds [{cfg.ci_level:.0%} bootstrap CI]; '-' = not available (one seed gives no CI; "
        f"no scratch run or threshold never reached gives no speed-up). Final return: mean over the last "
        f"{cfg.last_frac:.0%} of the budget (ending at the curve's last point). AUC: area under the "
        f"return curve / budget (mean return over training). Threshold: {cfg.threshold_frac:.0%} of "
        f"scratch's rise from its first to its final return, used only when that rise has a CI above "
        f"zero. Speed-up: scratch's mean steps-to-threshold / the condition's (seeds that reached it), "
        f"printed only when at least {cfg.min_seeds} seeds of both reached the threshold and its CI "
        f"excludes 1; otherwise 'inconclusive' and why.",
        "",
    ]
    if results.empty:
        return "\n".join(lines + ["No return curves in this study yet."]) + "\n"
    for (target, metric), g in results.groupby(["target", "metric"], sort=False):
        first = g.iloc[0]
        if first["threshold_verdict"] == HOLDS:
            thr = f"threshold {_fmt(first['threshold'])}"
        else:
            thr = f"threshold inconclusive: {first['threshold_reason']}"
        lines += [f"## {target}: {metric} (budget {first['budget_env_steps']:,.0f} env steps, {thr})", "",
                  "| condition | seeds | final return | AUC | steps to threshold (reached) "
                  "| speed-up vs scratch |",
                  "|---|---|---|---|---|---|"]
        for r in g.itertuples():
            if r.threshold_verdict == HOLDS:
                steps = (f"{_with_ci(r.steps_to_threshold, r.steps_low, r.steps_high)} "
                         f"({r.n_reached}/{r.n_seeds})")
            else:
                steps = "inconclusive"
            if r.speedup_verdict == "reference":
                speed = "(reference)"
            elif r.speedup_verdict == INCONCLUSIVE:
                speed = f"inconclusive ({r.speedup_reason})"
            else:
                ratio = _with_ci(r.speedup_vs_scratch, r.speedup_low, r.speedup_high)
                speed = f"{ratio}x ({r.speedup_verdict})"
            lines.append(f"| {r.condition} | {r.n_seeds} | "
                         f"{_with_ci(r.final_return, r.final_return_low, r.final_return_high)} | "
                         f"{_with_ci(r.auc, r.auc_low, r.auc_high)} | {steps} | {speed} |")
        lines.append("")
    return "\n".join(lines)


def write_tables(results: pd.DataFrame, out_dir: str | Path, cfg: StatsConfig | None = None) -> list[Path]:
    """Write ``table.csv`` and ``table.md`` into ``out_dir`` atomically; returns the paths."""
    out_dir = Path(out_dir)
    csv_path, md_path = out_dir / "table.csv", out_dir / "table.md"
    atomic_write(csv_path, lambda p: results.to_csv(p, index=False))
    text = to_markdown(results, cfg)
    atomic_write(md_path, lambda p: Path(p).write_text(text))
    return [csv_path, md_path]
