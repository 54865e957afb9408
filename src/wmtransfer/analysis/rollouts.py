"""Dreamed rollouts against the real frames, and reconstructions of unseen games (seed 003 fig. 8).

A world model watches the first ``context`` frames of a real episode (posterior states, i.e.
reconstructions), then dreams the rest open loop: the prior alone, driven by the episode's recorded
actions, with no further frames. Each figure shows three rows over time: the real frames, the model's
frames (reconstructed, then dreamed) and their absolute difference, with a line where dreaming starts.
``rollouts.json`` holds the mean squared error of each step, per game, so the quality of the dreams can
be compared between seen games (in the pre-training set) and unseen ones.

Episodes come from the game itself under a seeded uniform random policy, so seen and unseen games are
treated alike and no dataset is needed for an unseen target. Step alignment is the data contract's
(docs/data.md): ``action[i]`` led to ``obs[i]`` and is the previous action of step ``i``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .curves import atomic_write


def random_episode(game_id: str, steps: int, seed: int, attempts: int = 20) -> dict[str, np.ndarray]:
    """``steps`` frames of one episode under a uniform random policy: obs (L, C, H, W) uint8 and action
    (L,) with ``action[0] = 0`` (data contract). Random play loses some games quickly (a MinAtar
    Breakout episode often ends within 10 steps), so up to ``attempts`` episodes are played and the first
    long enough is kept (else the longest); all of it is determined by ``seed``."""
    from .. import games

    env = games.make(game_id, seed=seed)
    rng = np.random.default_rng(seed)
    best: dict[str, np.ndarray] | None = None
    try:
        for _ in range(attempts):
            obs, _ = env.reset()
            frames, actions = [obs], [0]
            while len(frames) < steps:
                a = int(rng.integers(env.action_space.n))
                obs, _, terminated, truncated, _ = env.step(a)
                frames.append(obs)
                actions.append(a)
                if terminated or truncated:
                    break
            if best is None or len(frames) > len(best["obs"]):
                best = {"obs": np.stack(frames), "action": np.asarray(actions, dtype=np.int64)}
            if len(frames) >= steps:
                break
    finally:
        env.close()
    return best


def dream(agent, obs: np.ndarray, action: np.ndarray, context: int, seed: int = 0) -> np.ndarray:
    """The model's frames (L, C, H, W) in [0, 1] (as ``obs / obs_max``) for a real episode: posterior
    reconstructions for the first ``context`` frames, then the prior rolled forward with the recorded
    actions (official ``video_pred``: latents sampled, image means shown). The latents' draws come from
    ``seed`` on a forked RNG, so a dream is reproducible and leaves the global RNG alone."""
    import torch
    import torch.nn.functional as F

    from ..dreamer.rssm import Latent

    wm = agent.world_model
    device = next(wm.parameters()).device
    if not 1 <= context <= len(obs):
        raise ValueError(f"context {context} must be between 1 and the episode length {len(obs)}")
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        obs_t = torch.from_numpy(np.ascontiguousarray(obs[:context])).to(device)
        embed = wm.encode_step(obs_t)[None]
        act = F.one_hot(torch.from_numpy(np.asarray(action, dtype=np.int64)).to(device), wm.n_actions)
        act = act.to(torch.float32)
        is_first = torch.zeros(1, context, device=device)
        is_first[0, 0] = 1.0
        post, _ = wm.rssm.observe(embed, act[None, :context], is_first)
        feats = [post.feat()[0]]
        state = Latent(post.deter[:, -1], post.stoch[:, -1])
        for t in range(context, len(obs)):
            state = wm.rssm.img_step(state, act[t][None])
            feats.append(state.feat())
        out = wm.decoder(torch.cat(feats, 0))
        if wm.cfg.image_dist == "bernoulli":
            frames = torch.sigmoid(out)
        else:
            frames = (out + wm.cfg.obs_offset).clamp(0.0, 1.0)
    return frames.cpu().numpy()


def to_rgb(frames: np.ndarray) -> np.ndarray:
    """(L, C, H, W) values in [0, 1] -> (L, H, W, 3) RGB. One channel is grey; several (MinAtar's object
    channels) get one colour each (cubehelix, as MinAtar's own display), mixed by their values on white."""
    frames = np.asarray(frames, dtype=float)
    if frames.shape[1] == 1:
        return np.repeat(frames[:, 0, :, :, None], 3, axis=-1)
    import seaborn as sns

    colors = np.asarray(sns.color_palette("cubehelix", frames.shape[1]))  # (C, 3)
    weight = np.clip(frames, 0.0, 1.0)
    total = weight.sum(1)  # (L, H, W)
    mixed = np.einsum("lchw,cd->lhwd", weight, colors) / np.maximum(total, 1e-8)[..., None]
    alpha = np.clip(total, 0.0, 1.0)[..., None]
    return alpha * mixed + (1.0 - alpha) * 1.0


def plot_rollout(real: np.ndarray, model: np.ndarray, context: int, title: str, max_columns: int = 20):
    """Figure: real frames, model frames and |difference| over time; a red line where dreaming starts."""
    import matplotlib.pyplot as plt

    n = min(len(real), max_columns)
    rgb_real, rgb_model = to_rgb(real[:n]), to_rgb(model[:n])
    diff = np.abs(real[:n] - model[:n]).max(1)  # (n, H, W), worst channel
    fig, axes = plt.subplots(3, n, figsize=(0.9 * n + 1.0, 3.3), squeeze=False)
    for t in range(n):
        for row, img, kw in ((0, rgb_real[t], {}), (1, rgb_model[t], {}),
                             (2, diff[t], {"cmap": "magma", "vmin": 0.0, "vmax": 1.0})):
            ax = axes[row, t]
            ax.imshow(img, interpolation="nearest", **kw)
            ax.set_xticks([])
            ax.set_yticks([])
            if t == context:
                ax.spines["left"].set_color("red")
                ax.spines["left"].set_linewidth(2.5)
        axes[0, t].set_title(f"t={t}", fontsize=7)
    for row, label in enumerate(("real", "model", "|diff|")):
        axes[row, 0].set_ylabel(label, fontsize=8)
    fig.suptitle(f"{title}: frames 0-{context - 1} observed, then dreamed open loop (red line)", fontsize=9)
    fig.tight_layout()
    return fig


def run_rollouts(model_path: str | Path, seen: list[str], unseen: list[str], out_dir: str | Path,
                 context: int = 5, horizon: int = 15, seed: int = 0, threads: int = 1) -> dict:
    """Dream ``horizon`` steps after ``context`` observed frames on each game; writes ``{game}.png/.svg``
    and ``rollouts.json`` into ``out_dir``. ``seen`` games were in the pre-training set, ``unseen`` not."""
    import torch

    from ..dreamer import Dreamer
    from .figures import save_figure

    if threads > 0:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    agent = Dreamer.load(model_path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result: dict = {"model": str(model_path), "context": context, "horizon": horizon, "seed": seed,
                    "games": {}}
    import matplotlib.pyplot as plt

    for game in [*seen, *unseen]:
        ep = random_episode(game, context + horizon, seed)
        ctx = min(context, len(ep["obs"]))
        real = ep["obs"].astype(np.float32) / float(agent.cfg.obs_max)
        if real.shape[1:] != tuple(agent.obs_shape):
            raise ValueError(f"{game}: observations {real.shape[1:]} do not fit the model's "
                             f"{tuple(agent.obs_shape)} ({model_path})")
        model = dream(agent, ep["obs"], ep["action"], ctx, seed=seed)
        mse = ((real - model) ** 2).reshape(len(real), -1).mean(1)
        kind = "seen" if game in seen else "unseen"
        result["games"][game] = {"kind": kind, "frames": int(len(real)), "observed": int(ctx),
                                 "mse_per_step": [float(v) for v in mse]}
        fig = plot_rollout(real, model, ctx, f"{game} ({kind})")
        save_figure(fig, out_dir, game)
        plt.close(fig)
    atomic_write(out_dir / "rollouts.json", lambda p: Path(p).write_text(json.dumps(result, indent=2) + "\n"))
    return result
