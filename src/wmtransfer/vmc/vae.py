"""V: the convolutional variational autoencoder of World Models (Ha & Schmidhuber 2018; seed 004 §3).

64x64 frames (procgen, Atari, Mario): four 4x4 stride-2 convolutions (depth x 1, 2, 4, 8; ReLU) to
2x2x(8 depth), a linear layer to the mean ``mu`` and log-variance of z; the decoder maps z to a
1x1x(32 depth) map and four transposed convolutions (kernels 5, 5, 6, 6, stride 2) back to 64x64,
then a sigmoid (log sigma^2 softly bounded to +-12, see ``encode``). MinAtar's 10x10 grids: the
same four-down/four-up structure with 3x3 stride-1 kernels
(10 -> 8 -> 6 -> 4 -> 2 and back), as seed 001's encoder does.

With ``offset=True`` the decoder adds a fixed per-pixel offset to its output before the sigmoid: the
log-odds of the mean of the first training batch (:meth:`ConvVAE.fit_offset`, pixel means clipped to
[0.005, 0.995]), a buffer saved with the weights, as DreamerV2's ``decoder_offset: data`` in this project.
The decoder then starts at the mean frame and its gradient carries only what differs from it; without
it V settles on the mean frame whatever the code (docs/vmc.md, "V reconstructs the frame").

Loss (seed 004 §3): ``L = ||x - x_hat||^2 + beta * KL(N(mu, sigma^2) || N(0, I))``, the squared error
summed over pixels and channels, the KL summed over z's dimensions, both averaged over the batch.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

LOGVAR_BOUND = 12.0
#: Clip of the mean pixel values behind the data offset (log-odds within +-5.3).
OFFSET_P_MIN = 0.005
#: The frame sizes V handles, with (kernels down, stride, kernels up, stride).
ARCHS = {64: ((4, 4, 4, 4), 2, (5, 5, 6, 6), 2), 10: ((3, 3, 3, 3), 1, (3, 3, 3, 3), 1)}


class ConvVAE(nn.Module):
    """``encode(x) -> (mu, logvar)``, ``decode(z) -> x_hat``; ``x`` and ``x_hat`` are ``(B, C, H, W)`` in
    [0, 1]."""

    def __init__(self, obs_shape: tuple[int, int, int], latent: int = 32, depth: int = 32,
                 offset: bool = False):
        super().__init__()
        channels, height, width = obs_shape
        if height != width or height not in ARCHS:
            raise ValueError(f"ConvVAE takes {sorted(ARCHS)}-pixel square frames, got {obs_shape}")
        self.obs_shape, self.latent, self.depth = tuple(obs_shape), latent, depth
        k_down, s_down, k_up, s_up = ARCHS[height]
        widths = [channels, depth, 2 * depth, 4 * depth, 8 * depth]
        self.encoder = nn.Sequential(*[
            layer for i, k in enumerate(k_down)
            for layer in (nn.Conv2d(widths[i], widths[i + 1], k, s_down), nn.ReLU())
        ], nn.Flatten())
        flat = 8 * depth * 2 * 2  # both architectures end at 2x2
        self.mu = nn.Linear(flat, latent)
        self.logvar = nn.Linear(flat, latent)
        if s_up == 2:  # Ha's decoder: z -> 1x1x(32 depth) -> 5 -> 13 -> 30 -> 64
            self._seed_shape = (32 * depth, 1, 1)
            up = [32 * depth, 4 * depth, 2 * depth, depth, channels]
        else:  # MinAtar: z -> 2x2x(8 depth) -> 4 -> 6 -> 8 -> 10
            self._seed_shape = (8 * depth, 2, 2)
            up = [8 * depth, 4 * depth, 2 * depth, depth, channels]
        self.fc_decode = nn.Linear(latent, int(torch.tensor(self._seed_shape).prod()))
        layers: list[nn.Module] = []
        for i, k in enumerate(k_up):
            layers.append(nn.ConvTranspose2d(up[i], up[i + 1], k, s_up))
            if i < len(k_up) - 1:
                layers.append(nn.ReLU())
        self.decoder = nn.Sequential(*layers)
        self.offset = bool(offset)
        # the per-pixel output offset (log-odds) and whether it has been set from data; saved with the weights
        self.register_buffer("out_offset", torch.zeros(self.obs_shape))
        self.register_buffer("out_offset_fitted", torch.zeros(()))

    @torch.no_grad()
    def fit_offset(self, x: torch.Tensor) -> None:
        """Set the output offset to the log-odds of the per-pixel mean of ``x`` (a batch in [0, 1])."""
        p = x.to(torch.float32).mean(0).clamp(OFFSET_P_MIN, 1.0 - OFFSET_P_MIN)
        self.out_offset.copy_(torch.logit(p))
        self.out_offset_fitted.fill_(1.0)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        # log sigma^2 softly bounded to (-LOGVAR_BOUND, LOGVAR_BOUND): during the reconstruction-only phase
        # (beta = 0) nothing holds it, and an unbounded one can overflow exp(); tanh keeps its gradient, so
        # the KL term can pull it back once beta rises.
        return self.mu(h), LOGVAR_BOUND * torch.tanh(self.logvar(h) / LOGVAR_BOUND)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        logits = self.decoder(self.fc_decode(z).view(-1, *self._seed_shape))
        return torch.sigmoid(logits + self.out_offset if self.offset else logits)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruction of a sampled z (reparameterised), with ``mu`` and ``logvar``."""
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decode(z), mu, logvar


def vae_loss(x: torch.Tensor, x_hat: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
             beta: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``||x - x_hat||^2 + beta * KL`` per frame, averaged over the batch; returns (loss, terms)."""
    recon = (x - x_hat).pow(2).flatten(1).sum(1).mean()
    kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)).mean()
    return recon + beta * kl, {"recon": recon, "kl": kl}


def pixel_mse(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Mean squared error per pixel and channel (the scale-free number the beta schedule watches)."""
    return F.mse_loss(x_hat, x)


def beta_at(update: int, ramp_start: int | None, ramp: int, beta_max: float) -> float:
    """Seed 004's schedule: 0 until the reconstruction phase ends at ``ramp_start``, then a linear rise
    to ``beta_max`` over ``ramp`` updates."""
    if ramp_start is None or update < ramp_start:
        return 0.0
    if ramp <= 0:
        return beta_max
    return beta_max * min(1.0, (update - ramp_start) / ramp)
