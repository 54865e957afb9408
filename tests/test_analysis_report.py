"""Figures, tables and the report CLI on synthetic metrics.csv folders."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
from analysis_synthetic import metrics_frame, write_baselines, write_pretrain_summary, write_study

from wmtransfer.analysis import curves, figures, report, tables
from wmtransfer.analysis.baselines import read_baselines
from wmtransfer.analysis.stats import StatsConfig
from wmtransfer.cli import main

FAST = StatsConfig(grid_points=40, n_boot=200)
TARGET = "minatar-space_invaders"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    paths = write_study(root, seeds=(0, 1, 2), budget=12000)
    return root, paths, curves.aggregate(paths)


@pytest.mark.slow
def test_plot_report_and_make_tables_cli(study, tmp_path):
    root, paths, table = study
    table_path = curves.write_table(table, tmp_path / "curves.csv")[1]  # the parquet file
    summary = write_pretrain_summary(root, dataset_env_steps=8000)
    base = write_baselines(root, TARGET, seeds=(0,))
    out = tmp_path / "report"
    argv = ["plot-report", "--table", str(table_path), "--pretrain-summaries", str(summary),
            "--baselines", *map(str, base), "--out", str(out),
            "--config", json.dumps({"n_boot": 200, "zoom_updates": 200})]
    assert main(argv) == 0
    manifest = json.loads((out / "figures.json").read_text())
    names = {f"return_{TARGET}", f"eval_return_{TARGET}", f"wm_loss_{TARGET}", f"wm_loss_zoom_{TARGET}",
             f"compute_matched_{TARGET}", "per_level_return"}
    assert set(manifest) == names
    for name in names:
        for ext in ("png", "svg"):
            assert (out / f"{name}.{ext}").stat().st_size > 5000
    assert "finetune: 8,000" in manifest[f"compute_matched_{TARGET}"]["caption"]
    assert "DQN" in manifest[f"return_{TARGET}"]["caption"]
    assert "One seed only" not in manifest[f"return_{TARGET}"]["caption"]
    assert (out / "captions.md").read_text().count("![") == len(names)

    assert main(["make-tables", "--table", str(table_path), "--out", str(out)]) == 0
    md = (out / "table.md").read_text()
    assert f"## {TARGET}: episode_return" in md and "| finetune | 3 |" in md
    results = pd.read_csv(out / "table.csv")
    assert set(results["condition"]) == {"scratch", "finetune", "frozen_rssm"}


def test_table_recovers_the_known_speedups(study):
    """Synthetic returns rise with tau 4000 (scratch), 2000 (finetune), 6000 (frozen_rssm)."""
    _, _, table = study
    results = tables.study_table(table, StatsConfig(grid_points=121, n_boot=500))
    rows = results[results["metric"] == "episode_return"].set_index("condition")
    assert rows.loc["scratch", "speedup_vs_scratch"] == pytest.approx(1.0)
    fin, frz = rows.loc["finetune"], rows.loc["frozen_rssm"]
    assert 1.7 < fin["speedup_vs_scratch"] < 2.3 and fin["speedup_low"] <= fin["speedup_vs_scratch"]
    assert 0.58 < frz["speedup_vs_scratch"] < 0.75
    assert fin["auc"] > rows.loc["scratch", "auc"] > frz["auc"]
    assert fin["auc_low"] <= fin["auc"] <= fin["auc_high"]
    assert rows["n_reached"].tolist() == [3, 3, 3]


def test_one_seed_draws_no_band_and_says_so(tmp_path):
    paths = write_study(tmp_path, conditions=("scratch",), seeds=(0,), budget=4000)
    paths += write_study(tmp_path, conditions=("finetune",), seeds=(0, 1), budget=4000)
    table = curves.aggregate(paths)
    palette = figures.condition_palette(table["condition"].unique())
    fig, caption = figures.plot_returns(table, TARGET, FAST, palette)
    assert "One seed only, so no CI, for: scratch." in caption
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.lines] == ["scratch (n=1)", "finetune (n=2)"]
    assert len(ax.collections) == 1  # one CI band: finetune's


def test_missing_target_data_is_skipped_with_a_log_line(study, tmp_path, caplog):
    _, _, table = study
    only_actor = pd.DataFrame({"env_step": [10, 20], "update": [1, 2], "wall_time": [0.1, 0.2],
                               "actor_loss": [0.5, 0.4]})
    extra = curves.to_long(only_actor, curves.RunKey("demo", "minatar-breakout", "scratch", 0))
    returns_only = table[table["metric"] == "episode_return"]  # fewer figures: a faster test
    both = pd.concat([returns_only, extra], ignore_index=True)
    with caplog.at_level(logging.INFO, logger="wmtransfer.analysis.report"):
        manifest = report.build_figures(both, tmp_path, FAST)
    assert "return_minatar-breakout" not in manifest and f"return_{TARGET}" in manifest
    assert "figure return_minatar-breakout: nothing to draw, skipped" in caplog.text
    assert not (tmp_path / "return_minatar-breakout.png").exists()
    assert f"compute_matched_{TARGET}" not in manifest  # no pre-training cost given: nothing to match


def test_colours_are_fixed_per_condition_across_figures(study):
    _, _, table = study
    palette = figures.condition_palette(table["condition"].unique())
    assert figures.condition_palette(["finetune"])["finetune"] == palette["finetune"]
    fig_r, _ = figures.plot_returns(table, TARGET, FAST, palette)
    fig_l, _ = figures.plot_wm_losses(table, TARGET, FAST, palette)
    fig_c, _ = figures.plot_compute_matched(table, TARGET, FAST, palette, {"finetune": 5000.0})

    def colours(fig):
        return {line.get_label().split(" (")[0]: line.get_color() for line in fig.axes[0].lines
                if not line.get_label().startswith("_")}

    assert colours(fig_r) == colours(fig_l) == colours(fig_c)
    assert len(set(map(tuple, colours(fig_r).values()))) == 3


def test_compute_matched_shifts_pretrained_conditions(study):
    _, _, table = study
    palette = figures.condition_palette(table["condition"].unique())
    fig, _ = figures.plot_compute_matched(table, TARGET, FAST, palette, {"finetune": 5000.0})
    lines = {line.get_label().split(" (")[0]: line for line in fig.axes[0].lines
             if not line.get_label().startswith("_")}
    x, y = lines["finetune"].get_data()
    assert np.nanmin(np.asarray(x)[~np.isnan(np.asarray(y))]) >= 5000.0
    x, y = lines["scratch"].get_data()
    assert np.nanmin(np.asarray(x)[~np.isnan(np.asarray(y))]) < 1000.0
    assert fig.axes[0].get_xlim()[1] == pytest.approx(12000 + 5000)


def test_compute_matched_mean_averages_targets_per_seed(tmp_path):
    """Two targets with constant returns: the averaged curve is the mean of the targets, each shifted by
    its own pre-training cost; a single target gives no averaged figure."""
    rows = []
    levels = {"a": {"scratch": 1.0, "finetune": 3.0}, "b": {"scratch": 2.0, "finetune": 5.0}}
    for target, by_label in levels.items():
        for label, value in by_label.items():
            for seed in (0, 1):
                for step in range(0, 10001, 500):
                    rows.append({"study": "s", "target": target, "condition": label, "seed": seed,
                                 "game": target, "env_step": step, "update": step // 16, "wall_time": 0.0,
                                 "metric": "episode_return", "value": value})
    table = pd.DataFrame(rows)
    palette = figures.condition_palette(["scratch", "finetune"])
    costs = {"a": {"finetune": 1000.0}, "b": {"finetune": 3000.0}}
    fig, caption = figures.plot_compute_matched_mean(table, FAST, palette, costs)
    lines = {line.get_label().split(" (")[0]: line for line in fig.axes[0].lines
             if not line.get_label().startswith("_")}
    x, y = (np.asarray(v) for v in lines["finetune"].get_data())
    assert np.nanmin(x[~np.isnan(y)]) >= 1000.0  # nothing before the cheaper target's cost
    np.testing.assert_allclose(y[(x >= 3000.0) & (x <= 11000.0)], 4.0)  # (3 + 5) / 2 while both run
    np.testing.assert_allclose(y[(x >= 1000.0) & (x < 3000.0)], 3.0)  # only target a has started
    np.testing.assert_allclose(y[x > 11000.0], 5.0)  # only target b is still running
    x, y = (np.asarray(v) for v in lines["scratch"].get_data())
    np.testing.assert_allclose(y[~np.isnan(y)], 1.5)
    assert "mean cost per label, dashed: finetune: 2,000" in caption
    assert figures.plot_compute_matched_mean(table[table["target"] == "a"], FAST, palette, costs) is None


def test_per_level_splits_a_multitask_run_by_game(tmp_path):
    levels = ("mario-3-1", "mario-3-2")
    run = tmp_path / "results" / "pretrain_agent" / "E4" / "seed0" / "metrics.csv"
    run.parent.mkdir(parents=True)
    metrics_frame("finetune", 0, 6000, games=levels).to_csv(run, index=False)
    paths = [run] + write_study(tmp_path, targets=levels, conditions=("scratch",), seeds=(0, 1), budget=3000)
    table = curves.aggregate(paths, study="demo")
    assert set(curves.select(table, condition="pretrain_agent")["target"]) == {"E4"}
    palette = figures.condition_palette(table["condition"].unique())
    fig, caption = figures.plot_per_level(table, FAST, palette)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == list(levels)
    styles = {line.get_label().split(" (")[0]: line.get_linestyle() for line in panels[0].lines}
    assert styles == {"scratch": "--", "pretrain_agent [E4]": "-"}


def test_pretrain_costs_from_summaries(tmp_path):
    e4 = write_pretrain_summary(tmp_path, "E4", dataset_env_steps=1000)
    e10 = write_pretrain_summary(tmp_path, "E10", dataset_env_steps=5000)
    for path, name in ((e4, "E4"), (e10, "E10")):  # pretrain summaries name their envset
        path.write_text(json.dumps({**json.loads(path.read_text()), "envset": name}))
    online = tmp_path / "online.json"
    online.write_text(json.dumps({"env_steps": 3000, "updates": 10, "envset": "E4"}))
    runs = [("g1", "scratch"), ("g1", "finetune-E4"), ("g1", "finetune-E10"), ("g1", "frozen_rssm-E4"),
            ("g1", "finetune_agent"), ("g2", "finetune-E4")]
    found = report.read_pretrain_summaries([str(e4), str(e10), str(online)])
    costs = report.resolve_costs(found, runs)
    assert costs == {("g1", "finetune-E4"): 1000.0, ("g1", "finetune-E10"): 5000.0,
                     ("g1", "frozen_rssm-E4"): 1000.0, ("g1", "finetune_agent"): 3000.0,
                     ("g2", "finetune-E4"): 1000.0}
    shared = report.resolve_costs(found, runs, amortise=True)  # E4's world model serves g1 and g2
    assert shared[("g1", "finetune-E4")] == 500.0 and shared[("g1", "finetune-E10")] == 5000.0
    keyed = report.read_pretrain_summaries([f"g2/finetune-E4={e10}", f"finetune_agent={e4}"])
    assert report.resolve_costs(keyed, runs) == {("g2", "finetune-E4"): 5000.0,
                                                 ("g1", "finetune_agent"): 1000.0}
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    with pytest.raises(curves.MetricsError, match="empty.json"):
        report.read_pretrain_summaries([str(empty)])


def test_amortised_cost_in_the_compute_matched_caption(tmp_path):
    paths = write_study(tmp_path, targets=("mario-3-1", "mario-3-2"), conditions=("scratch", "finetune"),
                        seeds=(0,), budget=3000)
    table = curves.aggregate(paths)
    summary = write_pretrain_summary(tmp_path, "E4", dataset_env_steps=4000)
    costs = report.pretrain_costs([str(summary)], table, amortise=True)
    assert costs == {"mario-3-1": {"finetune": 2000.0}, "mario-3-2": {"finetune": 2000.0}}
    cfg = StatsConfig(grid_points=30, n_boot=50, amortise_pretraining=True)
    palette = figures.condition_palette(table["condition"].unique())
    _, caption = figures.plot_compute_matched(table, "mario-3-1", cfg, palette, costs["mario-3-1"])
    assert "finetune: 2,000" in caption and "amortised" in caption


def test_compute_matched_draws_the_multitask_pretraining_before_finetune_agent(tmp_path):
    run = tmp_path / "results" / "pretrain" / "E4" / "seed0" / "metrics.csv"
    run.parent.mkdir(parents=True)
    metrics_frame("scratch", 0, 8000, games=(TARGET, "minatar-breakout")).to_csv(run, index=False)
    paths = [run] + write_study(tmp_path, conditions=("scratch", "finetune_agent"), seeds=(0,), budget=3000)
    table = curves.aggregate(paths, study="demo")
    palette = figures.condition_palette(table["condition"].unique())
    fig, caption = figures.plot_compute_matched(table, TARGET, FAST, palette, {"finetune_agent": 4000.0})
    lines = {line.get_label().split(" (")[0]: line for line in fig.axes[0].lines
             if not line.get_label().startswith("_")}
    x, y = (np.asarray(v, dtype=float) for v in lines["multi-task pre-training"].get_data())
    assert np.nanmax(x[~np.isnan(y)]) <= 4000.0 + 1e-6
    assert lines["multi-task pre-training"].get_linestyle() == ":"
    assert "scaled by 0.5" in caption


def test_loss_panels_spanning_orders_of_magnitude_use_a_log_axis():
    updates = np.arange(0, 1000, 10)
    wide = pd.DataFrame({"env_step": updates * 16, "update": updates, "wall_time": updates / 10.0,
                         "wm_loss": 500.0 * np.exp(-updates / 50.0) + 1.0,
                         "wm_reward": 0.9 + 0.001 * np.sin(updates)})
    table = curves.to_long(wide, curves.RunKey("demo", TARGET, "scratch", 0))
    palette = figures.condition_palette(["scratch"])
    fig, caption = figures.plot_wm_losses(table, TARGET, StatsConfig(grid_points=40, n_boot=200,
                                                                     zoom_updates=500), palette, zoom=True)
    scales = {ax.get_title(): ax.get_yscale() for ax in fig.axes if ax.get_visible()}
    assert scales == {"total world-model loss": "log", "reward loss (-log p)": "linear"}
    assert "unsmoothed" in caption and "One seed only" in caption


def test_table_prints_no_ratio_from_runs_that_did_not_learn(tmp_path):
    """Seed noise only (flat returns, as in 1,800 env steps where no agent learns): the markdown says
    'inconclusive' for threshold, steps and speed-up, and never prints a ratio such as inf."""
    rows = []
    rng = np.random.default_rng(0)
    for cond in ("scratch", "finetune"):
        for seed in (0, 1, 2, 3):
            for step in range(0, 1801, 60):
                rows.append({"study": "s", "target": TARGET, "condition": cond, "seed": seed, "game": TARGET,
                             "env_step": step, "update": max(0, step - 1000) // 16, "wall_time": 0.0,
                             "metric": "episode_return", "value": float(rng.integers(0, 3))})
    table = pd.DataFrame(rows)
    cfg = StatsConfig(grid_points=30, n_boot=300, smooth_window=1)
    results = tables.study_table(table, cfg)
    md = tables.to_markdown(results, cfg)
    assert "inf" not in md.replace("inconclusive", "")
    assert "x (" not in md  # no "6.19x (...)" ratio cell
    assert "threshold inconclusive: scratch's rise" in md
    assert "| finetune | 4 |" in md and "inconclusive" in md.split("| finetune | 4 |")[1].splitlines()[0]
    assert set(results["speedup_verdict"]) == {"reference", "inconclusive"}


def test_table_prints_the_speedup_when_it_is_clear(study):
    _, _, table = study
    cfg = StatsConfig(grid_points=121, n_boot=500)
    md = tables.to_markdown(tables.study_table(table, cfg), cfg)
    row = next(line for line in md.splitlines() if line.startswith("| finetune |"))
    assert "x (holds)" in row and "| (reference) |" in md


def _flat_runs(budget=1800, prefill=1000, conditions=("scratch", "finetune", "frozen_rssm"), seeds=(0, 1)):
    """Runs of the default study's shape: random prefill, then a few updates; returns do not move."""
    rows = []
    rng = np.random.default_rng(0)
    for cond in conditions:
        for seed in seeds:
            for step in range(20, budget + 1, 20):
                update = max(0, step - prefill) // 16
                rows.append({"study": "s", "target": TARGET, "condition": cond, "seed": seed, "game": TARGET,
                             "env_step": step, "update": update, "wall_time": 0.0,
                             "metric": "episode_return", "value": float(rng.integers(0, 4))})
                if update > 0 and step % 40 == 0:
                    for metric, value in (("wm_loss", 30.0 - update * 0.1), ("wm_reward", 0.946)):
                        rows.append({**rows[-1], "metric": metric,
                                     "value": value + 0.004 * rng.standard_normal()})
    return pd.DataFrame(rows)


def test_zoom_is_skipped_when_the_runs_end_inside_the_window(caplog):
    table = _flat_runs()
    palette = figures.condition_palette(table["condition"].unique())
    with caplog.at_level(logging.INFO, logger="wmtransfer.analysis.figures"):
        assert figures.plot_wm_losses(table, TARGET, FAST, palette, zoom=True) is None
    assert "inside the zoom window of 5000 updates" in caplog.text
    assert figures.plot_wm_losses(table, TARGET, FAST, palette) is not None


def test_flat_loss_panels_are_not_magnified():
    table = _flat_runs()
    palette = figures.condition_palette(table["condition"].unique())
    fig, _ = figures.plot_wm_losses(table, TARGET, FAST, palette)
    panel = next(ax for ax in fig.axes if ax.get_title() == "reward loss (-log p)")
    low, high = panel.get_ylim()
    assert high - low >= 0.09 and low < 0.946 < high  # the 0.94-0.95 wiggle is drawn as flat


def test_return_caption_names_only_the_baselines_drawn_and_marks_the_prefill(tmp_path):
    table = _flat_runs()
    palette = figures.condition_palette(list(table["condition"].unique()) + ["dqn", "random"])
    baselines = read_baselines(write_baselines(tmp_path, TARGET, seeds=(0,)))
    random_only = [b for b in baselines if b.level is not None]
    fig, caption = figures.plot_returns(table, TARGET, FAST, palette, random_only)
    assert "DQN" not in caption and "random policy dotted" in caption
    assert "random prefill (first 1,020 env steps" in caption
    spans = [p for p in fig.axes[0].patches if p.get_label() == "random prefill (no updates yet)"]
    assert len(spans) == 1 and spans[0].get_x() == 0


def test_compute_matched_breaks_the_axis_when_the_cost_dwarfs_the_runs():
    table = _flat_runs()
    palette = figures.condition_palette(table["condition"].unique())
    costs = {"finetune": 100_000.0, "frozen_rssm": 100_000.0}
    fig, caption = figures.plot_compute_matched(table, TARGET, FAST, palette, costs)
    left, right = [ax for ax in fig.axes if ax.get_visible()]
    assert left.get_xlim() == (0.0, 1800.0) and right.get_xlim() == (100_000.0, 101_800.0)

    def visible(ax, label):
        line = next(ln for ln in ax.lines if ln.get_label().startswith(label + " "))
        x, y = (np.asarray(v, dtype=float) for v in line.get_data())
        lo, hi = ax.get_xlim()
        return int(np.sum(np.isfinite(y) & (x >= lo) & (x <= hi)))

    assert visible(left, "scratch") > 20
    assert visible(right, "finetune") > 20 and visible(right, "frozen_rssm") > 20
    assert "x axis is broken between 1,800 and 100,000" in caption
    # a cost of the runs' own size keeps one axis
    fig, caption = figures.plot_compute_matched(table, TARGET, FAST, palette, {"finetune": 900.0})
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 1 and "broken" not in caption


def test_action_repeat_is_also_drawn_against_frames(tmp_path):
    paths = write_study(tmp_path, conditions=("scratch",), seeds=(0, 1), budget=3000)
    table = curves.aggregate(paths)
    repeat = table[table["condition"] == "scratch"].assign(condition="scratch-action_repeat")
    table = pd.concat([table, repeat], ignore_index=True)
    manifest = report.build_figures(table[table["metric"] == "episode_return"], tmp_path / "out", FAST,
                                    frames_per_step={"scratch-action_repeat": 4.0})
    assert f"return_frames_{TARGET}" in manifest
    palette = figures.condition_palette(table["condition"].unique())
    fig, caption = figures.plot_returns(table, TARGET, FAST, palette,
                                        frames_per_step={"scratch-action_repeat": 4.0})
    assert fig.axes[0].get_xlabel() == "frames (agent steps x action repeat)"
    line = next(ln for ln in fig.axes[0].lines if ln.get_label().startswith("scratch-action_repeat"))
    x, y = (np.asarray(v, dtype=float) for v in line.get_data())
    assert np.nanmax(x[np.isfinite(y)]) == pytest.approx(12000.0)


def test_dqn_steps_are_added_to_offline_costs_on_request(study):
    root, _, table = study
    summary = write_pretrain_summary(root, "minatar4", dataset_env_steps=8000)
    summary.write_text(json.dumps({**json.loads(summary.read_text()), "envset": "minatar4"}))
    plain = report.pretrain_costs([str(summary)], table)
    with_dqn = report.pretrain_costs([str(summary)], table, dqn_steps={"minatar4": 60000})
    assert plain[TARGET]["finetune"] == 8000.0 and with_dqn[TARGET]["finetune"] == 68000.0


def test_a_probe_logged_once_per_run_is_drawn_as_points():
    """The collapse probe runs every 50 updates: a 40-update run logs it once, and a band interpolated
    through one point drew an empty panel (the default study's, before)."""
    table = _flat_runs()
    first = table[(table["metric"] == "wm_loss")].groupby(["condition", "seed"]).head(1)
    probe = first.assign(metric="wm_probe_info", value=[5.0, 7.0, 1.0, 2.0, 3.0, 4.0])
    palette = figures.condition_palette(table["condition"].unique())
    fig, _ = figures.plot_wm_losses(pd.concat([table, probe], ignore_index=True), TARGET, FAST, palette)
    panel = next(ax for ax in fig.axes if ax.get_title().startswith("latent information"))
    points = {c.get_label(): c.lines[0].get_ydata() for c in panel.containers}
    assert sorted(float(v[0]) for v in points.values()) == [1.5, 3.5, 6.0]  # mean of 2 seeds each
    assert all(label.endswith("(n=2, min-max)") for label in points)
