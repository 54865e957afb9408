# Helpers shared by all stages. The derived lists of the study, wildcard helpers and the
# final targets. Rule files hold rules only.
import copy
import json
import os
import re
import shlex

from wmtransfer import conditions
from wmtransfer.study import agent_runs, all_games, check_study, envset_games, target_envsets

check_study(config)

STUDY = config["study"]
SEEDS = [int(s) for s in config["seeds"]]
ENVSETS = config["envsets"]
GAMES = all_games(config)
SET_GAMES = envset_games(config)
TARGETS = config["targets"]
# Every agent run of the study: (target game, run label) -> condition, envset, variant. The label is
# the condition, plus "-<envset>" when a target uses several sets and "-<variant>" for an ablation.
RUNS = agent_runs(config)
LABELS = sorted({label for _, label in RUNS})
# Ha & Schmidhuber's World Models (rules/vmc.smk): every target game, every seed, when vmc.enabled.
VMC_GAMES = sorted({t["game"] for t in TARGETS}) if config["vmc"]["enabled"] else []


def _alternatives(values):
    """A regex that matches exactly one of ``values`` (never matches if there are none)."""
    return "|".join(re.escape(str(v)) for v in values) or "(?!x)x"


def cli_config(section):
    """A config section as one shell-quoted JSON argument for ``wmtransfer ... --config``."""
    return shlex.quote(json.dumps(section, sort_keys=True))


def _dreamer(section):
    from wmtransfer.dreamer.config import DreamerConfig

    return DreamerConfig.from_section(copy.deepcopy(section))


def agent_resource(key):
    """SLURM ``runtime`` / ``mem_mb`` of a train_agent job from the study's budgets (wmtransfer.resources)."""
    from wmtransfer import resources

    return lambda w: resources.agent_job(config, [w.game], config["agent"],
                                         _dreamer(run_dreamer_config(w.game, w.label)))[key]


def pretrain_agent_resource(key):
    from wmtransfer import resources

    return lambda w: resources.agent_job(config, ENVSETS[w.envset], multitask_config(),
                                         _dreamer(config["dreamer"]))[key]


def pretrain_resource(key):
    from wmtransfer import resources

    def get(w):
        ds = config["dataset"]
        per_game = config["pretrain"].get("steps_per_game") or ds["random_steps"] + ds["policy_steps"]
        steps = per_game * len(ENVSETS[w.envset])
        return resources.pretrain_job(config, ENVSETS[w.envset], config["pretrain"],
                                      _dreamer(config["dreamer"]), steps)[key]

    return get


def dqn_resource(key):
    from wmtransfer import resources

    return lambda w: resources.dqn_job(config, w.game, config["dqn"])[key]


def dqn_gpu(w):
    """GPU slots of a DQN job (wmtransfer.resources.dqn_gpu: the Nature conv net of image games only)."""
    from wmtransfer import resources

    return resources.dqn_gpu(w.game)


def dqn_device(w):
    """``--device`` of a DQN job: ``auto`` (CUDA when visible) where it holds a GPU slot, else ``cpu``."""
    return "auto" if dqn_gpu(w) else "cpu"


def multitask_config():
    """The agent section with the study's `multitask` changes: the online multi-task pre-training."""
    return {**config["agent"], **config["multitask"]}


def agent_init(wildcards):
    """The pre-trained model a run starts from: none (scratch), world_model.pt or agent.pt."""
    run = RUNS[(wildcards.game, wildcards.label)]
    return conditions.init_path(run["condition"], run["envset"], wildcards.seed) or []


def run_dreamer_config(game, label):
    """The dreamer section of one run: the study's, with its ablation variant's fields on top."""
    section = copy.deepcopy(config["dreamer"])
    variant = RUNS[(game, label)]["variant"]
    if variant is not None:
        section["overrides"] = {**section.get("overrides", {}), **config["variants"][variant]["dreamer"]}
    return section


def run_game_settings(game, label):
    """Game settings of one run (e.g. action_repeat of an ablation variant); {} for the defaults."""
    variant = RUNS[(game, label)]["variant"]
    return config["variants"][variant]["game"] if variant is not None else {}


def final_outputs():
    """Everything the default target builds for this study."""
    out = []
    if config["random_baseline"]["enabled"]:
        out += expand("results/baselines/random/{game}/returns.csv", game=[t["game"] for t in TARGETS])
    out += [f"results/agents/{STUDY}/{game}/{label}/seed{seed}/metrics.csv"
            for (game, label) in RUNS for seed in SEEDS]
    if config["dqn_baseline"]["enabled"]:
        out += expand("results/dqn/{game}/seed{seed}/metrics.csv", game=[t["game"] for t in TARGETS],
                      seed=SEEDS)
    out += report_outputs()
    out += vmc_files("evaluation.csv")
    return out


def pretrained_envsets():
    """(stage, envset) pairs the study pre-trains: offline world models and online multi-task agents."""
    pairs = set()
    for run in RUNS.values():
        if run["envset"] is not None:
            stage = "pretrain_agent" if run["condition"] == "finetune_agent" else "pretrain"
            pairs.add((stage, run["envset"]))
    return sorted(pairs)


def study_metrics(wildcards):
    """Every metrics.csv the study's report reads: its agent runs and their pre-training runs."""
    runs = [f"results/agents/{STUDY}/{game}/{label}/seed{seed}/metrics.csv"
            for (game, label) in RUNS for seed in SEEDS]
    runs += [f"results/{stage}/{envset}/seed{seed}/metrics.csv"
             for stage, envset in pretrained_envsets() for seed in SEEDS]
    return runs


def _pretrain_summary(run, seed):
    stage = "pretrain_agent" if run["condition"] == "finetune_agent" else "pretrain"
    return f"results/{stage}/{run['envset']}/seed{seed}/summary.json"


def pretrain_summaries(wildcards):
    """The summary.json of every pre-training run the study's agents start from."""
    return sorted({_pretrain_summary(run, seed) for run in RUNS.values() if run["envset"] for seed in SEEDS})


def pretrain_cost_specs(wildcards):
    """`TARGET/LABEL=summary.json` per pre-trained run and seed: the cost each curve is shifted by."""
    return " ".join(f"{game}/{label}={_pretrain_summary(run, seed)}"
                    for (game, label), run in sorted(RUNS.items()) if run["envset"] for seed in SEEDS)


def baseline_files(wildcards):
    targets = sorted({t["game"] for t in TARGETS})
    files = []
    if config["random_baseline"]["enabled"]:
        files += expand("results/baselines/random/{game}/returns.csv", game=targets)
    if config["dqn_baseline"]["enabled"]:
        files += expand("results/dqn/{game}/seed{seed}/metrics.csv", game=targets, seed=SEEDS)
    files += vmc_files("evaluation.csv")  # V-M-C's test returns: a level next to the random policy's
    return files


def report_outputs():
    """The figures and tables of the study (and the latent analysis of its world models)."""
    out = []
    if RUNS:
        out += [f"results/report/{STUDY}/figures", f"results/report/{STUDY}/table.csv"]
    if config["latent_analysis"]["enabled"]:
        out += [f"results/report/{STUDY}/latent/{envset}/seed{SEEDS[0]}"
                for stage, envset in pretrained_envsets() if stage == "pretrain"]
    if VMC_GAMES:
        out.append(f"results/report/{STUDY}/vmc")
    if config["rollouts"]["enabled"]:
        out += [f"results/report/{STUDY}/rollouts/{envset}/seed{SEEDS[0]}"
                for stage, envset in pretrained_envsets() if stage == "pretrain"]
        out += [f"results/report/{STUDY}/rollouts_agent/{envset}/seed{SEEDS[0]}"
                for stage, envset in pretrained_envsets() if stage == "pretrain_agent"]
        if study_unseen_games() and reconstruction_models(None):
            out.append(f"results/report/{STUDY}/reconstructions")
        out += prediction_quality_outputs()
    if RUNS:
        out.append(f"results/report/{STUDY}/summary.md")
    return out


def frames_per_step_specs(wildcards):
    """`LABEL=REPEAT` for every run label that repeats actions (the action-repeat ablation)."""
    specs = []
    for (game, label), run in sorted(RUNS.items()):
        repeat = int(run_game_settings(game, label).get("action_repeat", 1))
        if repeat != 1:
            specs.append(f"{label}={repeat}")
    return " ".join(sorted(set(specs)))


def dqn_steps_specs(wildcards):
    """`ENVSET=STEPS`: env steps of the DQN runs whose checkpoints collected each set's datasets (games
    with external atari-agents checkpoints cost none of ours)."""
    external = config["dataset"]["atari_agents"]
    return " ".join(f"{envset}={sum(config['dqn']['total_steps'] for g in games if g not in external)}"
                    for envset, games in sorted(ENVSETS.items()))


def report_extras(wildcards):
    """Analysis outputs the findings page summarises (latent analyses, dreamed rollouts)."""
    out = []
    if config["latent_analysis"]["enabled"]:
        out += [f"results/report/{STUDY}/latent/{envset}/seed{SEEDS[0]}"
                for stage, envset in pretrained_envsets() if stage == "pretrain"]
    if config["rollouts"]["enabled"]:
        out += [f"results/report/{STUDY}/rollouts/{envset}/seed{SEEDS[0]}"
                for stage, envset in pretrained_envsets() if stage == "pretrain"]
        out += [f"results/report/{STUDY}/rollouts_agent/{envset}/seed{SEEDS[0]}"
                for stage, envset in pretrained_envsets() if stage == "pretrain_agent"]
        if study_unseen_games() and reconstruction_models(None):
            out.append(f"results/report/{STUDY}/reconstructions")
        out += prediction_quality_outputs()
    return out


def prediction_quality_outputs():
    """The prediction-quality figures, once pre-training writes snapshots (`pretrain.snapshot_fractions`
    set); none before, so the workflow runs with or without that key."""
    if not config["pretrain"].get("snapshot_fractions"):
        return []
    return [f"results/report/{STUDY}/prediction_quality/{envset}/seed{SEEDS[0]}"
            for stage, envset in pretrained_envsets() if stage == "pretrain"]


def study_unseen_games():
    """Targets of the study that some pre-trained set it starts from does not contain."""
    return sorted({g for _, envset in pretrained_envsets() for g in unseen_targets(envset)})


def reconstruction_models(wildcards):
    """Models compared on the unseen games (seed 003 fig. 8), first seed: every pre-trained set's world
    model or multi-task agent, and a scratch agent trained on one other target (a one-game model)."""
    models = {}
    for stage, envset in pretrained_envsets():
        name = "agent.pt" if stage == "pretrain_agent" else "world_model.pt"
        models[f"{stage}__{envset}"] = f"results/{stage}/{envset}/seed{SEEDS[0]}/{name}"
    unseen = set(study_unseen_games())
    one_game = sorted(g for (g, label) in RUNS if label == "scratch" and g not in unseen)
    if one_game:
        models[f"scratch__{one_game[0]}"] = (f"results/agents/{STUDY}/{one_game[0]}/scratch/seed{SEEDS[0]}/"
                                             "agent.pt")
    return models


def reconstruction_label(key):
    """The figure's row label of a :func:`reconstruction_models` key."""
    stage, name = key.split("__", 1)
    if stage == "scratch":
        return f"1 game: {name}"
    games = len(ENVSETS.get(name, []))
    kind = "multi-task agent" if stage == "pretrain_agent" else "world model"
    return f"{name}: {games} games, {kind}"


def unseen_targets(envset):
    """Targets of the study trained from ``envset`` that are not among its games (transfer targets)."""
    return sorted({t["game"] for t in TARGETS
                   if envset in target_envsets(t) and t["game"] not in ENVSETS[envset]})


def vmc_runs():
    """(game, seed) of every V-M-C run of the study."""
    return [(game, seed) for game in VMC_GAMES for seed in SEEDS]


def vmc_files(*names):
    """The files ``names`` of every V-M-C run folder ``results/vmc/{game}/seed{seed}/``."""
    return [f"results/vmc/{game}/seed{seed}/{name}" for game, seed in vmc_runs() for name in names]


def vmc_random_files():
    """Random-policy returns of the V-M-C games (the table's floor), when the random baseline runs."""
    if not config["random_baseline"]["enabled"]:
        return []
    return [f"results/baselines/random/{game}/returns.csv" for game in VMC_GAMES]
