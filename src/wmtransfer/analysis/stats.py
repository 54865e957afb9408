"""Statistics of learning curves over seeds: pure numpy functions of arrays.

Conventions: a curve is ``(x, y)`` with ``x`` increasing (env steps or updates); a set of seeds on a common
grid is an array ``Y`` of shape ``(n_seeds, n_grid)`` with NaN where a seed has no value (before its first
or after its last logged point). Confidence intervals are percentile bootstraps over seeds with an explicit
seed, so reruns give identical numbers.

Definitions (``B`` = budget, the last grid point; ``y(x)`` a seed's curve on the grid):

* final return = mean of ``y`` over the last ``last_frac * B`` env steps of the curve (ending at its last
  defined point);
* AUC = (1/B) * integral_0^B y(x) dx (trapezoid rule), i.e. the mean return over the budget, in return
  units, so conditions with one budget compare directly;
* steps to threshold = the first grid ``x`` with ``y(x) >= threshold``; NaN when never reached;
* speed-up of a condition against scratch = mean steps-to-threshold of scratch / mean of the condition,
  over the seeds that reached it (both CIs by resampling each group's seeds independently);
* effect of a condition against another = difference of their means over seeds, CI by resampling each
  group's seeds independently (:func:`difference_ci`), and a verdict on a predicted direction
  (:func:`verdict`): *holds* when the CI lies on the predicted side of zero, *does not hold* when it lies
  on the other side, *inconclusive* when it contains zero or either group has fewer than ``min_seeds``.
  A ratio (speed-up) is only reported when its own verdict is not inconclusive (:func:`ratio_verdict`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..config import ConfigError


@dataclass(frozen=True)
class CI:
    """A mean over seeds with its 95% (or ``level``) bootstrap interval; ``low``/``high`` NaN if n < 2."""

    mean: float
    low: float
    high: float
    n: int


@dataclass
class StatsConfig:
    """Hyperparameters of the curve statistics and figures (the ``report`` section of a study config)."""

    #: Points of the common env-step grid each seed's curve is interpolated onto.
    grid_points: int = 100
    #: Centred moving average over this many logged points before interpolation (1 = none); episode
    #: returns are noisy, so figures and statistics use the smoothed curve.
    smooth_window: int = 10
    #: The same for world-model loss curves; 1 = none, as logged losses are already means over their
    #: logging interval and the first updates (the seed 001 zoom) must not be blurred.
    loss_smooth_window: int = 1
    #: Final return = mean over this last fraction of the curve.
    last_frac: float = 0.1
    #: Threshold of steps-to-threshold, as a fraction of scratch's rise: start + frac * (final - start) of
    #: scratch's mean curve (start = its first grid value, final = its final return).
    threshold_frac: float = 0.8
    #: Bootstrap resamples for every CI.
    n_boot: int = 2000
    #: Confidence level of the bootstrap intervals.
    ci_level: float = 0.95
    #: Seed of the bootstrap RNG.
    seed: int = 0
    #: Updates shown in the zoomed world-model loss figure (seed 001 section 3.2: first 5000).
    zoom_updates: int = 5000
    #: Compute-matched figure: divide a pre-training cost by the number of targets trained from it (one
    #: pre-training serves every fine-tuned target, seed 003 figure 7); False charges it to each target.
    amortise_pretraining: bool = False
    #: Fewest seeds per group for a verdict or a speed-up; below it the report says "inconclusive" (a
    #: percentile bootstrap over one or two seeds has no width worth the name).
    min_seeds: int = 3
    #: "Early" world-model losses: a window inside the first this many updates (seed 001 §3.2: the
    #: pre-trained model's loss "decreases much faster", the largest gap near update 1000 of 5000).
    early_updates: int = 50
    #: The early window starts after this fraction of ``early_updates``: a loaded world model meets a new
    #: game with a transient (its KL is high until the posterior adapts to the new frames; measured on
    #: Space Invaders: ~10 of 40 updates, docs/report.md), which the seed's 5000-update figure cannot show.
    #: 0 compares from the first update.
    early_from_frac: float = 0.5
    #: "Early" returns: the mean return over this first fraction of the budget (seed 001: the fine-tuned
    #: agent's lead is largest in the first 10k of 100k steps on MinAtar, 10k-20k on Atari Breakout).
    early_frac: float = 0.2
    #: Compute-matched figure: also charge the env steps of the DQN runs that produced the pre-training
    #: datasets (summary key ``dqn_env_steps``), not only the steps of the datasets themselves.
    count_dqn_steps: bool = False

    def __post_init__(self) -> None:
        checks = {"grid_points": self.grid_points >= 2, "smooth_window": self.smooth_window >= 1,
                  "loss_smooth_window": self.loss_smooth_window >= 1,
                  "last_frac": 0 < self.last_frac <= 1, "threshold_frac": 0 < self.threshold_frac <= 1,
                  "n_boot": self.n_boot >= 1, "ci_level": 0 < self.ci_level < 1,
                  "zoom_updates": self.zoom_updates >= 1, "min_seeds": self.min_seeds >= 2,
                  "early_updates": self.early_updates >= 1,
                  "early_from_frac": 0 <= self.early_from_frac < 1, "early_frac": 0 < self.early_frac <= 1}
        bad = ", ".join(f"{k}={getattr(self, k)!r}" for k, ok in checks.items() if not ok)
        if bad:
            raise ConfigError(f"report: out of range: {bad}")


def smooth(y: np.ndarray, window: int) -> np.ndarray:
    """Symmetric moving average: ``out[i] = mean(y[i - h_i : i + h_i + 1])`` with
    ``h_i = min(window // 2, i, n - 1 - i)`` (the window shrinks at the ends so it stays centred), NaN
    ignored. Centred, so a linear trend is not shifted (a trailing mean lags by window/2 points) and the
    first and last points are not pulled towards their neighbours on one side only."""
    y = np.asarray(y, dtype=float)
    if window <= 1 or y.size == 0:
        return y.copy()
    valid = ~np.isnan(y)
    csum = np.concatenate([[0.0], np.cumsum(np.where(valid, y, 0.0))])
    ccount = np.concatenate([[0], np.cumsum(valid)])
    i = np.arange(y.size)
    h = np.minimum(window // 2, np.minimum(i, y.size - 1 - i))
    lo, hi = i - h, i + h + 1
    count = ccount[hi] - ccount[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, (csum[hi] - csum[lo]) / np.maximum(count, 1), np.nan)


def interpolate_to_grid(x: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Linear interpolation of one curve onto ``grid``; NaN outside ``[x.min(), x.max()]`` (no extrapolation).

    Repeated ``x`` values (several episodes ending at one logged step) are averaged first.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    grid = np.asarray(grid, dtype=float)
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    out = np.full(grid.shape, np.nan)
    if x.size == 0:
        return out
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    ux, inv = np.unique(x, return_inverse=True)
    uy = np.bincount(inv, weights=y) / np.bincount(inv)
    inside = (grid >= ux[0]) & (grid <= ux[-1])
    out[inside] = np.interp(grid[inside], ux, uy)
    return out


def common_grid(x_max: float, points: int) -> np.ndarray:
    """``points`` evenly spaced values from 0 to ``x_max`` (the budget)."""
    return np.linspace(0.0, float(x_max), int(points))


def seeds_on_grid(curves: list[tuple[np.ndarray, np.ndarray]], grid: np.ndarray,
                  window: int = 1) -> np.ndarray:
    """Each seed's ``(x, y)`` curve smoothed, interpolated onto ``grid``, stacked: (n_seeds, n_grid)."""
    rows = []
    for x, y in curves:
        x = np.asarray(x, dtype=float)
        order = np.argsort(x, kind="stable")
        rows.append(interpolate_to_grid(x[order], smooth(np.asarray(y, dtype=float)[order], window), grid))
    return np.vstack(rows) if rows else np.empty((0, grid.size))


def nanmean(a: np.ndarray, axis: int) -> np.ndarray:
    """Mean over ``axis`` ignoring NaN, NaN (without a warning) where all values are NaN."""
    count = np.sum(~np.isnan(a), axis=axis)
    total = np.nansum(a, axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def bootstrap_mean_ci(samples: np.ndarray, n_boot: int = 2000, level: float = 0.95,
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over axis 0 and its percentile-bootstrap CI, vectorised over the remaining axes.

    ``samples`` has shape (n_seeds, ...) and may hold NaN (a seed without a value there; each resample's
    mean ignores it). Resamples draw ``n_seeds`` seeds with replacement ``n_boot`` times with
    ``np.random.default_rng(seed)``. With fewer than two values at a point, low/high are NaN there.
    Returns ``(mean, low, high)``, each of shape ``samples.shape[1:]``.
    """
    samples = np.asarray(samples, dtype=float)
    n = samples.shape[0]
    mean = nanmean(samples, 0) if n else np.full(samples.shape[1:], np.nan)
    low = np.full(samples.shape[1:], np.nan)
    high = np.full(samples.shape[1:], np.nan)
    if n < 2:
        return mean, low, high
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    boot = nanmean(samples[idx], 1)  # (n_boot, ...)
    alpha = (1.0 - level) / 2.0
    enough = np.sum(~np.isnan(samples), axis=0) >= 2
    if enough.any():
        with np.errstate(invalid="ignore"):
            lo_q, hi_q = np.nanquantile(boot[:, enough], [alpha, 1.0 - alpha], axis=0)
        low[enough], high[enough] = lo_q, hi_q
    return mean, low, high


def scalar_ci(values: np.ndarray, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> CI:
    """:func:`bootstrap_mean_ci` of one value per seed (NaN values are dropped)."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    mean, low, high = bootstrap_mean_ci(v[:, None], n_boot, level, seed)
    return CI(float(mean[0]), float(low[0]), float(high[0]), int(v.size))


def final_return(grid: np.ndarray, y: np.ndarray, last_frac: float = 0.1) -> np.ndarray:
    """Mean of the last ``last_frac`` of each curve: over grid points ``x`` with
    ``x_end - last_frac * (grid[-1] - grid[0]) <= x <= x_end``, ``x_end`` the curve's last defined point.

    Ending the window at the curve's own last point (not at the budget) keeps sparse curves (evaluation
    returns logged every N steps) defined; a run that stopped early still shows in its AUC and budget.
    ``y`` has shape (..., n_grid); NaN where a curve has no defined point.
    """
    grid = np.asarray(grid, dtype=float)
    y = np.asarray(y, dtype=float)
    defined = ~np.isnan(y)
    last = y.shape[-1] - 1 - np.argmax(defined[..., ::-1], axis=-1)
    x_end = grid[last][..., None]
    window = (grid <= x_end) & (grid >= x_end - last_frac * (grid[-1] - grid[0]))
    out = nanmean(np.where(window, y, np.nan), -1)
    return np.where(defined.any(-1), out, np.nan)


def area_under_curve(grid: np.ndarray, y: np.ndarray, budget: float | None = None) -> np.ndarray:
    """Trapezoid area of ``y`` over ``grid`` divided by ``budget`` (default: the grid's span).

    NaN points are left out (the area covers where the curve is defined) but the divisor stays the
    budget, so a run that stopped early is not rewarded; NaN with fewer than two defined points.
    Shape (..., n_grid) -> (...).
    """
    grid = np.asarray(grid, dtype=float)
    y = np.asarray(y, dtype=float)
    budget = float(grid[-1] - grid[0]) if budget is None else float(budget)
    if budget <= 0:
        return np.full(y.shape[:-1], np.nan)
    both = ~np.isnan(y[..., 1:]) & ~np.isnan(y[..., :-1])
    seg = np.where(both, 0.5 * (np.nan_to_num(y[..., 1:]) + np.nan_to_num(y[..., :-1])) * np.diff(grid), 0.0)
    area = seg.sum(-1) / budget
    return np.where(np.sum(~np.isnan(y), axis=-1) < 2, np.nan, area)


def steps_to_threshold(grid: np.ndarray, y: np.ndarray, threshold: float) -> np.ndarray:
    """First grid value where ``y >= threshold`` along the last axis; NaN where never reached."""
    grid = np.asarray(grid, dtype=float)
    y = np.asarray(y, dtype=float)
    with np.errstate(invalid="ignore"):
        hit = np.nan_to_num(y, nan=-np.inf) >= threshold
    first = np.argmax(hit, axis=-1)
    return np.where(hit.any(-1), grid[first], np.nan)


def threshold_from_reference(grid: np.ndarray, reference: np.ndarray, frac: float = 0.8,
                             last_frac: float = 0.1) -> float:
    """Threshold ``start + frac * (final - start)`` of the reference (scratch) seeds' mean curve."""
    mean = nanmean(np.asarray(reference, dtype=float), 0)
    defined = np.flatnonzero(~np.isnan(mean))
    if defined.size == 0:
        return float("nan")
    start = float(mean[defined[0]])
    final = float(final_return(grid, mean, last_frac))
    return start + frac * (final - start)


def _ratio(ref: np.ndarray, cond: np.ndarray) -> np.ndarray:
    """ref / cond with 0/0 = 1 (both at the threshold from the start) and x/0 = inf."""
    safe = np.where(cond > 0, cond, 1.0)
    return np.where(cond > 0, ref / safe, np.where(ref > 0, np.inf, 1.0))


def speedup_ci(ref_steps: np.ndarray, cond_steps: np.ndarray, n_boot: int = 2000, level: float = 0.95,
               seed: int = 0) -> CI:
    """Speed-up ``mean(ref_steps) / mean(cond_steps)`` with a bootstrap CI resampling each group's seeds.

    NaN steps (threshold never reached) are dropped first; ``n`` is the number of condition seeds that
    reached it. NaN when either group has no seed that reached the threshold; low/high NaN when both
    groups have fewer than two values.
    """
    ref = np.asarray(ref_steps, dtype=float)
    cond = np.asarray(cond_steps, dtype=float)
    ref, cond = ref[~np.isnan(ref)], cond[~np.isnan(cond)]
    if ref.size == 0 or cond.size == 0:
        return CI(float("nan"), float("nan"), float("nan"), int(cond.size))
    point = float(_ratio(np.array([ref.mean()]), np.array([cond.mean()]))[0])
    if ref.size < 2 and cond.size < 2:
        return CI(point, float("nan"), float("nan"), int(cond.size))
    rng = np.random.default_rng(seed)
    r = ref[rng.integers(0, ref.size, size=(n_boot, ref.size))].mean(1)
    c = cond[rng.integers(0, cond.size, size=(n_boot, cond.size))].mean(1)
    ratio = _ratio(r, c)
    alpha = (1.0 - level) / 2.0
    with np.errstate(invalid="ignore"):  # inf - inf between two unbounded resamples: NaN, not a warning
        low, high = np.quantile(ratio, [alpha, 1.0 - alpha])
    return CI(point, float(low), float(high), int(cond.size))


#: The three answers a finding can get.
HOLDS, DOES_NOT_HOLD, INCONCLUSIVE = "holds", "does not hold", "inconclusive"


@dataclass(frozen=True)
class Effect:
    """``mean(a) - mean(b)`` over seeds with its bootstrap CI; ``n_a``/``n_b`` seeds behind each mean."""

    mean: float
    low: float
    high: float
    n_a: int
    n_b: int


def difference_ci(a: np.ndarray, b: np.ndarray, n_boot: int = 2000, level: float = 0.95,
                  seed: int = 0) -> Effect:
    """Difference of means ``a - b`` (one value per seed in each group, NaN dropped) with a percentile
    bootstrap CI that resamples each group's seeds independently. ``b`` may be empty: then the effect is
    ``mean(a)`` with a one-sample CI (for values that are already per-seed differences). low/high are NaN
    when a group has fewer than two values."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if a.size == 0:
        return Effect(float("nan"), float("nan"), float("nan"), 0, int(b.size))
    point = float(a.mean() - (b.mean() if b.size else 0.0))
    if a.size < 2 or (b.size and b.size < 2):
        return Effect(point, float("nan"), float("nan"), int(a.size), int(b.size))
    rng = np.random.default_rng(seed)
    boot = a[rng.integers(0, a.size, size=(n_boot, a.size))].mean(1)
    if b.size:
        boot = boot - b[rng.integers(0, b.size, size=(n_boot, b.size))].mean(1)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(boot, [alpha, 1.0 - alpha])
    return Effect(point, float(low), float(high), int(a.size), int(b.size))


def verdict(effect: Effect, direction: int, min_seeds: int = 3) -> tuple[str, str]:
    """``(answer, reason)`` for the claim that ``effect`` has the sign of ``direction`` (+1 or -1).

    *holds*: every group has at least ``min_seeds`` seeds and the CI lies strictly on the predicted side
    of zero; *does not hold*: the CI lies strictly on the other side; *inconclusive* otherwise, with the
    reason (too few seeds, no CI, or a CI that contains zero).
    """
    if direction not in (1, -1):
        raise ValueError(f"direction must be +1 or -1, got {direction!r}")
    sizes = [effect.n_a] + ([effect.n_b] if effect.n_b else [])
    if min(sizes) < min_seeds:
        return INCONCLUSIVE, f"{min(sizes)} seed(s) in a group, fewer than the {min_seeds} a verdict needs"
    if not (math.isfinite(effect.low) and math.isfinite(effect.high)):
        return INCONCLUSIVE, "no finite confidence interval"
    low, high = sorted((effect.low * direction, effect.high * direction))
    if low > 0:
        return HOLDS, "the CI excludes zero on the predicted side"
    if high < 0:
        return DOES_NOT_HOLD, "the CI excludes zero on the other side"
    return INCONCLUSIVE, "the CI contains zero (no effect)"


def ratio_verdict(ci: CI, n_ref: int, min_seeds: int = 3) -> tuple[str, str]:
    """Whether a ratio (a speed-up, ``ci``) may be printed: ``(answer, reason)`` with *holds* (the CI lies
    above 1), *does not hold* (below 1) or *inconclusive*: fewer than ``min_seeds`` seeds reached the
    threshold in either group (``n_ref`` for the reference, ``ci.n`` for the condition), a CI that is not
    finite (a threshold reached at step 0 gives ``inf``), or a CI that contains 1 (no effect)."""
    if min(ci.n, n_ref) < min_seeds:
        return INCONCLUSIVE, (f"{min(ci.n, n_ref)} seed(s) reached the threshold in a group, fewer than "
                              f"{min_seeds}")
    values = (ci.mean, ci.low, ci.high)
    if not all(math.isfinite(v) for v in values):
        return INCONCLUSIVE, "no finite confidence interval"
    if ci.low > 1.0:
        return HOLDS, "the CI lies above 1"
    if ci.high < 1.0:
        return DOES_NOT_HOLD, "the CI lies below 1"
    return INCONCLUSIVE, "the CI contains 1 (no effect)"
