"""MinAtar games (Young & Tian 2019) as gymnasium envs with one shared observation and action space.

The five games have 4/4/7/10/6 boolean channels on a 10x10 grid. Every game is exposed with the union
layout: its own channels first, zero-padded to ``N_CHANNELS = 10``, channels-first ``uint8`` (0/1), so
one world model reads all five. All games use MinAtar's full 6-action set (no-op, left, up, right,
down, fire). Sticky actions (0.1) and difficulty ramping are MinAtar's own, applied by
``minatar.Environment``, which we drive directly (faster than its gym registration). MinAtar has no
action repeat; ``action_repeat=k`` (the seed-002 ablation) repeats each action k times and sums the
rewards, each repeated step still subject to sticky actions.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from .base import Game, GameSpec, seed_from

GAMES = ("asterix", "breakout", "freeway", "seaquest", "space_invaders")
CHANNELS = {"asterix": 4, "breakout": 4, "freeway": 7, "seaquest": 10, "space_invaders": 6}
N_CHANNELS = 10
N_ACTIONS = 6
#: Where each game keeps its player's grid cell: (x, y), each an attribute of MinAtar's game object or a
#: constant (the breakout paddle and the space invaders cannon stay on row 9, the freeway chicken in
#: column 4).
PLAYER_POSITION = {"asterix": ("player_x", "player_y"), "breakout": ("pos", 9), "freeway": (4, "pos"),
                   "seaquest": ("sub_x", "sub_y"), "space_invaders": ("pos", 9)}
OBS_SHAPE = (N_CHANNELS, 10, 10)


def spec(name: str) -> GameSpec:
    return GameSpec(f"minatar-{name}", "minatar", OBS_SHAPE, N_ACTIONS)


class MinAtarGame(Game):
    """One MinAtar game. ``reset(seed=s)`` reseeds MinAtar's own RNG (game and sticky actions)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        name: str,
        seed: int | None = None,
        sticky_action_prob: float = 0.1,
        difficulty_ramping: bool = True,
        action_repeat: int = 1,
        render_mode: str | None = None,
    ):
        from minatar import Environment  # imported lazily: it pulls in matplotlib

        if name not in GAMES:
            raise ValueError(f"unknown MinAtar game {name!r}; valid: {', '.join(GAMES)}")
        if action_repeat < 1:
            raise ValueError(f"action_repeat must be >= 1, got {action_repeat}")
        self.name = name
        self.game_id = f"minatar-{name}"
        self.action_repeat = action_repeat
        self._env = Environment(name, sticky_action_prob=sticky_action_prob,
                                difficulty_ramping=difficulty_ramping)
        self._game = self._env.env  # MinAtar's game object (state() without the wrapper's extra call)
        self._channels = CHANNELS[name]
        self.observation_space = gym.spaces.Box(0, 1, OBS_SHAPE, dtype=np.uint8)
        self.action_space = gym.spaces.Discrete(N_ACTIONS)
        self.render_mode = render_mode
        self._init_seed(seed)

    def _obs(self) -> np.ndarray:
        obs = np.zeros(OBS_SHAPE, dtype=np.uint8)
        obs[: self._channels] = self._game.state().transpose(2, 0, 1)  # the game itself: one call less
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if self._reset_seed(seed):
            self._env.seed(seed_from(self.np_random))
        self._env.reset()
        return self._obs(), {"game": self.game_id}

    def step(self, action):
        action = int(action)
        reward, terminal = self._env.act(action)  # sticky actions are applied here, by MinAtar
        if self.action_repeat > 1:  # the action-repeat ablation (seed 002); off by default
            for _ in range(self.action_repeat - 1):
                if terminal:
                    break
                r, terminal = self._env.act(action)
                reward += r
        return self._obs(), float(reward), bool(terminal), False, {"game": self.game_id}

    def player_position(self) -> tuple[int, int]:
        """The player's (x, y) grid cell (column, row) read from the game's state, not from the frame."""
        return tuple(int(getattr(self._game, a)) if isinstance(a, str) else int(a)
                     for a in PLAYER_POSITION[self.name])

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        state = self._env.state()
        palette = (np.array([[0, 0, 0]] + [[(37 * i) % 256, (91 * i) % 256, (173 * i) % 256]
                                            for i in range(1, self._channels + 1)], dtype=np.uint8))
        index = np.amax(state * np.arange(1, self._channels + 1), axis=2)
        return np.kron(palette[index], np.ones((16, 16, 1), dtype=np.uint8))
