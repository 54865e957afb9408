"""Peak memory of dataset collection at two dataset sizes: it must stay flat as the dataset grows.

Collection streams each episode to disk when it ends, so its resident memory should not depend on the
number of steps collected. Each size runs in a fresh subprocess (so ``VmHWM``, the peak resident set,
belongs to that collection alone) on a real MinAtar game with real DQN checkpoints: a short DQN run
first gives three checkpoints, then each collection plays 10% random steps and 90% checkpoint steps.

    python benchmarks/datasets.py                              # 25k and 100k steps -> results/datasets.json
    python benchmarks/datasets.py --sizes 10000 200000 --game minatar-seaquest

Its speed figure (steps/s) is bound by the games and the file writes, not by arithmetic (a DQN forward
per step), so it has no arithmetic floor; the load check of ``_common.py`` applies (``--allow-load``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import Conditions, add_load_argument, save  # noqa: E402


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def worker(game: str, steps: int, checkpoints: list[str], out: str) -> dict:
    import torch

    torch.set_num_threads(1)
    from wmtransfer.config import from_dict
    from wmtransfer.train.collect import DatasetConfig, collect_dataset

    cfg = from_dict(DatasetConfig, {"random_steps": steps // 10, "policy_steps": steps - steps // 10,
                                    "switch_every": 1000})
    import wmtransfer.games as games

    games.make(game).close()  # import the game library before measuring the baseline
    rss_before = _status_kib("VmRSS")
    start = time.perf_counter()
    summary = collect_dataset(game, out, cfg, checkpoints)
    seconds = time.perf_counter() - start
    disk = sum(p.stat().st_size for p in Path(out).rglob("*.npz"))
    return {"steps": steps, "episodes": summary["episodes"], "seconds": round(seconds, 2),
            "steps_per_s": round(steps / seconds, 1), "rss_before_collect_mib": round(rss_before / 1024, 1),
            "peak_rss_mib": round(_status_kib("VmHWM") / 1024, 1), "disk_mib": round(disk / 2**20, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--game", default="minatar-breakout")
    ap.add_argument("--sizes", type=int, nargs=2, default=[25_000, 100_000])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--checkpoints", nargs="*", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    add_load_argument(ap)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.game, args.steps, args.checkpoints, args.out)))
        return

    import torch

    torch.set_num_threads(1)
    conditions = Conditions("datasets", args.allow_load).start()
    from wmtransfer.config import from_dict
    from wmtransfer.dqn.config import DQNConfig
    from wmtransfer.train.dqn import train_dqn

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        dqn = Path(tmp) / "dqn"
        cfg = from_dict(DQNConfig, {"total_steps": 3000, "checkpoint_steps": [1000, 2000, 3000],
                                    "learning_starts": 500, "eps_decay_steps": 2000, "train_every": 4,
                                    "optimizer": "adam", "lr": 0.001, "save_every": 0})
        train_dqn(args.game, 0, dqn, cfg)
        ckpts = [str(p) for p in sorted((dqn / "checkpoints").glob("*.pt"))]
        for steps in args.sizes:
            cmd = [sys.executable, __file__, "--worker", "--game", args.game, "--steps", str(steps),
                   "--out", str(Path(tmp) / f"ds{steps}"), "--checkpoints", *ckpts]
            proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
            row = json.loads(proc.stdout.splitlines()[-1])
            print(f"{args.game} {steps} steps: peak RSS {row['peak_rss_mib']} MiB "
                  f"(before collecting {row['rss_before_collect_mib']} MiB), {row['steps_per_s']} steps/s, "
                  f"{row['disk_mib']} MiB on disk", flush=True)
            results[f"{args.game}/{steps}"] = row
    small, large = (results[f"{args.game}/{s}"] for s in args.sizes)
    growth = large["peak_rss_mib"] - small["peak_rss_mib"]
    print(f"peak RSS grows by {growth:+.1f} MiB for {args.sizes[1] / args.sizes[0]:.0f}x the steps")
    save("datasets", {"machine": conditions.finish(), "game": args.game, "results": results,
                      "peak_rss_growth_mib": round(growth, 1)}, compare_key="peak_rss_mib")


if __name__ == "__main__":
    main()
