"""Actor-critic learned in imagination (DreamerV2 §2.3; seed 003 eqs. 2, 4-6).

From every posterior state of the training batch the world model imagines H steps with actions from the
actor, a_t ~ pi(a_t | z^_t). Rewards and discounts come from the world model's heads, values from the slow
target critic; the critic regresses the lambda-returns, the actor maximises them (REINFORCE with the
target critic as baseline, straight-through gradients through the dynamics, or a mix) plus an entropy
bonus. Behaviour losses never update the world model: with pure REINFORCE the whole imagination runs
without autograd (only the actor's own forward pass is recorded); with dynamics gradients the world
model's parameters are excluded from autograd during imagination, so gradients reach the actor through
the model's computations but nothing accumulates in the model's weights.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import distributions as D
from .config import DreamerConfig
from .losses import actor_loss, critic_loss, imagination_weight, lambda_return
from .networks import MLP, init_weights
from .rssm import Latent
from .world_model import WorldModel


@contextlib.contextmanager
def no_param_grad(module: nn.Module) -> Iterator[None]:
    """Temporarily take ``module``'s parameters out of autograd (restoring each flag afterwards)."""
    params = list(module.parameters())
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad_(flag)


class ActorCritic(nn.Module):
    def __init__(self, cfg: DreamerConfig, n_actions: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.n_actions = n_actions
        self.actor = MLP(cfg.feat_size, n_actions, cfg.actor_layers, cfg.actor_units, cfg.act)
        self.critic = MLP(cfg.feat_size, 1, cfg.critic_layers, cfg.critic_units, cfg.act)
        init_weights(self, cfg.weight_init)
        self.target_critic = copy.deepcopy(self.critic)
        self.target_critic.requires_grad_(False)
        #: Imagine on class indices when exact (see :meth:`imagine`); False: the plain dense rollout.
        self.use_lookups = True

    def update_target(self, first: bool = False) -> None:
        """Slow target: target <- fraction * critic + (1 - fraction) * target (official: after the update
        steps whenever the update count is a multiple of 100; a full copy at the first)."""
        mix = 1.0 if first else self.cfg.slow_target_fraction
        with torch.no_grad():
            for src, dst in zip(self.critic.parameters(), self.target_critic.parameters(), strict=True):
                dst.copy_(src if mix == 1.0 else mix * src + (1 - mix) * dst)

    def imagine(self, wm: WorldModel, start: Latent, horizon: int, dense: bool = False) -> Imagination:
        """Roll the prior forward ``horizon`` steps from ``start`` (N flat states), acting with the actor.

        Only the actor's forward passes are recorded by autograd, unless the actor gradient uses the
        dynamics (then the world model's computations are recorded too, with its weights out of autograd).
        Categorical latents without dynamics gradients run on class indices (one-hot products become
        column look-ups; same mathematics, far fewer operations); ``dense=True`` forces the plain path.
        """
        cfg = self.cfg
        dynamics = cfg.actor_grad != "reinforce"
        n = start.deter.shape[0]
        noise = D.uniform_noise((horizon, n), start.deter)
        deters, logits_list, actions = [start.deter.detach()], [], []
        if wm.rssm.categorical and not dynamics and not dense and self.use_lookups:
            indices = [start.stoch.detach().unflatten(-1, (cfg.stoch, cfg.classes)).argmax(-1)]
            for t in range(horizon):
                logits = self.actor.forward_onehot(indices[-1], deters[-1], cfg.classes)
                with torch.no_grad():
                    action = D.sample_index(torch.softmax(logits, -1), noise[t])
                    deter, index = wm.rssm.img_step_index(deters[-1], indices[-1], action)
                deters.append(deter)
                indices.append(index)
                logits_list.append(logits)
                actions.append(action)
            return Imagination(torch.stack(deters), None, torch.stack(indices), torch.stack(logits_list),
                               torch.stack(actions), None)
        state = start.detach()
        stochs, actions_st = [state.stoch], []
        grad_ctx = contextlib.nullcontext() if dynamics else torch.no_grad()
        for t in range(horizon):
            logits = self.actor(state.feat().detach())  # official: policy(sg(feat))
            with grad_ctx:
                probs = torch.softmax(logits if dynamics else logits.detach(), -1)
                one_hot = D.onehot_sample(probs, noise[t])
                action = D.straight_through(one_hot, probs) if dynamics else one_hot
                state = wm.rssm.img_step(state, action)
            deters.append(state.deter)
            stochs.append(state.stoch)
            logits_list.append(logits)
            actions.append(one_hot.argmax(-1))
            actions_st.append(action)
        return Imagination(torch.stack(deters), torch.stack(stochs), None, torch.stack(logits_list),
                           torch.stack(actions), torch.stack(actions_st))

    def rewards_and_discounts(
        self, wm: WorldModel, imag: Imagination, is_terminal: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Rewards and discounts (H, N) of imagined states 0..H-1 as the lambda-return reads them.

        "current" (official): the reward head at each state; the discount head at 1..H-1, the start's
        discount gamma (1 - is_terminal) from the data. "next": both heads at states 0..H-1 (the step
        k -> k+1); "transition": both heads at [z_k, h_{k+1}], k = 0..H-1 (the step k -> k+1 under the
        actor's imagined action a_k, which h_{k+1} has read). With either shifted target a terminal start
        has reward and discount 0 (no step leaves it)."""
        cfg, h = self.cfg, self.cfg.imag_horizon
        if cfg.head_target == "current":
            reward = imag.apply(wm.reward_head, 0, h, cfg.classes)
            disc = torch.sigmoid(imag.apply(wm.discount_head, 1, h, cfg.classes))
            live = 1.0 - is_terminal.to(reward.dtype)
            return reward, torch.cat([(cfg.discount * live)[None], disc], 0)
        shift = 1 if cfg.head_target == "transition" else 0
        reward = imag.apply(wm.reward_head, 0, h, cfg.classes, deter_shift=shift)
        disc = torch.sigmoid(imag.apply(wm.discount_head, 0, h, cfg.classes, deter_shift=shift))
        live = 1.0 - is_terminal.to(reward.dtype)
        return (torch.cat([(reward[0] * live)[None], reward[1:]], 0),
                torch.cat([(disc[0] * live)[None], disc[1:]], 0))

    def loss(
        self, wm: WorldModel, start: Latent, is_terminal: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Actor and critic losses from imagination started at ``start`` (flat (N, ...) states).

        Heads are evaluated only where the official losses read them: rewards at states 0..H-1,
        discounts at 1..H-1 (the start's discount is gamma (1 - is_terminal)), target values at 0..H.
        With a shifted ``head_target`` ("next", "transition") the discounts come from the heads at the
        steps 0..H-1, and a terminal start has reward and discount 0 (no step leaves it).
        """
        cfg = self.cfg
        dynamics = cfg.actor_grad != "reinforce"
        h = cfg.imag_horizon
        with no_param_grad(wm):
            imag = self.imagine(wm, start, h)
            grad_ctx = contextlib.nullcontext() if dynamics else torch.no_grad()
            with grad_ctx:
                reward, disc = self.rewards_and_discounts(wm, imag, is_terminal)
                critic_net = self.target_critic if cfg.slow_target else self.critic
                with no_param_grad(critic_net):
                    value = imag.apply(critic_net, 0, h + 1, cfg.classes)
                target = lambda_return(reward, value[:-1], disc, value[-1], cfg.discount_lambda)
        weight = imagination_weight(torch.cat([disc, disc[-1:]], 0))  # (H+1,), the last discount unused
        logp_all = F.log_softmax(imag.logits[:-1], -1)
        log_prob = logp_all.gather(-1, imag.action[:-1, :, None]).squeeze(-1)
        entropy = D.categorical_entropy(logp_all, dims=1)
        a_loss = actor_loss(
            log_prob, entropy, target[1:], value[:-2].detach(), weight[:-2],
            grad=cfg.actor_grad, mix=cfg.actor_grad_mix, ent_scale=cfg.actor_ent,
        )
        value_pred = imag.detach().apply(self.critic, 0, h, cfg.classes)
        c_loss = critic_loss(value_pred, target.detach(), weight[:-1])
        metrics = {
            "actor_loss": a_loss.detach(),
            "critic_loss": c_loss.detach(),
            "actor_entropy": entropy.detach().mean(),
            "value_mean": value_pred.detach().mean(),
        }
        return a_loss, c_loss, metrics


@dataclass
class Imagination:
    """Imagined trajectories, time first: states 0..H (start included) as ``deter`` (H+1, N, D) with
    either dense ``stoch`` (H+1, N, Z) or categorical class ``index`` (H+1, N, stoch); the actor's
    ``logits`` (H, N, A) at states 0..H-1, the ``action`` indices (H, N) taken there and, with dynamics
    gradients, the straight-through one-hot actions ``action_st`` (H, N, A)."""

    deter: torch.Tensor
    stoch: torch.Tensor | None
    index: torch.Tensor | None
    logits: torch.Tensor
    action: torch.Tensor
    action_st: torch.Tensor | None

    def detach(self) -> Imagination:
        stoch = None if self.stoch is None else self.stoch.detach()
        return Imagination(self.deter.detach(), stoch, self.index, self.logits, self.action, self.action_st)

    def apply(self, mlp: MLP, t0: int, t1: int, classes: int, deter_shift: int = 0) -> torch.Tensor:
        """Scalar head ``mlp`` on states t0..t1-1 -> (t1 - t0, N); with ``deter_shift`` 1 on
        [z_k, h_{k+1}] (the latent of state k with the recurrent state that has read action a_k)."""
        deter = self.deter[t0 + deter_shift:t1 + deter_shift]
        if self.index is not None:
            out = mlp.forward_onehot(self.index[t0:t1].flatten(0, 1), deter.flatten(0, 1), classes)
            return out.view(deter.shape[:2])
        return mlp(torch.cat([self.stoch[t0:t1], deter], -1)).squeeze(-1)
