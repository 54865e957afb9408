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
* :func:`plot_latent`: the latent analysis of seed 001 section 3.3 (:mod:`.latent_features`).
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from .baselines import Baseline
from .curves import base_condition, curves_by_seed, order_conditions, select
from .stats import StatsConfig, bootstrap_mean_ci, common_grid, nanmean, seeds_on_grid

#: Conditions of pre-training runs (``{stage}/{envset}/seed{N}/metrics.csv`` aggregated with that stage).
PRETRAIN_CONDITIONS = ("pretrain", "pretrain_agent")
#: Conditions drawn dashed in the per-level figure (the per-level baseline agents of seed 003).
BASELINE_CONDITIONS = ("scratch", "dqn")
#: World-model loss terms of the metrics CSV contract, in panel order.
WM_TERMS = ("wm_loss", "wm_image", "wm_reward", "wm_discount", "wm_kl", "wm_prior_entropy",
            "wm_post_entropy")
TERM_LABELS = {
    "wm_loss": "total world-model loss", "wm_image": "image loss (-log p)",
    "wm_reward": "reward loss (-log p)", "wm_discount": "discount loss (-log p)", "wm_kl": "KL loss",
    "wm_prior_entropy": "prior entropy (nats)",
    "wm_post_entropy": "posterior entropy (nats)",
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


def _draw_baselines(ax, baselines: list[Baseline], game: str, grid: np.ndarray, cfg: StatsConfig,
                    palette: dict) -> list[str]:
    drawn = []
    for b in baselines:
        if b.game != game:
            continue
        if b.level is not None:
            ax.axhline(b.level, color=palette.get("random", "0.3"), linestyle=":", linewidth=1.5,
                       label=f"{b.label} ({b.episodes.size} ep.)")
        elif b.curves:
            values = seeds_on_grid(b.curves, grid, cfg.smooth_window)
            if np.all(np.isnan(values)):
                continue
            mean = nanmean(values, 0)
            ax.plot(grid, mean, color=palette.get("dqn", "0.3"), linestyle="--", linewidth=1.5,
                    label=f"{b.label} (n={len(b.curves)}, mean)")
        drawn.append(b.label)
    return drawn


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
                 baselines: list[Baseline] = (), metric: str = "episode_return"):
    """Return vs env steps on ``target``, one line per condition, baselines of that game dashed/dotted."""
    rows = select(table, target=target, metric=metric)
    if rows.empty:
        return None
    budget = float(select(table, target=target)["env_step"].max())
    grid = common_grid(budget, cfg.grid_points)
    with matplotlib.rc_context(_STYLE):
        fig, axes = _new_figure()
        ax = axes[0, 0]
        bands = {}
        for cond in order_conditions(rows["condition"].unique()):
            band = summarise(select(rows, condition=cond), grid, cfg)
            if band is not None:
                bands[cond] = band
                _draw(ax, band, palette[cond], cond)
        drawn = _draw_baselines(ax, list(baselines), target, grid, cfg, palette)
        _finish(ax, f"{target}: {RETURN_LABELS.get(metric, metric)}", "env steps",
                RETURN_LABELS.get(metric, metric))
        ax.legend(loc="best", fontsize="small")
    label = RETURN_LABELS.get(metric, metric)
    caption = f"{label.capitalize()} against env steps on {target}, one line per condition. "
    caption += _ci_note(bands, cfg)
    if drawn:
        caption += f" Baselines: {', '.join(drawn)} (DQN dashed, mean over its seeds; random policy dotted)."
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
        x_max = min(x_max, float(cfg.zoom_updates))
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
                band = summarise(select(rows, metric=term, condition=cond), grid, cfg, axis="update",
                                 window=cfg.loss_smooth_window)
                if band is None:
                    continue
                _draw(ax, band, palette[cond], cond)
                if term == terms[0]:
                    bands_total[cond] = band
            _finish(ax, TERM_LABELS.get(term, term), "updates (gradient steps)", term)
            ax.set_xlim(0, x_max)
            _log_scale_if_wide(ax)
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


def plot_compute_matched(table: pd.DataFrame, target: str, cfg: StatsConfig, palette: dict,
                         costs: dict[str, float], metric: str = "episode_return"):
    """Return vs env steps where pre-trained conditions start at their pre-training cost (seed 003 fig. 7).

    ``costs`` maps a condition to the env steps its pre-training consumed (dataset steps of offline
    world-model pre-training, or env steps of online multi-task pre-training); conditions without a
    cost (scratch) start at 0. ``None`` when no condition on this target has a cost.
    """
    rows = select(table, target=target, metric=metric)
    if rows.empty:
        return None
    conditions = order_conditions(rows["condition"].unique())
    shifts = {c: float(costs.get(c, 0.0)) for c in conditions}
    if not any(shifts.values()):
        return None
    x_max = max(float(select(rows, condition=c)["env_step"].max()) + shifts[c] for c in conditions)
    grid = common_grid(x_max, cfg.grid_points)
    bands = {}
    with matplotlib.rc_context(_STYLE):
        fig, axes = _new_figure(width=7.2)
        ax = axes[0, 0]
        for cost in sorted({s for s in shifts.values() if s > 0}):
            who = ", ".join(c for c in conditions if shifts[c] == cost)
            ax.axvspan(0, cost, color="0.85", alpha=0.35, linewidth=0)
            ax.axvline(cost, color="0.4", linestyle="--", linewidth=1.0)
            ax.annotate(f"pre-training\n({who}):\n{cost:,.0f} steps", xy=(cost, 1.0),
                        xycoords=("data", "axes fraction"), xytext=(-4, -4), textcoords="offset points",
                        ha="right", va="top", fontsize="x-small", color="0.3")
        for cond in conditions:
            band = summarise(select(rows, condition=cond), grid, cfg, shift=shifts[cond])
            if band is not None:
                bands[cond] = band
                _draw(ax, band, palette[cond], cond)
        pre_label = _draw_online_pretraining(ax, table, target, metric, shifts, grid, cfg, palette, bands)
        _finish_compute_matched(ax, f"{target}: {RETURN_LABELS.get(metric, metric)}, compute-matched",
                                metric, x_max)
    listed = "; ".join(f"{c}: {s:,.0f}" for c, s in shifts.items() if s > 0)
    caption = (f"{RETURN_LABELS.get(metric, metric).capitalize()} on {target} against env steps including "
               f"the pre-training cost (env steps of pre-training data, added to the x axis of pre-trained "
               f"conditions: {listed}; shaded span"
               f"{', amortised over the targets trained from it' if cfg.amortise_pretraining else ''}). "
               + (pre_label + " " if pre_label else "") + _ci_note(bands, cfg))
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
            _draw_baselines(ax, list(baselines), level, grid, cfg, palette)
            _finish(ax, level, "env steps", RETURN_LABELS.get(metric, metric))
            ax.legend(loc="best", fontsize="x-small")
        for j in range(len(levels), nrows * ncols):
            axes[j // ncols, j % ncols].set_visible(False)
        fig.suptitle(f"{RETURN_LABELS.get(metric, metric).capitalize()} per level")
    caption = (f"{RETURN_LABELS.get(metric, metric).capitalize()} per level (game of the episode), agents "
               f"solid, per-level baselines dashed ({', '.join(BASELINE_CONDITIONS)}), random policy dotted; "
               f"'cond [set]' is a run on a set of games, its episodes split by game. ")
    caption += _ci_note(bands, cfg)
    return fig, caption


def save_figure(fig: Figure, out_dir: str | Path, name: str) -> list[Path]:
    """Write ``{name}.png`` (150 dpi) and ``{name}.svg`` into ``out_dir`` atomically; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for ext, kw in (("png", {"dpi": 150}), ("svg", {"metadata": {"Date": None}})):
        path = out_dir / f"{name}.{ext}"
        fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{name}.", suffix=f".{ext}")
        os.close(fd)
        try:
            with matplotlib.rc_context({"svg.hashsalt": "wmtransfer"}):
                fig.savefig(tmp, format=ext, **kw)
            fig.set_layout_engine("none")  # keep the layout of the first save: the second costs half as much
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        written.append(path)
    return written


def plot_latent(top_feature: np.ndarray, player_x: np.ndarray, labels: np.ndarray, result: dict) -> Figure:
    """Seed 001 section 3.3: best latent feature vs player x, correlations vs random features, clusters."""
    res = result["x"]
    rng = np.random.default_rng(0)
    with matplotlib.rc_context(_STYLE):
        fig, axes = _new_figure(1, 3, width=4.4, height=3.6)
        ax = axes[0, 0]
        jitter = player_x + rng.uniform(-0.15, 0.15, player_x.shape)
        ax.scatter(jitter, top_feature, s=3, alpha=0.3, color=sns.color_palette("colorblind")[0],
                   linewidths=0)
        _finish(ax, f"feature {int(res['top_feature'])}: |r| = {res['top_feature_corr']:.2f}",
                "player x (grid cells)", "feature value")
        ax = axes[0, 1]
        names = ["best single\nfeature |r|", "first canonical\ncorrelation"]
        pos = np.arange(2)
        bars = [("world-model latents", res, sns.color_palette("colorblind")[0], ("top_feature_corr", "cca"))]
        if "x_untrained" in result:
            bars.append(("untrained same model", result["x_untrained"], sns.color_palette("colorblind")[1],
                         ("top_feature_corr", "cca")))
        bars.append(("random Gaussian features", res, "0.6", ("random_top_corr", "random_cca")))
        width = 0.8 / len(bars)
        for i, (label, src, color, keys) in enumerate(bars):
            ax.bar(pos + (i - (len(bars) - 1) / 2) * width, [src[k] for k in keys], width, label=label,
                   color=color)
        ax.set_xticks(pos, names)
        ax.set_ylim(0, 1.05)
        _finish(ax, "correlation with player x", "", "correlation", sci_x=False)
        ax.legend(loc="upper left", fontsize="x-small")
        ax = axes[0, 2]
        k = int(labels.max()) + 1
        xs = np.clip(np.rint(player_x).astype(int), 0, None)
        counts = np.zeros((k, xs.max() + 1))
        np.add.at(counts, (labels, xs), 1)
        frac = counts / np.maximum(counts.sum(1, keepdims=True), 1)
        im = ax.imshow(frac, aspect="auto", cmap="viridis", origin="lower")
        fig.colorbar(im, ax=ax, label="fraction of the cluster's frames")
        ax.grid(False)
        _finish(ax, f"k-means (k={k}) vs player x", "player x (grid cells)", "cluster")
        fig.suptitle(f"Latent space vs player position ({result['frames']:,} frames, "
                     f"{result['features']} features)")
    return fig
