"""The GPU path, checked on CPU: its switches exist, change nothing on CPU, and the workflow declares the
``gpu`` resource that lets k training jobs share one device (docs/speed.md)."""

import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from dreamer_tiny import TINY_DREAMER

from wmtransfer import resources
from wmtransfer.dreamer import Dreamer, DreamerConfig
from wmtransfer.dreamer.world_model import as_tensor

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from dreamer import synthetic_batch  # noqa: E402


def _updates(**overrides):
    torch.manual_seed(0)
    cfg = DreamerConfig.preset("minatar", **TINY_DREAMER, batch_size=3, seq_length=6, **overrides)
    agent = Dreamer(cfg, (10, 10, 10), 6)
    batch = synthetic_batch((10, 10, 10), 6, 3, 6)
    torch.manual_seed(1)
    return agent, [agent.train_step(batch) for _ in range(2)]


def test_bf16_is_a_no_op_on_cpu():
    plain, plain_metrics = _updates()
    bf16, bf16_metrics = _updates(bf16=True)
    assert bf16.cfg.bf16 and not bf16.uses_bf16 and not plain.uses_bf16
    assert bf16_metrics == plain_metrics  # the same floats, bit for bit
    for a, b in zip(plain.parameters(), bf16.parameters(), strict=True):
        assert torch.equal(a, b) and b.dtype == torch.float32


def test_compile_flag_wraps_the_rssm_steps_and_is_off_by_default():
    cfg = DreamerConfig.preset("minatar", **TINY_DREAMER)
    assert cfg.compile_rssm is False and cfg.bf16 is False
    rssm = Dreamer(cfg, (10, 10, 10), 6).world_model.rssm
    assert not {"obs_step", "post_step", "img_step", "img_step_index"} & set(vars(rssm))
    rssm = Dreamer(DreamerConfig.preset("minatar", **TINY_DREAMER, compile_rssm=True), (10, 10, 10), 6
                   ).world_model.rssm
    for name in ("obs_step", "post_step", "img_step", "img_step_index"):
        assert name in vars(rssm) and vars(rssm)[name] is not getattr(type(rssm), name)


def test_host_batches_are_not_pinned_on_cpu(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("pin_memory on a CPU run")

    monkeypatch.setattr(torch.Tensor, "pin_memory", refuse)
    x = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = as_tensor(x, "cpu")
    assert out.dtype == torch.uint8 and torch.equal(out, torch.from_numpy(x))
    assert torch.equal(as_tensor(torch.ones(2), torch.device("cpu")), torch.ones(2))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_host_batches_go_through_pinned_memory_on_cuda():
    out = as_tensor(np.ones((2, 3), np.float32), "cuda")
    assert out.is_cuda and out.sum().item() == 6


def test_gpu_profile_shares_the_device_through_the_gpu_resource():
    profile = yaml.safe_load((ROOT / "profiles" / "gpu" / "config.yaml").read_text())
    slots = dict(item.split("=") for item in profile["resources"])
    assert int(slots["gpu"]) >= 1


TRAINING_RULES = [("agents.smk", "train_agent"), ("pretrain.smk", "pretrain_world_model"),
                  ("pretrain.smk", "pretrain_agent"), ("dqn.smk", "train_dqn")]


@pytest.mark.parametrize("rules, rule", TRAINING_RULES, ids=[r for _, r in TRAINING_RULES])
def test_training_rules_declare_the_gpu_resource_and_pass_the_device(rules, rule):
    text = (ROOT / "rules" / rules).read_text()
    body = re.search(rf"^rule {rule}:\n(.*?)(?=^rule |\Z)", text, re.S | re.M)
    assert body, f"{rule} not in {rules}"
    assert re.search(r"resources:.*?\n\s+gpu=", body.group(1), re.S), f"{rule} declares no gpu resource"
    assert "--device" in body.group(1)


def test_dqn_holds_a_gpu_slot_only_for_image_games():
    assert resources.dqn_gpu("minatar-breakout") == 0
    assert resources.dqn_gpu("atari-breakout") == 1


def test_gru_cell_keeps_the_state_dtype_under_cpu_autocast():
    """CPU autocast returns the layer norm in bf16 (CUDA's keeps it fp32); the GRU's lerp mixed that with the
    fp32 state and raised, which stopped ``benchmarks/dreamer.py --amp`` on CPU."""
    from wmtransfer.dreamer.rssm import LayerNormGRUCell

    torch.manual_seed(0)
    cell = LayerNormGRUCell(5, 8)
    x, h = torch.randn(3, 5), torch.randn(3, 8)
    plain = cell(x, h)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = cell(x, h)
    assert mixed.dtype == torch.float32 and mixed.shape == (3, 8)
    assert torch.allclose(mixed, plain, atol=0.05)  # bf16 arithmetic, same function
