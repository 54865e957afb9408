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


def object_recall(real: np.ndarray, model: np.ndarray, threshold: float = 0.5) -> float:
    """Fraction of the real frames' object cells (value > 0) that the model draws at ``threshold`` or
    more: how much of the game a reconstruction or dream shows (NaN when the frames hold no object).
    A blank prediction scores 0 however small its squared error on sparse frames."""
    on = np.asarray(real) > 0
    if not on.any():
        return float("nan")
    return float((np.asarray(model)[on] >= threshold).mean())


def write_gif(real: np.ndarray, model: np.ndarray, context: int, path: str | Path, scale: int | None = None,
              seconds_per_frame: float = 0.4) -> Path:
    """An animated GIF of the rollout: real | model | |difference| side by side, one GIF frame per step;
    a red frame around the model's picture once it dreams (after ``context`` observed frames)."""
    import imageio.v2 as imageio

    real_rgb, model_rgb = to_rgb(real), to_rgb(model)
    diff = 1.0 - np.repeat(np.abs(real - model).max(1)[..., None], 3, axis=-1)  # worst channel, dark = wrong
    h, w = real_rgb.shape[1:3]
    scale = scale or max(1, 96 // max(h, w))
    border = 3

    def panel(img: np.ndarray, colour) -> np.ndarray:
        big = np.kron(img, np.ones((scale, scale, 1)))
        framed = np.empty((big.shape[0] + 2 * border, big.shape[1] + 2 * border, 3))
        framed[:] = colour
        framed[border:-border, border:-border] = big
        return framed

    frames = []
    for t in range(len(real)):
        edge = (1.0, 0.0, 0.0) if t >= context else 1.0
        row = np.concatenate([panel(real_rgb[t], 1.0), panel(model_rgb[t], edge), panel(diff[t], 1.0)], 1)
        frames.append(np.clip(row * 255.0, 0, 255).astype(np.uint8))
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp.gif")
    imageio.mimsave(tmp, frames, duration=seconds_per_frame, loop=0)
    tmp.replace(path)
    return path


def _pct(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:.0%}"


def run_rollouts(model_path: str | Path, seen: list[str], unseen: list[str], out_dir: str | Path,
                 context: int = 5, horizon: int = 15, seed: int = 0, threads: int = 1) -> dict:
    """Dream ``horizon`` steps after ``context`` observed frames on each game; writes ``{game}.png/.svg``,
    an animated ``{game}.gif`` and ``rollouts.json`` into ``out_dir``. ``seen`` games were in the
    pre-training set, ``unseen`` not. Per game, ``rollouts.json`` has the squared error of every step and
    the object recall (:func:`object_recall`) of the observed and of the dreamed frames."""
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
                                 "mse_per_step": [float(v) for v in mse],
                                 "recall_observed": object_recall(real[:ctx], model[:ctx]),
                                 "recall_dreamed": object_recall(real[ctx:], model[ctx:])}
        fig = plot_rollout(real, model, ctx, f"{game} ({kind})")
        save_figure(fig, out_dir, game)
        plt.close(fig)
        write_gif(real, model, ctx, out_dir / f"{game}.gif")
    parts = []
    for kind in ("seen", "unseen"):
        games = {g: v for g, v in result["games"].items() if v["kind"] == kind}
        if games:
            rec = ", ".join(f"{g} {_pct(v['recall_observed'])}/{_pct(v['recall_dreamed'])}"
                            for g, v in games.items())
            parts.append(f"{kind}: {rec}")
    result["summary"] = (f"Dreamed rollouts of {Path(model_path).parent.parent.name}/"
                         f"{Path(model_path).parent.name}: share of the real objects drawn (p >= 0.5) in "
                         f"reconstructions/dreams, " + "; ".join(parts))
    atomic_write(out_dir / "rollouts.json", lambda p: Path(p).write_text(json.dumps(result, indent=2) + "\n"))
    return result


def plot_reconstructions(real: np.ndarray, models: dict[str, np.ndarray], title: str):
    """Seed 003 fig. 8: the same real frames (top row) and their reconstructions by each model."""
    import matplotlib.pyplot as plt

    n = len(real)
    rows = [("real", to_rgb(real))] + [(name, to_rgb(frames)) for name, frames in models.items()]
    fig, axes = plt.subplots(len(rows), n, figsize=(1.1 * n + 1.6, 1.15 * len(rows) + 0.5), squeeze=False)
    for r, (name, rgb) in enumerate(rows):
        for t in range(n):
            ax = axes[r, t]
            ax.imshow(rgb[t], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(name, fontsize=7, rotation=0, ha="right", va="center")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def run_reconstructions(models: dict[str, str | Path], games: list[str], out_dir: str | Path,
                        frames: int = 5, seed: int = 0, threads: int = 1) -> dict:
    """Reconstruct the same ``frames`` frames of each game (seeded random play) with every model
    (``{label: saved Dreamer}``: world models or agents trained on one game and on sets of games);
    writes ``{game}.png/.svg`` and ``reconstructions.json`` (per game and model: squared error and
    object recall) into ``out_dir``."""
    import matplotlib.pyplot as plt
    import torch

    from ..dreamer import Dreamer
    from .figures import save_figure

    if not models or not games:
        raise ValueError("compare-reconstructions needs at least one model and one game")
    if threads > 0:
        torch.set_num_threads(threads)
    loaded = {name: Dreamer.load(path) for name, path in models.items()}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result: dict = {"models": {k: str(v) for k, v in models.items()}, "frames": frames, "seed": seed,
                    "games": {}}
    for game in games:
        ep = random_episode(game, frames, seed)
        recon, stats = {}, {}
        for name, agent in loaded.items():
            real = ep["obs"].astype(np.float32) / float(agent.cfg.obs_max)
            if real.shape[1:] != tuple(agent.obs_shape):
                raise ValueError(f"{game}: observations {real.shape[1:]} do not fit model {name!r} "
                                 f"({tuple(agent.obs_shape)}, {models[name]})")
            recon[name] = dream(agent, ep["obs"], ep["action"], context=len(ep["obs"]), seed=seed)
            stats[name] = {"mse": float(((real - recon[name]) ** 2).mean()),
                           "recall": object_recall(real, recon[name])}
        result["games"][game] = stats
        fig = plot_reconstructions(real, recon, f"{game}: the same {len(real)} frames reconstructed by each "
                                                f"model (seed 003 fig. 8)")
        save_figure(fig, out_dir, game)
        plt.close(fig)
    best = {g: min(v, key=lambda m: v[m]["mse"]) for g, v in result["games"].items()}
    result["summary"] = ("Reconstructions of unseen games by models trained on one game and on sets: lowest "
                         "error " + "; ".join(f"{g}: {m} (MSE {result['games'][g][m]['mse']:.4f})"
                                              for g, m in best.items()))
    atomic_write(out_dir / "reconstructions.json",
                 lambda p: Path(p).write_text(json.dumps(result, indent=2) + "\n"))
    return result


def snapshot_files(specs: list[str | Path]) -> list[tuple[int, Path]]:
    """``(update, path)`` of world-model snapshots, sorted by update: files named ``update{N}.pt`` (or
    folders holding them, e.g. ``results/pretrain/{envset}/seed{seed}/snapshots``), and ``N=path`` specs
    for files named otherwise (the final ``world_model.pt``)."""
    import re

    found: dict[int, Path] = {}
    for spec in specs:
        text = str(spec)
        number, sep, rest = text.partition("=")
        if sep and number.isdigit():
            found[int(number)] = Path(rest)
            continue
        path = Path(text)
        if path.is_dir():
            files = sorted(path.glob("update*.pt"))
        elif path.suffix != ".pt" and not path.exists():
            files = []  # a snapshot folder not written (yet): no snapshots from it
        else:
            files = [path]
        for f in files:
            m = re.fullmatch(r"update(\d+)\.pt", f.name)
            if m is None:
                raise ValueError(f"{f}: not a snapshot named update<N>.pt (give N={f} instead)")
            found[int(m.group(1))] = f
    return sorted(found.items())


def run_prediction_quality(snapshots: list[str | Path], seen: list[str], unseen: list[str],
                           out_dir: str | Path, context: int = 5, horizon: int = 15, seed: int = 0,
                           threads: int = 1) -> dict:
    """Seed 002's 1M / 3M / 5M panels as a curve: every snapshot dreams the same seeded episodes of each
    game; writes ``prediction_quality.png/.svg`` (dreamed-frame error and object recall against updates,
    seen games solid, unseen dashed; the last dreamed frame of the first game per snapshot below) and
    ``prediction_quality.json``."""
    import matplotlib
    import torch

    from ..dreamer import Dreamer
    from .figures import _STYLE, _new_figure, condition_palette, save_figure

    files = snapshot_files(snapshots)
    if not files:
        raise ValueError("prediction-quality: no snapshots found in " + ", ".join(map(str, snapshots)))
    if threads > 0:
        torch.set_num_threads(threads)
    games = [*seen, *unseen]
    episodes = {g: random_episode(g, context + horizon, seed) for g in games}
    result: dict = {"context": context, "horizon": horizon, "seed": seed, "updates": [u for u, _ in files],
                    "games": {g: {"kind": "seen" if g in seen else "unseen", "dream_mse": [],
                                  "dream_recall": []} for g in games}}
    last_frames = []
    for _, path in files:
        agent = Dreamer.load(path)
        for g in games:
            ep = episodes[g]
            ctx = min(context, len(ep["obs"]) - 1)
            real = ep["obs"].astype(np.float32) / float(agent.cfg.obs_max)
            model = dream(agent, ep["obs"], ep["action"], ctx, seed=seed)
            result["games"][g]["dream_mse"].append(float(((real[ctx:] - model[ctx:]) ** 2).mean()))
            result["games"][g]["dream_recall"].append(object_recall(real[ctx:], model[ctx:]))
            if g == games[0]:
                last_frames.append((real[-1:], model[-1:]))
    updates = np.asarray(result["updates"], dtype=float)
    palette = condition_palette(games)
    with matplotlib.rc_context(_STYLE):
        fig, axes = _new_figure(2, 2, width=5.0, height=3.4)
        for g, v in result["games"].items():
            style = "-" if v["kind"] == "seen" else "--"
            axes[0, 0].plot(updates, v["dream_mse"], style, marker="o", color=palette[g],
                            label=f"{g} ({v['kind']})")
            axes[0, 1].plot(updates, v["dream_recall"], style, marker="o", color=palette[g])
        axes[0, 0].set(title=f"dreamed-frame error ({horizon} steps after {context} observed)",
                       xlabel="pre-training updates", ylabel="mean squared error")
        axes[0, 1].set(title="share of real objects drawn in the dreams (p >= 0.5)",
                       xlabel="pre-training updates", ylabel="object recall", ylim=(-0.05, 1.05))
        axes[0, 0].legend(fontsize="x-small")
        gap = np.ones((last_frames[0][0].shape[2], 1, 3))
        strip = np.concatenate([np.concatenate([to_rgb(r)[0], gap, to_rgb(m)[0], gap, gap], axis=1)
                                for r, m in last_frames], axis=1)
        ax = axes[1, 0]
        ax.imshow(strip, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{games[0]}: last real | dreamed frame at updates "
                     + ", ".join(f"{u:,}" for u in result["updates"]), fontsize="small")
        axes[1, 1].set_visible(False)
        fig.suptitle("Prediction quality over pre-training (seed 002)")
    out_dir = Path(out_dir)
    save_figure(fig, out_dir, "prediction_quality")
    first, last = result["updates"][0], result["updates"][-1]
    result["summary"] = ("Prediction quality over pre-training: dreamed-frame error from update "
                         f"{first:,} to {last:,}: " + "; ".join(
                             f"{g} {v['dream_mse'][0]:.4f} -> {v['dream_mse'][-1]:.4f}"
                             for g, v in result["games"].items()))
    atomic_write(out_dir / "prediction_quality.json",
                 lambda p: Path(p).write_text(json.dumps(result, indent=2) + "\n"))
    return result
