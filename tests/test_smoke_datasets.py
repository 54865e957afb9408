"""The smoke study's dataset target builds from nothing with the real snakemake (stages 1 and 2)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from wmtransfer.data.dataset import GameDataset
from wmtransfer.data.episodes import read_manifest

REPO = Path(__file__).resolve().parents[1]
TARGET = "results/datasets/minatar-breakout/manifest.csv"


@pytest.mark.slow
def test_smoke_dataset_target_builds(tmp_path):
    # A copy of the workflow (not of results/), so relative rule paths land in tmp_path.
    for name in ("Snakefile", "config.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    for name in ("rules", "schemas"):
        shutil.copytree(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "tests" / "smoke", tmp_path / "tests" / "smoke")
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", TARGET, "--cores", "2",
         "--configfile", "tests/smoke/config.yaml"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    logs = "\n".join(p.read_text() for p in sorted((tmp_path / "logs").rglob("*.log")))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:] + logs[-3000:]
    rows = read_manifest(tmp_path / TARGET)
    policies = {p for r in rows for p in r["policies"].split(";")}
    assert "random" in policies and len(policies) >= 3, policies
    GameDataset(tmp_path / "results/datasets/minatar-breakout").validate()
    for name in ("metrics.csv", "summary.json", "checkpoints/step2000.pt"):
        assert (tmp_path / "results/dqn/minatar-breakout/seed0" / name).exists()
    assert (tmp_path / "logs/dqn/minatar-breakout/seed0.log").exists()
    assert (tmp_path / "logs/datasets/minatar-breakout.log").exists()
