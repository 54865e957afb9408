"""Latent features of a trained world model on recorded episodes, and the seed 001 section 3.3 analysis.

The features of frame t are the RSSM posterior state ``[z_t, h_t]`` (``Latent.feat()``, the model state
the heads and the actor read) after observing the episode up to t with its recorded actions. The target
variable is the player's position read from the game's state (``MinAtarGame.player_position``), one game
at a time (pooling games mixes players that never move along an axis, e.g. the freeway chicken's x).
Frames come from seeded uniform random play, so the player visits many positions. Per game and moving
axis, :func:`run_latent_analysis` reports the held-out correlation (ridge fit on half the episodes,
tested on the others) and its permutation p-value against per-episode circular shifts, next to two
baselines: the same architecture freshly initialised and Gaussian features (seed 001's); in-sample CCA
and best single feature as seed 001 computed them; and k-means clusters against the position.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .curves import atomic_write
from .latent import kmeans, latent_vs_target, permutation_test


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


#: Longest stretch of consecutive frames shifted as one unit in the permutation test.
BLOCK = 100


class NoPositionError(ValueError):
    """A game whose state exposes no player position (Atari, Mario): the analysis is skipped."""


def play_frames(game_id: str, n_frames: int, seed: int,
                max_episode_steps: int = 1000) -> dict[str, np.ndarray]:
    """``n_frames`` frames of seeded uniform random play with the player's position read from the game's
    state at every frame: obs (N, C, H, W), action (N,) (``action[i]`` led to ``obs[i]``), is_first,
    episode index and pos (N, 2) = (x, y) grid cells."""
    from .. import games

    env = games.make(game_id, seed=seed)
    base = getattr(env, "unwrapped", env)
    if not hasattr(base, "player_position"):
        env.close()
        raise NoPositionError(f"{game_id}: the game's state exposes no player position (only MinAtar does)")
    rng = np.random.default_rng(seed)
    obs_l, act_l, first_l, ep_l, pos_l = [], [], [], [], []
    episode = 0
    try:
        while len(obs_l) < n_frames:
            obs, _ = env.reset()
            a, first, steps = 0, True, 0
            while len(obs_l) < n_frames:
                obs_l.append(obs)
                act_l.append(a)
                first_l.append(first)
                ep_l.append(episode)
                pos_l.append(base.player_position())
                a = int(rng.integers(env.action_space.n))
                obs, _, terminated, truncated, _ = env.step(a)
                first, steps = False, steps + 1
                if terminated or truncated or steps >= max_episode_steps:
                    break
            episode += 1
    finally:
        env.close()
    return {"obs": np.stack(obs_l), "action": np.asarray(act_l, dtype=np.int64),
            "is_first": np.asarray(first_l), "episode": np.asarray(ep_l),
            "pos": np.asarray(pos_l, dtype=float)}


def frames_features(agent, frames: dict[str, np.ndarray]) -> np.ndarray:
    """Posterior features of every frame, episode by episode (each starts from the RSSM's initial state)."""
    out = []
    for e in np.unique(frames["episode"]):
        idx = frames["episode"] == e
        out.append(episode_features(agent, {k: frames[k][idx] for k in ("obs", "action", "is_first")}))
    return np.concatenate(out)


def analyse_game(agent, untrained, game_id: str, k: int, max_frames: int, n_random: int, n_perm: int,
                 seed: int) -> tuple[dict, np.ndarray, np.ndarray]:
    """The seed 001 section 3.3 analysis on one game; returns (result, trained features, positions)."""
    frames = play_frames(game_id, max_frames, seed)
    pos = frames["pos"]
    # Blocks of at most BLOCK frames within an episode: the permutation test shifts within them and
    # alternates them between fit and test, so a game whose random play rarely ends still splits.
    lengths = np.unique(frames["episode"], return_counts=True)[1]
    step_in_episode = np.concatenate([np.arange(n) for n in lengths])
    groups = frames["episode"] * 1_000_000 + step_in_episode // BLOCK
    feats = frames_features(agent, frames)
    plain = frames_features(untrained, frames)
    gauss = np.random.default_rng(seed).standard_normal(feats.shape)
    axes = [a for a, i in (("x", 0), ("y", 1)) if np.std(pos[:, i]) > 0]
    result = {"game": game_id, "frames": int(len(pos)), "episodes": int(len(np.unique(frames["episode"]))),
              "features": int(feats.shape[1]), "positions_from": "game state", "axes": axes}
    for axis in axes:
        y = pos[:, 0 if axis == "x" else 1]
        result[axis] = {name: {**permutation_test(f, y, groups, n_perm, seed=seed)}
                        for name, f in (("trained", feats), ("untrained", plain), ("gaussian", gauss))}
        result[axis]["in_sample"] = latent_vs_target(feats, y, n_random, seed=seed)
        result[axis]["counts"] = {str(int(v)): int(c) for v, c in zip(*np.unique(y, return_counts=True),
                                                                     strict=True)}
    km = kmeans(feats, k, seed=seed)
    result["kmeans"] = {"k": k, "inertia": km.inertia, "clusters": [
        {"cluster": j, "frames": int((km.labels == j).sum()),
         "mean_position": pos[km.labels == j].mean(0).tolist() if np.any(km.labels == j) else None}
        for j in range(k)]}
    result["labels"] = km.labels
    return result, feats, pos


def plot_game(result: dict, feats: np.ndarray, pos: np.ndarray):
    """Best feature vs the player's position, held-out correlations against both baselines and the
    permutation null, cluster occupancy per position."""
    import matplotlib
    import seaborn as sns

    from .figures import _STYLE, _finish, _new_figure

    axis = result["axes"][0]
    y = pos[:, 0 if axis == "x" else 1]
    res = result[axis]
    colours = sns.color_palette("colorblind")
    with matplotlib.rc_context(_STYLE):
        fig, axes = _new_figure(1, 3, width=4.4, height=3.6)
        ax = axes[0, 0]
        top = int(res["in_sample"]["top_feature"])
        jitter = y + np.random.default_rng(0).uniform(-0.15, 0.15, y.shape)
        ax.scatter(jitter, feats[:, top], s=3, alpha=0.3, color=colours[0], linewidths=0)
        _finish(ax, f"feature {top}: |r| = {res['in_sample']['top_feature_corr']:.2f}",
                f"player {axis} (grid cells, game state)", "feature value", sci_x=False)
        ax = axes[0, 1]
        names = ["trained", "untrained", "gaussian"]
        values = [res[n]["heldout_corr"] for n in names]
        ax.bar(range(3), values, color=[colours[0], colours[1], "0.6"])
        for i, n in enumerate(names):
            ax.plot([i - 0.4, i + 0.4], [res[n]["null_95"]] * 2, color="k", linestyle=":", linewidth=1.2)
            ax.annotate(f"p={res[n]['p_value']:.3f}", (i, max(values[i], 0) + 0.02), ha="center",
                        fontsize="x-small")
        ax.set_xticks(range(3), ["world model", "untrained\nsame model", "Gaussian\nfeatures"])
        ax.set_ylim(min(0.0, min(values)) - 0.05, 1.1)
        _finish(ax, "held-out correlation (dotted: 95% of null)", "", "correlation", sci_x=False)
        ax = axes[0, 2]
        labels = result["labels"]
        k = int(labels.max()) + 1
        xs = np.clip(np.rint(y).astype(int), 0, None)
        counts = np.zeros((k, xs.max() + 1))
        np.add.at(counts, (labels, xs), 1)
        frac = counts / np.maximum(counts.sum(1, keepdims=True), 1)
        im = ax.imshow(frac, aspect="auto", cmap="viridis", origin="lower")
        fig.colorbar(im, ax=ax, label="fraction of the cluster's frames")
        ax.grid(False)
        _finish(ax, f"k-means (k={k}) vs player {axis}", f"player {axis}", "cluster", sci_x=False)
        fig.suptitle(f"{result['game']}: latent state vs the player's position ({result['frames']:,} frames, "
                     f"{result['episodes']} episodes, {result['features']} features)")
    return fig


def run_latent_analysis(model_path: str | Path, games: list[str], out_dir: str | Path, k: int = 8,
                        max_frames: int = 20_000, n_random: int = 5, n_perm: int = 200, seed: int = 0,
                        threads: int = 1) -> dict:
    """Seed 001 section 3.3 per game: frames of seeded random play, the player's position read from the
    game's state, the model's posterior features, k-means, CCA, and the held-out correlation with its
    permutation test next to the untrained model and Gaussian features. Writes ``latent.json`` and
    ``latent_{game}.png/.svg`` into ``out_dir``. Games without a position in their state (Atari, Mario)
    are skipped with the reason in ``latent.json``."""
    import torch

    from ..dreamer import Dreamer
    from .figures import save_figure

    torch.manual_seed(seed)
    if threads > 0:
        torch.set_num_threads(threads)
    agent = Dreamer.load(model_path)
    untrained = Dreamer(agent.cfg, agent.obs_shape, agent.n_actions)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out: dict = {"model": str(model_path), "games": {}, "skipped": {}}
    import matplotlib.pyplot as plt

    for game in games:
        try:
            result, feats, pos = analyse_game(agent, untrained, game, k, max_frames, n_random, n_perm, seed)
        except NoPositionError as e:
            out["skipped"][game] = str(e)
            continue
        fig = plot_game(result, feats, pos)
        save_figure(fig, out_dir, f"latent_{game}")
        plt.close(fig)
        result.pop("labels")
        out["games"][game] = result
    parts = []
    for game, r in out["games"].items():
        if not r["axes"]:
            continue
        a = r["axes"][0]
        t, u, g = r[a]["trained"], r[a]["untrained"], r[a]["gaussian"]
        parts.append(f"{game} {a}: {t['heldout_corr']:.2f} (p={t['p_value']:.3f}) vs untrained "
                     f"{u['heldout_corr']:.2f}, Gaussian {g['heldout_corr']:.2f}")
    out["summary"] = ("Latent analysis (player position from the game state, held-out correlation and "
                      "permutation p over per-episode circular shifts): " + ("; ".join(parts) or "no game"))
    if out["skipped"]:
        out["summary"] += "; skipped: " + "; ".join(out["skipped"].values())
    atomic_write(out_dir / "latent.json", lambda p: Path(p).write_text(json.dumps(out, indent=2) + "\n"))
    return out
