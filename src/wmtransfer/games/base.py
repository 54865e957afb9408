"""Shared pieces of the game layer: the game spec and the unknown-id error."""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym


@dataclass(frozen=True)
class GameSpec:
    """What a model must know about a game without starting it.

    ``obs_shape`` is channels-first ``(C, H, W)``; observations are ``uint8``. ``n_actions`` is the size
    of the suite's shared action set, so one policy reads every game of a suite.
    """

    game_id: str
    suite: str
    obs_shape: tuple[int, int, int]
    n_actions: int


class UnknownGameError(ValueError):
    """A game id that no suite knows; the message lists the valid ids or the suite's pattern."""


def seed_from(rng, high: int = 2**31 - 1) -> int:
    """Draw a child seed from a numpy Generator (used to seed native emulators from ``np_random``)."""
    return int(rng.integers(0, high))


class Game(gym.Env):
    """A gymnasium env whose ``make(..., seed)`` seed applies to the first ``reset()``.

    Subclasses call ``self._init_seed(seed)`` in ``__init__`` and, in ``reset``,
    ``reseed = self._reset_seed(seed)``: it resets gymnasium's ``np_random`` and says whether the
    native emulator's RNG must be (re)seeded from it (a seeded reset, or the very first reset).
    """

    def _init_seed(self, seed: int | None) -> None:
        self._pending_seed = seed
        self._seeded = False

    def _reset_seed(self, seed: int | None) -> bool:
        if seed is None:
            seed, self._pending_seed = self._pending_seed, None
        gym.Env.reset(self, seed=seed)
        reseed = seed is not None or not self._seeded
        self._seeded = True
        return reseed
