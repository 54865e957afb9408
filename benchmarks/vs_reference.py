"""Side-by-side speed of this project's DreamerV2 update and RajGhugare19/dreamerv2's own update code.

Both sides run the MinAtar configuration of RajGhugare19/dreamerv2 (``MinAtarConfig``: batch 50 x length
50, deter 200, 20x20 categorical latents, 3x100 ELU heads, imagination horizon 10 from 50 x 49 = 2450
start states, fp32) on the same synthetic batch (``dreamer.synthetic_batch``: binary 10x10x10
observations, 6 actions - MinAtar's full action set, the action count of the ``rajghugare_minatar``
preset here; Breakout's minimal set would be 3), CPU, torch's default thread count unless ``--threads``.
Rounds alternate on the same machine: ours, reference, ours, reference, ... Each side runs in its own
subprocess, so its peak resident memory (``ru_maxrss``) is its own. Per side and round: the world-model
update, the behaviour (actor-critic) update and a no-grad imagination rollout, each the median
wall-clock time (``time.perf_counter``) of ``--repeats`` calls after ``--warmup`` calls, and the peak RSS;
per round the ratios reference / ours; over the rounds their ranges. Each side also reports the
multiply-adds of one call (torch's FLOP counter) and each time as a multiple of the arithmetic floor
they set at the GEMM peak measured in that process (``dreamer.arithmetic_floor``, ``_common.py``).

Ours: ``benchmarks/dreamer.py --presets rajghugare_minatar`` unchanged, as a subprocess writing its JSON
to a temporary file (``Dreamer.train_world_model`` and ``Dreamer.train_behavior``, numpy batch in).

Reference: the repository is never copied into this one. The harness extracts it at run time with
``git archive`` from a git directory (``--reference-git``, default the local mirror; a clone of
https://github.com/RajGhugare19/dreamerv2 works too) into a temporary directory outside this repository,
or takes a checkout given by ``--reference-dir``, puts it first on ``sys.path`` in the reference
subprocess and drives its own classes unmodified: ``Trainer(MinAtarConfig(obs_shape=(10, 10, 10),
action_size=6, obs_dtype=bool), cpu)`` builds its models and optimisers (as its ``test/mdp.py`` does).
Its ``Trainer.train_batch`` draws from its replay and mixes both updates with metric logging, so the
pieces it calls are timed separately, each as ``train_batch`` runs it on a batch in the time-major
layout its ``TransitionBuffer.sample`` returns ((L, B, ...): obs, one-hot actions, rewards, terminals):

* world model: the batch -> float32 tensors as in ``train_batch``, ``Trainer.representation_loss``,
  ``model_optimizer.zero_grad``, backward, ``clip_grad_norm_`` over ``get_parameters(world_list)``,
  ``model_optimizer.step``; ``.item()`` of the loss.
* behaviour: ``Trainer.actorcritc_loss`` (imagination with ``RSSM.rollout_imagination``, ``_actor_loss``,
  ``_value_loss``) on the posterior of the batch, both optimisers' ``zero_grad``, the two backwards,
  ``clip_grad_norm_`` per list, both optimiser steps. Its imagination runs with autograd on, so its
  multiply-adds include the backward through the rollout.
* imagination: ``RSSM.rollout_imagination(horizon, ActionModel, start)`` under ``torch.no_grad`` from
  the 2450 states ``actorcritc_loss`` starts from.

Left out on the reference side (not part of either update): the replay sampling, the prior/posterior
entropy metrics of ``train_batch``, and ``update_target`` (every 100 steps). Its package
``__init__`` imports its environment wrappers, which import ``gym`` and ``minatar`` at module level;
the reference subprocess stubs those two modules (the trainer never uses them), nothing is installed.
As in ``dreamer.py``, the peak RSS is read at the end of the process, after the FLOP count.

The run stops if the machine is loaded (``_common.Conditions``, judged by this process around all the
rounds) unless ``--allow-load`` (the JSON then says ``"loaded": true``). ``dreamer.py`` is always called
with ``--allow-load``: from the second round on, the 1-minute load average holds this benchmark's own
earlier rounds, which is not other work; its own verdict is kept per round under ``conditions``.

    python benchmarks/vs_reference.py          # 3 rounds, 7 calls after 2 warm-ups
                                               # -> benchmarks/results/dreamer_vs_reference.json
    git clone https://github.com/RajGhugare19/dreamerv2 /tmp/dreamerv2   # elsewhere than the mirror
    python benchmarks/vs_reference.py --reference-git /tmp/dreamerv2       # extracts its HEAD
    python benchmarks/vs_reference.py --reference-dir /tmp/dreamerv2 --rounds 5   # runs that checkout
    python benchmarks/vs_reference.py --rounds 1 --repeats 1 --warmup 1 --allow-load --out /tmp/check.json
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from _common import Conditions, add_load_argument  # noqa: E402

PRESET = "rajghugare_minatar"
REFERENCE_URL = "https://github.com/RajGhugare19/dreamerv2"
DEFAULT_MIRROR = "/work/.mirror/RajGhugare19+dreamerv2/repo"
DEFAULT_OUT = HERE / "results" / "dreamer_vs_reference.json"
#: Timed functions, in this order on both sides (names as in ``dreamer.py``).
TIMED = ("wm_update", "behaviour_update", "imagine")
#: Figures compared per round (reference / ours).
COMPARED = tuple(f"{name}_ms_median" for name in TIMED) + ("peak_rss_gib",)


# --- reference side (its own subprocess) -------------------------------------------------------------

def _stub_env_modules() -> None:
    """Stand-ins for ``gym`` and ``minatar``: the reference's ``dreamerv2/utils/wrapper.py`` (imported by
    its package ``__init__``) subclasses gym classes at import time; its trainer and models use neither."""
    gym = types.ModuleType("gym")
    gym.Env = type("Env", (), {})
    gym.Wrapper = type("Wrapper", (gym.Env,), {})
    gym.ObservationWrapper = type("ObservationWrapper", (gym.Wrapper,), {})
    gym.spaces = types.ModuleType("gym.spaces")
    sys.modules.update({"gym": gym, "gym.spaces": gym.spaces, "minatar": types.ModuleType("minatar")})


def build_reference(reference_dir: Path, threads: int = 0) -> dict:
    """The reference's Trainer at its MinAtarConfig and closures calling its own update code.

    Returns ``{"trainer", "timed": {name: fn}, "info": {...}}``; ``wm_update`` returns the model loss,
    ``behaviour_update`` (actor loss, value loss), as floats."""
    import numpy as np
    import torch
    from dreamer import OBS, synthetic_batch

    _stub_env_modules()
    reference_dir = reference_dir.resolve()
    sys.path.insert(0, str(reference_dir))
    import dreamerv2
    from dreamerv2.training.config import MinAtarConfig
    from dreamerv2.training.trainer import Trainer
    from dreamerv2.utils.module import get_parameters

    if not Path(dreamerv2.__file__).resolve().is_relative_to(reference_dir):
        raise RuntimeError(f"imported dreamerv2 from {dreamerv2.__file__}, not from {reference_dir}")
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    obs_shape, n_actions = OBS[PRESET]
    # As its test/mdp.py builds it for a MinAtar game (obs_dtype bool, one-hot float32 actions).
    config = MinAtarConfig(env="synthetic", obs_shape=obs_shape, action_size=n_actions, obs_dtype=bool,
                           action_dtype=np.float32)
    device = torch.device("cpu")
    trainer = Trainer(config, device)

    # The same synthetic batch as dreamer.py, in the layout of its TransitionBuffer.sample: (L, B, ...).
    b = synthetic_batch(obs_shape, n_actions, config.batch_size, config.seq_len)
    obs_np = np.ascontiguousarray(b["obs"].swapaxes(0, 1)).astype(config.obs_dtype)
    actions_np = np.eye(n_actions, dtype=config.action_dtype)[b["action"].T]
    rewards_np = np.ascontiguousarray(b["reward"].T)
    terms_np = np.ascontiguousarray(b["is_terminal"].T)

    def tensors():  # Trainer.train_batch, after self.buffer.sample()
        obs = torch.tensor(obs_np, dtype=torch.float32).to(device)
        actions = torch.tensor(actions_np, dtype=torch.float32).to(device)
        rewards = torch.tensor(rewards_np, dtype=torch.float32).to(device).unsqueeze(-1)
        nonterms = torch.tensor(1 - terms_np, dtype=torch.float32).to(device).unsqueeze(-1)
        return obs, actions, rewards, nonterms

    def wm_update():
        model_loss, *_ = trainer.representation_loss(*tensors())
        trainer.model_optimizer.zero_grad()
        model_loss.backward()
        torch.nn.utils.clip_grad_norm_(get_parameters(trainer.world_list), trainer.grad_clip_norm)
        trainer.model_optimizer.step()
        return model_loss.item()

    with torch.no_grad():
        posterior = trainer.representation_loss(*tensors())[-1]

    def behaviour_update():
        actor_loss, value_loss, _ = trainer.actorcritc_loss(posterior)
        trainer.actor_optimizer.zero_grad()
        trainer.value_optimizer.zero_grad()
        actor_loss.backward()
        value_loss.backward()
        torch.nn.utils.clip_grad_norm_(get_parameters(trainer.actor_list), trainer.grad_clip_norm)
        torch.nn.utils.clip_grad_norm_(get_parameters(trainer.value_list), trainer.grad_clip_norm)
        trainer.actor_optimizer.step()
        trainer.value_optimizer.step()
        return actor_loss.item(), value_loss.item()

    rssm = trainer.RSSM
    with torch.no_grad():  # the start states of actorcritc_loss
        start = rssm.rssm_detach(rssm.rssm_seq_to_batch(posterior, trainer.batch_size, trainer.seq_len - 1))

    def imagine():
        with torch.no_grad():
            rssm.rollout_imagination(trainer.horizon, trainer.ActionModel, start)

    trained = trainer.world_list + trainer.actor_list + trainer.value_list
    info = {
        "batch": config.batch_size, "length": config.seq_len, "obs_shape": list(obs_shape),
        "actions": n_actions, "imag_starts": int(start.deter.shape[0]), "horizon": trainer.horizon,
        "params": sum(p.numel() for p in get_parameters(trained)),
    }
    return {"trainer": trainer, "timed": dict(zip(TIMED, (wm_update, behaviour_update, imagine),
                                                  strict=True)), "info": info}


def reference_worker(args) -> dict:
    """Times the reference's updates as ``dreamer.worker`` times ours (same statistics, same floor)."""
    import torch
    from dreamer import arithmetic_floor, time_calls

    ref = build_reference(Path(args.reference_dir), args.threads)
    result = dict(ref["info"])
    timed = ref["timed"]

    def sync():
        return None

    result.update(time_calls(timed, args.warmup, args.repeats, sync))
    result["imagination_steps_per_s"] = (result["imag_starts"] * result["horizon"]
                                         / (result["imagine_ms_median"] / 1000))
    result.update(arithmetic_floor(result, timed))
    result["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    result["torch_threads"] = torch.get_num_threads()
    return result


# --- driver --------------------------------------------------------------------------------------------

def extract_reference(git_dir: str, rev: str, into: Path) -> str:
    """``git archive <rev>`` of the reference into ``into``; returns the commit."""
    commit = subprocess.run(["git", "-C", git_dir, "rev-parse", f"{rev}^{{commit}}"], check=True,
                            capture_output=True, text=True).stdout.strip()
    archive = subprocess.run(["git", "-C", git_dir, "archive", commit], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return commit


def checkout_commit(path: Path) -> str | None:
    """HEAD of the checkout ``path`` if it is a git work tree of its own, else None."""
    if not (path / ".git").exists():
        return None
    out = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


def _run(cmd: list[str], what: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"benchmarks/vs_reference: {what} failed (exit {proc.returncode}):\n{proc.stderr.strip()}")
    return proc


def ours_command(args, out: Path) -> list[str]:
    cmd = [sys.executable, str(HERE / "dreamer.py"), "--presets", PRESET, "--repeats", str(args.repeats),
           "--warmup", str(args.warmup), "--threads", str(args.threads), "--out", str(out)]
    # Always --allow-load: after the first round the 1-minute load average holds this benchmark's own
    # previous rounds; whether other work loaded the machine is judged once, by this process's Conditions.
    return cmd + ["--allow-load"]


def run_ours(args, out: Path) -> dict:
    _run(ours_command(args, out), "benchmarks/dreamer.py")
    report = json.loads(out.read_text())
    machine = report["machine"]
    return {**report["results"][0],
            "conditions": {k: machine.get(k) for k in ("load_before", "load_after", "loaded",
                                                        "loaded_reasons")}}


def reference_command(args, reference_dir: Path) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--reference-worker", "--reference-dir",
            str(reference_dir), "--repeats", str(args.repeats), "--warmup", str(args.warmup), "--threads",
            str(args.threads)]


def run_reference(args, reference_dir: Path) -> dict:
    out = _run(reference_command(args, reference_dir), "the reference worker").stdout
    return json.loads(out.strip().splitlines()[-1])


def _range(values: list[float]) -> list[float]:
    return [min(values), max(values)]


def summarise(rounds: list[dict]) -> dict:
    summary = {}
    for key in COMPARED:
        ours = [r["wmtransfer"][key] for r in rounds]
        ref = [r["reference"][key] for r in rounds]
        ratios = [r["ratio_reference_over_ours"][key] for r in rounds]
        summary[key] = {"wmtransfer": ours, "reference": ref, "wmtransfer_range": _range(ours),
                        "reference_range": _range(ref), "ratio_per_round": ratios,
                        "ratio_range": _range(ratios)}
    for name in TIMED:
        key = f"{name}_x_floor"
        if all(key in r["wmtransfer"] and key in r["reference"] for r in rounds):
            summary[key] = {"wmtransfer": [r["wmtransfer"][key] for r in rounds],
                            "reference": [r["reference"][key] for r in rounds]}
    return summary


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (ours, reference) (default 3)")
    p.add_argument("--repeats", type=int, default=7, help="timed calls per update; the median counts")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls before them")
    p.add_argument("--threads", type=int, default=0, help="torch threads on both sides (0: torch's default)")
    p.add_argument("--reference-git", default=DEFAULT_MIRROR,
                   help=f"git directory (bare or a clone of {REFERENCE_URL}) to extract the reference from")
    p.add_argument("--reference-rev", default="HEAD", help="revision of --reference-git (default HEAD)")
    p.add_argument("--reference-dir", help="use this checkout of the reference instead of extracting one")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="JSON written (default %(default)s)")
    add_load_argument(p)
    p.add_argument("--reference-worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.rounds < 1 or args.repeats < 1:
        p.error("--rounds and --repeats must be at least 1")
    if args.reference_worker:
        print(json.dumps(reference_worker(args)))
        return
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    out_path = Path(args.out)
    conditions = Conditions("vs_reference", args.allow_load, previous=out_path).start()
    with tempfile.TemporaryDirectory(prefix="vs_reference_") as tmp:
        tmp = Path(tmp).resolve()
        if args.reference_dir:
            reference_dir = Path(args.reference_dir).resolve()
            if reference_dir.is_relative_to(REPO):
                sys.exit(f"benchmarks/vs_reference: {reference_dir} is inside this repository; keep the "
                         "reference outside it")
            commit = checkout_commit(reference_dir)
            source = f"the checkout {reference_dir} (--reference-dir)"
        else:
            if tmp.is_relative_to(REPO):
                sys.exit(f"benchmarks/vs_reference: the temporary directory {tmp} is inside the repository")
            reference_dir = tmp / "dreamerv2"
            reference_dir.mkdir()
            commit = extract_reference(args.reference_git, args.reference_rev, reference_dir)
            source = f"git archive of {args.reference_git} into a temporary directory outside the repository"
        rounds = []
        for i in range(args.rounds):
            ours = run_ours(args, tmp / f"ours_{i}.json")
            print(f"round {i + 1} ours:      {ours['wm_update_ms_median']:.0f} ms wm, "
                  f"{ours['behaviour_update_ms_median']:.0f} ms behaviour, {ours['peak_rss_gib']:.2f} GiB",
                  flush=True)
            ref = run_reference(args, reference_dir)
            print(f"round {i + 1} reference: {ref['wm_update_ms_median']:.0f} ms wm, "
                  f"{ref['behaviour_update_ms_median']:.0f} ms behaviour, {ref['peak_rss_gib']:.2f} GiB",
                  flush=True)
            rounds.append({"wmtransfer": ours, "reference": ref,
                           "ratio_reference_over_ours": {k: ref[k] / ours[k] for k in COMPARED}})
    summary = summarise(rounds)
    report = {
        "what": (f"{PRESET} preset vs RajGhugare19/dreamerv2's own update code at its MinAtarConfig "
                 "(batch 50 x length 50, deter 200, 20x20 categorical latents, imagination horizon 10 from "
                 f"50 x 49 start states, 10x10x10 binary observations, 6 actions), {args.rounds} alternating "
                 "rounds (ours, reference) on the same machine, each side in its own subprocess, torch "
                 f"{args.threads or 'default'} threads, fp32, CPU, median of {args.repeats} calls after "
                 f"{args.warmup} warm-up calls"),
        "command": " ".join(["python", "benchmarks/vs_reference.py", *sys.argv[1:]]),
        "command_ours": " ".join(["python", "benchmarks/dreamer.py",
                                  *ours_command(args, Path("<tmp>.json"))[2:]]),
        "command_reference": " ".join(["python", "benchmarks/vs_reference.py",
                                       *reference_command(args, Path("<reference>"))[2:]]),
        "reference": (f"{REFERENCE_URL} at {commit or 'an unknown commit'}, from {source}, run unmodified "
                      "from there (not part of this repository): its Trainer's representation_loss and "
                      "actorcritc_loss with its optimisers as its train_batch steps them, and "
                      "RSSM.rollout_imagination; gym and minatar stubbed in its process (imported only by "
                      "its environment wrappers)"),
        "reference_commit": commit,
        "date": time.strftime("%Y-%m-%d"),
        "machine": conditions.finish(),
        "rounds": rounds,
        "summary": summary,
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    for key, row in summary.items():
        if "ratio_per_round" in row:
            print(f"{key}: ours {row['wmtransfer_range']}, reference {row['reference_range']}, "
                  f"reference/ours {[round(r, 2) for r in row['ratio_per_round']]}")
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
