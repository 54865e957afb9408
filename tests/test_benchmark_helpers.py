"""The benchmarks' load check and arithmetic floors (benchmarks/_common.py): pure functions, no timing."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import _common  # noqa: E402


def test_judge_load_counts_the_runs_own_threads_and_the_cores():
    assert _common.judge_load(0.2, 2.1, cpus=2, threads=2) == []      # quiet: the run itself loads 2
    assert _common.judge_load(1.4, 1.9, cpus=4, threads=2) == []      # room for both
    (before,) = _common.judge_load(1.0, None, cpus=2, threads=2)      # another job holds a core
    assert "before the run" in before and "2 cores" in before
    (after,) = _common.judge_load(0.1, 3.2, cpus=2, threads=1)        # something started meanwhile
    assert "after the run" in after
    assert len(_common.judge_load(2.0, 4.0, cpus=2, threads=2)) == 2


def test_judge_load_flags_a_peak_far_below_the_quiet_one():
    assert _common.judge_load(0.0, 1.0, 2, 1, peak=60e9, quiet_peak=70e9) == []
    (reason,) = _common.judge_load(0.0, 1.0, 2, 1, peak=30e9, quiet_peak=70e9)
    assert "GEMM peak 30.0" in reason and "70.0" in reason
    assert _common.judge_load(0.0, 1.0, 2, 1, peak=30e9, quiet_peak=None) == []


def test_floor_multiple():
    assert _common.floor_multiple(0.2, macs=1e9, peak=10e9) == pytest.approx(2.0)


def test_count_macs_forward_and_backward_of_a_linear_layer():
    layer = torch.nn.Linear(32, 16, bias=False)
    x = torch.randn(8, 32, requires_grad=True)
    forward = 8 * 32 * 16
    with torch.no_grad():
        assert _common.count_macs(lambda: layer(x)) == forward
    assert _common.count_macs(lambda: layer(x).sum().backward()) == 3 * forward  # dW and dx products


def test_quiet_peak_comes_only_from_an_unloaded_run_on_the_same_cores_and_threads(tmp_path):
    path = tmp_path / "b.json"
    assert _common.quiet_peak(path, 2, 2) is None
    row = {"loaded": False, "cpus": 2, "torch_threads": 2, "gemm_peak_mac_per_s": 5e10}
    path.write_text(json.dumps({"machine": row}))
    assert _common.quiet_peak(path, 2, 2) == 5e10
    assert _common.quiet_peak(path, 2, 1) is None
    path.write_text(json.dumps({"machine": {**row, "loaded": True}}))
    assert _common.quiet_peak(path, 2, 2) is None
    path.write_text(json.dumps({"machine": {k: v for k, v in row.items() if k != "loaded"}}))
    assert _common.quiet_peak(path, 2, 2) is None  # older JSONs do not say: not a reference


def test_conditions_stop_a_loaded_run_unless_allowed(monkeypatch, tmp_path):
    cpus = 2
    monkeypatch.setattr(_common.os, "cpu_count", lambda: cpus)
    monkeypatch.setattr(_common.os, "getloadavg", lambda: (5.0, 5.0, 5.0))
    with pytest.raises(SystemExit, match="loaded before the run.*--allow-load"):
        _common.Conditions("x", allow_load=False, threads=1, peak=False, previous=tmp_path / "x.json").start()
    conditions = _common.Conditions("x", allow_load=True, threads=1, peak=False,
                                    previous=tmp_path / "x.json").start()
    machine = conditions.finish()
    assert machine["loaded"] is True and machine["load_before"] == [5.0, 5.0, 5.0]
    assert machine["loaded_reasons"] and machine["gemm_peak_mac_per_s"] is None

    monkeypatch.setattr(_common.os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    machine = _common.Conditions("x", allow_load=False, threads=1, peak=False,
                                 previous=tmp_path / "x.json").start().finish()
    assert machine["loaded"] is False and machine["loaded_reasons"] == []


def test_gemm_peak_is_a_positive_rate():
    assert _common.gemm_peak_macs((16, 16, 16), repeats=3) > 0


def test_kernel_floor_records_every_product_the_flop_counter_counts():
    """benchmarks/kernel_floor.py: the recorded products of a real (shrunken) DreamerV2 update carry the
    same multiply-adds as torch's FLOP counter sees in the next update, so the kernel floor misses no product;
    every replayed product has a positive time."""
    import kernel_floor

    small = {"deter": 32, "hidden": 32, "stoch": 4, "classes": 4, "cnn_depth": 4, "head_units": 16,
             "actor_units": 16, "critic_units": 16, "batch_size": 4, "seq_length": 8, "imag_horizon": 4}
    _, _, timed, _ = kernel_floor.build_updates("minatar", overrides=small)
    torch.set_num_threads(1)
    for name in ("wm_update", "behaviour_update"):
        timed[name]()  # update 0 also runs the collapse probe (every 50 updates); compare steady updates
        res = kernel_floor.kernel_floor(timed[name], peak=50e9, top=100, min_seconds=1e-3, repeats=1)
        assert res["gmac"] * 1e9 == pytest.approx(_common.count_macs(timed[name]), rel=1e-6), name
        assert res["distinct_products"] == len(res["costliest"]) > 3
        assert all(row["ms_each"] > 0 and row["calls"] >= 1 for row in res["costliest"])
        assert res["kernel_floor_ms"] == pytest.approx(sum(r["ms_total"] for r in res["costliest"]))


def test_feature_reward_reads_the_reconstruction_and_the_head_it_is_given():
    """benchmarks/learning.py feature_reward: with a decoder that outputs one logit everywhere, the
    reconstruction's probability at every channel's on-cells is sigmoid(logit); a reward head that outputs
    the replay's mean reward has R^2 close to 0 (just below: the mean of other batches); the probes fit."""
    import learning
    from dreamer_tiny import SMALL_DREAMER
    from test_dreamer_model import random_replay

    from wmtransfer.dreamer import Dreamer, DreamerConfig

    replay = random_replay("minatar-space_invaders", 1200)
    wm = Dreamer(DreamerConfig.preset("minatar", **SMALL_DREAMER, head_target="transition"),
                 (10, 10, 10), 6).world_model
    mean_reward = float(np.mean(replay.sample(64, 50)["reward"]))
    with torch.no_grad():
        last = wm.decoder.deconvs[-1]
        last.weight.zero_()
        last.bias.fill_(-1.0)
        wm.reward_head.net[-1].weight.zero_()
        wm.reward_head.net[-1].bias.fill_(mean_reward)
    out = learning.feature_reward(wm, replay, steps=20, batches=4)
    on_channels = [p for p in out["recon_p_at_on_cells"] if p > 0]
    assert len(on_channels) >= 4  # cannon, aliens, ... are on in random Space Invaders play
    assert on_channels == pytest.approx([float(torch.sigmoid(torch.tensor(-1.0)))] * len(on_channels),
                                        abs=1e-3)
    assert -0.05 < out["head_r2"] <= 0.0
    assert {"embed_r2", "post_r2", "post_probs_r2", "deter_r2"} <= out.keys()


def test_screen_gives_every_variant_the_same_batches_and_measuring_changes_no_training():
    """benchmarks/learning.py --screen on random play: two identical variants end identical (same batches
    in the same order), and measuring midway (which samples the replay too) leaves the training as is."""
    import learning
    from dreamer_tiny import TINY_DREAMER

    section = {"preset": "minatar", "overrides": {**TINY_DREAMER, "encoder": "mlp", "decoder": "mlp",
                                                  "mlp_layers": 1, "mlp_units": 16}}
    source = "random:minatar-space_invaders:400"
    probe = {"steps": 2, "batches": 4}
    measured = learning.screen(source, {"a": section, "b": section}, updates=4, measure_every=2, probe=probe)
    plain = learning.screen(source, {"a": section}, updates=4, probe=probe)
    assert measured["replay_env_steps"] == 400 and measured["a"]["batch"] == 16
    for key in ("image_nll_last50", "reward_nll_last50", "recon_p_at_on_cells"):
        assert measured["a"][key] == measured["b"][key] == plain["a"][key], key
    assert list(measured["a"]["during"]) == [2] and "during" not in plain["a"]


def test_autoencoder_screen_trains_the_variants_networks_alone():
    """benchmarks/learning.py --autoencoder: each variant's own encoder and decoder (dense or conv) train
    as an autoencoder, measured every N updates; the image loss falls; an MSE or focal image and a batch
    of partial sequences are refused by name."""
    import learning
    from dreamer_tiny import TINY_DREAMER

    dense = {"preset": "minatar", "overrides": {**TINY_DREAMER, "encoder": "mlp", "decoder": "mlp",
                                                "mlp_layers": 2, "mlp_units": 64, "weight_init": "glorot"}}
    conv = {"preset": "minatar", "overrides": TINY_DREAMER}
    out = learning.autoencoder_screen("random:minatar-space_invaders:400", {"dense": dense, "conv": conv},
                                      updates=60, measure_every=30, batch=100)
    for name in ("dense", "conv"):
        assert list(out[name]) == [30, 60]
        assert len(out[name][60]["recon_p_at_on_cells"]) == 10
    assert out["dense"][60]["image_nll"] < out["dense"][30]["image_nll"]
    for name, overrides in (("mse", {"image_dist": "mse"}), ("focal", {"image_focal": 1.0})):
        with pytest.raises(ValueError, match=f"{name}: the autoencoder screen trains the plain Bernoulli"):
            learning.autoencoder_screen("random:minatar-space_invaders:100",
                                        {name: {"preset": "minatar", "overrides": overrides}}, 2)
    with pytest.raises(ValueError, match="batch 120 is not a multiple of sequence length 50"):
        learning.autoencoder_screen("random:minatar-space_invaders:100", {"conv": conv}, 2, batch=120)


def test_learning_table_keeps_a_variants_rules_and_its_random_floor(tmp_path):
    """benchmarks/learning.py collect(): a variant run under other game rules carries them into its row,
    the random policy under those rules is read from random-{variant}.csv, and a committed table's floors
    of variants not on this machine are kept."""
    import learning
    import pandas as pd

    game = tmp_path / "minatar-space_invaders"
    folder = game / "dreamer-rules" / "seed0" / "partial"
    folder.mkdir(parents=True)
    settings = {"sticky_action_prob": 0, "action_set": "minimal"}
    (folder / "config.json").write_text(json.dumps({"game_settings": settings}))
    pd.DataFrame({"env_step": [3000, 7000, 10000], "episode_return": [1.0, 5.0, 7.0]}).to_csv(
        folder / "metrics.csv", index=False)
    pd.DataFrame({"episode_return": [4.0, 6.0]}).to_csv(game / "random-rules.csv", index=False)
    previous = {"minatar-space_invaders": {"random_variants": {"older": 1.5}}}
    row = learning.collect(tmp_path, previous)["minatar-space_invaders"]
    assert row["dreamer-rules"]["seed0"]["game_settings"] == settings
    assert row["dreamer-rules"]["seed0"]["train_return_per_5k"] == {5000: 1.0, 10000: 6.0}
    assert row["random_variants"] == {"older": 1.5, "rules": 5.0}


def test_learning_table_keys_a_committed_rows_env_steps_by_number(tmp_path):
    """benchmarks/learning.py collect(): a committed row read back from JSON (env steps as strings) comes
    out keyed by int, so the saved table lists 5000 before 10000 and 100000 last, as a fresh run's does."""
    import learning

    (tmp_path / "minatar-breakout").mkdir()
    committed = {"env_steps": 100000, "train_return_per_5k": {"10000": 0.5, "100000": 4.3, "5000": 0.4},
                 "game_settings": {"action_set": "minimal"}}
    previous = {"minatar-breakout": {"dreamer-old": {"seed0": committed}}}
    table = learning.collect(tmp_path, json.loads(json.dumps(previous)))
    entry = table["minatar-breakout"]["dreamer-old"]["seed0"]
    assert set(entry["train_return_per_5k"]) == {5000, 10000, 100000}
    saved = json.loads(json.dumps(entry, sort_keys=True))  # as save() writes it
    assert list(saved["train_return_per_5k"].items()) == [("5000", 0.4), ("10000", 0.5), ("100000", 4.3)]
    assert entry["game_settings"] == {"action_set": "minimal"}  # not an env-step dict: keys left alone
    assert entry["from"] == "committed table"


def test_gpu_sharing_reads_a_real_runs_reach_and_rate(tmp_path):
    """benchmarks/gpu_sharing.py on a real (tiny) run: the env steps and updates it reached, its rate after
    the random prefill, and its evaluation returns, as the run's own metrics.csv has them."""
    import gpu_sharing
    import pandas as pd
    from dreamer_tiny import tiny_agent, tiny_dreamer

    from wmtransfer.train.agent import train_agent

    run = tmp_path / "minatar-breakout" / "dreamer-tiny" / "seed0"
    train_agent(["minatar-breakout"], 0, run, tiny_agent(), tiny_dreamer())
    row = gpu_sharing.summarise(run)
    metrics = pd.read_csv(run / "metrics.csv")
    assert (row["game"], row["variant"], row["seed"], row["finished"]) == (
        "minatar-breakout", "dreamer-tiny", "seed0", True)
    assert (row["env_steps"], row["updates"], row["train_every"]) == (120, 6, 10)
    assert row["env_steps_per_s_after_prefill"] > 0 and row["updates_per_s_after_prefill"] > 0
    evals = metrics.dropna(subset=["eval_return"])
    assert row["eval_returns"] == dict(zip(evals["env_step"].astype(int), evals["eval_return"], strict=True))


def test_speed_benchmark_knows_every_dreamer_preset():
    """benchmarks/dreamer.py needs each preset's observation shape; a preset without one stopped the GPU
    check with a KeyError (minatar_dense, 2026-12-04)."""
    from dreamer import OBS

    from wmtransfer.dreamer.config import PRESETS

    assert set(OBS) == set(PRESETS)


def test_gpu_sharing_reports_a_run_stopped_before_its_first_log_line(tmp_path):
    """A run killed during its prefill has a metrics.csv with the header alone: reported as reaching 0 steps
    (it stopped the whole summary with a NaN error in a dry run of benchmarks/gpu_check.sh)."""
    import gpu_sharing

    from wmtransfer.train.metrics import COLUMNS

    partial = tmp_path / "minatar-freeway" / "dreamer-x" / "seed0" / "partial"
    partial.mkdir(parents=True)
    (partial / "metrics.csv").write_text(",".join(COLUMNS) + "\n")
    (partial / "config.json").write_text(json.dumps({"agent": {"prefill": 5000, "train_every": 12}}))
    row = gpu_sharing.summarise(partial.parent)
    assert (row["env_steps"], row["updates"], row["finished"]) == (0, 0, False)
    assert row["env_steps_per_s_after_prefill"] is None and row["eval_returns"] == {}
