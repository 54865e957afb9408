# Helpers shared by every rule file: the study's derived lists, wildcard constraints and the
# final targets. Rule files hold rules only.
import json
import re
import shlex

from wmtransfer.study import all_games, check_study, envset_games, target_conditions

check_study(config)

STUDY = config["study"]
SEEDS = [int(s) for s in config["seeds"]]
ENVSETS = config["envsets"]
GAMES = all_games(config)
SET_GAMES = envset_games(config)
TARGETS = config["targets"]


def _alternatives(values):
    """A regex that matches exactly one of ``values`` (never matches if there are none)."""
    return "|".join(re.escape(str(v)) for v in values) or "(?!x)x"


wildcard_constraints:
    seed=r"\d+",
    game=_alternatives(GAMES),
    envset=_alternatives(ENVSETS),
    study=_alternatives([STUDY]),
    condition="scratch|finetune|frozen_rssm|frozen_wm|finetune_agent",


def cli_config(section):
    """A config section as one shell-quoted JSON argument for ``wmtransfer ... --config``."""
    return shlex.quote(json.dumps(section, sort_keys=True))


def final_outputs():
    """Everything ``rule all`` builds for this study."""
    out = []
    if config["random_baseline"]["enabled"]:
        out += expand("results/baselines/random/{game}/returns.csv", game=[t["game"] for t in TARGETS])
    # --- later stages add their final outputs below ---
    return out
