"""V-M-C figures and table of a study (rule ``plot_vmc``), per game and seed:

* ``{game}_seed{s}_reconstructions``: dataset frames (top) and V's reconstructions from ``mu`` (bottom);
* ``{game}_seed{s}_predictions``: the next frames of a dataset episode (top) and M's prediction of them
  (bottom): V decodes the mean of M's most likely Gaussian for ``z_{t+1}``, given the real ``z_{<=t}``
  and actions (teacher forcing);
* ``{game}_seed{s}_fitness``: CMA-ES best and mean fitness per generation, and the best so far;
* ``{game}_seed{s}_returns``: histogram of the evaluation's returns (wins counted for procgen).

``table.csv`` / ``table.md``: per game, V-M-C's mean test return with a 95% bootstrap CI (over seeds'
means with two or more seeds, else over episodes, as the ``ci_over`` column says), wins, the best
CMA-ES fitness, and the random policy's mean return. ``figures.json`` holds every figure's caption.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from ..io import atomic_write, write_json
from .checkpoints import load_mdnrnn, load_vae
from .config import VMCConfig
from .data import load_frames, obs_scale, to_input
from .mdnrnn import mixture_mode

matplotlib.use("Agg")
#: Colours of MinAtar's channels (a frame is drawn as the sum of its channels' colours).
_CHANNEL_COLOURS = np.array(matplotlib.colormaps["tab10"].colors)


def frame_image(x: np.ndarray) -> np.ndarray:
    """A ``(C, H, W)`` frame in [0, 1] as an ``(H, W, 3)`` RGB image (MinAtar: channel colours)."""
    if x.shape[0] == 3:
        return np.clip(x.transpose(1, 2, 0), 0, 1)
    if x.shape[0] == 1:
        return np.repeat(np.clip(x[0], 0, 1)[..., None], 3, -1)
    colours = _CHANNEL_COLOURS[np.arange(x.shape[0]) % len(_CHANNEL_COLOURS)]
    return np.clip(np.einsum("chw,ck->hwk", x, colours), 0, 1)


def _strip(top: np.ndarray, bottom: np.ndarray, labels: tuple[str, str], title: str) -> Figure:
    n = len(top)
    fig = Figure(figsize=(1.3 * n, 3.0), layout="constrained")
    axes = fig.subplots(2, n, squeeze=False)
    for row, (frames, label) in enumerate(zip((top, bottom), labels, strict=True)):
        for i in range(n):
            ax = axes[row, i]
            ax.imshow(frame_image(frames[i]), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row, 0].set_ylabel(label)
    fig.suptitle(title)
    return fig


@torch.no_grad()
def reconstructions(vae, frames, scale: float, n: int, rng: np.random.Generator):
    idx = np.sort(rng.choice(frames.num_frames, size=min(n, frames.num_frames), replace=False))
    x = to_input(frames.obs[idx], scale)
    return x.numpy(), vae.decode(vae.encode(x)[0]).numpy()


@torch.no_grad()
def predictions(vae, mdn, frames, scale: float, n: int):
    """Real frames ``t+1 .. t+n`` of the longest episode and M's predictions of them."""
    ep = int(np.argmax(frames.lengths))
    s, length = int(frames.starts[ep]), int(frames.lengths[ep])
    n = min(n, length - 1)
    x = to_input(frames.obs[s:s + n + 1], scale)
    z, _ = vae.encode(x)
    action = torch.as_tensor(frames.action[s + 1:s + n + 1])
    (log_pi, mu, _, _, _), _, _ = mdn(z[None, :-1], action[None])
    z_next = mixture_mode(log_pi[0], mu[0])
    return x[1:].numpy(), vae.decode(z_next).numpy()


def _save(fig: Figure, out: Path, name: str) -> None:
    for ext in ("png", "svg"):
        atomic_write(out / f"{name}.{ext}", lambda p, e=ext: fig.savefig(p, format=e, dpi=110))


def _fitness_figure(rows: pd.DataFrame, title: str) -> Figure:
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.subplots()
    ax.plot(rows["generation"], rows["best_fitness"], marker="o", ms=3, label="best of generation")
    ax.plot(rows["generation"], rows["mean_fitness"], marker="o", ms=3, label="population mean")
    ax.plot(rows["generation"], rows["best_so_far"], linestyle="--", color="0.3", label="best so far")
    ax.set_xlabel("CMA-ES generation")
    ax.set_ylabel("fitness (mean return of the rollouts)")
    ax.set_title(title)
    ax.legend(fontsize="small")
    return fig


def _returns_figure(ev: pd.DataFrame, title: str) -> Figure:
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.subplots()
    ax.hist(ev["episode_return"], bins=min(30, max(5, ev["episode_return"].nunique())), color="tab:green")
    mean = ev["episode_return"].mean()
    ax.axvline(mean, color="k", linestyle="--", label=f"mean {mean:.2f}")
    ax.set_xlabel("episode return")
    ax.set_ylabel("episodes")
    ax.set_title(title)
    ax.legend(fontsize="small")
    return fig


def _bootstrap_ci(values: np.ndarray, rng: np.random.Generator, n_boot: int = 2000) -> tuple[float, float]:
    if len(values) < 2:
        return float("nan"), float("nan")
    means = rng.choice(values, size=(n_boot, len(values)), replace=True).mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def vmc_table(runs: list[Path], random_files: list[str | Path], seed: int = 0) -> pd.DataFrame:
    """One row per game: V-M-C's test return (mean, 95% bootstrap CI), wins, best fitness, random level."""
    evals = pd.concat([pd.read_csv(Path(r) / "evaluation.csv") for r in runs], ignore_index=True)
    summaries = [json.loads((Path(r) / "controller_summary.json").read_text()) for r in runs]
    fitness = pd.DataFrame([{"game": s["game"], "best_fitness": s["best_fitness"],
                             "generations": s["generations"]} for s in summaries])
    randoms = pd.concat([pd.read_csv(f) for f in random_files], ignore_index=True) if random_files else None
    rng = np.random.default_rng(seed)
    rows = []
    for game, ev in evals.groupby("game", sort=True):
        per_seed = ev.groupby("seed")["episode_return"].mean().to_numpy()
        over = "seeds" if len(per_seed) >= 2 else "episodes"
        low, high = _bootstrap_ci(per_seed if over == "seeds" else ev["episode_return"].to_numpy(), rng)
        fit = fitness[fitness.game == game]
        row = {"game": game, "method": "V-M-C", "seeds": len(per_seed), "episodes": len(ev),
               "mean_return": float(ev["episode_return"].mean()), "ci_low": low, "ci_high": high,
               "ci_over": over, "wins": int(ev["win"].sum()) if ev["win"].notna().any() else None,
               "best_fitness": float(fit.best_fitness.mean()), "generations": int(fit.generations.max())}
        if randoms is not None and "game" in randoms and (randoms.game == game).any():
            row["random_return"] = float(randoms[randoms.game == game]["episode_return"].mean())
        rows.append(row)
    return pd.DataFrame(rows)


def plot_vmc(runs: list[str | Path], datasets: list[str | Path], random_files: list[str | Path],
             out: str | Path, cfg: VMCConfig, seed: int = 0, n_frames: int = 8) -> dict:
    """Every figure of every run (``results/vmc/{game}/seed{s}``, with its game's dataset folder), the
    table, and ``figures.json``; returns the caption manifest."""
    if len(runs) != len(datasets):
        raise ValueError(f"plot-vmc: {len(runs)} run folders but {len(datasets)} dataset folders")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, str] = {}
    for run, dataset in zip(map(Path, runs), datasets, strict=True):
        vae = load_vae(run / "vae.pt")
        mdn = load_mdnrnn(run / "mdnrnn.pt", vae)
        game, run_seed = vae.meta["game"], vae.meta["seed"]
        frames = load_frames(dataset, min(cfg.max_frames or 20_000, 20_000), 0.0)
        scale = obs_scale(game)
        stem = f"{game}_seed{run_seed}"
        real, recon = reconstructions(vae, frames, scale, n_frames, np.random.default_rng([seed, run_seed]))
        _save(_strip(real, recon, ("dataset", "V"), f"{game}: V's reconstructions (latent {vae.latent})"),
              out, f"{stem}_reconstructions")
        manifest[f"{stem}_reconstructions"] = (f"{game}, seed {run_seed}: dataset frames (top) and V's "
                                               "reconstructions from the latent mean (bottom).")
        real, pred = predictions(vae, mdn, frames, scale, n_frames)
        _save(_strip(real, pred, ("real t+1", "M's t+1"), f"{game}: M's one-step predictions"),
              out, f"{stem}_predictions")
        manifest[f"{stem}_predictions"] = (
            f"{game}, seed {run_seed}: consecutive frames of the dataset's longest episode (top) and M's "
            "prediction of each from the real past (V decodes the mean of M's most likely Gaussian).")
        rows = pd.read_csv(run / "controller_metrics.csv")
        _save(_fitness_figure(rows, f"{game}: CMA-ES fitness"), out, f"{stem}_fitness")
        manifest[f"{stem}_fitness"] = (f"{game}, seed {run_seed}: CMA-ES best and mean fitness per "
                                       "generation "
                                       "(fitness: mean return of a candidate's rollouts).")
        ev = pd.read_csv(run / "evaluation.csv")
        wins = f", {int(ev.win.sum())} wins" if ev["win"].notna().any() else ""
        _save(_returns_figure(ev, f"{game}: V-M-C test returns ({len(ev)} episodes{wins})"), out,
              f"{stem}_returns")
        manifest[f"{stem}_returns"] = f"{game}, seed {run_seed}: returns of {len(ev)} test episodes{wins}."
    table = vmc_table(list(map(Path, runs)), random_files, seed)
    atomic_write(out / "table.csv", lambda p: table.to_csv(p, index=False))
    text = table.to_markdown(index=False, floatfmt=".3f") if _has_tabulate() else table.to_string(index=False)
    atomic_write(out / "table.md", lambda p: p.write_text(text + "\n"))
    write_json(out / "figures.json", manifest)
    return manifest


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True
