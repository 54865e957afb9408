"""Dataset collection: determinism, the switching schedule, policy ids, and streamed episode files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wmtransfer.config import from_dict
from wmtransfer.data.dataset import GameDataset
from wmtransfer.data.episodes import read_manifest
from wmtransfer.dqn.checkpoint import load_policy_network
from wmtransfer.dqn.config import DQNConfig
from wmtransfer.train.collect import DatasetConfig, collect_dataset
from wmtransfer.train.dqn import train_dqn

GAME = "minatar-breakout"
CFG = {"random_steps": 150, "policy_steps": 600, "switch_every": 100, "epsilon": 0.0,
       "max_episode_steps": 200, "seed": 5}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, one_torch_thread):
    """Three real checkpoints of a short DQN run on Breakout."""
    out = tmp_path_factory.mktemp("dqn")
    cfg = from_dict(DQNConfig, {"total_steps": 600, "checkpoint_steps": [200, 400, 600],
                                "mlp_hidden": [32, 32], "replay_capacity": 1000, "learning_starts": 100,
                                "eps_decay_steps": 300,
                                "train_every": 2, "optimizer": "adam", "lr": 0.001, "save_every": 0})
    train_dqn(GAME, 0, out, cfg)
    return [out / "checkpoints" / f"step{s}.pt" for s in (600, 200, 400)]  # any order


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, checkpoints):
    out = tmp_path_factory.mktemp("ds")
    summary = collect_dataset(GAME, out, from_dict(DatasetConfig, CFG), checkpoints)
    return out, summary


def step_table(root):
    """Per env step, over the whole dataset in collection order: policy index, obs before, action."""
    policy, obs_before, action = [], [], []
    for ep in GameDataset(root).episodes():
        policy.append(ep["policy"][1:])
        obs_before.append(ep["obs"][:-1])
        action.append(ep["action"][1:])
    return np.concatenate(policy), np.concatenate(obs_before), np.concatenate(action)


def test_collection_is_deterministic(dataset, checkpoints, tmp_path):
    out, _ = dataset
    collect_dataset(GAME, tmp_path, from_dict(DatasetConfig, CFG), list(reversed(checkpoints)))
    assert read_manifest(out / "manifest.csv") == read_manifest(tmp_path / "manifest.csv")


def test_budget_policies_and_manifest(dataset):
    out, summary = dataset
    assert summary["env_steps"] == 750
    assert summary["policy_names"] == ["random", "dqn@200", "dqn@400", "dqn@600"]
    rows = read_manifest(out / "manifest.csv")
    assert sum(int(r["length"]) for r in rows) == 750
    assert len(list((out / "episodes").glob("*.npz"))) == len(rows) == summary["episodes"]
    for r, ep in zip(rows, GameDataset(out).episodes(), strict=True):
        assert float(r["return"]) == pytest.approx(float(ep["reward"].sum()))
        names = [str(n) for n in ep["policy_names"]]
        assert r["policies"].split(";") == list(dict.fromkeys(names[i] for i in ep["policy"][1:]))
        assert len(ep["obs"]) - 1 <= CFG["max_episode_steps"]


def test_switching_schedule(dataset):
    out, summary = dataset
    policy, _, _ = step_table(out)
    k, n_random = CFG["switch_every"], CFG["random_steps"]
    assert (policy[:n_random] == 0).all()
    blocks = policy[n_random:].reshape(-1, k)
    assert (blocks == blocks[:, :1]).all(), "a checkpoint acted for less than switch_every steps"
    firsts = blocks[:, 0]
    assert (firsts >= 1).all() and (np.diff(firsts) != 0).all(), "every K steps a *different* checkpoint"
    assert len(set(firsts.tolist())) >= 2
    counts = summary["steps_by_policy"]
    assert counts["random"] == n_random and sum(counts.values()) == 750


def test_policy_ids_match_the_acting_checkpoint(dataset, checkpoints):
    """With epsilon 0 every action of a step labelled dqn@N is that checkpoint's greedy action."""
    out, summary = dataset
    policy, obs_before, action = step_table(out)
    nets = {f"dqn@{load_policy_network(p)[1]['env_step']}": load_policy_network(p)[0] for p in checkpoints}
    names = summary["policy_names"]
    for idx in range(1, len(names)):
        mask = policy == idx
        if not mask.any():
            continue
        with torch.no_grad():
            greedy = nets[names[idx]](torch.from_numpy(obs_before[mask])).argmax(1).numpy()
        np.testing.assert_array_equal(greedy, action[mask])


def test_epsilon_noise_changes_some_actions(checkpoints, tmp_path):
    cfg = from_dict(DatasetConfig, {**CFG, "epsilon": 0.5, "random_steps": 0})
    summary = collect_dataset(GAME, tmp_path, cfg, checkpoints)
    policy, obs_before, action = step_table(tmp_path)
    net, _ = load_policy_network(checkpoints[0])  # dqn@600
    mask = policy == summary["policy_names"].index("dqn@600")
    with torch.no_grad():
        greedy = net(torch.from_numpy(obs_before[mask])).argmax(1).numpy()
    disagree = (greedy != action[mask]).mean()
    assert 0.2 < disagree < 0.6  # ~ epsilon * 5/6 of the actions are replaced


def test_policy_phase_needs_checkpoints(tmp_path):
    with pytest.raises(ValueError, match="no DQN checkpoint"):
        collect_dataset(GAME, tmp_path, from_dict(DatasetConfig, CFG), [])


def test_random_only_dataset(tmp_path):
    cfg = from_dict(DatasetConfig, {"random_steps": 300, "policy_steps": 0, "seed": 1})
    summary = collect_dataset(GAME, tmp_path, cfg)
    assert summary["policy_names"] == ["random"] and summary["env_steps"] == 300
    GameDataset(tmp_path).validate()
