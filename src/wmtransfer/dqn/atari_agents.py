"""Externally trained Atari DQN/C51 checkpoints of the atari-agents collection (Gogianu et al. 2022).

Format: a gzip-compressed ``torch.save`` dict whose ``estimator_state`` holds the weights of their
``AtariNet`` - the Nature DQN conv net on 4 stacked 84x84 uint8 frames divided by 255, with an output
of ``n_actions`` Q-values, or for C51 ``n_actions x 51`` logits over atoms on [-10, 10] (key
``_AtariNet__support``). Actions index the game's *minimal* ALE action set. Files are read from a path
given in the config; nothing is downloaded.

Our Atari frames are 64x64 grayscale; they are resized to 84x84 (bilinear) before stacking, which is
close to, but not identical with, the 84x84 INTER_AREA frames the agents were trained on.
"""

from __future__ import annotations

import gzip
import io
import re
from pathlib import Path

import numpy as np
import torch

from ..io import safe_load
from .networks import NatureQNet
from .policies import GreedyQPolicy

ATOMS, V_MIN, V_MAX = 51, -10.0, 10.0
_PREFIX = "_AtariNet__"
_KEY_MAP = {"features.0": "features.0", "features.2": "features.2", "features.4": "features.4",
            "head.0": "dense.0", "head.2": "head.linear"}


def read_atari_agents_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The ``estimator_state`` of a gzipped atari-agents checkpoint (loaded with weights_only=True)."""
    path = Path(path)
    try:
        with gzip.open(path, "rb") as f:
            ckpt = safe_load(io.BytesIO(f.read()), name=str(path))
    except (OSError, EOFError, RuntimeError) as e:
        raise ValueError(f"{path}: not a readable gzipped torch checkpoint ({e})") from e
    if not isinstance(ckpt, dict) or "estimator_state" not in ckpt:
        raise ValueError(f"{path}: no 'estimator_state' in the checkpoint (keys: {list(ckpt)[:10]})")
    return ckpt["estimator_state"]


def atari_agents_network(state: dict[str, torch.Tensor]) -> tuple[NatureQNet, int, bool]:
    """A :class:`NatureQNet` on (4, 84, 84) carrying the checkpoint's weights; also its action count and
    whether it is the C51 variant."""
    c51 = f"{_PREFIX}support" in state
    n_out = state[f"{_PREFIX}head.2.weight"].shape[0]
    n_actions = n_out // ATOMS if c51 else n_out
    net = NatureQNet((4, 84, 84), n_actions, atoms=ATOMS if c51 else 1, v_min=V_MIN, v_max=V_MAX)
    mapped = {}
    for key, value in state.items():
        name = key.removeprefix(_PREFIX)
        if name == "support":
            mapped["head.support"] = value
            continue
        module, _, param = name.rpartition(".")
        if module not in _KEY_MAP:
            raise ValueError(f"unexpected key {key!r} in an atari-agents estimator_state")
        mapped[f"{_KEY_MAP[module]}.{param}"] = value
    net.load_state_dict(mapped)
    net.eval()
    return net, n_actions, c51


def minimal_action_set(ale_name: str) -> list[int]:
    """The ALE minimal action set of a game as indices into the full 18-action set."""
    import ale_py

    ale = ale_py.ALEInterface()
    ale.setLoggerMode(ale_py.LoggerMode.Error)
    ale.loadROM(ale_py.roms.get_rom_path(ale_name))
    # ale-py >= 0.9 returns ale_py.Action enum members (int() of one is a TypeError); older, plain ints
    return [int(getattr(a, "value", a)) for a in ale.getMinimalActionSet()]


def _resize_to_84(frame: np.ndarray) -> np.ndarray:
    import cv2

    if frame.shape[-2:] == (84, 84):
        return frame
    return cv2.resize(frame[0], (84, 84), interpolation=cv2.INTER_LINEAR)[None]


def load_atari_agents_policy(path: str | Path, game_id: str | None = None,
                             action_map: list[int] | None = None,
                             full_action_count: int = 18) -> GreedyQPolicy:
    """A greedy policy of an atari-agents checkpoint acting in one of our Atari games.

    ``action_map`` maps network outputs to our (full) action set; by default identity when the network
    has ``full_action_count`` outputs, else the minimal action set of ``game_id`` (``atari-<ale name>``).
    The policy is named ``c51@<n>`` or ``dqn@<n>`` from the digits of the file name (e.g.
    ``model_50000000.gz`` -> ``dqn@50000000``), else after the file name.
    """
    path = Path(path)
    net, n_actions, c51 = atari_agents_network(read_atari_agents_state(path))
    if action_map is None and n_actions != full_action_count:
        if game_id is None:
            raise ValueError(f"{path}: {n_actions} actions (a minimal action set); "
                             "pass game_id or action_map")
        action_map = minimal_action_set(game_id.partition("-")[2])
    if action_map is not None and len(action_map) != n_actions:
        raise ValueError(f"{path}: network has {n_actions} actions but the action map has {len(action_map)}")
    digits = re.findall(r"\d+", path.name.split(".")[0])
    name = f"{'c51' if c51 else 'dqn'}@{digits[-1]}" if digits else f"ext@{path.name}"
    return GreedyQPolicy(name, net, 4, preprocess=_resize_to_84, action_map=action_map)
