"""Shared pieces of the game layer: the game spec and the unknown-id error."""

from __future__ import annotations

from dataclasses import dataclass


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
