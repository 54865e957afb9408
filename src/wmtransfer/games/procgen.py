"""OpenAI Procgen games (``procgen-mirror`` 0.10.7) as gymnasium envs, seed 004.

Procgen's C++ envs are batched (``ProcgenGym3Env(num=N)``) and reset themselves when an episode ends.
:class:`ProcgenGame` drives a batch of one and exposes gymnasium's 5-tuple API; :class:`ProcgenVectorGame`
drives a batch of ``N`` as a gymnasium vector env, so vectorised play costs one C++ call per step.

Settings (seed 004 plays ``leaper`` this way): 64x64 RGB frames, channels-first ``uint8`` ``(3, 64, 64)``;
the 15 procgen actions (every game shares the same set); ``distribution_mode="easy"``; levels drawn
from procgen's RNG seeded by the run seed (``num_levels=0``: an unbounded set of levels; with
``num_levels > 0`` the levels are ``start_level ... start_level + num_levels - 1``).

Two properties of procgen the wrappers state rather than hide:

* the env resets itself on the step an episode ends, so the frame returned with ``terminated=True``
  is already the first frame of the next episode (procgen never shows the last frame); a ``reset()``
  right after that returns this frame without restarting anything;
* procgen reports its time-outs (e.g. leaper's 500 steps) as the end of the episode, not as a
  truncation, so ``truncated`` is always ``False``.

Starting a procgen env takes about half a second, so ``reset()`` builds a new one only when it is given
a seed, on the very first reset, or in the middle of an episode (with a seed drawn from ``np_random``).

``procgen-mirror`` declares ``numpy<2`` and ``gym3`` declares ``numpy<2`` and ``cffi<2``, yet both run
under numpy 2 and cffi 2: the ``procgen`` extra of ``pyproject.toml`` installs their real dependencies,
and ``pip install --no-deps procgen-mirror==0.10.7 gym3==0.3.3`` installs them without the pins
(README, ``docs/games.md``).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import Any

import gymnasium as gym
import numpy as np

from .base import Game, GameSpec, seed_from

#: The 16 games of procgen 0.10.7 (``procgen.env.ENV_NAMES``), listed here so ids validate without procgen.
GAMES = ("bigfish", "bossfight", "caveflyer", "chaser", "climber", "coinrun", "dodgeball", "fruitbot",
         "heist", "jumper", "leaper", "maze", "miner", "ninja", "plunder", "starpilot")
N_ACTIONS = 15
SIZE = 64
OBS_SHAPE = (3, SIZE, SIZE)
DISTRIBUTION_MODES = ("easy", "hard", "extreme", "memory", "exploration")
INSTALL_HINT = ('pip install -e ".[procgen]" && pip install --no-deps procgen-mirror==0.10.7 gym3==0.3.3 '
                "(README, section procgen)")


def spec(name: str) -> GameSpec:
    return GameSpec(f"procgen-{name}", "procgen", OBS_SHAPE, N_ACTIONS)


def _gym3_env_class():
    try:
        # procgen imports the old `gym` package, which warns and prints a notice on import
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            from procgen import ProcgenGym3Env
    except ImportError as e:
        raise ImportError(f"procgen games need procgen-mirror and gym3 ({e}); install them with: "
                          f"{INSTALL_HINT}") from e
    return ProcgenGym3Env


def _check(name: str, distribution_mode: str, num_levels: int, start_level: int) -> None:
    if name not in GAMES:
        raise ValueError(f"unknown procgen game {name!r}; valid: {', '.join(GAMES)}")
    if distribution_mode not in DISTRIBUTION_MODES:
        raise ValueError(f"distribution_mode must be one of {DISTRIBUTION_MODES}, got {distribution_mode!r}")
    if num_levels < 0 or start_level < 0:
        raise ValueError(f"num_levels and start_level must be >= 0, got {num_levels}, {start_level}")


def _native(name: str, num: int, rand_seed: int, distribution_mode: str, num_levels: int, start_level: int):
    cls = _gym3_env_class()
    return cls(num=num, env_name=name, distribution_mode=distribution_mode, num_levels=num_levels,
               start_level=start_level, rand_seed=int(rand_seed) % (2**31 - 1))


def _frames(ob: dict[str, np.ndarray]) -> np.ndarray:
    """procgen's ``(N, 64, 64, 3)`` RGB batch as channels-first ``(N, 3, 64, 64)`` uint8."""
    return np.ascontiguousarray(ob["rgb"].transpose(0, 3, 1, 2))


def _infos(native) -> list[dict[str, Any]]:
    return [{k: int(v) for k, v in info.items()} for info in native.get_info()]


class ProcgenGame(Game):
    """One procgen game with seed 004's settings (module docstring: settings and procgen's quirks)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(self, name: str, seed: int | None = None, distribution_mode: str = "easy",
                 num_levels: int = 0, start_level: int = 0, render_mode: str | None = None):
        _check(name, distribution_mode, num_levels, start_level)
        _gym3_env_class()  # fail here, with the install hint, when procgen is missing
        self.name = name
        self.game_id = f"procgen-{name}"
        self.distribution_mode = distribution_mode
        self.num_levels = num_levels
        self.start_level = start_level
        self.observation_space = gym.spaces.Box(0, 255, OBS_SHAPE, dtype=np.uint8)
        self.action_space = gym.spaces.Discrete(N_ACTIONS)
        self.render_mode = render_mode
        self._native = None
        self._obs = np.zeros(OBS_SHAPE, np.uint8)
        self._mid_episode = False
        self._init_seed(seed)

    def _observe(self) -> tuple[float, bool]:
        reward, ob, first = self._native.observe()
        self._obs = _frames(ob)[0]
        return float(reward[0]), bool(first[0])

    def _info(self, info: dict[str, Any]) -> dict[str, Any]:
        return {"game": self.game_id, **info}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        reseed = self._reset_seed(seed)
        if reseed or self._mid_episode or self._native is None:
            if self._native is not None:
                self._native = None
            self._native = _native(self.name, 1, seed_from(self.np_random), self.distribution_mode,
                                   self.num_levels, self.start_level)
            self._observe()
        self._mid_episode = False
        info = _infos(self._native)[0]
        return self._obs.copy(), self._info({"level_seed": info["level_seed"]})

    def step(self, action):
        if self._native is None:
            raise RuntimeError(f"{self.game_id}: step() before reset()")
        self._native.act(np.asarray([int(action)], dtype=np.int32))
        reward, done = self._observe()
        self._mid_episode = not done
        info = _infos(self._native)[0]
        # prev_level_complete: the episode that just ended reached the level's goal (a win in leaper).
        extra = {"level_complete": bool(info["prev_level_complete"])} if done else {}
        return self._obs.copy(), reward, done, False, self._info(extra)

    def render(self):
        if self.render_mode == "rgb_array":
            return self._obs.transpose(1, 2, 0).copy()
        return None

    def close(self):
        self._native = None


class ProcgenVectorGame(gym.vector.VectorEnv):
    """``num_envs`` copies of one procgen game in procgen's own batched C++ env.

    Autoreset follows gymnasium's SAME_STEP mode as procgen does natively: on the step where an episode
    ends, ``obs`` is the first frame of the next episode; ``info["level_complete"]`` says, per env,
    whether the episode that ended there reached its goal. One ``rand_seed`` (the ``seed``) draws the
    levels of every env of the batch; ``reset(seed=s)`` rebuilds the batch with ``rand_seed=s``.
    """

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}

    def __init__(self, name: str, num_envs: int, seed: int = 0, distribution_mode: str = "easy",
                 num_levels: int = 0, start_level: int = 0):
        _check(name, distribution_mode, num_levels, start_level)
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.name, self.game_id, self.num_envs = name, f"procgen-{name}", num_envs
        self._settings = (distribution_mode, num_levels, start_level)
        self.single_observation_space = gym.spaces.Box(0, 255, OBS_SHAPE, dtype=np.uint8)
        self.single_action_space = gym.spaces.Discrete(N_ACTIONS)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)
        self._seed = seed
        self._native = _native(name, num_envs, seed, *self._settings)
        self._fresh = True  # built and not stepped: a reset without a seed keeps it

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._seed = seed
        if seed is not None or not self._fresh:
            self._native = _native(self.name, self.num_envs, self._seed, *self._settings)
        self._fresh = True
        _, ob, _ = self._native.observe()
        return _frames(ob), {}

    def step(self, actions):
        self._fresh = False
        self._native.act(np.asarray(actions, dtype=np.int32).reshape(self.num_envs))
        reward, ob, first = self._native.observe()
        infos = _infos(self._native)
        done = np.asarray(first, dtype=bool)
        info = {"level_complete": np.array([bool(i["prev_level_complete"]) for i in infos]) & done,
                "level_seed": np.array([i["level_seed"] for i in infos])}
        return (_frames(ob), np.asarray(reward, np.float64), done, np.zeros(self.num_envs, bool), info)

    def close_extras(self, **kwargs):
        self._native = None
