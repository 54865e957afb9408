"""Latent features of a trained world model on recorded episodes, and the seed 001 section 3.3 analysis.

The features of frame t are the RSSM posterior state ``[z_t, h_t]`` (``Latent.feat()``, the model state
the heads and the actor read) after observing the episode up to t with its recorded actions. The target
variable is the player's position: in every MinAtar game the first observation channel is the player
(breakout paddle, asterix player, freeway chicken, seaquest sub front, space_invaders cannon), so its
centre of mass gives (x, y) in grid cells. :func:`run_latent_analysis` writes ``latent.json`` (k-means
cluster sizes and mean player x per cluster; CCA and best single-feature correlation against x and
(x, y), each next to two baselines: random Gaussian features of the same shape (seed 001's baseline)
and the features of the same architecture freshly initialised) and ``latent.png/.svg``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .curves import atomic_write
from .latent import cca, kmeans, latent_vs_target


def player_position(obs: np.ndarray, channel: int = 0) -> np.ndarray:
    """Centre of mass (x, y) of ``obs[:, channel]`` for (T, C, H, W) frames; NaN where it is empty."""
    plane = np.asarray(obs[:, channel], dtype=float)  # (T, H, W)
    mass = plane.sum((1, 2))
    h, w = plane.shape[1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        x = (plane.sum(1) * np.arange(w)).sum(1) / mass
        y = (plane.sum(2) * np.arange(h)).sum(1) / mass
    return np.stack([np.where(mass > 0, x, np.nan), np.where(mass > 0, y, np.nan)], 1)


def episode_features(agent, ep: dict[str, np.ndarray]) -> np.ndarray:
    """Posterior features (L, feat) of one episode (episode format of the data contract)."""
    import torch
    import torch.nn.functional as F

    wm = agent.world_model
    device = next(wm.parameters()).device
    obs = torch.from_numpy(np.ascontiguousarray(ep["obs"])).to(device)
    with torch.no_grad():
        embed = wm.encode_step(obs)[None]  # (1, L, E)
        action = F.one_hot(torch.from_numpy(ep["action"].astype(np.int64)).to(device), wm.n_actions)
        is_first = torch.from_numpy(ep["is_first"].astype(np.float32)).to(device)[None]
        post, _ = wm.rssm.observe(embed, action[None].float(), is_first)
    return post.feat()[0].cpu().numpy()


def collect(agent, episode_files: list[str | Path], max_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Features and player positions of frames with a visible player, up to ``max_frames``."""
    from ..data.episodes import read_episode

    feats, pos = [], []
    total = 0
    for path in episode_files:
        ep = read_episode(path)
        f, p = episode_features(agent, ep), player_position(ep["obs"])
        keep = ~np.isnan(p[:, 0])
        feats.append(f[keep])
        pos.append(p[keep])
        total += int(keep.sum())
        if total >= max_frames:
            break
    if not feats:
        raise ValueError("no episode files given")
    return np.concatenate(feats)[:max_frames], np.concatenate(pos)[:max_frames]


def episode_paths(specs: list[str | Path]) -> list[Path]:
    """Episode files from files and folders (a folder contributes its ``**/*.npz``, sorted); several
    folders (the datasets of a set's games) are interleaved file by file, so a frame budget that stops
    early still samples every game."""
    groups = [sorted(Path(s).rglob("*.npz")) if Path(s).is_dir() else [Path(s)] for s in specs]
    out: list[Path] = []
    for i in range(max((len(g) for g in groups), default=0)):
        out.extend(g[i] for g in groups if i < len(g))
    return out


def run_latent_analysis(model_path: str | Path, episode_files: list[str | Path], out_dir: str | Path,
                        k: int = 8, max_frames: int = 100_000, n_random: int = 5, seed: int = 0,
                        threads: int = 1) -> dict:
    """Load ``model_path`` (a saved Dreamer: world_model.pt or agent.pt), analyse, write the outputs.

    ``episode_files`` may name folders (see :func:`episode_paths`); frames are taken in file order until
    ``max_frames`` frames with a visible player are collected (seed 001 used 100,000 Breakout frames).
    """
    import torch

    from ..dreamer import Dreamer

    torch.manual_seed(seed)
    if threads > 0:
        torch.set_num_threads(threads)
    episode_files = episode_paths(episode_files)
    agent = Dreamer.load(model_path)
    features, pos = collect(agent, episode_files, max_frames)
    x = pos[:, 0]
    # Second baseline: the same architecture, freshly initialised (a random network already encodes
    # where the player is; Gaussian features do not), on the same frames.
    untrained = Dreamer(agent.cfg, agent.obs_shape, agent.n_actions)
    untrained_feats, _ = collect(untrained, episode_files, max_frames)
    km = kmeans(features, k, seed=seed)
    clusters = [{"cluster": j, "frames": int((km.labels == j).sum()),
                 "mean_player_x": float(np.mean(x[km.labels == j])) if np.any(km.labels == j) else None}
                for j in range(k)]
    result = {
        "model": str(model_path), "frames": int(len(x)), "features": int(features.shape[1]),
        "x": latent_vs_target(features, x, n_random, seed=seed),
        "x_untrained": latent_vs_target(untrained_feats, x, 1, seed=seed),
        "xy_cca": cca(features, pos).correlations.tolist(),
        "kmeans": {"k": k, "inertia": km.inertia, "clusters": clusters},
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    from .figures import plot_latent, save_figure

    top = int(result["x"]["top_feature"])
    fig = plot_latent(features[:, top], x, km.labels, result)
    save_figure(fig, out_dir, "latent")
    atomic_write(out_dir / "latent.json", lambda p: Path(p).write_text(json.dumps(result, indent=2)))
    return result
