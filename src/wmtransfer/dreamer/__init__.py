"""DreamerV2 (Hafner et al. 2021): world model, actor-critic, agent.

Public API (documented in docs/dreamer.md): :class:`DreamerConfig` (with ``DreamerConfig.preset``) and
:class:`Dreamer` (``init_state``, ``policy``, ``train_step``, ``train_world_model``, ``set_condition``,
``load_world_model_from``, ``load_agent_from``, ``checkpoint``, ``restore``, ``save``, ``Dreamer.load``).
"""

from .agent import CONDITIONS, CheckpointMismatch, Dreamer
from .config import PRESETS, DreamerConfig

__all__ = ["CONDITIONS", "PRESETS", "CheckpointMismatch", "Dreamer", "DreamerConfig"]
