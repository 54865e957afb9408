"""Returns of a uniformly random policy: the floor of every learning-curve figure."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from .. import games
from ..io import atomic_write


def random_returns(game_id: str, seed: int, episodes: int, max_steps: int | None = None,
                   settings: dict | None = None) -> pd.DataFrame:
    """Play ``episodes`` episodes with uniform random actions (seeded) over the game's action space under
    its ``settings`` (keyword arguments of :func:`wmtransfer.games.make`); stop early at ``max_steps``.

    Returns one row per finished episode: ``episode, episode_return, episode_length, env_step,
    wall_time`` (env_step counts all steps so far, as in the training curves).
    """
    env = games.make(game_id, seed=seed, **(settings or {}))
    rng = np.random.default_rng(seed)
    n_actions = env.action_space.n
    rows, env_step, start = [], 0, time.perf_counter()
    for episode in range(episodes):
        env.reset()
        ret, length, done = 0.0, 0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(int(rng.integers(n_actions)))
            ret += reward
            length += 1
            env_step += 1
            done = terminated or truncated
            if max_steps is not None and env_step >= max_steps:
                break
        if not done:
            break  # an unfinished episode's return is not a return
        rows.append((episode, ret, length, env_step, time.perf_counter() - start))
    env.close()
    if not rows:
        raise RuntimeError(
            f"random policy on {game_id} finished no episode within max_steps={max_steps}; raise it"
        )
    columns = ["episode", "episode_return", "episode_length", "env_step", "wall_time"]
    return pd.DataFrame(rows, columns=columns)


def run_random_baseline(game_id: str, seed: int, episodes: int, out: str | Path,
                        max_steps: int | None = None, settings: dict | None = None) -> pd.DataFrame:
    df = random_returns(game_id, seed, episodes, max_steps, settings)
    df.insert(0, "game", game_id)
    atomic_write(out, lambda p: df.to_csv(p, index=False))
    print(f"{game_id}: random policy return {df.episode_return.mean():.2f} "
          f"+- {df.episode_return.std(ddof=0):.2f} over {len(df)} episodes")
    return df
