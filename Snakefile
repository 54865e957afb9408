# wmtransfer: does a world model pre-trained on several games make an agent learn a new game faster?
# The study is the config: `snakemake --cores all` runs config.yaml; pass --configfile for another.
from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("8.0")


# A study given with --configfile replaces the default study instead of being merged into it, so a
# paper-scale study never inherits the quick study's small budgets.
if not workflow.config_settings.configfiles:

    configfile: "config.yaml"


try:
    validate(config, "schemas/config.schema.yaml")
except WorkflowError as e:  # Snakemake's message appends the whole schema: keep the line that matters
    from wmtransfer.validation import brief_schema_error

    raise WorkflowError(brief_schema_error(e)) from None

report: "rules/captions/workflow.rst"


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


onsuccess:
    # Where to look when the run ends: the findings page and its headline lines.
    from wmtransfer.analysis.findings import headline_lines

    for line in headline_lines(f"results/report/{STUDY}/summary.json"):
        print(line)
