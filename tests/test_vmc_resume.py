"""A V-M-C stage killed at a fault point (``WMTRANSFER_KILL_AT``, SIGKILL as a cluster would) and rerun
through the bare CLI ends identical to an uninterrupted run: same weights, same metrics rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import torch

from wmtransfer.train.collect import DatasetConfig, collect_dataset

GAME = "minatar-breakout"
VMC = {"enabled": True, "latent": 4, "vae_depth": 4, "vae_batch": 16, "vae_lr": 3e-3, "vae_updates": 30,
       "vae_recon_updates": 10, "vae_beta_ramp": 20, "log_every": 5, "checkpoint_every": 10}


def train_vae(dataset, out, kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "WMTRANSFER_KILL_AT"}
    if kill_at:
        env["WMTRANSFER_KILL_AT"] = kill_at
    return subprocess.run([sys.executable, "-m", "wmtransfer.cli", "train-vae", "--game", GAME, "--seed", "0",
                           "--dataset", str(dataset), "--out", str(out), "--threads", "1",
                           "--config", json.dumps(VMC)],
                          env=env, capture_output=True, text=True, timeout=3600)


def test_killed_vae_stage_resumes_identically(tmp_path):
    dataset = tmp_path / GAME
    collect_dataset(GAME, dataset, DatasetConfig(random_steps=300, policy_steps=0, max_episode_steps=100))
    killed, straight = tmp_path / "killed", tmp_path / "straight"
    # killed before its second checkpoint: ckpt at update 10, metrics.csv already holds rows to update 20
    done = train_vae(dataset, killed, kill_at="save:2")
    assert done.returncode == -9, done.stderr
    assert not (killed / "vae.pt").exists() and not (killed / "vae_summary.json").exists()
    assert len(pd.read_csv(killed / "vae" / "partial" / "metrics.csv")) == 4
    done = train_vae(dataset, killed)
    assert done.returncode == 0, done.stderr
    assert "resuming from" in done.stderr
    assert train_vae(dataset, straight).returncode == 0
    for name in ("vae.pt", "vae_metrics.csv", "vae_summary.json"):
        assert (killed / name).exists(), name
    a = torch.load(killed / "vae.pt", weights_only=True)["state_dict"]
    b = torch.load(straight / "vae.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    m_killed = pd.read_csv(killed / "vae_metrics.csv")
    assert list(m_killed["update"]) == list(range(5, 31, 5))  # every row once, cut back and continued
    assert m_killed["wall_time"].is_monotonic_increasing
    pd.testing.assert_frame_equal(m_killed.drop(columns="wall_time"),
                                  pd.read_csv(straight / "vae_metrics.csv").drop(columns="wall_time"))
    summary = json.loads((killed / "vae_summary.json").read_text())
    assert summary["updates"] == 30 and summary["beta_ramp_start"] == 10
