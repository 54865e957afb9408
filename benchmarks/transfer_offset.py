"""A pre-trained world model on an unseen game: the decoder offset kept from pre-training vs re-fitted.

Reads a finished study's outputs: the world models pre-trained on an envset (``pretrain/{envset}/seed{s}/
world_model.pt``) and the replay of one scratch agent on the target (its ``ckpt/checkpoint.pt``). For each
pre-training seed it builds agents exactly as the workflow does (``train.agent.build_agent``): ``scratch``,
and ``finetune`` with ``decoder_offset_transfer`` ``keep`` and ``refit``; then runs ``--updates``
world-model updates on the same batches from that replay (16 x 50, the preset's) and records the loss and
KL per update. Prints and writes per-variant means over the seeds: every 4th update, the mean over the
first and the second half of the updates (``benchmarks/results/transfer_offset.json``).

    python benchmarks/transfer_offset.py --results /tmp/study/results   # the default study's outputs

Its numbers are docs/report.md's table ("Why the early window skips its first half") and docs/dreamer.md
("Decoder offset in transfer"). Not a speed benchmark: no load check.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, save  # noqa: E402

VARIANTS = ("scratch", "keep", "refit")


def run(results: Path, study: str, envset: str, target: str, seeds: list[int], updates: int) -> dict:
    import numpy as np
    import torch

    from wmtransfer import games
    from wmtransfer.data.replay import Replay
    from wmtransfer.dreamer import DreamerConfig
    from wmtransfer.io import safe_load
    from wmtransfer.train.agent import build_agent

    torch.set_num_threads(1)
    source = results / "agents" / study / target / "scratch" / "seed0" / "ckpt" / "checkpoint.pt"
    saved = safe_load(source)
    spec = games.spec(target)
    out: dict = {"replay_from": str(source), "replay_steps": None, "variants": {}}
    for variant in VARIANTS:
        loss, kl = [], []
        for seed in seeds:
            replay = Replay(seed=100 + seed)  # the same batches for every variant of a seed
            replay.load_state_dict(saved["replay"])
            out["replay_steps"] = replay.num_steps
            torch.manual_seed(seed)
            transfer = "keep" if variant == "keep" else "refit"
            cfg = DreamerConfig.preset("minatar", decoder_offset_transfer=transfer)
            pretrained = results / "pretrain" / envset / f"seed{seed}" / "world_model.pt"
            init = None if variant == "scratch" else pretrained
            agent = build_agent(cfg, spec, "scratch" if variant == "scratch" else "finetune", init, "cpu")
            metrics = [agent.train_world_model(replay.sample(cfg.batch_size, cfg.seq_length))
                       for _ in range(updates)]
            loss.append([m["wm_loss"] for m in metrics])
            kl.append([m["wm_kl"] for m in metrics])
        loss_m, kl_m = np.mean(loss, 0), np.mean(kl, 0)
        half = updates // 2
        out["variants"][variant] = {
            "wm_loss_every_4": {str(i + 1): round(float(loss_m[i]), 2) for i in range(0, updates, 4)},
            "wm_kl_every_4": {str(i + 1): round(float(kl_m[i]), 2) for i in range(0, updates, 4)},
            f"wm_loss_mean_1_{half}": round(float(loss_m[:half].mean()), 2),
            f"wm_loss_mean_{half + 1}_{updates}": round(float(loss_m[half:].mean()), 2),
            "per_seed_mean_second_half": [round(float(np.mean(s[half:])), 2) for s in loss],
        }
        v = out["variants"][variant]
        print(f"{variant:8s} loss every 4: {list(v['wm_loss_every_4'].values())}", flush=True)
        print(f"{'':8s} KL   every 4: {list(v['wm_kl_every_4'].values())}", flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", required=True, help="a finished study's results/ folder")
    p.add_argument("--study", default="minatar_quick")
    p.add_argument("--envset", default="minatar4")
    p.add_argument("--target", default="minatar-space_invaders")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    p.add_argument("--updates", type=int, default=40)
    args = p.parse_args()
    results = run(Path(args.results), args.study, args.envset, args.target, args.seeds, args.updates)
    save("transfer_offset", {"command": " ".join(["transfer_offset.py", *sys.argv[1:]]), "machine": machine(),
                             "results": results})


if __name__ == "__main__":
    main()
