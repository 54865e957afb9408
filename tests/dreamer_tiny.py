"""Shrunken budgets shared by the Dreamer training tests: real games, real loops, tiny networks."""

from __future__ import annotations

from wmtransfer.dreamer.config import DreamerConfig
from wmtransfer.train.config import AgentConfig, PretrainConfig

#: A minatar-preset Dreamer with tiny layers: same code paths, a fraction of the compute.
TINY_DREAMER = dict(
    deter=16, hidden=16, stoch=4, classes=4, cnn_depth=2, decoder_in_mult=4,
    head_layers=1, head_units=16, actor_layers=1, actor_units=16, critic_layers=1, critic_units=16,
    imag_horizon=3, slow_target_update=2,
)


#: A small (not tiny) minatar-preset Dreamer for the model's unit tests.
SMALL_DREAMER = dict(deter=32, hidden=32, stoch=4, classes=4, head_layers=2, head_units=32, actor_layers=2,
                     actor_units=32, critic_layers=2, critic_units=32, imag_horizon=4, batch_size=4,
                     seq_length=8)


def tiny_dreamer(**overrides) -> DreamerConfig:
    return DreamerConfig.preset("minatar", **{**TINY_DREAMER, **overrides})


def tiny_agent(**overrides) -> AgentConfig:
    """120 env steps: 60 of random prefill, then one update every 10 steps (6 updates)."""
    values = dict(env_steps=120, prefill=60, train_every=10, train_steps=1, batch=4, length=8,
                  eval_every=60, eval_episodes=2, log_every=30, checkpoint_every=3, time_limit=200)
    return AgentConfig(**{**values, **overrides})


def tiny_pretrain(**overrides) -> PretrainConfig:
    values = dict(updates=12, batch=4, length=8, log_every=2, checkpoint_every=4)
    return PretrainConfig(**{**values, **overrides})


def one_thread():
    """Generator for an autouse fixture: tiny networks run fastest on one torch thread (and a busy
    2-core machine makes a second thread spin)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
