"""The whole DAG of the smoke study from nothing, through the real `snakemake` (every stage and figure).

Stages 1-2 (DQN policies, datasets), 3 (offline world-model pre-training), 4 (agents: scratch,
finetune, frozen_rssm x 2 seeds), 5 (aggregated curves, figures, tables, latent analysis), the
random baseline, Ha & Schmidhuber's World Models (V-M-C) on the target, then the `report_only` target
and `snakemake --report`. Budgets are tiny; what is
checked is that every declared file is built, complete and consistent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from wmtransfer.data.dataset import GameDataset
from wmtransfer.data.episodes import read_manifest

REPO = Path(__file__).resolve().parents[1]
STUDY = "smoke"
TARGET = "minatar-space_invaders"
CONDITIONS = ["finetune", "frozen_rssm", "scratch"]


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
    # targets and flags first: --configfile takes every word after it
    return subprocess.run([sys.executable, "-m", "snakemake", *args, "--cores", "2", "--configfile",
                           "tests/smoke/config.yaml"], cwd=workdir, env=env, capture_output=True,
                          text=True, timeout=900)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A copy of the workflow (not of results/ or logs/) with the smoke study built in it."""
    workdir = tmp_path_factory.mktemp("smoke") / "wf"
    ignore = shutil.ignore_patterns("results", "logs", ".snakemake", ".git", ".venv", "__pycache__",
                                    "*.egg-info", ".pytest_cache", ".ruff_cache", "src", "docs", "benchmarks")
    shutil.copytree(REPO, workdir, ignore=ignore)
    proc = snakemake(workdir)
    logs = "\n".join(f"== {p}\n{p.read_text()[-1500:]}" for p in sorted((workdir / "logs").rglob("*.log")))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:] + logs[-6000:]
    (workdir / "snakemake.out").write_text(proc.stdout + proc.stderr)
    return workdir


@pytest.mark.slow
def test_datasets_hold_several_policies(built):
    for game in ("minatar-breakout", "minatar-seaquest"):
        rows = read_manifest(built / f"results/datasets/{game}/manifest.csv")
        policies = {p for r in rows for p in r["policies"].split(";")}
        assert "random" in policies and len(policies) >= 3, (game, policies)
        GameDataset(built / f"results/datasets/{game}").validate()
    for name in ("metrics.csv", "summary.json", "checkpoints/step2000.pt"):
        assert (built / "results/dqn/minatar-breakout/seed0" / name).exists()
    assert (built / "logs/datasets/minatar-breakout.log").exists()


@pytest.mark.slow
def test_pretraining_and_agents_finished(built):
    for seed in (0, 1):
        run = built / f"results/pretrain/smoke/seed{seed}"
        summary = json.loads((run / "summary.json").read_text())
        assert summary["updates"] == 12 and summary["dataset_env_steps"] > 0
        assert (run / "world_model.pt").exists()
        for condition in CONDITIONS:
            agent = built / f"results/agents/{STUDY}/{TARGET}/{condition}/seed{seed}"
            metrics = pd.read_csv(agent / "metrics.csv")
            assert metrics["env_step"].max() == 240, (condition, seed)
            assert metrics["episode_return"].notna().any() and metrics["wm_loss"].notna().any()
            assert (agent / "agent.pt").exists()
            assert (built / f"logs/agents/{STUDY}/{TARGET}/{condition}/seed{seed}.log").exists()


@pytest.mark.slow
def test_report_figures_tables_and_latents(built):
    report = built / f"results/report/{STUDY}"
    curves = pd.read_parquet(report / "curves.parquet")
    agents = curves[curves["target"] == TARGET]
    assert sorted(agents["condition"].unique()) == CONDITIONS
    assert sorted(agents["seed"].unique()) == [0, 1]
    figures = report / "figures"
    for name in (f"return_{TARGET}", f"wm_loss_{TARGET}", f"compute_matched_{TARGET}"):
        for ext in ("png", "svg"):
            assert (figures / f"{name}.{ext}").stat().st_size > 1000, f"{name}.{ext}"
    # the runs end long before update 5000: no zoom that would repeat the full figure
    assert not (figures / f"wm_loss_zoom_{TARGET}.png").exists()
    assert json.loads((figures / "figures.json").read_text())
    table = pd.read_csv(report / "table.csv")
    assert set(CONDITIONS) <= set(table["condition"])
    latent = json.loads((report / "latent/smoke/seed0/latent.json").read_text())
    assert set(latent["games"]) == {"minatar-breakout", "minatar-seaquest"}  # one game at a time
    assert latent["games"]["minatar-breakout"]["positions_from"] == "game state"
    assert (report / "latent/smoke/seed0/latent_minatar-breakout.png").stat().st_size > 1000
    rollouts = report / "rollouts/smoke/seed0"
    dreams = json.loads((rollouts / "rollouts.json").read_text())["games"]
    assert {g: v["kind"] for g, v in dreams.items()} == {
        "minatar-breakout": "seen", "minatar-seaquest": "seen", TARGET: "unseen"}
    for game in dreams:
        assert (rollouts / f"{game}.png").stat().st_size > 1000, game
        assert (rollouts / f"{game}.gif").stat().st_size > 1000, game
        assert len(dreams[game]["mse_per_step"]) == dreams[game]["frames"] == 20
    assert (report / f"reconstructions/{TARGET}.png").stat().st_size > 1000


@pytest.mark.slow
def test_findings_page_and_where_to_look(built):
    report = built / f"results/report/{STUDY}"
    page = (report / "summary.md").read_text()
    assert page.startswith(f"# Findings of study `{STUDY}`")
    # 2 seeds: no verdict
    assert "| **inconclusive** | finetune's world-model total loss falls faster than scratch's" in page
    assert "fewer than the 3 a verdict needs" in page and "inf" not in page.replace("inconclusive", "")
    assert "Latent analysis" in page and "Dreamed rollouts" in page
    findings = json.loads((report / "summary.json").read_text())["findings"]
    assert {f["key"] for f in findings} >= {"001-wm-early", "001-kl", "001-return-early", "003-transfer"}
    out = (built / "snakemake.out").read_text()
    assert f"Findings of study {STUDY}: results/report/{STUDY}/summary.md" in out
    assert "  inconclusive: finetune's world-model total loss" in out


@pytest.mark.slow
def test_world_models_chain_and_figures(built):
    """V-M-C (seed 004) on the target for both seeds, its figures and table, and its level in the
    target's return figure next to DreamerV2's curves."""
    for seed in (0, 1):
        run = built / f"results/vmc/{TARGET}/seed{seed}"
        for name in ("vae.pt", "mdnrnn.pt", "controller.pt", "controller_metrics.csv"):
            assert (run / name).stat().st_size > 0, name
        assert json.loads((run / "controller_summary.json").read_text())["generations"] == 3
        assert len(pd.read_csv(run / "evaluation.csv")) == 4
        assert (built / f"logs/vmc/{TARGET}/seed{seed}/train_controller.log").exists()
    figures = built / f"results/report/{STUDY}/vmc"
    for seed in (0, 1):
        for kind in ("reconstructions", "predictions", "fitness", "returns"):
            assert (figures / f"{TARGET}_seed{seed}_{kind}.png").stat().st_size > 1000, (seed, kind)
    table = pd.read_csv(figures / "table.csv")
    assert table["game"].tolist() == [TARGET] and table["seeds"].tolist() == [2]
    captions = json.loads((built / f"results/report/{STUDY}/figures/figures.json").read_text())
    assert "V-M-C" in captions[f"return_{TARGET}"]["caption"]


@pytest.mark.slow
def test_report_target_rebuilds_without_training_and_html_report(built):
    before = (built / f"results/report/{STUDY}/table.csv").stat().st_mtime
    dry = snakemake(built, "report_only", "-n")
    assert dry.returncode == 0 and "Nothing to be done" in dry.stdout + dry.stderr
    forced = snakemake(built, "report_only", "--forcerun", "aggregate_curves", "-n")
    jobs = forced.stdout
    assert "plot_report" in jobs and "make_tables" in jobs and "summarise_findings" in jobs
    assert "train_agent" not in jobs and "pretrain_world_model" not in jobs and "train_dqn" not in jobs
    html = snakemake(built, "--report", "report.html")
    assert html.returncode == 0, html.stderr[-3000:]
    assert (built / "report.html").stat().st_size > 10_000
    assert (built / f"results/report/{STUDY}/table.csv").stat().st_mtime == before
