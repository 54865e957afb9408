"""Dataset collection of rule ``collect_dataset`` (seed 001 §2.4-2.5): random play, then DQN checkpoints.

The collector plays one game for ``random_steps + policy_steps`` env steps. The first ``random_steps``
are acted by the uniform random policy; from then on one of the given DQN checkpoints acts greedily
(with probability ``epsilon`` a uniform random action instead), and every ``switch_every`` env steps a
seeded RNG switches to another checkpoint (uniformly among the others). Switches count env steps, not
wall-clock time and not episodes, so a rerun gives the same files, and a switch may fall mid-episode.
Every step records the policy that chose its action (``random`` or ``dqn@<step>``; epsilon noise
belongs to the acting policy).

Episodes stream to ``out/episodes/ep{index:06d}.npz`` as they end, so memory holds one episode at a
time (episodes are cut at ``max_episode_steps``; the last one is cut at the budget). ``summary.json``
and finally ``manifest.csv`` are written at the end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import games
from ..config import ConfigError, to_dict
from ..data.episodes import manifest_row, write_episode, write_manifest
from ..io import write_json


@dataclass
class DatasetConfig:
    """The ``dataset`` section: how much data per game and which policies produce it."""

    #: Env steps acted by the uniform random policy at the start of collection.
    random_steps: int = 50_000
    #: Env steps acted by the DQN checkpoints after the random phase.
    policy_steps: int = 200_000
    #: K: env steps between switches to another checkpoint (seeded RNG).
    switch_every: int = 1000
    #: Probability of a uniform random action while a checkpoint acts (epsilon noise).
    epsilon: float = 0.05
    #: Episodes are cut (truncated, not terminal) after this many env steps; 0 = never.
    max_episode_steps: int = 10_000
    #: Seed of the game, the action noise and the switching RNG.
    seed: int = 0
    #: Which DQN seed's checkpoints (results/dqn/{game}/seed{dqn_seed}/) act.
    dqn_seed: int = 0
    #: External atari-agents checkpoints (gzipped .gz files) per game id, used instead of our DQN runs.
    atari_agents: dict[str, list[str]] = field(default_factory=dict)

    def validate(self) -> None:
        for key in ("random_steps", "policy_steps", "max_episode_steps", "seed", "dqn_seed"):
            if getattr(self, key) < 0:
                raise ConfigError(f"dataset.{key} must be >= 0, got {getattr(self, key)}")
        if self.switch_every <= 0:
            raise ConfigError(f"dataset.switch_every must be positive, got {self.switch_every}")
        if not 0.0 <= self.epsilon <= 1.0:
            raise ConfigError(f"dataset.epsilon must lie in [0, 1], got {self.epsilon}")
        if self.random_steps + self.policy_steps <= 0:
            raise ConfigError("dataset.random_steps + dataset.policy_steps must be positive")


def policy_checkpoints(study: dict, game_id: str) -> list[str]:
    """The checkpoint files that act in ``game_id``'s dataset, from a (validated) study config: the
    ``dataset.atari_agents`` files named for that game, else the checkpoints of the game's own DQN run
    (``results/dqn/{game}/seed{dqn_seed}/checkpoints/step{N}.pt``); none without a policy phase."""
    ds = study["dataset"]
    if ds["policy_steps"] == 0:
        return []
    if game_id in ds["atari_agents"]:
        return [str(p) for p in ds["atari_agents"][game_id]]
    return [f"results/dqn/{game_id}/seed{ds['dqn_seed']}/checkpoints/step{int(s)}.pt"
            for s in study["dqn"]["checkpoint_steps"]]


def load_policies(game_id: str, checkpoints: list[str | Path]) -> list:
    """Behaviour policies from checkpoint files: our DQN ``.pt`` files or atari-agents ``.gz`` files,
    sorted by name so the policy table is the same whatever order the files were given in."""
    from ..dqn.atari_agents import load_atari_agents_policy
    from ..dqn.policies import load_dqn_policy

    spec = games.spec(game_id)
    pols = []
    for path in checkpoints:
        path = Path(path)
        pols.append(load_atari_agents_policy(path, game_id) if path.suffix == ".gz"
                    else load_dqn_policy(path, spec))
    pols.sort(key=lambda p: (p.name.partition("@")[0], int(p.name.partition("@")[2])
                             if p.name.partition("@")[2].isdigit() else 0, p.name))
    names = [p.name for p in pols]
    if len(set(names)) != len(names):
        raise ValueError(f"two checkpoints of {game_id} share a policy name: {names}")
    return pols


class _EpisodeBuffer:
    """The steps of the episode being played (the only data held in memory)."""

    def __init__(self, obs: np.ndarray):
        self.obs, self.action, self.reward, self.policy = [obs], [0], [0.0], [-1]

    def add(self, obs: np.ndarray, action: int, reward: float, policy: int) -> None:
        self.obs.append(obs)
        self.action.append(action)
        self.reward.append(reward)
        self.policy.append(policy)

    def __len__(self) -> int:
        return len(self.obs) - 1  # transitions

    def to_episode(self, terminal: bool, policy_names: list[str], game_id: str) -> dict[str, np.ndarray]:
        n = len(self.obs)
        flags = np.zeros(n, dtype=bool)
        return {
            "obs": np.stack(self.obs).astype(np.uint8), "action": np.asarray(self.action, np.int16),
            "reward": np.asarray(self.reward, np.float32),
            "is_first": np.r_[True, flags[1:]], "is_last": np.r_[flags[:-1], True],
            "is_terminal": np.r_[flags[:-1], bool(terminal)], "policy": np.asarray(self.policy, np.int16),
            "policy_names": np.asarray(policy_names, dtype=np.str_),
            "game": np.asarray(game_id, dtype=np.str_),
        }


def collect_dataset(game_id: str, out: str | Path, cfg: DatasetConfig | None = None,
                    checkpoints: list[str | Path] | None = None, progress: bool = False) -> dict:
    """Collect one game's dataset into ``out``; returns the summary written to ``summary.json``."""
    from ..dqn.policies import RandomPolicy

    cfg = cfg or DatasetConfig()
    cfg.validate()
    out = Path(out)
    ep_dir = out / "episodes"
    ep_dir.mkdir(parents=True, exist_ok=True)
    for stale in [*ep_dir.glob("ep*.npz"), out / "manifest.csv"]:
        stale.unlink(missing_ok=True)

    spec = games.spec(game_id)
    dqn = load_policies(game_id, checkpoints or [])
    if cfg.policy_steps > 0 and not dqn:
        raise ValueError(f"dataset.policy_steps={cfg.policy_steps} but no DQN checkpoint of {game_id} "
                         "was given")
    policies = [RandomPolicy(spec.n_actions), *dqn]
    names = [p.name for p in policies]
    env = games.make(game_id, seed=cfg.seed)
    act_rng = np.random.default_rng([cfg.seed, 1])
    switch_rng = np.random.default_rng([cfg.seed, 2])

    def start_episode() -> _EpisodeBuffer:
        obs, _ = env.reset()
        for p in policies:
            p.reset(obs)
        return _EpisodeBuffer(obs)

    total = cfg.random_steps + cfg.policy_steps
    rows, steps_by_policy = [], dict.fromkeys(names, 0)
    current, step, started = 0, 0, time.perf_counter()
    buf = start_episode()

    def finish(terminal: bool) -> None:
        ep = buf.to_episode(terminal, names, game_id)
        name = f"ep{len(rows):06d}.npz"
        sha = write_episode(ep_dir / name, ep)
        rows.append(manifest_row(f"episodes/{name}", ep, sha))

    while step < total:
        if step >= cfg.random_steps and (step - cfg.random_steps) % cfg.switch_every == 0:
            if current == 0 or len(dqn) == 1:
                current = 1 + int(switch_rng.integers(len(dqn)))
            else:  # another checkpoint, uniformly among the others
                others = [i for i in range(1, len(policies)) if i != current]
                current = others[int(switch_rng.integers(len(others)))]
        action = policies[current].act(act_rng)
        if current > 0 and act_rng.random() < cfg.epsilon:
            action = int(act_rng.integers(spec.n_actions))
        obs, reward, terminated, truncated, _ = env.step(action)
        step += 1
        steps_by_policy[names[current]] += 1
        buf.add(obs, action, float(reward), current)
        for p in policies:
            p.observe(obs)
        cut = cfg.max_episode_steps and len(buf) >= cfg.max_episode_steps
        if terminated or truncated or cut or step == total:
            finish(bool(terminated))
            if step < total:
                buf = start_episode()
        if progress and step % 10_000 == 0:
            print(f"{game_id}: {step}/{total} steps, {len(rows)} episodes", flush=True)
    env.close()

    summary = {"game": game_id, "env_steps": step, "episodes": len(rows), "policy_names": names,
               "steps_by_policy": steps_by_policy, "wall_time": round(time.perf_counter() - started, 3),
               "config": to_dict(cfg), "checkpoints": [str(c) for c in (checkpoints or [])]}
    write_json(out / "summary.json", summary)
    write_manifest(out / "manifest.csv", rows)
    return summary
