"""The DreamerV2 agent: world model + actor-critic + their three optimisers, conditions, checkpoints.

One training update (``train_step``) is one world-model update on a replay batch followed by one
behaviour update on imagination started from every posterior state of that batch (DreamerV2 Algorithm 1,
official ``Agent.train``). Conditions (``set_condition``) decide which parameters are trained:

=================  ===========================================================================
scratch            everything trained, fresh initialisation
finetune           everything trained; world model loaded with ``load_world_model_from``
frozen_rssm        RSSM fixed; encoder, decoder, reward/discount heads, actor and critic trained
frozen_wm          only actor and critic trained (world model fixed)
finetune_agent     everything trained; world model and actor-critic loaded with ``load_agent_from``
=================  ===========================================================================

Fixed parameters are taken out of autograd and out of every optimiser (so no update, no weight decay and
no optimiser state touches them); the model has no running statistics, so they stay bit-identical.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from wmtransfer import conditions
from wmtransfer.config import from_dict, to_dict
from wmtransfer.io import atomic_write, safe_load

from .behavior import ActorCritic
from .config import DreamerConfig
from .probe import latent_probe
from .rssm import Latent
from .world_model import WorldModel, as_tensor

CONDITIONS = conditions.NAMES
CHECKPOINT_FORMAT = "wmtransfer.dreamer/1"


class CheckpointMismatch(ValueError):
    """A checkpoint does not fit the model; the message names the field and both values."""


def make_adam(params: list[nn.Parameter], lr: float, cfg: DreamerConfig) -> torch.optim.Optimizer:
    """Official optimiser: Adam (eps) with decoupled weight decay w <- (1 - wd) w each step.

    torch's AdamW decays by lr * weight_decay, so it gets weight_decay = wd / lr. Fused kernel when the
    device supports it, else the multi-tensor (foreach) path.
    """
    kwargs: dict[str, Any] = dict(lr=lr, eps=cfg.adam_eps, weight_decay=cfg.weight_decay / lr)
    try:
        return torch.optim.AdamW(params, fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(params, foreach=True, **kwargs)


def _state_dict_of(src: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(model state dict, metadata) of a checkpoint dict, a path to one, or a bare state dict."""
    if isinstance(src, (str, os.PathLike)):
        src = safe_load(src)
    if isinstance(src, nn.Module):
        return src.state_dict(), {}
    if isinstance(src, Mapping) and "model" in src and isinstance(src["model"], Mapping):
        return dict(src["model"]), dict(src)
    return dict(src), {}


def _fp32(latent: Latent) -> Latent:
    """``latent`` with fp32 tensors (after bf16 autocast); the same object when it is fp32 already."""
    if latent.deter.dtype == torch.float32 and latent.stoch.dtype == torch.float32:
        return latent
    stats = None if latent.stats is None else latent.stats.float()
    return Latent(latent.deter.float(), latent.stoch.float(), stats)


class Dreamer(nn.Module):
    """DreamerV2 agent for ``obs_shape`` (C, H, W) uint8 observations and ``n_actions`` discrete actions."""

    def __init__(
        self, cfg: DreamerConfig, obs_shape: tuple[int, ...], n_actions: int,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.obs_shape = tuple(int(s) for s in obs_shape)
        self.n_actions = int(n_actions)
        self.world_model = WorldModel(cfg, self.obs_shape, self.n_actions)
        self.behavior = ActorCritic(cfg, self.n_actions)
        self.device = torch.device(device)
        self.to(self.device)
        if cfg.compile_rssm:
            rssm = self.world_model.rssm
            for name in ("obs_step", "post_step", "img_step", "img_step_index"):
                setattr(rssm, name, torch.compile(getattr(rssm, name)))
        self.condition = "scratch"
        self.updates = 0  # behaviour updates (train_step calls); drives the slow target
        self.wm_updates = 0  # world-model updates (train_step + train_world_model)
        self._build_optimizers()

    # --- parts ------------------------------------------------------------------------------------
    @property
    def actor(self) -> nn.Module:
        return self.behavior.actor

    @property
    def critic(self) -> nn.Module:
        return self.behavior.critic

    @property
    def target_critic(self) -> nn.Module:
        return self.behavior.target_critic

    def _build_optimizers(self) -> None:
        cfg = self.cfg
        wm_params = [p for p in self.world_model.parameters() if p.requires_grad]
        self.model_opt = make_adam(wm_params, cfg.model_lr, cfg) if wm_params else None
        self.actor_opt = make_adam(list(self.actor.parameters()), cfg.actor_lr, cfg)
        self.critic_opt = make_adam(list(self.critic.parameters()), cfg.critic_lr, cfg)

    def set_condition(self, name: str) -> None:
        """Select which parameters train (see module docstring); rebuilds the three optimisers."""
        frozen = conditions.get(name).frozen
        self.world_model.requires_grad_("world_model" not in frozen)
        if "rssm" in frozen:
            self.world_model.rssm.requires_grad_(False)
        self.actor.requires_grad_(True)
        self.critic.requires_grad_(True)
        self.target_critic.requires_grad_(False)
        self.condition = name
        self._build_optimizers()

    def trainable_parameter_names(self) -> list[str]:
        return [n for n, p in self.named_parameters() if p.requires_grad]

    # --- acting -----------------------------------------------------------------------------------
    def init_state(self, batch_size: int) -> dict[str, torch.Tensor]:
        """Recurrent state for ``batch_size`` parallel games: latent (deter, stoch) and previous action."""
        latent = self.world_model.rssm.initial(batch_size, self.device)
        return {
            "deter": latent.deter, "stoch": latent.stoch,
            "action": torch.zeros(batch_size, self.n_actions, device=self.device),
        }

    @torch.no_grad()
    def policy(
        self, obs: Any, state: dict[str, torch.Tensor] | None, is_first: Any, explore: bool = True,
    ) -> tuple[np.ndarray, dict[str, torch.Tensor]]:
        """Act on a batch of observations (N, C, H, W) uint8 with ``is_first`` (N,) episode starts.

        explore=True samples the actor (plus ``expl_noise`` uniform actions), False takes its mode (plus
        ``eval_noise``). Returns int64 actions (N,) and the new state.
        """
        obs_t = as_tensor(obs, self.device)
        n = obs_t.shape[0]
        if state is None:
            state = self.init_state(n)
        first = as_tensor(np.asarray(is_first, dtype=bool), self.device)
        embed = self.world_model.encode_step(obs_t)
        latent = self.world_model.rssm.obs_step(
            Latent(state["deter"], state["stoch"]), state["action"], embed, first
        )
        logits = self.actor(latent.feat())
        if explore:
            action = torch.multinomial(torch.softmax(logits, -1), 1).squeeze(-1)
        else:
            action = logits.argmax(-1)
        noise = self.cfg.expl_noise if explore else self.cfg.eval_noise
        if noise > 0:
            rand = torch.randint(0, self.n_actions, (n,), device=self.device)
            action = torch.where(torch.rand(n, device=self.device) < noise, rand, action)
        one_hot = torch.nn.functional.one_hot(action, self.n_actions).to(torch.float32)
        new_state = {"deter": latent.deter, "stoch": latent.stoch, "action": one_hot}
        return action.cpu().numpy().astype(np.int64), new_state

    # --- training ---------------------------------------------------------------------------------
    def _check_finite(self, metrics: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        names = list(metrics)
        values = torch.stack([metrics[k].float() for k in names]).tolist()
        out = dict(zip(names, values, strict=True))
        bad = [f"{k} = {v}" for k, v in out.items() if not np.isfinite(v)]
        if bad:
            raise FloatingPointError(f"non-finite loss term(s) {', '.join(bad)} at update {step}")
        return out

    @property
    def uses_bf16(self) -> bool:
        """bf16 autocast is on: asked for (``cfg.bf16``) and the agent is on CUDA."""
        return self.cfg.bf16 and self.device.type == "cuda"

    def _autocast(self):
        """bf16 autocast on CUDA when ``cfg.bf16``; elsewhere a context that does nothing."""
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.uses_bf16)

    def _step(self, opt: torch.optim.Optimizer | None, params: list[nn.Parameter]) -> None:
        if opt is None:
            return
        torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip, foreach=True)
        opt.step()

    def _world_model_update(
        self, batch: Mapping[str, Any],
    ) -> tuple[Latent, dict[str, torch.Tensor], dict[str, float]]:
        data = self.world_model.preprocess(batch, self.device)
        if self.world_model.needs_image_offset:
            self.world_model.fit_image_offset(data)
        clock = self.wm_updates if self.model_opt is not None else self.updates  # frozen_wm: no wm update
        probe_due = self.cfg.probe_every > 0 and clock % self.cfg.probe_every == 0
        if self.model_opt is None:  # frozen_wm: nothing to train, posterior states only
            with torch.no_grad(), self._autocast():
                _, post, metrics = self.world_model.loss(data)
            post = _fp32(post)
            values = self._check_finite(metrics, self.wm_updates)
            if probe_due:
                values.update(latent_probe(self.world_model, data, post))
            return post, data, values
        with self._autocast():
            loss, post, metrics = self.world_model.loss(data)
        loss, post = loss.float(), _fp32(post)  # no-ops without autocast
        values = self._check_finite(metrics, self.wm_updates)
        if probe_due:
            values.update(latent_probe(self.world_model, data, post))
        self.model_opt.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for g in self.model_opt.param_groups for p in g["params"]]
        self._step(self.model_opt, params)
        self.wm_updates += 1
        return post, data, values

    def train_world_model(self, batch: Mapping[str, Any]) -> dict[str, float]:
        """One world-model update only (offline pre-training; actor-critic untouched)."""
        self.train()
        _, _, metrics = self._world_model_update(batch)
        return metrics

    def train_behavior(self, post: Latent, is_terminal: torch.Tensor) -> dict[str, float]:
        """One actor and one critic update on imagination from the (B, T) posterior states ``post``."""
        cfg = self.cfg
        if cfg.imag_drop_last_start:
            post = Latent(post.deter[:, :-1], post.stoch[:, :-1])
            is_terminal = is_terminal[:, :-1]
        start = Latent(post.deter.detach().flatten(0, 1), post.stoch.detach().flatten(0, 1))
        with self._autocast():
            a_loss, c_loss, metrics = self.behavior.loss(self.world_model, start, is_terminal.flatten(0, 1))
        a_loss, c_loss = a_loss.float(), c_loss.float()
        values = self._check_finite(metrics, self.updates)
        self.actor_opt.zero_grad(set_to_none=True)
        self.critic_opt.zero_grad(set_to_none=True)
        (a_loss + c_loss).backward()
        self._step(self.actor_opt, list(self.actor.parameters()))
        self._step(self.critic_opt, list(self.critic.parameters()))
        if cfg.slow_target and self.updates % cfg.slow_target_update == 0:
            self.behavior.update_target(first=self.updates == 0)
        self.updates += 1
        return values

    def train_step(self, batch: Mapping[str, Any]) -> dict[str, float]:
        """One world-model update and one behaviour update on a replay batch ((B, T, ...) numpy arrays:
        obs uint8, action int, reward, is_first, is_terminal). Returns the metrics as floats."""
        self.train()
        post, data, wm_metrics = self._world_model_update(batch)
        return {**wm_metrics, **self.train_behavior(post, data["is_terminal"])}

    # --- checkpoints ------------------------------------------------------------------------------
    def _check_meta(self, meta: Mapping[str, Any], what: str = "checkpoint") -> None:
        if isinstance(meta.get("config"), Mapping):  # heads trained for another step would mislead
            saved = meta["config"].get("head_target", "current")  # written before the field: official
            if saved != self.cfg.head_target:
                raise CheckpointMismatch(
                    f"head_target: {what} {saved!r} vs model {self.cfg.head_target!r} (its reward and "
                    "discount heads predict another step; use the same dreamer.head_target)")
            for key in ("encoder", "decoder"):  # written before the fields: conv
                saved = meta["config"].get(key, "conv")
                if saved != getattr(self.cfg, key):
                    raise CheckpointMismatch(
                        f"{key}: {what} {saved!r} vs model {getattr(self.cfg, key)!r} (another network; use "
                        f"the same dreamer.{key})")
        if "n_actions" in meta and int(meta["n_actions"]) != self.n_actions:
            raise CheckpointMismatch(f"n_actions: {what} {int(meta['n_actions'])} vs model {self.n_actions}")
        if "obs_shape" in meta and tuple(int(s) for s in meta["obs_shape"]) != self.obs_shape:
            raise CheckpointMismatch(
                f"obs_shape: {what} {tuple(int(s) for s in meta['obs_shape'])} vs model {self.obs_shape}"
            )

    @staticmethod
    def _load_into(module: nn.Module, state: Mapping[str, torch.Tensor], what: str) -> None:
        own = module.state_dict()
        state = dict(state)
        for key in own:  # checkpoints from before decoder_offset: no offset, marked as set
            if key.endswith("decoder.out_offset") and key not in state:
                state[key] = torch.zeros_like(own[key])
                state[key[: -len("out_offset")] + "out_offset_fitted"] = torch.ones(())
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing or unexpected:
            raise CheckpointMismatch(
                f"{what}: missing keys {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                f"unexpected keys {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
            )
        for k, v in state.items():
            if tuple(v.shape) != tuple(own[k].shape):
                raise CheckpointMismatch(
                    f"{what}: {k} has shape {tuple(v.shape)} in checkpoint vs {tuple(own[k].shape)} in model"
                )
        with torch.no_grad():
            for k, v in state.items():
                own[k].copy_(v)
        for m in module.modules():  # weights copied in: the decoder offset may now be set
            if isinstance(m, WorldModel):
                m.sync_offset_flag()

    def checkpoint(self) -> dict[str, Any]:
        """Weights, optimiser states, counters and metadata; loads with torch.load(weights_only=True)."""
        return {
            "format": CHECKPOINT_FORMAT,
            "obs_shape": list(self.obs_shape),
            "n_actions": self.n_actions,
            "config": to_dict(self.cfg),
            "condition": self.condition,
            "updates": self.updates,
            "wm_updates": self.wm_updates,
            "model": {k: v.detach().cpu().clone() for k, v in self.state_dict().items()},
            "optim": {
                "model": None if self.model_opt is None else self.model_opt.state_dict(),
                "actor": self.actor_opt.state_dict(),
                "critic": self.critic_opt.state_dict(),
            },
            "torch_rng": torch.get_rng_state(),
        }

    def restore(self, ckpt: Mapping[str, Any], restore_rng: bool = True) -> None:
        """Inverse of :meth:`checkpoint` (same obs_shape, n_actions and network sizes required)."""
        self._check_meta(ckpt)
        self._load_into(self, ckpt["model"], "checkpoint")
        self.set_condition(ckpt.get("condition", "scratch"))
        optim = ckpt.get("optim") or {}
        if optim.get("model") is not None and self.model_opt is not None:
            self.model_opt.load_state_dict(optim["model"])
        if optim.get("actor") is not None:
            self.actor_opt.load_state_dict(optim["actor"])
        if optim.get("critic") is not None:
            self.critic_opt.load_state_dict(optim["critic"])
        self.updates = int(ckpt.get("updates", 0))
        self.wm_updates = int(ckpt.get("wm_updates", 0))
        if restore_rng and "torch_rng" in ckpt:
            torch.set_rng_state(ckpt["torch_rng"])

    def save(self, path: str | os.PathLike, **meta: Any) -> None:
        """Atomic save (temp file in the same folder, then rename); ``meta`` (plain data) is stored too."""
        ckpt = self.checkpoint()
        ckpt["meta"] = meta
        atomic_write(path, lambda p: torch.save(ckpt, p), fsync=True)

    @classmethod
    def load(
        cls, path: str | os.PathLike, *, obs_shape: tuple[int, ...] | None = None,
        n_actions: int | None = None, device: str | torch.device = "cpu", restore_rng: bool = False,
    ) -> Dreamer:
        """Rebuild an agent from :meth:`save`'s file; ``obs_shape`` / ``n_actions``, if given, must match."""
        ckpt = safe_load(path, map_location=device)
        if ckpt.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointMismatch(f"{path}: format {ckpt.get('format')!r}, expected {CHECKPOINT_FORMAT!r}")
        if n_actions is not None and int(ckpt["n_actions"]) != int(n_actions):
            raise CheckpointMismatch(
                f"n_actions: checkpoint {int(ckpt['n_actions'])} vs model {int(n_actions)}"
            )
        if obs_shape is not None and tuple(ckpt["obs_shape"]) != tuple(obs_shape):
            raise CheckpointMismatch(
                f"obs_shape: checkpoint {tuple(ckpt['obs_shape'])} vs model {tuple(obs_shape)}"
            )
        cfg = from_dict(DreamerConfig, ckpt["config"])
        agent = cls(cfg, tuple(ckpt["obs_shape"]), int(ckpt["n_actions"]), device=device)
        agent.restore(ckpt, restore_rng=restore_rng)
        return agent

    def load_world_model_from(self, src: Any) -> None:
        """Copy a world model (checkpoint dict, path, Dreamer state dict or WorldModel state dict) into this
        agent; actor-critic untouched; fresh optimisers for the current condition (``finetune``)."""
        state, meta = _state_dict_of(src)
        self._check_meta(meta, "source")
        prefix = "world_model."
        if any(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        self._load_into(self.world_model, state, "world model")
        self._build_optimizers()

    def load_agent_from(self, src: Any) -> None:
        """Copy world model and actor-critic (incl. target critic) from another agent's checkpoint
        (``finetune_agent``); counters and optimiser states start fresh."""
        state, meta = _state_dict_of(src)
        self._check_meta(meta, "source")
        self._load_into(self, state, "agent")
        self._build_optimizers()
