"""The workflow's own datasets (``results/datasets/{game}``, random and policy episodes) as V-M-C reads them.

V trains on single frames, M on windows of episodes encoded by V. :class:`Frames` holds the episodes of
one game back to back (``uint8``, at most ``max_frames`` frames, whole episodes in manifest order) with
their actions, rewards and ends; episodes are split into training and held-out ones.

Alignment (``docs/data.md``): step ``t`` of a stored episode holds ``obs[t]``, the ``action[t]`` that led
to it and the ``reward[t]`` it brought (``action[0]`` is a placeholder). M therefore reads
``[z_t, action[t+1]]`` and predicts ``z_{t+1}``, ``reward[t+1]`` and ``is_terminal[t+1]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import games
from ..data.dataset import GameDataset


def obs_scale(game_id: str) -> float:
    """Frames are divided by this to lie in [0, 1]: MinAtar grids are 0/1 already, images 0-255."""
    return 1.0 if games.suite_of(game_id) == "minatar" else 255.0


def to_input(obs: np.ndarray | torch.Tensor, scale: float) -> torch.Tensor:
    """``uint8`` frames ``(.., C, H, W)`` as float32 in [0, 1]."""
    x = torch.as_tensor(obs)
    return x.float() / scale


@dataclass
class Frames:
    """Episodes of one game back to back: ``obs[starts[i]:starts[i] + lengths[i]]`` is episode ``i``."""

    game: str
    obs: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    terminal: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    holdout: np.ndarray  # bool per episode

    @property
    def num_frames(self) -> int:
        return int(len(self.obs))

    def frame_index(self, held_out: bool) -> np.ndarray:
        """Indices of every frame of the training (or held-out) episodes."""
        eps = np.flatnonzero(self.holdout == held_out)
        if len(eps) == 0:
            return np.empty(0, dtype=np.int64)
        return np.concatenate([np.arange(self.starts[e], self.starts[e] + self.lengths[e]) for e in eps])


def load_frames(root: str | Path, max_frames: int = 0, holdout_frac: float = 0.05) -> Frames:
    """Read a game's dataset (checksums verified) into :class:`Frames`; the last ``holdout_frac`` of its
    episodes (at least one when there are two or more) are held out."""
    ds = GameDataset(root)
    parts: dict[str, list[np.ndarray]] = {"obs": [], "action": [], "reward": [], "terminal": []}
    lengths: list[int] = []
    total = 0
    for ep in ds.episodes():
        n = len(ep["obs"])
        if max_frames and total + n > max_frames:
            if not lengths:  # the first episode alone is too long: take its first frames
                n = max_frames
            else:
                break
        parts["obs"].append(ep["obs"][:n])
        parts["action"].append(ep["action"][:n].astype(np.int64))
        parts["reward"].append(ep["reward"][:n].astype(np.float32))
        parts["terminal"].append(ep["is_terminal"][:n].astype(np.float32))
        lengths.append(n)
        total += n
        if max_frames and total >= max_frames:
            break
    lengths_arr = np.asarray(lengths, dtype=np.int64)
    starts = np.r_[0, np.cumsum(lengths_arr)[:-1]].astype(np.int64)
    holdout = np.zeros(len(lengths), dtype=bool)
    if len(lengths) >= 2 and holdout_frac > 0:
        holdout[-max(1, int(round(holdout_frac * len(lengths)))):] = True
    return Frames(ds.game, np.concatenate(parts["obs"]), np.concatenate(parts["action"]),
                  np.concatenate(parts["reward"]), np.concatenate(parts["terminal"]), starts, lengths_arr,
                  holdout)


class Windows:
    """Training windows of ``length + 1`` steps inside the training episodes of :class:`Frames`, for M.

    ``sample`` returns indices ``(B, length + 1)`` into the frame arrays and a mask ``(B, length)`` of
    the transitions that lie inside the episode (shorter episodes are padded with their last frame).
    """

    def __init__(self, frames: Frames, length: int, rng: np.random.Generator):
        self.length, self.rng = length, rng
        eps = np.flatnonzero(~frames.holdout)
        eps = eps[frames.lengths[eps] >= 2]
        if len(eps) == 0:
            raise ValueError(f"{frames.game}: no training episode has two frames; M needs transitions")
        self.starts, self.lengths = frames.starts[eps], frames.lengths[eps]
        # every start position of every episode is equally likely (a window may run short at the end)
        self.cum = np.cumsum(self.lengths - 1)

    def sample(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        pick = self.rng.integers(0, self.cum[-1], size=batch)
        ep = np.searchsorted(self.cum, pick, side="right")
        offset = pick - np.r_[0, self.cum[:-1]][ep]
        steps = offset[:, None] + np.arange(self.length + 1)[None]
        last = (self.lengths[ep] - 1)[:, None]
        mask = (steps[:, 1:] <= last).astype(np.float32)
        idx = self.starts[ep][:, None] + np.minimum(steps, last)
        return idx, mask
