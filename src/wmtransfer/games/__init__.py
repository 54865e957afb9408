"""The game layer: every game the workflow trains on, behind one gymnasium interface.

Game ids are path-safe ``<suite>-<name>``: ``minatar-breakout``, ``atari-space_invaders``,
``mario-3-2``, ``procgen-leaper``. Observations are channels-first ``uint8`` arrays; all games of a suite
share one
observation space and one action space.

>>> env = make("minatar-breakout", seed=0)
>>> obs, info = env.reset()
>>> obs.shape, obs.dtype, info["game"]
((10, 10, 10), dtype('uint8'), 'minatar-breakout')
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym

from . import minatar, procgen
from .base import GameSpec, UnknownGameError
from .multi import MultiGame

__all__ = [
    "GameSpec", "UnknownGameError", "MultiGame", "make", "make_multi", "make_vector", "names", "spec",
    "suite_of", "register_gymnasium",
]

SUITES = ("minatar", "atari", "mario", "procgen")


def _atari_names() -> list[str]:
    from . import atari

    return atari.game_names()


def _mario_names() -> list[str]:
    from . import mario

    return mario.level_names()


def names(suite: str | None = None) -> list[str]:
    """All valid game ids, or those of one suite (``minatar``, ``atari``, ``mario``, ``procgen``)."""
    out: list[str] = []
    if suite in (None, "minatar"):
        out += [f"minatar-{g}" for g in minatar.GAMES]
    if suite in (None, "atari"):
        out += [f"atari-{g}" for g in _atari_names()]
    if suite in (None, "mario"):
        out += [f"mario-{g}" for g in _mario_names()]
    if suite in (None, "procgen"):
        out += [f"procgen-{g}" for g in procgen.GAMES]
    if suite is not None and suite not in SUITES:
        raise UnknownGameError(f"unknown suite {suite!r}; valid suites: {', '.join(SUITES)}")
    return out


def _split(game_id: str) -> tuple[str, str]:
    suite, sep, name = str(game_id).partition("-")
    if not sep or suite not in SUITES:
        raise UnknownGameError(
            f"unknown game {game_id!r}: ids look like minatar-<game>, atari-<ale_name> or "
            "mario-<world>-<stage> or procgen-<game>. "
            f"MinAtar: {', '.join('minatar-' + g for g in minatar.GAMES)}; "
            "Atari: atari-<snake_case ALE ROM name> (e.g. atari-breakout, atari-space_invaders); "
            "Mario: mario-1-1 ... mario-8-4; "
            f"procgen: {', '.join('procgen-' + g for g in procgen.GAMES)}"
        )
    valid = {"minatar": minatar.GAMES, "atari": None, "mario": None, "procgen": procgen.GAMES}[suite]
    if valid is None:
        valid = _atari_names() if suite == "atari" else _mario_names()
    if name not in valid:
        raise UnknownGameError(
            f"unknown {suite} game {game_id!r}; valid ids: {', '.join(f'{suite}-{g}' for g in valid)}"
        )
    return suite, name


def suite_of(game_id: str) -> str:
    """The suite of a valid game id; raises :class:`UnknownGameError` otherwise."""
    return _split(game_id)[0]


def spec(game_id: str, settings: dict | None = None) -> GameSpec:
    """Observation shape and action count of a game, without starting an emulator. ``settings`` are the
    game keyword arguments a run passes to :func:`make`; only MinAtar's ``action_set`` changes the spec."""
    suite, name = _split(game_id)
    action_set = (settings or {}).get("action_set")
    if action_set is not None and suite != "minatar":
        raise ValueError(f"action_set is a MinAtar setting; {game_id} has one action set")
    if suite == "minatar":
        return minatar.spec(name, action_set or "full")
    if suite == "atari":
        from . import atari

        return atari.spec(name)
    if suite == "procgen":
        return procgen.spec(name)
    from . import mario

    return mario.spec(name)


def make(game_id: str, seed: int | None = None, **kwargs) -> gym.Env:
    """Create one game. ``seed`` seeds the first ``reset()``; ``kwargs`` override the suite defaults
    (e.g. ``sticky_action_prob``, ``action_repeat``)."""
    suite, name = _split(game_id)
    if suite == "minatar":
        return minatar.MinAtarGame(name, seed=seed, **kwargs)
    if suite == "atari":
        from . import atari

        return atari.AtariGame(name, seed=seed, **kwargs)
    if suite == "procgen":
        return procgen.ProcgenGame(name, seed=seed, **kwargs)
    from . import mario

    return mario.MarioGame(name, seed=seed, **kwargs)


def check_shared_actions(game_ids: Sequence[str], settings: dict | None = None) -> None:
    """Raise unless one action index means one move in every game of ``game_ids`` under ``settings``: a
    MinAtar minimal action set is each game's own, even where two sets have the same size."""
    action_set = (settings or {}).get("action_set", "full")
    if action_set != "full" and len(set(game_ids)) > 1:
        raise ValueError(f"action_set {action_set!r} gives each game its own actions (index 1 is not the "
                         f"same move in every game); {'+'.join(game_ids)} needs the full set")


def make_multi(game_ids: Sequence[str], seed: int | None = None, **kwargs) -> MultiGame:
    """Several games behind one interface; one is drawn uniformly at the start of each episode."""
    check_shared_actions(game_ids, kwargs)
    return MultiGame([make(g, seed=None, **kwargs) for g in game_ids], seed=seed)


def make_vector(game_id: str | Sequence[str], num_envs: int, seed: int = 0, *, asynchronous: bool = False,
                native: bool = True, **kwargs) -> gym.vector.VectorEnv:
    """``num_envs`` copies of a game (or of a multi-game set) as a gymnasium vector env.

    Env ``i`` is seeded with ``seed + i``. For Atari, ``native=True`` uses ale-py's C++
    ``AtariVectorEnv`` (same preprocessing as :class:`~wmtransfer.games.atari.AtariGame`), which is
    several times faster than Python workers; for procgen, ``native=True`` uses procgen's own batched
    env (one seed draws the levels of the whole batch); otherwise a Sync/Async vector env of :func:`make`
    games.
    """
    if isinstance(game_id, str):
        if native and suite_of(game_id) == "atari":
            from . import atari

            return atari.make_native_vector(game_id.partition("-")[2], num_envs, seed, **kwargs)
        if native and suite_of(game_id) == "procgen":
            return procgen.ProcgenVectorGame(game_id.partition("-")[2], num_envs, seed, **kwargs)

        def factory(i: int):
            return lambda: make(game_id, seed=seed + i, **kwargs)
    else:
        ids = list(game_id)

        def factory(i: int):
            return lambda: make_multi(ids, seed=seed + i, **kwargs)

    fns = [factory(i) for i in range(num_envs)]
    if asynchronous:
        return gym.vector.AsyncVectorEnv(fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    return gym.vector.SyncVectorEnv(fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


def register_gymnasium() -> None:
    """Register every game as ``gymnasium.make("wmtransfer/<game_id>-v0")`` (idempotent)."""
    for game_id in names():
        env_id = f"wmtransfer/{game_id}-v0"
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point="wmtransfer.games:make", kwargs={"game_id": game_id},
                         disable_env_checker=True)
