"""Recurrent state-space model (DreamerV2 §2, seed 003 eq. 1).

    recurrent model        h_t = f(h_{t-1}, z_{t-1}, a_{t-1})          (img_in -> GRU)
    representation model   z_t ~ q(z_t | h_t, x_t)                      (obs_out -> obs_dist)
    transition predictor   z^_t ~ p(z^_t | h_t)                         (img_out -> img_dist)

Layers and their sizes are the official ones (``EnsembleRSSM`` with one ensemble member). At an episode
start (``is_first``) the previous state and action are zeroed, as official. ``observe`` computes exactly
the official recurrence but moves everything that does not depend on the recurrent state out of the time
loop: the action and embedding halves of the two input layers are applied to the whole batch of
sequences at once, and the prior (which only reads h_t) is evaluated after the loop for all steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import distributions as D
from .config import DreamerConfig
from .networks import ACTIVATIONS


class LayerNormGRUCell(nn.Module):
    """Official DreamerV2 GRU: one dense layer to [reset, candidate, update], LayerNorm, update bias -1."""

    def __init__(self, inp: int, size: int, update_bias: float = -1.0) -> None:
        super().__init__()
        self.linear = nn.Linear(inp + size, 3 * size)
        self.norm = nn.LayerNorm(3 * size, eps=1e-3)  # Keras' LayerNormalization epsilon, as official
        self.update_bias = update_bias

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        parts = self.norm(self.linear(torch.cat([x, h], -1)))
        reset, cand, update = parts.chunk(3, -1)
        cand = torch.tanh(torch.sigmoid(reset) * cand)
        update = torch.sigmoid(update + self.update_bias)
        # update * cand + (1 - update) * h; the casts are no-ops except under CPU autocast, where the layer
        # norm returns bf16 (CUDA autocast keeps layer norm in fp32)
        return torch.lerp(h, cand.to(h.dtype), update.to(h.dtype))


@dataclass
class Latent:
    """A batch of model states: ``deter`` h (..., deter), ``stoch`` z flattened (..., stoch_size), and the
    distribution statistics ``stats`` (categorical logits (..., stoch, classes) or Gaussian
    [mean, raw std] (..., 2 stoch)) that z was drawn from."""

    deter: torch.Tensor
    stoch: torch.Tensor
    stats: torch.Tensor | None = None

    def feat(self) -> torch.Tensor:
        """Model state [z_t, h_t] (official order) read by heads, actor and critic."""
        return torch.cat([self.stoch, self.deter], -1)

    def detach(self) -> Latent:
        stats = None if self.stats is None else self.stats.detach()
        return Latent(self.deter.detach(), self.stoch.detach(), stats)


class RSSM(nn.Module):
    def __init__(self, cfg: DreamerConfig, n_actions: int, embed_dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.n_actions = n_actions
        self.categorical = cfg.latent == "categorical"
        z, hid, det = cfg.stoch_size, cfg.hidden, cfg.deter
        n_stats = cfg.stoch * cfg.classes if self.categorical else 2 * cfg.stoch
        self.act = ACTIVATIONS[cfg.act]()
        self.img_in = nn.Linear(z + n_actions, hid)
        self.cell: nn.Module = LayerNormGRUCell(hid, det) if cfg.gru == "layernorm" else nn.GRUCell(hid, det)
        self.img_out = nn.Linear(det, hid)
        self.img_dist = nn.Linear(hid, n_stats)
        self.obs_out = nn.Linear(det + embed_dim, hid)
        self.obs_dist = nn.Linear(hid, n_stats)

    # --- distributions ----------------------------------------------------------------------------
    def initial(self, batch: int, device: torch.device | str = "cpu") -> Latent:
        cfg = self.cfg
        deter = torch.zeros(batch, cfg.deter, device=device)
        return Latent(deter, torch.zeros(batch, cfg.stoch_size, device=device))

    def _shape_stats(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (self.cfg.stoch, self.cfg.classes)) if self.categorical else x

    def sample(
        self, stats: torch.Tensor, noise: torch.Tensor | None = None, sample: bool = True,
    ) -> torch.Tensor:
        """z ~ dist(stats), flattened; straight-through one-hot for categoricals, reparameterised Gaussian.

        ``sample=False`` gives the mode. ``noise``: uniform (..., stoch) for categoricals (inverse-CDF
        sampling), normal (..., stoch) for Gaussians.
        """
        if self.categorical:
            probs = D.mixed_probs(stats, self.cfg.unimix)
            if sample:
                one_hot = D.onehot_sample(probs, noise)
            else:
                one_hot = F.one_hot(probs.argmax(-1), probs.shape[-1]).to(probs.dtype)
            return D.straight_through(one_hot, probs).flatten(-2)
        mean, std = D.gaussian_stats(stats, self.cfg.min_std)
        if not sample:
            return mean
        if noise is None:
            noise = torch.randn_like(mean)
        return mean + std * noise

    def dist_params(self, stats: torch.Tensor) -> list[torch.Tensor]:
        """Parameters the KL and entropy functions take: [log probs] or [mean, std]."""
        if self.categorical:
            return [D.mixed_log_probs(stats, self.cfg.unimix)]
        return list(D.gaussian_stats(stats, self.cfg.min_std))

    def kl(self, p: list[torch.Tensor], q: list[torch.Tensor]) -> torch.Tensor:
        """KL[p || q] per state (summed over latents)."""
        if self.categorical:
            return D.categorical_kl(p[0], q[0])
        return D.gaussian_kl(p[0], p[1], q[0], q[1])

    def entropy(self, params: list[torch.Tensor]) -> torch.Tensor:
        return D.categorical_entropy(params[0]) if self.categorical else D.gaussian_entropy(params[1])

    def _noise(self, shape: tuple[int, ...], ref: torch.Tensor) -> torch.Tensor:
        """Sampling noise for ``shape`` states at once: uniform for categoricals, normal for Gaussians."""
        if self.categorical:
            return D.uniform_noise((*shape, self.cfg.stoch), ref)
        return torch.randn(*shape, self.cfg.stoch, dtype=ref.dtype, device=ref.device)

    # --- one step ---------------------------------------------------------------------------------
    def prior_stats(self, deter: torch.Tensor) -> torch.Tensor:
        return self._shape_stats(self.img_dist(self.act(self.img_out(deter))))

    def img_step(self, state: Latent, action: torch.Tensor, sample: bool = True) -> Latent:
        """Prior step: h_t = f(h_{t-1}, z_{t-1}, a_{t-1}); z^_t ~ p(z^_t | h_t). ``action`` one-hot."""
        x = self.act(self.img_in(torch.cat([state.stoch, action], -1)))
        deter = self.cell(x, state.deter)
        stats = self.prior_stats(deter)
        return Latent(deter, self.sample(stats, sample=sample), stats)

    @torch.no_grad()
    def img_step_index(
        self, deter: torch.Tensor, index: torch.Tensor, action: torch.Tensor,
        noise: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`img_step` for categorical latents without gradients, on class indices: deter (N, D),
        index (N, stoch) of z_{t-1}, action (N,) int. Returns h_t and the index of z^_t ~ p(z^_t | h_t).

        Identical mathematics; the one-hot inputs of the first layer become column look-ups.
        """
        z, k = self.cfg.stoch_size, self.cfg.classes
        offsets = torch.arange(0, z, k, device=index.device)
        flat = torch.cat([index + offsets, (action + z)[:, None]], 1)
        table = self.img_in.weight.t().contiguous()
        x = self.act(F.embedding_bag(flat, table, mode="sum") + self.img_in.bias)
        deter = self.cell(x, deter)
        stats = self.prior_stats(deter)
        return deter, D.sample_index(D.mixed_probs(stats, self.cfg.unimix), noise)

    def obs_step(
        self, state: Latent, action: torch.Tensor, embed: torch.Tensor, is_first: torch.Tensor,
        sample: bool = True,
    ) -> Latent:
        """Posterior step for acting: reset at ``is_first``, prior step to h_t, z_t ~ q(z_t | h_t, x_t)."""
        keep = (1.0 - is_first.to(embed.dtype))[:, None]
        x = self.act(self.img_in(torch.cat([state.stoch * keep, action * keep], -1)))
        deter = self.cell(x, state.deter * keep)
        stats = self._shape_stats(self.obs_dist(self.act(self.obs_out(torch.cat([deter, embed], -1)))))
        return Latent(deter, self.sample(stats, sample=sample), stats)

    def post_step(
        self, stoch: torch.Tensor, deter: torch.Tensor, act_in: torch.Tensor, emb_in: torch.Tensor,
        w_in_z: torch.Tensor, w_out_h: torch.Tensor, noise: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step of :meth:`observe` (the loop body, what ``compile_rssm`` compiles): h_t from h_{t-1}
        and z_{t-1} (``act_in``: the action's precomputed half of the input layer, bias included), then
        z_t ~ q(z_t | h_t, x_t) (``emb_in``: the embedding's half of the posterior layer). Returns
        (h_t, z_t, the posterior's statistics)."""
        x = self.act(torch.addmm(act_in, stoch, w_in_z))
        deter = self.cell(x, deter)
        stats = self._shape_stats(self.obs_dist(self.act(torch.addmm(emb_in, deter, w_out_h))))
        return deter, self.sample(stats, noise), stats

    # --- sequences --------------------------------------------------------------------------------
    def observe(
        self, embed: torch.Tensor, action: torch.Tensor, is_first: torch.Tensor, state: Latent | None = None,
    ) -> tuple[Latent, torch.Tensor]:
        """Posterior states for sequences: embed (B, T, E), one-hot action (B, T, A) (a_{t-1} for x_t),
        is_first (B, T). Returns (posterior Latent with (B, T, ...) tensors, prior stats (B, T, ...))."""
        b, t = embed.shape[:2]
        z, det = self.cfg.stoch_size, self.cfg.deter
        keep = (1.0 - is_first.to(embed.dtype)).transpose(0, 1)[..., None]  # (T, B, 1)
        # The state reset only matters where a previous state exists: at t > 0, or with a given state.
        mask_steps = state is not None or bool(is_first[:, 1:].any())
        if state is None:
            state = self.initial(b, embed.device)
        # Input halves that do not depend on the recurrent state, for all steps at once.
        w_in, w_out = self.img_in.weight, self.obs_out.weight
        act_in = F.linear(action.transpose(0, 1) * keep, w_in[:, z:], self.img_in.bias).unbind(0)
        emb_in = F.linear(embed.transpose(0, 1), w_out[:, det:], self.obs_out.bias).unbind(0)
        w_in_z, w_out_h = w_in[:, :z].t(), w_out[:, :det].t()
        noise = self._noise((t, b), embed).unbind(0)
        deter, stoch = state.deter, state.stoch
        deters, stochs, stats_list = [], [], []
        for i in range(t):
            if mask_steps:
                stoch, deter = stoch * keep[i], deter * keep[i]
            deter, stoch, stats = self.post_step(stoch, deter, act_in[i], emb_in[i], w_in_z, w_out_h,
                                                 noise[i])
            deters.append(deter)
            stochs.append(stoch)
            stats_list.append(stats)
        deters_bt = torch.stack(deters, 1)
        post = Latent(deters_bt, torch.stack(stochs, 1), torch.stack(stats_list, 1))
        return post, self.prior_stats(deters_bt)
