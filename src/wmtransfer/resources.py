"""Cluster resources of each training job (SLURM ``runtime`` minutes and ``mem_mb``) from the study budgets.

Estimates, deliberately generous (a job killed at its time limit resumes, but waits in the queue again):

* memory: the replay (``min(replay_capacity, env steps)`` uint8 observations; a 2M-step 64x64 replay is
  about 8.2 GB) plus 3 GB for the process, the model and batches;
* runtime: updates x seconds per update on one GPU (measured or read from the official reports: MinAtar
  presets ~0.05 s, Atari/Mario ~0.3 s per 16 x 50 update) x 3, plus acting at 2 ms per env step, at
  least 30 minutes. On a CPU-only cluster scale with ``--set-resources`` or the study's
  ``slurm.time_factor``.

The rules read these through ``rules/common.smk``; ``snakemake --profile profiles/slurm`` passes them to
the executor plugin, and the profile retries a failed job twice (each retry resumes the run).
"""

from __future__ import annotations

import math
from typing import Any

from .dreamer.config import DreamerConfig
from .games import spec

#: Seconds per update on one GPU by image size (batch x length scales it linearly from 16 x 50).
GPU_SECONDS_PER_UPDATE = {"small": 0.05, "image": 0.3}
BASE_MB = 3000
SAFETY = 3.0
ACT_SECONDS_PER_STEP = 0.002


def _obs_bytes(game_ids: list[str]) -> int:
    return max(math.prod(spec(g).obs_shape) for g in game_ids)


def _update_seconds(dreamer: DreamerConfig, game_ids: list[str], batch: int, length: int) -> float:
    kind = "small" if max(spec(g).obs_shape[-1] for g in game_ids) <= 16 else "image"  # MinAtar 10x10
    return GPU_SECONDS_PER_UPDATE[kind] * batch * length / (16 * 50)


def agent_job(config: dict[str, Any], game_ids: list[str], section: dict[str, Any],
              dreamer: DreamerConfig) -> dict[str, int]:
    """``{"runtime": minutes, "mem_mb": MB}`` of an online run (train-agent or pretrain-agent)."""
    steps = int(section["env_steps"])
    every = section.get("train_every") or dreamer.train_every
    n_updates = steps / every * (section.get("train_steps") or dreamer.train_steps)
    batch = section.get("batch") or dreamer.batch_size
    length = section.get("length") or dreamer.seq_length
    replay = min(int(section.get("replay_capacity", 2_000_000)), steps) * _obs_bytes(game_ids)
    seconds = SAFETY * (n_updates * _update_seconds(dreamer, game_ids, batch, length)
                        + steps * ACT_SECONDS_PER_STEP)
    return _job(config, seconds, replay)


def pretrain_job(config: dict[str, Any], game_ids: list[str], section: dict[str, Any],
                 dreamer: DreamerConfig, dataset_steps: int) -> dict[str, int]:
    """Offline world-model pre-training: the datasets of the set in memory, ``updates`` updates."""
    batch = section.get("batch") or dreamer.batch_size
    length = section.get("length") or dreamer.seq_length
    seconds = SAFETY * int(section["updates"]) * _update_seconds(dreamer, game_ids, batch, length)
    return _job(config, seconds, dataset_steps * _obs_bytes(game_ids))


def dqn_gpu(game_id: str) -> int:
    """GPU slots (the ``gpu`` resource) of a DQN job: 1 for image games (Atari, Mario, procgen: the Nature
    conv net, whose 32 x 84 x 84 batches pay on a GPU), 0 for MinAtar (a 3-layer MLP or a small conv net
    on 10 x 10 grids, where a GPU's per-call latency exceeds the CPU's compute; it stays on CPU)."""
    return 0 if spec(game_id).suite == "minatar" else 1


def dqn_job(config: dict[str, Any], game_id: str, section: dict[str, Any]) -> dict[str, int]:
    steps = int(section["total_steps"])
    # obs and next obs, 4 stacked frames each
    replay = 2 * min(int(section["replay_capacity"]), steps) * _obs_bytes([game_id]) * 4
    return _job(config, SAFETY * steps * 0.004, replay)


def _job(config: dict[str, Any], seconds: float, data_bytes: float) -> dict[str, int]:
    factor = float((config.get("slurm") or {}).get("time_factor", 1.0))
    return {"runtime": max(30, math.ceil(seconds * factor / 60)),
            "mem_mb": BASE_MB + math.ceil(data_bytes * 1.1 / 2**20)}
