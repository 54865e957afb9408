"""Curve statistics on synthetic arrays whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from wmtransfer.analysis import stats


def test_smooth_keeps_constants_and_linear_trends():
    assert np.allclose(stats.smooth(np.full(20, 3.0), 7), 3.0)
    line = np.arange(30, dtype=float)
    assert np.allclose(stats.smooth(line, 9), line)  # centred: no lag on a linear trend
    assert np.allclose(stats.smooth(line, 1), line)
    noisy = np.where(np.arange(10) % 2 == 0, 1.0, -1.0)
    assert np.abs(stats.smooth(noisy, 5)[2:-2]).max() <= 0.2 + 1e-12
    with_nan = np.array([1.0, np.nan, 3.0])
    assert stats.smooth(with_nan, 3)[1] == pytest.approx(2.0)


def test_interpolate_to_grid_is_exact_on_lines_and_does_not_extrapolate():
    x = np.array([10.0, 20.0, 40.0])
    y = 2 * x + 1
    grid = np.array([0.0, 10.0, 15.0, 30.0, 40.0, 50.0])
    out = stats.interpolate_to_grid(x, y, grid)
    assert np.isnan(out[0]) and np.isnan(out[-1])
    assert np.allclose(out[1:5], 2 * grid[1:5] + 1)
    # two episodes ending at the same logged step are averaged
    dup = stats.interpolate_to_grid(np.array([0.0, 5.0, 5.0, 10.0]), np.array([0.0, 4.0, 6.0, 10.0]),
                                    np.array([5.0]))
    assert dup[0] == pytest.approx(5.0)


def test_bootstrap_ci_constant_single_seed_and_normal_width():
    mean, low, high = stats.bootstrap_mean_ci(np.full((5, 3), 2.0))
    assert np.allclose([mean, low, high], 2.0)
    mean, low, high = stats.bootstrap_mean_ci(np.array([[1.0, 2.0]]))
    assert np.allclose(mean, [1.0, 2.0]) and np.all(np.isnan(low)) and np.all(np.isnan(high))
    rng = np.random.default_rng(1)
    sample = rng.normal(5.0, 2.0, size=(400, 1))
    mean, low, high = stats.bootstrap_mean_ci(sample, n_boot=4000, seed=3)
    half = 1.96 * sample.std(ddof=1) / math.sqrt(400)
    assert low[0] < mean[0] < high[0]
    assert (high[0] - low[0]) / 2 == pytest.approx(half, rel=0.15)
    again = stats.bootstrap_mean_ci(sample, n_boot=4000, seed=3)
    assert again[1][0] == low[0] and again[2][0] == high[0]  # seeded
    # a grid point where only one seed has a value: mean of that value, no CI
    ragged = np.array([[1.0, 4.0], [3.0, np.nan], [5.0, np.nan]])
    mean, low, high = stats.bootstrap_mean_ci(ragged)
    assert mean[1] == 4.0 and np.isnan(low[1]) and low[0] <= 3.0 <= high[0]


def test_final_return_auc_and_steps_to_threshold_on_known_curves():
    grid = np.linspace(0, 1000, 101)
    y = np.where(grid >= 900, 5.0, 0.0)
    assert stats.final_return(grid, y, last_frac=0.1) == pytest.approx(5.0)
    sparse = np.where(grid <= 500, np.where(grid >= 400, 5.0, 0.0), np.nan)  # ends at 500: window 400..500
    assert stats.final_return(grid, np.vstack([y, sparse]), 0.1) == pytest.approx([5.0, 5.0])
    assert np.isnan(stats.final_return(grid, np.full(101, np.nan)))
    assert stats.area_under_curve(grid, np.full(101, 3.0)) == pytest.approx(3.0)
    assert stats.area_under_curve(grid, grid / 1000) == pytest.approx(0.5)
    stopped = np.where(grid <= 500, 2.0, np.nan)  # a run that stopped half way keeps the budget divisor
    assert stats.area_under_curve(grid, stopped) == pytest.approx(1.0)
    assert np.isnan(stats.area_under_curve(grid, np.full(101, np.nan)))
    seeds = np.vstack([grid / 100, grid / 200, np.zeros(101)])
    steps = stats.steps_to_threshold(grid, seeds, 4.0)
    assert steps[0] == pytest.approx(400) and steps[1] == pytest.approx(800) and np.isnan(steps[2])
    ref = np.vstack([grid / 100, grid / 100])  # 0 -> ~9.5 over the last 10%
    thr = stats.threshold_from_reference(grid, ref, frac=0.5, last_frac=0.1)
    assert thr == pytest.approx(0.5 * np.mean(grid[grid >= 900] / 100))


def test_speedup_ci_known_ratio_and_unreached():
    ci = stats.speedup_ci(np.array([100.0, 100.0]), np.array([50.0, 50.0]))
    assert (ci.mean, ci.low, ci.high, ci.n) == (2.0, 2.0, 2.0, 2)
    rng = np.random.default_rng(0)
    cis = [stats.speedup_ci(rng.normal(1000, 100, 10), rng.normal(250, 25, 10), n_boot=1000, seed=i)
           for i in range(100)]
    assert all(c.low <= c.mean <= c.high for c in cis)
    coverage = np.mean([c.low <= 4.0 <= c.high for c in cis])  # true ratio of means is 4
    assert 0.8 <= coverage <= 1.0
    never = stats.speedup_ci(np.array([100.0, 100.0]), np.array([np.nan, np.nan]))
    assert np.isnan(never.mean) and never.n == 0
    at_start = stats.speedup_ci(np.array([0.0, 0.0]), np.array([0.0, 0.0]))
    assert (at_start.mean, at_start.low, at_start.high) == (1.0, 1.0, 1.0)
    one_each = stats.speedup_ci(np.array([90.0]), np.array([30.0]))
    assert one_each.mean == pytest.approx(3.0) and np.isnan(one_each.low)


def test_exponential_curves_give_the_time_constant_ratio_as_speedup():
    """Returns 10 (1 - exp(-t / tau)) with tau 4000 vs 2000: any threshold is reached twice as fast."""
    rng = np.random.default_rng(0)
    grid = stats.common_grid(20000, 201)
    curves = {}
    for tau in (4000.0, 2000.0):
        seeds = []
        for _ in range(4):
            x = np.sort(rng.uniform(0, 20000, 400))
            seeds.append((x, 10 * (1 - np.exp(-x / tau)) + 0.3 * rng.standard_normal(400)))
        curves[tau] = stats.seeds_on_grid(seeds, grid, window=5)
    thr = stats.threshold_from_reference(grid, curves[4000.0], frac=0.8)
    s_ref = stats.steps_to_threshold(grid, curves[4000.0], thr)
    s_fast = stats.steps_to_threshold(grid, curves[2000.0], thr)
    ci = stats.speedup_ci(s_ref, s_fast, seed=2)
    assert ci.low <= 2.0 <= ci.high or abs(ci.mean - 2.0) < 0.15
    assert 1.8 < ci.mean < 2.2


def test_stats_config_refuses_out_of_range_values():
    with pytest.raises(ValueError, match="last_frac=0.0"):
        stats.StatsConfig(last_frac=0.0)
    with pytest.raises(ValueError, match="ci_level=1.5"):
        stats.StatsConfig(ci_level=1.5)


def test_difference_ci_and_verdicts_on_known_groups():
    rng = np.random.default_rng(0)
    low_loss, high_loss = rng.normal(1.0, 0.1, 5), rng.normal(3.0, 0.1, 5)
    eff = stats.difference_ci(low_loss, high_loss, n_boot=1000)
    assert eff.mean == pytest.approx(low_loss.mean() - high_loss.mean())
    assert eff.low <= eff.mean <= eff.high < 0 and (eff.n_a, eff.n_b) == (5, 5)
    assert stats.verdict(eff, -1)[0] == stats.HOLDS
    assert stats.verdict(eff, +1)[0] == stats.DOES_NOT_HOLD
    same = stats.difference_ci(np.arange(6.0), np.arange(6.0)[::-1] + 0.1, n_boot=1000)
    answer, reason = stats.verdict(same, -1)
    assert answer == stats.INCONCLUSIVE and "contains zero" in reason
    # a huge effect over two seeds is still no verdict: too few seeds for a CI worth the name
    two = stats.difference_ci(np.array([1.0, 1.1]), np.array([9.0, 9.1]))
    answer, reason = stats.verdict(two, -1, min_seeds=3)
    assert answer == stats.INCONCLUSIVE and "fewer than the 3" in reason
    one_sample = stats.difference_ci(np.array([2.0, 2.2, 1.9, 2.1]), np.array([]))
    assert one_sample.n_b == 0 and stats.verdict(one_sample, +1)[0] == stats.HOLDS
    with pytest.raises(ValueError, match="direction"):
        stats.verdict(eff, 0)


def test_ratio_verdict_never_passes_an_unbounded_or_noisy_ratio():
    inf_ci = stats.speedup_ci(np.array([100.0, 200.0, 300.0]), np.array([0.0, 0.0, 0.0]))
    assert math.isinf(inf_ci.mean)
    assert stats.ratio_verdict(inf_ci, 3)[0] == stats.INCONCLUSIVE
    noisy = stats.speedup_ci(np.array([100.0, 900.0, 500.0]), np.array([800.0, 150.0, 400.0]))
    answer, reason = stats.ratio_verdict(noisy, 3)
    assert answer == stats.INCONCLUSIVE and "contains 1" in reason
    clear = stats.speedup_ci(np.array([1000.0, 1100.0, 900.0]), np.array([500.0, 450.0, 550.0]))
    assert stats.ratio_verdict(clear, 3) == (stats.HOLDS, "the CI lies above 1")
    assert stats.ratio_verdict(clear, 2)[0] == stats.INCONCLUSIVE  # two reference seeds reached it
