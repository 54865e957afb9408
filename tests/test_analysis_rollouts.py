"""Dreamed rollouts: the dream never reads the frames it predicts; reconstructions are the posterior's."""

from __future__ import annotations

import json

import imageio.v2 as imageio
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from dreamer_tiny import tiny_dreamer

from wmtransfer.analysis.rollouts import (
    dream,
    object_recall,
    random_episode,
    run_prediction_quality,
    run_reconstructions,
    run_rollouts,
    snapshot_files,
    to_rgb,
)
from wmtransfer.dreamer import Dreamer

GAME = "minatar-space_invaders"


@pytest.fixture(scope="module")
def agent():
    torch.manual_seed(0)
    return Dreamer(tiny_dreamer(), (10, 10, 10), 6)


def test_random_episode_is_seeded_and_follows_the_data_contract():
    a, b = random_episode(GAME, 12, seed=3), random_episode(GAME, 12, seed=3)
    assert a["obs"].shape == (12, 10, 10, 10) and a["obs"].dtype == np.uint8
    assert a["action"][0] == 0 and len(a["action"]) == 12
    np.testing.assert_array_equal(a["obs"], b["obs"])
    np.testing.assert_array_equal(a["action"], b["action"])
    assert not np.array_equal(random_episode(GAME, 12, seed=4)["action"], a["action"])


def test_dream_does_not_read_the_frames_it_predicts(agent):
    ep = random_episode(GAME, 10, seed=0)
    base = dream(agent, ep["obs"], ep["action"], context=4)
    changed = ep["obs"].copy()
    changed[4:] = 1 - changed[4:]  # every later pixel flipped
    np.testing.assert_array_equal(dream(agent, changed, ep["action"], context=4), base)
    # ... but the actions after the context do drive the dream
    other = ep["action"].copy()
    other[4:] = (other[4:] + 1) % 6
    assert not np.array_equal(dream(agent, ep["obs"], other, context=4)[4:], base[4:])
    assert base.shape == ep["obs"].shape and base.min() >= 0.0 and base.max() <= 1.0


def test_observed_frames_are_posterior_reconstructions(agent):
    ep = random_episode(GAME, 8, seed=1)
    full = dream(agent, ep["obs"], ep["action"], context=8, seed=5)
    np.testing.assert_array_equal(dream(agent, ep["obs"], ep["action"], context=8, seed=5), full)
    wm = agent.world_model
    with torch.no_grad():
        torch.manual_seed(5)
        obs = torch.from_numpy(ep["obs"])
        act = F.one_hot(torch.from_numpy(ep["action"]), 6).float()[None]
        first = torch.zeros(1, 8)
        first[0, 0] = 1
        post, _ = wm.rssm.observe(wm.encode_step(obs)[None], act, first)
        expected = torch.sigmoid(wm.decoder(post.feat()[0])).numpy()
    np.testing.assert_allclose(full, expected, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="context 9"):
        dream(agent, ep["obs"], ep["action"], context=9)


def test_rgb_rendering():
    frames = np.zeros((2, 10, 4, 4))
    frames[1, 3, 0, 0] = 1.0
    rgb = to_rgb(frames)
    assert rgb.shape == (2, 4, 4, 3)
    np.testing.assert_allclose(rgb[0], 1.0)  # empty frame: white
    assert rgb[1, 0, 0].sum() < 3.0 and rgb[1, 0, 0].min() >= 0.0
    grey = to_rgb(np.full((1, 1, 2, 2), 0.25))
    np.testing.assert_allclose(grey, 0.25)


def test_run_rollouts_writes_figures_and_errors(agent, tmp_path):
    path = tmp_path / "world_model.pt"
    agent.save(path, games=["minatar-breakout"])
    out = tmp_path / "rollouts"
    result = run_rollouts(path, ["minatar-breakout"], [GAME], out, context=3, horizon=4)
    saved = json.loads((out / "rollouts.json").read_text())
    assert saved == json.loads(json.dumps(result))
    assert saved["games"][GAME]["kind"] == "unseen" and saved["games"]["minatar-breakout"]["kind"] == "seen"
    assert len(saved["games"][GAME]["mse_per_step"]) == 7
    for game in ("minatar-breakout", GAME):
        assert (out / f"{game}.png").stat().st_size > 1000 and (out / f"{game}.svg").exists()
        gif = imageio.mimread(out / f"{game}.gif")
        assert len(gif) == 7 and gif[0].shape[1] > 2 * gif[0].shape[0]  # one frame per step: real|model|diff
        assert gif[0][0, gif[0].shape[1] // 2].tolist()[:3] == [255, 255, 255]  # observed: white frame
        assert gif[-1][0, gif[0].shape[1] // 2].tolist()[:3] == [255, 0, 0]  # dreamed: red frame
        assert 0.0 <= saved["games"][game]["recall_observed"] <= 1.0
    assert "share of the real objects drawn" in saved["summary"]
    with pytest.raises(ValueError, match="atari-breakout"):
        run_rollouts(path, [], ["atari-breakout"], tmp_path / "bad", context=2, horizon=2)


def test_object_recall_scores_blank_predictions_zero():
    real = np.zeros((2, 3, 4, 4))
    real[:, 1, 2, 2] = 1.0
    assert object_recall(real, np.zeros_like(real)) == 0.0  # blank: tiny squared error, nothing drawn
    assert object_recall(real, real * 0.7) == 1.0
    assert np.isnan(object_recall(np.zeros((1, 3, 4, 4)), np.zeros((1, 3, 4, 4))))


def test_reconstructions_of_unseen_frames_by_several_models(agent, tmp_path):
    one, many = tmp_path / "one.pt", tmp_path / "many.pt"
    agent.save(one, games=["minatar-breakout"])
    torch.manual_seed(1)
    Dreamer(tiny_dreamer(), (10, 10, 10), 6).save(many, games=["minatar-breakout", "minatar-asterix"])
    out = tmp_path / "recon"
    result = run_reconstructions({"1 game": one, "2 games": many}, [GAME], out, frames=4)
    assert set(result["games"][GAME]) == {"1 game", "2 games"}
    assert result["games"][GAME]["1 game"]["mse"] != result["games"][GAME]["2 games"]["mse"]
    assert (out / f"{GAME}.png").stat().st_size > 1000
    assert "lowest error" in json.loads((out / "reconstructions.json").read_text())["summary"]


def test_prediction_quality_over_snapshots(agent, tmp_path):
    folder = tmp_path / "pretrain" / "snapshots"
    for update in (5, 10):
        torch.manual_seed(update)
        Dreamer(tiny_dreamer(), (10, 10, 10), 6).save(folder / f"update{update:07d}.pt")
    agent.save(tmp_path / "pretrain" / "world_model.pt")
    files = snapshot_files([folder, f"20={tmp_path / 'pretrain' / 'world_model.pt'}"])
    assert [u for u, _ in files] == [5, 10, 20]
    out = tmp_path / "pq"
    result = run_prediction_quality([folder, f"20={tmp_path / 'pretrain' / 'world_model.pt'}"],
                                    ["minatar-breakout"], [GAME], out, context=2, horizon=3)
    assert result["updates"] == [5, 10, 20]
    assert len(result["games"][GAME]["dream_mse"]) == 3 and result["games"][GAME]["kind"] == "unseen"
    assert len(set(result["games"][GAME]["dream_mse"])) == 3  # three different models, three errors
    assert (out / "prediction_quality.png").stat().st_size > 5000
    with pytest.raises(ValueError, match="not a snapshot"):
        snapshot_files([tmp_path / "pretrain" / "world_model.pt"])
    with pytest.raises(ValueError, match="no snapshots"):
        run_prediction_quality([tmp_path / "empty"], [GAME], [], out)
