"""Steps per second of every suite: raw library vs wmtransfer's wrapped game, single and vectorised.

    python benchmarks/games.py            # writes benchmarks/results/games.json

"Raw" is the library as people use it, doing the same emulation per agent step:
MinAtar ``Environment.act`` + ``state()``; ale-py's ``ALE/<Name>-v5`` (frameskip 4, grayscale, sticky
0.25, full action set); Mario's ``SuperMarioBrosEnv.step`` four times per agent step; procgen's
``ProcgenGym3Env(num=1)`` ``act`` + ``observe``. "Wrapped" adds what wmtransfer needs on top (channel
padding, max-pool and 64x64 resize, sticky actions, clipping; procgen: channels-first frames and the
gymnasium API). procgen runs only when the ``procgen`` extra is
installed (README); its vectorised figure is procgen's own batched env.
Raw and wrapped runs alternate over several rounds and the best round of each counts, so a busy
machine affects both alike; ``ratio_rounds_median`` is the median of the rounds' own wrapped/raw ratios
(each round times both back to back), and ``ratio_chunks_p10`` the ratio of the 10th-percentile times
of alternating 50-step chunks, the figure least moved by load. Target: wrapped >= 80% of raw for
each suite. The run stops if the machine is loaded (``_common.py``) unless ``--allow-load``.

    python benchmarks/games.py --games minatar --rounds 9 --allow-load   # MinAtar only, ratios under load
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import Conditions, add_load_argument, save  # noqa: E402

from wmtransfer import games  # noqa: E402


def steps_per_second(step, reset, n_steps: int) -> float:
    reset()
    start = time.perf_counter()
    for i in range(n_steps):
        if step(i):
            reset()
    return n_steps / (time.perf_counter() - start)


def chunked_ratio(raw, wrap, chunks: int, chunk: int = 50) -> float:
    """wrapped/raw speed from ``chunks`` alternating chunks of ``chunk`` steps: the ratio of the two
    10th-percentile chunk times. A chunk lasts well under a scheduler slice, so most chunks run
    undisturbed and a low percentile reads the code, not the load."""
    times: list[list[float]] = [[], []]
    counters = [0, 0]
    for _, reset in (raw, wrap):
        reset()
    for _ in range(chunks):
        for k, (step, reset) in enumerate((raw, wrap)):
            start = time.perf_counter()
            for _ in range(chunk):
                if step(counters[k]):
                    reset()
                counters[k] += 1
            times[k].append(time.perf_counter() - start)
    raw_t, wrap_t = (float(np.percentile(t, 10)) for t in times)
    return raw_t / wrap_t


def raw_minatar(name: str):
    from minatar import Environment

    env = Environment(name)
    env.seed(0)
    actions = np.random.default_rng(0).integers(6, size=1 << 16)

    def step(i):
        _, terminal = env.act(int(actions[i & 0xFFFF]))
        env.state()
        return terminal

    return step, env.reset


def raw_atari(name: str):
    import ale_py
    import gymnasium as gym

    gym.register_envs(ale_py)
    ale_name = "".join(part.capitalize() for part in name.split("_"))
    env = gym.make(f"ALE/{ale_name}-v5", obs_type="grayscale", frameskip=4,
                   repeat_action_probability=0.25, full_action_space=True)
    actions = np.random.default_rng(0).integers(18, size=1 << 16)

    def step(i):
        _, _, term, trunc, _ = env.step(int(actions[i & 0xFFFF]))
        return term or trunc

    return step, lambda: env.reset(seed=0)


def raw_mario(name: str):
    from gym_super_mario_bros.actions import COMPLEX_MOVEMENT

    from wmtransfer.games import mario

    world, stage = (int(x) for x in name.split("-"))
    nes = mario._level_class()(rom_mode="vanilla", target=(world, stage))
    buttons = mario._BUTTONS
    bitmaps = [sum(buttons[b] for b in combo) for combo in COMPLEX_MOVEMENT]
    actions = np.random.default_rng(0).integers(12, size=1 << 16)

    def step(i):
        for _ in range(4):
            _, _, done, _ = nes.step(bitmaps[actions[i & 0xFFFF]])
            if done:
                return True
        return False

    return step, nes.reset


def raw_procgen(name: str):
    from wmtransfer.games.procgen import _gym3_env_class

    env = _gym3_env_class()(num=1, env_name=name, distribution_mode="easy", num_levels=0, start_level=0,
                            rand_seed=0)
    actions = np.random.default_rng(0).integers(15, size=(1 << 16, 1)).astype(np.int32)

    def step(i):
        env.act(actions[i & 0xFFFF])
        _, _, first = env.observe()
        return False  # procgen resets itself

    return step, lambda: None


def has_procgen() -> bool:
    try:
        import procgen  # noqa: F401
    except ImportError:
        return False
    return True


def wrapped(game_id: str):
    env = games.make(game_id, seed=0)
    actions = np.random.default_rng(0).integers(env.action_space.n, size=1 << 16)

    def step(i):
        _, _, term, trunc, _ = env.step(int(actions[i & 0xFFFF]))
        return term or trunc

    return step, env.reset


def vector_sps(game_id: str, num_envs: int, n_steps: int, native: bool) -> float:
    env = games.make_vector(game_id, num_envs, seed=0, native=native)
    env.reset(seed=0)
    n = env.single_action_space.n
    actions = np.random.default_rng(0).integers(n, size=(n_steps, num_envs))
    start = time.perf_counter()
    for a in actions:
        env.step(a)
    sps = n_steps * num_envs / (time.perf_counter() - start)
    env.close()
    return sps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the step counts")
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--games", nargs="+", default=None,
                        help="only ids starting with these (e.g. minatar procgen-leaper); no vector runs, "
                             "and the partial run prints without replacing the JSON")
    add_load_argument(parser)
    args = parser.parse_args()
    conditions = Conditions("games", args.allow_load).start()

    cases = [(f"minatar-{g}", raw_minatar, g, 20000) for g in
             ["asterix", "breakout", "freeway", "seaquest", "space_invaders"]]
    cases += [(f"atari-{g}", raw_atari, g, 3000) for g in ["breakout", "space_invaders", "demon_attack"]]
    cases += [(f"mario-{g}", raw_mario, g, 400) for g in ["1-1", "3-2"]]
    if has_procgen():
        cases += [(f"procgen-{g}", raw_procgen, g, 5000) for g in ["leaper", "coinrun"]]
    else:
        print("procgen is not installed (README, section procgen): procgen games skipped")
    if args.games:
        cases = [c for c in cases if c[0].startswith(tuple(args.games))]

    results = {}
    for game_id, raw_factory, name, n in cases:
        n = max(1, int(n * args.scale))
        raw, wrap = raw_factory(name), wrapped(game_id)
        raws, wraps = [], []
        for _ in range(args.rounds):
            raws.append(steps_per_second(*raw, n))
            wraps.append(steps_per_second(*wrap, n))
        best_raw, best_wrap = max(raws), max(wraps)
        ratios = sorted(w / r for w, r in zip(wraps, raws, strict=True))
        chunked = chunked_ratio(raw, wrap, chunks=max(10, n // 50))
        results[game_id] = {"raw_sps": best_raw, "wrapped_sps": best_wrap, "ratio": best_wrap / best_raw,
                            "ratio_rounds_median": ratios[len(ratios) // 2], "ratio_chunks_p10": chunked,
                            "steps": n}
        print(f"{game_id:28s} raw {best_raw:9.0f}/s  wrapped {best_wrap:9.0f}/s  "
              f"ratio {best_wrap / best_raw:5.2f} (rounds' median {ratios[len(ratios) // 2]:5.2f}, "
              f"chunks {chunked:5.2f})")

    vector_cases = [("minatar-breakout", False, 2000), ("atari-breakout", True, 500),
                    ("atari-breakout", False, 300)]
    if has_procgen():
        vector_cases += [("procgen-leaper", True, 1000)]
    if args.games:
        vector_cases = []
    for game_id, native, n in vector_cases:
        n = max(1, int(n * args.scale))
        key = f"vector{args.num_envs}-{game_id}-{'native' if native else 'sync'}"
        sps = vector_sps(game_id, args.num_envs, n, native)
        results[key] = {"vector_sps": sps, "num_envs": args.num_envs, "steps": n}
        print(f"{key:40s} {sps:9.0f} env steps/s")

    machine = conditions.finish()
    if args.games:
        print(json.dumps({"machine": machine}, indent=2))
        return
    save("games", {"machine": machine, "results": results}, compare_key="wrapped_sps")


if __name__ == "__main__":
    main()
