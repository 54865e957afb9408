"""Training conditions: what each one trains and what stays bit-identical (real MinAtar data)."""

import numpy as np
import pytest
import torch
from dreamer_tiny import SMALL_DREAMER as SMALL

from wmtransfer import games
from wmtransfer.data.replay import Replay
from wmtransfer.dreamer import CONDITIONS, Dreamer, DreamerConfig

GROUPS = {
    "encoder": "world_model.encoder.", "rssm": "world_model.rssm.", "decoder": "world_model.decoder.",
    "reward_head": "world_model.reward_head.", "discount_head": "world_model.discount_head.",
    "actor": "behavior.actor.", "critic": "behavior.critic.",
}
#: condition -> groups that must stay bit-identical (the rest must change)
FROZEN = {
    "scratch": set(),
    "finetune": set(),
    "finetune_agent": set(),
    "frozen_rssm": {"rssm"},
    "frozen_wm": {"encoder", "rssm", "decoder", "reward_head", "discount_head"},
}


@pytest.fixture(scope="module")
def replay():
    env = games.make("minatar-seaquest", seed=0)
    rng = np.random.default_rng(0)
    rep = Replay(seed=0)
    obs, _ = env.reset(seed=0)
    ep = {"obs": [obs], "action": [0], "reward": [0.0], "is_terminal": [False]}
    for _ in range(400):
        a = int(rng.integers(6))
        obs, r, term, trunc, _ = env.step(a)
        ep["obs"].append(obs), ep["action"].append(a), ep["reward"].append(r), ep["is_terminal"].append(term)
        if term or trunc:
            n = len(ep["obs"])
            episode = {
                "obs": np.stack(ep["obs"]), "action": np.array(ep["action"]),
                "reward": np.array(ep["reward"], np.float32), "is_terminal": np.array(ep["is_terminal"]),
                "is_first": np.arange(n) == 0, "is_last": np.arange(n) == n - 1,
            }
            rep.add_episode(episode, n_actions=6)
            obs, _ = env.reset()
            ep = {"obs": [obs], "action": [0], "reward": [0.0], "is_terminal": [False]}
    return rep


def group_of(name: str) -> str | None:
    return next((g for g, prefix in GROUPS.items() if name.startswith(prefix)), None)


def make_agent(seed: int = 0, preset: str = "minatar") -> Dreamer:
    torch.manual_seed(seed)
    return Dreamer(DreamerConfig.preset(preset, **SMALL), (10, 10, 10), 6)


@pytest.mark.parametrize("preset", ["minatar", "minatar_dense"])
@pytest.mark.parametrize("condition", CONDITIONS)
def test_condition_trains_exactly_its_parameters(condition, preset, replay):
    agent = make_agent(preset=preset)
    source = make_agent(seed=1, preset=preset)
    source.train_step(replay.sample(4, 8))
    if condition in ("finetune", "frozen_rssm", "frozen_wm"):
        agent.load_world_model_from(source.checkpoint())
        for k, v in source.world_model.state_dict().items():
            assert torch.equal(agent.world_model.state_dict()[k], v), k
        assert not torch.equal(agent.actor.net[0].weight, source.actor.net[0].weight)  # fresh actor
    if condition == "finetune_agent":
        agent.load_agent_from(source.checkpoint())
        for k, v in source.state_dict().items():
            assert torch.equal(agent.state_dict()[k], v), k
    agent.set_condition(condition)
    before = {k: v.clone() for k, v in agent.state_dict().items()}
    for _ in range(3):
        metrics = agent.train_step(replay.sample(4, 8))
        assert all(np.isfinite(v) for v in metrics.values())
    changed = {g: False for g in GROUPS}
    for name, value in agent.state_dict().items():
        group = group_of(name)
        if group is None:
            continue  # target critic: a copy, checked below
        same = torch.equal(value, before[name])
        if group in FROZEN[condition]:
            assert same, f"{condition}: frozen parameter {name} changed"
        elif (value - before[name]).abs().max() > 1e-5:  # beyond what weight decay alone does
            changed[group] = True
    for group in GROUPS:
        if group not in FROZEN[condition]:
            assert changed[group], f"{condition}: {group} was not trained"
    trainable = set(agent.trainable_parameter_names())
    for name in trainable:
        assert group_of(name) not in FROZEN[condition]


def test_frozen_parameters_stay_out_of_optimisers(replay):
    agent = make_agent()
    agent.set_condition("frozen_rssm")
    in_opt = {id(p) for g in agent.model_opt.param_groups for p in g["params"]}
    assert not any(id(p) in in_opt for p in agent.world_model.rssm.parameters())
    assert all(not p.requires_grad for p in agent.world_model.rssm.parameters())
    agent.set_condition("frozen_wm")
    assert agent.model_opt is None
    agent.set_condition("scratch")
    assert all(p.requires_grad for p in agent.world_model.parameters())
    with pytest.raises(ValueError, match="unknown condition"):
        agent.set_condition("frozen_everything")


def test_condition_survives_checkpoint_and_slow_target_copies_critic(replay):
    agent = make_agent()
    agent.set_condition("frozen_wm")
    restored = make_agent(seed=3)
    restored.restore(agent.checkpoint())
    assert restored.condition == "frozen_wm" and restored.model_opt is None
    # slow target (official order): after the update steps, copied when the count is a multiple of 2 here
    agent = Dreamer(DreamerConfig.preset("minatar", **SMALL, slow_target_update=2), (10, 10, 10), 6)

    def same(a, b):
        return all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))

    agent.train_step(replay.sample(4, 8))  # update 0: copy
    assert same(agent.critic, agent.target_critic)
    held = [p.clone() for p in agent.target_critic.parameters()]
    agent.train_step(replay.sample(4, 8))  # update 1: held
    assert not same(agent.critic, agent.target_critic)
    assert all(torch.equal(a, b) for a, b in zip(held, agent.target_critic.parameters(), strict=True))
    agent.train_step(replay.sample(4, 8))  # update 2: copy
    assert same(agent.critic, agent.target_critic)


def test_one_table_of_conditions_is_what_schema_cli_and_rules_read():
    from pathlib import Path

    import yaml

    from wmtransfer import conditions
    from wmtransfer.cli import build_parser
    from wmtransfer.train.config import CONDITIONS as loop_conditions

    schema = yaml.safe_load((Path(__file__).resolve().parents[1] / "schemas/config.schema.yaml").read_text())
    assert tuple(schema["$defs"]["condition"]["enum"]) == conditions.NAMES == CONDITIONS == loop_conditions
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    choices = next(a for a in sub.choices["train-agent"]._actions if a.dest == "condition").choices
    assert tuple(choices) == conditions.NAMES
    assert conditions.init_path("scratch", "s", 0) is None
    assert conditions.init_path("frozen_rssm", "s", 1) == "results/pretrain/s/seed1/world_model.pt"
    assert conditions.init_path("finetune_agent", "s", 1) == "results/pretrain_agent/s/seed1/agent.pt"
    with pytest.raises(ValueError, match="unknown condition 'distill'; valid: scratch, finetune"):
        conditions.get("distill")
