"""Behaviour policies for dataset collection: uniform random and greedy DQN checkpoints.

A policy is told about every observation of an episode (``reset(obs)`` at the first, ``observe(obs)``
after each step) so it can keep its own frame history, and ``act(rng)`` returns an action for the
latest one. This lets the collector switch policies in the middle of an episode.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from .checkpoint import load_policy_network
from .frames import FrameStack


class RandomPolicy:
    """Uniformly random actions; named ``random`` in episode files."""

    name = "random"

    def __init__(self, n_actions: int):
        self.n_actions = int(n_actions)

    def reset(self, obs: np.ndarray) -> None:
        pass

    def observe(self, obs: np.ndarray) -> None:
        pass

    def act(self, rng: np.random.Generator) -> int:
        return int(rng.integers(self.n_actions))


class GreedyQPolicy:
    """argmax_a Q(s, a) of a Q-network over the last ``frame_stack`` frames.

    ``preprocess`` maps a game frame to the network's frame (identity for our own checkpoints).
    ``action_map[i]`` is the game action of network output ``i`` (identity when None).
    """

    def __init__(self, name: str, q_net: nn.Module, frame_stack: int, preprocess=None,
                 action_map: list[int] | None = None):
        self.name = name
        self.q_net = q_net
        self.stack = FrameStack(frame_stack)
        self.preprocess = preprocess or (lambda x: x)
        self.action_map = action_map

    def reset(self, obs: np.ndarray) -> None:
        self.stack.reset(self.preprocess(obs))

    def observe(self, obs: np.ndarray) -> None:
        self.stack.step(self.preprocess(obs))

    @torch.no_grad()
    def act(self, rng: np.random.Generator) -> int:
        q = self.q_net(torch.from_numpy(np.ascontiguousarray(self.stack.stacked())).unsqueeze(0))
        a = int(q.argmax(1).item())
        return self.action_map[a] if self.action_map is not None else a


def load_dqn_policy(path: str | Path, game_spec=None) -> GreedyQPolicy:
    """A greedy policy from one of our DQN checkpoints, named ``dqn@<env_step>``."""
    net, meta = load_policy_network(path, game_spec)
    return GreedyQPolicy(f"dqn@{int(meta['env_step'])}", net, int(meta["frame_stack"]))
