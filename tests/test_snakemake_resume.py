"""Kill a training job at several points through the real `snakemake`, rerun, and require the whole curve.

The job is killed with SIGKILL by the run folder's fault-injection point (``WMTRANSFER_KILL_AT``), as a
cluster's time limit or the OOM killer would; Snakemake then sees a failed job and removes its declared
outputs. The rerun (plain `snakemake` again, `--rerun-incomplete` from the default profile) must end with
the same complete ``metrics.csv``: offline pre-training is deterministic across a resume, so its rows
must equal an uninterrupted run's; an online agent restarts its games at a resume, so its rows up to the
checkpoint must equal the uninterrupted run's and the rest must be complete (every log and evaluation
point once, no repeated episode step).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
AGENT_RUN = "results/agents/resume/minatar-space_invaders/scratch/seed0"
PRETRAIN_RUN = "results/pretrain/pair/seed0"


def study() -> dict:
    cfg = yaml.safe_load((REPO / "tests/smoke/config.yaml").read_text())
    cfg.update({
        "study": "resume",
        "envsets": {"pair": ["minatar-breakout", "minatar-seaquest"]},
        "targets": [{"game": "minatar-space_invaders", "envset": "pair"}],
        "conditions": ["scratch"], "seeds": [0],
        "dataset": {"random_steps": 500, "policy_steps": 0},
        "pretrain": {"updates": 24, "batch": 4, "length": 8, "log_every": 2, "checkpoint_every": 6},
        "agent": {"env_steps": 400, "prefill": 100, "train_every": 10, "batch": 4, "length": 8,
                  "eval_every": 100, "eval_episodes": 2, "eval_time_limit": 100, "log_every": 50,
                  "checkpoint_every": 6, "time_limit": 200},
    })
    cfg["random_baseline"] = {"enabled": False}
    return cfg


def snakemake(workdir: Path, target: str, kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
    env.pop("WMTRANSFER_KILL_AT", None)
    if kill_at:
        env["WMTRANSFER_KILL_AT"] = kill_at
    return subprocess.run([sys.executable, "-m", "snakemake", target, "--cores", "2", "--configfile",
                           "study.yaml"], cwd=workdir, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    wd = tmp_path_factory.mktemp("resume") / "wf"
    ignore = shutil.ignore_patterns("results", "logs", ".snakemake", ".git", ".venv", "__pycache__",
                                    "*.egg-info", ".pytest_cache", ".ruff_cache", "src", "docs", "benchmarks",
                                    "tests")
    shutil.copytree(REPO, wd, ignore=ignore)
    (wd / "study.yaml").write_text(yaml.safe_dump(study()))
    return wd


def fresh(workdir: Path, run: str) -> None:
    shutil.rmtree(workdir / run, ignore_errors=True)


def rows(path: Path) -> pd.DataFrame:
    return pd.read_csv(path).drop(columns=["wall_time"])


def build(workdir: Path, target: str) -> None:
    proc = snakemake(workdir, target)
    assert proc.returncode == 0, proc.stderr[-4000:]


def killed_then_rerun(workdir: Path, run: str, output: str, kill_at: str) -> tuple[int | None, str]:
    """Build ``run/output`` with its job killed at ``kill_at``, check that no declared output is left,
    rerun. Returns the metrics rows the surviving checkpoint accounted for (None: none) and the job log."""
    proc = snakemake(workdir, f"{run}/{output}", kill_at)
    assert proc.returncode != 0, f"the job was not killed at {kill_at}: " + proc.stderr[-2000:]
    for declared in ("metrics.csv", "summary.json", output):
        assert not (workdir / run / declared).exists(), (kill_at, declared)
    assert (workdir / run / "partial" / "config.json").exists()
    ckpt = workdir / run / "ckpt" / "checkpoint.pt"
    kept = int(torch.load(ckpt, weights_only=True)["metrics_rows"]) if ckpt.exists() else None
    proc = snakemake(workdir, f"{run}/{output}")
    assert proc.returncode == 0, proc.stderr[-4000:]
    log = workdir / "logs" / Path(run).relative_to("results").with_suffix(".log")
    return kept, log.read_text()


@pytest.mark.slow
def test_pretraining_killed_anywhere_ends_with_the_uninterrupted_curve(workdir):
    build(workdir, f"{PRETRAIN_RUN}/world_model.pt")
    reference = rows(workdir / PRETRAIN_RUN / "metrics.csv")
    assert list(reference["update"]) == list(range(2, 25, 2))
    for kill_at in ("save:3", "finish", "promote:2"):
        fresh(workdir, PRETRAIN_RUN)
        kept, log = killed_then_rerun(workdir, PRETRAIN_RUN, "world_model.pt", kill_at)
        assert ("resuming from" in log) == (kept is not None), (kill_at, log[-2000:])
        after = rows(workdir / PRETRAIN_RUN / "metrics.csv")
        print(f"pre-training killed at {kill_at}: checkpoint kept {kept} rows; after the rerun {len(after)} "
              f"rows, uninterrupted {len(reference)}")
        pd.testing.assert_frame_equal(after, reference, check_exact=False, rtol=1e-5, obj=kill_at)


@pytest.mark.slow
def test_agent_killed_anywhere_ends_with_a_complete_curve(workdir):
    build(workdir, f"{AGENT_RUN}/agent.pt")
    reference = rows(workdir / AGENT_RUN / "metrics.csv")
    # kill points: before the first checkpoint (nothing to resume), after two checkpoints, after the
    # last one (training done, nothing promoted), and while the outputs are promoted
    for kill_at, resumed in (("save:1", False), ("save:3", True), ("finish", True), ("promote:2", True)):
        fresh(workdir, AGENT_RUN)
        kept, log = killed_then_rerun(workdir, AGENT_RUN, "agent.pt", kill_at)
        assert (kept is not None) == resumed and ("resuming from" in log) == resumed, (kill_at, log[-2000:])
        m = rows(workdir / AGENT_RUN / "metrics.csv")
        # the complete curve: every log point once, every evaluation once, no episode step repeated
        assert list(m.dropna(subset=["wm_loss"])["env_step"]) == list(range(150, 401, 50)), kill_at
        assert list(m.dropna(subset=["eval_return"])["env_step"]) == [0, 100, 200, 300, 400], kill_at
        assert m["env_step"].is_monotonic_increasing and m["update"].is_monotonic_increasing, kill_at
        assert m.dropna(subset=["episode_return"])["env_step"].is_unique, kill_at
        assert m["update"].iloc[-1] == reference["update"].iloc[-1], kill_at
        # deterministic up to the checkpoint it resumed from: those rows equal the uninterrupted run's
        # (after it the games restart, so episodes differ); killed after training, the whole curve does
        same = len(reference) if kill_at in ("finish", "promote:2") else (kept or len(reference))
        print(f"agent killed at {kill_at}: checkpoint kept {kept} rows; after the rerun {len(m)} rows, "
              f"uninterrupted {len(reference)}; first {same} identical")
        pd.testing.assert_frame_equal(m.iloc[:same], reference.iloc[:same], check_exact=False, rtol=1e-5,
                                      obj=kill_at)
        assert kept is None or kept > 0, kill_at
