"""Sequence replay: episode format in, sequences out (next episode or absorbing states past an episode's
end), balanced games, resume."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from wmtransfer import games
from wmtransfer.data.replay import Replay


def make_episode(length: int, game: str = "g", first_obs: int = 0, terminal: bool = True) -> dict:
    """A synthetic episode in the project's format whose obs[i] holds the value first_obs + i."""
    obs = (first_obs + np.arange(length, dtype=np.int64) % 250).astype(np.uint8)[:, None, None, None]
    obs = np.broadcast_to(obs, (length, 1, 2, 2)).copy()
    is_first = np.zeros(length, bool)
    is_first[0] = True
    is_last = np.zeros(length, bool)
    is_last[-1] = True
    return {
        "obs": obs,
        "action": (np.arange(length) % 3).astype(np.int16),
        "reward": np.arange(length, dtype=np.float32),
        "is_first": is_first,
        "is_last": is_last,
        "is_terminal": is_last & terminal,
        "policy": np.zeros(length, np.int16),
        "game": np.array(game),
    }


def test_sample_shapes_dtypes_and_contiguity():
    replay = Replay(seed=0, past_end="absorbing")
    for i in range(5):
        replay.add_episode(make_episode(40 + i, game=f"g{i % 2}"), n_actions=3)
    batch = replay.sample(8, 10)
    assert batch["obs"].shape == (8, 10, 1, 2, 2) and batch["obs"].dtype == np.uint8
    assert batch["action"].dtype == np.int64 and batch["reward"].dtype == np.float32
    for k in ("is_first", "is_last", "is_terminal"):
        assert batch[k].dtype == np.bool_ and batch[k].shape == (8, 10)
    assert batch["game"].shape == (8, 10) and set(np.unique(batch["game"])) <= {0, 1}
    # Long episodes never run past their end: steps are consecutive within one episode.
    assert (np.diff(batch["reward"], axis=1) == 1).all()
    assert (np.diff(batch["obs"][:, :, 0, 0, 0].astype(int), axis=1) == 1).all()
    assert replay.num_steps == sum(40 + i for i in range(5)) and replay.num_episodes == 5
    assert replay.games == ["g0", "g1"]


def test_absorbing_state_past_episode_end():
    replay = Replay(seed=1, past_end="absorbing")
    replay.add_episode(make_episode(4), n_actions=3)  # shorter than the sequence: kept, not dropped
    batch = replay.sample(64, 10)
    # The only valid start of a 4-step episode for length 10 is step 0.
    assert (batch["reward"][:, :4] == np.arange(4)).all()
    assert batch["is_first"][:, 0].all() and not batch["is_first"][:, 1:].any()
    past = np.s_[:, 4:]
    assert (batch["obs"][past] == batch["obs"][:, 3:4]).all()  # last observation repeats
    assert (batch["reward"][past] == 0).all()  # reward 0
    assert batch["is_terminal"][past].all() and batch["is_last"][past].all()  # discount target 0
    acts = batch["action"][past]
    assert acts.min() >= 0 and acts.max() < 3 and len(np.unique(acts)) == 3  # uniform random actions


def test_next_episode_past_episode_end():
    """Default: a sequence runs on into the next stored episode (is_first set there), every stored step
    is a start, and only a sequence that passes the newest episode gets absorbing states."""
    replay = Replay(seed=6)
    lengths = (4, 6, 5)
    for i, n in enumerate(lengths):
        replay.add_episode(make_episode(n, game=f"g{i}", first_obs=50 * i), n_actions=3)
    batch = replay.sample(3000, 8)
    obs = batch["obs"][:, :, 0, 0, 0].astype(int)
    starts = obs[:, 0]
    # every one of the 15 stored steps is a start, about equally often
    counts = np.array([(starts == 50 * i + t).sum() for i, n in enumerate(lengths) for t in range(n)])
    assert counts.min() > 0.7 * 3000 / 15 and counts.max() < 1.3 * 3000 / 15
    # a sequence starting at step 2 of episode 0 reads 2, 3, then episode 1 (50..55), then episode 2
    row = np.flatnonzero(starts == 2)[0]
    np.testing.assert_array_equal(obs[row], [2, 3, 50, 51, 52, 53, 54, 55])
    np.testing.assert_array_equal(batch["is_first"][row], [0, 0, 1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(batch["is_terminal"][row], [0, 1, 0, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(batch["reward"][row], [2, 3, 0, 1, 2, 3, 4, 5])
    np.testing.assert_array_equal(batch["game"][row], [0, 0, 1, 1, 1, 1, 1, 1])
    # past the newest episode (steps 100..104): absorbing states
    row = np.flatnonzero(starts == 103)[0]
    np.testing.assert_array_equal(obs[row], [103, 104] + [104] * 6)
    assert batch["is_terminal"][row, 1:].all() and (batch["reward"][row, 2:] == 0).all()
    assert not batch["is_first"][row].any() and (batch["game"][row] == 2).all()
    with pytest.raises(ValueError, match="past_end"):
        Replay(past_end="wrap")


def test_next_episode_across_the_ring_wrap():
    replay = Replay(capacity_steps=50, seed=7)
    for i in range(7):  # 7 x 12 steps through a 50-step ring: the newest 4 episodes remain
        replay.add_episode(make_episode(12, first_obs=12 * i), n_actions=3)
    assert replay.num_episodes == 4
    batch = replay.sample(500, 10)
    obs = batch["obs"][:, :, 0, 0, 0].astype(int)
    assert obs.min() >= 36
    # episodes hold 12 i .. 12 i + 11, stored back to back: values run on across episode boundaries up
    # to the newest episode's last step (83), which then repeats as an absorbing state
    step = np.diff(obs, axis=1)
    assert (step[obs[:, :-1] < 83] == 1).all() and (step[obs[:, :-1] == 83] == 0).all()
    assert (obs[:, :-1] == 83).any() and batch["is_first"][obs == 48].all()


def test_balance_games_draws_games_uniformly():
    replay = Replay(seed=2, balance_games=True)
    replay.add_episode(make_episode(1000, game="long"))
    for _ in range(3):
        replay.add_episode(make_episode(20, game="short"))
    frac_short = (replay.sample(4000, 5)["game"][:, 0] == replay.games.index("short")).mean()
    assert 0.45 < frac_short < 0.55
    unbalanced = Replay(seed=2)
    unbalanced.add_episode(make_episode(1000, game="long"))
    for _ in range(3):
        unbalanced.add_episode(make_episode(20, game="short"))
    assert (unbalanced.sample(4000, 5)["game"][:, 0] == 1).mean() < 0.1


def test_capacity_evicts_oldest_whole_episodes():
    replay = Replay(capacity_steps=100, seed=3, past_end="absorbing")
    for i in range(6):
        replay.add_episode(make_episode(30, first_obs=i * 30))
    assert replay.num_steps <= 100 and replay.num_episodes == 3
    batch = replay.sample(256, 30)
    assert batch["obs"][:, 0, 0, 0, 0].min() >= 90  # only the three newest episodes remain
    assert (np.diff(batch["reward"], axis=1) == 1).all()  # ring wrap keeps episodes contiguous


def test_add_step_streams_and_matches_add_episode():
    ep = make_episode(12)
    streamed, whole = Replay(seed=4, past_end="absorbing"), Replay(seed=4, past_end="absorbing")
    whole.add_episode(ep, n_actions=3)
    other = make_episode(7, first_obs=100)
    for t in range(12):  # two interleaved streams, as from two parallel envs
        kw = {k: ep[k][t] for k in ("action", "reward", "is_first", "is_last", "is_terminal")}
        streamed.add_step(ep["obs"][t], game="g", stream=0, n_actions=3, **kw)
        if t < 7:
            kw = {k: other[k][t] for k in ("action", "reward", "is_first", "is_last", "is_terminal")}
            streamed.add_step(other["obs"][t], game="g", stream=1, n_actions=3, **kw)
        if t == 5:
            assert streamed.num_episodes == 0  # an episode is stored when it ends
    assert streamed.num_episodes == 2 and streamed.num_steps == 19
    b = streamed.sample(32, 5)
    assert (np.diff(b["reward"], axis=1) == 1).all()


def test_state_dict_round_trip_continues_identically():
    replay = Replay(capacity_steps=200, seed=5, balance_games=True)
    for i in range(9):
        replay.add_episode(make_episode(25 + i, game=f"g{i % 3}", first_obs=i))
    replay.add_step(np.zeros((1, 2, 2), np.uint8), 0, 0.0, True, False, False, game="g0", stream=0)
    replay.sample(4, 8)
    buf = io.BytesIO()
    torch.save(replay.state_dict(), buf)
    buf.seek(0)
    restored = Replay()
    restored.load_state_dict(torch.load(buf, weights_only=True))
    assert restored.num_steps == replay.num_steps and restored.games == replay.games
    a, b = replay.sample(16, 8), restored.sample(16, 8)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    # The running stream survives too and can be closed as a truncated episode.
    assert restored.end_streams() == 1
    assert restored.num_episodes == replay.num_episodes + 1


def test_real_minatar_episode():
    env = games.make("minatar-breakout", seed=0)
    replay = Replay(seed=0)
    obs, info = env.reset()
    replay.add_step(obs, 0, 0.0, True, False, False, game=info["game"], n_actions=6)
    rng = np.random.default_rng(0)
    done = False
    while not done:
        a = int(rng.integers(6))
        obs, r, term, trunc, info = env.step(a)
        done = term or trunc
        replay.add_step(obs, a, r, False, done, term, game=info["game"], n_actions=6)
    batch = replay.sample(4, 50)
    assert batch["obs"].shape == (4, 50, 10, 10, 10)
    assert batch["is_terminal"][:, -1].all()  # a seeded random breakout episode is shorter than 50 steps
    with pytest.raises(ValueError, match="is_first"):
        replay.add_step(obs, 0, 0.0, False, False, False, game="x", stream=9)
