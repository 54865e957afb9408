"""rliable aggregates (IQM, probability of improvement, performance profiles) over several targets."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from analysis_synthetic import write_study

from wmtransfer.analysis import aggregate, curves, report
from wmtransfer.analysis.stats import StatsConfig

CFG = StatsConfig(grid_points=40, n_boot=300)


def test_statistics_match_their_definitions():
    scores = np.arange(12.0).reshape(4, 3)
    assert aggregate.iqm(scores) == pytest.approx(np.mean(np.sort(scores.ravel())[3:9]))
    better, worse = scores + 100.0, scores
    assert aggregate.probability_of_improvement(better, worse) == 1.0
    assert aggregate.probability_of_improvement(worse, better) == 0.0
    assert aggregate.probability_of_improvement(scores, scores) == 0.5
    profile = aggregate.score_distribution(scores / 11.0, np.array([-0.1, 0.5, 1.0]))
    np.testing.assert_allclose(profile, [1.0, 6 / 12, 0.0])


def test_stratified_bootstrap_resamples_within_targets_only():
    rng = np.random.default_rng(0)
    scores = np.column_stack([np.zeros(5), np.full(5, 10.0), np.arange(5.0)])
    for _ in range(20):
        sample = aggregate.stratified_resample(scores, rng)
        assert np.all(sample[:, 0] == 0.0) and np.all(sample[:, 1] == 10.0)  # never mixed across targets
        assert set(sample[:, 2]) <= set(range(5))
    point, low, high = aggregate.stratified_bootstrap_ci([scores], lambda s: float(s[:, 2].mean()),
                                                         n_boot=500, seed=1)
    assert point == 2.0 and low < 2.0 < high
    again = aggregate.stratified_bootstrap_ci([scores], lambda s: float(s[:, 2].mean()), n_boot=500, seed=1)
    assert again[1] == low and again[2] == high


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("agg")
    paths = write_study(root, targets=("mario-1-1", "mario-1-2", "mario-1-3"), seeds=(0, 1, 2), budget=6000)
    return root, curves.aggregate(paths)


def test_rliable_figure_for_a_study_with_several_targets(study, tmp_path):
    _, table = study
    manifest = report.build_figures(table[table["metric"] == "episode_return"], tmp_path, CFG)
    assert "aggregate" in manifest and (tmp_path / "aggregate.png").stat().st_size > 5000
    result = json.loads((tmp_path / "aggregate.json").read_text())
    assert result["targets"] == ["mario-1-1", "mario-1-2", "mario-1-3"]
    labels = result["labels"]
    assert list(labels) == ["scratch", "finetune", "frozen_rssm"]
    # finetune learns twice as fast as scratch (tau 2000 vs 4000): it ends higher on every target
    iqm_f, iqm_s = labels["finetune"]["iqm"], labels["scratch"]["iqm"]
    assert iqm_f[0] > iqm_s[0] and iqm_f[1] <= iqm_f[0] <= iqm_f[2]
    p, lo, hi = labels["finetune"]["p_improvement"]
    assert p > 0.8 and lo <= p <= hi
    assert labels["frozen_rssm"]["p_improvement"][0] < 0.2
    prof = np.asarray(labels["scratch"]["profile"][0])
    assert prof[0] == pytest.approx(1.0, abs=0.1) and np.all(np.diff(prof) <= 1e-12)  # non-increasing
    assert "P(> scratch)" in result["summary"] and "IQM" in result["summary"]


def test_one_target_gives_no_aggregate(study, tmp_path):
    _, table = study
    one = table[(table["target"] == "mario-1-1") & (table["metric"] == "episode_return")]
    assert aggregate.build_aggregate(one, tmp_path, CFG) is None
    assert not (tmp_path / "aggregate.png").exists()


def test_arch_is_never_imported():
    """rliable 1.2.0 requires arch<8 (arch 7.2 does not import under pandas 3; arch 8 renamed the
    bootstrap's random_state to seed): the aggregate must not touch rliable.library."""
    code = ("import sys, numpy as np\n"
            "from wmtransfer.analysis import aggregate\n"
            "s = np.arange(12.0).reshape(4, 3)\n"
            "aggregate.stratified_bootstrap_ci([s, s + 1], aggregate.probability_of_improvement, n_boot=20)\n"
            "print(aggregate.iqm(s), 'arch' in sys.modules, 'rliable.library' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split()[1:] == ["False", "False"]


def test_baseline_only_targets_drop_out_of_the_comparison(study, tmp_path):
    """The Mario study has per-level scratch-only targets next to the fine-tuned ones: the aggregate
    compares the targets that have several labels, not scratch alone everywhere."""
    root, table = study
    extra = curves.aggregate(write_study(tmp_path, targets=("mario-4-1",), conditions=("scratch",),
                                         seeds=(0, 1, 2), budget=6000))
    scores, targets = aggregate.normalised_scores(pd.concat([table, extra], ignore_index=True), CFG)
    assert targets == ["mario-1-1", "mario-1-2", "mario-1-3"]
    assert list(scores) == ["scratch", "finetune", "frozen_rssm"] and scores["finetune"].shape == (3, 3)
