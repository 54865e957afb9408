"""The findings page: seed claims answered from synthetic runs whose truth is known."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from analysis_synthetic import metrics_frame, write_pretrain_summary, write_study

from wmtransfer.analysis import curves, findings
from wmtransfer.analysis.stats import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE, StatsConfig
from wmtransfer.cli import main

TARGET = "minatar-space_invaders"
CFG = StatsConfig(grid_points=60, n_boot=400)
DESIGN = findings.Design({"minatar4": ["minatar-asterix", "minatar-breakout"]},
                         {TARGET: ["minatar4"]})


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Synthetic runs: finetune learns (return and world-model loss) twice as fast as scratch,
    frozen_rssm 1.5 times slower; 4 seeds."""
    root = tmp_path_factory.mktemp("findings")
    return root, curves.aggregate(write_study(root, seeds=(0, 1, 2, 3), budget=12000))


def _by_key(found):
    return {(f.key, f.claim.split("'")[0].split(" ")[0], f.claim): f for f in found}


def test_seed001_claims_on_known_curves(study):
    _, table = study
    found = findings.study_findings(table, DESIGN, CFG)
    answers = {(f.key, f.claim): f for f in found}
    early = [f for f in found if f.key == "001-wm-early"]
    assert len(early) == 2 and all(f.answer == HOLDS for f in early)
    assert all(f.effect.high < 0 and f.effect.n_a == f.effect.n_b == 4 for f in early)
    assert all(f.tested_on == f"{TARGET}, unseen" for f in early)
    assert early[0].figure == "figures/wm_loss_zoom_minatar-space_invaders.png"
    returns = [f for f in found if f.key == "001-return-early"]
    assert [f.answer for f in returns] == [HOLDS] and returns[0].effect.low > 0
    frozen = [f for f in found if f.key == "001-frozen-return"]
    assert [f.answer for f in frozen] == [HOLDS] and frozen[0].effect.high < 0
    assert ("001-kl", "frozen_rssm has a higher KL loss than finetune") in answers
    # scratch against itself reversed: a claim in the wrong direction does not hold
    swap = {"scratch": "finetune", "finetune": "scratch"}
    flipped = table.assign(condition=table["condition"].replace(swap))
    back = {f.key: f for f in findings.study_findings(flipped, DESIGN, CFG) if f.key == "001-return-early"}
    assert back["001-return-early"].answer == DOES_NOT_HOLD


def test_two_seeds_or_noise_give_inconclusive_never_holds(study):
    _, table = study
    two = table[table["seed"] < 2]
    found = findings.study_findings(two, DESIGN, CFG)
    assert found and all(f.answer == INCONCLUSIVE for f in found)
    assert all("fewer than the 3" in f.reason for f in found)
    # the same curves for both conditions: no effect, so no verdict either way
    same = table[table["condition"] == "scratch"]
    twin = pd.concat([same, same.assign(condition="finetune")], ignore_index=True)
    early = [f for f in findings.study_findings(twin, DESIGN, CFG) if f.key == "001-wm-early"]
    assert early and all(f.answer == INCONCLUSIVE and "contains zero" in f.reason for f in early)


def test_seed003_and_002_claims(tmp_path):
    levels = ("mario-3-1", "mario-3-2")
    paths = []
    for seed in (0, 1, 2):
        run = tmp_path / "results" / "pretrain_agent" / "E2" / f"seed{seed}" / "metrics.csv"
        run.parent.mkdir(parents=True)
        metrics_frame("finetune", seed, 8000, games=levels).to_csv(run, index=False)
        paths.append(run)
    paths += write_study(tmp_path, targets=levels + ("mario-1-1",), conditions=("scratch", "finetune_agent"),
                         seeds=(0, 1, 2), budget=8000)
    for seed in (0, 1, 2):  # seed 002 ablation: a variant that learns more slowly
        folder = tmp_path / "results/agents/demo/mario-3-1/scratch-no_kl_balance" / f"seed{seed}"
        folder.mkdir(parents=True)
        frame = metrics_frame("frozen_rssm", seed, 8000, game="mario-3-1")
        frame.to_csv(folder / "metrics.csv", index=False)
        paths.append(folder / "metrics.csv")
    table = curves.aggregate(paths, study="demo")
    design = findings.Design({"E2": list(levels)}, {lv: ["E2"] for lv in levels + ("mario-1-1",)})
    costs = {lv: {"finetune_agent": 2000.0} for lv in levels}
    found = {f.key: f for f in findings.study_findings(table, design, CFG, costs)}
    multi = found["003-multitask"]
    assert multi.tested_on == "E2, mean over levels" and "at 4,000" in multi.measure
    assert multi.answer == HOLDS  # tau 2000 over 8000 steps beats tau 4000 over 4000 steps
    matched = found["003-compute-matched"]
    assert matched.tested_on == "2 seen target(s)" and "12% of the budget" in matched.measure
    assert matched.answer == HOLDS
    transfer = found["003-transfer"]
    assert transfer.tested_on == "1 unseen target(s)" and transfer.answer == HOLDS
    assert found["002-ablation"].answer == HOLDS and found["002-ablation"].effect.n_a == 3
    costly = {lv: {"finetune_agent": 50_000.0} for lv in levels}
    over = {f.key: f for f in findings.study_findings(table, design, CFG, costly)}["003-compute-matched"]
    assert over.answer == INCONCLUSIVE and "exceeds the budget" in over.reason


def test_summary_page_cli_and_headlines(study, tmp_path):
    root, table = study
    table_path = curves.write_table(table, tmp_path / "curves.csv")[1]
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / f"wm_loss_{TARGET}.png").write_bytes(b"png")
    extra = tmp_path / "latent.json"
    extra.write_text(json.dumps({"summary": "Latent analysis: a planted sentence"}))
    design = {"envsets": {"minatar4": ["minatar-breakout"]},
              "targets": [{"game": TARGET, "envset": "minatar4"}]}
    summary = write_pretrain_summary(root, dataset_env_steps=8000)
    argv = ["summarise-findings", "--study", "demo", "--table", str(table_path), "--design",
            json.dumps(design), "--figures", str(tmp_path / "figures"), "--pretrain-summaries", str(summary),
            "--extras", str(extra), "--config", json.dumps({"n_boot": 300}), "--out", str(tmp_path)]
    assert main(argv) == 0
    md = (tmp_path / "summary.md").read_text()
    assert md.startswith("# Findings of study `demo`")
    assert "| **holds** | finetune's world-model total loss falls faster than scratch's" in md
    assert f"[wm_loss_{TARGET}](figures/wm_loss_{TARGET}.png)" in md  # the zoom does not exist: full figure
    assert "## Not testable in this study" in md and "one agent on N levels" in md
    assert "Latent analysis: a planted sentence ([latent.json](latent.json))" in md
    assert "inf" not in md.replace("inconclusive", "")
    lines = findings.headline_lines(tmp_path / "summary.json")
    assert lines[0] == f"Findings of study demo: {tmp_path / 'summary.md'}"
    assert lines[1].startswith("  holds: finetune's world-model total loss falls faster than scratch's")
    assert findings.headline_lines(tmp_path / "nothing.json") == []
    bad = ["summarise-findings", "--study", "demo", "--table", str(table_path), "--extras",
           str(tmp_path / "missing.json"), "--out", str(tmp_path)]
    assert main(bad) == 2


def test_prefill_end_is_the_first_trained_step(study):
    _, table = study
    assert curves.prefill_end(table, TARGET) == pytest.approx(
        float(table[(table["update"] > 0)]["env_step"].min()))
    assert np.isfinite(curves.prefill_end(table, "no-such-target"))


def test_early_loss_window_starts_after_the_transfer_transient(study):
    """A loaded model's first updates on a new game carry a transient (high KL) before its loss falls
    below scratch's: the early window skips the first ``early_from_frac`` of it, and says which updates
    it compared."""
    _, table = study
    loss = (table["metric"].isin(["wm_loss", "wm_image"])) & (table["condition"] == "finetune")
    spiked = table.copy()
    spiked.loc[loss & (spiked["update"] <= 100), "value"] += 1000.0  # logged every 50: 2 of 8 points
    cfg = StatsConfig(grid_points=60, n_boot=400, early_updates=400)
    early = [f for f in findings.study_findings(spiked, DESIGN, cfg) if f.key == "001-wm-early"]
    assert [f.answer for f in early] == [HOLDS, HOLDS]
    assert "below it over updates 201-400" in early[0].claim and "(of the first 400)" in early[0].measure
    from_start = StatsConfig(grid_points=60, n_boot=400, early_updates=400, early_from_frac=0.0)
    early = [f for f in findings.study_findings(spiked, DESIGN, from_start) if f.key == "001-wm-early"]
    assert [f.answer for f in early] == [DOES_NOT_HOLD, DOES_NOT_HOLD]
    assert "updates 1-400" in early[0].claim
