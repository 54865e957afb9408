"""DQN loss as a pure function of tensors (Mnih et al. 2015, eq. 3, with the Huber loss)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def td_target(reward: torch.Tensor, terminal: torch.Tensor, next_q_target: torch.Tensor,
              gamma: float) -> torch.Tensor:
    """y = r + gamma * (1 - terminal) * max_a' Q_target(s', a')."""
    return reward + gamma * (1.0 - terminal) * next_q_target.max(dim=1).values


def dqn_loss(q: torch.Tensor, action: torch.Tensor, reward: torch.Tensor, terminal: torch.Tensor,
             next_q_target: torch.Tensor, gamma: float, huber_delta: float = 1.0) -> torch.Tensor:
    """Mean Huber loss between Q(s, a) and the (gradient-free) TD target y.

    ``q`` and ``next_q_target`` are (B, A) Q-values of s and s'; ``action`` (B,) int64; ``reward`` and
    ``terminal`` (B,) float.
    """
    q_sa = q.gather(1, action.long().unsqueeze(1)).squeeze(1)
    with torch.no_grad():
        y = td_target(reward, terminal, next_q_target, gamma)
    return F.huber_loss(q_sa, y, delta=huber_delta)


def linear_epsilon(step: int, start: float, end: float, decay_steps: int) -> float:
    """Linearly annealed exploration rate: start at step 0, end from ``decay_steps`` on."""
    frac = min(max(step, 0) / max(decay_steps, 1), 1.0)
    return start + frac * (end - start)
