"""The four V-M-C stages that the rules ``train_vae``, ``train_mdnrnn``, ``train_controller`` and
``evaluate_controller`` run, in one run folder ``results/vmc/{game}/seed{seed}/``.

1. **V** (:func:`train_vae`): minibatches of frames from the game's dataset; loss
   ``||x - x_hat||^2 + beta KL`` with seed 004's schedule: beta = 0 until the held-out reconstruction
   error reaches ``vae_recon_target`` (or ``vae_recon_updates`` have passed), then a linear rise to
   ``vae_beta`` over ``vae_beta_ramp`` updates; optionally stopped when the reconstruction degrades.
2. **M** (:func:`train_mdnrnn`): every frame encoded by V once (``mu``, ``log sigma^2``); windows of
   episodes with ``z = mu + sigma eps`` resampled per batch (Ha & Schmidhuber); loss the mixture's
   negative log-likelihood of ``z_{t+1}`` (plus reward and end terms with ``mdn_heads``).
3. **C** (:func:`train_controller`): CMA-ES (``cma``) over the controller's parameters, fitness the mean
   return of ``rollouts`` rollouts (seed 004), scored in ``workers`` processes; every candidate of a
   generation plays the same seeded levels. The best candidate seen is saved.
4. **Evaluation** (:func:`evaluate_controller`): ``eval_episodes`` test episodes in the real game.

Each training stage is a :class:`~wmtransfer.train.run.RunFolder` of its own, ``{out}/{stage}/``
(``vae``, ``mdnrnn``, ``controller``): staging in ``partial/``, the resumable state in
``ckpt/checkpoint.pt`` (model, optimiser, RNG states, loop counters), the configuration checked on
resume (only the stage's budget may grow), ``metrics.csv`` cut back to the checkpoint, fault points for
the resume tests, promotion with ``summary.json`` last. The finished stage is then published into
``out`` under the names the rules declare (``vae.pt``, ``vae_metrics.csv``, ``vae_summary.json`` last;
likewise ``mdnrnn_*`` and ``controller_*``). CMA-ES is resumed exactly by replaying the recorded
fitness values through a freshly seeded ``CMAEvolutionStrategy`` (its state is not plain data, its
replay is).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F

from .. import games
from ..config import to_dict
from ..io import atomic_write, write_json
from ..train import checkpoint as ckpt_io
from ..train.agent import NonFiniteLossError, seed_everything
from ..train.run import Every, Progress, RunFolder, fault_point, link_or_copy
from .checkpoints import load_controller, load_mdnrnn, load_vae, save_controller, save_mdnrnn, save_vae
from .config import VMCConfig
from .controller import RolloutPool, Scorer, n_params, real_rollouts
from .data import Frames, Windows, load_frames, obs_scale, to_input
from .mdnrnn import MDNRNN, mdn_nll
from .vae import ConvVAE, beta_at, pixel_mse, vae_loss

#: Per stage, the config keys a resumed run may change (its budget).
BUDGETS = {"vae": ("vae_updates",), "mdnrnn": ("mdn_updates",), "controller": ("generations",)}
HELDOUT_FRAMES = 512


class _Checkpoints:
    """Checkpoints of a gradient-trained V-M-C stage (V, M): model, optimiser, named generators and the
    loop counters in the run folder; :meth:`save_if_behind` writes the last one only if training moved
    since the latest (a resumed run that had finished writes nothing new)."""

    def __init__(self, run: RunFolder, model: torch.nn.Module, opt: torch.optim.Optimizer,
                 rngs: dict[str, np.random.Generator], loop: dict[str, Any], resumed: bool) -> None:
        self.run, self.model, self.opt, self.rngs, self.loop = run, model, opt, rngs, loop
        self.saved_at = loop["updates"] if resumed else -1

    def save(self) -> None:
        self.run.save({"model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                       "rng": ckpt_io.rng_state(self.rngs), "loop": dict(self.loop)})
        self.saved_at = self.loop["updates"]

    def save_if_behind(self) -> None:
        if self.saved_at != self.loop["updates"]:
            self.save()

def _check_finite(values: dict[str, float], stage: str, update: int) -> None:
    bad = [k for k, v in values.items() if not np.isfinite(v)]
    if bad:
        raise NonFiniteLossError(f"{stage}: non-finite {', '.join(bad)} at update {update}")


#: Columns of each stage's metrics.csv. V and M learn offline from the dataset and C from whole rollouts,
#: so ``env_step`` is 0 on every row; ``update`` counts V's or M's updates, C's generations.
COLUMNS = {
    "vae": ("env_step", "update", "wall_time", "beta", "loss", "recon", "kl", "heldout_mse",
            "heldout_swap_mse"),
    "mdnrnn": ("env_step", "update", "wall_time", "loss", "nll", "reward_mse", "end_bce"),
    "controller": ("env_step", "update", "wall_time", "generation", "best_fitness", "mean_fitness",
                   "worst_fitness", "best_so_far", "sigma", "rollouts"),
}


def _stage(out: Path, stage: str, config: dict[str, Any]) -> tuple[RunFolder, dict[str, Any] | None]:
    """The stage's run folder ``out/stage`` and its checkpoint (None on a fresh start)."""
    run = RunFolder(out / stage, config, may_change=BUDGETS[stage])
    return run, run.resume()


def _publish(run: RunFolder, stage: str, model: str) -> None:
    """Link the finished stage's files into the chain's folder under the names the rules declare
    (``{stage}.pt``, ``{stage}_metrics.csv``, ``{stage}_summary.json`` last)."""
    for i, (name, as_name) in enumerate(((model, model), ("metrics.csv", f"{stage}_metrics.csv"),
                                         ("summary.json", f"{stage}_summary.json"))):
        fault_point("publish", i)
        link_or_copy(run.partial / name, run.out.parent / as_name)


def _frames_for(game_id: str, dataset: str | Path, cfg: VMCConfig) -> Frames:
    frames = load_frames(dataset, cfg.max_frames, cfg.holdout_frac)
    if frames.game != game_id:
        raise ValueError(f"dataset {dataset} holds {frames.game}, not {game_id}")
    spec = games.spec(game_id)
    if tuple(frames.obs.shape[1:]) != spec.obs_shape:
        raise ValueError(f"dataset {dataset}: frames {frames.obs.shape[1:]}, {game_id} has {spec.obs_shape}")
    return frames


def _heldout(frames: Frames, rng: np.random.Generator) -> np.ndarray:
    idx = frames.frame_index(True)
    if len(idx) == 0:  # a single episode: measure on a fixed sample of its frames
        idx = np.arange(frames.num_frames)
    return np.sort(rng.choice(idx, size=min(HELDOUT_FRAMES, len(idx)), replace=False))


# --------------------------------------------------------------------------------------------------- V
def train_vae(game_id: str, dataset: str | Path, seed: int, out: str | Path, cfg: VMCConfig,
              device: str = "cpu") -> dict[str, Any]:
    """Train V on ``dataset`` (a ``results/datasets/{game}`` folder) in the run folder ``out/vae``; publishes
    ``vae.pt``, ``vae_metrics.csv`` and last ``vae_summary.json`` into ``out``."""
    cfg.validate()
    out = Path(out)
    config = {"game": game_id, "seed": seed, "stage": "vae", "vmc": to_dict(cfg)}
    run, saved = _stage(out, "vae", config)
    seed_everything(seed)
    frames = _frames_for(game_id, dataset, cfg)
    scale = obs_scale(game_id)
    rng = np.random.default_rng([seed, 1])
    held = _heldout(frames, np.random.default_rng([seed, 2]))
    train_idx = frames.frame_index(False)
    vae = ConvVAE(games.spec(game_id).obs_shape, cfg.latent, cfg.vae_depth,
                  offset=cfg.vae_offset == "data").to(device)
    opt = torch.optim.Adam(vae.parameters(), lr=cfg.vae_lr)
    loop: dict[str, Any] = {"updates": 0, "ramp_start": -1, "ramp_mse": -1.0, "stopped": False}
    if saved is not None:
        vae.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        ckpt_io.set_rng_state(saved["rng"], {"batches": rng})
        loop.update(saved["loop"])
    metrics = run.metrics(COLUMNS["vae"])
    x_held = to_input(frames.obs[held], scale).to(device)
    # what V must beat: the training frames' mean frame, the best prediction that ignores the frame
    mean_idx = np.random.default_rng([seed, 7]).choice(train_idx, min(4096, len(train_idx)), replace=False)
    mean_frame = to_input(frames.obs[np.sort(mean_idx)], scale).mean(0, keepdim=True).to(device)
    mean_frame_mse = float(pixel_mse(x_held, mean_frame.expand_as(x_held)))

    def held_errors() -> dict[str, float]:
        """Held-out error from each frame's own code, and from another frame's (the next held-out one):
        equal when V decodes every code to the same frame."""
        vae.eval()
        with torch.no_grad():
            mu = vae.encode(x_held)[0]
            own = float(pixel_mse(x_held, vae.decode(mu)))
            swap = float(pixel_mse(x_held, vae.decode(mu.roll(1, 0))))
        vae.train()
        return {"heldout_mse": own, "heldout_swap_mse": swap}

    ckpt = _Checkpoints(run, vae, opt, {"batches": rng}, loop, resumed=saved is not None)

    log, checkpoint = Every(cfg.log_every, loop["updates"]), Every(cfg.checkpoint_every, loop["updates"])
    progress = Progress(cfg.vae_updates, loop["updates"], "updates", f"V {game_id} seed {seed}")
    sums: dict[str, float] = {}
    while loop["updates"] < cfg.vae_updates and not loop["stopped"]:
        ramp = None if loop["ramp_start"] < 0 else loop["ramp_start"]
        beta = beta_at(loop["updates"], ramp, cfg.vae_beta_ramp, cfg.vae_beta)
        x = to_input(frames.obs[rng.choice(train_idx, size=cfg.vae_batch)], scale).to(device)
        if vae.offset and not bool(vae.out_offset_fitted):
            vae.fit_offset(x)  # once, from the first batch; then saved and resumed with the weights
        x_hat, mu, logvar = vae(x)
        loss, terms = vae_loss(x, x_hat, mu, logvar, beta)
        values = {"loss": loss.item(), "recon": terms["recon"].item(), "kl": terms["kl"].item()}
        _check_finite(values, "V", loop["updates"] + 1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loop["updates"] += 1
        for k, v in values.items():
            sums[k] = sums.get(k, 0.0) + v
        sums["n"] = sums.get("n", 0) + 1
        if log.due(loop["updates"]) or loop["updates"] == cfg.vae_updates:
            errors = held_errors()
            mse = errors["heldout_mse"]
            metrics.write(0, loop["updates"], run.wall(), {
                "beta": beta, **{k: sums[k] / sums["n"] for k in ("loss", "recon", "kl")}, **errors})
            sums = {}
            reconstructs = mse <= cfg.vae_recon_target or loop["updates"] >= cfg.vae_recon_updates
            if loop["ramp_start"] < 0 and reconstructs:
                loop["ramp_start"], loop["ramp_mse"] = loop["updates"], mse  # it reconstructs: raise beta
            elif (cfg.vae_stop_degrade > 0 and loop["ramp_start"] >= 0
                  and mse > (1 + cfg.vae_stop_degrade) * loop["ramp_mse"]):
                loop["stopped"] = True  # the reconstruction degrades: stop, as seed 004 did
        elif loop["ramp_start"] < 0 and loop["updates"] >= cfg.vae_recon_updates:
            loop["ramp_start"], loop["ramp_mse"] = loop["updates"], held_errors()["heldout_mse"]
        progress.update(loop["updates"], beta=beta, recon=values["recon"])
        if checkpoint.due(loop["updates"]):
            ckpt.save()
    progress.close()
    ckpt.save_if_behind()
    summary = {"game": game_id, "seed": seed, "updates": loop["updates"], "stopped_early": loop["stopped"],
               "beta_ramp_start": loop["ramp_start"] if loop["ramp_start"] >= 0 else None,
               **held_errors(), "mean_frame_mse": mean_frame_mse, "frames": frames.num_frames,
               "episodes": len(frames.lengths), "config": config}
    summary = run.finish(summary, {"vae.pt": lambda p: save_vae(
        p, vae.cpu(), game=game_id, seed=seed, updates=loop["updates"], config=config)})
    _publish(run, "vae", "vae.pt")
    return summary


# --------------------------------------------------------------------------------------------------- M
@torch.no_grad()
def encode_frames(vae: ConvVAE, frames: Frames, scale: float, chunk: int = 1024) -> tuple[torch.Tensor, ...]:
    """V's ``mu`` and ``log sigma^2`` for every frame (float32, ``(N, Z)`` each)."""
    mus, logvars = [], []
    for i in range(0, frames.num_frames, chunk):
        mu, logvar = vae.encode(to_input(frames.obs[i:i + chunk], scale))
        mus.append(mu)
        logvars.append(logvar)
    return torch.cat(mus), torch.cat(logvars)


def mdn_losses(mdn: MDNRNN, z: torch.Tensor, action: torch.Tensor, reward: torch.Tensor, end: torch.Tensor,
               mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """Loss terms of M on windows: ``z (B, T+1, Z)``; per transition ``action, reward, end, mask (B, T)``."""
    (log_pi, mu, log_sigma, r_hat, end_logit), _, _ = mdn(z[:, :-1], action)
    terms = {"nll": mdn_nll(z[:, 1:], log_pi, mu, log_sigma, mask)}
    if mdn.heads:
        denom = mask.sum().clamp(min=1)
        terms["reward_mse"] = ((r_hat - reward).pow(2) * mask).sum() / denom
        terms["end_bce"] = (F.binary_cross_entropy_with_logits(end_logit, end, reduction="none") * mask
                            ).sum() / denom
    terms["loss"] = sum(terms.values())
    return terms


def train_mdnrnn(game_id: str, dataset: str | Path, vae_path: str | Path, seed: int, out: str | Path,
                 cfg: VMCConfig, device: str = "cpu") -> dict[str, Any]:
    """Train M on the V-encoded dataset in the run folder ``out/mdnrnn``; publishes ``mdnrnn.pt``,
    ``mdnrnn_metrics.csv`` and last ``mdnrnn_summary.json`` into ``out``."""
    cfg.validate()
    out = Path(out)
    config = {"game": game_id, "seed": seed, "stage": "mdnrnn", "vmc": to_dict(cfg)}
    run, saved = _stage(out, "mdnrnn", config)
    seed_everything(seed)
    vae = load_vae(vae_path)
    if vae.meta.get("game") != game_id:
        raise ValueError(f"{vae_path}: V was trained on {vae.meta.get('game')}, not {game_id}")
    if vae.latent != cfg.latent:
        raise ValueError(f"{vae_path}: V has latent {vae.latent}, vmc.latent is {cfg.latent}")
    frames = _frames_for(game_id, dataset, cfg)
    mu_all, logvar_all = encode_frames(vae, frames, obs_scale(game_id))
    std_all = (0.5 * logvar_all).exp()
    action_all = torch.as_tensor(frames.action)
    reward_all, end_all = torch.as_tensor(frames.reward), torch.as_tensor(frames.terminal)
    rng = np.random.default_rng([seed, 3])
    windows = Windows(frames, cfg.mdn_seq_length, rng)
    mdn = MDNRNN(cfg.latent, games.spec(game_id).n_actions, cfg.mdn_hidden, cfg.mdn_gaussians,
                 cfg.mdn_heads).to(device)
    opt = torch.optim.Adam(mdn.parameters(), lr=cfg.mdn_lr)
    loop: dict[str, Any] = {"updates": 0, "nll": None}
    if saved is not None:
        mdn.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        ckpt_io.set_rng_state(saved["rng"], {"windows": rng})
        loop.update(saved["loop"])
    metrics = run.metrics(COLUMNS["mdnrnn"])

    def batch(idx: np.ndarray, mask: np.ndarray) -> dict[str, torch.Tensor]:
        i = torch.as_tensor(idx)
        z = mu_all[i] + std_all[i] * torch.randn(mu_all[i].shape)
        nxt = i[:, 1:]
        return {"z": z.to(device), "action": action_all[nxt].to(device), "reward": reward_all[nxt].to(device),
                "end": end_all[nxt].to(device), "mask": torch.as_tensor(mask).to(device)}

    ckpt = _Checkpoints(run, mdn, opt, {"windows": rng}, loop, resumed=saved is not None)

    log, checkpoint = Every(cfg.log_every, loop["updates"]), Every(cfg.checkpoint_every, loop["updates"])
    progress = Progress(cfg.mdn_updates, loop["updates"], "updates", f"M {game_id} seed {seed}")
    sums: dict[str, float] = {}
    while loop["updates"] < cfg.mdn_updates:
        terms = mdn_losses(mdn, **batch(*windows.sample(cfg.mdn_batch)))
        values = {k: v.item() for k, v in terms.items()}
        _check_finite(values, "M", loop["updates"] + 1)
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        torch.nn.utils.clip_grad_norm_(mdn.parameters(), cfg.mdn_grad_clip)
        opt.step()
        loop["updates"] += 1
        for k, v in values.items():
            sums[k] = sums.get(k, 0.0) + v
        sums["n"] = sums.get("n", 0) + 1
        if log.due(loop["updates"]) or loop["updates"] == cfg.mdn_updates:
            means = {k: v / sums["n"] for k, v in sums.items() if k != "n"}
            metrics.write(0, loop["updates"], run.wall(), means)
            loop["nll"] = means["nll"]
            sums = {}
        progress.update(loop["updates"], nll=values["nll"])
        if checkpoint.due(loop["updates"]):
            ckpt.save()
    progress.close()
    ckpt.save_if_behind()
    summary = {"game": game_id, "seed": seed, "updates": loop["updates"], "nll": loop["nll"],
               "frames": frames.num_frames, "config": config}
    summary = run.finish(summary, {"mdnrnn.pt": lambda p: save_mdnrnn(
        p, mdn.cpu(), game=game_id, seed=seed, updates=loop["updates"], config=config)})
    _publish(run, "mdnrnn", "mdnrnn.pt")
    return summary


# --------------------------------------------------------------------------------------------------- C
def generation_seed(seed: int, generation: int) -> int:
    """The seed of the levels every candidate of one generation plays."""
    return int(np.random.default_rng([seed, 5, generation]).integers(0, 2**31 - 1))


def _cma(n: int, cfg: VMCConfig, seed: int):
    import cma

    gen = np.random.default_rng([seed, 4])
    opts = {"popsize": cfg.population, "CMA_diagonal": cfg.cma_diagonal, "seed": np.nan, "verbose": -9,
            "verb_log": 0, "verb_disp": 0, "randn": lambda *shape: gen.standard_normal(shape)}
    return cma.CMAEvolutionStrategy(np.zeros(n), cfg.cma_sigma, opts)


def train_controller(game_id: str, vae_path: str | Path, mdn_path: str | Path, seed: int, out: str | Path,
                     cfg: VMCConfig, workers: int = 1, dataset: str | Path | None = None) -> dict[str, Any]:
    """CMA-ES on C in the run folder ``out/controller``; publishes ``controller.pt`` (the best candidate
    seen), ``controller_metrics.csv`` (fitness per generation) and last ``controller_summary.json`` into
    ``out``. ``dataset`` gives the dream's first frames."""
    cfg.validate()
    out = Path(out)
    config = {"game": game_id, "seed": seed, "stage": "controller", "vmc": to_dict(cfg)}
    run, saved = _stage(out, "controller", config)
    seed_everything(seed)
    vae, spec = load_vae(vae_path), games.spec(game_id)
    mdn = load_mdnrnn(mdn_path, vae)
    for path, model in ((vae_path, vae), (mdn_path, mdn)):
        if model.meta.get("game") != game_id:
            raise ValueError(f"{path}: trained on {model.meta.get('game')}, not {game_id}")
    z0 = None
    if cfg.train_in == "dream":
        if dataset is None:
            raise ValueError("vmc.train_in 'dream' needs the dataset (its first frames start the dreams)")
        frames = _frames_for(game_id, dataset, cfg)
        z0, _ = encode_frames(vae, frames, obs_scale(game_id))
        z0 = z0[torch.as_tensor(frames.starts)]
    size = n_params(mdn.latent, mdn.hidden, spec.n_actions)
    es = _cma(size, cfg, seed)
    history: list[list[float]] = []
    best = {"fitness": -np.inf, "params": np.zeros(size, np.float32), "generation": -1}
    if saved is not None:  # replay the recorded generations through a fresh, identically seeded CMA-ES
        history = [list(f) for f in saved["history"]]
        for fitness in history:
            es.tell(es.ask(), [-f for f in fitness])
        if not np.allclose(es.mean, saved["mean"].numpy(), atol=1e-6):
            raise RuntimeError(f"{run.checkpoint_path}: replaying CMA-ES did not reproduce its state")
        best = {"fitness": saved["best_fitness"], "params": saved["best_params"].numpy(),
                "generation": saved["best_generation"]}
    metrics = run.metrics(COLUMNS["controller"])

    def save() -> None:
        run.save({"history": history, "mean": torch.as_tensor(es.mean),
                  "best_params": torch.as_tensor(best["params"]), "best_fitness": best["fitness"],
                  "best_generation": best["generation"]})

    scorer = Scorer(game_id, vae, mdn, cfg.rollouts, cfg.rollout_max_steps, cfg.train_in,
                    cfg.dream_temperature, z0)
    progress = Progress(cfg.generations, len(history), "generations", f"C {game_id} seed {seed}", every_s=0)
    with RolloutPool(scorer, {"vae": vae_path, "mdnrnn": mdn_path}, workers) as pool:
        while len(history) < cfg.generations:
            generation = len(history)
            candidates = es.ask()
            fitness = pool.score(candidates, generation_seed(seed, generation))
            es.tell(candidates, [-f for f in fitness])  # cma minimises
            history.append([float(f) for f in fitness])
            top = int(np.argmax(fitness))
            if fitness[top] > best["fitness"]:
                best = {"fitness": float(fitness[top]), "params": np.asarray(candidates[top], np.float32),
                        "generation": generation}
            metrics.write(0, generation + 1, run.wall(), {
                "generation": generation + 1, "best_fitness": float(np.max(fitness)),
                "mean_fitness": float(np.mean(fitness)), "worst_fitness": float(np.min(fitness)),
                "best_so_far": best["fitness"], "sigma": float(es.sigma),
                "rollouts": cfg.population * cfg.rollouts})
            progress.update(generation + 1, best=float(np.max(fitness)), mean=float(np.mean(fitness)),
                            best_so_far=best["fitness"])
            save()  # every generation: a generation costs far more than its checkpoint
    progress.close()
    summary = {"game": game_id, "seed": seed, "generations": len(history), "best_fitness": best["fitness"],
               "best_generation": best["generation"] + 1, "parameters": size, "train_in": cfg.train_in,
               "workers": workers, "config": config}
    summary = run.finish(summary, {"controller.pt": lambda p: save_controller(
        p, best["params"], mdn.latent, mdn.hidden, spec.n_actions, game=game_id, seed=seed,
        best_fitness=best["fitness"], generations=len(history), config=config)})
    _publish(run, "controller", "controller.pt")
    return summary


# ------------------------------------------------------------------------------------------ evaluation
def evaluate_controller(game_id: str, vae_path: str | Path, mdn_path: str | Path, controller_path: str | Path,
                        seed: int, out: str | Path, cfg: VMCConfig) -> pd.DataFrame:
    """``eval_episodes`` test episodes of V-M-C in the real game (levels seeded apart from training's);
    writes ``out`` (CSV: game, episode, episode_return, episode_length, win) and a JSON summary beside it."""
    vae = load_vae(vae_path)
    mdn = load_mdnrnn(mdn_path, vae)
    ctrl = load_controller(controller_path, mdn)
    if ctrl.get("game") != game_id:
        raise ValueError(f"{controller_path}: controller of {ctrl.get('game')}, not {game_id}")
    eval_seed = int(np.random.default_rng([seed, 6]).integers(0, 2**31 - 1))
    res = real_rollouts(game_id, vae, mdn, ctrl["params"].numpy(), cfg.eval_episodes, eval_seed,
                        cfg.rollout_max_steps)
    df = pd.DataFrame({"game": game_id, "seed": seed, "episode": np.arange(len(res.returns)),
                       "episode_return": res.returns, "episode_length": res.lengths, "win": res.wins})
    out = Path(out)
    summary = {"game": game_id, "seed": seed, "episodes": len(df),
               "mean_return": float(df.episode_return.mean()),
               "std_return": float(df.episode_return.std(ddof=0)),
               "wins": None if df.win.isna().all() else int(df.win.sum()),
               "best_fitness": ctrl.get("best_fitness"), "generations": ctrl.get("generations")}
    write_json(out.with_suffix(".json"), summary)
    atomic_write(out, lambda p: df.to_csv(p, index=False))
    print(f"{game_id}: V-M-C return {summary['mean_return']:.3f} +- {summary['std_return']:.3f} over "
          f"{len(df)} episodes" + ("" if summary["wins"] is None else f", {summary['wins']} wins"),
          file=sys.stderr)
    return df
