"""Super Mario Bros levels (gym-super-mario-bros 7.4.0) as clean gymnasium envs, seed 003 §5.

Preprocessing as seed 003 describes (the DreamerV2 Atari structure): the 12 ``COMPLEX_MOVEMENT``
actions, 64x64 grayscale frames, each action repeated for 4 frames with sticky actions (probability
0.2 that a frame repeats the previous action, per emulated frame as ALE does), and the reward
(x-progress + clock penalty + -25 on death, per frame) summed over the repeat and clipped to
[-15, 15]. One level per env (``mario-<world>-<stage>``); the episode ends when Mario dies or gets
the flag, or after ``max_episode_steps`` agent steps (truncation).

gym-super-mario-bros 7.4.0 and nes-py 8.2.1 predate numpy 2 and the gymnasium API; this module
repairs them without forking:

1. nes-py's ROM header arithmetic multiplies ``uint8`` header bytes by 1024, which overflows under
   numpy 2's casting rules (NEP 50); :func:`patch_nes_py_rom` makes the size properties Python ints.
2. ``SuperMarioBrosEnv._x_position`` computes ``ram[0x6d] * 0x100`` on ``uint8`` RAM, which overflows;
   :class:`_SMBLevel` reads the position (and the y position) as Python ints.
3. The env speaks the old gym API (4-tuple ``step``, ``reset`` without a gymnasium seed);
   :class:`MarioGame` drives the emulator itself and exposes gymnasium's 5-tuple API with a working
   ``reset(seed=...)``.
"""

from __future__ import annotations

import functools

import cv2
import gymnasium as gym
import numpy as np

from .base import Game, GameSpec

WORLDS = range(1, 9)
STAGES = range(1, 5)
SIZE = 64
OBS_SHAPE = (1, SIZE, SIZE)
REWARD_RANGE = (-15.0, 15.0)

# gym_super_mario_bros.actions.COMPLEX_MOVEMENT, as NES controller bitmaps.
_BUTTONS = {"right": 0b10000000, "left": 0b01000000, "down": 0b00100000, "up": 0b00010000,
            "start": 0b00001000, "select": 0b00000100, "B": 0b00000010, "A": 0b00000001, "NOOP": 0}


def level_names() -> list[str]:
    """The 32 levels as ``<world>-<stage>``."""
    return [f"{w}-{s}" for w in WORLDS for s in STAGES]


def spec(name: str) -> GameSpec:
    from gym_super_mario_bros.actions import COMPLEX_MOVEMENT

    return GameSpec(f"mario-{name}", "mario", OBS_SHAPE, len(COMPLEX_MOVEMENT))


def patch_nes_py_rom() -> None:
    """Make nes-py's ROM size properties Python ints (numpy-2 overflow fix 1). Idempotent."""
    from nes_py._rom import ROM

    if getattr(ROM, "_wmtransfer_patched", False):
        return
    ROM.prg_rom_size = property(lambda self: 16 * int(self.header[4]))
    ROM.chr_rom_size = property(lambda self: 8 * int(self.header[5]))

    def prg_ram_size(self):
        size = int(self.header[8])
        return 8 * (size if size else 1)  # zero means one 8 KiB bank, as nes-py documents

    ROM.prg_ram_size = property(prg_ram_size)
    ROM._wmtransfer_patched = True


@functools.cache
def _level_class():
    patch_nes_py_rom()
    from gym_super_mario_bros.smb_env import SuperMarioBrosEnv

    class _SMBLevel(SuperMarioBrosEnv):
        """SuperMarioBrosEnv with position arithmetic in Python ints (numpy-2 overflow fix 2)."""

        @property
        def _x_position(self):
            return int(self.ram[0x6D]) * 0x100 + int(self.ram[0x86])

        @property
        def _y_position(self):
            y_pixel = int(self.ram[0x03B8])
            if int(self.ram[0x00B5]) < 1:
                return 255 + (255 - y_pixel)
            return 255 - y_pixel

    return _SMBLevel


class MarioGame(Game):
    """One Super Mario Bros level with seed 003's preprocessing (module docstring has the details)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(self, name: str, seed: int | None = None, action_repeat: int = 4,
                 sticky_action_prob: float = 0.2, max_episode_steps: int | None = 27000,
                 size: int = SIZE, render_mode: str | None = None):
        from gym_super_mario_bros.actions import COMPLEX_MOVEMENT

        if name not in level_names():
            raise ValueError(f"unknown Mario level {name!r}; valid: {', '.join(level_names())}")
        world, stage = (int(x) for x in name.split("-"))
        self.name = name
        self.game_id = f"mario-{name}"
        self.action_repeat = action_repeat
        self.sticky_action_prob = sticky_action_prob
        self.max_episode_steps = max_episode_steps
        self.size = size
        self._nes = _level_class()(rom_mode="vanilla", target=(world, stage))
        self._bitmaps = np.array([sum(_BUTTONS[b] for b in combo) for combo in COMPLEX_MOVEMENT],
                                 dtype=np.uint8)
        self.observation_space = gym.spaces.Box(0, 255, (1, size, size), dtype=np.uint8)
        self.action_space = gym.spaces.Discrete(len(COMPLEX_MOVEMENT))
        self.render_mode = render_mode
        self._init_seed(seed)
        self._last_action = 0
        self._steps = 0

    def _obs(self) -> np.ndarray:
        gray = cv2.cvtColor(self._nes.screen, cv2.COLOR_RGB2GRAY)
        return cv2.resize(gray, (self.size, self.size), interpolation=cv2.INTER_AREA)[None]

    def _info(self) -> dict:
        nes = self._nes
        return {"game": self.game_id, "x_pos": nes._x_position, "y_pos": nes._y_position,
                "flag_get": bool(nes._flag_get), "time": int(nes._time), "world": int(nes._world),
                "stage": int(nes._stage)}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        self._reset_seed(seed)  # sticky actions draw from np_random; the emulator itself is deterministic
        self._nes.reset()  # restores the emulator snapshot taken at the level's start
        self._last_action = 0
        self._steps = 0
        return self._obs(), self._info()

    def step(self, action):
        nes = self._nes
        if nes.done:
            raise RuntimeError(f"{self.game_id}: step() after the episode ended; call reset()")
        reward, done = 0.0, False
        sticky = self.np_random.random(self.action_repeat) < self.sticky_action_prob
        for i in range(self.action_repeat):
            if not sticky[i]:
                self._last_action = int(action)
            _, r, done, _ = nes.step(self._bitmaps[self._last_action])
            reward += r
            if done:
                break
        self._steps += 1
        truncated = (not done and self.max_episode_steps is not None
                     and self._steps >= self.max_episode_steps)
        reward = float(np.clip(reward, *REWARD_RANGE))
        return self._obs(), reward, bool(done), bool(truncated), self._info()

    def render(self):
        if self.render_mode == "rgb_array":
            return self._nes.screen.copy()
        return None

    def close(self):
        if self._nes is not None:  # closing twice is allowed (gymnasium's contract)
            self._nes.close()
            self._nes = None
