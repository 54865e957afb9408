"""The ``dqn`` section of the study config: every DQN hyperparameter with its documented default.

Defaults follow Young & Tian (2019), "MinAtar", appendix (DQN): replay 100k transitions, batch 32,
target network every 1000 updates, learning starts after 5000 steps, epsilon 1.0 -> 0.1 linearly over
the first 100k steps, discount 0.99, Huber loss, RMSProp (lr 2.5e-4, smoothing 0.95, centred, eps
0.01), 5M frames. MinAtar uses the three-layer MLP of seed 001 §2.5 unless ``network`` says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class DQNConfig:
    """One DQN run on one game (``results/dqn/{game}/seed{seed}/``)."""

    #: Environment steps (agent decisions) to train for.
    total_steps: int = 5_000_000
    #: Env steps at which a policy checkpoint is kept (weak to strong play); each <= total_steps.
    checkpoint_steps: list[int] = field(default_factory=lambda: [250_000, 1_000_000, 2_500_000, 5_000_000])
    #: Q-network: ``auto`` (``mlp`` on MinAtar, ``nature`` on Atari/Mario), ``mlp`` (seed 001),
    #: ``minatar_conv`` (MinAtar paper: 16 3x3 filters + 128 dense), ``nature`` (Mnih et al. 2015).
    network: Literal["auto", "mlp", "minatar_conv", "nature"] = "auto"
    #: Hidden widths of the MLP (two hidden layers + the output layer = three layers).
    mlp_hidden: list[int] = field(default_factory=lambda: [256, 256])
    #: Frames stacked along channels; 0 means 1 on MinAtar and 4 on Atari/Mario.
    frame_stack: int = 0
    #: Replay buffer capacity in transitions.
    replay_capacity: int = 100_000
    #: Minibatch size of each update.
    batch_size: int = 32
    #: Discount gamma of the TD target r + gamma * max_a' Q_target(s', a').
    gamma: float = 0.99
    #: Env steps between copies of the online network into the target network.
    target_update_every: int = 1000
    #: Env steps of pure exploration (epsilon = eps_start) before the first update.
    learning_starts: int = 5000
    #: Env steps between updates (1: one update per step, as in the MinAtar paper).
    train_every: int = 1
    #: Epsilon-greedy schedule: eps_start -> eps_end linearly over eps_decay_steps env steps.
    eps_start: float = 1.0
    eps_end: float = 0.1
    eps_decay_steps: int = 100_000
    #: Optimiser: ``rmsprop`` (MinAtar paper; centred) or ``adam``.
    optimizer: Literal["rmsprop", "adam"] = "rmsprop"
    lr: float = 0.00025
    #: RMSProp smoothing constant (squared-gradient momentum).
    rmsprop_alpha: float = 0.95
    #: Optimiser epsilon (RMSProp "minimum squared gradient" 0.01 in the MinAtar paper).
    optim_eps: float = 0.01
    #: Huber loss threshold (smooth L1); 1.0 as in the MinAtar paper.
    huber_delta: float = 1.0
    #: Env steps between loss rows in metrics.csv (episode rows are written at every episode end).
    log_every: int = 1000
    #: Env steps between resumable state saves (network, optimiser, replay, RNG); 0 disables.
    save_every: int = 100_000

    def validate(self) -> None:
        """Raise ValueError naming the first inconsistent key."""
        from ..config import ConfigError

        for key in ("total_steps", "replay_capacity", "batch_size", "target_update_every", "train_every",
                    "eps_decay_steps", "log_every"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"dqn.{key} must be positive, got {getattr(self, key)}")
        if self.learning_starts < 0 or self.save_every < 0 or self.frame_stack < 0:
            raise ConfigError("dqn.learning_starts, dqn.save_every and dqn.frame_stack must be >= 0")
        if not self.checkpoint_steps:
            raise ConfigError("dqn.checkpoint_steps must name at least one step")
        bad = [s for s in self.checkpoint_steps if not 0 < s <= self.total_steps]
        if bad:
            raise ConfigError(f"dqn.checkpoint_steps {bad} outside (0, total_steps={self.total_steps}]")
        if len(set(self.checkpoint_steps)) != len(self.checkpoint_steps):
            raise ConfigError(f"dqn.checkpoint_steps has duplicates: {self.checkpoint_steps}")
        if not 0.0 <= self.eps_end <= 1.0 or not 0.0 <= self.eps_start <= 1.0:
            raise ConfigError("dqn.eps_start and dqn.eps_end must lie in [0, 1]")
