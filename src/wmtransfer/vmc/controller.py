"""C: the linear controller of World Models and its rollouts, in the real game or inside M's dream.

``a_t = argmax(W [z_t, h_t] + b)`` (seed 004 §3: one fully connected layer on the concatenation of z and
the LSTM state; its sigmoid is monotonic, so the argmax over the logits is the same action). The
parameters are one flat vector ``[W.flatten(), b]`` that CMA-ES searches.

Rollouts are batched: a candidate's ``n`` rollouts run in lockstep in a vector env (procgen's own
batched env, or one of :func:`wmtransfer.games.make_vector`), with one V and one M call per step for the
whole batch. ``z_t`` is V's mean for the frame; after acting, M reads ``[z_t, a_t]`` and its new state
is the ``h`` of the next step. An episode counts until its first end; rollouts still running after
``max_steps`` are cut there. :class:`RolloutPool` scores a population in parallel processes.
"""

from __future__ import annotations

import multiprocessing as mp
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import games
from .data import obs_scale, to_input
from .mdnrnn import MDNRNN, sample_mixture
from .vae import ConvVAE


def n_params(latent: int, hidden: int, n_actions: int) -> int:
    return (latent + hidden) * n_actions + n_actions


class LinearController:
    """``act(z, h)``: the argmax over ``W [z, h] + b`` for a batch; built from a flat parameter vector."""

    def __init__(self, params: np.ndarray | torch.Tensor, latent: int, hidden: int, n_actions: int):
        params = torch.as_tensor(np.asarray(params, dtype=np.float32))
        expected = n_params(latent, hidden, n_actions)
        if params.numel() != expected:
            raise ValueError(f"controller parameters: got {params.numel()}, a controller on latent {latent}"
                             " + "
                             f"hidden {hidden} with {n_actions} actions has {expected}")
        split = (latent + hidden) * n_actions
        self.weight = params[:split].view(n_actions, latent + hidden)
        self.bias = params[split:]

    def logits(self, z: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return torch.cat([z, h], -1) @ self.weight.T + self.bias

    def act(self, z: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self.logits(z, h).argmax(-1)


@dataclass
class Rollouts:
    """Per-rollout results: return, length, and whether the level was completed (procgen; else NaN)."""

    returns: np.ndarray
    lengths: np.ndarray
    wins: np.ndarray


@torch.no_grad()
def real_rollouts(game_id: str, vae: ConvVAE, mdn: MDNRNN, params, n: int, seed: int,
                  max_steps: int) -> Rollouts:
    """``n`` episodes of the controller in the real game, seeded by ``seed``."""
    spec = games.spec(game_id)
    ctrl = LinearController(params, mdn.latent, mdn.hidden, spec.n_actions)
    scale = obs_scale(game_id)
    env = games.make_vector(game_id, n, seed=seed)
    try:
        obs, _ = env.reset()
        state = mdn.initial_state(n)
        h = torch.zeros(n, mdn.hidden)
        alive = np.ones(n, dtype=bool)
        returns, lengths = np.zeros(n), np.zeros(n, dtype=np.int64)
        wins = np.full(n, np.nan)
        for _ in range(max_steps):
            z, _ = vae.encode(to_input(obs, scale))
            action = ctrl.act(z, h)
            obs, reward, terminated, truncated, info = env.step(action.numpy())
            returns += np.where(alive, reward, 0.0)
            lengths += alive
            done = np.asarray(terminated) | np.asarray(truncated)
            if "level_complete" in info:
                ended = alive & done
                wins[ended] = np.asarray(info["level_complete"], dtype=float)[ended]
            alive &= ~done
            if not alive.any():
                break
            _, state, out = mdn(z[:, None], action[:, None], state)
            h = out[:, 0]
        if games.suite_of(game_id) == "procgen":
            wins[np.isnan(wins)] = 0.0  # cut by max_steps: not a win
    finally:
        env.close()
    return Rollouts(returns, lengths, wins)


@torch.no_grad()
def dream_rollouts(mdn: MDNRNN, params, z0: torch.Tensor, max_steps: int, temperature: float,
                   seed: int, n_actions: int) -> Rollouts:
    """Rollouts inside M's dream from initial latents ``z0 (n, Z)``: the next z is sampled from the mixture
    at ``temperature``, the reward is M's reward head, an episode ends when M's end head says so (p > 0.5)."""
    if not mdn.heads:
        raise ValueError("dreaming needs an MDN-RNN with reward and end heads (vmc.mdn_heads)")
    n = len(z0)
    ctrl = LinearController(params, mdn.latent, mdn.hidden, n_actions)
    gen = torch.Generator().manual_seed(int(seed))
    z, state, h = z0, mdn.initial_state(n), torch.zeros(n, mdn.hidden)
    alive = torch.ones(n, dtype=torch.bool)
    returns, lengths = torch.zeros(n), torch.zeros(n, dtype=torch.long)
    for _ in range(max_steps):
        action = ctrl.act(z, h)
        (log_pi, mu, log_sigma, reward, end), state, out = mdn(z[:, None], action[:, None], state)
        returns += torch.where(alive, reward[:, 0], torch.zeros(()))
        lengths += alive.long()
        alive &= torch.sigmoid(end[:, 0]) <= 0.5
        if not alive.any():
            break
        z = sample_mixture(log_pi[:, 0], mu[:, 0], log_sigma[:, 0], temperature, gen)
        h = out[:, 0]
    return Rollouts(returns.numpy().astype(float), lengths.numpy(), np.full(n, np.nan))


@dataclass
class Scorer:
    """What a worker needs to score a candidate: the game, V and M, and where rollouts happen."""

    game_id: str
    vae: ConvVAE
    mdn: MDNRNN
    rollouts: int
    max_steps: int
    train_in: str = "real"
    temperature: float = 1.0
    z0: torch.Tensor | None = None  # initial latents of dreamed rollouts

    def fitness(self, params: np.ndarray, seed: int) -> float:
        """Mean return of ``rollouts`` rollouts of the candidate (seed 004's fitness)."""
        if self.train_in == "dream":
            rng = np.random.default_rng(seed)
            start = self.z0[torch.as_tensor(rng.integers(0, len(self.z0), size=self.rollouts))]
            res = dream_rollouts(self.mdn, params, start, self.max_steps, self.temperature, seed,
                                 games.spec(self.game_id).n_actions)
        else:
            res = real_rollouts(self.game_id, self.vae, self.mdn, params, self.rollouts, seed, self.max_steps)
        return float(res.returns.mean())


_WORKER: Scorer | None = None


def _init_worker(scorer_files: dict, settings: dict) -> None:
    global _WORKER
    torch.set_num_threads(1)
    from .checkpoints import load_mdnrnn, load_vae

    vae, mdn = load_vae(scorer_files["vae"]), load_mdnrnn(scorer_files["mdnrnn"])
    z0 = settings.pop("z0", None)
    _WORKER = Scorer(vae=vae, mdn=mdn, z0=None if z0 is None else torch.as_tensor(z0), **settings)


def _score(job: tuple[np.ndarray, int]) -> float:
    params, seed = job
    return _WORKER.fitness(params, seed)


class RolloutPool:
    """Scores candidates with ``workers`` processes (``1``: in this process). Each worker loads V and M
    once; candidates are scored independently, so results do not depend on the number of workers."""

    def __init__(self, scorer: Scorer, files: dict[str, str | Path], workers: int = 1):
        self.scorer, self.workers = scorer, max(1, int(workers))
        self._pool = None
        if self.workers > 1:
            settings = {"game_id": scorer.game_id, "rollouts": scorer.rollouts, "max_steps": scorer.max_steps,
                        "train_in": scorer.train_in, "temperature": scorer.temperature,
                        "z0": None if scorer.z0 is None else scorer.z0.numpy()}
            ctx = mp.get_context("spawn")  # no fork of a process that runs torch threads
            self._pool = ctx.Pool(self.workers, initializer=_init_worker,
                                  initargs=({k: str(v) for k, v in files.items()}, settings))

    def score(self, candidates: list[np.ndarray], seed: int) -> list[float]:
        jobs = [(np.asarray(c, dtype=np.float32), int(seed)) for c in candidates]
        if self._pool is None:
            return [self.scorer.fitness(p, s) for p, s in jobs]
        return self._pool.map(_score, jobs, chunksize=1)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
