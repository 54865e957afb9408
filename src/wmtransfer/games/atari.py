"""Atari 2600 games through ale-py, preprocessed as DreamerV2 does for Atari.

DreamerV2's Atari setting (Hafner et al. 2021, official ``common/envs.py`` and configs): 64x64
grayscale frames, action repeat 4 with a max over the last two frames, sticky actions 0.25 (applied by
the emulator on every frame), the full 18-action set shared by all games, up to 30 random no-ops at
reset, episodes end at game over (not at a lost life), and a limit of 27000 agent steps (108000
frames). Rewards are the raw game rewards; the world model transforms them itself.

:class:`AtariGame` drives ``ale_py.ALEInterface`` directly (one C++ call per emulated frame, no gym
wrapper stack). :func:`make_native_vector` returns ale-py's C++ ``AtariVectorEnv`` configured to the
same preprocessing, for fast vectorised stepping.
"""

from __future__ import annotations

import functools

import cv2
import gymnasium as gym
import numpy as np

from .base import Game, GameSpec, seed_from

N_ACTIONS = 18
SIZE = 64
OBS_SHAPE = (1, SIZE, SIZE)
_MULTIPLAYER_ONLY = {"combat", "joust", "maze_craze", "warlords"}


@functools.cache
def game_names() -> list[str]:
    """Snake-case ALE ROM names bundled with ale-py (``breakout``, ``space_invaders``, ...).

    Exactly the games ale-py registers as ``ALE/<Name>-v5``: the multi-player-only ROMs it leaves out
    (combat, joust, maze_craze, warlords) do not load in single-player mode.
    """
    from ale_py import roms

    return sorted(set(roms.get_all_rom_ids()) - _MULTIPLAYER_ONLY)


def spec(name: str) -> GameSpec:
    return GameSpec(f"atari-{name}", "atari", OBS_SHAPE, N_ACTIONS)


class AtariGame(Game):
    """One Atari game with DreamerV2's preprocessing (see the module docstring for every setting)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(
        self,
        name: str,
        seed: int | None = None,
        action_repeat: int = 4,
        sticky_action_prob: float = 0.25,
        noop_max: int = 30,
        max_episode_steps: int = 27000,
        size: int = SIZE,
        render_mode: str | None = None,
    ):
        from ale_py import Action, ALEInterface, LoggerMode, roms

        if name not in game_names():
            raise ValueError(f"unknown Atari game {name!r}; valid: {', '.join(game_names())}")
        if action_repeat < 1:
            raise ValueError(f"action_repeat must be >= 1, got {action_repeat}")
        ALEInterface.setLoggerMode(LoggerMode.Error)
        self.name = name
        self.game_id = f"atari-{name}"
        self.action_repeat = action_repeat
        self.noop_max = noop_max
        self.size = size
        self._rom = roms.get_rom_path(name)
        self._ale = ALEInterface()
        self._ale.setFloat("repeat_action_probability", float(sticky_action_prob))
        self._ale.setInt("frame_skip", 1)
        self._ale.setInt("max_num_frames_per_episode", int(max_episode_steps * action_repeat))
        self._ale.setInt("random_seed", 0)
        self._ale.loadROM(self._rom)
        # The full 18-action set for every game (ALE's legal set is shorter for a few ROMs, e.g. skiing).
        self._actions = list(Action.__members__.values())[:N_ACTIONS]
        h, w = self._ale.getScreenDims()
        self._frames = np.zeros((2, h, w), dtype=np.uint8)
        self.observation_space = gym.spaces.Box(0, 255, (1, size, size), dtype=np.uint8)
        self.action_space = gym.spaces.Discrete(N_ACTIONS)
        self.render_mode = render_mode
        self._init_seed(seed)

    def _obs(self) -> np.ndarray:
        frame = np.maximum(self._frames[0], self._frames[1])
        small = cv2.resize(frame, (self.size, self.size), interpolation=cv2.INTER_AREA)
        return small[None]

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if self._reset_seed(seed):
            # ALE's own RNG (sticky actions) is seeded from ours; a reload applies the new seed.
            self._ale.setInt("random_seed", seed_from(self.np_random))
            self._ale.loadROM(self._rom)
        self._ale.reset_game()
        noops = int(self.np_random.integers(1, self.noop_max + 1)) if self.noop_max > 0 else 0
        for _ in range(noops):
            self._ale.act(self._actions[0])
            if self._ale.game_over():
                self._ale.reset_game()
        self._ale.getScreenGrayscale(self._frames[0])
        self._frames[1] = self._frames[0]
        return self._obs(), {"game": self.game_id, "lives": self._ale.lives()}

    def step(self, action):
        ale, a = self._ale, self._actions[int(action)]
        reward = 0.0
        for i in range(self.action_repeat):
            reward += ale.act(a)
            if i >= self.action_repeat - 2:
                ale.getScreenGrayscale(self._frames[i - self.action_repeat + 2])
            if ale.game_over(with_truncation=True):
                if i < self.action_repeat - 1:  # game ended early: both pooled frames are the last one
                    ale.getScreenGrayscale(self._frames[0])
                    self._frames[1] = self._frames[0]
                break
        truncated = ale.game_truncated()
        terminated = ale.game_over(with_truncation=False)
        info = {"game": self.game_id, "lives": ale.lives()}
        return self._obs(), float(reward), bool(terminated), bool(truncated and not terminated), info

    def render(self):
        if self.render_mode == "rgb_array":
            return self._ale.getScreenRGB()
        return None


def make_native_vector(name: str, num_envs: int, seed: int = 0, *, action_repeat: int = 4,
                       sticky_action_prob: float = 0.25, noop_max: int = 30,
                       max_episode_steps: int = 27000, size: int = SIZE, num_threads: int = 0,
                       autoreset_mode: str = "SameStep"):
    """ale-py's C++ vector env with :class:`AtariGame`'s preprocessing; obs ``(num_envs, 1, size, size)``.

    Autoreset follows gymnasium's SAME_STEP mode by default: on the step where an episode ends, ``obs``
    is the first observation of the next episode and ``info["final_obs"]`` holds the last one.
    ``"NextStep"``: the env resets on the step after an end, unless a masked ``reset`` (``options=
    {"reset_mask": ...}``, one seed per env reset) comes first; the online loop does that, so every
    episode starts from a seed of its own generator. Measured against :class:`AtariGame` (Breakout,
    sticky 0, no-ops 0, 199 random steps to the end): same rewards and end step, 0.01% of pixels differ.
    """
    from ale_py.vector_env import AtariVectorEnv

    if name not in game_names():
        raise ValueError(f"unknown Atari game {name!r}; valid: {', '.join(game_names())}")
    env = AtariVectorEnv(
        game=name, num_envs=num_envs, num_threads=num_threads,
        max_num_frames_per_episode=max_episode_steps * action_repeat,
        repeat_action_probability=sticky_action_prob, full_action_space=True,
        autoreset_mode=autoreset_mode, img_height=size, img_width=size, grayscale=True, stack_num=1,
        frameskip=action_repeat, maxpool=True, noop_max=noop_max, episodic_life=False,
        reward_clipping=False, use_fire_reset=False,
    )
    env.game_id = f"atari-{name}"
    env.reset(seed=seed)
    return env
