"""Kill a real training run (the CLI in a subprocess) after its first checkpoint, rerun it, and check
that its curve continues: no repeated and no missing env steps, wall time continued."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from dreamer_tiny import TINY_DREAMER

AGENT = {"env_steps": 400, "prefill": 50, "train_every": 10, "batch": 4, "length": 8, "eval_every": 100,
         "eval_episodes": 2, "log_every": 50, "checkpoint_every": 5}


def command(out) -> list[str]:
    return [sys.executable, "-m", "wmtransfer.cli", "train-agent", "--game", "minatar-breakout",
            "--seed", "0", "--out", str(out), "--threads", "1", "--config", json.dumps(AGENT),
            "--dreamer", json.dumps(TINY_DREAMER)]


@pytest.mark.slow
def test_killed_run_continues_its_curve(tmp_path):
    out = tmp_path / "run"
    ckpt = out / "ckpt" / "checkpoint.pt"
    proc = subprocess.Popen(command(out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while not ckpt.exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() < deadline, "no checkpoint within 240 s"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "agent.pt").exists(), "the run finished before it could be killed"
    assert not (out / "metrics.csv").exists()  # declared outputs appear only when the run is complete
    killed = pd.read_csv(out / "partial" / "metrics.csv")

    done = subprocess.run(command(out), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "resuming from" in done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["env_steps"] == 400 and summary["updates"] == 35  # (400 - 50) / 10
    m = pd.read_csv(out / "metrics.csv")
    assert m["env_step"].is_monotonic_increasing and m["update"].is_monotonic_increasing
    assert m["wall_time"].is_monotonic_increasing  # continued, not restarted at 0
    assert len(killed) > 0 and m["env_step"].iloc[-1] == 400
    losses = m.dropna(subset=["wm_loss"])
    assert list(losses["env_step"]) == list(range(100, 401, 50))  # every log point once
    evals = m.dropna(subset=["eval_return"])
    assert list(evals["env_step"]) == [0, 100, 200, 300, 400]
    episodes = m.dropna(subset=["episode_return"])
    assert episodes["env_step"].is_unique  # one game: no two episodes end at the same step


@pytest.mark.slow
def test_a_second_run_into_a_busy_folder_stops_and_the_first_is_untouched(tmp_path):
    """Two runs started into one folder (a script started twice, the CLI beside a Snakemake job): the second
    stops with a clear error naming the first's pid, before it writes anything; the first finishes with one
    unbroken curve."""
    out = tmp_path / "run"
    ckpt = out / "ckpt" / "checkpoint.pt"
    first = subprocess.Popen(command(out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while not ckpt.exists():
        assert first.poll() is None, first.stderr.read()
        assert time.time() < deadline, "no checkpoint within 240 s"
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGSTOP)  # hold the first mid-run while the second starts, however slow
    try:
        files = (ckpt, out / "partial" / "metrics.csv")
        before = {f: (f.stat().st_mtime_ns, f.stat().st_size) for f in files}
        second = subprocess.run(command(out), capture_output=True, text=True, timeout=300)  # the same run
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert second.returncode == 2, second.stderr
    assert f"pid {first.pid}" in second.stderr and str(out) in second.stderr
    assert "resuming" not in second.stderr
    assert {f: (f.stat().st_mtime_ns, f.stat().st_size) for f in before} == before  # it wrote nothing

    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    m = pd.read_csv(out / "metrics.csv")
    steps = m.dropna(subset=["episode_return"])["env_step"]
    assert m["env_step"].is_monotonic_increasing and m["update"].is_monotonic_increasing
    assert not steps.duplicated().any()
    assert json.loads((out / "summary.json").read_text())["updates"] == 35
