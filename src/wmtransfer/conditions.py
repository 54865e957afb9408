"""The one table of training conditions: what each starts from, what it freezes, and its display order.

The schema's ``conditions`` enum (checked equal to :data:`NAMES` by a test), the rules (which file a run
starts from), the CLI, the agent (which parameters train) and the report (order, labels) all read it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Condition:
    #: Name used in configs, paths and tables.
    name: str
    #: What is loaded before training: nothing, a pre-trained world model (``world_model.pt`` of offline
    #: pre-training) or a whole multi-task agent (``agent.pt`` of online pre-training).
    starts_from: str
    #: Parts of the agent that stay fixed: ``rssm`` (GRU, prior and posterior layers) or ``world_model``
    #: (everything but actor and critic).
    frozen: tuple[str, ...]
    #: One line for legends and captions.
    label: str


#: In display order (figures, tables, legends).
TABLE: tuple[Condition, ...] = (
    Condition("scratch", "nothing", (), "from scratch"),
    Condition("finetune", "world_model", (), "pre-trained world model, all fine-tuned"),
    Condition("frozen_rssm", "world_model", ("rssm",), "pre-trained world model, RSSM frozen"),
    Condition("frozen_wm", "world_model", ("world_model",), "pre-trained world model frozen"),
    Condition("finetune_agent", "agent", (), "multi-task agent, all fine-tuned"),
)
BY_NAME: dict[str, Condition] = {c.name: c for c in TABLE}
NAMES: tuple[str, ...] = tuple(c.name for c in TABLE)
#: Conditions that need a pre-trained file (``--init``).
PRETRAINED: tuple[str, ...] = tuple(c.name for c in TABLE if c.starts_from != "nothing")
#: Conditions that start from an offline pre-trained world model.
FROM_WORLD_MODEL: tuple[str, ...] = tuple(c.name for c in TABLE if c.starts_from == "world_model")

#: Where the pre-trained file of each kind of start lives (``results/<stage>/{envset}/seed{seed}/<file>``).
INIT_FILES = {"world_model": ("pretrain", "world_model.pt"), "agent": ("pretrain_agent", "agent.pt")}


def get(name: str) -> Condition:
    """The condition called ``name``; an error listing the valid ones otherwise."""
    if name not in BY_NAME:
        raise ValueError(f"unknown condition {name!r}; valid: {', '.join(NAMES)}")
    return BY_NAME[name]


def init_path(name: str, envset: str, seed: int | str) -> str | None:
    """The file a run of condition ``name`` starts from (None for ``scratch``)."""
    c = get(name)
    if c.starts_from == "nothing":
        return None
    stage, file = INIT_FILES[c.starts_from]
    return f"results/{stage}/{envset}/seed{seed}/{file}"
