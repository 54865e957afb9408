"""Figures of a study from its long table (see :mod:`wmtransfer.analysis.curves`), matplotlib Agg + seaborn.

Each ``plot_*`` function returns ``(figure, caption)``, or ``None`` when the table holds nothing to draw
(the caller logs it). Lines are the mean over seeds of each seed's smoothed curve on a common grid, the
band its percentile-bootstrap CI over seeds (:mod:`wmtransfer.analysis.stats`); a condition with one
seed gets a line without a band, and the caption says so. Colours are fixed per condition for the whole
report by :func:`condition_palette`.

* :func:`plot_returns`: return vs env steps per target, one line per condition (seed 001 figures), DQN
  curves dashed and the random policy dotted when given;
* :func:`plot_wm_losses`: total world-model loss and each term vs updates, and the zoom on the first
  ``zoom_updates`` updates (seed 001 section 3.2, with the update of the largest gap to scratch marked);
* :func:`plot_compute_matched`: return vs env steps with the pre-training cost added on the x axis of
  pre-trained conditions (seed 003 figure 7);
* :func:`plot_per_level`: one panel per level/game, agents solid, baselines dashed (seed 003 figure 3);
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from ..io import atomic_write
from .baselines import Baseline
from .curves import base_condition, curves_by_seed, order_conditions, prefill_end, select
from .stats import StatsConfig, bootstrap_mean_ci, common_grid, nanmean, seeds_on_grid

log = logging.getLogger(__name__)

#: Conditions of pre-training runs (``{stage}/{envset}/seed{N}/metrics.csv`` aggregated with that stage).
PRETRAIN_CONDITIONS = ("pretrain", "pretrain_agent")
#: Conditions drawn dashed in the per-level figure (the per-level baseline agents of seed 003).
BASELINE_CONDITIONS = ("scratch", "dqn")
#: World-model loss terms of the metrics CSV contract, in panel order.
WM_TERMS = ("wm_loss", "wm_image", "wm_reward", "wm_discount", "wm_kl", "wm_prior_entropy",
            "wm_post_entropy", "wm_probe_swap", "wm_probe_info")
TERM_LABELS = {
    "wm_loss": "total world-model loss", "wm_image": "image loss (-log p)",
    "wm_reward": "reward loss (-log p)", "wm_discount": "discount loss (-log p)", "wm_kl": "KL loss",
    "wm_prior_entropy": "prior entropy (nats)",
    "wm_post_entropy": "posterior entropy (nats)",
    "wm_probe_swap": "latent choices moved by a frame swap (collapse: 0)",
    "wm_probe_info": "latent information in sequences (nats; collapse: 0)",
}
RETURN_LABELS = {"episode_return": "train episode return", "eval_return": "evaluation return"}
_STYLE = {**sns.axes_style("whitegrid"), **sns.plotting_context("notebook", font_scale=0.9),
          "svg.hashsalt": "wmtransfer", "figure.dpi": 100}


#: Index into seaborn's "colorblind" palette of each known condition; vermillion (3), close to finetune's
#: orange, is left to labels outside this list.
CONDITION_COLOURS = {"scratch": 0, "finetune": 1, "frozen_rssm": 2, "frozen_wm": 4, "finetune_agent": 5,
                     "pretrain": 9, "pretrain_agent": 9}


def condition_palette(conditions) -> dict[str, tuple]:
    """Colour per condition: known conditions (:data:`CONDITION_COLOURS`, DQN near-black, random grey)
    keep one colour in every figure and report; other labels take the remaining colours in sorted order."""
    base = sns.color_palette("colorblind", 10)
    palette = {c: base[i] for c, i in CONDITION_COLOURS.items()}
    palette["dqn"], palette["random"] = (0.15, 0.15, 0.15), (0.45, 0.45, 0.45)  # baselines: dark and grey
    spare = [base[i] for i in (3, 6, 8)] + list(sns.color_palette("dark", 10))
    for i, c in enumerate(sorted(set(map(str, conditions)) - set(palette))):
        palette[c] = spare[i % len(spare)]
    return palette


@dataclass
class Band:
    """Mean over seeds and its CI on a grid; ``values`` are the per-seed curves (n_seeds, n_grid)."""

    grid: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    values: np.ndarray

    @property
    def n_seeds(self) -> int:
        return int(self.values.shape[0])


def summarise(rows: pd.DataFrame, grid: np.ndarray, cfg: StatsConfig, axis: str = "env_step",
              shift: float = 0.0, window: int | None = None) -> Band | None:
    """Band of ``rows`` (one metric, one run group, several seeds) on ``grid``; x shifted by ``shift``,
    smoothed over ``window`` logged points (default ``cfg.smooth_window``)."""
    curves = curves_by_seed(rows, axis)
    if not curves:
        return None
    window = cfg.smooth_window if window is None else window
    values = seeds_on_grid([(x + shift, y) for x, y in curves.values()], grid, window)
    if np.all(np.isnan(values)):
        return None
    mean, low, high = bootstrap_mean_ci(values, cfg.n_boot, cfg.ci_level, cfg.seed)
    return Band(grid, mean, low, high, values)


def _draw(ax, band: Band, color, label: str, linestyle: str = "-") -> None:
    ax.plot(band.grid, band.mean, color=color, linestyle=linestyle, linewidth=1.8,
            label=f"{label} (n={band.n_seeds})")
    if band.n_seeds >= 2:
        ax.fill_between(band.grid, band.low, band.high, color=color, alpha=0.2, linewidth=0)


def _draw_points(ax, rows: pd.DataFrame, color, label: str) -> None:
    """A metric logged at one or two updates per run: the mean over seeds at each, bars to min and max
    (a band interpolated between fewer than three points would draw nothing, or a line that was never
    measured)."""
    pts = rows.groupby("update")["value"].agg(["mean", "min", "max"])
    n = rows["seed"].nunique()
    ax.errorbar(pts.index, pts["mean"], yerr=[pts["mean"] - pts["min"], pts["max"] - pts["mean"]], fmt="o",
                color=color, capsize=3, label=f"{label} (n={n}, min-max)")


def _draw_baselines(ax, baselines: list[Baseline], game: str, grid: np.ndarray, cfg: StatsConfig,
                    palette: dict) -> list[str]:
    """Draw the baselines of ``game``; returns caption phrases of what was drawn, one per baseline
    (a study without DQN runs says nothing about DQN)."""
    drawn = []
    for b in baselines:
        if b.game != game:
            continue
        if b.level is not None:
            ax.axhline(b.level, color=palette.get("random", "0.3"), linestyle=":", linewidth=1.5,
                       label=f"{b.label} ({b.episodes.size} ep.)")
            drawn.append(f"{b.label} dotted (mean of {b.episodes.size} episodes)")
        elif b.curves:
            values = seeds_on_grid(b.curves, grid, cfg.smooth_window)
            if np.all(np.isnan(values)):
                continue
            mean = nanmean(values, 0)
            ax.plot(grid, mean, color=palette.get("dqn", "0.3"), linestyle="--", linewidth=1.5,
                    label=f"{b.label} (n={len(b.curves)}, mean)")
            drawn.append(f"{b.label} dashed (mean over its {len(b.curves)} seed(s))")
    return drawn


def _mark_prefill(ax, table: pd.DataFrame, target: str | None, x_scale: float = 1.0) -> float:
    """Shade the random prefill (env steps before the first update): every condition acts at random
    there, so their curves coincide by design. Returns its end (0: none)."""
    end = prefill_end(table, target)
    if end > 0:
        ax.axvspan(0, end * x_scale, color="0.9", alpha=0.6, linewidth=0, zorder=0,
                   label="random prefill (no updates yet)")
    return end


def _min_relative_span(ax, rel: float = 0.1) -> None:
    """A linear y axis spans at least ``rel`` x the largest |value| shown, centred on the data: a loss
    that moves by 0.008 around 0.95 is flat, and should look flat rather than fill the panel."""
    if ax.get_yscale() != "linear":
        return
    lo, hi = ax.get_ylim()
    need = rel * max(abs(lo), abs(hi))
    if need > 0 and hi - lo < need:
        mid = 0.5 * (lo + hi)
        ax.set_ylim(mid - need / 2, mid + need / 2)


def _ci_note(bands: dict[str, Band], cfg: StatsConfig, window: int | None = None) -> str:
    single = sorted(k for k, b in bands.items() if b.n_seeds < 2)
    window = cfg.smooth_window if window is None else window
    smoothing = f"centred moving mean over up to {window} logged points, " if window > 1 else "unsmoothed, "
    note = (f"Lines: mean over seeds of each seed's curve ({smoothing}"
            f"interpolated on {cfg.grid_points} grid points); bands: "
            f"{cfg.ci_level:.0%} percentile bootstrap CI over seeds ({cfg.n_boot} resamples); "
            "n = number of seeds.")
    if single:
        note += f" One seed only, so no CI, for: {', '.join(single)}."
    return note


def _finish(ax, title: str, xlabel: str, ylabel: str, sci_x: bool = True) -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if sci_x:
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4), useMathText=True)


def _new_figure(nrows: int = 1, ncols: int = 1, width: float = 6.4, height: float = 4.2):
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def plot_returns(table: pd.DataFrame, target: str, cfg: StatsConfig, palette: dict,
                 baselines: list[Baseline] = (), metric: str = "episode_return",
                 frames_per_step: dict[str, float] | None = None):
    """Return vs env steps on ``target``, one line per condition, baselines of that game dashed/dotted.

    ``frames_per_step``: label -> frames per agent step (action repeat); given, the x axis is frames
    (agent steps times the label's repeat, 1 for labels not named), so an action-repeat ablation is
    compared at equal frames as well as at equal agent steps (seed 002).
    """
    rows = select(table, target=target, metric=metric)
    if rows.empty:
        return None
    scale = {c: float((frames_per_step or {}).get(c, 1.0)) for c in rows["condition"].unique()}
    budget = max(float(select(table, target=target, condition=c)["env_step"].max()) * k
                 for c, k in scale.items())
    grid = common_grid(budget, cfg.grid_points)
    xlabel = "frames (agent steps x action repeat)" if frames_per_step else "env steps"
    with matplotlib.rc_context(_STYLE):
        fig, axes = _new_figure()
        ax = axes[0, 0]
        bands = {}
        prefill = 0.0 if frames_per_step else _mark_prefill(ax, table, target)
        for cond in order_conditions(rows["condition"].unique()):
            sub = select(rows, condition=cond)
            if scale[cond] != 1.0:
                sub = sub.assign(env_step=sub["env_step"] * scale[cond])
            band = summarise(sub, grid, cfg)
            if band is not None:
                bands[cond] = band
                repeat = f", x{scale[cond]:g} frames" if scale[cond] != 1.0 else ""
                _draw(ax, band, palette[cond], cond + repeat)
        drawn = [] if frames_per_step else _draw_baselines(ax, list(baselines), target, grid, cfg, palette)
        label = RETURN_LABELS.get(metric, metric)
        _finish(ax, f"{target}: {label}", xlabel, label)
        ax.legend(loc="best", fontsize="small")
    caption = f"{label.capitalize()} against {xlabel} on {target}, one line per condition. "
    caption += _ci_note(bands, cfg)
    if prefill > 0:
        caption += (f" Shaded: the random prefill (first {prefill:,.0f} env steps, before the first update), "
                    "where every condition acts at random and the lines coincide by design.")
    if drawn:
        caption += f" Baselines: {'; '.join(drawn)}."
    return fig, caption


def _log_scale_if_wide(ax, ratio: float = 20.0) -> None:
    """Log y axis when every plotted value is positive and they span more than ``ratio`` (loss curves
    falling by orders of magnitude in the first updates would flatten everything after)."""
    ys = [np.asarray(line.get_ydata(), dtype=float) for line in ax.lines]
    ys = np.concatenate(ys) if ys else np.empty(0)
    ys = ys[np.isfinite(ys)]
    if ys.size and ys.min() > 0 and ys.max() / ys.min() > ratio:
        ax.set_yscale("log")
        ax.set_ylabel(ax.get_ylabel() + " (log scale)")


def _largest_gap(ref: Band, other: Band) -> float | None:
    gap = ref.mean - other.mean
    if np.all(np.isnan(gap)) or np.nanmax(gap) <= 0:
        return None
    return float(ref.grid[int(np.nanargmax(gap))])


def plot_wm_losses(table: pd.DataFrame, target: str, cfg: StatsConfig, palette: dict, zoom: bool = False):
    """Total world-model loss and each term vs updates on ``target``, one panel per term.

    ``zoom``: only the first ``cfg.zoom_updates`` updates, with a vertical line per pre-trained condition
    at the update where its total loss is furthest below scratch's (seed 001 section 3.2 marks 1000).
    """
    rows = select(table, target=target)
    rows = rows[rows["metric"].isin(WM_TERMS) & rows["update"].notna()]
    terms = [t for t in WM_TERMS if t in set(rows["metric"])]
    if not terms:
        return None
    x_max = float(rows["update"].max())
    if zoom:
        if x_max <= cfg.zoom_updates:
            log.info("wm_loss zoom on %s: the runs end at update %.0f, inside the zoom window of %d updates "
                     "(the full figure shows the same)", target, x_max, cfg.zoom_updates)
            return None
        x_max = float(cfg.zoom_updates)
    grid = common_grid(x_max, cfg.grid_points)
    ncols = min(3, len(terms))
    nrows = math.ceil(len(terms) / ncols)
    conditions = order_conditions(rows["condition"].unique())
    bands_total: dict[str, Band] = {}
    with matplotlib.rc_context(_STYLE):
        fig, axes = _new_figure(nrows, ncols, width=4.6, height=3.4)
        for i, term in enumerate(terms):
            ax = axes[i // ncols, i % ncols]
            for cond in conditions:
                sub = select(rows, metric=term, condition=cond)
                if 0 < sub["update"].nunique() < 3:  # sparse (a probe every 50 updates): points, not a band
                    _draw_points(ax, sub, palette[cond], cond)
                    continue
                band = summarise(sub, grid, cfg, axis="update", window=cfg.loss_smooth_window)
                if band is None:
                    continue
                _draw(ax, band, palette[cond], cond)
                if term == terms[0]:
                    bands_total[cond] = band
            _finish(ax, TERM_LABELS.get(term, term), "updates (gradient steps)", term)
            ax.set_xlim(0, x_max)
            _log_scale_if_wide(ax)
            _min_relative_span(ax)
        for j in range(len(terms), nrows * ncols):
            axes[j // ncols, j % ncols].set_visible(False)
        marks = []
        if zoom and "scratch" in bands_total:
            ax = axes[0, 0]
            for cond, band in bands_total.items():
                at = None if cond == "scratch" else _largest_gap(bands_total["scratch"], band)
                if at is not None:
                    ax.axvline(at, color=palette[cond], linestyle=":", linewidth=1.2)
                    marks.append(f"{cond} at {at:,.0f} updates")
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=min(4, max(1, len(labels))),
                   fontsize="small")
        span = f"first {x_max:,.0f} updates" if zoom else "all updates"
        fig.suptitle(f"{target}: world-model loss terms vs updates ({span})")
    caption = (f"World-model loss ({terms[0]}) and its terms against updates on {target}, {span}. "
               + _ci_note(bands_total, cfg, cfg.loss_smooth_window))
    if marks:
        caption += (f" Dotted vertical lines in the {terms[0]} panel: update of the largest gap below "
                    f"scratch ({'; '.join(marks)}).")
    return fig, caption


def _finish_compute_matched(ax, title: str, metric: str, x_max: float) -> None:
    _finish(ax, title, "env steps incl. pre-training", RETURN_LABELS.get(metric, metric))
    ax.set_xlim(0, x_max)
    ax.legend(loc="best", fontsize="small")


#: The compute-matched x axis is broken when the whole span exceeds the longest run by this factor (a
#: 100,000-step pre-training cost would squeeze 1,800 agent steps into a sliver).
BREAK_RATIO = 5.0


def plot_compute_matched(table: pd.DataFrame, target: str, cfg: StatsConfig, palette: dict,
                         costs: dict[str, float], metric: str = "episode_return"):
    """Return vs env steps where pre-trained conditions start at their pre-training cost (seed 003 fig. 7).

    ``costs`` maps a condition to the env steps its pre-training consumed (dataset steps of offline
    world-model pre-training, or env steps of online multi-task pre-training); conditions without a
    cost (scratch) start at 0. ``None`` when no condition on this target has a cost. When the span is
    more than :data:`BREAK_RATIO` times the longest run, the x axis is broken in two panels of equal
    width, ``[0, run]`` and ``[smallest cost, end]``, so every curve is drawn at a readable scale (the
    gap between them is stated on the figure and in the caption).
    """
    rows = select(table, target=target, metric=metric)
    if rows.empty:
        return None
    conditions = order_conditions(rows["condition"].unique())
    shifts = {c: float(costs.get(c, 0.0)) for c in conditions}
    if not any(shifts.values()):
        return None
    run = max(float(select(rows, condition=c)["env_step"].max()) for c in conditions)
    x_max = max(float(select(rows, condition=c)["env_step"].max()) + shifts[c] for c in conditions)
    first_cost = min(v for v in shifts.values() if v > 0)
    broken = x_max > BREAK_RATIO * run and first_cost > run
    spans = [(0.0, run), (first_cost, x_max)] if broken else [(0.0, x_max)]
    bands = {}
    pre_label = ""
    with matplotlib.rc_context(_STYLE):
        fig, axes = _new_figure(1, len(spans), width=7.2 / len(spans) + (0.6 if broken else 0.0))
        for i, (lo, hi) in enumerate(spans):
            ax = axes[0, i]
            grid = np.linspace(lo, hi, cfg.grid_points)
            for cost in sorted({v for v in shifts.values() if v > 0}):
                who = ", ".join(c for c in conditions if shifts[c] == cost)
                ax.axvspan(0, cost, color="0.85", alpha=0.35, linewidth=0)
                ax.axvline(cost, color="0.4", linestyle="--", linewidth=1.0)
                if lo <= cost <= hi:
                    ax.annotate(f"pre-training\n({who}):\n{cost:,.0f} steps", xy=(cost, 1.0),
                                xycoords=("data", "axes fraction"), xytext=(4, -4),
                                textcoords="offset points", ha="left", va="top", fontsize="x-small",
                                color="0.3")
            for cond in conditions:
                band = summarise(select(rows, condition=cond), grid, cfg, shift=shifts[cond])
                if band is not None:
                    bands.setdefault(cond, band)
                    _draw(ax, band, palette[cond], cond)
            label = _draw_online_pretraining(ax, table, target, metric, shifts, grid, cfg, palette, bands)
            pre_label = pre_label or label
            title = f"{target}: {RETURN_LABELS.get(metric, metric)}, compute-matched" if i == 0 else ""
            _finish_compute_matched(ax, title, metric, hi)
            ax.set_xlim(lo, hi)
        if broken:
            axes[0, 0].spines["right"].set_visible(False)
            axes[0, 1].spines["left"].set_visible(False)
            axes[0, 1].sharey(axes[0, 0])
            axes[0, 1].set_title(f"x axis broken: {run:,.0f} to {first_cost:,.0f} env steps not drawn",
                                 fontsize="small")
    listed = "; ".join(f"{c}: {v:,.0f}" for c, v in shifts.items() if v > 0)
    caption = (f"{RETURN_LABELS.get(metric, metric).capitalize()} on {target} against env steps including "
               f"the pre-training cost (env steps of pre-training data"
               f"{', DQN runs included' if cfg.count_dqn_steps else ''}, added to the x axis of pre-trained "
               f"conditions: {listed}; shaded span"
               f"{', amortised over the targets trained from it' if cfg.amortise_pretraining else ''}). ")
    if broken:
        caption += (f"The x axis is broken between {run:,.0f} and {first_cost:,.0f} env steps (the "
                    f"pre-training cost is {first_cost / run:,.0f} times the runs' {run:,.0f} steps): left, "
                    f"the runs without pre-training; right, those after it, each panel at its own scale. ")
    caption += (pre_label + " " if pre_label else "") + _ci_note(bands, cfg)
    return fig, caption


def plot_compute_matched_mean(table: pd.DataFrame, cfg: StatsConfig, palette: dict,
                              costs: dict[str, dict[str, float]], metric: str = "episode_return"):
    """Seed 003 fig. 7: compute-matched returns averaged over the targets (levels).

    For each run label and seed, every target's curve is shifted by that target's pre-training cost,
    put on one grid and averaged over the targets; the band is the mean and bootstrap CI of those
    per-seed averages. Only labels and seeds present on every target count. ``None`` unless there are
    at least two targets and some pre-training cost.
    """
    rows = table[(table["metric"] == metric).to_numpy(dtype=bool)
                 & ~table["condition"].isin(PRETRAIN_CONDITIONS).to_numpy(dtype=bool)]
    targets = sorted(rows["target"].unique())
    if len(targets) < 2 or not any(v > 0 for c in costs.values() for v in c.values()):
        return None
    labels = [c for c in order_conditions(rows["condition"].unique())
              if all(((rows["target"] == t) & (rows["condition"] == c)).any() for t in targets)]
    shifts = {(t, c): float(costs.get(t, {}).get(c, 0.0)) for t in targets for c in labels}
    x_max = max(float(select(rows, target=t, condition=c)["env_step"].max()) + shifts[(t, c)]
                for t in targets for c in labels) if labels else 0.0
    if x_max <= 0:
        return None
    grid = common_grid(x_max, cfg.grid_points)
    bands: dict[str, Band] = {}
    with matplotlib.rc_context(_STYLE):
        fig, axes = _new_figure(width=7.2)
        ax = axes[0, 0]
        for label in labels:
            per_target = {t: curves_by_seed(select(rows, target=t, condition=label)) for t in targets}
            seeds = sorted(set.intersection(*(set(c) for c in per_target.values())))
            if not seeds:
                continue
            values = np.vstack([
                nanmean(seeds_on_grid([(per_target[t][s][0] + shifts[(t, label)], per_target[t][s][1])
                                       for t in targets], grid, cfg.smooth_window), 0)
                for s in seeds])
            if np.all(np.isnan(values)):
                continue
            mean, low, high = bootstrap_mean_ci(values, cfg.n_boot, cfg.ci_level, cfg.seed)
            bands[label] = Band(grid, mean, low, high, values)
            _draw(ax, bands[label], palette[label], label)
        if not bands:
            return None  # a bare Figure (no pyplot): nothing to close
        mean_cost = {c: np.mean([shifts[(t, c)] for t in targets]) for c in bands}
        for cost in sorted({v for v in mean_cost.values() if v > 0}):
            ax.axvline(cost, color="0.4", linestyle="--", linewidth=1.0)
        _finish_compute_matched(
            ax, f"{RETURN_LABELS.get(metric, metric)}, compute-matched, mean over {len(targets)} targets",
            metric, x_max)
    listed = "; ".join(f"{c}: {v:,.0f}" for c, v in mean_cost.items() if v > 0)
    caption = (f"{RETURN_LABELS.get(metric, metric).capitalize()} averaged over the targets "
               f"{', '.join(targets)} (seed 003 fig. 7), each target's curve shifted by its pre-training "
               f"cost (mean cost per label, dashed: {listed or 'none'}); per seed the targets are averaged "
               f"(where a target's shifted curve has not begun or has ended, over the others), then "
               + _ci_note(bands, cfg))
    return fig, caption


def _draw_online_pretraining(ax, table, target, metric, shifts, grid, cfg, palette, bands) -> str:
    """Seed 003 fig. 7: the multi-task agent's returns on ``target`` during its pre-training, drawn over
    [0, cost of finetune_agent], before the fine-tuned curve (x scaled from the pre-training run's steps)."""
    cost = shifts.get("finetune_agent", 0.0)
    pre = table[table["condition"].isin(PRETRAIN_CONDITIONS).to_numpy(dtype=bool)
                & (table["metric"] == metric).to_numpy(dtype=bool)
                & (table["game"] == target).fillna(False).to_numpy(dtype=bool)]
    if cost <= 0 or pre.empty:
        return ""
    scale = cost / float(pre["env_step"].max())
    pre = pre.assign(env_step=pre["env_step"] * scale)
    band = summarise(pre, grid, cfg)
    if band is None:
        return ""
    label = "multi-task pre-training"
    bands[label] = band
    _draw(ax, band, palette.get("finetune_agent", "0.3"), label, linestyle=":")
    return (f"Dotted: the multi-task agent's returns on {target} during its pre-training, its env steps "
            f"scaled by {scale:.3g} onto the pre-training span.")


def plot_per_level(table: pd.DataFrame, cfg: StatsConfig, palette: dict, baselines: list[Baseline] = (),
                   metric: str = "episode_return"):
    """One panel per level (the ``game`` of each episode, else the run's target), seed 003 figure 3.

    Agents trained with pre-training (or the multi-task agent itself) are solid; per-level baseline
    agents (:data:`BASELINE_CONDITIONS`) and DQN curves dashed; random-policy returns dotted.
    """
    rows = select(table, metric=metric).copy()
    if rows.empty:
        return None
    rows["level"] = rows["game"].fillna(rows["target"]).astype(str)
    levels = sorted(rows["level"].unique())
    ncols = min(4, len(levels))
    nrows = math.ceil(len(levels) / ncols)
    bands = {}
    drawn: list[str] = []
    with matplotlib.rc_context(_STYLE):
        fig, axes = _new_figure(nrows, ncols, width=4.4, height=3.3)
        for i, level in enumerate(levels):
            ax = axes[i // ncols, i % ncols]
            sub = rows[rows["level"] == level]
            grid = common_grid(float(sub["env_step"].max()), cfg.grid_points)
            for cond in order_conditions(sub["condition"].unique()):
                for target in sorted(select(sub, condition=cond)["target"].unique()):
                    label = cond if target == level else f"{cond} [{target}]"
                    band = summarise(select(sub, condition=cond, target=target), grid, cfg)
                    if band is None:
                        continue
                    bands[label] = band
                    dashed = base_condition(cond) in BASELINE_CONDITIONS
                    _draw(ax, band, palette[cond], label, "--" if dashed else "-")
            drawn += _draw_baselines(ax, list(baselines), level, grid, cfg, palette)
            _finish(ax, level, "env steps", RETURN_LABELS.get(metric, metric))
            ax.legend(loc="best", fontsize="x-small")
        for j in range(len(levels), nrows * ncols):
            axes[j // ncols, j % ncols].set_visible(False)
        fig.suptitle(f"{RETURN_LABELS.get(metric, metric).capitalize()} per level")
    caption = (f"{RETURN_LABELS.get(metric, metric).capitalize()} per level (game of the episode), agents "
               f"solid, per-level baseline agents ({', '.join(BASELINE_CONDITIONS)}) dashed; "
               f"'cond [set]' is a run on a set of games, its episodes split by game. ")
    kinds = sorted({d.split(" (")[0] for d in drawn})
    if kinds:
        caption += f"Baselines: {', '.join(kinds)}. "
    caption += _ci_note(bands, cfg)
    return fig, caption


def save_figure(fig: Figure, out_dir: str | Path, name: str) -> list[Path]:
    """Write ``{name}.png`` (150 dpi) and ``{name}.svg`` into ``out_dir`` atomically; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for ext, kw in (("png", {"dpi": 150}), ("svg", {"metadata": {"Date": None}})):
        path = out_dir / f"{name}.{ext}"

        def save(tmp: Path, ext: str = ext, kw: dict = kw) -> None:
            with matplotlib.rc_context({"svg.hashsalt": "wmtransfer"}):
                fig.savefig(tmp, format=ext, **kw)

        atomic_write(path, save)
        fig.set_layout_engine("none")  # keep the layout of the first save: the second costs half as much
        written.append(path)
    return written
