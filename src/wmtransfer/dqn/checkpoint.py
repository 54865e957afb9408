"""DQN policy checkpoints: the Q-network weights plus the metadata needed to rebuild and check it.

A checkpoint is ``{"q_net": state_dict, "meta": {...}}`` saved atomically with ``torch.save`` and read
with ``torch.load(weights_only=True)``. ``meta`` holds ``game``, ``obs_shape`` (of one frame),
``n_actions``, ``network``, ``mlp_hidden``, ``input_scale``, ``frame_stack``, ``env_step`` and ``config``.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from ..io import safe_load
from ..train.checkpoint import save_atomic
from .networks import build_q_network


def save_policy(path: str | Path, q_net: nn.Module, meta: dict) -> None:
    save_atomic({"q_net": {k: v.detach().cpu() for k, v in q_net.state_dict().items()}, "meta": dict(meta)},
                path)


def load_policy_network(path: str | Path, game_spec=None) -> tuple[nn.Module, dict]:
    """Rebuild the Q-network of a checkpoint; with ``game_spec``, check it fits that game.

    Raises ValueError naming the mismatch (observation shape or action count).
    """
    ckpt = safe_load(path)
    meta = ckpt["meta"]
    frame_shape = tuple(meta["obs_shape"])
    if game_spec is not None:
        if tuple(game_spec.obs_shape) != frame_shape:
            raise ValueError(f"checkpoint {path} is for observations {frame_shape} ({meta['game']}), "
                             f"but {game_spec.game_id} has {tuple(game_spec.obs_shape)}")
        if int(game_spec.n_actions) != int(meta["n_actions"]):
            raise ValueError(f"checkpoint {path} has {meta['n_actions']} actions ({meta['game']}), "
                             f"but {game_spec.game_id} has {game_spec.n_actions}")
    stacked = (frame_shape[0] * int(meta["frame_stack"]), *frame_shape[1:])
    net = build_q_network(meta["network"], stacked, int(meta["n_actions"]), tuple(meta["mlp_hidden"]),
                          float(meta["input_scale"]))
    net.load_state_dict(ckpt["q_net"])
    net.eval()
    return net, meta
