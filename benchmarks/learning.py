"""Does DreamerV2 learn? Scratch agents per MinAtar game and seed against the public reference curves.

Trains (or resumes) ``wmtransfer train-agent`` runs, the project's own DQN (MinAtar-paper network and
schedule) at the same env-step budget, and the random policy; then writes a curve figure and a table of
returns at 100k and 250k env steps against the references read from the published curves (about
+-10%; train returns unless noted):

* kenjyoung/dreamerv2_JAX (DreamerV2 on gymnax's MinAtar: minimal action sets, no sticky actions; 50 x 50
  every 10 env steps),
* RajGhugare19/dreamerv2 (MinAtar's minimal action sets, sticky actions 0.1; evaluation returns at 100k,
  train at 250k),
* the MinAtar paper's DQN at 250k (sticky actions 0.1; every run here plays MinAtar's full action set
  with sticky actions unless ``--game-settings`` says otherwise).

    python benchmarks/learning.py --games minatar-breakout minatar-space_invaders --env-steps 100000 \\
        --train-every 12 --jobs 2                     # trains (resumes) then reports
    python benchmarks/learning.py --report-only       # figure + table from existing runs

The table keeps the committed rows of runs that are not on this machine (marked ``"from": "committed
table"``) and the figure is drawn from the table, so a report made elsewhere adds runs without losing any.

``--variant NAME --dreamer JSON`` trains DreamerV2 with the study-style ``dreamer`` section JSON (preset and
overrides) into ``{game}/dreamer-NAME/seed{s}``, drawn beside the base runs; ``--game-settings JSON`` also
changes the game's rules for that variant (its runs' ``config.json`` records them).

Runs live under ``--runs`` (default ``learning_runs/``, git-ignored): ``{game}/dreamer/seed{s}``,
``{game}/dqn/seed{s}``, ``{game}/random.csv``. The report goes to ``benchmarks/results/learning.json``
and ``docs/figures/learning_minatar.png``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, machine, save  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIGURE = ROOT / "docs" / "figures" / "learning_minatar.png"

#: Returns read from the published curves (issue 9): (source, env step) -> game -> return.
REFERENCES: dict[str, dict[int, dict[str, float]]] = {
    "dreamerv2_JAX (train)": {
        100_000: {"breakout": 5, "space_invaders": 25, "freeway": 15, "asterix": 2},
        250_000: {"breakout": 10, "space_invaders": 45, "freeway": 28, "asterix": 2},
    },
    "RajGhugare19 (eval 100k, train 250k)": {
        100_000: {"breakout": 2, "space_invaders": 15, "freeway": 22, "asterix": 0.5, "seaquest": 1},
        250_000: {"breakout": 4, "space_invaders": 20, "freeway": 15, "asterix": 1, "seaquest": 1},
    },
    "MinAtar-paper DQN (train)": {
        250_000: {"breakout": 7, "space_invaders": 22, "freeway": 5.5, "asterix": 1, "seaquest": 0.8},
    },
}
#: Legend labels of the variants run so far (a variant without one is labelled by its name).
VARIANT_LABELS = {
    "rs10": "DreamerV2 + entropy bonus, H 10, reward x10",
    "raj_current": "DreamerV2 rajghugare_minatar, 250 replayed/step, official heads",
    "next": "DreamerV2 head_target next",
    "transition": "DreamerV2 head_target transition",
    "mlp_glorot": "DreamerV2 dense encoder/decoder, glorot init, transition heads",
    "dense_x2": "DreamerV2 minatar_dense, 2x intensity (16 x 50 every 6 env steps)",
    "gymnax_rules": "DreamerV2 minatar_dense on gymnax's rules (minimal actions, no sticky actions)",
    "gymnax_eps": "DreamerV2 minatar_dense on gymnax's rules, epsilon 0.05 on the actor",
}
#: Line style of each seed's train curve and marker of its eval curve, in seed order.
SEED_STYLES = ("-", "-.", (0, (5, 1)))  # not "--": the random policy's
SEED_MARKERS = (".", "x", "+")
#: The MinAtar paper's DQN (network, optimiser, schedule), for the project's DQN curve.
DQN_CONFIG = {"network": "minatar_conv", "save_every": 25_000}


def run(cmd: list[str], log: Path) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    print("+", " ".join(cmd), f"> {log}", flush=True)
    return subprocess.Popen(cmd, stdout=log.open("a"), stderr=subprocess.STDOUT)


def train(args: argparse.Namespace) -> None:
    """Every missing or unfinished run, ``--jobs`` at a time, each on ``--threads`` torch threads."""
    exe = [sys.executable, "-m", "wmtransfer.cli"]
    agent_cfg = {"env_steps": args.env_steps, "eval_every": 5000, "eval_episodes": 10,
                 "eval_time_limit": 2500, "log_every": 1000, "checkpoint_every": 500}
    if args.prefill:
        agent_cfg["prefill"] = args.prefill
    if args.train_every:
        agent_cfg["train_every"] = args.train_every
    algos = set(args.algos)
    queue: list[tuple[list[str], Path]] = []
    for game in args.games:
        for seed in args.seeds:
            out = args.runs / game / dreamer_dir(args.variant) / f"seed{seed}"
            if "dreamer" in algos and not (out / "summary.json").exists():
                extra = ["--dreamer", args.dreamer] if args.dreamer else []
                extra += ["--game-settings", args.game_settings] if args.game_settings else []
                queue.append((exe + ["train-agent", "--game", game, "--seed", str(seed), "--out", str(out),
                                     "--threads", str(args.threads), "--device", args.device,
                                     "--config", json.dumps(agent_cfg), *extra], out.with_suffix(".log")))
            if "dqn" in algos:
                out = args.runs / game / "dqn" / f"seed{seed}"
                dqn_cfg = {**DQN_CONFIG, "total_steps": args.env_steps, "checkpoint_steps": [args.env_steps]}
                if not (out / "metrics.csv").exists() or not (out / "checkpoints").exists():
                    queue.append((exe + ["train-dqn", "--game", game, "--seed", str(seed), "--out", str(out),
                                         "--threads", str(args.threads), "--config", json.dumps(dqn_cfg)],
                                  out.with_suffix(".log")))
        csv = args.runs / game / "random.csv"
        if "random" in algos and not csv.exists():
            queue.append((exe + ["random-baseline", "--game", game, "--episodes", "100",
                                 "--out", str(csv)], csv.with_suffix(".log")))
        csv = args.runs / game / f"random-{args.variant}.csv"  # the floor under the variant's own rules
        if "random" in algos and args.game_settings and not csv.exists():
            queue.append((exe + ["random-baseline", "--game", game, "--episodes", "100", "--game-settings",
                                 args.game_settings, "--out", str(csv)], csv.with_suffix(".log")))
    running: list[subprocess.Popen] = []
    while queue or running:
        while queue and len(running) < args.jobs:
            running.append(run(*queue.pop(0)))
        running[0].wait()
        done = running.pop(0)
        if done.returncode:
            raise SystemExit(f"failed ({done.returncode}): {' '.join(done.args)}")


def dreamer_dir(variant: str | None) -> str:
    return f"dreamer-{variant}" if variant else "dreamer"


def binned(df: pd.DataFrame, column: str, width: int, end: int) -> pd.Series:
    rows = df.dropna(subset=[column])
    rows = rows[rows.env_step <= end]
    return rows.groupby((rows.env_step - 1) // width * width + width)[column].mean()


def return_at(df: pd.DataFrame, step: int, window: int = 10_000) -> float | None:
    """Mean train return of the episodes that ended in (step - window, step]."""
    rows = df.dropna(subset=["episode_return"])
    rows = rows[(rows.env_step > step - window) & (rows.env_step <= step)]
    return float(rows.episode_return.mean()) if len(rows) else None


def run_entry(path: Path) -> dict:
    """A run's row of the table from its ``metrics.csv`` (and ``summary.json`` once finished)."""
    df = pd.read_csv(path)
    end = int(df.env_step.max())
    # whole 5k bins only: a stopped run's last, partly filled bin would stand for a few episodes
    curve = binned(df, "episode_return", 5000, end - end % 5000)
    entry: dict = {"env_steps": end,
                   "train_return_per_5k": {int(k): round(float(v), 3) for k, v in curve.items()},
                   **{f"train_return_{s // 1000}k": return_at(df, s) for s in (50_000, 100_000, 250_000)
                      if s <= end}}
    if "eval_return" in df and df.eval_return.notna().any():
        ev = df.dropna(subset=["eval_return"])
        entry["eval_return"] = {int(s): float(r) for s, r in zip(ev.env_step, ev.eval_return, strict=True)}
    run_dir = path.parent.parent if path.parent.name == "partial" else path.parent
    config = path.parent / "config.json"
    settings = json.loads(config.read_text()).get("game_settings") if config.exists() else None
    if settings:
        entry["game_settings"] = settings
    summary = run_dir / "summary.json"
    if summary.exists():
        s = json.loads(summary.read_text())
        entry["wall_time_s"] = round(s["wall_time"], 1)
        entry["updates"] = s.get("updates")
    for col in ("wm_probe_info", "wm_probe_swap", "wm_probe_gap", "wm_post_entropy"):
        if col in df and df[col].notna().any():
            entry[f"{col}_last"] = round(float(df[col].dropna().iloc[-1]), 3)
    return entry


def numeric_keys(entry: dict) -> dict:
    """``entry`` with its per-env-step dicts keyed by int again, so the saved table sorts them by value."""
    return {k: {int(s) if s.isdigit() else s: v for s, v in val.items()} if isinstance(val, dict) else val
            for k, val in entry.items()}


def collect(runs: Path, previous: dict) -> dict:
    """game -> {algo -> {seed -> entry}, "random", "references"}: every run under ``runs`` read afresh,
    and the rows of ``previous`` (the committed table) whose runs are not on this machine kept as they
    were (marked ``"from": "committed table"``), so a report on another machine loses no earlier run."""
    table: dict[str, dict] = {}
    games = {p.parent.parent.name for p in runs.glob("*/dreamer*/seed*")} | set(previous)
    for game in sorted(games):
        row: dict = {algo: dict(seeds) for algo, seeds in previous.get(game, {}).items()
                     if algo.startswith(("dreamer", "dqn"))}
        for seeds in row.values():
            if "partial" in seeds and "seed0" not in seeds:  # the key of unfinished runs before 2026-12-02
                seeds["seed0"] = seeds.pop("partial")  # (every run so far was seed 0)
            for name, entry in seeds.items():
                seeds[name] = entry = numeric_keys(entry)  # JSON made the env steps strings
                entry.setdefault("from", "committed table")
        for algo_dir in sorted(d for d in (runs / game).glob("*") if d.is_dir()):
            if not algo_dir.name.startswith(("dreamer", "dqn")):
                continue
            for seed_dir in sorted(algo_dir.glob("seed*")):
                path = seed_dir / "metrics.csv"
                path = path if path.exists() else seed_dir / "partial" / "metrics.csv"
                if path.exists():
                    row.setdefault(algo_dir.name, {})[seed_dir.name] = run_entry(path)
                    row[algo_dir.name].pop("partial", None)  # written under that name before 2026-12-02
        rand = runs / game / "random.csv"
        if rand.exists():
            row["random"] = float(pd.read_csv(rand).episode_return.mean())
        elif "random" in previous.get(game, {}):
            row["random"] = previous[game]["random"]
        # variants played under other rules (--game-settings): the random policy under theirs
        row["random_variants"] = dict(previous.get(game, {}).get("random_variants", {}))
        for csv in sorted((runs / game).glob("random-*.csv")):
            row["random_variants"][csv.stem.removeprefix("random-")] = float(
                pd.read_csv(csv).episode_return.mean())
        if not row["random_variants"]:
            del row["random_variants"]
        short = game.split("-", 1)[1]
        row["references"] = {source: {step: values[short] for step, values in at.items() if short in values}
                             for source, at in REFERENCES.items()}
        table[game] = row
    return table


def report(args: argparse.Namespace) -> dict:
    """The table (runs here + the committed table's others) and its figure, both drawn from the table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    saved = RESULTS / "learning.json"
    previous = json.loads(saved.read_text())["results"] if saved.exists() else {}
    table = collect(args.runs, previous)
    if not table:
        raise SystemExit(f"no runs under {args.runs} and no table at {saved}")
    fig, axes = plt.subplots(1, len(table), figsize=(6.4 * len(table), 7.2), squeeze=False)
    markers = {"dreamerv2_JAX (train)": "^", "RajGhugare19 (eval 100k, train 250k)": "s",
               "MinAtar-paper DQN (train)": "x"}
    # one colour per variant across all panels, so a variant run on several games is found at a glance
    variants = sorted({a for row in table.values() for a in row if a.startswith("dreamer-")})
    all_colours = {"dreamer": "C0", "dqn": "C1", **{v: f"C{(i + 2) % 10}" for i, v in enumerate(variants)}}
    for ax, (game, row) in zip(axes[0], table.items(), strict=True):
        colours = {algo: colour for algo, colour in all_colours.items() if algo in row}
        for algo, colour in colours.items():
            seeds = row.get(algo, {})
            for i, (seed, entry) in enumerate(sorted(seeds.items())):
                variant = algo.removeprefix("dreamer-")
                name = {"dreamer": "DreamerV2", "dqn": "DQN (MinAtar paper)"}.get(
                    algo, VARIANT_LABELS.get(variant, f"DreamerV2 {variant}"))
                if len(seeds) > 1:  # one line style per seed, each named, so the seeds can be told apart
                    name = f"{name}, {seed.replace('seed', 'seed ')}"
                # JSON keys are strings, stored in string order ("100000" < "15000"): sort as numbers
                curve = dict(sorted((int(k), v) for k, v in entry["train_return_per_5k"].items()))
                ax.plot(list(curve), list(curve.values()), colour, ls=SEED_STYLES[i % len(SEED_STYLES)],
                        label=f"{name} train")
                if entry.get("eval_return"):
                    ev = dict(sorted((int(k), v) for k, v in entry["eval_return"].items()))
                    ax.plot(list(ev), list(ev.values()), colour, ls=":",
                            marker=SEED_MARKERS[i % len(SEED_MARKERS)], label=f"{name} eval (10 ep., mode)")
        if "random" in row:
            ax.axhline(row["random"], color="grey", ls="--", lw=1, label="random policy")
        for variant, level in row.get("random_variants", {}).items():
            ax.axhline(level, color=all_colours.get(f"dreamer-{variant}", "grey"), ls=(0, (1, 3)), lw=1,
                       label=f"random policy under the rules of {variant}")
        shown_end = max([1] + [e["env_steps"] for e in row.get("dreamer", {}).values()])
        for source, at in row["references"].items():
            for step, value in at.items():
                if int(step) <= 1.1 * max(shown_end, 100_000):  # the 250k figures are in the JSON table
                    ax.plot(int(step), value, markers[source], color="k", ms=7, mfc="none", label=source)
        ax.set_title(game)
        ax.set_xlabel("env steps")
        ax.set_ylabel("return")
        ax.grid(alpha=0.3)
    for ax in axes[0]:
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=1, frameon=False)
    fig.suptitle("DreamerV2 from scratch (minatar preset unless named; each line one seed) vs references",
                 fontsize=10)
    fig.tight_layout()
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURE, dpi=110)
    print(f"wrote {FIGURE}")
    return table


def run_checkpoint(run_dir: Path, seed: int):
    """A run's last checkpoint (``ckpt/checkpoint.pt``) and its replay, sampling with ``seed``."""
    from wmtransfer.data.replay import Replay
    from wmtransfer.io import safe_load

    saved = safe_load(run_dir / "ckpt" / "checkpoint.pt")
    replay = Replay(seed=seed)
    replay.load_state_dict(saved["replay"])
    return saved, replay


def run_agent(run_dir: Path, seed: int):
    """A run's last checkpoint, its agent restored from it, and its replay (``run_checkpoint``)."""
    from wmtransfer.config import from_dict
    from wmtransfer.dreamer.agent import Dreamer
    from wmtransfer.dreamer.config import DreamerConfig

    saved, replay = run_checkpoint(run_dir, seed)
    ck = saved["agent"]
    agent = Dreamer(from_dict(DreamerConfig, ck["config"]), tuple(ck["obs_shape"]), ck["n_actions"])
    agent.restore(ck, restore_rng=False)
    return saved, agent, replay


def diagnose(run_dir: Path, batches: int = 20, seed: int = 0) -> dict:
    """What a run's world model and actor say on its own replay, from ``ckpt/checkpoint.pt``.

    * ``reward_r2``: 1 - MSE / Var(r) of the reward head under the posterior (16 x 50 sequences), against
      the reward its ``head_target`` names (r_t, or r_{t+1} within the episode; ``transition`` reads
      [z_t, h_{t+1}]);
      ``reward_pred_at_rewards``: its mean prediction at steps with a non-zero reward;
    * ``reward_r2_prior``: the same with the prior's mode [z^_t, h_t] in place of the posterior's z_t (what
      imagination sees one step ahead);
    * ``action_share``: the actor's mean action probabilities on the replayed states.
    """
    import torch

    from wmtransfer.dreamer.rssm import Latent

    saved, agent, replay = run_agent(run_dir, seed)
    ck = saved["agent"]
    wm = agent.world_model
    torch.manual_seed(seed)
    rewards, preds, prior_preds, probs = [], [], [], []
    with torch.no_grad():
        for _ in range(batches):
            data = wm.preprocess(replay.sample(16, 50))
            post, prior_stats = wm.rssm.observe(wm.encoder(data["image"]), data["action"], data["is_first"])
            prior = Latent(post.deter, wm.rssm.sample(prior_stats, sample=False))
            feat, reward, _, keep = wm.head_inputs(post, data)
            prior_feat = wm.head_inputs(prior, data)[0]
            keep = torch.ones_like(reward, dtype=torch.bool) if keep is None else keep > 0
            rewards.append(reward[keep])
            preds.append(wm.reward_head(feat).squeeze(-1)[keep])
            prior_preds.append(wm.reward_head(prior_feat).squeeze(-1)[keep])
            probs.append(torch.softmax(agent.actor(post.feat()), -1).reshape(-1, ck["n_actions"]).mean(0))
    r, y, y_prior = torch.cat(rewards), torch.cat(preds), torch.cat(prior_preds)
    nz = r != 0
    out = {"updates": ck["updates"], "env_step": saved["loop"]["env_step"],
           "reward_var": round(float(r.var()), 4), "reward_mse": round(float(((y - r) ** 2).mean()), 4),
           "reward_r2": round(float(1 - ((y - r) ** 2).mean() / r.var()), 3),
           "reward_pred_at_rewards": round(float(y[nz].mean()), 3) if nz.any() else None,
           "reward_pred_elsewhere": round(float(y[~nz].mean()), 3),
           "reward_r2_prior": round(float(1 - ((y_prior - r) ** 2).mean() / r.var()), 3),
           "action_share": [round(float(v), 3) for v in torch.stack(probs).mean(0)]}
    return out


def frame_reward(run_dir: Path, steps: int = 600, seed: int = 0) -> dict:
    """Is the reward in the frames? A small supervised CNN per question, trained on the run's own replay
    (``steps`` Adam steps of 32 x 50 sequences, pairs within an episode), R^2 on 4 held-out batches of
    64 x 50: ``prev_and_frame_to_reward`` [x_{t-1}, x_t] -> r_t (what the official reward head needs from
    [z_t, h_t]), ``frame_to_next_reward`` x_t -> r_{t+1} (``head_target`` next), ``frame_to_reward``
    x_t -> r_t. Against ``--diagnose``'s fit of the world model's own reward head, it tells whether the
    data or the model's state is missing what the reward needs."""
    import torch
    from torch import nn


    torch.manual_seed(seed)
    saved, replay = run_checkpoint(run_dir, seed)

    def pairs(n: int):
        b = replay.sample(n, 50)
        obs, r = torch.as_tensor(b["obs"]).float(), torch.as_tensor(b["reward"]).float()
        ok = ~torch.as_tensor(b["is_first"]).bool()[:, 1:]  # step t-1 -> t within one episode
        return obs[:, :-1][ok], obs[:, 1:][ok], r[:, :-1][ok], r[:, 1:][ok]

    questions = {  # inputs and target from (x_{t-1}, x_t, r_{t-1}, r_t)
        "prev_and_frame_to_reward": lambda p, c, rp, rc: (torch.cat([p, c], 1), rc),
        "frame_to_next_reward": lambda p, c, rp, rc: (p, rc),
        "frame_to_reward": lambda p, c, rp, rc: (c, rc),
    }
    held_out = [pairs(64) for _ in range(4)]
    out: dict = {"env_step": saved["loop"]["env_step"], "steps": steps}
    for name, make in questions.items():
        x0, _ = make(*held_out[0])
        c, h, w = x0.shape[1:]
        model = nn.Sequential(nn.Conv2d(c, 32, 3), nn.ELU(), nn.Conv2d(32, 64, 3), nn.ELU(), nn.Flatten(),
                              nn.Linear(64 * (h - 4) * (w - 4), 128), nn.ELU(), nn.Linear(128, 1))
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        for _ in range(steps):
            x, y = make(*pairs(32))
            loss = ((model(x).squeeze(-1) - y) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            xs, ys = [], []
            for batch in held_out:
                x, y = make(*batch)
                xs.append(model(x).squeeze(-1))
                ys.append(y)
            pred, y = torch.cat(xs), torch.cat(ys)
            out[f"{name}_r2"] = round(float(1 - ((pred - y) ** 2).mean() / y.var()), 3)
        out["reward_rate"] = round(float((y != 0).float().mean()), 4)
    return out


def feature_reward(wm, replay, steps: int = 1000, batches: int = 48, seed: int = 0) -> dict:
    """R^2 of fresh MLPs (the reward head's size; Adam 1e-3, ``steps`` steps of 800 samples) on a frozen
    world model's features of ``batches`` 16 x 50 replay sequences (a quarter held out), each predicting
    r_{t+1} within the episode: ``embed`` the encoder's e_t, ``post`` [z_t, h_{t+1}] (what ``head_target``
    transition reads), ``post_probs`` the same with the posterior's probabilities for the sampled z_t,
    ``deter`` h_{t+1}; ``head`` the model's own reward head on the features its ``head_target`` names; and
    (Bernoulli images) ``recon_p_at_on_cells``, per channel the mean probability the posterior's
    reconstruction gives the cells that are on (a channel the model ignores stays near its base rate)."""
    import torch

    from wmtransfer.dreamer.networks import MLP

    cfg = wm.cfg
    torch.manual_seed(seed)
    feats: dict[str, list] = {"embed": [], "post": [], "post_probs": [], "deter": []}
    targets, head_err, on_p, on_count = [], [], 0.0, 0.0
    with torch.no_grad():
        for _ in range(batches):
            data = wm.preprocess(replay.sample(16, 50))
            embed = wm.encoder(data["image"])
            post, _ = wm.rssm.observe(embed, data["action"], data["is_first"])
            if cfg.image_dist == "bernoulli":  # reconstruction at on-cells
                on = data["obs"].float() / cfg.obs_max
                on_p = on_p + (torch.sigmoid(wm.decoder(post.feat())) * on).sum((0, 1, 3, 4))
                on_count = on_count + on.sum((0, 1, 3, 4))
            keep = data["is_first"][:, 1:] == 0
            probs = (torch.softmax(post.stats.float(), -1).flatten(-2) if cfg.latent == "categorical"
                     else post.stoch)
            feats["embed"].append(embed[:, :-1][keep])
            feats["post"].append(torch.cat([post.stoch[:, :-1], post.deter[:, 1:]], -1)[keep])
            feats["post_probs"].append(torch.cat([probs[:, :-1], post.deter[:, 1:]], -1)[keep])
            feats["deter"].append(post.deter[:, 1:][keep])
            targets.append(data["reward"][:, 1:][keep])
            feat, reward, _, head_keep = wm.head_inputs(post, data)
            err = wm.reward_head(feat).squeeze(-1) - reward
            head_err.append(err.flatten() if head_keep is None else err[head_keep > 0])
    y = torch.cat(targets)
    split = int(0.75 * len(y))
    err = torch.cat(head_err)
    out: dict = {"samples": len(y), "reward_rate": round(float((y != 0).float().mean()), 4),
                 "head_r2": round(float(1 - (err ** 2).mean() / y.var()), 3)}
    if cfg.image_dist == "bernoulli":
        out["recon_p_at_on_cells"] = [round(float(v), 3) for v in on_p / on_count.clamp(min=1)]
    for name, parts in feats.items():
        x = torch.cat(parts)
        torch.manual_seed(seed)
        mlp = MLP(x.shape[1], 1, cfg.head_layers, cfg.head_units, cfg.act)
        opt = torch.optim.Adam(mlp.parameters(), 1e-3)
        for _ in range(steps):
            idx = torch.randint(0, split, (800,))
            loss = ((mlp(x[idx]).squeeze(-1) - y[idx]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            pred, test = mlp(x[split:]).squeeze(-1), y[split:]
            out[f"{name}_r2"] = round(float(1 - ((pred - test) ** 2).mean() / test.var()), 3)
    return out


def state_reward(run_dir: Path, seed: int = 0) -> dict:
    """Does a run's world model state hold the reward? ``feature_reward`` on its last checkpoint: against
    the model's own head, it tells whether the state lacks the reward or the head has not learnt it."""
    saved, agent, replay = run_agent(run_dir, seed)
    return {"updates": saved["agent"]["updates"], "env_step": saved["loop"]["env_step"],
            **feature_reward(agent.world_model, replay, seed=seed)}


def random_replay(game: str, steps: int, seed: int = 0):
    """A replay of ``steps`` env steps of the uniform random policy on ``game`` (episodes cut at the end)."""
    import numpy as np

    from wmtransfer import games
    from wmtransfer.data.replay import Replay

    env = games.make(game, seed=seed)
    n = int(env.action_space.n)
    rng = np.random.default_rng(seed)
    replay = Replay(seed=seed)
    obs, _ = env.reset(seed=seed)
    replay.add_step(obs, 0, 0.0, True, False, False, game, n_actions=n)
    for step in range(1, steps + 1):
        action = int(rng.integers(n))
        obs, reward, terminal, truncated, _ = env.step(action)
        last = terminal or truncated or step == steps
        replay.add_step(obs, action, reward, False, last, terminal, game, n_actions=n)
        if last and step < steps:
            obs, _ = env.reset()
            replay.add_step(obs, 0, 0.0, True, False, False, game, n_actions=n)
    return tuple(env.observation_space.shape), n, replay


def screen_data(source: str, seed: int):
    """(obs_shape, n_actions, replay, env steps) of a run directory or of ``random:GAME:STEPS``."""
    if source.startswith("random:"):
        _, game, steps = source.split(":")
        return (*random_replay(game, int(steps), seed), int(steps))
    saved, replay = run_checkpoint(Path(source), seed)
    ck = saved["agent"]
    return tuple(ck["obs_shape"]), ck["n_actions"], replay, saved["loop"]["env_step"]


def screen(source: str, variants: dict, updates: int, seed: int = 0, measure_every: int = 0,
           probe: dict | None = None) -> dict:
    """Fresh world models (name -> study-style dreamer section), each trained ``updates`` times offline on
    the same batches (the variant's batch size x 50) of a run's replay or of random play
    (``random:GAME:STEPS``), then ``feature_reward`` on each (also every ``measure_every`` updates): which
    model's state learns to hold the small objects and the reward, before any online run. ``probe``:
    keyword arguments of ``feature_reward`` (its steps and batches)."""
    import time

    import numpy as np
    import torch

    from wmtransfer.dreamer.agent import Dreamer
    from wmtransfer.dreamer.config import DreamerSection

    obs_shape, n_actions, replay, env_steps = screen_data(source, seed)
    out: dict = {"data": source, "replay_env_steps": env_steps, "updates": updates}
    for name, section in variants.items():
        cfg = DreamerSection(**section).build() if isinstance(section, dict) else section
        overrides = section.get("overrides", {}) if isinstance(section, dict) else {}
        batch = cfg.batch_size if "batch_size" in overrides else 16
        cfg = cfg.replace(batch_size=batch, seq_length=50, probe_every=0)
        torch.manual_seed(seed)
        agent = Dreamer(cfg, obs_shape, n_actions)
        replay.rng = np.random.default_rng(seed)  # the same batches for every variant of one batch size
        start = time.perf_counter()
        losses, curve = [], {}
        for update in range(1, updates + 1):
            m = agent.train_world_model(replay.sample(batch, 50))
            losses.append((m["wm_image"], m["wm_reward"]))
            if measure_every and update % measure_every == 0 and update < updates:
                agent.eval()
                state, torch_state = replay.rng.bit_generator.state, torch.get_rng_state()
                now = feature_reward(agent.world_model, replay, seed=seed, **(probe or {}))
                # measuring changes neither the training batches nor the latent samples
                replay.rng.bit_generator.state = state
                torch.set_rng_state(torch_state)
                curve[update] = {k: now[k] for k in ("recon_p_at_on_cells", "head_r2", "post_probs_r2")
                                 if k in now}
                agent.train()
                print(name, update, json.dumps(curve[update]), flush=True)
        agent.eval()
        image, reward = np.mean(losses[-50:], 0)
        out[name] = {"batch": batch, "s_per_update": round((time.perf_counter() - start) / updates, 3),
                     "image_nll_last50": round(float(image), 2), "reward_nll_last50": round(float(reward), 4),
                     **feature_reward(agent.world_model, replay, seed=seed, **(probe or {}))}
        if curve:
            out[name]["during"] = curve
        print(name, json.dumps(out[name]), flush=True)
    return out


def _frames(wm, replay, batch: int, length: int = 50):
    """``batch`` replayed frames (``batch // length`` sequences of ``length``): the preprocessed sequences,
    and the frames flattened into (encoder input, 0/1 targets)."""
    data = wm.preprocess(replay.sample(batch // length, length))
    return data, data["image"].flatten(0, 1), data["obs"].flatten(0, 1).float() / wm.cfg.obs_max


def autoencoder_screen(source: str, variants: dict, updates: int, seed: int = 0, measure_every: int = 200,
                       batch: int = 800, length: int = 50) -> dict:
    """Each variant's encoder and decoder alone (the decoder reads the embedding; no RSSM, no sampling),
    trained as a plain autoencoder with the Bernoulli image likelihood (no ``image_focal``), the variant's
    offset, initialisation, output bias and model learning rate (Adam, without the world model's gradient
    clipping and weight decay) on ``batch`` frames per update of the same data. Every ``measure_every``
    updates, per channel, the mean probability the reconstruction gives the cells that are on, measured on
    that update's training batch before the step. Separates what the networks can learn from what the
    latent keeps."""
    import numpy as np
    import torch

    from wmtransfer.dreamer.config import DreamerSection
    from wmtransfer.dreamer.networks import init_weights
    from wmtransfer.dreamer.world_model import WorldModel, build_decoder, image_offset

    if batch < length or batch % length:
        raise ValueError(f"autoencoder screen: batch {batch} is not a multiple of sequence length {length}")
    obs_shape, n_actions, replay, env_steps = screen_data(source, seed)
    out: dict = {"data": source, "replay_env_steps": env_steps, "updates": updates, "batch_frames": batch}
    for name, section in variants.items():
        cfg = DreamerSection(**section).build()
        if cfg.image_dist != "bernoulli" or cfg.image_focal:
            raise ValueError(f"{name}: the autoencoder screen trains the plain Bernoulli likelihood only "
                             f"(image_dist {cfg.image_dist!r}, image_focal {cfg.image_focal})")
        torch.manual_seed(seed)
        wm = WorldModel(cfg, obs_shape, n_actions)
        decoder = build_decoder(cfg, wm.encoder.embed_dim, obs_shape, use_offset=True)
        init_weights(decoder, cfg.weight_init)
        torch.nn.init.constant_(decoder.last.bias, cfg.decoder_out_bias)
        params = list(wm.encoder.parameters()) + list(decoder.parameters())
        opt = torch.optim.Adam(params, cfg.model_lr, eps=cfg.adam_eps)
        replay.rng = np.random.default_rng(seed)
        data, _, _ = _frames(wm, replay, batch, length)
        if cfg.decoder_offset == "data":
            decoder.out_offset.copy_(image_offset(cfg, data))
        curve = {}
        for update in range(1, updates + 1):
            _, image, target = _frames(wm, replay, batch, length)
            logits = decoder(wm.encoder(image))
            nll = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
            loss = nll.sum((-3, -2, -1)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if update % measure_every == 0:
                with torch.no_grad():
                    on = target.sum((0, 2, 3))
                    p_on = (torch.sigmoid(logits) * target).sum((0, 2, 3)) / on.clamp(min=1)
                curve[update] = {"image_nll": round(float(loss.detach()), 2),
                                 "recon_p_at_on_cells": [round(float(v), 3) for v in p_on]}
                print(name, update, json.dumps(curve[update]), flush=True)
        out[name] = curve
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--games", nargs="+", default=["minatar-breakout", "minatar-space_invaders"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--env-steps", type=int, default=100_000)
    p.add_argument("--train-every", type=int, default=12, help="env steps per update (0: the preset's)")
    p.add_argument("--prefill", type=int, default=5000, help="random env steps first (0: the preset's)")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--device", default="cpu", help="DreamerV2 runs' torch device: cpu, cuda, auto")
    p.add_argument("--runs", type=Path, default=ROOT / "learning_runs")
    p.add_argument("--algos", nargs="+", default=["dreamer", "dqn", "random"],
                   choices=["dreamer", "dqn", "random"], help="which runs to train (missing or unfinished)")
    p.add_argument("--variant", help="name of a DreamerV2 variant: runs go to {game}/dreamer-NAME/")
    p.add_argument("--dreamer", help="the variant's dreamer section (JSON: preset, overrides)")
    p.add_argument("--game-settings", help="the variant's game keyword arguments (JSON), e.g. "
                   '\'{"sticky_action_prob": 0, "action_set": "minimal"}\' (gymnax\'s MinAtar rules)')
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--diagnose", nargs="+", type=Path, metavar="RUN_DIR",
                   help="print the reward head's fit and the actor's action shares from run checkpoints")
    p.add_argument("--screen", metavar="RUN_DIR|random:GAME:STEPS",
                   help="train fresh world models (--screen-variants) offline on this run's replay, or on "
                        "STEPS of random play on GAME")
    p.add_argument("--screen-variants", help="JSON: name -> dreamer section (preset, overrides)")
    p.add_argument("--screen-updates", type=int, default=1000)
    p.add_argument("--screen-measure-every", type=int, default=0,
                   help="also measure every N updates (with --autoencoder: every N, 200 if 0)")
    p.add_argument("--autoencoder", action="store_true",
                   help="--screen the variants' encoder and decoder alone, as plain autoencoders")
    p.add_argument("--screen-out", default="reward_screen", help="result name under benchmarks/results/")
    p.add_argument("--state-reward", nargs="+", type=Path, metavar="RUN_DIR",
                   help="MLPs on the frozen world model's features -> next reward (see state_reward)")
    p.add_argument("--frame-reward", nargs="+", type=Path, metavar="RUN_DIR",
                   help="print how well a supervised CNN predicts the reward from the run's replayed frames")
    args = p.parse_args()
    if args.screen:
        import torch

        torch.set_num_threads(args.threads)
        if args.autoencoder:
            result = autoencoder_screen(args.screen, json.loads(args.screen_variants), args.screen_updates,
                                        measure_every=args.screen_measure_every or 200)
            save(args.screen_out, {"machine": machine(), "command": " ".join(sys.argv), "results": result})
            return
        result = screen(args.screen, json.loads(args.screen_variants), args.screen_updates,
                        measure_every=args.screen_measure_every)
        save(args.screen_out, {"machine": machine(), "command": " ".join(sys.argv), "results": result})
        return
    if args.state_reward:
        for d in args.state_reward:
            print(d, json.dumps(state_reward(d)), flush=True)
        return
    if args.frame_reward:
        for d in args.frame_reward:
            print(d, json.dumps(frame_reward(d)), flush=True)
        return
    if args.diagnose:
        for d in args.diagnose:
            print(d, json.dumps(diagnose(d)))
        return
    if bool(args.variant) != bool(args.dreamer):
        p.error("--variant and --dreamer go together")
    if args.game_settings and not args.variant:
        p.error("--game-settings changes the game: give the runs a --variant name")
    if not args.report_only:
        train(args)
    table = report(args)
    save("learning", {"machine": machine(), "command": " ".join(sys.argv), "results": table})
    for game, row in table.items():
        for algo, seed, e in [(a, s, e) for a in row if a.startswith("dreamer") for s, e in row[a].items()]:
            print(f"{game} {algo} {seed}: train return at 100k {e.get('train_return_100k')}, "
                  f"last eval {list(e.get('eval_return', {}).values())[-1:]}, refs {row['references']}")


if __name__ == "__main__":
    main()
