"""Speed of the full online DreamerV2 loop (wmtransfer.train.agent.train_agent) on a real MinAtar game.

Runs the real loop - random prefill, then acting with the policy, streaming into the replay and one
update (world model + behaviour, the preset's batch x length) every ``train_every`` env steps - and
reports env steps/s of the training phase (after prefill, everything included: acting, storing,
sampling, updates, evaluation) from the run's own ``summary.json``. Also the replay's sampling rate, and
the seconds per update in the loop as a multiple of one update's arithmetic floor (world model +
behaviour multiply-adds at the GEMM peak measured in this run, ``_common.py``). The run stops if the
machine is loaded unless ``--allow-load`` (then the JSON says ``"loaded": true``).

    python benchmarks/dreamer_loop.py                       # minatar preset, minatar-breakout
    python benchmarks/dreamer_loop.py --updates 50 --threads 2 --train-every 16
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import Conditions, add_load_argument, count_macs, save  # noqa: E402


def replay_samples_per_s(batch: int, length: int, repeats: int = 50) -> float:
    """Sequences/s of Replay.sample on 20000 steps of real breakout episodes (random play)."""
    import numpy as np

    from wmtransfer import games
    from wmtransfer.data.replay import Replay

    env, replay, rng = games.make("minatar-breakout", seed=0), Replay(seed=0), np.random.default_rng(0)
    obs, _ = env.reset()
    replay.add_step(obs, 0, 0.0, True, False, False, game="b", n_actions=6)
    for _ in range(20_000):
        a = int(rng.integers(6))
        obs, r, term, trunc, _ = env.step(a)
        replay.add_step(obs, a, r, False, term or trunc, term, game="b", n_actions=6)
        if term or trunc:
            obs, _ = env.reset()
            replay.add_step(obs, 0, 0.0, True, False, False, game="b", n_actions=6)
    start = time.perf_counter()
    for _ in range(repeats):
        replay.sample(batch, length)
    return repeats * batch / (time.perf_counter() - start)


def update_macs(preset: str, obs_shape=(10, 10, 10), n_actions: int = 6) -> float:
    """Multiply-adds of one world-model + behaviour update of ``preset`` (torch's FLOP counter), without
    the collapse probe (it runs on one update in ``probe_every``; and FlopCounterMode's module hooks fail
    on its no-grad forward passes)."""
    import torch
    from dreamer import synthetic_batch

    from wmtransfer.dreamer import Dreamer, DreamerConfig

    cfg = DreamerConfig.preset(preset, probe_every=0)
    agent = Dreamer(cfg, obs_shape, n_actions)
    batch = synthetic_batch(obs_shape, n_actions, cfg.batch_size, cfg.seq_length)
    torch.manual_seed(0)
    return count_macs(lambda: agent.train_step(batch))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="minatar")
    parser.add_argument("--game", default="minatar-breakout")
    parser.add_argument("--updates", type=int, default=30, help="updates after prefill")
    parser.add_argument("--prefill", type=int, default=1000)
    parser.add_argument("--train-every", type=int, default=None, help="default: the preset's")
    parser.add_argument("--num-envs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--device", default="cpu")
    add_load_argument(parser)
    args = parser.parse_args()

    import torch

    from wmtransfer.dreamer.config import DreamerConfig
    from wmtransfer.train.agent import train_agent
    from wmtransfer.train.config import AgentConfig

    if args.threads:
        torch.set_num_threads(args.threads)
    conditions = Conditions("dreamer_loop", args.allow_load).start()
    dcfg = DreamerConfig.preset(args.preset)
    every = args.train_every or dcfg.train_every
    steps = args.prefill + every * args.updates
    cfg = AgentConfig(env_steps=steps, prefill=args.prefill, train_every=every, num_envs=args.num_envs,
                      eval_every=10 * steps, eval_episodes=1, log_every=steps, checkpoint_every=10**9)
    with tempfile.TemporaryDirectory() as out:
        summary = train_agent([args.game], 0, out, cfg, dcfg, device=args.device)
    row = {
        "preset": args.preset, "game": args.game, "train_every": every, "batch": dcfg.batch_size,
        "length": dcfg.seq_length, "num_envs": args.num_envs, "updates": summary["updates"],
        "env_steps": summary["env_steps"], "prefill_env_steps": summary["prefill_env_steps"],
        "wall_time_s": round(summary["wall_time"], 2),
        "train_env_steps_per_s": round(summary["train_env_steps_per_s"], 3),
        "s_per_update_in_loop": round(every / summary["train_env_steps_per_s"], 3),
        "replay_sequences_per_s": round(replay_samples_per_s(dcfg.batch_size, dcfg.seq_length), 1),
    }
    machine = conditions.finish()
    if args.device == "cpu":
        macs, peak = update_macs(args.preset), machine["gemm_peak_mac_per_s"]
        row["update_gmac"] = round(macs / 1e9, 3)
        row["update_floor_s"] = round(macs / peak, 4)
        row["s_per_update_in_loop_x_floor"] = round(row["s_per_update_in_loop"] / (macs / peak), 2)
    print(row)
    save("dreamer_loop", {"machine": machine, "results": {f"{args.preset}/{args.game}": row}},
         compare_key="train_env_steps_per_s")


if __name__ == "__main__":
    main()
