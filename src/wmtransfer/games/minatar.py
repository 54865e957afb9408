"""MinAtar games (Young & Tian 2019) as gymnasium envs with one shared observation and action space.

The five games have 4/4/7/10/6 boolean channels on a 10x10 grid. Every game is exposed with the union
layout: its own channels first, zero-padded to ``N_CHANNELS = 10``, channels-first ``uint8`` (0/1), so
one world model reads all five. All games use MinAtar's full 6-action set (no-op, left, up, right,
down, fire) unless ``action_set="minimal"`` asks for the game's own minimal set (e.g. Space Invaders'
no-op, left, right, fire), which both MinAtar DreamerV2 references act in (RajGhugare19/dreamerv2 through
MinAtar's ``minimal_action_set()``, kenjyoung/dreamerv2_JAX through gymnax); a minimal set differs per
game, so it cannot serve a multi-game agent. Sticky actions (0.1; kenjyoung/dreamerv2_JAX's gymnax games
have none) and difficulty ramping are MinAtar's own, applied by ``minatar.Environment``, which we
drive directly (faster than its gym registration). MinAtar has no action repeat; ``action_repeat=k``
(the seed-002 ablation) repeats each action k times and sums the rewards, each repeated step still
subject to sticky actions.

Speed: MinAtar's ``state()`` builds a ``(10, 10, c)`` bool frame that would then need a transpose, a cast
and a zero-padded copy, which cost as much as the step itself. ``_RENDER`` draws each game's frame
straight into the channels-first padded ``uint8`` layout from the same game variables, the same way
MinAtar's ``state()`` does (same index rules, negative indices included); ``tests/test_games.py``
checks every game's frames against ``state()`` over long random play. A MinAtar version whose game
objects lack those variables falls back to ``state()``.
"""

from __future__ import annotations

import functools
import sys

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


ACTION_SETS = ("full", "minimal")
#: MinAtar's ``minimal_action_set()`` of each game (minatar 1.0.15), as indices of the full set.
MINIMAL_ACTIONS = {"asterix": (0, 1, 2, 3, 4), "breakout": (0, 1, 3), "freeway": (0, 2, 4),
                   "seaquest": (0, 1, 2, 3, 4, 5), "space_invaders": (0, 1, 3, 5)}


def actions(name: str, action_set: str = "full") -> tuple[int, ...]:
    """The full-set MinAtar actions that a game's action indices 0..n-1 stand for."""
    if action_set not in ACTION_SETS:
        raise ValueError(f"unknown MinAtar action_set {action_set!r}; valid: {', '.join(ACTION_SETS)}")
    return MINIMAL_ACTIONS[name] if action_set == "minimal" else tuple(range(N_ACTIONS))


def spec(name: str, action_set: str = "full") -> GameSpec:
    return GameSpec(f"minatar-{name}", "minatar", OBS_SHAPE, len(actions(name, action_set)))


# Each renderer returns one game's frame, ``obs[channel, y, x]`` where MinAtar's ``state()`` has
# ``state[y, x, channel]`` (minatar 1.0.15, channel order of each game's ``self.channels``).
def _render_asterix(g):
    obs = np.zeros(OBS_SHAPE, dtype=np.uint8)
    obs[0, g.player_y, g.player_x] = 1
    for e in g.entities:
        if e is not None:
            obs[3 if e[3] else 1, e[1], e[0]] = 1
            back_x = e[0] - 1 if e[2] else e[0] + 1
            if 0 <= back_x <= 9:
                obs[2, e[1], back_x] = 1
    return obs


def _render_breakout(g):
    obs = np.zeros(OBS_SHAPE, dtype=np.uint8)
    obs[1, g.ball_y, g.ball_x] = 1
    obs[0, 9, g.pos] = 1
    obs[2, g.last_y, g.last_x] = 1
    obs[3] = g.brick_map
    return obs


def _render_freeway(g):
    obs = np.zeros(OBS_SHAPE, dtype=np.uint8)
    obs[0, g.pos, 4] = 1
    for car in g.cars:
        obs[1, car[1], car[0]] = 1
        back_x = car[0] - 1 if car[3] > 0 else car[0] + 1
        if back_x < 0:
            back_x = 9
        elif back_x > 9:
            back_x = 0
        obs[1 + abs(car[3]), car[1], back_x] = 1  # speed1..speed5 are channels 2..6
    return obs


_ONES = b"\x01" * 10


def _render_seaquest(g, max_oxygen):
    # The busiest frame: drawn into a flat bytearray (index 100 c + 10 y + x), which costs a third of
    # numpy's per-element assignment.
    b = bytearray(1000)
    y, x = g.sub_y, g.sub_x
    b[10 * y + x] = 1
    b[100 + 10 * y + (x - 1 if g.sub_or else x + 1) % 10] = 1  # -1 is column 9, as in numpy
    oxygen = max(0, g.oxygen) * 10 // max_oxygen
    if oxygen:
        b[790: 790 + oxygen] = _ONES[:oxygen]
    if g.diver_count:
        b[899 - g.diver_count: 899] = _ONES[: g.diver_count]
    for t in g.f_bullets:
        b[200 + 10 * t[1] + t[0]] = 1
    for t in g.e_bullets:
        b[400 + 10 * t[1] + t[0]] = 1
    for base, things in ((500, g.e_fish), (600, g.e_subs), (900, g.divers)):
        for t in things:
            row = 10 * t[1]
            b[base + row + t[0]] = 1
            back_x = t[0] - 1 if t[2] else t[0] + 1
            if 0 <= back_x <= 9:
                b[300 + row + back_x] = 1
    return np.ndarray(OBS_SHAPE, np.uint8, b)  # a view of b, writable, with no copy


def _render_space_invaders(g):
    obs = np.zeros(OBS_SHAPE, dtype=np.uint8)
    obs[0, 9, g.pos] = 1
    obs[1] = g.alien_map
    obs[2 if g.alien_dir < 0 else 3] = g.alien_map
    obs[4] = g.f_bullet_map
    obs[5] = g.e_bullet_map
    return obs


_RENDER = {"asterix": _render_asterix, "breakout": _render_breakout, "freeway": _render_freeway,
           "seaquest": _render_seaquest, "space_invaders": _render_space_invaders}


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
        action_set: str = "full",
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
        self._render = self._native_renderer()
        self._actions = actions(name, action_set)
        if action_set == "minimal" and tuple(self._env.minimal_action_set()) != self._actions:
            raise RuntimeError(f"this MinAtar's minimal action set of {name} is "
                               f"{tuple(self._env.minimal_action_set())}, not {self._actions}")
        self.observation_space = gym.spaces.Box(0, 1, OBS_SHAPE, dtype=np.uint8)
        self.action_space = gym.spaces.Discrete(len(self._actions))
        self.render_mode = render_mode
        self._init_seed(seed)

    def _obs(self) -> np.ndarray:
        if self._render is not None:
            return self._render(self._game)
        return self._state_obs()

    def _state_obs(self) -> np.ndarray:
        """The frame from MinAtar's own ``state()``, padded: the reference ``_RENDER`` is tested against."""
        obs = np.zeros(OBS_SHAPE, dtype=np.uint8)
        obs[: self._channels] = self._game.state().transpose(2, 0, 1)
        return obs

    def _native_renderer(self):
        """``_RENDER``'s function for this game if it reproduces ``state()`` on this MinAtar (channel order
        and the first frame), else ``None``."""
        expected = {"asterix": ["player", "enemy", "trail", "gold"],
                    "breakout": ["paddle", "ball", "trail", "brick"],
                    "freeway": ["chicken", "car"] + [f"speed{i}" for i in range(1, 6)],
                    "seaquest": ["sub_front", "sub_back", "friendly_bullet", "trail", "enemy_bullet",
                                 "enemy_fish", "enemy_sub", "oxygen_guage", "diver_guage", "diver"],
                    "space_invaders": ["cannon", "alien", "alien_left", "alien_right", "friendly_bullet",
                                       "enemy_bullet"]}[self.name]
        if sorted(self._game.channels, key=self._game.channels.get) != expected:
            return None
        render = _RENDER[self.name]
        if self.name == "seaquest":
            render = functools.partial(render, max_oxygen=sys.modules[type(self._game).__module__].max_oxygen)
        try:
            obs = render(self._game)
        except AttributeError:
            return None
        return render if np.array_equal(obs, self._state_obs()) else None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if self._reset_seed(seed):
            self._env.seed(seed_from(self.np_random))
        self._env.reset()
        return self._obs(), {"game": self.game_id}

    def step(self, action):
        index = int(action)
        if not 0 <= index < len(self._actions):
            raise ValueError(f"action {index} is outside {self.game_id}'s {len(self._actions)} actions")
        action = self._actions[index]
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
