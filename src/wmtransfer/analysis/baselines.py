"""Reference curves drawn dashed next to the agents: DQN learning curves and random-policy returns.

A baseline file is a CSV:

* a file whose path has ``random`` in a folder or file name (the ``random-baseline`` CSV,
  ``results/baselines/random/{game}/returns.csv``), or that has no ``env_step`` column: a constant level,
  the mean ``episode_return`` (or ``return``) of its episodes (files of one game pooled);
* otherwise, with ``env_step`` and ``episode_return`` columns (a DQN run's ``metrics.csv``,
  ``results/dqn/{game}/seed{seed}/metrics.csv``): a learning curve, averaged over its seed files.

The game is the file's ``game`` column when it has one, else the nearest folder of its path that is not
``seed<N>``. The label is ``DQN`` for files under a ``dqn`` folder, ``random policy`` for a constant,
``V-M-C`` for the World Models test returns (``results/vmc/{game}/seed{seed}/evaluation.csv``), else
the file's stem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .curves import MetricsError

_SEED_DIR = re.compile(r"^seed\d+$")


@dataclass
class Baseline:
    """One baseline of one game: a constant ``level`` or per-seed ``curves`` ``[(env_step, return)]``."""

    game: str
    label: str
    level: float | None = None
    curves: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    #: Returns of the episodes behind ``level`` (several random-baseline files of one game are pooled).
    episodes: np.ndarray = field(default_factory=lambda: np.empty(0))


def _game_of(path: Path, df: pd.DataFrame) -> str:
    if "game" in df.columns and df["game"].notna().any():
        games = df["game"].dropna().astype(str).unique()
        if len(games) > 1:
            raise MetricsError(f"{path}: baseline file mixes games {sorted(games)}")
        return str(games[0])
    for part in reversed(path.parent.parts):
        if not _SEED_DIR.match(part):
            return part
    raise MetricsError(f"{path}: cannot tell the game of this baseline (no game column, no folder)")


def read_baselines(paths: list[str | Path]) -> list[Baseline]:
    """Baselines of every file, DQN seeds of one game merged into one :class:`Baseline`."""
    merged: dict[tuple[str, str], Baseline] = {}
    for p in paths:
        path = Path(p)
        try:
            df = pd.read_csv(path)
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
            raise MetricsError(f"{path}: cannot read baseline CSV ({e})") from e
        ret_col = next((c for c in ("episode_return", "return") if c in df.columns), None)
        if ret_col is None:
            raise MetricsError(f"{path}: baseline has no episode_return column (columns: {list(df.columns)})")
        game = _game_of(path, df)
        rows = df[df[ret_col].notna()]
        is_random = any("random" in part for part in path.parts)
        if "env_step" in df.columns and not is_random:
            label = "DQN" if "dqn" in path.parts else path.stem
            b = merged.setdefault((game, label), Baseline(game, label))
            rows = rows.sort_values("env_step", kind="stable")
            b.curves.append((rows["env_step"].to_numpy(float), rows[ret_col].to_numpy(float)))
        else:
            label = "random policy" if is_random else "V-M-C" if "vmc" in path.parts else path.stem
            b = merged.setdefault((game, label), Baseline(game, label))
            b.episodes = np.concatenate([b.episodes, rows[ret_col].to_numpy(float)])
            b.level = float(b.episodes.mean()) if b.episodes.size else None
    return list(merged.values())
