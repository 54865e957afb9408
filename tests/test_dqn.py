"""DQN: the loss, networks, replay, checkpoints, the atari-agents loader and the real training loop."""

from __future__ import annotations

import gzip
import io
import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from wmtransfer.config import ConfigError, from_dict
from wmtransfer.dqn.atari_agents import load_atari_agents_policy
from wmtransfer.dqn.checkpoint import load_policy_network
from wmtransfer.dqn.config import DQNConfig
from wmtransfer.dqn.losses import dqn_loss, linear_epsilon, td_target
from wmtransfer.dqn.networks import MinAtarConvQNet, MLPQNet, NatureQNet
from wmtransfer.dqn.policies import load_dqn_policy
from wmtransfer.dqn.replay import TransitionReplay
from wmtransfer.games import GameSpec
from wmtransfer.train.dqn import train_dqn
from wmtransfer.train.random_baseline import random_returns


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny networks: more threads only add contention (a 600-step run goes from ~2 s to ~50 s on a busy
    2-core machine with 2 threads)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TINY = {"total_steps": 600, "checkpoint_steps": [300, 600], "mlp_hidden": [32, 32], "replay_capacity": 1000,
        "learning_starts": 100, "eps_decay_steps": 300, "target_update_every": 100, "train_every": 2,
        "optimizer": "adam", "lr": 0.001, "optim_eps": 1e-4, "log_every": 100, "save_every": 0}


def test_td_target_and_huber_loss_by_hand():
    q = torch.tensor([[1.0, 2.0], [0.5, -1.0]], requires_grad=True)
    next_q = torch.tensor([[3.0, 0.0], [10.0, 4.0]])
    action, reward, terminal = torch.tensor([1, 0]), torch.tensor([1.0, 2.0]), torch.tensor([0.0, 1.0])
    y = td_target(reward, terminal, next_q, gamma=0.5)
    assert torch.allclose(y, torch.tensor([1.0 + 0.5 * 3.0, 2.0]))  # terminal: no bootstrap
    loss = dqn_loss(q, action, reward, terminal, next_q, gamma=0.5)
    # errors: 2.0 - 2.5 = -0.5 (quadratic), 0.5 - 2.0 = -1.5 (linear): (0.125 + 1.0) / 2
    assert loss.item() == pytest.approx((0.5 * 0.25 + (1.5 - 0.5)) / 2)
    loss.backward()
    assert q.grad[0, 0] == 0 and q.grad[1, 1] == 0  # only the taken actions get gradient


def test_linear_epsilon():
    assert linear_epsilon(0, 1.0, 0.1, 100) == 1.0
    assert linear_epsilon(50, 1.0, 0.1, 100) == pytest.approx(0.55)
    assert linear_epsilon(10_000, 1.0, 0.1, 100) == pytest.approx(0.1)


@pytest.mark.parametrize("net, shape", [
    (MLPQNet((10, 10, 10), 6), (10, 10, 10)),
    (MinAtarConvQNet((10, 10, 10), 6), (10, 10, 10)),
    (NatureQNet((4, 64, 64), 6), (4, 64, 64)),
    (NatureQNet((4, 84, 84), 6), (4, 84, 84)),
    (NatureQNet((4, 84, 84), 6, atoms=51), (4, 84, 84)),
])
def test_networks_map_uint8_batches_to_q_values(net, shape):
    x = torch.randint(0, 2, (3, *shape), dtype=torch.uint8)
    q = net(x)
    assert q.shape == (3, 6) and torch.isfinite(q).all()


def test_minatar_conv_net_is_the_papers():
    net = MinAtarConvQNet((10, 10, 10), 6)
    conv, dense = net.body[0], net.body[3]
    assert (conv.out_channels, conv.kernel_size, conv.stride) == (16, (3, 3), (1, 1))
    assert dense.in_features == 16 * 8 * 8 and dense.out_features == 128


def test_c51_head_returns_expectation_within_support():
    net = NatureQNet((4, 84, 84), 3, atoms=51)
    q = net(torch.randint(0, 256, (2, 4, 84, 84), dtype=torch.uint8))
    assert (q >= -10).all() and (q <= 10).all()


def test_replay_state_round_trip():
    rb = TransitionReplay(5, (2, 3, 3))
    rng = np.random.default_rng(0)
    for i in range(7):  # wraps around
        rb.add(np.full((2, 3, 3), i, np.uint8), i % 6, float(i), i == 6, np.full((2, 3, 3), i + 1, np.uint8))
    assert len(rb) == 5 and rb.pos == 2
    other = TransitionReplay(5, (2, 3, 3))
    other.load_state_dict(rb.state_dict())
    a, b = rb.sample(8, np.random.default_rng(1)), other.sample(8, np.random.default_rng(1))
    for k in a:
        assert torch.equal(a[k], b[k])
    batch = rb.sample(32, rng)
    assert torch.equal(batch["next_obs"][:, 0, 0, 0], batch["obs"][:, 0, 0, 0] + 1)
    assert torch.equal(batch["reward"], batch["obs"][:, 0, 0, 0].float())


def test_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(DQNConfig, {"total_step": 10})
    with pytest.raises(ConfigError, match="checkpoint_steps"):
        from_dict(DQNConfig, {"total_steps": 100, "checkpoint_steps": [50, 200]}).validate()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("dqn") / "run"
    summary = train_dqn("minatar-breakout", 3, out, from_dict(DQNConfig, TINY))
    return out, summary


def test_training_writes_outputs(tiny_run):
    out, summary = tiny_run
    assert summary["env_steps"] == 600 and summary["updates"] == (600 - 100) // 2 + 1
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step300.pt", "step600.pt"]
    assert (out / "ckpt" / "checkpoint.pt").exists()  # the final state; outputs are links into partial/
    assert (out / "checkpoints" / "step600.pt").samefile(out / "partial" / "checkpoints" / "step600.pt")
    m = pd.read_csv(out / "metrics.csv")
    assert {"env_step", "update", "wall_time", "episode_return", "loss", "epsilon"} <= set(m.columns)
    assert m.env_step.is_monotonic_increasing and m.loss.notna().any() and m.episode_return.notna().any()
    assert json.loads((out / "config.json").read_text())["dqn"]["total_steps"] == 600
    assert json.loads((out / "summary.json").read_text()) == summary


def test_training_is_deterministic(tiny_run, tmp_path):
    out, _ = tiny_run
    train_dqn("minatar-breakout", 3, tmp_path / "again", from_dict(DQNConfig, TINY))
    cols = ["env_step", "update", "episode_return", "episode_length", "loss", "epsilon"]
    pd.testing.assert_frame_equal(pd.read_csv(out / "metrics.csv")[cols],
                                  pd.read_csv(tmp_path / "again" / "metrics.csv")[cols])
    a = torch.load(out / "checkpoints" / "step600.pt", weights_only=True)["q_net"]
    b = torch.load(tmp_path / "again" / "checkpoints" / "step600.pt", weights_only=True)["q_net"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_interrupted_run_resumes(tmp_path):
    cfg = from_dict(DQNConfig, {**TINY, "save_every": 200})
    assert train_dqn("minatar-breakout", 1, tmp_path, cfg, step_budget=400) is None
    assert (tmp_path / "ckpt" / "checkpoint.pt").exists() and not (tmp_path / "summary.json").exists()
    assert not (tmp_path / "metrics.csv").exists() and not (tmp_path / "checkpoints").exists()
    assert (tmp_path / "partial" / "checkpoints" / "step300.pt").exists()
    rows_before = len(pd.read_csv(tmp_path / "partial" / "metrics.csv"))
    summary = train_dqn("minatar-breakout", 1, tmp_path, cfg)
    assert summary["env_steps"] == 600 and summary["updates"] == (600 - 100) // 2 + 1
    m = pd.read_csv(tmp_path / "metrics.csv")
    assert len(m) > rows_before and m.env_step.is_monotonic_increasing and m.wall_time.is_monotonic_increasing
    assert all((tmp_path / "checkpoints" / f"step{s}.pt").exists() for s in (300, 600))


def test_checkpoint_round_trip_and_mismatch(tiny_run):
    out, _ = tiny_run
    path = out / "checkpoints" / "step600.pt"
    policy = load_dqn_policy(path, GameSpec("minatar-breakout", "minatar", (10, 10, 10), 6))
    assert policy.name == "dqn@600"
    raw = torch.load(path, weights_only=True)
    net = MLPQNet((10, 10, 10), 6, (32, 32))
    net.load_state_dict(raw["q_net"])
    obs = np.random.default_rng(0).integers(0, 2, (10, 10, 10), dtype=np.uint8)
    policy.reset(obs)
    assert policy.act(np.random.default_rng(0)) == int(net(torch.from_numpy(obs)[None]).argmax())
    with pytest.raises(ValueError, match=r"observations \(10, 10, 10\).*atari-pong has \(1, 64, 64\)"):
        load_policy_network(path, GameSpec("atari-pong", "atari", (1, 64, 64), 18))
    with pytest.raises(ValueError, match="18"):
        load_policy_network(path, GameSpec("other", "minatar", (10, 10, 10), 18))


def _atari_net_forward(sd: dict, x: torch.Tensor, n_actions: int, c51: bool) -> torch.Tensor:
    """The atari-agents AtariNet forward pass written out from its state dict."""
    p = "_AtariNet__"
    h = x.float() / 255
    for i, stride in ((0, 4), (2, 2), (4, 1)):
        h = F.relu(F.conv2d(h, sd[f"{p}features.{i}.weight"], sd[f"{p}features.{i}.bias"], stride=stride))
    h = F.relu(F.linear(h.flatten(1), sd[f"{p}head.0.weight"], sd[f"{p}head.0.bias"]))
    out = F.linear(h, sd[f"{p}head.2.weight"], sd[f"{p}head.2.bias"])
    if not c51:
        return out
    probs = torch.softmax(out.view(-1, n_actions, 51), dim=2)
    return (probs * sd[f"{p}support"]).sum(2)


def _write_atari_agents_checkpoint(path, n_actions: int, c51: bool, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    out = n_actions * (51 if c51 else 1)
    shapes = {"features.0.weight": (32, 4, 8, 8), "features.0.bias": (32,),
              "features.2.weight": (64, 32, 4, 4), "features.2.bias": (64,),
              "features.4.weight": (64, 64, 3, 3), "features.4.bias": (64,),
              "head.0.weight": (512, 3136), "head.0.bias": (512,), "head.2.weight": (out, 512),
              "head.2.bias": (out,)}
    sd = {f"_AtariNet__{k}": torch.randn(s, generator=g) * 0.05 for k, s in shapes.items()}
    if c51:
        sd["_AtariNet__support"] = torch.linspace(-10, 10, 51)
    buf = io.BytesIO()
    torch.save({"estimator_state": sd, "optimizer_state": {}}, buf)
    with gzip.open(path, "wb") as f:
        f.write(buf.getvalue())
    return sd


@pytest.mark.parametrize("c51", [False, True])
def test_atari_agents_checkpoint_loader(tmp_path, c51):
    n_actions = 4
    path = tmp_path / "model_50000000.gz"
    sd = _write_atari_agents_checkpoint(path, n_actions, c51, seed=int(c51))
    action_map = [0, 1, 3, 4]  # e.g. Breakout's minimal set NOOP, FIRE, RIGHT, LEFT in the full set
    policy = load_atari_agents_policy(path, action_map=action_map)
    assert policy.name == ("c51" if c51 else "dqn") + "@50000000"
    x = torch.randint(0, 256, (5, 4, 84, 84), dtype=torch.uint8)
    assert torch.allclose(policy.q_net(x), _atari_net_forward(sd, x, n_actions, c51), atol=1e-5)
    frames = np.random.default_rng(0).integers(0, 256, (4, 1, 64, 64), dtype=np.uint8)
    policy.reset(frames[0])
    for f in frames[1:]:
        policy.observe(f)
    stacked = torch.from_numpy(np.ascontiguousarray(policy.stack.stacked()))[None]
    assert stacked.shape == (1, 4, 84, 84)
    expected = action_map[int(_atari_net_forward(sd, stacked, n_actions, c51).argmax())]
    assert policy.act(np.random.default_rng(0)) == expected


@pytest.mark.parametrize("game,expected", [
    ("atari-breakout", [0, 1, 3, 4]),  # NOOP FIRE RIGHT LEFT
    ("atari-pong", [0, 1, 3, 4, 11, 12]),  # ... RIGHTFIRE LEFTFIRE
    ("atari-seaquest", None),  # the full set: identity
])
def test_atari_agents_heads_of_4_6_and_18_actions_map_to_the_full_set(tmp_path, game, expected):
    """Real ale-py minimal action sets (ale-py 0.12 returns Action enums, which int() refuses)."""
    n = 18 if expected is None else len(expected)
    path = tmp_path / "model_10000000.gz"
    _write_atari_agents_checkpoint(path, n, c51=False, seed=0)
    policy = load_atari_agents_policy(path, game_id=game)
    assert policy.action_map == expected
    frames = np.random.default_rng(1).integers(0, 256, (4, 1, 64, 64), dtype=np.uint8)
    policy.reset(frames[0])
    action = policy.act(np.random.default_rng(0))
    assert 0 <= action < 18 and (expected is None or action in expected)


def test_atari_agents_loader_names_a_bad_file(tmp_path):
    bad = tmp_path / "model_1.gz"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="model_1.gz"):
        load_atari_agents_policy(bad, action_map=[0])


@pytest.mark.slow
def test_dqn_learns_breakout(tmp_path):
    """A real short run: the return after 8k steps (epsilon 0.05) clearly beats the random policy's."""
    cfg = from_dict(DQNConfig, {
        "total_steps": 8000, "checkpoint_steps": [8000], "learning_starts": 500, "eps_decay_steps": 3000,
        "eps_end": 0.05, "target_update_every": 250, "train_every": 2, "mlp_hidden": [128, 128],
        "optimizer": "adam", "lr": 0.001, "optim_eps": 1e-8, "save_every": 0})
    summary = train_dqn("minatar-breakout", 0, tmp_path, cfg)
    random_mean = random_returns("minatar-breakout", 0, episodes=100).episode_return.mean()
    assert random_mean < 1.0
    assert summary["final_return"] > max(1.5, 2 * random_mean), (summary, random_mean)


def test_atari_nature_dqn_with_frame_stack(tmp_path):
    """Images: the Nature DQN on 4 stacked 64x64 frames trains, and its checkpoint acts in the game."""
    cfg = from_dict(DQNConfig, {"total_steps": 150, "checkpoint_steps": [150], "replay_capacity": 300,
                                "learning_starts": 100, "train_every": 5, "save_every": 0})
    summary = train_dqn("atari-pong", 0, tmp_path, cfg)
    assert summary["updates"] == 11
    net, meta = load_policy_network(tmp_path / "checkpoints" / "step150.pt")
    assert isinstance(net, NatureQNet) and meta["frame_stack"] == 4 and meta["obs_shape"] == [1, 64, 64]
    policy = load_dqn_policy(tmp_path / "checkpoints" / "step150.pt")
    frame = np.zeros((1, 64, 64), np.uint8)
    policy.reset(frame)
    assert policy.stack.stacked().shape == (4, 64, 64) and 0 <= policy.act(np.random.default_rng(0)) < 18
