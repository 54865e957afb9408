"""Sequence replay for DreamerV2: whole episodes in, ``(batch, length)`` training sequences out.

Episodes use the project's episode format (``obs``, ``action``, ``reward``, ``is_first``, ``is_last``,
``is_terminal``; see ``docs/training.md``). Steps live in one flat ``uint8`` ring of ``capacity_steps``
steps; the oldest whole episodes are dropped when it is full (DreamerV2 keeps a FIFO of episodes).

Sampling (vectorised, no Python loop over the batch):

* ``past_end="next"`` (default): a start ``(episode, t0)`` is drawn uniformly over every stored step,
  and a sequence that reaches its episode's end continues with the next stored episode, whose first
  step has ``is_first`` set (the RSSM state is reset there). This is the official DreamerV2 chunking
  (consecutive episodes cut into fixed-length chunks) without its rule of dropping episodes shorter
  than the sequence length: every step of every episode is used, and all of a sequence is real data.
  Only a sequence that runs past the newest stored episode ends in absorbing states (below).
* ``past_end="absorbing"`` (seed 003 §5.2, used for Mario): a start is drawn uniformly over
  ``t0 <= max(len - length, 0)``; past the episode's end the sequence continues in an **absorbing
  state**: the last observation repeats, reward is 0, ``is_terminal`` is 1 (discount target 0), the
  action is uniform random, ``is_first`` is 0 and ``is_last`` is 1. The thesis expected few such steps
  (Mario policies soon play episodes longer than the sequence); with episodes much shorter than the
  sequence (a random policy in MinAtar Breakout lasts about 11 steps, so 78% of a 50-step sequence is
  padding) they dominate the world model's data, which is why ``next`` is the default.
* With ``balance_games=True`` a game is drawn uniformly first (among games with data), then a start
  uniformly within that game (seed 003 §2.1.3: each game counts the same however long its episodes).

Online collection streams steps with :meth:`Replay.add_step` (one stream per parallel env); an episode
becomes sampleable when its last step arrives (DreamerV2's ``ongoing=False``).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch

#: Per-step fields stored, their dtypes in storage.
FIELDS = {
    "action": np.int64,
    "reward": np.float32,
    "is_first": np.bool_,
    "is_last": np.bool_,
    "is_terminal": np.bool_,
}


#: What a sequence holds after its episode's last step.
PAST_END = ("next", "absorbing")


class Replay:
    """Episode replay with vectorised sequence sampling.

    Args:
        capacity_steps: most steps kept (oldest episodes dropped first); ``None`` keeps everything.
        seed: seed of the sampling generator (its state is part of :meth:`state_dict`).
        balance_games: draw the game uniformly before the start step (multi-game datasets).
        past_end: what follows an episode's last step in a sequence: ``"next"`` (the next stored
            episode) or ``"absorbing"`` (absorbing states); see the module docstring.
    """

    def __init__(self, capacity_steps: int | None = None, seed: int = 0, balance_games: bool = False,
                 past_end: str = "next"):
        if capacity_steps is not None and capacity_steps < 1:
            raise ValueError(f"capacity_steps must be positive or None, got {capacity_steps}")
        if past_end not in PAST_END:
            raise ValueError(f"past_end must be one of {list(PAST_END)}, got {past_end!r}")
        self.capacity_steps = capacity_steps
        self.balance_games = balance_games
        self.past_end = past_end
        self.rng = np.random.default_rng(seed)
        self.games: list[str] = []
        self.n_actions: int | None = None
        self._obs: np.ndarray | None = None
        self._data: dict[str, np.ndarray] = {}
        self._size = 0  # allocated steps
        self._written = 0  # absolute steps written so far (ring position = _written % _size)
        # Episode index: absolute start step, length, game index (parallel arrays, oldest first).
        self._ep_start = np.zeros(0, np.int64)
        self._ep_len = np.zeros(0, np.int64)
        self._ep_game = np.zeros(0, np.int64)
        self._streams: dict[int, dict[str, list]] = {}
        self.total_episodes = 0  # episodes ever added (not reduced by eviction)

    # ------------------------------------------------------------------ size
    @property
    def num_steps(self) -> int:
        """Steps of the stored (sampleable) episodes."""
        return int(self._ep_len.sum())

    @property
    def num_episodes(self) -> int:
        return len(self._ep_len)

    def __len__(self) -> int:
        return self.num_steps

    # ------------------------------------------------------------------ adding
    def game_index(self, game: str) -> int:
        """Index of ``game`` in :attr:`games`, registering it if new."""
        if game not in self.games:
            self.games.append(game)
        return self.games.index(game)

    def add_episode(self, ep: dict[str, Any], n_actions: int | None = None) -> None:
        """Store one episode in the project's episode format (extra keys are ignored).

        ``n_actions`` (or the largest action seen so far + 1) bounds the random actions of absorbing
        states; the training loop passes the game's action count.
        """
        obs = np.asarray(ep["obs"])
        if obs.dtype != np.uint8:
            raise TypeError(f"episode obs must be uint8, got {obs.dtype}")
        length = len(obs)
        if length < 1:
            return
        arrays = {k: np.asarray(ep[k]).astype(dt, copy=False).reshape(length) for k, dt in FIELDS.items()}
        game = ep.get("game", "unknown")
        game = str(np.asarray(game).item()) if not isinstance(game, str) else game
        if n_actions is not None:
            self.n_actions = max(self.n_actions or 0, int(n_actions))
        else:
            self.n_actions = max(self.n_actions or 0, int(arrays["action"].max()) + 1)
        self._allocate(obs.shape[1:], length)
        self._evict_for(length)
        pos = (self._written + np.arange(length)) % self._size
        self._obs[pos] = obs
        for k, v in arrays.items():
            self._data[k][pos] = v
        self._ep_start = np.append(self._ep_start, self._written)
        self._ep_len = np.append(self._ep_len, length)
        self._ep_game = np.append(self._ep_game, self.game_index(game))
        self._written += length
        self.total_episodes += 1

    def add_step(self, obs: np.ndarray, action: int, reward: float, is_first: bool, is_last: bool,
                 is_terminal: bool, game: str, stream: int = 0, n_actions: int | None = None) -> None:
        """Stream one step of a running episode (fields as in the episode format: ``action`` and
        ``reward`` are those that led *into* ``obs``). The episode is stored when ``is_last`` arrives;
        ``stream`` separates parallel environments."""
        if is_first:
            self._streams[stream] = {k: [] for k in ("obs", *FIELDS)}
        buf = self._streams.get(stream)
        if buf is None:
            raise ValueError(f"stream {stream}: the first step of an episode must have is_first=True")
        buf["obs"].append(np.asarray(obs, dtype=np.uint8))
        buf["action"].append(int(action))
        buf["reward"].append(float(reward))
        buf["is_first"].append(bool(is_first))
        buf["is_last"].append(bool(is_last))
        buf["is_terminal"].append(bool(is_terminal))
        buf["game"] = game
        if is_last:
            self.add_episode(self._stack(buf), n_actions=n_actions)
            del self._streams[stream]

    def end_streams(self, n_actions: int | None = None) -> int:
        """Close every running episode as truncated (``is_last`` without ``is_terminal``) and store it;
        used when a resumed run restarts its games. Returns the number of episodes closed."""
        closed = 0
        for stream in list(self._streams):
            buf = self._streams.pop(stream)
            if buf["obs"]:
                buf["is_last"][-1] = True
                self.add_episode(self._stack(buf), n_actions=n_actions)
                closed += 1
        return closed

    @staticmethod
    def _stack(buf: dict[str, Any]) -> dict[str, Any]:
        ep = {k: np.asarray(buf[k], dtype=dt) for k, dt in FIELDS.items()}
        ep["obs"] = np.stack(buf["obs"]).astype(np.uint8)
        ep["game"] = buf["game"]
        return ep

    def _allocate(self, obs_shape: tuple[int, ...], length: int) -> None:
        if self._obs is not None and self._obs.shape[1:] != tuple(obs_shape):
            raise ValueError(f"observation shape {tuple(obs_shape)} differs from the replay's "
                             f"{self._obs.shape[1:]}")
        if self.capacity_steps is not None:
            if length > self.capacity_steps:
                raise ValueError(f"episode of {length} steps exceeds capacity_steps={self.capacity_steps}")
            if self._obs is None:
                self._resize(obs_shape, self.capacity_steps)
            return
        need = self._written + length  # unbounded: never wraps
        if self._obs is None or need > self._size:
            self._resize(obs_shape, max(1024, 2 * need))

    def _resize(self, obs_shape: tuple[int, ...], size: int) -> None:
        old_obs, old_data, used = self._obs, self._data, self._written
        self._obs = np.zeros((size, *obs_shape), np.uint8)
        self._data = {k: np.zeros(size, dt) for k, dt in FIELDS.items()}
        if old_obs is not None:  # only the unbounded buffer grows, and it never wrapped
            self._obs[:used] = old_obs[:used]
            for k in FIELDS:
                self._data[k][:used] = old_data[k][:used]
        self._size = size

    def _evict_for(self, length: int) -> None:
        if self.capacity_steps is None:
            return
        end = self._written + length
        drop = 0
        while drop < len(self._ep_start) and self._ep_start[drop] < end - self._size:
            drop += 1
        if drop:
            self._ep_start, self._ep_len, self._ep_game = (
                a[drop:] for a in (self._ep_start, self._ep_len, self._ep_game))

    # ------------------------------------------------------------------ sampling
    def _draw_starts(self, batch: int, length: int) -> tuple[np.ndarray, np.ndarray]:
        """Episode index and start offset of ``batch`` sequences, uniform over valid starts."""
        if self.past_end == "next":
            n_starts = self._ep_len
        else:
            n_starts = np.maximum(self._ep_len - length, 0) + 1
        if not self.balance_games:
            cum = np.cumsum(n_starts)
            r = self.rng.integers(cum[-1], size=batch)
            ep = np.searchsorted(cum, r, side="right")
            return ep, r - (cum[ep] - n_starts[ep])
        present = np.unique(self._ep_game)
        games = present[self.rng.integers(len(present), size=batch)]
        ep = np.empty(batch, np.int64)
        off = np.empty(batch, np.int64)
        for g in np.unique(games):  # loop over games (few), not over the batch
            rows = np.flatnonzero(games == g)
            eps = np.flatnonzero(self._ep_game == g)
            cum = np.cumsum(n_starts[eps])
            r = self.rng.integers(cum[-1], size=len(rows))
            k = np.searchsorted(cum, r, side="right")
            ep[rows] = eps[k]
            off[rows] = r - (cum[k] - n_starts[eps[k]])
        return ep, off

    def sample(self, batch: int, length: int) -> dict[str, np.ndarray]:
        """``batch`` sequences of ``length`` steps: ``obs`` uint8 (B, T, C, H, W), ``action`` int64,
        ``reward`` float32, ``is_first``/``is_terminal``/``is_last`` bool, ``game`` int64 index into
        :attr:`games`, all (B, T, ...). What follows an episode's end: :attr:`past_end` (module docstring)."""
        if self.num_episodes == 0:
            raise ValueError("cannot sample from an empty replay")
        ep, off = self._draw_starts(batch, length)
        step = self._ep_start[ep][:, None] + off[:, None] + np.arange(length)[None, :]  # (B, T) absolute
        if self.past_end == "next":
            end = np.full((batch, 1), self._written)  # episodes are stored back to back
        else:
            end = (self._ep_start[ep] + self._ep_len[ep])[:, None]
        past = step >= end  # absorbing steps
        step = np.minimum(step, end - 1)
        pos = step % self._size
        out = {"obs": self._obs[pos]}
        for k in FIELDS:
            out[k] = self._data[k][pos]
        if past.any():
            n = int(past.sum())
            out["action"][past] = self.rng.integers(self.n_actions or 1, size=n)
            out["reward"][past] = 0.0
            out["is_first"][past] = False
            out["is_terminal"][past] = True
            out["is_last"][past] = True
        # the episode holding each (clipped) step: its own in both modes, the next ones under "next"
        out["game"] = self._ep_game[np.searchsorted(self._ep_start, step, side="right") - 1]
        return out

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue sampling identically, as tensors and plain data
        (loads with ``torch.load(weights_only=True)``). Only the occupied part of the ring is stored."""
        lo = int(self._ep_start[0]) if self.num_episodes else self._written
        live = (lo + np.arange(self._written - lo)) % max(self._size, 1)
        state: dict[str, Any] = {
            "capacity_steps": self.capacity_steps,
            "balance_games": self.balance_games,
            "past_end": self.past_end,
            "rng": json.dumps(self.rng.bit_generator.state),
            "games": list(self.games),
            "n_actions": self.n_actions,
            "offset": lo,
            "written": self._written,
            "obs_shape": list(self._obs.shape[1:]) if self._obs is not None else None,
            "obs": torch.from_numpy(self._obs[live]) if self._obs is not None else None,
            "data": {k: torch.from_numpy(self._data[k][live]) for k in FIELDS} if self._data else None,
            "ep_start": torch.from_numpy(self._ep_start - lo),
            "ep_len": torch.from_numpy(self._ep_len),
            "ep_game": torch.from_numpy(self._ep_game),
            "total_episodes": self.total_episodes,
            "streams": {
                str(s): {
                    "obs": torch.from_numpy(np.stack(b["obs"])) if b["obs"] else None,
                    **{k: list(b[k]) for k in FIELDS},
                    "game": b.get("game", ""),
                }
                for s, b in self._streams.items()
            },
        }
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict` (the replay's episodes, running streams and RNG)."""
        self.__init__(state["capacity_steps"], 0, state["balance_games"], state.get("past_end", "absorbing"))
        self.rng.bit_generator.state = json.loads(state["rng"])
        self.games = list(state["games"])
        self.n_actions = state["n_actions"]
        self.total_episodes = int(state["total_episodes"])
        if state["obs"] is not None:
            obs = state["obs"].numpy()
            n = len(obs)
            self._allocate(tuple(state["obs_shape"]), max(n, 1))
            self._obs[:n] = obs
            for k in FIELDS:
                self._data[k][:n] = state["data"][k].numpy()
            self._written = n
            self._ep_start = state["ep_start"].numpy().astype(np.int64).copy()
            self._ep_len = state["ep_len"].numpy().astype(np.int64).copy()
            self._ep_game = state["ep_game"].numpy().astype(np.int64).copy()
        for s, b in state["streams"].items():
            buf = {k: list(b[k]) for k in FIELDS}
            buf["obs"] = list(b["obs"].numpy()) if b["obs"] is not None else []
            buf["game"] = b["game"]
            self._streams[int(s)] = buf
