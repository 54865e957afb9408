"""Several games behind one interface (seed 003 §2.1.3): one game drawn uniformly per episode."""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np

from .base import Game


class MultiGame(Game):
    """Draws one of ``games`` uniformly at each ``reset`` and forwards steps to it.

    All games must share one observation space and one action space (e.g. one suite); the message of a
    mismatch names both games. Every ``info`` carries ``info["game"]``, the id of the game being played.
    """

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, games: Sequence[gym.Env], seed: int | None = None):
        if not games:
            raise ValueError("MultiGame needs at least one game")
        first = games[0]
        for g in games[1:]:
            if g.observation_space != first.observation_space:
                raise ValueError(
                    f"games {first.game_id} and {g.game_id} have different observation spaces: "
                    f"{first.observation_space} vs {g.observation_space}"
                )
            if g.action_space != first.action_space:
                raise ValueError(
                    f"games {first.game_id} and {g.game_id} have different action spaces: "
                    f"{first.action_space} vs {g.action_space}"
                )
        self.games = list(games)
        self.game_ids = [g.game_id for g in self.games]
        self.observation_space = first.observation_space
        self.action_space = first.action_space
        self.render_mode = first.render_mode
        self.current: gym.Env = first
        self._init_seed(seed)

    @property
    def game_id(self) -> str:
        return self.current.game_id

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if self._reset_seed(seed):
            # Each game gets its own child seed so a multi-game run is reproducible from one seed.
            child = np.random.SeedSequence(int(self.np_random.integers(2**31))).spawn(len(self.games))
            for g, s in zip(self.games, child, strict=True):
                g.reset(seed=int(s.generate_state(1)[0]))
        self.current = self.games[int(self.np_random.integers(len(self.games)))]
        obs, info = self.current.reset(options=options)
        info["game"] = self.current.game_id
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.current.step(action)
        info["game"] = self.current.game_id
        return obs, reward, terminated, truncated, info

    def render(self):
        return self.current.render()

    def close(self):
        for g in self.games:
            g.close()
