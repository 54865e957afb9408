"""k-means and CCA of latent features (seed 001 section 3.3) on data with a planted answer."""

from __future__ import annotations

import numpy as np
import pytest

from wmtransfer.analysis import latent


def test_kmeans_recovers_separated_blobs_and_is_seeded():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [0.0, 10.0, 5.0]])
    truth = np.repeat(np.arange(3), 60)
    x = centres[truth] + rng.standard_normal((180, 3))
    res = latent.kmeans(x, 3, seed=1)
    # every true blob is one cluster and the clusters differ: a permutation of the truth
    mapping = {t: set(res.labels[truth == t]) for t in range(3)}
    assert all(len(v) == 1 for v in mapping.values()) and len(set.union(*mapping.values())) == 3
    assert res.inertia == pytest.approx(float(((x - res.centers[res.labels]) ** 2).sum()))
    assert res.inertia < latent.kmeans(x, 2, seed=1).inertia
    again = latent.kmeans(x, 3, seed=1)
    assert np.array_equal(again.labels, res.labels)
    with pytest.raises(ValueError, match="at least k"):
        latent.kmeans(x[:2], 3)


def test_cca_finds_a_planted_linear_relation():
    rng = np.random.default_rng(0)
    n = 2000
    pos = rng.uniform(0, 9, n)  # the player's x position
    x = rng.standard_normal((n, 20))
    x[:, 7] = 0.5 * pos + 0.05 * rng.standard_normal(n)
    res = latent.cca(x, pos)
    assert res.correlations[0] == pytest.approx(1.0, abs=0.01)
    variate = (x - x.mean(0)) @ res.x_weights[:, 0]
    assert abs(np.corrcoef(variate, pos)[0, 1]) == pytest.approx(res.correlations[0], abs=1e-6)
    # two-dimensional target: two canonical pairs, the planted one first
    y2 = np.column_stack([pos, rng.standard_normal(n)])
    two = latent.cca(x, y2)
    assert two.correlations.shape == (2,) and two.correlations[0] > 0.99 > 0.2 > two.correlations[1]


def test_latent_vs_target_beats_random_features():
    rng = np.random.default_rng(1)
    n = 3000
    pos = rng.integers(0, 10, n).astype(float)
    feats = rng.standard_normal((n, 64))
    feats[:, 42] += 0.3 * pos  # one feature almost linear in the position
    out = latent.latent_vs_target(feats, pos, n_random=3, seed=0)
    assert out["top_feature"] == 42
    assert out["top_feature_corr"] > 0.6 and out["random_top_corr"] < 0.15
    assert out["top_ratio"] > 4 and out["cca_ratio"] > 3
    assert latent.feature_correlations(np.ones((5, 2)), np.arange(5.0)).tolist() == [0.0, 0.0]


def test_permutation_test_separates_a_planted_position_from_noise():
    rng = np.random.default_rng(2)
    episodes = np.repeat(np.arange(20), 50)
    walks = [np.clip(np.cumsum(rng.integers(-1, 2, 50)) + 4, 0, 9) for _ in range(20)]
    pos = np.concatenate(walks).astype(float)
    feats = rng.standard_normal((len(pos), 40))
    feats[:, 3] += 1.0 * pos
    real = latent.permutation_test(feats, pos, episodes, n_perm=100, seed=0)
    assert real["heldout_corr"] > 0.8 and real["p_value"] == pytest.approx(1 / 101)
    noise = latent.permutation_test(rng.standard_normal((len(pos), 40)), pos, episodes, n_perm=100, seed=0)
    assert noise["heldout_corr"] < 0.15 and noise["p_value"] > 0.01
    assert real["train_frames"] + real["test_frames"] == len(pos)
    # in sample, 40 noise features correlate with anything: the held-out number does not
    assert latent.cca(rng.standard_normal((200, 40)), pos[:200]).correlations[0] > 0.3
    with pytest.raises(ValueError, match="two episodes"):
        latent.permutation_test(feats[:50], pos[:50], episodes[:50])


def test_circular_shifts_stay_inside_each_episode():
    rng = np.random.default_rng(0)
    y = np.arange(12.0)
    groups = np.repeat([0, 1, 2], 4)
    shifted = latent.circular_shifts(y, groups, rng)
    for g in range(3):
        assert sorted(shifted[groups == g]) == sorted(y[groups == g])


def test_positions_come_from_the_game_state_one_game_at_a_time():
    from wmtransfer.analysis.latent_features import play_frames

    frames = play_frames("minatar-breakout", 120, seed=0)
    pos = frames["pos"]
    assert frames["obs"].shape == (120, 10, 10, 10) and np.all(pos[:, 1] == 9)  # the paddle's row
    assert len(np.unique(pos[:, 0])) >= 4  # random play moves the paddle around
    rows, cols = pos[:, 1].astype(int), pos[:, 0].astype(int)
    assert np.all(frames["obs"][np.arange(120), 0, rows, cols] == 1)  # the paddle is where the state says
    again = play_frames("minatar-breakout", 120, seed=0)
    np.testing.assert_array_equal(again["pos"], pos)
    chicken = play_frames("minatar-freeway", 60, seed=1)["pos"]
    assert np.all(chicken[:, 0] == 4) and chicken[:, 1].std() > 0  # freeway's player moves along y only
    assert frames["is_first"][0] and frames["episode"][0] == 0


@pytest.mark.slow
def test_latent_analysis_cli_on_a_real_game_and_model(tmp_path):
    """A small untrained world model on real Breakout frames: runs end to end and writes its outputs;
    a game without a position in its state is skipped with a message."""
    import json

    import torch

    from wmtransfer.cli import main
    from wmtransfer.dreamer import Dreamer, DreamerConfig

    torch.manual_seed(0)
    cfg = DreamerConfig.preset("minatar", deter=32, hidden=32, stoch=4, classes=4, cnn_depth=4)
    Dreamer(cfg, (10, 10, 10), 6).save(tmp_path / "world_model.pt")
    out = tmp_path / "latent"
    argv = ["latent-analysis", "--model", str(tmp_path / "world_model.pt"), "--games", "minatar-breakout",
            "--k", "3", "--max-frames", "300", "--n-random", "2", "--n-perm", "20", "--out", str(out)]
    assert main(argv) == 0
    result = json.loads((out / "latent.json").read_text())
    game = result["games"]["minatar-breakout"]
    assert game["frames"] == 300 and game["features"] == 32 + 4 * 4 and game["axes"] == ["x"]
    assert game["positions_from"] == "game state" and len(game["x"]["counts"]) >= 4
    assert sum(c["frames"] for c in game["kmeans"]["clusters"]) == 300
    for name in ("trained", "untrained", "gaussian"):
        assert 0.0 < game["x"][name]["p_value"] <= 1.0
    assert "minatar-breakout x:" in result["summary"]
    assert (out / "latent_minatar-breakout.png").stat().st_size > 5000
    skipped = tmp_path / "skipped"
    assert main(["latent-analysis", "--model", str(tmp_path / "world_model.pt"), "--games", "atari-pong",
                 "--out", str(skipped)]) == 0
    result = json.loads((skipped / "latent.json").read_text())
    assert "exposes no player position" in result["skipped"]["atari-pong"] and not result["games"]
    assert "skipped" in result["summary"]
