"""DreamerV2 world model: encoder, RSSM, image decoder, reward and discount heads (seed 003 eq. 3).

    L(phi) = E_q [ sum_t  image_scale  * -ln p(x_t | h_t, z_t)
                        + reward_scale * -ln p(r_t | h_t, z_t)
                        + discount_scale * -ln p(gamma_t | h_t, z_t)
                        + kl_scale * KL_balanced[q(z_t | h_t, x_t) || p(z_t | h_t)]
                        - post_ent_scale * H[q(z_t | h_t, x_t)] ]

Each term is averaged over batch and time (the official ``.mean()``); the image term is summed over
pixels. Reward: unit-variance Gaussian (MSE) on the reward, tanh-squashed for Atari. Discount: Bernoulli
on gamma (1 - is_terminal), as official.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import distributions as D
from .config import DreamerConfig
from .losses import kl_balance
from .networks import MLP, ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder, init_weights
from .rssm import RSSM, Latent


def as_tensor(x: Any, device: torch.device | str) -> torch.Tensor:
    """numpy array or tensor -> tensor on ``device``, dtype unchanged (uint8 stays uint8 until here).

    To CUDA a host array goes through pinned (page-locked) memory with a non-blocking copy, so the copy
    overlaps the GPU's work; on CPU the array's memory is used as is."""
    cuda = torch.device(device).type == "cuda"
    if isinstance(x, torch.Tensor):
        if cuda and x.device.type == "cpu":
            return x.pin_memory().to(device, non_blocking=True)
        return x.to(device)
    tensor = torch.from_numpy(np.ascontiguousarray(x))
    if cuda:
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


#: Clip of the per-cell probabilities behind ``decoder_offset: data`` (logits within +-5.3): a cell that is
#: never on in the first batch can still be learned without a huge first error.
OFFSET_P_MIN = 0.005


def build_decoder(cfg: DreamerConfig, in_dim: int, obs_shape: tuple[int, int, int],
                  use_offset: bool) -> ConvDecoder | MLPDecoder:
    """The image decoder ``cfg`` names (``decoder: conv | mlp``) reading ``in_dim`` features, with the
    PyTorch default initialisation (the world model applies ``weight_init`` to all its layers at once)."""
    if cfg.decoder == "mlp":
        return MLPDecoder(in_dim, obs_shape, cfg.mlp_layers, cfg.mlp_units, cfg.act, use_offset=use_offset)
    return ConvDecoder(in_dim, obs_shape, cfg.cnn_depth, cfg.decoder_kernels, cfg.decoder_stride,
                       cfg.decoder_in_mult, cfg.act, use_offset=use_offset)


@torch.no_grad()
def image_offset(cfg: DreamerConfig, data: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The per-cell output offset of ``decoder_offset: data`` from preprocessed sequences: log-odds of each
    cell's mean (Bernoulli, p clipped to [OFFSET_P_MIN, 1 - OFFSET_P_MIN]) or its mean input (MSE)."""
    if cfg.image_dist == "bernoulli":
        p = (data["obs"].to(torch.float32) * (1.0 / cfg.obs_max)).flatten(0, -4).mean(0)
        return torch.logit(p.clamp(OFFSET_P_MIN, 1.0 - OFFSET_P_MIN))
    return data["image"].flatten(0, -4).mean(0)


class WorldModel(nn.Module):
    def __init__(self, cfg: DreamerConfig, obs_shape: tuple[int, int, int], n_actions: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.obs_shape = tuple(int(s) for s in obs_shape)
        self.n_actions = int(n_actions)
        self.encoder: ConvEncoder | MLPEncoder
        if cfg.encoder == "mlp":
            self.encoder = MLPEncoder(self.obs_shape, cfg.mlp_layers, cfg.mlp_units, cfg.act)
        else:
            self.encoder = ConvEncoder(self.obs_shape, cfg.cnn_depth, cfg.encoder_kernels, cfg.encoder_stride,
                                       cfg.embed_size, cfg.act)
        self.rssm = RSSM(cfg, self.n_actions, self.encoder.embed_dim)
        self.decoder = build_decoder(cfg, cfg.feat_size, self.obs_shape, cfg.decoder_offset == "data")
        self.reward_head = MLP(cfg.feat_size, 1, cfg.head_layers, cfg.head_units, cfg.act)
        self.discount_head = MLP(cfg.feat_size, 1, cfg.head_layers, cfg.head_units, cfg.act)
        init_weights(self, cfg.weight_init)
        nn.init.constant_(self.decoder.last.bias, cfg.decoder_out_bias)
        self._offset_pending = self.decoder.use_offset

    # --- inputs -----------------------------------------------------------------------------------
    def image_input(self, obs_uint8: torch.Tensor) -> torch.Tensor:
        """uint8 observation -> float encoder input obs / obs_max - obs_offset."""
        return obs_uint8.to(torch.float32) * (1.0 / self.cfg.obs_max) - self.cfg.obs_offset

    def preprocess(
        self, batch: Mapping[str, Any], device: torch.device | str = "cpu",
    ) -> dict[str, torch.Tensor]:
        """Replay batch (numpy, (B, T, ...)) -> model inputs and targets."""
        cfg = self.cfg
        obs = as_tensor(batch["obs"], device)
        action = as_tensor(batch["action"], device).long()
        reward = as_tensor(batch["reward"], device).to(torch.float32)
        if cfg.reward_transform == "tanh":
            reward = torch.tanh(reward)
        is_first = as_tensor(batch["is_first"], device).to(torch.float32)
        is_terminal = as_tensor(batch["is_terminal"], device).to(torch.float32)
        return {
            "obs": obs,
            "image": self.image_input(obs),
            "action": F.one_hot(action, self.n_actions).to(torch.float32),
            "reward": reward,
            "discount": cfg.discount * (1.0 - is_terminal),
            "is_first": is_first,
            "is_terminal": is_terminal,
        }

    def head_inputs(
        self, post: Latent, data: Mapping[str, torch.Tensor], feat: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """What the reward and discount heads read and predict on (B, T) states ``post``: (features,
        reward targets, discount targets, mask of the pairs that count or None for all).

        ``head_target`` "current": [z_t, h_t] against r_t, gamma_t. "next": [z_t, h_t], t < T-1, against
        r_{t+1}, gamma_{t+1}; "transition": [z_t, h_{t+1}] (h_{t+1} has read a_t) against the same
        targets. Both shifted targets count only the pairs whose step t+1 continues the episode of t (not
        ``is_first``). ``feat``: ``post.feat()`` if already made."""
        target = self.cfg.head_target
        if target == "current":
            feat = post.feat() if feat is None else feat
            return feat, data["reward"], data["discount"], None
        deter = post.deter[:, 1:] if target == "transition" else post.deter[:, :-1]
        feat = Latent(deter, post.stoch[:, :-1]).feat()
        keep = 1.0 - data["is_first"][:, 1:]
        return feat, data["reward"][:, 1:], data["discount"][:, 1:], keep

    def head_losses(
        self, post: Latent, data: Mapping[str, torch.Tensor], feat: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean reward and discount NLL of the heads on the (B, T) posterior states ``post``, over the
        pairs :meth:`head_inputs` names."""
        feat, reward_t, discount_t, keep = self.head_inputs(post, data, feat)
        reward = D.mse_nll(self.reward_head(feat).squeeze(-1), reward_t)
        discount = D.bernoulli_nll(self.discount_head(feat).squeeze(-1), discount_t)
        if keep is None:
            return reward.mean(), discount.mean()
        count = keep.sum().clamp(min=1.0)
        return (reward * keep).sum() / count, (discount * keep).sum() / count

    def image_nll(self, out: torch.Tensor, data: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """-ln p(x_t | h_t, z_t) per step, summed over C, H, W."""
        if self.cfg.image_dist == "bernoulli":
            target = data["obs"].to(out.dtype) * (1.0 / self.cfg.obs_max)
            return D.bernoulli_nll(out, target, event_dims=3)
        return D.mse_nll(out, data["image"], event_dims=3)

    def image_focal_loss(self, out: torch.Tensor, data: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Focal Bernoulli loss per step (``image_focal`` gamma > 0): each cell's NLL times (1 - p_t)^gamma,
        p_t the probability given to the cell's true value, summed over C, H, W. Cells the model already
        predicts (the many empty cells, the block of aliens) count little; cells it misses (a one-cell
        cannon or bullet) keep nearly their full weight."""
        target = data["obs"].to(out.dtype) * (1.0 / self.cfg.obs_max)
        nll = F.binary_cross_entropy_with_logits(out, target, reduction="none")
        weight = (1.0 - torch.exp(-nll)).pow(self.cfg.image_focal)  # exp(-nll) = p_t for 0/1 targets
        return (weight * nll).sum((-3, -2, -1))

    @property
    def needs_image_offset(self) -> bool:
        """True while ``decoder_offset: data`` waits for its first batch (a Python flag, so the training
        step never reads a device tensor; :meth:`sync_offset_flag` after weights are copied in)."""
        return self._offset_pending

    def refit_offset(self) -> None:
        """Mark a loaded ``data`` offset to be set again from the next training batch (the mark is the
        ``out_offset_fitted`` buffer, so a checkpoint written before that batch keeps it)."""
        if self.decoder.use_offset:
            self.decoder.out_offset_fitted.fill_(0.0)
            self._offset_pending = True

    def sync_offset_flag(self) -> None:
        self._offset_pending = self.decoder.use_offset and not bool(self.decoder.out_offset_fitted)

    @torch.no_grad()
    def fit_image_offset(self, data: Mapping[str, torch.Tensor]) -> None:
        """Set the decoder's per-cell output offset from preprocessed sequences (``decoder_offset: data``;
        :func:`image_offset`)."""
        self.decoder.out_offset.copy_(image_offset(self.cfg, data))
        self.decoder.out_offset_fitted.fill_(1.0)
        self._offset_pending = False

    # --- loss -------------------------------------------------------------------------------------
    def loss(self, data: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, Latent, dict[str, torch.Tensor]]:
        """World-model loss on preprocessed sequences; returns (loss, posterior states, metric tensors)."""
        cfg = self.cfg
        embed = self.encoder(data["image"])
        post, prior_stats = self.rssm.observe(embed, data["action"], data["is_first"])
        feat = post.feat()
        out = self.decoder(feat)
        image = self.image_nll(out, data).mean()
        image_loss = image if not cfg.image_focal else self.image_focal_loss(out, data).mean()
        reward, discount = self.head_losses(post, data, feat)
        post_p = self.rssm.dist_params(post.stats)
        prior_p = self.rssm.dist_params(prior_stats)
        kl_loss, kl_value = kl_balance(
            self.rssm.kl, post_p, prior_p, balance=cfg.kl_balance, mix=cfg.kl_balance_mix,
            free=cfg.free_nats, free_avg=cfg.free_avg,
        )
        total = (
            cfg.image_scale * image_loss + cfg.reward_scale * reward + cfg.discount_scale * discount
            + cfg.kl_scale * kl_loss
        )
        if cfg.post_ent_scale:
            total = total - cfg.post_ent_scale * self.rssm.entropy(post_p).mean()
        with torch.no_grad():
            metrics = {
                "wm_loss": total.detach(),
                "wm_image": image.detach(),
                "wm_reward": reward.detach(),
                "wm_discount": discount.detach(),
                "wm_kl": kl_value.mean(),
                "wm_prior_entropy": self.rssm.entropy([p.detach() for p in prior_p]).mean(),
                "wm_post_entropy": self.rssm.entropy([p.detach() for p in post_p]).mean(),
            }
        return total, post, metrics

    @torch.no_grad()
    def encode_step(self, obs_uint8: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.image_input(obs_uint8))
