"""Pre-training: offline world-model training on a multi-game dataset, and online multi-task agents.

Offline (seed 001 §2.4, ``pretrain-world-model``): the episodes collected from every game of an
environment set (``results/datasets/{game}/``, checked against their manifests) go into one
:class:`~wmtransfer.data.replay.Replay` by :func:`wmtransfer.data.dataset.union_replay` (the same
number of transitions from every game; games drawn uniformly per sequence, so one batch mixes games);
the world model is trained on sampled ``batch x length`` sequences by eq. 3 of seed 003
(``Dreamer.train_world_model``); the actor-critic is never updated. The result is ``world_model.pt``.

Online (seed 003 §2.1.3, ``pretrain-agent``): a full agent trained by the online loop of
:mod:`wmtransfer.train.agent` on the set's games, one game drawn uniformly per episode. The result is
``agent.pt`` (the ``finetune_agent`` condition starts from it).

Resume: the offline run checkpoints model, optimisers, the replay's sampling generator and every RNG
every ``checkpoint_every`` updates; the dataset itself is re-read (it is deterministic), so the
checkpoint stays small.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..config import to_dict
from ..data.dataset import union_replay
from . import checkpoint as ckpt_io
from .agent import (
    guarded,
    resolve_device,
    seed_everything,
    suite_spec,
    train_agent,
)
from .config import AgentConfig, PretrainConfig
from .run import Progress, RunFolder


def pretrain_world_model(envset: str, game_ids: Sequence[str], dataset_dirs: Sequence[str | Path],
                         seed: int, out: str | Path, cfg: PretrainConfig, dreamer_cfg,
                         device: str = "cpu") -> dict[str, Any]:
    """Train a world model offline on the datasets of ``game_ids``; writes ``config.json``,
    ``metrics.csv``, ``ckpt/checkpoint.pt``, ``summary.json`` and last ``world_model.pt``."""
    from ..dreamer.agent import Dreamer

    device = resolve_device(device)
    out = Path(out)
    game_ids = list(game_ids)
    spec = suite_spec(game_ids)
    batch = dreamer_cfg.batch_size if cfg.batch is None else cfg.batch
    length = dreamer_cfg.seq_length if cfg.length is None else cfg.length
    config = {"envset": envset, "games": game_ids, "datasets": [str(d) for d in dataset_dirs], "seed": seed,
              "pretrain": to_dict(cfg), "dreamer": to_dict(dreamer_cfg), "batch": batch, "length": length}
    run = RunFolder(out, config)
    saved = run.resume()

    seed_everything(seed)
    replay, data_steps = union_replay(dataset_dirs, cfg.steps_per_game, seed=seed + 1,
                                      past_end=cfg.replay_past_end)
    replay.balance_games = cfg.balance_games
    if sorted(data_steps) != sorted(game_ids):
        raise ValueError(f"the datasets {list(map(str, dataset_dirs))} hold the games {sorted(data_steps)}, "
                         f"but the environment set {envset!r} is {sorted(game_ids)}")
    agent = Dreamer(dreamer_cfg, spec.obs_shape, spec.n_actions, device=device)
    agent.set_condition("scratch")
    loop: dict[str, Any] = {"updates": 0, "pending": {}}
    if saved is not None:
        agent.restore(saved["agent"])
        replay.rng.bit_generator.state = json.loads(saved["replay_rng"])
        ckpt_io.set_rng_state(saved["rng"])
        loop.update(saved["loop"])
        print(f"update {loop['updates']}", file=sys.stderr)
    metrics = run.metrics()
    pending: defaultdict[str, list[float]] = defaultdict(list)
    pending.update({k: list(v) for k, v in loop["pending"].items()})
    progress = Progress(cfg.updates, loop["updates"], "updates", f"{envset} seed {seed}")
    snapshots = snapshot_updates(cfg)

    def save_checkpoint() -> None:
        loop["pending"] = {k: list(v) for k, v in pending.items()}
        run.save({"agent": agent.checkpoint(), "rng": ckpt_io.rng_state(),
                  "replay_rng": json.dumps(replay.rng.bit_generator.state), "loop": dict(loop)})

    meta = dict(kind="world_model", games=game_ids, envset=envset, seed=seed)
    while loop["updates"] < cfg.updates:
        values = guarded(agent.train_world_model, replay.sample(batch, length), loop["updates"] + 1, 0)
        loop["updates"] += 1
        for k, v in values.items():
            pending[k].append(float(v))
        if loop["updates"] % cfg.log_every == 0 or loop["updates"] == cfg.updates:
            metrics.write(0, loop["updates"], run.wall(), {k: float(np.mean(v)) for k, v in pending.items()})
            pending.clear()
        if loop["updates"] in snapshots:
            # atomic; written before the checkpoint that counts this update, so a resume never skips one
            agent.save(run.partial / snapshot_name(loop["updates"]), **meta, updates=int(loop["updates"]))
        if loop["updates"] % cfg.checkpoint_every == 0 or loop["updates"] == cfg.updates:
            save_checkpoint()
        progress.update(loop["updates"], image=values["wm_image"])
    progress.close()
    summary = {"envset": envset, "games": game_ids, "seed": seed, "updates": int(loop["updates"]),
               "env_steps": 0, "dataset_env_steps": int(sum(data_steps.values())),
               "dataset_env_steps_per_game": data_steps, "dataset_episodes": replay.num_episodes,
               "snapshots": [snapshot_name(u) for u in sorted(snapshots)]}
    run.promote(snapshot_name(u) for u in sorted(snapshots))
    # The whole agent file (its actor-critic untrained); load_world_model_from reads its world model.
    return run.finish(summary, {"world_model.pt": lambda p: agent.save(
        p, **meta, updates=int(loop["updates"]), dataset_env_steps=summary["dataset_env_steps"])})


def snapshot_updates(cfg: PretrainConfig) -> set[int]:
    """Updates at which a world-model snapshot is kept (``snapshot_fractions`` of ``updates``)."""
    return {max(1, round(f * cfg.updates)) for f in cfg.snapshot_fractions}


def snapshot_name(update: int) -> str:
    return f"snapshots/update{int(update):07d}.pt"


def pretrain_agent(envset: str, game_ids: Sequence[str], seed: int, out: str | Path, cfg: AgentConfig,
                   dreamer_cfg, device: str = "cpu", game_settings: dict[str, Any] | None = None
                   ) -> dict[str, Any]:
    """Online multi-task training of a full agent on ``game_ids`` (one game per episode); ``agent.pt``."""
    if cfg.condition != "scratch":
        raise ValueError(f"multi-task pre-training starts from scratch, not {cfg.condition!r}")
    summary = train_agent(game_ids, seed, out, cfg, dreamer_cfg, device=device, final_name="agent.pt",
                          game_settings=game_settings)
    summary["envset"] = envset
    return summary
