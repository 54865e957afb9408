"""The game layer: ids, spaces, gymnasium conformance, determinism, sticky actions, episode ends."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from wmtransfer import games

ONE_PER_SUITE = ["minatar-breakout", "atari-breakout", "mario-1-1"]
ATARI_SHOOTERS = ["atari-breakout", "atari-space_invaders", "atari-demon_attack", "atari-assault",
                  "atari-carnival", "atari-phoenix", "atari-atlantis", "atari-air_raid",
                  "atari-beam_rider", "atari-galaxian"]


def rollout(env, actions, seed):
    obs, _ = env.reset(seed=seed)
    frames, rewards, ends = [obs], [], []
    for a in actions:
        obs, r, term, trunc, _ = env.step(a)
        frames.append(obs)
        rewards.append(r)
        ends.append((term, trunc))
        if term or trunc:
            break
    return np.stack(frames), np.array(rewards), ends


def test_names_cover_every_suite():
    ids = games.names()
    minatar = ["asterix", "breakout", "freeway", "seaquest", "space_invaders"]
    assert {f"minatar-{g}" for g in minatar} <= set(ids)
    assert {"atari-breakout", "atari-space_invaders", "atari-demon_attack"} <= set(ids)
    assert len(games.names("mario")) == 32 and "mario-8-4" in ids
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("bad, expected", [
    ("minatar-pong", "minatar-breakout"),   # lists the suite's valid ids
    ("atari-brakeout", "atari-breakout"),
    ("mario-9-1", "mario-8-4"),
    ("pong", "minatar-<game>"),             # no suite: names the pattern
    ("nes-mario", "mario-<world>-<stage>"),
])
def test_unknown_game_names_the_valid_ones(bad, expected):
    with pytest.raises(games.UnknownGameError, match=expected):
        games.make(bad)
    with pytest.raises(games.UnknownGameError):
        games.spec(bad)


@pytest.mark.parametrize("game_id", ONE_PER_SUITE + [f"minatar-{g}" for g in
                                                     ["asterix", "freeway", "seaquest", "space_invaders"]])
def test_gymnasium_env_checker_passes(game_id):
    games.register_gymnasium()
    env = gym.make(f"wmtransfer/{game_id}-v0", render_mode="rgb_array")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any checker warning is a defect, not noise
        check_env(env.unwrapped, skip_render_check=False)
    env.close()


@pytest.mark.parametrize("game_id", ONE_PER_SUITE)
def test_observation_matches_spec(game_id):
    spec = games.spec(game_id)
    env = games.make(game_id, seed=0)
    obs, info = env.reset()
    assert obs.shape == spec.obs_shape and obs.dtype == np.uint8
    assert env.observation_space.shape == spec.obs_shape
    assert env.action_space.n == spec.n_actions
    assert info["game"] == game_id
    obs, *_ = env.step(env.action_space.n - 1)
    assert obs.shape == spec.obs_shape
    assert {"minatar": 6, "atari": 18, "mario": 12}[spec.suite] == spec.n_actions


def test_minatar_channels_are_zero_padded_to_ten():
    for name, channels in {"asterix": 4, "breakout": 4, "freeway": 7, "seaquest": 10,
                           "space_invaders": 6}.items():
        env = games.make(f"minatar-{name}", seed=1)
        obs, _ = env.reset()
        for _ in range(30):
            obs, *_, = env.step(env.action_space.sample())
            assert not obs[channels:].any(), f"{name}: padded channels must stay zero"
        assert set(np.unique(obs)) <= {0, 1}


@pytest.mark.parametrize("game_id", ONE_PER_SUITE)
def test_same_seed_same_trajectory(game_id):
    actions = np.random.default_rng(0).integers(games.spec(game_id).n_actions, size=60)
    a = rollout(games.make(game_id), actions, seed=7)
    b = rollout(games.make(game_id), actions, seed=7)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[2] == b[2]


@pytest.mark.parametrize("game_id", ["minatar-breakout", "atari-breakout"])
def test_different_seeds_differ(game_id):
    actions = np.random.default_rng(0).integers(games.spec(game_id).n_actions, size=200)
    runs = [rollout(games.make(game_id), actions, seed=s) for s in range(4)]
    assert any(not np.array_equal(runs[0][0][: len(r[0])], r[0][: len(runs[0][0])]) for r in runs[1:])


def test_make_seed_seeds_the_first_reset():
    a = games.make("minatar-asterix", seed=3)
    b = games.make("minatar-asterix", seed=3)
    actions = [1, 2, 3, 4, 0] * 20
    np.testing.assert_array_equal(rollout_no_seed(a, actions), rollout_no_seed(b, actions))


def rollout_no_seed(env, actions):
    obs, _ = env.reset()
    out = [obs]
    for act in actions:
        obs, _, term, trunc, _ = env.step(act)
        out.append(obs)
        if term or trunc:
            break
    return np.stack(out)


@pytest.mark.parametrize("game_id, kwargs", [
    ("minatar-breakout", {}),
    ("atari-breakout", {"noop_max": 0}),
])
def test_sticky_prob_one_ignores_actions(game_id, kwargs):
    """With sticky probability 1 the game keeps repeating the initial no-op, whatever we send."""
    n = games.spec(game_id).n_actions
    actions = np.random.default_rng(1).integers(1, n, size=40)
    sticky = rollout(games.make(game_id, sticky_action_prob=1.0, **kwargs), actions, seed=0)
    noop = rollout(games.make(game_id, sticky_action_prob=1.0, **kwargs), np.zeros(40, int), seed=0)
    free = rollout(games.make(game_id, sticky_action_prob=0.0, **kwargs), actions, seed=0)
    np.testing.assert_array_equal(sticky[0], noop[0])
    assert not np.array_equal(free[0][: len(noop[0])], noop[0][: len(free[0])])


def test_mario_sticky_prob_one_keeps_mario_still():
    right = 1  # COMPLEX_MOVEMENT[1] == ["right"]
    still = games.make("mario-1-1", sticky_action_prob=1.0)
    moving = games.make("mario-1-1", sticky_action_prob=0.0)
    for env in (still, moving):
        env.reset(seed=0)
    x0 = still.step(right)[4]["x_pos"]
    for _ in range(20):
        xs = still.step(right)[4]["x_pos"]
        xm = moving.step(right)[4]["x_pos"]
    assert xs == x0 and xm > x0 + 20


def test_minatar_episode_terminates_and_resets():
    env = games.make("minatar-breakout", seed=0)
    _, rewards, ends = rollout(env, [0] * 10_000, seed=0)
    assert ends[-1] == (True, False), "breakout with no-ops must end by losing the ball"
    obs, _ = env.reset()
    assert obs.any()


def test_atari_time_limit_truncates():
    env = games.make("atari-breakout", max_episode_steps=25, noop_max=0)
    _, _, ends = rollout(env, [0] * 100, seed=0)
    assert len(ends) == 25 and ends[-1] == (False, True)


def test_atari_game_over_terminates():
    env = games.make("atari-breakout", seed=0)
    _, _, ends = rollout(env, [1] * 5000, seed=0)  # FIRE serves, the paddle never moves
    assert ends[-1] == (True, False) and len(ends) < 5000


def test_mario_death_terminates_and_step_after_end_fails():
    env = games.make("mario-1-1", seed=0, sticky_action_prob=0.0)
    _, rewards, ends = rollout(env, [1] * 2000, seed=0)  # runs right into the first goomba
    assert ends[-1] == (True, False)
    # the death frame gives -15 (clipped -25), the other frames of that step a little x-progress
    assert rewards.min() >= -15 and rewards.max() <= 15 and rewards[-1] < -5
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    env.reset()
    env.step(0)


def test_mario_numpy2_fixes():
    """The three numpy-2 / old-gym defects of nes-py and gym-super-mario-bros, each repaired."""
    from gym_super_mario_bros._roms import rom_path
    from nes_py._rom import ROM

    games.make("mario-1-1")  # installs the ROM patch
    rom = ROM(rom_path(False, "vanilla"))
    assert (rom.prg_rom_size, rom.chr_rom_size) == (32, 8)  # 2 x 16 KiB PRG, 1 x 8 KiB CHR
    assert len(rom.prg_rom) == 32 * 1024 and len(rom.chr_rom) == 8 * 1024
    # x position across the 256-pixel page boundary: uint8 arithmetic would overflow here
    env = games.make("mario-1-1")
    env.reset(seed=0)
    env.unwrapped._nes.ram[0x6D] = 3
    env.unwrapped._nes.ram[0x86] = 20
    assert env.unwrapped._nes._x_position == 3 * 256 + 20
    # gymnasium API: reset(seed=...) -> (obs, info); step -> 5-tuple
    out = env.reset(seed=1)
    assert len(out) == 2 and isinstance(out[1], dict)
    assert len(env.step(0)) == 5


def test_multi_game_draws_every_game_and_tags_steps():
    ids = ["minatar-asterix", "minatar-breakout", "minatar-freeway"]
    env = games.make_multi(ids, seed=0)
    seen = []
    for _ in range(30):
        _, info = env.reset()
        seen.append(info["game"])
        for _ in range(3):
            *_, info = env.step(0)
            assert info["game"] == seen[-1]
    counts = {g: seen.count(g) for g in ids}
    assert all(c >= 4 for c in counts.values()), counts


def test_multi_game_is_deterministic_by_seed():
    ids = ["minatar-asterix", "minatar-breakout", "minatar-seaquest"]
    def episodes(seed):
        env = games.make_multi(ids, seed=seed)
        return [env.reset()[1]["game"] for _ in range(12)]
    assert episodes(5) == episodes(5)
    assert episodes(5) != episodes(6) or episodes(5) != episodes(7)


def test_multi_game_rejects_mismatched_spaces():
    with pytest.raises(ValueError, match="minatar-breakout.*atari-breakout"):
        games.make_multi(["minatar-breakout", "atari-breakout"])


def test_vector_minatar_and_multi():
    env = games.make_vector("minatar-space_invaders", 3, seed=0)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (3, 10, 10, 10) and obs.dtype == np.uint8
    obs, rew, term, trunc, _ = env.step(np.zeros(3, dtype=np.int64))
    assert obs.shape == (3, 10, 10, 10) and rew.shape == (3,)
    multi = games.make_vector(["minatar-breakout", "minatar-asterix"], 2, seed=0)
    obs, _ = multi.reset(seed=0)
    assert obs.shape == (2, 10, 10, 10)


def test_native_atari_vector_matches_single_env():
    """ale-py's C++ vector env and AtariGame give the same frames under the same preprocessing."""
    vec = games.make_vector("atari-breakout", 1, seed=3, noop_max=0, sticky_action_prob=0.0)
    single = games.make("atari-breakout", noop_max=0, sticky_action_prob=0.0)
    v_obs, _ = vec.reset(seed=3)
    s_obs, _ = single.reset(seed=3)
    np.testing.assert_array_equal(v_obs[0], s_obs)
    for k in range(30):
        v_obs, v_r, *_ = vec.step(np.array([k % 4]))
        s_obs, s_r, *_ = single.step(k % 4)
        np.testing.assert_array_equal(v_obs[0], s_obs)
        assert float(v_r[0]) == s_r


@pytest.mark.parametrize("game_id", ATARI_SHOOTERS)
def test_atari_games_step(game_id):
    env = games.make(game_id, seed=0)
    _, _, ends = rollout(env, np.random.default_rng(0).integers(18, size=50), seed=0)
    assert len(ends) >= 1


@pytest.mark.slow
def test_every_mario_level_steps():
    for game_id in games.names("mario"):
        env = games.make(game_id, seed=0)
        obs, info = env.reset()
        assert (info["world"], info["stage"]) == tuple(int(x) for x in game_id.split("-")[1:])
        obs2, *_ = env.step(1)
        assert obs2.shape == (1, 64, 64)
        env.close()


def test_minatar_action_repeat_advances_k_steps_and_sums_rewards():
    """action_repeat=2 equals two plain steps with the same action (sticky actions off)."""
    single = games.make("minatar-freeway", sticky_action_prob=0.0)
    repeat = games.make("minatar-freeway", sticky_action_prob=0.0, action_repeat=2)
    single.reset(seed=0)
    repeat.reset(seed=0)
    total = 0.0
    for a in [2] * 200:  # always up
        _, r1, *_ = single.step(a)
        obs2, r2, *_ = single.step(a)
        obs_r, r_r, *_ = repeat.step(a)
        np.testing.assert_array_equal(obs_r, obs2)
        assert r_r == r1 + r2
        total += r_r
    assert total > 0  # the chicken crossed at least once, so rewards were really summed


@pytest.mark.parametrize("name", ["breakout", "space_invaders", "freeway"])
def test_minatar_minimal_action_set_plays_the_mapped_full_actions(name):
    """Index i of the minimal set is full-set action MINIMAL_ACTIONS[name][i]: the same frames and
    rewards as the full set, step by step (sticky actions off); the spec and action space say its size."""
    from wmtransfer.games import minatar

    full_ids = minatar.MINIMAL_ACTIONS[name]
    assert games.spec(f"minatar-{name}", {"action_set": "minimal"}).n_actions == len(full_ids) < 6
    minimal = games.make(f"minatar-{name}", sticky_action_prob=0.0, action_set="minimal")
    full = games.make(f"minatar-{name}", sticky_action_prob=0.0)
    assert minimal.action_space.n == len(full_ids)
    idx = np.random.default_rng(0).integers(len(full_ids), size=300)
    a, b = rollout(minimal, idx, seed=3), rollout(full, np.asarray(full_ids)[idx], seed=3)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match="outside minatar-.* actions"):
        minimal.step(len(full_ids))


def test_action_set_is_checked_where_it_is_read():
    with pytest.raises(ValueError, match="unknown MinAtar action_set 'tiny'"):
        games.make("minatar-breakout", action_set="tiny")
    with pytest.raises(ValueError, match="action_set is a MinAtar setting"):
        games.spec("procgen-coinrun", {"action_set": "minimal"})
    from wmtransfer.train.agent import suite_spec

    assert suite_spec(["minatar-space_invaders"], {"action_set": "minimal"}).n_actions == 4
    # minimal sets differ per game, even where their sizes agree (breakout and freeway: 3 actions each)
    for ids in (["minatar-breakout", "minatar-space_invaders"], ["minatar-breakout", "minatar-freeway"]):
        with pytest.raises(ValueError, match="needs the full set"):
            suite_spec(ids, {"action_set": "minimal"})
        with pytest.raises(ValueError, match="needs the full set"):
            games.make_multi(ids, action_set="minimal")


@pytest.mark.parametrize("name", ["asterix", "breakout", "freeway", "seaquest", "space_invaders"])
def test_minatar_frames_equal_the_library_state(name):
    """The wrapper's fast renderer draws exactly MinAtar's own ``state()``, padded to ten channels,
    over long random play with episode ends; and a raw ``minatar.Environment`` with the same seed and
    actions shows the same frames."""
    from minatar import Environment

    from wmtransfer.games.base import seed_from

    env = games.make(f"minatar-{name}", seed=5)
    assert env._render is not None, "the fast renderer must be in use on the pinned MinAtar"
    obs, _ = env.reset()
    raw = Environment(name)
    raw.seed(seed_from(gym.utils.seeding.np_random(5)[0]))  # what the wrapper's first reset does
    raw.reset()

    def padded(state):
        return np.pad(state.transpose(2, 0, 1), ((0, 10 - state.shape[2]), (0, 0), (0, 0))).astype(np.uint8)

    np.testing.assert_array_equal(obs, padded(raw.state()))
    actions = np.random.default_rng(0).integers(6, size=3000)
    episodes = 0
    for t, a in enumerate(actions):
        obs, _, terminated, _, _ = env.step(a)
        _, raw_terminal = raw.act(int(a))
        np.testing.assert_array_equal(obs, env._state_obs(), err_msg=f"{name} step {t}")
        np.testing.assert_array_equal(obs, padded(raw.state()), err_msg=f"{name} step {t} (raw)")
        assert terminated == raw_terminal
        if terminated:
            episodes += 1
            obs, _ = env.reset()
            raw.reset()
            np.testing.assert_array_equal(obs, padded(raw.state()))
    assert episodes >= 1 or name == "freeway"


def test_random_baseline_plays_under_game_settings(tmp_path):
    """``random-baseline --game-settings`` draws from the game's own (minimal) action space: a draw outside
    it would raise in ``step``; with the same seed, the full set's episodes differ."""
    import json

    import pandas as pd

    from wmtransfer.cli import main

    settings = json.dumps({"sticky_action_prob": 0, "action_set": "minimal"})
    for name, extra in [("minimal", ["--game-settings", settings]), ("full", [])]:
        assert main(["random-baseline", "--game", "minatar-breakout", "--episodes", "5",
                     "--out", str(tmp_path / f"{name}.csv"), *extra]) == 0
    minimal, full = (pd.read_csv(tmp_path / f"{n}.csv") for n in ("minimal", "full"))
    assert len(minimal) == len(full) == 5
    assert not minimal.episode_length.equals(full.episode_length)
