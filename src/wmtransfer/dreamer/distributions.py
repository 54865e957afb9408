"""Distributions as pure tensor functions (no torch.distributions objects: fewer allocations).

Categorical latents (DreamerV2 §2): ``stoch`` independent categoricals with ``classes`` classes, given as
logits (..., stoch, classes). Samples are one-hot with straight-through gradients,
``sample + probs - sg(probs)`` (Bengio et al. 2013; DreamerV2 Algorithm 1): the forward value is the
one-hot sample, the gradient is that of the probabilities. An optional uniform mix
``(1 - unimix) softmax(logits) + unimix / classes`` keeps every class possible.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOG_2PI = math.log(2 * math.pi)


def mixed_probs(logits: torch.Tensor, unimix: float) -> torch.Tensor:
    """Class probabilities with the uniform mix applied (last axis = classes)."""
    probs = torch.softmax(logits, -1)
    if unimix > 0:
        probs = probs * (1.0 - unimix) + unimix / logits.shape[-1]
    return probs


def mixed_log_probs(logits: torch.Tensor, unimix: float) -> torch.Tensor:
    """log of :func:`mixed_probs` (exact; ``log_softmax`` when unimix is 0)."""
    if unimix > 0:
        return torch.log(mixed_probs(logits, unimix))
    return torch.log_softmax(logits, -1)


def uniform_noise(shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """One uniform number per categorical (``shape`` excludes the class axis), pre-drawn in one RNG call."""
    return torch.rand(shape, dtype=like.dtype, device=like.device)


def sample_index(probs: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
    """Class index of each categorical (last axis of ``probs``) by inverse-CDF sampling, no gradient.

    Exact sampling with one uniform number ``u`` (shape ``probs.shape[:-1]``) per categorical: the index
    is the number of classes whose cumulative probability is below ``u`` times the total (so a class of
    probability 0 is never drawn). A class-sized Gumbel draw (Gumbel-max) gives the same distribution
    but needs ``classes`` times more random numbers and two logarithms each, which dominated imagination.
    """
    with torch.no_grad():
        cdf = probs.cumsum(-1)
        if u is None:
            u = uniform_noise(tuple(probs.shape[:-1]), probs)
        threshold = (u * cdf[..., -1]).clamp_(min=torch.finfo(cdf.dtype).tiny)[..., None]
        return (cdf < threshold).sum(-1).clamp_(max=probs.shape[-1] - 1)


def onehot_sample(probs: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
    """One-hot sample of each categorical (last axis), no gradient; ``u`` as in :func:`sample_index`."""
    index = sample_index(probs, u)
    return torch.zeros_like(probs).scatter_(-1, index[..., None], 1.0)


def straight_through(sample: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """Forward value ``sample`` (one-hot), gradient of ``probs``."""
    return sample + (probs - probs.detach())  # the bracket is exactly 0: forward is exactly one-hot


def categorical_kl(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """KL[p || q] of independent categoricals, summed over the last two axes (latents, classes)."""
    return (log_p.exp() * (log_p - log_q)).sum((-2, -1))


def categorical_entropy(log_p: torch.Tensor, dims: int = 2) -> torch.Tensor:
    """Entropy summed over the last ``dims`` axes (2: latents x classes; 1: a single categorical)."""
    axes = tuple(range(-dims, 0))
    return -(log_p.exp() * log_p).sum(axes)


def gaussian_stats(x: torch.Tensor, min_std: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Split layer output into mean and std = 2 sigmoid(x / 2) + min_std (official ``sigmoid2``)."""
    mean, raw = x.chunk(2, -1)
    return mean, 2.0 * torch.sigmoid(raw / 2.0) + min_std


def gaussian_kl(
    mean_p: torch.Tensor, std_p: torch.Tensor, mean_q: torch.Tensor, std_q: torch.Tensor,
) -> torch.Tensor:
    """KL[N(mean_p, std_p) || N(mean_q, std_q)] of diagonal Gaussians, summed over the last axis."""
    var_ratio = (std_p / std_q) ** 2
    t1 = ((mean_p - mean_q) / std_q) ** 2
    return 0.5 * (var_ratio + t1 - 1.0 - torch.log(var_ratio)).sum(-1)


def gaussian_entropy(std: torch.Tensor) -> torch.Tensor:
    return (0.5 * (1.0 + LOG_2PI) + torch.log(std)).sum(-1)


def mse_nll(pred: torch.Tensor, target: torch.Tensor, event_dims: int = 0) -> torch.Tensor:
    """Negative log-likelihood of a unit-variance Gaussian, summed over the last ``event_dims`` axes."""
    nll = 0.5 * (pred - target) ** 2 + 0.5 * LOG_2PI
    return nll.sum(tuple(range(-event_dims, 0))) if event_dims else nll


def bernoulli_nll(logits: torch.Tensor, target: torch.Tensor, event_dims: int = 0) -> torch.Tensor:
    """Negative log-likelihood of Bernoulli(logits) at (soft) targets, summed over ``event_dims`` axes."""
    nll = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return nll.sum(tuple(range(-event_dims, 0))) if event_dims else nll
