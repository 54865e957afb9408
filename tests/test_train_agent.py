"""The online DreamerV2 loop on a real MinAtar game with tiny networks: outputs, schedule, determinism,
conditions (what is trained, what stays bit-identical), and failure modes."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from dreamer_tiny import TINY_DREAMER, one_thread, tiny_agent, tiny_dreamer

from wmtransfer import cli
from wmtransfer.dreamer.agent import Dreamer
from wmtransfer.dreamer.config import DreamerConfig
from wmtransfer.train.agent import AgentConfig, NonFiniteLossError, resolve, train_agent
from wmtransfer.train.metrics import COLUMNS

GAME = ["minatar-breakout"]
_one_thread = pytest.fixture(autouse=True, scope="module")(one_thread)


@pytest.fixture(scope="module")
def scratch_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("scratch")
    summary = train_agent(GAME, 0, out, tiny_agent(), tiny_dreamer())
    return out, summary


def test_outputs_and_schedule(scratch_run):
    out, summary = scratch_run
    for name in ("metrics.csv", "config.json", "summary.json", "agent.pt", "ckpt/checkpoint.pt"):
        assert (out / name).exists(), name
    m = pd.read_csv(out / "metrics.csv")
    assert tuple(m.columns) == COLUMNS
    # 120 env steps, the first 60 random: one update every 10 env steps after prefill.
    assert summary["env_steps"] == 120 and summary["updates"] == 6
    assert m["env_step"].is_monotonic_increasing and m["update"].is_monotonic_increasing
    assert (m.loc[m["env_step"] <= 60, "update"] == 0).all()
    eval_rows = m.dropna(subset=["eval_return"])
    assert list(eval_rows["env_step"]) == [0, 60, 120]  # every 60 steps; the last is the final evaluation
    loss_rows = m.dropna(subset=["wm_loss"])
    assert list(loss_rows["env_step"]) == [90, 120]  # log_every 30; nothing to log before training
    for col in ("wm_image", "wm_reward", "wm_discount", "wm_kl", "actor_loss", "critic_loss",
                "actor_entropy"):
        assert np.isfinite(loss_rows[col]).all(), col
    episodes = m.dropna(subset=["episode_return"])
    assert len(episodes) == summary["episodes"] > 0 and (episodes["game"] == GAME[0]).all()
    config = json.loads((out / "config.json").read_text())
    assert config["condition"] == "scratch" and config["agent"]["prefill"] == 60
    agent = Dreamer.load(out / "agent.pt")
    assert agent.n_actions == 6 and agent.updates == 6
    meta = torch.load(out / "agent.pt", weights_only=True)["meta"]
    assert meta["games"] == GAME and meta["condition"] == "scratch"


def test_same_seed_same_curve(scratch_run, tmp_path):
    out, _ = scratch_run
    train_agent(GAME, 0, tmp_path, tiny_agent(), tiny_dreamer())
    a = pd.read_csv(out / "metrics.csv").drop(columns="wall_time")
    b = pd.read_csv(tmp_path / "metrics.csv").drop(columns="wall_time")
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    wa = torch.load(out / "agent.pt", weights_only=True)["model"]
    wb = torch.load(tmp_path / "agent.pt", weights_only=True)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def _max_change(before: dict, after: dict, prefix: str) -> float:
    keys = [k for k in before if k.startswith(prefix) and before[k].is_floating_point()]
    assert keys, prefix
    return max(float((before[k] - after[k]).abs().max()) for k in keys)


@pytest.mark.slow
@pytest.mark.parametrize("condition", ["finetune", "frozen_rssm", "frozen_wm", "finetune_agent"])
def test_condition_trains_what_it_should(scratch_run, tmp_path, condition):
    """Fixed parts are bit-identical to ``--init``; loaded parts moved at most a few Adam steps
    (6 updates x lr) from it; fresh parts are far from it (a new random initialisation)."""
    init = scratch_run[0] / "agent.pt"
    cfg, dcfg = tiny_agent(condition=condition), tiny_dreamer()
    train_agent(GAME, 1, tmp_path, cfg, dcfg, init=init)
    before = torch.load(init, weights_only=True)["model"]
    after = torch.load(tmp_path / "agent.pt", weights_only=True)["model"]
    change = {p: _max_change(before, after, p) for p in
              ("world_model.rssm.", "world_model.encoder.", "world_model.", "behavior.actor.")}
    few_steps = {"world_model": 6 * dcfg.model_lr * 3, "actor": 6 * dcfg.actor_lr * 3}
    if condition == "frozen_wm":
        assert change["world_model."] == 0.0  # the whole world model is bit-identical to the pre-trained one
    elif condition == "frozen_rssm":
        assert change["world_model.rssm."] == 0.0  # RSSM fixed...
        assert 0.0 < change["world_model.encoder."] <= few_steps["world_model"]  # encoder loaded, trained
    else:
        assert 0.0 < change["world_model.rssm."] <= few_steps["world_model"]  # loaded, then trained
        assert 0.0 < change["world_model.encoder."] <= few_steps["world_model"]
    if condition == "finetune_agent":
        assert 0.0 < change["behavior.actor."] <= few_steps["actor"]  # the multi-task agent's actor, trained
    else:
        assert change["behavior.actor."] > 10 * few_steps["actor"]  # a fresh actor-critic
    assert torch.load(tmp_path / "agent.pt", weights_only=True)["meta"]["condition"] == condition


def test_condition_needs_the_right_init(scratch_run, tmp_path):
    init = str(scratch_run[0] / "agent.pt")
    with pytest.raises(ValueError, match="needs --init"):
        train_agent(GAME, 0, tmp_path / "a", tiny_agent(condition="finetune"), tiny_dreamer())
    with pytest.raises(ValueError, match="do not pass --init"):
        train_agent(GAME, 0, tmp_path / "b", tiny_agent(), tiny_dreamer(), init=init)
    rc = cli.main(["train-agent", "--game", GAME[0], "--condition", "frozen_wm", "--out", str(tmp_path / "c"),
                   "--config", json.dumps({"env_steps": 10})])
    assert rc == 2


def test_rerun_of_a_finished_run_and_extension(scratch_run, tmp_path):
    shutil.copytree(scratch_run[0], tmp_path, dirs_exist_ok=True)
    before = pd.read_csv(tmp_path / "metrics.csv")
    summary = train_agent(GAME, 0, tmp_path, tiny_agent(), tiny_dreamer())  # nothing left to do
    pd.testing.assert_frame_equal(before, pd.read_csv(tmp_path / "metrics.csv"))
    assert summary["updates"] == 6 and summary["final_eval_return"] == scratch_run[1]["final_eval_return"]
    summary = train_agent(GAME, 0, tmp_path, tiny_agent(env_steps=150), tiny_dreamer())  # a larger budget
    m = pd.read_csv(tmp_path / "metrics.csv")
    assert summary["env_steps"] == 150 and summary["updates"] == 9
    assert list(m.dropna(subset=["eval_return"])["env_step"]) == [0, 60, 120, 150]
    assert list(m.dropna(subset=["wm_loss"])["env_step"]) == [90, 120, 150]
    assert m["env_step"].is_monotonic_increasing and m["wall_time"].is_monotonic_increasing


def test_resume_refuses_a_different_config(scratch_run, tmp_path):
    with pytest.raises(ValueError, match="different configuration"):
        train_agent(GAME, 0, scratch_run[0], tiny_agent(batch=5), tiny_dreamer())


def test_non_finite_loss_stops_with_step_and_term(tmp_path):
    # A learning rate of 1e30 blows the world model's weights up in the first update; the next loss
    # computed on them (the behaviour loss of the same update) is not finite.
    term = r"non-finite .*(wm|actor|critic)_\w+ = .*update 1, env step 61"
    with pytest.raises(NonFiniteLossError, match=term):
        train_agent(GAME, 0, tmp_path, tiny_agent(), tiny_dreamer(model_lr=1e30))
    assert not (tmp_path / "agent.pt").exists()


def test_vectorised_envs_and_multi_game(tmp_path):
    cfg = tiny_agent(num_envs=3, env_steps=150, prefill=60, balance_games=True)
    summary = train_agent(["minatar-breakout", "minatar-seaquest"], 0, tmp_path, cfg, tiny_dreamer())
    assert summary["env_steps"] == 150 and summary["updates"] == 9
    m = pd.read_csv(tmp_path / "metrics.csv")
    assert set(m["game"].dropna()) == {"minatar-breakout", "minatar-seaquest"}
    assert (m["env_step"] % 3 == 0).all()  # three games step in lockstep


class _RunsCode:
    """Unpickling this would call print: what a malicious checkpoint does."""

    def __reduce__(self):
        return (print, ("this ran",))


def test_checkpoint_that_runs_code_is_refused_naming_file_and_object(tmp_path):
    import subprocess
    import sys

    evil = tmp_path / "world_model.pt"
    torch.save({"format": "wmtransfer.dreamer/1", "model": {}, "payload": _RunsCode()}, evil)
    proc = subprocess.run([sys.executable, "-m", "wmtransfer.cli", "train-agent", "--game",
                           "minatar-breakout", "--condition", "finetune", "--init", str(evil),
                           "--out", str(tmp_path / "run"), "--config", '{"env_steps": 10}'],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert f"{evil}: refused" in proc.stderr and "the object 'print'" in proc.stderr, proc.stderr
    assert "weights_only" not in proc.stderr and "this ran" not in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


def test_atari_copies_step_on_ale_vector_env_like_the_per_game_collector(tmp_path):
    """Several copies of one Atari game step on ale-py's C++ vector env with the episodes the per-game
    collector makes (seeds from the loop's generator, time limits, first/last steps), and the online loop
    runs on it."""
    from wmtransfer.data.replay import Replay
    from wmtransfer.games.atari import AtariGame, make_native_vector
    from wmtransfer.train.agent import _AtariVectorCollector, _Collector, make_collector

    # the same game: rewards and the end step identical, frames all but identical (no sticky, no no-ops)
    game = AtariGame("breakout", seed=0, sticky_action_prob=0.0, noop_max=0)
    vec = make_native_vector("breakout", 1, 0, sticky_action_prob=0.0, noop_max=0, autoreset_mode="NextStep")
    a, _ = game.reset(seed=0)
    b, _ = vec.reset(seed=np.array([0]))
    rng, differ, steps = np.random.default_rng(0), [np.mean(a != b[0])], 0
    while True:
        act = int(rng.integers(18))
        a, ra, ta, _, _ = game.step(act)
        b, rb, tb, _, _ = vec.step(np.array([act]))
        differ.append(np.mean(a != b[0]))
        steps += 1
        assert ra == float(rb[0]) and ta == bool(tb[0])
        if ta:
            break
    assert steps > 50 and np.mean(differ) < 1e-3

    def collect(kind):
        replay = Replay(seed=0)
        collector = kind("atari-breakout" if kind is _AtariVectorCollector else ["atari-breakout"], 3, replay,
                         np.random.default_rng(1), 18, 30, {"sticky_action_prob": 0.0})
        acts = np.random.default_rng(2)
        ended = [ep for _ in range(100) for ep in collector.step(acts.integers(18, size=3))]
        collector.close()
        return replay, ended

    (native, ended_n), (python, ended_p) = collect(_AtariVectorCollector), collect(_Collector)
    assert len(ended_n) == len(ended_p) == 9 and {e["episode_length"] for e in ended_n} == {30}
    assert native.num_episodes == python.num_episodes == 9 and native.num_steps == python.num_steps == 9 * 31
    again, _ = collect(_AtariVectorCollector)
    batch_a, batch_b = native.sample(4, 20), again.sample(4, 20)
    assert all(np.array_equal(batch_a[k], batch_b[k]) for k in batch_a)  # seeded by the loop's generator

    def made(n):
        return type(make_collector(["atari-breakout"], n, Replay(), np.random.default_rng(0), 18, 50))

    assert made(2) is _AtariVectorCollector and made(1) is _Collector
    atari = DreamerConfig.preset("atari", **{**TINY_DREAMER, "cnn_depth": 2})
    summary = train_agent(["atari-breakout"], 0, tmp_path, tiny_agent(num_envs=2, time_limit=40), atari)
    assert summary["env_steps"] == 120 and summary["episodes"] >= 2


def test_reference_preset_trains_at_the_references_intensity():
    """rajghugare_minatar runs RajGhugare19's schedule: 5 updates of 50 x 50 every 50 env steps (250
    replayed steps per env step), 4000 random steps first, epsilon 0.05 once training starts."""
    dcfg = DreamerConfig.preset("rajghugare_minatar")
    loop = resolve(AgentConfig(env_steps=100_000), dcfg)
    assert loop.batch * loop.length * loop.train_steps / loop.train_every == 250
    assert loop.prefill == 4000
    # The reference's epsilon max(0.05, 0.4 - step / 7000) is at its floor by the end of the prefill.
    assert max(0.05, 0.4 - loop.prefill / 7000) == dcfg.expl_noise


def test_jax_reference_preset_has_that_codes_shapes_and_schedule():
    """kenjyoung_minatar: three valid 3x3 convs to a 4x4x64 embedding, a decoder from a 4x4 map, heads on
    [z_t, h_{t+1}], one 50 x 50 update every 10 env steps after 5000 random ones, no epsilon."""
    from wmtransfer.dreamer.agent import Dreamer

    dcfg = DreamerConfig.preset("kenjyoung_minatar")
    wm = Dreamer(dcfg, (6, 10, 10), 6).world_model
    assert wm.encoder.embed_dim == 4 * 4 * 64
    assert (wm.decoder.start, wm.decoder.in_channels) == (4, 64)
    assert dcfg.head_target == "transition" and dcfg.stoch * dcfg.classes == 32 * 32
    loop = resolve(AgentConfig(env_steps=100_000), dcfg)
    assert loop.batch * loop.length * loop.train_steps / loop.train_every == 250
    assert (loop.prefill, dcfg.expl_noise) == (5000, 0.0)
