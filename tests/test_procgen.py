"""procgen games (seed 004's leaper): ids, gymnasium API and checker, seeding, the batched vector env."""

from __future__ import annotations

import numpy as np
import pytest

from wmtransfer import games

pytest.importorskip("procgen", reason="procgen-mirror is an optional extra (README, section procgen)")


def test_ids_and_spec():
    assert "procgen-leaper" in games.names("procgen")
    assert len(games.names("procgen")) == 16
    spec = games.spec("procgen-leaper")
    assert (spec.suite, spec.obs_shape, spec.n_actions) == ("procgen", (3, 64, 64), 15)
    with pytest.raises(games.UnknownGameError, match="procgen-leaper"):
        games.spec("procgen-frogger")


def test_leaper_passes_check_env_and_is_seeded():
    import warnings

    import gymnasium as gym
    from gymnasium.utils.env_checker import check_env

    games.register_gymnasium()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any checker warning is a defect, not noise
        check_env(gym.make("wmtransfer/procgen-leaper-v0", render_mode="rgb_array").unwrapped,
                  skip_render_check=False)
    env = games.make("procgen-leaper", seed=0)
    first, info = env.reset(seed=7)
    assert first.shape == (3, 64, 64) and first.dtype == np.uint8 and info["game"] == "procgen-leaper"
    assert env.action_space.n == 15

    def play(seed):
        env.reset(seed=seed)
        rng = np.random.default_rng(0)
        frames = [env.step(int(rng.integers(15)))[0] for _ in range(30)]
        return np.stack(frames)

    assert np.array_equal(play(7), play(7))
    assert not np.array_equal(games.make("procgen-leaper").reset(seed=8)[0], first)


def test_episode_ends_and_reset_continues():
    env = games.make("procgen-leaper", seed=1)
    env.reset()
    for _ in range(2000):
        obs, reward, terminated, truncated, info = env.step(0)  # down-left: the frog dies or times out
        if terminated:
            break
    assert terminated and not truncated and "level_complete" in info
    after, _ = env.reset()
    assert np.array_equal(after, obs)  # procgen's own reset: the next episode's first frame


def test_vector_env_is_procgen_batched():
    from wmtransfer.games.procgen import ProcgenVectorGame

    vec = games.make_vector("procgen-leaper", 4, seed=3)
    assert isinstance(vec, ProcgenVectorGame)
    obs, _ = vec.reset()
    assert obs.shape == (4, 3, 64, 64) and obs.dtype == np.uint8
    rng = np.random.default_rng(0)
    ends = 0
    for _ in range(200):
        obs, reward, terminated, truncated, info = vec.step(rng.integers(0, 15, size=4))
        ends += int(terminated.sum())
        assert reward.shape == (4,) and info["level_complete"].shape == (4,)
    assert ends > 0
    again, _ = games.make_vector("procgen-leaper", 4, seed=3).reset()
    first, _ = vec.reset(seed=3)
    assert np.array_equal(again, first)
