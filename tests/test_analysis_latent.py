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


def _random_breakout_episode(seed: int, steps: int = 40) -> dict:
    from wmtransfer import games

    env = games.make("minatar-breakout", seed=seed)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    frames, actions, rewards, terminal = [obs], [0], [0.0], False
    for _ in range(steps):
        a = int(rng.integers(6))
        obs, r, terminated, truncated, _ = env.step(a)
        frames.append(obs)
        actions.append(a)
        rewards.append(float(r))
        if terminated or truncated:
            terminal = bool(terminated)
            break
    n = len(frames)
    last = np.arange(n) == n - 1
    return {"obs": np.stack(frames).astype(np.uint8), "action": np.array(actions, dtype=np.int16),
            "reward": np.array(rewards, dtype=np.float32), "is_first": np.eye(1, n, 0, dtype=bool)[0],
            "is_last": last, "is_terminal": last & terminal,
            "policy": np.array([-1] + [0] * (n - 1), dtype=np.int16), "policy_names": np.array(["random"]),
            "game": np.array("minatar-breakout")}


def test_player_position_is_the_centre_of_the_first_channel():
    from wmtransfer.analysis.latent_features import player_position

    obs = np.zeros((2, 10, 10, 10), dtype=np.uint8)
    obs[0, 0, 9, 3] = 1
    obs[0, 0, 9, 4] = 1
    pos = player_position(obs)
    assert pos[0].tolist() == [3.5, 9.0] and np.isnan(pos[1]).all()


@pytest.mark.slow
def test_latent_analysis_cli_on_a_real_game_and_model(tmp_path):
    """A small untrained world model on real Breakout frames: runs end to end and writes its outputs."""
    import json

    import torch

    from wmtransfer.cli import main
    from wmtransfer.data.episodes import write_episode
    from wmtransfer.dreamer import Dreamer, DreamerConfig

    torch.manual_seed(0)
    cfg = DreamerConfig.preset("minatar", deter=32, hidden=32, stoch=4, classes=4, cnn_depth=4)
    Dreamer(cfg, (10, 10, 10), 6).save(tmp_path / "world_model.pt")
    for i in range(4):
        write_episode(tmp_path / "ds" / "episodes" / f"ep{i:06d}.npz", _random_breakout_episode(i))
    out = tmp_path / "latent"
    argv = ["latent-analysis", "--model", str(tmp_path / "world_model.pt"),
            "--episodes", str(tmp_path / "ds"), "--k", "3", "--max-frames", "100", "--n-random", "2",
            "--out", str(out)]
    assert main(argv) == 0
    result = json.loads((out / "latent.json").read_text())
    assert 0 < result["frames"] <= 100 and result["features"] == 32 + 4 * 4
    assert sum(c["frames"] for c in result["kmeans"]["clusters"]) == result["frames"]
    assert 0.0 <= result["x"]["random_cca"] <= 1.0 and 0.0 <= result["x"]["cca"] <= 1.0
    assert 0.0 <= result["x_untrained"]["cca"] <= 1.0
    assert (out / "latent.png").stat().st_size > 5000


def test_episode_paths_interleave_dataset_folders(tmp_path):
    from wmtransfer.analysis.latent_features import episode_paths

    for game, n in (("a", 3), ("b", 1)):
        for i in range(n):
            (tmp_path / game / "episodes").mkdir(parents=True, exist_ok=True)
            (tmp_path / game / "episodes" / f"ep{i}.npz").write_bytes(b"")
    names = [f"{p.parent.parent.name}/{p.name}" for p in episode_paths([tmp_path / "a", tmp_path / "b"])]
    assert names == ["a/ep0.npz", "b/ep0.npz", "a/ep1.npz", "a/ep2.npz"]
