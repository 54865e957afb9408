"""Online DreamerV2 training: act, store, train (seed 003 §2.3.3, official ``dreamerv2/train.py``).

One loop serves a single game (``train-agent``, every condition) and a game set (``pretrain-agent``,
online multi-task training, one game drawn uniformly per episode, seed 003 §2.1.3):

1. **Prefill**: ``prefill`` env steps of a uniform random policy seed the replay (counted in the budget
   ``env_steps``), continued until at least one episode has ended (official ``steps=prefill,
   episodes=1``: only finished episodes are sampled); then ``pretrain_updates`` updates.
2. **Act / store / train**: ``num_envs`` games step in lockstep with one batched policy call
   (``Dreamer.policy``, the sampled actor explores); every step is streamed into the replay; every
   ``train_every`` env steps ``train_steps`` updates run, each on a fresh ``batch x length`` sample:
   world model (eq. 3), then actor and critic on imagined trajectories (``Dreamer.train_step``).
3. **Evaluate** every ``eval_every`` env steps (and at step 0): ``eval_episodes`` episodes with the
   actor's mode on fresh games.
4. **Log** episode returns at every episode end and averaged losses every ``log_every`` env steps to
   ``metrics.csv``; **checkpoint** every ``checkpoint_every`` updates to ``ckpt/checkpoint.pt``.

Resume: a run whose folder holds a checkpoint continues from it (model, optimisers, replay, every RNG,
counters, wall time); ``metrics.csv`` is cut back to the rows the checkpoint knew, so the curve has
neither repeated nor missing steps. Game states are not checkpointed: the episodes running at the
checkpoint are closed in the replay as truncated, and the games restart with seeds drawn from the
restored loop generator (each episode's reset seed comes from that generator, so the game RNG is
part of the checkpoint).

Non-finite losses stop the run with :class:`NonFiniteLossError` naming the update, env step and term.
"""

from __future__ import annotations

import dataclasses
import math
import random
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from .. import games
from ..config import to_dict
from ..data.replay import Replay
from ..dreamer.probe import warn_if_collapsed
from ..io import safe_load
from . import checkpoint as ckpt_io
from .config import AgentConfig
from .run import Every, Progress, RunFolder


class NonFiniteLossError(RuntimeError):
    """A loss or metric became NaN/inf; the message names the update, env step and term."""


def check_finite(metrics: dict[str, float], update: int, env_step: int) -> None:
    """Raise :class:`NonFiniteLossError` on the first non-finite value of ``metrics``."""
    for key, value in metrics.items():
        if not math.isfinite(float(value)):
            raise NonFiniteLossError(
                f"non-finite {key} = {value}; loop update {update}, env step {env_step}: training stopped")


def guarded(train: Any, batch: dict[str, np.ndarray], update: int, env_step: int) -> dict[str, float]:
    """``train(batch)`` whose non-finite losses raise :class:`NonFiniteLossError` with the env step."""
    try:
        values = train(batch)
    except FloatingPointError as e:  # the model's own check, before the optimiser step
        raise NonFiniteLossError(f"{e} (model counter); loop update {update}, env step {env_step}: "
                                 "training stopped") from e
    check_finite(values, update, env_step)
    warn_if_collapsed(values, f"loop update {update}, env step {env_step}", update)
    return values


def resolve(cfg: AgentConfig, dreamer_cfg) -> AgentConfig:
    """``cfg`` with its ``None`` schedule fields taken from the Dreamer preset."""
    return dataclasses.replace(
        cfg,
        prefill=dreamer_cfg.prefill if cfg.prefill is None else cfg.prefill,
        train_every=dreamer_cfg.train_every if cfg.train_every is None else cfg.train_every,
        train_steps=dreamer_cfg.train_steps if cfg.train_steps is None else cfg.train_steps,
        batch=dreamer_cfg.batch_size if cfg.batch is None else cfg.batch,
        length=dreamer_cfg.seq_length if cfg.length is None else cfg.length,
    )


def resolve_device(device: str) -> str:
    """``auto`` is ``cuda`` when a GPU is visible, else ``cpu``; anything else is kept."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def seed_everything(seed: int) -> None:
    """Seed torch, numpy's global RNG and Python's ``random`` from the run's seed."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - libraries may draw from the global RNG
    random.seed(seed)


def make_game(game_ids: Sequence[str], seed: int, settings: dict[str, Any] | None = None) -> gym.Env:
    """One game, or a multi-game env (one game drawn uniformly per episode) for a set; ``settings`` are
    game keyword arguments (e.g. ``action_repeat``, ``sticky_action_prob``)."""
    if len(game_ids) == 1:
        return games.make(game_ids[0], seed=seed, **(settings or {}))
    return games.make_multi(list(game_ids), seed=seed, **(settings or {}))


def suite_spec(game_ids: Sequence[str], settings: dict[str, Any] | None = None) -> games.GameSpec:
    """The shared spec of a game set (one suite: same observation shape and action count) under the
    run's game ``settings``."""
    games.check_shared_actions(game_ids, settings)
    specs = [games.spec(g, settings) for g in game_ids]
    for s in specs[1:]:
        if (s.obs_shape, s.n_actions) != (specs[0].obs_shape, specs[0].n_actions):
            raise ValueError(f"{s.game_id} ({s.obs_shape}, {s.n_actions} actions) and {specs[0].game_id} "
                             f"({specs[0].obs_shape}, {specs[0].n_actions} actions) cannot share one agent")
    return specs[0]


def build_agent(dreamer_cfg, spec: games.GameSpec, condition: str, init: str | Path | None, device: str):
    """A Dreamer for ``spec`` initialised and frozen as ``condition`` says.

    ``finetune``, ``frozen_rssm`` and ``frozen_wm`` load the world model of ``init`` (a
    ``world_model.pt`` or an ``agent.pt``) and keep a fresh actor-critic; ``finetune_agent`` loads the
    whole agent of ``init`` (an ``agent.pt``); ``scratch`` loads nothing. A loaded world model that will
    train re-fits its data-derived decoder offset on the first batch (``decoder_offset_transfer``).
    """
    from ..dreamer.agent import Dreamer

    agent = Dreamer(dreamer_cfg, spec.obs_shape, spec.n_actions, device=device)
    if condition == "scratch":
        if init is not None:
            raise ValueError("condition 'scratch' starts from random weights; do not pass --init")
    else:
        if init is None:
            raise ValueError(f"condition {condition!r} needs --init (a pre-trained world_model.pt or "
                             "agent.pt)")
        payload = safe_load(init)
        if condition == "finetune_agent":
            agent.load_agent_from(payload)
        else:
            agent.load_world_model_from(payload)
        if dreamer_cfg.decoder_offset_transfer == "refit" and condition != "frozen_wm":
            agent.world_model.refit_offset()
    agent.set_condition(condition)
    return agent


def evaluate(agent, game_ids: Sequence[str], episodes: int, time_limit: int, rng: np.random.Generator,
             settings: dict[str, Any] | None = None) -> list[tuple[str, float, int]]:
    """Play ``episodes`` episodes in parallel with the actor's mode; ``(game, return, length)`` each."""
    envs = [make_game(game_ids, int(rng.integers(2**31)), settings) for _ in range(episodes)]
    first = [env.reset() for env in envs]
    obs = np.stack([o for o, _ in first])
    names = [info["game"] for _, info in first]
    is_first = np.ones(episodes, bool)
    done = np.zeros(episodes, bool)
    returns = np.zeros(episodes)
    lengths = np.zeros(episodes, np.int64)
    state = agent.init_state(episodes)
    while not done.all():
        actions, state = agent.policy(obs, state, is_first, explore=False)
        is_first[:] = False
        for i in np.flatnonzero(~done):
            o, r, term, trunc, _ = envs[i].step(int(actions[i]))
            obs[i] = o
            returns[i] += r
            lengths[i] += 1
            done[i] = term or trunc or lengths[i] >= time_limit
    for env in envs:
        env.close()
    return [(n, float(r), int(n_)) for n, r, n_ in zip(names, returns, lengths, strict=True)]


class _Collector:
    """``num_envs`` games stepped in lockstep, streaming every step into the replay."""

    def __init__(self, game_ids: Sequence[str], num_envs: int, replay: Replay, rng: np.random.Generator,
                 n_actions: int, time_limit: int, settings: dict[str, Any] | None = None):
        self.envs = [make_game(game_ids, 0, settings) for _ in range(num_envs)]
        self.replay, self.rng, self.n_actions, self.time_limit = replay, rng, n_actions, time_limit
        self.obs: np.ndarray | None = None
        self.is_first = np.ones(num_envs, bool)
        self.returns = np.zeros(num_envs)
        self.lengths = np.zeros(num_envs, np.int64)
        self.game = [""] * num_envs
        for i in range(num_envs):
            self._start(i)

    def _start(self, i: int) -> None:
        obs, info = self.envs[i].reset(seed=int(self.rng.integers(2**31)))
        if self.obs is None:
            self.obs = np.zeros((len(self.envs), *obs.shape), obs.dtype)
        self.obs[i] = obs
        self.is_first[i] = True
        self.returns[i], self.lengths[i], self.game[i] = 0.0, 0, info["game"]
        self.replay.add_step(obs, 0, 0.0, True, False, False, game=info["game"], stream=i,
                             n_actions=self.n_actions)

    def step(self, actions: np.ndarray) -> list[dict[str, Any]]:
        """Step every game once; returns the episodes that ended (game, return, length)."""
        self.is_first[:] = False
        ended = []
        for i, env in enumerate(self.envs):
            a = int(actions[i])
            obs, reward, term, trunc, info = env.step(a)
            self.returns[i] += reward
            self.lengths[i] += 1
            last = bool(term or trunc or self.lengths[i] >= self.time_limit)
            self.replay.add_step(obs, a, reward, False, last, bool(term), game=info["game"], stream=i,
                                 n_actions=self.n_actions)
            self.obs[i] = obs
            if last:
                ended.append({"game": self.game[i], "episode_return": float(self.returns[i]),
                              "episode_length": int(self.lengths[i])})
                self._start(i)
        return ended

    def close(self) -> None:
        for env in self.envs:
            env.close()


class _AtariVectorCollector(_Collector):
    """:class:`_Collector` for one Atari game and ``num_envs`` > 1 on ale-py's C++ ``AtariVectorEnv``
    (the same preprocessing as :class:`~wmtransfer.games.atari.AtariGame`; its threads step the games in
    parallel). No automatic resets are used: an ended game is reset at once with a masked reset and a
    seed from the loop's generator, as the per-game collector does, so episodes and resume behave alike."""

    def __init__(self, game_id: str, num_envs: int, replay: Replay, rng: np.random.Generator,
                 n_actions: int, time_limit: int, settings: dict[str, Any] | None = None):
        from ..games import atari

        self.vec = atari.make_native_vector(game_id.partition("-")[2], num_envs, 0, autoreset_mode="NextStep",
                                            **(settings or {}))
        self.game_id = game_id
        self.replay, self.rng, self.n_actions, self.time_limit = replay, rng, n_actions, time_limit
        self.obs = np.zeros((num_envs, *self.vec.single_observation_space.shape), np.uint8)
        self.is_first = np.ones(num_envs, bool)
        self.returns = np.zeros(num_envs)
        self.lengths = np.zeros(num_envs, np.int64)
        self.game = [game_id] * num_envs
        self._reset(np.ones(num_envs, bool))

    def _reset(self, mask: np.ndarray) -> None:
        seeds = self.rng.integers(2**31, size=int(mask.sum()))
        obs, _ = self.vec.reset(seed=seeds, options={"reset_mask": mask})
        for i in np.flatnonzero(mask):
            self.obs[i] = obs[i]
            self.is_first[i] = True
            self.returns[i], self.lengths[i] = 0.0, 0
            self.replay.add_step(obs[i], 0, 0.0, True, False, False, game=self.game_id, stream=int(i),
                                 n_actions=self.n_actions)

    def step(self, actions: np.ndarray) -> list[dict[str, Any]]:
        self.is_first[:] = False
        actions = np.asarray(actions, np.int64)
        obs, reward, term, trunc, _ = self.vec.step(actions)
        self.returns += reward
        self.lengths += 1
        last = term | trunc | (self.lengths >= self.time_limit)
        ended = []
        for i in range(len(actions)):
            self.replay.add_step(obs[i], int(actions[i]), float(reward[i]), False, bool(last[i]),
                                 bool(term[i]), game=self.game_id, stream=i, n_actions=self.n_actions)
            self.obs[i] = obs[i]
            if last[i]:
                ended.append({"game": self.game_id, "episode_return": float(self.returns[i]),
                              "episode_length": int(self.lengths[i])})
        if last.any():
            self._reset(last)
        return ended

    def close(self) -> None:
        self.vec.close()


def make_collector(game_ids: Sequence[str], num_envs: int, replay: Replay, rng: np.random.Generator,
                   n_actions: int, time_limit: int, settings: dict[str, Any] | None = None) -> _Collector:
    """ale-py's vector env for several copies of one Atari game; the per-game collector otherwise."""
    if len(game_ids) == 1 and num_envs > 1 and games.suite_of(game_ids[0]) == "atari":
        return _AtariVectorCollector(game_ids[0], num_envs, replay, rng, n_actions, time_limit, settings)
    return _Collector(game_ids, num_envs, replay, rng, n_actions, time_limit, settings)


def train_agent(game_ids: Sequence[str], seed: int, out: str | Path, cfg: AgentConfig, dreamer_cfg,
                init: str | Path | None = None, device: str = "cpu", final_name: str = "agent.pt",
                game_settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train a DreamerV2 agent online on ``game_ids`` (one game, or a set for multi-task training).

    ``out`` is a :class:`~wmtransfer.train.run.RunFolder`: ``metrics.csv`` grows in ``partial/``,
    ``ckpt/checkpoint.pt`` every ``checkpoint_every`` updates; at the end ``config.json``, ``metrics.csv``,
    ``final_name`` and last ``summary.json`` appear in ``out``. Returns the summary. Resumes from the
    checkpoint if there is one.
    """
    game_ids = list(game_ids)
    cfg = resolve(cfg, dreamer_cfg)
    settings = dict(game_settings or {})
    spec = suite_spec(game_ids, settings)
    time_limit = cfg.time_limit
    device = resolve_device(device)
    config = {"games": game_ids, "seed": seed, "condition": cfg.condition,
              "init": str(init) if init else None, "game_settings": settings, "agent": to_dict(cfg),
              "dreamer": to_dict(dreamer_cfg)}
    run = RunFolder(out, config)
    saved = run.resume()

    seed_everything(seed)
    rng = np.random.default_rng(seed)
    agent = build_agent(dreamer_cfg, spec, cfg.condition, init, device)
    replay = Replay(cfg.replay_capacity, seed=seed + 1, balance_games=cfg.balance_games,
                    past_end=cfg.replay_past_end)
    loop = {"env_step": 0, "updates": 0, "next_eval": 0, "episodes": 0, "prefilled": False,
            "prefill_end": 0, "prefill_wall": 0.0, "pending": {}, "train_returns": [], "last_eval": None}
    if saved is not None:
        agent.restore(saved["agent"])
        replay.load_state_dict(saved["replay"])
        replay.end_streams(n_actions=spec.n_actions)  # the games restart: close running episodes
        ckpt_io.set_rng_state(saved["rng"], {"loop": rng})
        loop.update(saved["loop"])
        print(f"env step {loop['env_step']}, update {loop['updates']}", file=sys.stderr)
    metrics = run.metrics()
    log_due = Every(cfg.log_every, loop["env_step"])
    ckpt_due = Every(cfg.checkpoint_every, loop["updates"])
    progress = Progress(cfg.env_steps, loop["env_step"], "env steps", f"{'+'.join(game_ids)} seed {seed}")

    pending: defaultdict[str, list[float]] = defaultdict(list)
    pending.update({k: list(v) for k, v in loop["pending"].items()})
    collector = make_collector(game_ids, cfg.num_envs, replay, rng, spec.n_actions, time_limit, settings)
    state = agent.init_state(cfg.num_envs)

    def train_once() -> None:
        batch = replay.sample(cfg.batch, cfg.length)
        values = guarded(agent.train_step, batch, loop["updates"] + 1, loop["env_step"])
        loop["updates"] += 1
        for k, v in values.items():
            pending[k].append(float(v))

    def run_evaluation() -> None:
        results = evaluate(agent, game_ids, cfg.eval_episodes, min(time_limit, cfg.eval_time_limit), rng,
                           settings)
        loop["last_eval"] = {"env_step": loop["env_step"], "results": [list(r) for r in results]}
        metrics.write(loop["env_step"], loop["updates"], run.wall(),
                      {"eval_return": float(np.mean([r for _, r, _ in results]))})

    def save_checkpoint() -> None:
        loop["pending"] = {k: list(v) for k, v in pending.items()}
        run.save({"agent": agent.checkpoint(), "replay": replay.state_dict(),
                  "rng": ckpt_io.rng_state({"loop": rng}), "loop": dict(loop)})

    while loop["env_step"] < cfg.env_steps:
        if loop["env_step"] >= loop["next_eval"]:
            if loop["last_eval"] is None or loop["last_eval"]["env_step"] != loop["env_step"]:
                run_evaluation()
            loop["next_eval"] += cfg.eval_every
        if loop["prefilled"]:
            actions, state = agent.policy(collector.obs, state, collector.is_first, explore=True)
        else:
            actions = rng.integers(spec.n_actions, size=cfg.num_envs)
        for ep in collector.step(actions):
            loop["episodes"] += 1
            loop["train_returns"] = (loop["train_returns"] + [ep["episode_return"]])[-100:]
            metrics.write(loop["env_step"] + cfg.num_envs, loop["updates"], run.wall(), ep)
        loop["env_step"] += cfg.num_envs
        if not loop["prefilled"] and loop["env_step"] >= cfg.prefill and replay.num_episodes > 0:
            loop["prefilled"] = True
            loop["prefill_end"] = loop["env_step"]
            loop["prefill_wall"] = run.wall()
            collector.is_first[:] = True  # the policy's recurrent state starts fresh in running episodes
            for _ in range(cfg.pretrain_updates):
                train_once()
        if loop["prefilled"]:
            target = cfg.pretrain_updates + cfg.train_steps * -(-(loop["env_step"] - loop["prefill_end"])
                                                                 // cfg.train_every)
            while loop["updates"] < target:
                train_once()
        if log_due.due(loop["env_step"]) and pending:
            metrics.write(loop["env_step"], loop["updates"], run.wall(),
                          {k: float(np.mean(v)) for k, v in pending.items()})
            pending.clear()
        if ckpt_due.due(loop["updates"]):
            save_checkpoint()
        progress.update(loop["env_step"], updates=loop["updates"],
                        ret=float(np.mean(loop["train_returns"][-10:])) if loop["train_returns"] else None)

    if loop["last_eval"] is None or loop["last_eval"]["env_step"] != loop["env_step"]:
        run_evaluation()  # (a rerun of a finished run reuses its final evaluation: no duplicate row)
    results = [tuple(r) for r in loop["last_eval"]["results"]]
    final_eval = float(np.mean([r for _, r, _ in results]))
    save_checkpoint()  # the final state, so a later run with a larger env_steps can extend this one
    progress.close()
    collector.close()
    wall = run.wall()
    summary = {
        "games": game_ids, "seed": seed, "condition": cfg.condition,
        "env_steps": int(loop["env_step"]), "updates": int(loop["updates"]),
        "episodes": int(loop["episodes"]), "final_eval_return": final_eval,
        "final_eval_returns": {f"{g}#{i}": r for i, (g, r, _) in enumerate(results)},
        "train_return_last100": float(np.mean(loop["train_returns"])) if loop["train_returns"] else None,
        "env_steps_per_s": loop["env_step"] / max(wall, 1e-9),
        # Throughput once training runs (acting + storing + updates), without the random prefill.
        "train_env_steps_per_s": (loop["env_step"] - loop["prefill_end"])
        / max(wall - loop["prefill_wall"], 1e-9) if loop["prefilled"] else None,
        "prefill_env_steps": int(loop["prefill_end"]),
        "replayed_steps_per_env_step": cfg.batch * cfg.length * cfg.train_steps / cfg.train_every,
    }
    meta = dict(games=game_ids, seed=seed, condition=cfg.condition, env_steps=int(loop["env_step"]),
                updates=int(loop["updates"]))
    return run.finish(summary, {final_name: lambda p: agent.save(p, **meta)})
