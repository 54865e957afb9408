"""The DQN training loop of rule ``train_dqn``: one game, one seed, checkpoints from weak to strong play.

Per env step t (Mnih et al. 2015, Algorithm 1, with the MinAtar paper's settings):

1. a_t = epsilon_t-greedy(Q(s_t)), epsilon_t annealed linearly (``linear_epsilon``);
2. store (s_t, a_t, r_t, terminal_t, s_{t+1}) in the replay buffer;
3. from ``learning_starts`` on, every ``train_every`` steps: one minibatch step on the Huber loss
   between Q(s, a) and y = r + gamma (1 - terminal) max_a' Q_target(s', a');
4. every ``target_update_every`` steps: Q_target <- Q.

Outputs in ``out`` (``results/dqn/{game}/seed{seed}/``): ``checkpoints/step{N}.pt`` for every N in
``checkpoint_steps``, ``metrics.csv`` (tidy; episode rows and loss rows), ``config.json``,
``summary.json`` (written last). The run folder is a :class:`~wmtransfer.train.run.RunFolder`: while the
run is going these live in ``partial/`` and are linked into place only when it completes, so a declared
output never looks complete early (and Snakemake, which deletes a job's declared outputs before
rerunning it, cannot delete what a resume needs). ``ckpt/checkpoint.pt`` (network, target, optimiser,
replay, RNG, counters) is saved every ``save_every`` steps; rerunning the same command resumes from it.
A resumed run starts a fresh episode at the resume step (the emulator state is not saved), so it is
reproducible but not bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from .. import games
from ..config import to_dict
from ..dqn.agent import DQNAgent, resolve_frame_stack, resolve_network
from ..dqn.checkpoint import save_policy
from ..dqn.config import DQNConfig
from ..dqn.frames import FrameStack
from ..dqn.losses import linear_epsilon
from ..dqn.replay import TransitionReplay
from . import checkpoint as ckpt_io
from .run import Progress, RunFolder


def checkpoint_path(out: str | Path, step: int) -> Path:
    """Where the policy checkpoint of ``step`` ends up."""
    return Path(out) / "checkpoints" / f"step{int(step)}.pt"


def train_dqn(game_id: str, seed: int, out: str | Path, cfg: DQNConfig | None = None,
              progress: bool = False, step_budget: int | None = None, device: str = "cpu") -> dict | None:
    """Train a DQN on ``game_id``; returns the summary written to ``summary.json``.

    ``step_budget`` limits the env steps of this call (e.g. a wall-time-limited cluster job): when it is
    spent before ``total_steps``, the resumable state is saved and ``None`` returned; call again to go on.
    ``progress`` is accepted for compatibility: the run always reports progress (a bar on a terminal, a
    line a minute in a log).
    """
    cfg = cfg or DQNConfig()
    cfg.validate()
    out = Path(out)
    spec = games.spec(game_id)
    network = resolve_network(cfg, spec.suite)
    k = resolve_frame_stack(cfg, spec.suite)
    input_scale = 1.0 if spec.suite == "minatar" else 255.0
    stacked_shape = (spec.obs_shape[0] * k, *spec.obs_shape[1:])
    run = RunFolder(out, {"game": game_id, "seed": seed, "network": network, "frame_stack": k,
                          "dqn": to_dict(cfg)}, may_change=("total_steps", "checkpoint_steps"))
    saved = run.resume()

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    agent = DQNAgent(cfg, stacked_shape, spec.n_actions, network, input_scale, device=device)
    replay = TransitionReplay(cfg.replay_capacity, stacked_shape)
    meta = {"game": game_id, "obs_shape": list(spec.obs_shape), "n_actions": spec.n_actions,
            "network": network, "mlp_hidden": list(cfg.mlp_hidden), "input_scale": input_scale,
            "frame_stack": k, "seed": seed, "config": to_dict(cfg)}

    step, episodes, recent = 0, 0, []
    if saved is not None:
        agent.load_state_dict(saved["agent"])
        replay.load_state_dict(saved["replay"])
        ckpt_io.set_rng_state(saved["rng"], {"rng": rng})
        step, episodes, recent = int(saved["env_step"]), int(saved["episodes"]), list(saved["recent_returns"])
        print(f"{game_id} seed {seed}: env step {step}", file=sys.stderr)
    metrics = run.metrics()
    bar = Progress(cfg.total_steps, step, "env steps", f"DQN {game_id} seed {seed}")

    env = games.make(game_id, seed=seed + step)  # a resumed run starts a new, seeded episode
    stack = FrameStack(k)
    obs = stack.reset(env.reset()[0])
    ep_return, ep_length, loss_sum, loss_n = 0.0, 0, 0.0, 0
    checkpoints = set(cfg.checkpoint_steps)
    stop_at = cfg.total_steps if step_budget is None else min(cfg.total_steps, step + step_budget)

    def save_state() -> None:
        run.save({"agent": agent.state_dict(), "replay": replay.state_dict(),
                  "rng": ckpt_io.rng_state({"rng": rng}), "env_step": step, "episodes": episodes,
                  "recent_returns": recent})

    while step < stop_at:
        eps = linear_epsilon(step, cfg.eps_start, cfg.eps_end, cfg.eps_decay_steps)
        action = agent.act(obs, eps, rng)
        frame, reward, terminated, truncated, _ = env.step(action)
        next_obs = stack.step(frame)
        replay.add(obs, action, reward, terminated, next_obs)
        obs = next_obs
        ep_return += reward
        ep_length += 1
        step += 1

        if terminated or truncated:
            episodes += 1
            recent = (recent + [ep_return])[-100:]
            metrics.write(step, agent.updates, run.wall(), {"episode_return": ep_return,
                                                             "episode_length": ep_length, "game": game_id,
                                                             "epsilon": eps})
            obs = stack.reset(env.reset()[0])
            ep_return, ep_length = 0.0, 0
        if step >= cfg.learning_starts and step % cfg.train_every == 0 and len(replay) >= cfg.batch_size:
            loss_sum += agent.update(replay.sample(cfg.batch_size, rng))
            loss_n += 1
        if step % cfg.target_update_every == 0:
            agent.sync_target()
        if step % cfg.log_every == 0 and loss_n:
            metrics.write(step, agent.updates, run.wall(), {"loss": loss_sum / loss_n, "epsilon": eps})
            loss_sum, loss_n = 0.0, 0
        if step in checkpoints:  # atomic, in partial/ until the run completes
            save_policy(checkpoint_path(run.partial, step), agent.q, {**meta, "env_step": step})
        if cfg.save_every and step % cfg.save_every == 0 and step < cfg.total_steps:
            save_state()
        bar.update(step, ret=float(np.mean(recent[-10:])) if recent else None)
    bar.close()
    env.close()
    if step < cfg.total_steps:
        save_state()
        print(f"stopped at env step {step} of {cfg.total_steps}; rerun to resume", file=sys.stderr)
        return None
    save_state()  # the final state: a rerun of a run killed while finishing has nothing left to train
    summary = {"game": game_id, "seed": seed, "env_steps": step, "updates": agent.updates,
               "episodes": episodes, "final_return": float(np.mean(recent)) if recent else None,
               "final_return_episodes": len(recent),
               "checkpoints": [str(checkpoint_path(out, s).relative_to(out)) for s in sorted(checkpoints)]}
    run.promote(str(checkpoint_path(".", s)) for s in sorted(checkpoints))
    return run.finish(summary)
