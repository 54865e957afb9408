"""Synthetic metrics.csv folders for the analysis tests (the metrics CSV contract of SPEC.md).

Curves have known shapes: a condition's return rises as ``final * (1 - exp(-env_step / tau))`` with
per-condition ``tau``, so a smaller ``tau`` reaches any threshold earlier by a known factor.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

WM_COLUMNS = ("wm_loss", "wm_image", "wm_reward", "wm_discount", "wm_kl", "wm_prior_entropy",
              "wm_post_entropy")
#: Condition -> time constant (env steps) of its return curve.
TAUS = {"scratch": 4000.0, "finetune": 2000.0, "frozen_rssm": 6000.0, "finetune_agent": 1500.0}
#: Conditions written by default (the three of the default study).
DEFAULT_CONDITIONS = ("scratch", "finetune", "frozen_rssm")
FINAL = 10.0
TRAIN_EVERY = 16


def expected_return(env_step: np.ndarray, condition: str) -> np.ndarray:
    """The noise-free return curve of a condition."""
    return FINAL * (1.0 - np.exp(-np.asarray(env_step, dtype=float) / TAUS[condition]))


def metrics_frame(condition: str, seed: int, budget: int = 20000, noise: float = 0.5, game: str = "g",
                  games: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Wide metrics rows of one run: episode rows and world-model rows interleaved, NaN where unmeasured."""
    rng = np.random.default_rng(seed + 1000 * len(condition))
    rows = []
    step = 0
    while step < budget:
        length = int(rng.integers(50, 150))
        step = min(budget, step + length)
        g = games[int(rng.integers(len(games)))] if games else game
        rows.append({"env_step": step, "update": step // TRAIN_EVERY, "wall_time": step / 100.0,
                     "episode_return": float(expected_return(step, condition)
                                             + noise * rng.standard_normal()),
                     "episode_length": length, "game": g})
    for update in range(0, budget // TRAIN_EVERY + 1, 50):
        decay = np.exp(-update / (TAUS[condition] / TRAIN_EVERY))
        terms = {"wm_image": 5 * decay + 1, "wm_reward": 0.5 * decay + 0.1,
                 "wm_discount": 0.2 * decay + 0.05, "wm_kl": 1.0 + 0.1 * rng.standard_normal(),
                 "wm_prior_entropy": 20.0, "wm_post_entropy": 18.0}
        terms["wm_loss"] = terms["wm_image"] + terms["wm_reward"] + terms["wm_discount"] + terms["wm_kl"]
        rows.append({"env_step": update * TRAIN_EVERY, "update": update, "wall_time": update / 5.0,
                     "actor_loss": float(rng.standard_normal()), **terms})
    rows.append({"env_step": budget, "update": budget // TRAIN_EVERY, "wall_time": budget / 100.0,
                 "eval_return": float(expected_return(budget, condition))})
    df = pd.DataFrame(rows).sort_values(["env_step", "update"], kind="stable")
    return df


def write_study(root: Path, study: str = "demo", targets: tuple[str, ...] = ("minatar-space_invaders",),
                conditions: tuple[str, ...] = DEFAULT_CONDITIONS, seeds: tuple[int, ...] = (0, 1, 2),
                budget: int = 20000) -> list[Path]:
    """Write results/agents/{study}/{target}/{condition}/seed{seed}/metrics.csv files; returns their paths."""
    paths = []
    for target in targets:
        for cond in conditions:
            for seed in seeds:
                folder = root / "results" / "agents" / study / target / cond / f"seed{seed}"
                folder.mkdir(parents=True, exist_ok=True)
                metrics_frame(cond, seed, budget, game=target).to_csv(folder / "metrics.csv", index=False)
                (folder / "summary.json").write_text(json.dumps({"env_steps": budget}))
                paths.append(folder / "metrics.csv")
    return paths


def write_pretrain_summary(root: Path, envset: str = "minatar4", dataset_env_steps: int = 8000) -> Path:
    """A pre-training run's summary.json with its dataset's env steps."""
    folder = root / "results" / "pretrain" / envset / "seed0"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "summary.json"
    path.write_text(json.dumps({"updates": 1000, "env_steps": 0, "dataset_env_steps": dataset_env_steps}))
    return path


def write_baselines(root: Path, game: str, seeds: tuple[int, ...] = (0, 1)) -> list[Path]:
    """DQN metrics.csv per seed (a slow linear curve) and a random-policy returns CSV for ``game``."""
    paths = []
    for seed in seeds:
        folder = root / "results" / "dqn" / game / f"seed{seed}"
        folder.mkdir(parents=True, exist_ok=True)
        steps = np.arange(100, 20001, 100)
        pd.DataFrame({"env_step": steps, "update": steps // 4, "wall_time": steps / 1000.0,
                      "episode_return": steps / 4000.0, "epsilon": 0.1}).to_csv(folder / "metrics.csv",
                                                                                 index=False)
        paths.append(folder / "metrics.csv")
    folder = root / "results" / "baselines" / "random" / game
    folder.mkdir(parents=True, exist_ok=True)
    random_returns = pd.DataFrame({"game": game, "episode": range(4), "episode_return": [0.0, 1.0, 0.0, 1.0],
                                   "episode_length": 10, "env_step": [10, 20, 30, 40]})
    random_returns.to_csv(folder / "returns.csv", index=False)
    paths.append(folder / "returns.csv")
    return paths
