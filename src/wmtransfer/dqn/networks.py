"""Q-networks: the MLP of seed 001 and the MinAtar paper's conv net (MinAtar), the Nature DQN (images).

All networks map a batch of channels-first ``uint8`` observations ``(B, C, H, W)`` to Q-values
``(B, n_actions)``. MinAtar observations are 0/1, image observations 0..255; every network scales its
input by ``1 / input_scale`` (1 for MinAtar, 255 for images). The distributional (C51) head of
Bellemare et al. (2017) returns the expected value ``Q(s, a) = sum_i z_i p_i(s, a)`` over ``atoms``
support points on ``[v_min, v_max]``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

NetworkKind = Literal["mlp", "minatar_conv", "nature"]


class QHead(nn.Module):
    """Linear output layer: plain Q-values, or C51 logits reduced to their expectation."""

    def __init__(self, in_features: int, n_actions: int, atoms: int = 1, v_min: float = -10.0,
                 v_max: float = 10.0):
        super().__init__()
        self.n_actions, self.atoms = n_actions, atoms
        self.linear = nn.Linear(in_features, n_actions * atoms)
        if atoms > 1:
            self.register_buffer("support", torch.linspace(v_min, v_max, atoms))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        out = self.linear(h)
        if self.atoms == 1:
            return out
        probs = torch.softmax(out.view(-1, self.n_actions, self.atoms), dim=-1)
        return (probs * self.support).sum(-1)


class MLPQNet(nn.Module):
    """Seed 001 §2.5's three-layer MLP: flatten -> hidden -> hidden -> Q (ReLU between layers)."""

    def __init__(self, obs_shape: tuple[int, ...], n_actions: int, hidden: tuple[int, ...] = (256, 256),
                 input_scale: float = 1.0):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(obs_shape)
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.body = nn.Sequential(*layers)
        self.head = QHead(width, n_actions)
        self.input_scale = input_scale

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(obs.float() / self.input_scale))


class MinAtarConvQNet(nn.Module):
    """Young & Tian (2019) DQN: one 3x3 stride-1 conv with 16 filters, a 128-unit dense layer, Q."""

    def __init__(self, obs_shape: tuple[int, ...], n_actions: int, filters: int = 16, dense: int = 128,
                 input_scale: float = 1.0):
        super().__init__()
        c, h, w = obs_shape
        self.body = nn.Sequential(
            nn.Conv2d(c, filters, 3, stride=1), nn.ReLU(), nn.Flatten(),
            nn.Linear(filters * (h - 2) * (w - 2), dense), nn.ReLU(),
        )
        self.head = QHead(dense, n_actions)
        self.input_scale = input_scale

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(obs.float() / self.input_scale))


class NatureQNet(nn.Module):
    """Mnih et al. (2015) Nature DQN: conv 32x8x8/4, 64x4x4/2, 64x3x3/1, dense 512, Q (ReLU).

    Works for 64x64 (4x4x64 features) and 84x84 (7x7x64) inputs. ``atoms > 1`` gives the C51 head.
    """

    def __init__(self, obs_shape: tuple[int, ...], n_actions: int, atoms: int = 1, v_min: float = -10.0,
                 v_max: float = 10.0, input_scale: float = 255.0):
        super().__init__()
        c, h, w = obs_shape
        self.features = nn.Sequential(
            nn.Conv2d(c, 32, 8, stride=4), nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(), nn.Flatten(),
        )
        with torch.no_grad():
            n_flat = self.features(torch.zeros(1, c, h, w)).shape[1]
        self.dense = nn.Sequential(nn.Linear(n_flat, 512), nn.ReLU())
        self.head = QHead(512, n_actions, atoms, v_min, v_max)
        self.input_scale = input_scale

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.dense(self.features(obs.float() / self.input_scale)))


def build_q_network(kind: NetworkKind, obs_shape: tuple[int, ...], n_actions: int,
                    hidden: tuple[int, ...] = (256, 256), input_scale: float = 1.0) -> nn.Module:
    """The Q-network named by ``kind`` for observations of ``obs_shape`` (C, H, W)."""
    obs_shape = tuple(int(s) for s in obs_shape)
    if kind == "mlp":
        return MLPQNet(obs_shape, n_actions, tuple(hidden), input_scale)
    if kind == "minatar_conv":
        return MinAtarConvQNet(obs_shape, n_actions, input_scale=input_scale)
    if kind == "nature":
        return NatureQNet(obs_shape, n_actions, input_scale=input_scale)
    raise ValueError(f"unknown network {kind!r}; valid: mlp, minatar_conv, nature")
