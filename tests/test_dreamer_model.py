"""DreamerV2 model: shapes, training updates, save/load, determinism, and learning on real MinAtar data."""

import numpy as np
import pytest
import torch
from dreamer_tiny import SMALL_DREAMER as SMALL

from wmtransfer import games
from wmtransfer.config import ConfigError
from wmtransfer.data.replay import Replay
from wmtransfer.dreamer import CheckpointMismatch, Dreamer, DreamerConfig
from wmtransfer.dreamer.networks import ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder
from wmtransfer.dreamer.rssm import Latent

METRICS = {"wm_loss", "wm_image", "wm_reward", "wm_discount", "wm_kl", "wm_prior_entropy", "wm_post_entropy",
           "actor_loss", "critic_loss", "actor_entropy", "value_mean"}
PROBE = {"wm_probe_info", "wm_probe_swap", "wm_probe_gap"}  # at the first update (probe_every divides 0)


def random_episodes(game: str, steps: int, seed: int = 0) -> list[dict]:
    """Real episodes of a uniform random policy, in the project's episode format."""
    env = games.make(game, seed=seed)
    n = env.action_space.n
    rng = np.random.default_rng(seed)
    episodes = []
    obs, _ = env.reset(seed=seed)
    ep = {"obs": [obs], "action": [0], "reward": [0.0], "is_terminal": [False]}
    for _ in range(steps):
        a = int(rng.integers(n))
        obs, r, term, trunc, _ = env.step(a)
        ep["obs"].append(obs), ep["action"].append(a), ep["reward"].append(r), ep["is_terminal"].append(term)
        if term or trunc:
            length = len(ep["obs"])
            episodes.append({
                "obs": np.stack(ep["obs"]).astype(np.uint8), "action": np.array(ep["action"], np.int16),
                "reward": np.array(ep["reward"], np.float32), "is_terminal": np.array(ep["is_terminal"]),
                "is_first": np.arange(length) == 0, "is_last": np.arange(length) == length - 1, "game": game,
            })
            obs, _ = env.reset()
            ep = {"obs": [obs], "action": [0], "reward": [0.0], "is_terminal": [False]}
    return episodes


def random_replay(game: str, steps: int, seed: int = 0) -> Replay:
    """A replay of :func:`random_episodes` (6 actions)."""
    replay = Replay(seed=seed)
    for ep in random_episodes(game, steps):
        replay.add_episode(ep, n_actions=6)
    return replay


@pytest.fixture(scope="module")
def breakout_replay():
    return random_replay("minatar-breakout", 1500)


def test_minatar_encoder_decoder_shapes():
    cfg = DreamerConfig.preset("minatar")
    enc = ConvEncoder((10, 10, 10), cfg.cnn_depth, cfg.encoder_kernels, cfg.encoder_stride)
    x = torch.zeros(2, 3, 10, 10, 10)
    h = enc.convs(x.flatten(0, 1))
    assert h.shape == (6, 64, 2, 2)  # seed 001 §2.3: four 3x3 stride-1 convs to 2x2x64
    assert enc(x).shape == (2, 3, 256)
    dec = ConvDecoder(cfg.feat_size, (10, 10, 10), cfg.cnn_depth, cfg.decoder_kernels, cfg.decoder_stride)
    assert dec.start == 1  # transposed kernels 2, 3, 4, 4 grow 1x1 to 10x10
    assert dec(torch.zeros(2, 3, cfg.feat_size)).shape == (2, 3, 10, 10, 10)


def test_64x64_encoder_decoder_shapes():
    cfg = DreamerConfig.preset("atari")
    enc = ConvEncoder((1, 64, 64), cfg.cnn_depth, cfg.encoder_kernels, cfg.encoder_stride)
    assert enc.convs(torch.zeros(1, 1, 64, 64)).shape == (1, 384, 2, 2)  # official: 48..384 channels
    assert enc.embed_dim == 1536
    dec = ConvDecoder(cfg.feat_size, (1, 64, 64), cfg.cnn_depth, cfg.decoder_kernels, cfg.decoder_stride)
    assert dec(torch.zeros(2, cfg.feat_size)).shape == (2, 1, 64, 64)


def test_mlp_encoder_and_decoder_see_and_draw_every_cell_on_their_own():
    """encoder/decoder "mlp": the frame flattened through dense layers (the official vector encoder); every
    output cell has its own weights, so a cell's logit moves without its neighbours'."""
    cfg = DreamerConfig.preset("minatar", encoder="mlp", decoder="mlp")
    torch.manual_seed(0)
    wm = Dreamer(cfg, (10, 10, 10), 6).world_model
    assert isinstance(wm.encoder, MLPEncoder) and isinstance(wm.decoder, MLPDecoder)
    assert [m.out_features for m in wm.encoder.net if isinstance(m, torch.nn.Linear)] == [400] * 4
    assert wm.encoder.net[0].in_features == 1000 and wm.rssm.obs_out.in_features == cfg.deter + 400
    assert [m.out_features for m in wm.decoder.hidden if isinstance(m, torch.nn.Linear)] == [400] * 4
    x = torch.zeros(2, 3, 10, 10, 10)
    assert wm.encoder(x).shape == (2, 3, 400)
    feat = torch.zeros(2, 3, cfg.feat_size)
    assert wm.decoder(feat).shape == (2, 3, 10, 10, 10)
    # one cell's gradient reaches only its own output weights
    wm.decoder(feat)[0, 0, 4, 9, 3].backward()
    grad_rows = wm.decoder.last.weight.grad.abs().sum(1).nonzero().flatten().tolist()
    assert grad_rows == [4 * 100 + 9 * 10 + 3]
    with pytest.raises(ConfigError, match="dreamer.decoder"):
        DreamerConfig.preset("minatar", decoder="dense")
    with pytest.raises(ConfigError, match="mlp_layers"):
        DreamerConfig.preset("minatar", mlp_layers=0)


def test_minatar_dense_differs_from_minatar_only_in_its_networks_init_heads_and_intensity():
    """minatar_dense is the configuration measured on Space Invaders and Breakout (docs/dreamer.md): the
    minatar preset with dense networks, glorot initialisation, transition heads and one update every 12
    env steps; any other difference would make those measurements say nothing about it."""
    base, dense = DreamerConfig.preset("minatar").to_dict(), DreamerConfig.preset("minatar_dense").to_dict()
    changed = {k: dense[k] for k in base if base[k] != dense[k]}
    assert changed == {"name": "minatar_dense", "encoder": "mlp", "decoder": "mlp", "weight_init": "glorot",
                       "head_target": "transition", "train_every": 12}
    agent = Dreamer(DreamerConfig.preset("minatar_dense"), (10, 10, 10), 6)
    assert isinstance(agent.world_model.encoder, MLPEncoder)
    assert float(agent.world_model.reward_head.net[0].bias.abs().sum()) == 0.0


def test_glorot_init_is_the_official_kernels_and_zero_biases():
    """weight_init glorot: every dense and conv kernel uniform within sqrt(6 / (fan_in + fan_out)) with
    glorot's variance, every bias 0 (the decoder's output bias at decoder_out_bias), the slow critic a copy
    of the critic; "torch" keeps PyTorch's random biases."""
    torch.manual_seed(0)
    cfg = DreamerConfig.preset("minatar", weight_init="glorot", decoder_out_bias=-1.0)
    agent = Dreamer(cfg, (10, 10, 10), 6)
    layers = [m for m in agent.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d,
                                                             torch.nn.ConvTranspose2d))]
    assert len(layers) > 20
    for m in layers:
        fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(m.weight)
        bound = (6.0 / (fan_in + fan_out)) ** 0.5
        assert float(m.weight.abs().max()) <= bound
        if m.weight.numel() > 5000:
            assert float(m.weight.std()) == pytest.approx(bound / 3**0.5, rel=0.1)
        want = -1.0 if m is agent.world_model.decoder.last else 0.0
        assert torch.all(m.bias == want)
    critic, target = agent.behavior.critic, agent.behavior.target_critic
    for a, b in zip(critic.parameters(), target.parameters(), strict=True):
        assert torch.equal(a, b)
    default = Dreamer(DreamerConfig.preset("minatar"), (10, 10, 10), 6)
    assert float(default.world_model.reward_head.net[0].bias.abs().sum()) > 0


def test_mlp_world_model_trains_sets_its_offset_and_refuses_a_conv_checkpoint(tmp_path, breakout_replay):
    torch.manual_seed(0)
    small = {**SMALL, "encoder": "mlp", "decoder": "mlp", "mlp_layers": 2, "mlp_units": 32}
    agent = Dreamer(DreamerConfig.preset("minatar", **small), (10, 10, 10), 6)
    before = agent.world_model.decoder.last.weight.clone()
    metrics = agent.train_step(breakout_replay.sample(4, 8))
    assert all(np.isfinite(v) for v in metrics.values())
    assert not torch.equal(before, agent.world_model.decoder.last.weight)
    assert float(agent.world_model.decoder.out_offset_fitted) == 1.0
    assert float(agent.world_model.decoder.out_offset.abs().sum()) > 0  # the first batch's log-odds
    last = agent.world_model.decoder.last  # the output is the offset when the rest says nothing
    with torch.no_grad():
        w, b = last.weight.clone(), last.bias.clone()
        last.weight.zero_()
        last.bias.zero_()
        out = agent.world_model.decoder(torch.randn(3, agent.cfg.feat_size))
        last.weight.copy_(w)
        last.bias.copy_(b)
    assert torch.equal(out, agent.world_model.decoder.out_offset.expand(3, -1, -1, -1))
    path = tmp_path / "mlp.pt"
    agent.save(path)
    loaded = Dreamer.load(path, n_actions=6)
    for (k, a), (_, b) in zip(agent.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    conv = Dreamer(DreamerConfig.preset("minatar", **SMALL), (10, 10, 10), 6)
    with pytest.raises(CheckpointMismatch, match="encoder: source 'mlp' vs model 'conv'"):
        conv.load_world_model_from(path)


@pytest.mark.parametrize(
    "preset,obs_shape,n_actions", [("minatar", (10, 10, 10), 6), ("atari", (1, 64, 64), 18)]
)
def test_train_step_and_policy_shapes(preset, obs_shape, n_actions):
    torch.manual_seed(0)
    cfg = DreamerConfig.preset(preset, **{**SMALL, "cnn_depth": 4})
    agent = Dreamer(cfg, obs_shape, n_actions)
    rng = np.random.default_rng(0)
    batch = {
        "obs": rng.integers(0, 2, (4, 8, *obs_shape), dtype=np.uint8),
        "action": rng.integers(0, n_actions, (4, 8)), "reward": rng.normal(size=(4, 8)).astype(np.float32),
        "is_first": np.eye(4, 8, dtype=bool), "is_terminal": np.zeros((4, 8), bool),
    }
    metrics = agent.train_step(batch)
    assert set(metrics) == METRICS | PROBE
    assert set(agent.train_step(batch)) == METRICS  # no probe at update 1 (every 50)
    assert all(np.isfinite(v) for v in metrics.values())
    state = agent.init_state(3)
    actions, state = agent.policy(batch["obs"][:3, 0], state, np.ones(3, bool))
    assert actions.dtype == np.int64 and actions.shape == (3,)
    assert np.all((actions >= 0) & (actions < n_actions))
    assert state["deter"].shape == (3, cfg.deter) and state["stoch"].shape == (3, cfg.stoch_size)
    actions, _ = agent.policy(torch.as_tensor(batch["obs"][:3, 1]), state, np.zeros(3, bool), explore=False)
    assert actions.shape == (3,)


def test_gaussian_latent_and_dynamics_gradient_options(breakout_replay):
    for overrides in ({"latent": "gaussian"}, {"actor_grad": "both", "actor_grad_mix": 0.5},
                      {"actor_grad": "dynamics", "kl_balance": False, "free_nats": 1.0}):
        torch.manual_seed(0)
        agent = Dreamer(DreamerConfig.preset("minatar", **{**SMALL, **overrides}), (10, 10, 10), 6)
        metrics = agent.train_step(breakout_replay.sample(4, 8))
        assert all(np.isfinite(v) for v in metrics.values()), overrides


def test_behaviour_gradients_never_reach_the_world_model(breakout_replay):
    for grad in ("reinforce", "both"):
        torch.manual_seed(0)
        cfg = DreamerConfig.preset("minatar", **SMALL, actor_grad=grad, actor_grad_mix=0.5)
        agent = Dreamer(cfg, (10, 10, 10), 6)
        batch = breakout_replay.sample(4, 8)
        data = agent.world_model.preprocess(batch)
        with torch.no_grad():
            _, post, _ = agent.world_model.loss(data)
        before = {k: v.clone() for k, v in agent.world_model.state_dict().items()}
        actor_before = [p.clone() for p in agent.actor.parameters()]
        agent.world_model.zero_grad(set_to_none=True)
        agent.train_behavior(post, data["is_terminal"])
        for k, v in agent.world_model.state_dict().items():
            assert torch.equal(v, before[k]), k
        assert all(p.grad is None for p in agent.world_model.parameters())
        assert any(not torch.equal(a, b) for a, b in zip(actor_before, agent.actor.parameters(), strict=True))


def test_index_imagination_equals_dense_imagination(breakout_replay):
    """The look-up path for one-hot inputs computes the same trajectories as the plain one."""
    torch.manual_seed(0)
    agent = Dreamer(DreamerConfig.preset("minatar", **SMALL), (10, 10, 10), 6)
    agent.train_step(breakout_replay.sample(4, 8))
    data = agent.world_model.preprocess(breakout_replay.sample(4, 8))
    with torch.no_grad():
        _, post, _ = agent.world_model.loss(data)
    start = Latent(post.deter.flatten(0, 1), post.stoch.flatten(0, 1))
    runs = []
    for dense in (False, True):
        torch.manual_seed(5)
        runs.append(agent.behavior.imagine(agent.world_model, start, 6, dense=dense))
    fast, plain = runs
    torch.testing.assert_close(fast.deter, plain.deter)
    torch.testing.assert_close(fast.logits, plain.logits)
    assert torch.equal(fast.action, plain.action)
    assert torch.equal(fast.index, plain.stoch.unflatten(-1, (4, 4)).argmax(-1))
    for head in (agent.world_model.reward_head, agent.critic):
        torch.testing.assert_close(fast.apply(head, 0, 7, 4), plain.apply(head, 0, 7, 4))


def test_save_load_round_trip(tmp_path, breakout_replay):
    torch.manual_seed(0)
    agent = Dreamer(DreamerConfig.preset("minatar", **SMALL), (10, 10, 10), 6)
    agent.set_condition("frozen_rssm")
    for _ in range(2):
        agent.train_step(breakout_replay.sample(4, 8))
    path = tmp_path / "agent.pt"
    agent.save(path, games=["minatar-breakout"], env_steps=123)
    loaded = Dreamer.load(path, n_actions=6)
    assert loaded.condition == "frozen_rssm" and loaded.updates == 2 and loaded.wm_updates == 2
    assert torch.load(path, weights_only=True)["meta"] == {"games": ["minatar-breakout"], "env_steps": 123}
    for (k, a), (_, b) in zip(agent.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    obs = breakout_replay.sample(5, 1)["obs"][:, 0]
    torch.manual_seed(7)
    a1, _ = agent.policy(obs, agent.init_state(5), np.ones(5, bool))
    torch.manual_seed(7)
    a2, _ = loaded.policy(obs, loaded.init_state(5), np.ones(5, bool))
    np.testing.assert_array_equal(a1, a2)
    # the optimiser states came back too: one more identical update gives identical weights
    batch = breakout_replay.sample(4, 8)
    torch.manual_seed(3)
    m1 = agent.train_step(batch)
    torch.manual_seed(3)
    m2 = loaded.train_step(batch)
    assert m1 == m2
    for (k, a), (_, b) in zip(agent.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


def test_checkpoint_mismatch_names_both_values(tmp_path):
    agent = Dreamer(DreamerConfig.preset("minatar", **SMALL), (10, 10, 10), 6)
    path = tmp_path / "a.pt"
    agent.save(path)
    with pytest.raises(CheckpointMismatch, match="n_actions: checkpoint 6 vs model 18"):
        Dreamer.load(path, n_actions=18)
    other = Dreamer(DreamerConfig.preset("minatar", **SMALL), (10, 10, 10), 18)
    with pytest.raises(CheckpointMismatch, match="n_actions: source 6 vs model 18"):
        other.load_world_model_from(path)
    with pytest.raises(CheckpointMismatch, match="n_actions: checkpoint 6 vs model 18"):
        other.restore(agent.checkpoint())


def test_cpu_determinism():
    """Same seeds (torch and replay) give identical losses, update after update."""
    episodes = random_episodes("minatar-breakout", 300, seed=2)
    runs = []
    for _ in range(2):
        torch.manual_seed(11)
        agent = Dreamer(DreamerConfig.preset("minatar", **SMALL), (10, 10, 10), 6)
        replay = Replay(seed=3)
        for ep in episodes:
            replay.add_episode(ep, n_actions=6)
        runs.append([agent.train_step(replay.sample(4, 8)) for _ in range(3)])
    assert runs[0] == runs[1]


def test_non_finite_loss_raises_with_step_and_term(breakout_replay):
    agent = Dreamer(DreamerConfig.preset("minatar", **SMALL), (10, 10, 10), 6)
    agent.train_step(breakout_replay.sample(4, 8))
    with torch.no_grad():
        agent.world_model.reward_head.net[-1].bias.fill_(float("nan"))
    before = [p.clone() for p in agent.world_model.encoder.parameters()]
    with pytest.raises(FloatingPointError, match=r"non-finite loss term.*wm_reward = nan.* at update 1"):
        agent.train_step(breakout_replay.sample(4, 8))
    for a, b in zip(before, agent.world_model.encoder.parameters(), strict=True):
        assert torch.equal(a, b)  # stopped before any weight changed


def test_world_model_loss_falls_on_real_minatar_episodes(breakout_replay):
    torch.manual_seed(0)
    cfg = DreamerConfig.preset(
        "minatar", deter=64, hidden=64, stoch=8, classes=8, head_units=64, batch_size=8, seq_length=16,
        model_lr=1e-3,
    )
    agent = Dreamer(cfg, (10, 10, 10), 6)
    losses = [agent.train_world_model(breakout_replay.sample(8, 16)) for _ in range(40)]
    first = np.mean([m["wm_loss"] for m in losses[:5]])
    last = np.mean([m["wm_loss"] for m in losses[-5:]])
    # The decoder starts at the first batch's per-cell log-odds (decoder_offset: data), so the first image
    # loss is already the mean frame's (~16.7 nats here, ~700 with logits at 0); measured after 40
    # updates: image 16.7 -> 13.8, discount 0.63 -> 0.31, total 20.8 -> 16.3.
    assert last < 0.85 * first, (first, last)
    img_first = np.mean([m["wm_image"] for m in losses[:5]])
    img_last = np.mean([m["wm_image"] for m in losses[-5:]])
    assert img_last < 0.9 * img_first, (img_first, img_last)
    disc_first = np.mean([m["wm_discount"] for m in losses[:5]])
    disc_last = np.mean([m["wm_discount"] for m in losses[-5:]])
    assert disc_last < 0.7 * disc_first, (disc_first, disc_last)


def test_benchmark_script_runs_and_writes_json(tmp_path):
    """benchmarks/dreamer.py end to end on a shrunken preset (it measures the real update code). The test
    checks the mechanism, not the speed, so it allows load; the JSON then records the load it ran under."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "dreamer.py"
    out = tmp_path / "dreamer.json"
    overrides = json.dumps({**SMALL, "cnn_depth": 4})
    subprocess.run([sys.executable, str(script), "--presets", "minatar", "--repeats", "1", "--warmup", "0",
                    "--threads", "1", "--overrides", overrides, "--out", str(out), "--allow-load"],
                   check=True, capture_output=True, timeout=300)
    report = json.loads(out.read_text())
    (res,) = report["results"]
    assert res["preset"] == "minatar" and res["imag_starts"] == 4 * 8 and res["horizon"] == 4
    for key in ("wm_update_per_s", "behaviour_update_per_s", "imagination_steps_per_s", "peak_rss_gib",
                "wm_update_x_floor", "behaviour_update_x_floor", "imagine_x_floor", "gemm_peak_gmac_per_s"):
        assert res[key] > 0
    machine = report["machine"]
    assert len(machine["load_before"]) == 3 and len(machine["load_after"]) == 3
    assert machine["gemm_peak_mac_per_s"] > 0 and isinstance(machine["loaded"], bool)


def test_posterior_entropy_bonus_is_subtracted_and_raises_the_entropy(breakout_replay):
    """post_ent_scale: total = official loss - scale * H[q] (same weights, same sampling noise), and a
    gradient step on the bonus alone makes the posterior more uncertain."""
    torch.manual_seed(0)
    agent = Dreamer(DreamerConfig.preset("minatar", **SMALL), (10, 10, 10), 6)
    data = agent.world_model.preprocess(breakout_replay.sample(4, 8))
    totals, entropies = {}, {}
    for scale in (0.0, 0.5):
        agent.world_model.cfg = DreamerConfig.preset("minatar", **SMALL, post_ent_scale=scale)
        torch.manual_seed(1)
        total, _, metrics = agent.world_model.loss(data)
        totals[scale], entropies[scale] = total.item(), metrics["wm_post_entropy"].item()
    assert entropies[0.0] == pytest.approx(entropies[0.5])
    assert totals[0.5] == pytest.approx(totals[0.0] - 0.5 * entropies[0.0], rel=1e-5)

    wm = agent.world_model
    torch.manual_seed(1)
    embed = wm.encoder(data["image"])
    post, _ = wm.rssm.observe(embed, data["action"], data["is_first"])
    before = wm.rssm.entropy(wm.rssm.dist_params(post.stats)).mean()
    wm.zero_grad(set_to_none=True)
    (-before).backward()
    with torch.no_grad():
        for p in wm.parameters():
            if p.grad is not None:
                p -= 1e-3 * p.grad
        torch.manual_seed(1)
        post, _ = wm.rssm.observe(wm.encoder(data["image"]), data["action"], data["is_first"])
        after = wm.rssm.entropy(wm.rssm.dist_params(post.stats)).mean()
    assert after > before.detach()


def test_shifted_head_targets_predict_the_step_out_of_each_frame(breakout_replay):
    """head_target "next" (RajGhugare19's alignment): the heads at [z_t, h_t] are scored against r_{t+1}
    and gamma_{t+1}, never across an episode start; "transition" (the JAX port's): the heads at
    [z_t, h_{t+1}] against the same; "current" (official): the heads at [z_t, h_t] against r_t."""
    from wmtransfer.dreamer import distributions as D

    torch.manual_seed(0)
    batch = breakout_replay.sample(4, 8)
    batch["is_first"][:] = False
    batch["is_first"][:, [0, 4]] = True  # an episode start inside every sequence: its pair has no target
    batch["reward"][:] = np.arange(8, dtype=np.float32)  # a different target at every step
    for target in ("current", "next", "transition"):
        agent = Dreamer(DreamerConfig.preset("minatar", **SMALL, head_target=target), (10, 10, 10), 6)
        data = agent.world_model.preprocess(batch)
        with torch.no_grad():
            _, post, metrics = agent.world_model.loss(data)
            pred = agent.world_model.reward_head(post.feat()).squeeze(-1)
            # [z_t, h_{t+1}]: the latent of step t with the recurrent state that has read a_t
            trans = torch.cat([post.stoch[:, :-1], post.deter[:, 1:]], -1)
            pred_trans = agent.world_model.reward_head(trans).squeeze(-1)
        keep = torch.ones(4, 7, dtype=torch.bool)
        keep[:, 3] = False  # step 3 -> 4 crosses the start
        if target == "current":
            want = D.mse_nll(pred, data["reward"]).mean()
        elif target == "next":
            want = D.mse_nll(pred[:, :-1], data["reward"][:, 1:])[keep].mean()
        else:
            want = D.mse_nll(pred_trans, data["reward"][:, 1:])[keep].mean()
        assert float(metrics["wm_reward"]) == pytest.approx(float(want), rel=1e-6), target


@pytest.mark.parametrize("target", ["current", "next", "transition"])
def test_imagined_rewards_and_discounts_belong_to_the_right_step(breakout_replay, target):
    """In imagination "current" takes the start's discount from the data and the heads from state 1;
    "next" and "transition" take both heads from step 0, zeroed at a terminal start (no step leaves it)."""
    cfg = DreamerConfig.preset("minatar", **SMALL, head_target=target)
    agent = Dreamer(cfg, (10, 10, 10), 6)
    wm = agent.world_model
    with torch.no_grad():  # constant heads: reward 2, discount logit 3
        for head, bias in ((wm.reward_head, 2.0), (wm.discount_head, 3.0)):
            head.net[-1].weight.zero_()
            head.net[-1].bias.fill_(bias)
        data = wm.preprocess(breakout_replay.sample(4, 8))
        _, post, _ = wm.loss(data)
        start = Latent(post.deter.flatten(0, 1), post.stoch.flatten(0, 1))
        imag = agent.behavior.imagine(wm, start, cfg.imag_horizon)
        terminal = torch.zeros(start.deter.shape[0])
        terminal[::2] = 1.0
        reward, disc = agent.behavior.rewards_and_discounts(wm, imag, terminal)
    assert reward.shape == disc.shape == (cfg.imag_horizon, start.deter.shape[0])
    head_disc = torch.sigmoid(torch.tensor(3.0))
    assert torch.allclose(reward[1:], torch.tensor(2.0)) and torch.allclose(disc[1:], head_disc)
    if target == "current":
        assert torch.allclose(reward[0], torch.tensor(2.0))
        assert torch.allclose(disc[0], cfg.discount * (1 - terminal))
    else:
        assert torch.allclose(reward[0], 2.0 * (1 - terminal))
        assert torch.allclose(disc[0], head_disc * (1 - terminal))


def test_transition_heads_read_each_latent_with_the_next_recurrent_state(breakout_replay):
    """head_target "transition": the imagined reward and discount of step k are the heads on
    [z_k, h_{k+1}] of the dense rollout, on the class-index path too (the one training takes); "next"
    reads [z_k, h_k] and so differs."""
    torch.manual_seed(0)
    for target in ("transition", "next"):
        cfg = DreamerConfig.preset("minatar", **SMALL, head_target=target)
        agent = Dreamer(cfg, (10, 10, 10), 6)
        wm = agent.world_model
        with torch.no_grad():
            _, post, _ = wm.loss(wm.preprocess(breakout_replay.sample(4, 8)))
            start = Latent(post.deter.flatten(0, 1), post.stoch.flatten(0, 1))
            alive = torch.zeros(start.deter.shape[0])
            torch.manual_seed(1)
            dense = agent.behavior.imagine(wm, start, cfg.imag_horizon, dense=True)
            torch.manual_seed(1)
            lookup = agent.behavior.imagine(wm, start, cfg.imag_horizon)
            reward, disc = agent.behavior.rewards_and_discounts(wm, dense, alive)
            reward_lookup, disc_lookup = agent.behavior.rewards_and_discounts(wm, lookup, alive)
            trans = torch.cat([dense.stoch[:-1], dense.deter[1:]], -1)
            want_r = wm.reward_head(trans).squeeze(-1)
            want_d = torch.sigmoid(wm.discount_head(trans).squeeze(-1))
        assert torch.equal(dense.action, lookup.action)
        assert torch.allclose(reward_lookup, reward, atol=1e-5)
        assert torch.allclose(disc_lookup, disc, atol=1e-5)
        matches = torch.allclose(reward, want_r, atol=1e-5) and torch.allclose(disc, want_d, atol=1e-5)
        assert matches == (target == "transition"), target


def test_a_world_model_trained_for_another_head_target_is_refused(tmp_path):
    """Transfer keeps the heads' meaning: loading a world model whose heads predict another step fails
    with both values named; a checkpoint written before the field counts as "current" (official)."""
    src = Dreamer(DreamerConfig.preset("minatar", **SMALL), (10, 10, 10), 6)
    ckpt = src.checkpoint()
    dst = Dreamer(DreamerConfig.preset("minatar", **SMALL, head_target="next"), (10, 10, 10), 6)
    with pytest.raises(CheckpointMismatch, match="head_target: source 'current' vs model 'next'"):
        dst.load_world_model_from(ckpt)
    del ckpt["config"]["head_target"]
    with pytest.raises(CheckpointMismatch, match="head_target"):
        dst.load_world_model_from(ckpt)
    Dreamer(DreamerConfig.preset("minatar", **SMALL), (10, 10, 10), 6).load_world_model_from(ckpt)


def test_focal_image_loss_weights_each_cell_by_how_badly_it_is_missed(breakout_replay):
    """image_focal gamma: the image term of the loss is sum over cells of (1 - p_t)^gamma * NLL (p_t the
    probability of the cell's true value), while wm_image still reports the plain NLL; gamma 0 is the
    plain likelihood; an MSE image refuses it."""
    batch = breakout_replay.sample(2, 6)
    totals = {}
    for gamma in (0.0, 2.0):
        torch.manual_seed(0)
        wm = Dreamer(DreamerConfig.preset("minatar", **SMALL, image_focal=gamma, kl_scale=0.0,
                                          reward_scale=0.0, discount_scale=0.0), (10, 10, 10), 6).world_model
        data = wm.preprocess(batch)
        torch.manual_seed(1)
        with torch.no_grad():
            total, post, metrics = wm.loss(data)
            logits = wm.decoder(post.feat())
        p = torch.sigmoid(logits)
        target = data["obs"].float()
        p_true = torch.where(target > 0, p, 1 - p)
        nll = -torch.log(p_true)
        assert float(metrics["wm_image"]) == pytest.approx(float(nll.sum((-3, -2, -1)).mean()), rel=1e-4)
        want = ((1 - p_true) ** gamma * nll).sum((-3, -2, -1)).mean()
        assert float(total) == pytest.approx(float(want), rel=1e-4)
        totals[gamma] = float(total)
    assert totals[2.0] < totals[0.0]
    with pytest.raises(Exception, match="image_focal"):
        DreamerConfig.preset("minatar", image_dist="mse", image_focal=2.0)
