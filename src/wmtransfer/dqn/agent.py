"""The DQN agent: online and target Q-networks, the optimiser, epsilon-greedy acting, one update."""

from __future__ import annotations

import numpy as np
import torch

from .config import DQNConfig
from .losses import dqn_loss
from .networks import build_q_network


def resolve_network(cfg: DQNConfig, suite: str) -> str:
    """The network kind for a suite when ``cfg.network`` is ``auto``."""
    if cfg.network != "auto":
        return cfg.network
    return "mlp" if suite == "minatar" else "nature"


def resolve_frame_stack(cfg: DQNConfig, suite: str) -> int:
    """Frames stacked for a suite when ``cfg.frame_stack`` is 0 (auto)."""
    if cfg.frame_stack:
        return cfg.frame_stack
    return 1 if suite == "minatar" else 4


class DQNAgent:
    """Deep Q-learning (Mnih et al. 2015) with a target network and Huber loss.

    ``obs_shape`` is the shape the network reads (frames already stacked along channels).
    """

    def __init__(self, cfg: DQNConfig, obs_shape: tuple[int, ...], n_actions: int, network: str,
                 input_scale: float, device: str | torch.device = "cpu"):
        self.cfg = cfg
        self.device = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                                   "cpu" if device == "auto" else device)
        self.n_actions = n_actions
        self.arch = {"network": network, "obs_shape": [int(s) for s in obs_shape], "n_actions": n_actions,
                     "mlp_hidden": [int(h) for h in cfg.mlp_hidden], "input_scale": float(input_scale)}
        self.q = build_q_network(network, obs_shape, n_actions, tuple(cfg.mlp_hidden), input_scale)
        self.q_target = build_q_network(network, obs_shape, n_actions, tuple(cfg.mlp_hidden), input_scale)
        self.q.to(self.device)
        self.q_target.to(self.device)
        self.sync_target()
        for p in self.q_target.parameters():
            p.requires_grad_(False)
        if cfg.optimizer == "rmsprop":
            self.opt = torch.optim.RMSprop(self.q.parameters(), lr=cfg.lr, alpha=cfg.rmsprop_alpha,
                                           eps=cfg.optim_eps, centered=True)
        else:
            self.opt = torch.optim.Adam(self.q.parameters(), lr=cfg.lr, eps=cfg.optim_eps,
                                        fused=self.device.type in ("cpu", "cuda"))
        self.updates = 0

    def sync_target(self) -> None:
        self.q_target.load_state_dict(self.q.state_dict())

    @torch.no_grad()
    def act(self, obs: np.ndarray, epsilon: float, rng: np.random.Generator) -> int:
        """Epsilon-greedy action for one observation."""
        if rng.random() < epsilon:
            return int(rng.integers(self.n_actions))
        return int(self.q(torch.from_numpy(obs).unsqueeze(0).to(self.device)).argmax(1).item())

    def update(self, batch: dict[str, torch.Tensor]) -> float:
        """One gradient step on the Huber TD loss; returns the loss."""
        if self.device.type != "cpu":
            batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        q = self.q(batch["obs"])
        with torch.no_grad():
            next_q = self.q_target(batch["next_obs"])
        loss = dqn_loss(q, batch["action"], batch["reward"], batch["terminal"], next_q, self.cfg.gamma,
                        self.cfg.huber_delta)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"DQN loss is not finite ({loss.item()}) at update {self.updates}")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.updates += 1
        return float(loss.item())

    def state_dict(self) -> dict:
        return {"q": self.q.state_dict(), "q_target": self.q_target.state_dict(),
                "opt": self.opt.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.q.load_state_dict(state["q"])
        self.q_target.load_state_dict(state["q_target"])
        self.opt.load_state_dict(state["opt"])
        self.updates = int(state["updates"])
