"""Typed budgets of the Dreamer training stages: the study config's ``agent`` and ``pretrain`` sections.

The model's own hyperparameters are :class:`wmtransfer.dreamer.config.DreamerConfig` (its presets);
these dataclasses hold the loop: how many env steps or updates, how often to train, evaluate, log and
checkpoint. Schedule keys left ``None`` take the Dreamer preset's value; the others follow the official
DreamerV2 training script where it has a counterpart (``replay_size`` 2e6, ``time_limit`` 27000 agent
steps, random-policy prefill counted in the budget). Env steps are agent steps (after action repeat).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..conditions import NAMES as CONDITIONS
from ..data.replay import PAST_END

Condition = Literal["scratch", "finetune", "frozen_rssm", "frozen_wm", "finetune_agent"]  # = CONDITIONS


@dataclass
class AgentConfig:
    """Online DreamerV2 training on one game (``train-agent``) or a game set (``pretrain-agent``).

    Attributes:
        condition: what is initialised from ``--init`` and what is trained: ``scratch`` (nothing loaded),
            ``finetune`` (pre-trained world model, fresh actor-critic, all trained), ``frozen_rssm``
            (RSSM fixed), ``frozen_wm`` (only the actor-critic trained), ``finetune_agent`` (world model
            and actor-critic of a multi-task agent, all trained).
        env_steps: total env steps of the run, prefill included (seed 003 §2.3.3).
        prefill: env steps of a uniform random policy that seed the replay before the first update.
        pretrain_updates: updates right after prefill, before acting (DreamerV2 ``pretrain``).
        train_every: env steps between training calls (DreamerV2 ``train_every``).
        train_steps: updates per training call (DreamerV2 ``train_steps``).
        batch: sequences per update (DreamerV2 ``dataset.batch``).
        length: steps per sequence (DreamerV2 ``dataset.length``).

    ``None`` in ``prefill``, ``train_every``, ``train_steps``, ``batch`` and ``length`` means "the value of
    the Dreamer preset" (``DreamerConfig.prefill``, ``train_every``, ``train_steps``, ``batch_size``,
    ``seq_length``), so a study overrides them only where it wants a different budget.
        replay_capacity: most env steps kept in the replay (oldest episodes dropped).
        replay_past_end: what a training sequence holds after its episode's last step: ``"next"`` (the
            next stored episode, as official DreamerV2 chunks) or ``"absorbing"`` (seed 003 §5.2).
        num_envs: parallel games stepped in lockstep; one batched policy call serves them all.
        eval_every: env steps between evaluations (the first at step 0).
        eval_episodes: episodes per evaluation, with the actor's mode (no exploration).
        time_limit: episodes (training and evaluation) are cut after this many env steps, as truncation,
            not termination (official Atari ``time_limit`` 108000 frames = 27000 agent steps; MinAtar games
            have no limit of their own).
        eval_time_limit: evaluation episodes are cut after this many env steps (the return so far
            counts). The actor's mode can hold a game in a loop that never ends (e.g. a paddle that always
            returns the ball without hitting bricks), and one evaluation waits for its longest episode.
        log_every: env steps between rows of averaged losses in metrics.csv.
        checkpoint_every: updates between resumable checkpoints (``ckpt/checkpoint.pt``).
        balance_games: replay draws the game uniformly first (multi-task runs).
    """

    condition: Condition = "scratch"
    env_steps: int = 500_000
    prefill: int | None = None
    pretrain_updates: int = 0
    train_every: int | None = None
    train_steps: int | None = None
    batch: int | None = None
    length: int | None = None
    replay_capacity: int = 2_000_000
    replay_past_end: str = "next"
    num_envs: int = 1
    eval_every: int = 10_000
    eval_episodes: int = 5
    time_limit: int = 27_000
    eval_time_limit: int = 10_000
    log_every: int = 1_000
    checkpoint_every: int = 1_000
    balance_games: bool = False

    def __post_init__(self) -> None:
        if self.condition not in CONDITIONS:
            raise ValueError(f"condition {self.condition!r} is not one of {list(CONDITIONS)}")
        for name in ("env_steps", "train_every", "train_steps", "batch", "length", "num_envs",
                     "eval_every", "log_every", "checkpoint_every", "replay_capacity"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        check_past_end(self.replay_past_end)


def check_past_end(value: str) -> None:
    if value not in PAST_END:
        raise ValueError(f"replay_past_end {value!r} is not one of {list(PAST_END)}")


@dataclass
class PretrainConfig:
    """Offline world-model pre-training on a multi-game dataset (seed 001 §2.4; actor-critic untouched).

    Attributes:
        updates: world-model updates.
        batch: sequences per update (``None``: the Dreamer preset's ``batch_size``).
        length: steps per sequence (``None``: the Dreamer preset's ``seq_length``).
        balance_games: draw the game uniformly before the start step, so every game of the set weighs
            the same whatever its episode lengths.
        replay_past_end: what a sequence holds after its episode's last step (see ``AgentConfig``).
        log_every: updates between rows of averaged losses in metrics.csv.
        checkpoint_every: updates between resumable checkpoints (``ckpt/checkpoint.pt``).
        steps_per_game: transitions taken from every game's dataset, in manifest order (``None``: the
            smallest game's total), so every game of the set contributes the same amount of data.
        snapshot_fractions: fractions of ``updates`` at which a world-model snapshot is kept, as
            ``snapshots/update{N:07d}.pt`` (same format as ``world_model.pt``), for prediction quality
            over training (seed 002); empty: none.
    """

    updates: int = 10_000
    batch: int | None = None
    length: int | None = None
    balance_games: bool = True
    replay_past_end: str = "next"
    log_every: int = 100
    checkpoint_every: int = 1_000
    steps_per_game: int | None = None
    snapshot_fractions: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        for f in self.snapshot_fractions:
            if not 0.0 < f <= 1.0:
                raise ValueError(f"snapshot_fractions: {f} is not in (0, 1]")
        for name in ("updates", "batch", "length", "log_every", "checkpoint_every", "steps_per_game"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        check_past_end(self.replay_past_end)
