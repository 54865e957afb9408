"""Aggregation of metrics.csv files into the tidy study table, and baseline files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from analysis_synthetic import metrics_frame, write_baselines, write_study

from wmtransfer.analysis import baselines, curves
from wmtransfer.cli import main


def test_parse_run_path_agents_and_other_stages():
    key = curves.parse_run_path("results/agents/demo/minatar-breakout/finetune/seed3/metrics.csv")
    assert key == curves.RunKey("demo", "minatar-breakout", "finetune", 3)
    key = curves.parse_run_path("/x/results/dqn/minatar-breakout/seed0/metrics.csv", study="demo")
    assert key == curves.RunKey("demo", "minatar-breakout", "dqn", 0)
    with pytest.raises(curves.MetricsError, match="not 'other'"):
        curves.parse_run_path("results/agents/demo/g/scratch/seed0/metrics.csv", study="other")
    with pytest.raises(curves.MetricsError, match="seed<N>"):
        curves.parse_run_path("results/agents/demo/g/scratch/run0/metrics.csv")


def test_aggregate_is_long_and_lossless(tmp_path):
    paths = write_study(tmp_path, conditions=("scratch", "finetune"), seeds=(0, 1), budget=3000)
    table = curves.aggregate(paths)
    assert list(table.columns) == list(curves.LONG_COLUMNS)
    assert set(table["condition"]) == {"scratch", "finetune"} and set(table["seed"]) == {0, 1}
    wide = pd.read_csv(paths[0])
    n_cells = int(wide.drop(columns=["env_step", "update", "wall_time", "game"]).notna().sum().sum())
    key = curves.parse_run_path(paths[0])
    run = curves.select(table, condition=key.condition, seed=key.seed)
    assert len(run) == n_cells  # one long row per measured cell, empty cells dropped
    ret = run[run["metric"] == "episode_return"].sort_values("env_step")
    expected = wide[wide["episode_return"].notna()].sort_values("env_step", kind="stable")
    assert np.allclose(ret["value"], expected["episode_return"])
    assert (ret["game"] == "minatar-space_invaders").all()
    assert run[run["metric"] == "wm_loss"]["game"].isna().all()


def test_write_and_read_table_csv_and_parquet(tmp_path):
    table = curves.aggregate(write_study(tmp_path, conditions=("scratch",), seeds=(0,), budget=2000))
    written = curves.write_table(table, tmp_path / "report" / "curves.csv")
    assert [p.name for p in written] == ["curves.csv", "curves.parquet"]
    for path in written:
        back = curves.read_table(path)
        assert len(back) == len(table)
        assert np.allclose(back["value"], table["value"]) and (back["metric"] == table["metric"]).all()


def test_missing_env_step_is_an_error_naming_the_file(tmp_path, capsys):
    bad = tmp_path / "results" / "agents" / "demo" / "g" / "scratch" / "seed0" / "metrics.csv"
    bad.parent.mkdir(parents=True)
    metrics_frame("scratch", 0, 1000).drop(columns=["env_step"]).to_csv(bad, index=False)
    with pytest.raises(curves.MetricsError, match="no env_step column") as err:
        curves.aggregate([bad])
    assert str(bad) in str(err.value)
    rc = main(["aggregate-curves", "--study", "demo", "--runs", str(bad), "--out", str(tmp_path / "t.csv")])
    assert rc == 2 and str(bad) in capsys.readouterr().err
    assert not (tmp_path / "t.csv").exists()


def test_duplicate_run_and_wrong_study_are_refused(tmp_path):
    paths = write_study(tmp_path, conditions=("scratch",), seeds=(0,), budget=1000)
    with pytest.raises(curves.MetricsError, match="same run"):
        curves.aggregate([paths[0], paths[0]])
    with pytest.raises(curves.MetricsError, match="belongs to study 'demo'"):
        curves.aggregate(paths, study="other")


def test_aggregate_curves_cli_writes_csv_and_parquet(tmp_path):
    paths = write_study(tmp_path, conditions=("scratch", "finetune"), seeds=(0,), budget=1500)
    out = tmp_path / "results" / "report" / "demo" / "curves.csv"
    assert main(["aggregate-curves", "--study", "demo", "--runs", *map(str, paths), "--out", str(out)]) == 0
    table = pd.read_parquet(out.with_suffix(".parquet"))
    assert set(table["condition"]) == {"scratch", "finetune"} and out.exists()


def test_read_baselines_dqn_curves_and_random_level(tmp_path):
    found = baselines.read_baselines(write_baselines(tmp_path, "minatar-breakout", seeds=(0, 1)))
    by_label = {b.label: b for b in found}
    assert set(by_label) == {"DQN", "random policy"}
    assert by_label["DQN"].game == "minatar-breakout" and len(by_label["DQN"].curves) == 2
    assert by_label["random policy"].level == pytest.approx(0.5)
    no_return = tmp_path / "x.csv"
    pd.DataFrame({"env_step": [1]}).to_csv(no_return, index=False)
    with pytest.raises(curves.MetricsError, match="x.csv"):
        baselines.read_baselines([no_return])


def test_order_conditions_groups_labels_by_condition():
    labels = ["zeta", "finetune-E10", "scratch-no_kl_balance", "finetune-E4", "scratch", "frozen_rssm"]
    assert curves.order_conditions(labels) == ["scratch", "scratch-no_kl_balance", "finetune-E10",
                                               "finetune-E4", "frozen_rssm", "zeta"]
