"""Study configs: the schema and the game-aware checks stop bad studies before any job runs."""

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from wmtransfer.study import StudyError, all_games, check_study, envset_games

ROOT = Path(__file__).parents[1]
SCHEMA = str(ROOT / "schemas" / "config.schema.yaml")
DEFAULT = yaml.safe_load((ROOT / "config.yaml").read_text())


def validated(config):
    config = copy.deepcopy(config)
    validate(config, SCHEMA)
    return config


def test_default_study_is_valid_and_defaults_are_filled():
    config = validated(DEFAULT)
    check_study(config)
    assert config["random_baseline"]["max_steps"] == 100000  # filled from the schema
    assert envset_games(config) == ["minatar-asterix", "minatar-breakout", "minatar-freeway",
                                    "minatar-seaquest"]
    assert "minatar-space_invaders" in all_games(config)


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.update(seeds=[-1]), "-1"),
    (lambda c: c.update(conditions=["scratch", "distill"]), "distill"),
    (lambda c: c.update(study="my study"), "my study"),
    (lambda c: c.update(extra_key=1), "extra_key"),
    (lambda c: c["targets"].append({"game": "minatar-breakout", "mode": "x"}), "mode"),
    (lambda c: c.update(random_baseline={"episodes": 0}), "0"),
])
def test_schema_rejects_bad_values_naming_them(edit, message):
    config = copy.deepcopy(DEFAULT)
    edit(config)
    with pytest.raises(WorkflowError, match=message):
        validate(config, SCHEMA)


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["envsets"]["minatar4"].append("minatar-pong"),
     r"envsets\.minatar4\[4\].*minatar-pong.*valid ids"),
    (lambda c: c["envsets"]["minatar4"].append("atari-breakout"),
     r"envsets\.minatar4\[4\].*atari-breakout.*share one observation and action space"),
    (lambda c: c["targets"].__setitem__(0, {"game": "atari-pong", "envset": "minatar4"}),
     r"targets\[0\].*atari-pong.*minatar4.*cannot read this game"),
    (lambda c: c["targets"].__setitem__(0, {"game": "minatar-breakout", "envset": "nope"}),
     r"targets\[0\]\.envset.*nope"),
    (lambda c: c["targets"].__setitem__(0, {"game": "minatar-breakout"}),
     r"targets\[0\]\.envset.*finetune"),
    (lambda c: c["targets"].__setitem__(0, {"game": "mario-9-9"}), r"targets\[0\]\.game.*mario-9-9"),
])
def test_study_checks_name_the_key(edit, message):
    config = copy.deepcopy(DEFAULT)
    edit(config)
    with pytest.raises(StudyError, match=message):
        check_study(validated(config))


def test_scratch_only_target_needs_no_envset():
    config = copy.deepcopy(DEFAULT)
    config["targets"] = [{"game": "atari-pong", "conditions": ["scratch"]}]
    check_study(validated(config))


def dry_run(workdir, configfile=ROOT / "config.yaml"):
    """``snakemake -n`` of the repository's workflow in an empty working directory."""
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--snakefile", str(ROOT / "Snakefile"),
         "--directory", str(workdir), "--configfile", str(configfile)],
        cwd=workdir, capture_output=True, text=True, timeout=300)


def test_dry_run_of_default_study(tmp_path):
    result = dry_run(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "evaluate_random_policy" in result.stdout


def test_bad_study_stops_before_any_job(tmp_path):
    bad = copy.deepcopy(DEFAULT)
    bad["envsets"]["minatar4"][0] = "minatar-pacman"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    result = dry_run(tmp_path, path)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "envsets.minatar4[0]" in output and "minatar-pacman" in output


@pytest.mark.parametrize("study", sorted(p.name for p in (ROOT / "studies").glob("*.yaml")))
def test_every_shipped_study_gives_a_valid_dag(study, tmp_path):
    result = dry_run(tmp_path, ROOT / "studies" / study)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    cfg = yaml.safe_load((ROOT / "studies" / study).read_text())
    if cfg.get("conditions") == []:  # a V-M-C-only study (seed 004): the whole V -> M -> C chain
        for rule in ("train_vae", "train_mdnrnn", "train_controller", "evaluate_controller"):
            assert rule in result.stdout, rule
    else:
        assert "train_agent" in result.stdout


def test_slurm_profile_dry_run(tmp_path):
    pytest.importorskip("snakemake_executor_plugin_slurm")
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--snakefile", str(ROOT / "Snakefile"),
         "--directory", str(tmp_path), "--profile", str(ROOT / "profiles" / "slurm"),
         "--configfile", str(ROOT / "studies" / "mario_levels.yaml")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "pretrain_agent" in result.stdout


def test_agent_runs_label_envsets_and_variants():
    from wmtransfer.study import agent_runs

    mario = validated(yaml.safe_load((ROOT / "studies" / "mario_levels.yaml").read_text()))
    runs = agent_runs(mario)
    assert runs[("mario-1-1", "finetune_agent-E10")] == {"condition": "finetune_agent", "envset": "E10",
                                                         "variant": None}
    assert ("mario-2-1", "scratch") in runs and ("mario-2-1", "finetune_agent-E4") not in runs
    ablations = validated(yaml.safe_load((ROOT / "studies" / "dreamer_ablations.yaml").read_text()))
    labels = {label for (game, label) in agent_runs(ablations) if game == "minatar-breakout"}
    assert labels == {"scratch", "scratch-no_kl_balance", "scratch-gaussian_latents", "scratch-action_repeat"}


def test_snakemake_lint_is_clean():
    result = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Congratulations" in result.stdout + result.stderr


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["dqn"].update(checkpoint_steps=[1000, 999999]), r"dqn.*checkpoint_steps.*999999"),
    (lambda c: c["dreamer"]["overrides"].update(latent="binary"), r"dreamer.*latent"),
    (lambda c: c.update(variants={"bad": {"dreamer": {"deterr": 5}}}), r"variants\.bad\.dreamer.*deterr"),
])
def test_hyperparameter_sections_are_checked_before_any_job(edit, message):
    config = copy.deepcopy(DEFAULT)
    edit(config)
    with pytest.raises(StudyError, match=message):
        check_study(validated(config))


def test_slurm_resources_follow_the_study_budgets():
    from wmtransfer import resources
    from wmtransfer.dreamer.config import DreamerConfig

    atari = DreamerConfig.preset("atari")
    big = resources.agent_job({}, ["atari-pong"], {"env_steps": 5_000_000, "replay_capacity": 2_000_000},
                              atari)
    assert 11_000 < big["mem_mb"] < 12_500  # 2M x 64 x 64 bytes = 8.2 GB of replay + 3 GB
    minatar = DreamerConfig.preset("minatar")
    small = resources.agent_job({}, ["minatar-breakout"], {"env_steps": 100_000}, minatar)
    assert small["mem_mb"] < 4500 and small["runtime"] == 30  # the floor
    assert 60 * 80 < big["runtime"] < 60 * 90  # (312k updates at ~0.3 s + acting 2.8 h) x 3
    slow = resources.agent_job({"slurm": {"time_factor": 20}}, ["minatar-breakout"], {"env_steps": 100_000},
                               DreamerConfig.preset("minatar"))
    assert slow["runtime"] > small["runtime"]
