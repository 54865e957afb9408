"""Speed and early returns of training runs that shared one device, from their own ``metrics.csv``.

Reads every ``{game}/dreamer-VARIANT/seed{s}`` run under RUNS (finished: ``metrics.csv``; stopped:
``partial/metrics.csv``), and writes per run the env steps and updates reached, env steps/s and updates/s
after the random prefill (the rate each run had while all of them shared the device), and the evaluation
returns so far. ``benchmarks/gpu_check.sh`` runs k such runs side by side for a fixed time and then this.

    python benchmarks/gpu_sharing.py /tmp/gpu_runs --out benchmarks/results/gpu_sharing.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd


def summarise(run: Path) -> dict:
    """One run's reach, rates after prefill and evaluation returns (``run``: the seed folder)."""
    csv = run / "metrics.csv" if (run / "metrics.csv").exists() else run / "partial" / "metrics.csv"
    config = json.loads((csv.parent / "config.json").read_text())
    agent = config.get("agent", config)
    prefill = int(agent.get("prefill", 0))
    m = pd.read_csv(csv)
    row = {"game": run.parents[1].name, "variant": run.parent.name, "seed": run.name,
           "train_every": agent.get("train_every"), "finished": csv.parent == run, "env_steps": 0,
           "updates": 0, "wall_time_s": 0.0, "env_steps_per_s_after_prefill": None,
           "updates_per_s_after_prefill": None, "eval_returns": {}, "train_return_last_20_episodes": None}
    if m.empty:  # stopped before its first log line
        return row
    trained = m[m["env_step"] >= prefill]
    span = float(trained["wall_time"].iloc[-1] - trained["wall_time"].iloc[0]) if len(trained) > 1 else 0.0
    if span:
        row["env_steps_per_s_after_prefill"] = round(
            int(trained["env_step"].iloc[-1] - trained["env_step"].iloc[0]) / span, 2)
        row["updates_per_s_after_prefill"] = round(
            int(trained["update"].iloc[-1] - trained["update"].iloc[0]) / span, 3)
    evals = m.dropna(subset=["eval_return"])
    episodes = m.dropna(subset=["episode_return"])
    return {**row, "env_steps": int(m["env_step"].max()), "updates": int(m["update"].max()),
            "wall_time_s": round(float(m["wall_time"].max()), 1),
            "eval_returns": dict(zip(evals["env_step"].astype(int), evals["eval_return"].astype(float),
                                     strict=True)),
            "train_return_last_20_episodes": round(float(episodes["episode_return"].tail(20).mean()), 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--note", default="", help="what the runs shared (written into the JSON)")
    args = p.parse_args()
    seeds = sorted(s for s in args.runs.glob("*/dreamer*/seed*") if s.is_dir())
    if not seeds:
        raise SystemExit(f"no runs under {args.runs} (expected {{game}}/dreamer*/seed*)")
    rows = [summarise(s) for s in seeds]
    rates = [r["updates_per_s_after_prefill"] for r in rows if r["updates_per_s_after_prefill"] is not None]
    out = {"note": args.note, "runs_sharing": len(rows), "updates_per_s_all_runs": round(sum(rates), 2),
           "runs": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    for r in rows:
        print(f"{r['game']:24s} {r['variant']:18s} {r['seed']}: {r['env_steps']} env steps, "
              f"{r['updates']} updates, {r['env_steps_per_s_after_prefill']} env steps/s, "
              f"evals {r['eval_returns']}")
    print(f"{len(rows)} runs, {out['updates_per_s_all_runs']} updates/s together; wrote {args.out}")


if __name__ == "__main__":
    main()
