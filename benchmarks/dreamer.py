"""Speed of the DreamerV2 model: world-model updates/s, behaviour updates/s, imagination steps/s, memory.

Each preset runs in its own subprocess so that ``ru_maxrss`` (peak resident memory) belongs to it alone.
Batches are synthetic uint8 sequences of the preset's shape (speed does not depend on the pixel values);
the mathematics is the full training update (nothing skipped). The ``rajghugare_minatar`` preset is the
MinAtar configuration of RajGhugare19/dreamerv2 (batch 50 x length 50, deter 200, 20x20 categorical
latents, 3x100 ELU heads, imagination from 50 x 49 = 2450 start states for horizon 10, fp32); the
side-by-side run against that code is ``benchmarks/vs_reference.py`` (results/dreamer_vs_reference.json).
On CPU the JSON also holds each update's multiply-adds, the floor they set at the GEMM peak measured in
the same process, and each median time as a multiple of that floor (``*_x_floor``). The run stops if the
machine is loaded (``_common.py``), unless ``--allow-load`` (then the JSON says ``"loaded": true``).

    python benchmarks/dreamer.py                          # minatar, atari, rajghugare_minatar -> JSON
    python benchmarks/dreamer.py --presets rajghugare_minatar --repeats 20
    python benchmarks/dreamer.py --device cuda --amp      # on a GPU, bf16 autocast
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import Conditions, add_load_argument, count_macs, floor_multiple, gemm_peak_macs  # noqa: E402

MINATAR_OBS = ((10, 10, 10), 6)
OBS = {"minatar": MINATAR_OBS, "minatar_dense": MINATAR_OBS, "rajghugare_minatar": MINATAR_OBS,
       "kenjyoung_minatar": MINATAR_OBS, "atari": ((1, 64, 64), 18), "mario": ((1, 64, 64), 12)}


def synthetic_batch(obs_shape, n_actions, batch, length, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    high = 2 if obs_shape[0] > 1 else 256
    out = {
        "obs": rng.integers(0, high, (batch, length, *obs_shape), dtype=np.uint8),
        "action": rng.integers(0, n_actions, (batch, length)).astype(np.int64),
        "reward": rng.normal(size=(batch, length)).astype(np.float32),
        "is_first": np.zeros((batch, length), bool),
        "is_terminal": rng.random((batch, length)) < 0.01,
        "is_last": np.zeros((batch, length), bool),
    }
    out["is_first"][:, 0] = True
    return out


def _timed(fn, repeats, sync):
    """Wall-clock and process CPU seconds of each call."""
    times, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return times, cpu


def time_calls(timed: dict, warmup: int, repeats: int, sync) -> dict:
    """Per function of ``timed``: ``warmup`` untimed calls, then the median and minimum wall-clock ms,
    the median process CPU ms and the calls/s of ``repeats`` calls."""
    out = {}
    for name, fn in timed.items():
        _timed(fn, warmup, sync)
        times, cpu = _timed(fn, repeats, sync)
        times.sort()
        cpu.sort()
        out[f"{name}_ms_median"] = 1000 * times[len(times) // 2]
        out[f"{name}_ms_min"] = 1000 * times[0]
        out[f"{name}_cpu_ms_median"] = 1000 * cpu[len(cpu) // 2]
        out[f"{name}_per_s"] = 1.0 / times[len(times) // 2]
    return out


def arithmetic_floor(result: dict, timed: dict) -> dict:
    """Multiply-adds of one call of each timed function as this code computes them (torch's FLOP counter:
    matrix products and convolutions, forward and backward; look-ups and element-wise work are not
    counted), the time they take at the GEMM peak measured now, in this process (a floor under which
    these operations cannot run on this machine, whatever the implementation), and each median time as a
    multiple of its floor."""
    peak = gemm_peak_macs()
    out = {"gemm_peak_gmac_per_s": peak / 1e9}
    for name, fn in timed.items():
        macs = count_macs(fn)
        out[f"{name}_gmac"] = macs / 1e9
        out[f"{name}_floor_ms"] = 1000 * macs / peak
        out[f"{name}_x_floor"] = floor_multiple(result[f"{name}_ms_median"] / 1000, macs, peak)
    return out


def build_updates(preset: str, device: str = "cpu", amp_on: bool = False, overrides: dict | None = None,
                  plain: bool = False):
    """The agent of ``preset`` on a synthetic batch, and its three timed calls: ``wm_update``,
    ``behaviour_update`` (from the batch's posterior states) and ``imagine`` (no gradients)."""
    import torch

    from wmtransfer.dreamer import Dreamer, DreamerConfig
    from wmtransfer.dreamer.rssm import Latent

    torch.manual_seed(0)
    cfg = DreamerConfig.preset(preset, **(overrides or {}))
    obs_shape, n_actions = OBS[preset]
    agent = Dreamer(cfg, obs_shape, n_actions, device=device)
    if plain:  # ablation: dense one-hot products instead of look-ups (same mathematics)
        agent.behavior.use_lookups = False
    batch = synthetic_batch(obs_shape, n_actions, cfg.batch_size, cfg.seq_length)
    amp = torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=amp_on)

    def wm_update():
        with amp:
            agent.train_world_model(batch)

    data = agent.world_model.preprocess(batch, agent.device)
    with torch.no_grad(), amp:
        _, post, _ = agent.world_model.loss(data)
    post = Latent(post.deter.float(), post.stoch.float())

    def behaviour_update():
        with amp:
            agent.train_behavior(post, data["is_terminal"])

    cut = slice(0, -1) if cfg.imag_drop_last_start else slice(None)
    start = Latent(post.deter[:, cut].flatten(0, 1), post.stoch[:, cut].flatten(0, 1))

    def imagine():
        with torch.no_grad(), amp:
            agent.behavior.imagine(agent.world_model, start, cfg.imag_horizon)

    timed = {"wm_update": wm_update, "behaviour_update": behaviour_update, "imagine": imagine}
    return agent, cfg, timed, start.deter.shape[0]


def past_probe(agent, cfg, timed: dict) -> None:
    """One more world-model update if the next one would run the collapse probe (every ``probe_every``
    updates): counted and recorded updates are then the steady ones, and the FLOP counter fails on the
    probe's no-grad passes."""
    if cfg.probe_every and agent.wm_updates % cfg.probe_every == 0:
        timed["wm_update"]()


def worker(args) -> dict:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = json.loads(args.overrides) if args.overrides else {}
    agent, cfg, timed, n_starts = build_updates(args.preset, args.device, args.amp, overrides, args.plain)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)

    result = {
        "preset": args.preset, "plain": args.plain, "overrides": overrides, "batch": cfg.batch_size,
        "length": cfg.seq_length,
        "imag_starts": n_starts, "horizon": cfg.imag_horizon,
        "params": sum(p.numel() for p in agent.parameters()),
    }
    result.update(time_calls(timed, args.warmup, args.repeats, sync))
    result["imagination_steps_per_s"] = n_starts * cfg.imag_horizon / (result["imagine_ms_median"] / 1000)
    if args.device == "cpu" and not args.amp:
        past_probe(agent, cfg, timed)
        result.update(arithmetic_floor(result, timed))
    result["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    if args.device.startswith("cuda"):
        result["peak_cuda_gib"] = torch.cuda.max_memory_allocated() / 2**30
    result["torch_threads"] = torch.get_num_threads()
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", nargs="+", default=["minatar", "atari", "rajghugare_minatar"])
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", action="store_true", help="bf16 autocast")
    p.add_argument("--overrides", default="", help="JSON of DreamerConfig overrides for every preset")
    p.add_argument("--plain", action="store_true", help="ablation: no one-hot look-ups (dense products)")
    p.add_argument("--out", default="benchmarks/results/dreamer.json")
    add_load_argument(p)
    p.add_argument("--preset", help=argparse.SUPPRESS)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    conditions = Conditions("dreamer", args.allow_load, previous=Path(args.out)).start()
    results = []
    for preset in args.presets:
        cmd = [sys.executable, __file__, "--worker", "--preset", preset, "--repeats", str(args.repeats),
               "--warmup", str(args.warmup), "--threads", str(args.threads), "--device", args.device,
               "--overrides", args.overrides]
        if args.amp:
            cmd.append("--amp")
        if args.plain:
            cmd.append("--plain")
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        res = json.loads(out.strip().splitlines()[-1])
        results.append(res)
        print(json.dumps(res), flush=True)
    report = {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": {"platform": platform.platform(), **conditions.finish()},
        "results": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
