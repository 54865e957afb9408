# wmtransfer: does a world model pre-trained on several games make an agent learn a new game faster?
# The study is the config: `snakemake --cores all` runs config.yaml; pass --configfile for another.
from snakemake.utils import min_version, validate

min_version("8.0")


# A study given with --configfile replaces the default study instead of being merged into it, so a
# paper-scale study never inherits the quick study's small budgets.
if not workflow.config_settings.configfiles:

    configfile: "config.yaml"


validate(config, "schemas/config.schema.yaml")


include: "rules/common.smk"


wildcard_constraints:
    seed=r"\d+",
    game=_alternatives(GAMES),
    envset=_alternatives(ENVSETS),
    study=_alternatives([STUDY]),
    label=_alternatives(LABELS),


include: "rules/dqn.smk"
include: "rules/datasets.smk"
include: "rules/pretrain.smk"
include: "rules/agents.smk"
include: "rules/baselines.smk"
include: "rules/vmc.smk"
include: "rules/report.smk"


rule all:
    input:
        final_outputs(),
    default_target: True
