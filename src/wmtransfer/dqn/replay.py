"""Uniform transition replay for DQN (Mnih et al. 2015), uint8 observations in a ring buffer."""

from __future__ import annotations

import numpy as np
import torch


class TransitionReplay:
    """Ring buffer of ``(s, a, r, terminal, s')``; ``terminal`` is 1 only for a game termination, so a
    time-limit truncation still bootstraps. ``state_dict`` holds tensors only (weights_only loading)."""

    def __init__(self, capacity: int, obs_shape: tuple[int, ...]):
        self.capacity = int(capacity)
        self.obs = torch.zeros((self.capacity, *obs_shape), dtype=torch.uint8)
        self.next_obs = torch.zeros((self.capacity, *obs_shape), dtype=torch.uint8)
        self.action = torch.zeros(self.capacity, dtype=torch.int64)
        self.reward = torch.zeros(self.capacity, dtype=torch.float32)
        self.terminal = torch.zeros(self.capacity, dtype=torch.float32)
        self.pos = 0
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs: np.ndarray, action: int, reward: float, terminal: bool, next_obs: np.ndarray) -> None:
        i = self.pos
        self.obs[i] = torch.from_numpy(obs)
        self.next_obs[i] = torch.from_numpy(next_obs)
        self.action[i] = int(action)
        self.reward[i] = float(reward)
        self.terminal[i] = float(terminal)
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        idx = torch.from_numpy(rng.integers(0, self.size, size=batch_size))
        return {"obs": self.obs[idx], "action": self.action[idx], "reward": self.reward[idx],
                "terminal": self.terminal[idx], "next_obs": self.next_obs[idx]}

    def state_dict(self) -> dict:
        n = self.size
        return {"obs": self.obs[:n].clone(), "next_obs": self.next_obs[:n].clone(),
                "action": self.action[:n].clone(), "reward": self.reward[:n].clone(),
                "terminal": self.terminal[:n].clone(), "pos": self.pos, "size": n}

    def load_state_dict(self, state: dict) -> None:
        n = int(state["size"])
        if n > self.capacity or tuple(state["obs"].shape[1:]) != tuple(self.obs.shape[1:]):
            raise ValueError(f"replay state of {n} x {tuple(state['obs'].shape[1:])} does not fit a buffer "
                             f"of {self.capacity} x {tuple(self.obs.shape[1:])}")
        for key in ("obs", "next_obs", "action", "reward", "terminal"):
            getattr(self, key)[:n] = state[key]
        self.pos, self.size = int(state["pos"]), n
