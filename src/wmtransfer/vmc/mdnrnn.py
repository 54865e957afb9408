"""M: the MDN-RNN of World Models (Ha & Schmidhuber 2018; seed 004 §3).

An LSTM reads ``[z_t, onehot(a_t)]`` and its state ``h_t`` parameterises a mixture of ``K`` Gaussians
over the next latent (diagonal covariance, one set of mixture weights per step):

    p(z_{t+1} | h_t) = sum_k pi_k N(z_{t+1}; mu_k, diag(sigma_k^2)),

trained by maximising the log-likelihood (``mdn_nll`` is its negative, per latent dimension). With
``heads=True`` two more linear heads read ``h_t``: the reward ``r_{t+1}`` (squared error) and whether
the episode ends at ``t+1`` (Bernoulli logit), so a controller can be trained inside the dream.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

LOG_2PI = math.log(2 * math.pi)


class MDNRNN(nn.Module):
    """``forward(z, a, state) -> (logit_pi, mu, log_sigma, reward, end_logit), state`` on ``(B, T, .)``."""

    def __init__(self, latent: int, n_actions: int, hidden: int = 1024, gaussians: int = 16,
                 heads: bool = True):
        super().__init__()
        self.latent, self.n_actions, self.hidden, self.gaussians, self.heads = (
            latent, n_actions, hidden, gaussians, heads)
        self.lstm = nn.LSTM(latent + n_actions, hidden, batch_first=True)
        self.mdn = nn.Linear(hidden, gaussians * (1 + 2 * latent))
        self.reward = nn.Linear(hidden, 1) if heads else None
        self.end = nn.Linear(hidden, 1) if heads else None

    def initial_state(self, batch: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = torch.zeros(1, batch, self.hidden, device=device)
        return zeros, zeros.clone()

    def step_input(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return torch.cat([z, F.one_hot(action.long(), self.n_actions).to(z.dtype)], -1)

    def mixture(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(log pi (.., K), mu (.., K, Z), log sigma (.., K, Z))`` from LSTM outputs ``h (.., H)``."""
        out = self.mdn(h)
        k, z = self.gaussians, self.latent
        logit_pi = out[..., :k]
        mu = out[..., k:k + k * z].unflatten(-1, (k, z))
        log_sigma = out[..., k + k * z:].unflatten(-1, (k, z)).clamp(-7.0, 5.0)
        return F.log_softmax(logit_pi, -1), mu, log_sigma

    def forward(self, z: torch.Tensor, action: torch.Tensor, state=None):
        h, state = self.lstm(self.step_input(z, action), state)
        log_pi, mu, log_sigma = self.mixture(h)
        reward = self.reward(h).squeeze(-1) if self.heads else None
        end = self.end(h).squeeze(-1) if self.heads else None
        return (log_pi, mu, log_sigma, reward, end), state, h


def mdn_log_prob(z: torch.Tensor, log_pi: torch.Tensor, mu: torch.Tensor,
                 log_sigma: torch.Tensor) -> torch.Tensor:
    """``log sum_k pi_k N(z; mu_k, sigma_k^2 I)`` for ``z (.., Z)``; returns ``(..)``."""
    z = z.unsqueeze(-2)  # (.., 1, Z) against the K components
    log_normal = -0.5 * (((z - mu) / log_sigma.exp()).pow(2) + 2 * log_sigma + LOG_2PI)
    return torch.logsumexp(log_pi + log_normal.sum(-1), -1)


def mdn_nll(z_next: torch.Tensor, log_pi, mu, log_sigma, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Negative log-likelihood of ``z_next`` per latent dimension, averaged over valid steps."""
    nll = -mdn_log_prob(z_next, log_pi, mu, log_sigma) / z_next.shape[-1]
    if mask is None:
        return nll.mean()
    return (nll * mask).sum() / mask.sum().clamp(min=1)


def sample_mixture(log_pi, mu, log_sigma, temperature: float = 1.0,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """One z per row from the mixture; ``temperature`` flattens the weights and widens the Gaussians
    (Ha & Schmidhuber's tau: weights ``softmax(log pi / tau)``, sigma ``* sqrt(tau)``)."""
    weights = F.softmax(log_pi / temperature, -1)
    k = torch.multinomial(weights.reshape(-1, weights.shape[-1]), 1, generator=generator)
    k = k.view(*weights.shape[:-1], 1, 1).expand(*weights.shape[:-1], 1, mu.shape[-1])
    mean = mu.gather(-2, k).squeeze(-2)
    std = log_sigma.gather(-2, k).squeeze(-2).exp() * math.sqrt(temperature)
    noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    return mean + std * noise


def mixture_mode(log_pi, mu) -> torch.Tensor:
    """The mean of the most likely component (the deterministic prediction drawn in the figures)."""
    k = log_pi.argmax(-1)[..., None, None].expand(*log_pi.shape[:-1], 1, mu.shape[-1])
    return mu.gather(-2, k).squeeze(-2)
