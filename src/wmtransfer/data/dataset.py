"""Datasets on disk: one game's episodes with checksum validation, and the union of an environment set.

A game's dataset is the folder ``results/datasets/{game}/`` holding ``manifest.csv`` and
``episodes/*.npz`` (format in :mod:`wmtransfer.data.episodes`). Every episode is checked against the
manifest's sha256 when it is read; a missing, truncated or corrupt file raises
:class:`~wmtransfer.data.episodes.EpisodeError` naming it - nothing is skipped silently.

The dataset of an environment set is the union of its games' datasets, balanced by steps per game
(each game contributes the same number of transitions, by default the smallest game's count; the last
episode taken from a game is cut there, as a truncation), loaded into a
:class:`~wmtransfer.data.replay.Replay` with ``balance_games=True`` so that a game is drawn uniformly
for every sequence and one batch mixes games (seed 001 §2.4).
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from .episodes import STEP_KEYS, EpisodeError, read_manifest, validate_episode


def read_episode_checked(path: str | Path, sha256: str | None) -> dict[str, np.ndarray]:
    """Read one episode file, verifying its sha256 (when given) and its format."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise EpisodeError(f"{path}: episode file cannot be read ({e})") from e
    if sha256 is not None:
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise EpisodeError(f"{path}: checksum mismatch (manifest {sha256[:12]}..., file "
                               f"{actual[:12]}...); the file is truncated or corrupt - recollect the dataset")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            ep = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise EpisodeError(f"{path}: unreadable episode file ({type(e).__name__}: {e})") from e
    validate_episode(ep, str(path))
    return ep


class GameDataset:
    """The episodes of one game listed by ``root/manifest.csv``."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.rows = read_manifest(self.root / "manifest.csv")
        if not self.rows:
            raise EpisodeError(f"{self.root / 'manifest.csv'}: manifest lists no episodes")
        found = sorted({r["game"] for r in self.rows})
        if len(found) != 1:
            raise EpisodeError(f"{self.root / 'manifest.csv'}: episodes of several games {found}")
        self.game = found[0]

    @property
    def num_episodes(self) -> int:
        return len(self.rows)

    @property
    def num_steps(self) -> int:
        """Transitions (env steps) in the dataset."""
        return sum(int(r["length"]) for r in self.rows)

    def episodes(self, verify: bool = True) -> Iterator[dict[str, np.ndarray]]:
        """Episodes in manifest order, each checked against its checksum and length."""
        for r in self.rows:
            path = self.root / r["file"]
            ep = read_episode_checked(path, r["sha256"] if verify else None)
            if len(ep["obs"]) - 1 != int(r["length"]):
                raise EpisodeError(f"{path}: {len(ep['obs']) - 1} transitions, manifest says {r['length']}")
            yield ep

    def validate(self) -> None:
        """Read every episode once; raises on the first defective file."""
        for _ in self.episodes():
            pass


def cut_episode(ep: dict[str, np.ndarray], transitions: int) -> dict[str, np.ndarray]:
    """The first ``transitions`` transitions of an episode, ending in a truncation (not terminal)."""
    if transitions >= len(ep["obs"]) - 1:
        return ep
    n = transitions + 1
    out = dict(ep)
    for key in STEP_KEYS:
        out[key] = ep[key][:n].copy()
    out["is_last"][-1] = True
    out["is_terminal"][-1] = False
    return out


def union_replay(roots: Sequence[str | Path], steps_per_game: int | None = None, seed: int = 0,
                 verify: bool = True, past_end: str = "next"):
    """The union dataset of several games as a game-balanced :class:`~wmtransfer.data.replay.Replay`.

    ``steps_per_game`` transitions are taken from every game (default: the smallest game's total), in
    manifest order. Raises if a game has fewer, or if two folders hold the same game. ``past_end``: see
    :class:`~wmtransfer.data.replay.Replay`.
    Returns ``(replay, steps)`` where ``steps`` maps game id -> transitions loaded.
    """
    from .. import games
    from .replay import Replay

    datasets = [GameDataset(r) for r in roots]
    ids = [d.game for d in datasets]
    if len(set(ids)) != len(ids):
        raise ValueError(f"the same game appears twice in {list(map(str, roots))}: {ids}")
    budget = steps_per_game if steps_per_game is not None else min(d.num_steps for d in datasets)
    short = {d.game: d.num_steps for d in datasets if d.num_steps < budget}
    if short:
        raise ValueError(f"steps_per_game={budget} but these datasets are smaller: {short}")
    replay = Replay(capacity_steps=None, seed=seed, balance_games=True, past_end=past_end)
    loaded = {}
    for d in datasets:
        n_actions = games.spec(d.game).n_actions
        taken = 0
        for ep in d.episodes(verify):
            ep = cut_episode(ep, budget - taken)
            replay.add_episode(ep, n_actions=n_actions)
            taken += len(ep["obs"]) - 1
            if taken >= budget:
                break
        loaded[d.game] = taken
    return replay, loaded


def iterate_batches(replay, batch: int, length: int, count: int | None = None) -> Iterator[dict]:
    """``count`` (or endless) batches of ``(batch, length)`` sequences sampled from ``replay``."""
    i = 0
    while count is None or i < count:
        yield replay.sample(batch, length)
        i += 1
