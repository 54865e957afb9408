"""The results table of a study: final return, AUC and steps-to-threshold speed-up vs scratch, with CIs.

One row per (target, return metric, condition). Every number is over seeds, with a percentile-bootstrap
CI (:mod:`wmtransfer.analysis.stats` gives the definitions). All conditions of one target share one
env-step grid from 0 to the largest env step logged on that target (the budget), so AUCs compare and a run
that stopped early shows it (NaN final return, smaller AUC). The threshold of steps-to-threshold is set
on scratch's mean curve (``threshold_frac`` of its rise); without a scratch run on a target, threshold,
steps and speed-up are NaN.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .curves import atomic_write, curves_by_seed, order_conditions, select
from .stats import (
    StatsConfig,
    area_under_curve,
    common_grid,
    final_return,
    scalar_ci,
    seeds_on_grid,
    speedup_ci,
    steps_to_threshold,
    threshold_from_reference,
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
            if REFERENCE in per_cond:
                threshold = threshold_from_reference(grid, per_cond[REFERENCE], cfg.threshold_frac,
                                                     cfg.last_frac)
            ref_steps = (steps_to_threshold(grid, per_cond[REFERENCE], threshold)
                         if REFERENCE in per_cond else np.array([]))
            for i, (cond, values) in enumerate(per_cond.items()):
                boot = {"n_boot": cfg.n_boot, "level": cfg.ci_level, "seed": cfg.seed + i}
                fin = scalar_ci(final_return(grid, values, cfg.last_frac), **boot)
                auc = scalar_ci(area_under_curve(grid, values), **boot)
                steps = (steps_to_threshold(grid, values, threshold) if not math.isnan(threshold)
                         else np.full(values.shape[0], np.nan))
                st = scalar_ci(steps, **boot)
                sp = speedup_ci(ref_steps, steps, **boot)
                out.append({
                    "study": str(rows_t["study"].iloc[0]), "target": target, "metric": metric,
                    "condition": cond, "n_seeds": values.shape[0], "budget_env_steps": float(grid[-1]),
                    "final_return": fin.mean, "final_return_low": fin.low, "final_return_high": fin.high,
                    "auc": auc.mean, "auc_low": auc.low, "auc_high": auc.high,
                    "threshold": threshold, "steps_to_threshold": st.mean, "steps_low": st.low,
                    "steps_high": st.high, "n_reached": st.n,
                    "speedup_vs_scratch": sp.mean, "speedup_low": sp.low, "speedup_high": sp.high,
                })
    return pd.DataFrame(out)


def _fmt(x: float, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if math.isinf(x):
        return "inf"
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
        f"scratch's rise from its first to its final return. Speed-up: scratch's mean steps-to-threshold "
        f"/ the condition's (seeds that reached it).",
        "",
    ]
    if results.empty:
        return "\n".join(lines + ["No return curves in this study yet."]) + "\n"
    for (target, metric), g in results.groupby(["target", "metric"], sort=False):
        lines += [f"## {target}: {metric} (budget {g['budget_env_steps'].iloc[0]:,.0f} env steps, "
                  f"threshold {_fmt(g['threshold'].iloc[0])})", "",
                  "| condition | seeds | final return | AUC | steps to threshold (reached) "
                  "| speed-up vs scratch |",
                  "|---|---|---|---|---|---|"]
        for r in g.itertuples():
            steps = f"{_with_ci(r.steps_to_threshold, r.steps_low, r.steps_high)} ({r.n_reached}/{r.n_seeds})"
            lines.append(f"| {r.condition} | {r.n_seeds} | "
                         f"{_with_ci(r.final_return, r.final_return_low, r.final_return_high)} | "
                         f"{_with_ci(r.auc, r.auc_low, r.auc_high)} | {steps} | "
                         f"{_with_ci(r.speedup_vs_scratch, r.speedup_low, r.speedup_high)} |")
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
