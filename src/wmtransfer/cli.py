"""The ``wmtransfer`` command line: one subcommand per workflow step; every Snakemake rule calls one.

Conventions shared by all subcommands: ``--game``/``--seed`` come from the rule's wildcards, ``--out``
is the output folder (or file), and ``--config`` is one section of the validated study config as
inline JSON or a path to a .json/.yaml file. A subcommand writes its declared outputs last, so a
killed job never leaves a complete-looking output behind.
"""

from __future__ import annotations

import argparse
import json
import sys

from . import conditions
from .config import ConfigError, load_json_or_file
from .io import UnsafeCheckpoint


def _cmd_games(args: argparse.Namespace) -> int:
    from . import games

    if args.game:
        for g in args.game:
            print(json.dumps(games.spec(g).__dict__))
        return 0
    for g in games.names(args.suite):
        print(g)
    return 0


def _cmd_random_baseline(args: argparse.Namespace) -> int:
    from .train.random_baseline import run_random_baseline

    run_random_baseline(args.game, args.seed, args.episodes, args.out, max_steps=args.max_steps,
                        settings=load_json_or_file(args.game_settings))
    return 0


# --- Dreamer training (pretrain-world-model, pretrain-agent, train-agent) ---
def _dreamer_config(text: str | None, game_ids: list[str]):
    """The study's ``dreamer`` section (inline JSON or file); its preset defaults to the games' suite."""
    from .dreamer.config import DreamerConfig
    from .games import suite_of

    section = load_json_or_file(text)
    section.setdefault("preset", suite_of(game_ids[0]))
    return DreamerConfig.from_section(section)


def _run_dreamer_stage(args: argparse.Namespace, run) -> int:
    """Set torch threads, run a Dreamer stage, and turn its known failures into exit codes."""
    import torch

    from .train.agent import NonFiniteLossError

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        summary = run()
    except NonFiniteLossError as e:
        print(f"wmtransfer {args.command}: {e}", file=sys.stderr)
        return 3
    except (ValueError, FileNotFoundError) as e:
        print(f"wmtransfer {args.command}: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary, sort_keys=True))
    return 0


def _cmd_pretrain_world_model(args: argparse.Namespace) -> int:
    from .config import from_dict
    from .train.config import PretrainConfig
    from .train.pretrain import pretrain_world_model

    cfg = from_dict(PretrainConfig, load_json_or_file(args.config))
    dreamer_cfg = _dreamer_config(args.dreamer, args.games)
    datasets = args.datasets or [f"results/datasets/{g}" for g in args.games]
    return _run_dreamer_stage(args, lambda: pretrain_world_model(
        args.envset, args.games, datasets, args.seed, args.out, cfg, dreamer_cfg, device=args.device))


def _cmd_pretrain_agent(args: argparse.Namespace) -> int:
    from .config import from_dict
    from .train.config import AgentConfig
    from .train.pretrain import pretrain_agent

    cfg = from_dict(AgentConfig, load_json_or_file(args.config))
    dreamer_cfg = _dreamer_config(args.dreamer, args.games)
    settings = load_json_or_file(args.game_settings)
    return _run_dreamer_stage(args, lambda: pretrain_agent(
        args.envset, args.games, args.seed, args.out, cfg, dreamer_cfg, device=args.device,
        game_settings=settings))


def _cmd_train_agent(args: argparse.Namespace) -> int:
    from .config import from_dict
    from .train.agent import train_agent
    from .train.config import AgentConfig

    section = load_json_or_file(args.config)
    if args.condition:
        section["condition"] = args.condition
    cfg = from_dict(AgentConfig, section)
    dreamer_cfg = _dreamer_config(args.dreamer, [args.game])
    settings = load_json_or_file(args.game_settings)
    return _run_dreamer_stage(args, lambda: train_agent(
        [args.game], args.seed, args.out, cfg, dreamer_cfg, init=args.init, device=args.device,
        game_settings=settings))


# Report stage (analysis): aggregate curves, figures, tables. Bad metrics files exit 2 naming the file.
def _report_config(args: argparse.Namespace):
    from .analysis.stats import StatsConfig
    from .config import from_dict

    return from_dict(StatsConfig, load_json_or_file(args.config)) if args.config else StatsConfig()


def _report_run(args: argparse.Namespace, body) -> int:
    import logging

    from .analysis.curves import MetricsError

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        body()
    except MetricsError as e:
        print(f"wmtransfer {args.command}: {e}", file=sys.stderr)
        return 2
    return 0


def _cmd_aggregate_curves(args: argparse.Namespace) -> int:
    from .analysis.curves import aggregate, write_table

    return _report_run(args, lambda: write_table(aggregate(args.runs, args.study), args.out))


def _cmd_plot_report(args: argparse.Namespace) -> int:
    from .analysis.baselines import read_baselines
    from .analysis.curves import MetricsError, read_table
    from .analysis.report import build_figures, pretrain_costs

    def pairs(specs: list[str], flag: str) -> dict[str, float]:
        out = {}
        for spec in specs:
            key, sep, value = spec.partition("=")
            try:
                out[key] = float(value)
            except ValueError:
                sep = ""
            if not sep:
                raise MetricsError(f"{flag}: expected NAME=NUMBER, got {spec!r}")
        return out

    def body() -> None:
        table = read_table(args.table)
        dqn = pairs(args.dqn_steps, "--dqn-steps") if cfg.count_dqn_steps else None
        costs = pretrain_costs(args.pretrain_summaries, table, cfg.amortise_pretraining, dqn)
        build_figures(table, args.out, cfg, costs, read_baselines(args.baselines),
                      pairs(args.frames_per_step, "--frames-per-step"))

    cfg = _report_config(args)
    return _report_run(args, body)


def _cmd_make_tables(args: argparse.Namespace) -> int:
    from .analysis.curves import read_table
    from .analysis.report import build_tables

    cfg = _report_config(args)
    return _report_run(args, lambda: build_tables(read_table(args.table), args.out, cfg))


def _cmd_summarise_findings(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .analysis.curves import read_table
    from .analysis.findings import Design, extras_from, study_findings, write_summary
    from .analysis.report import pretrain_costs

    cfg = _report_config(args)

    def body() -> None:
        table = read_table(args.table)
        costs = pretrain_costs(args.pretrain_summaries, table)
        design = Design.from_config(load_json_or_file(args.design)) if args.design else None
        figures = None
        if args.figures:
            figures = {p.stem for p in Path(args.figures).glob("*.png")}
        findings = study_findings(table, design, cfg, costs, figures)
        extra_paths = list(args.extras)
        if args.figures and (Path(args.figures) / "aggregate.json").exists():
            extra_paths.append(Path(args.figures) / "aggregate.json")  # rliable's aggregate over targets
        extras = extras_from(extra_paths, Path(args.out))
        for path in write_summary(args.study, findings, args.out, cfg, extras):
            print(f"wrote {path}")
        for f in findings:
            print(f.headline())

    return _report_run(args, body)


def _cmd_train_dqn(args: argparse.Namespace) -> int:
    import torch

    from .config import from_dict
    from .dqn.config import DQNConfig
    from .train.dqn import train_dqn

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = from_dict(DQNConfig, load_json_or_file(args.config))
    try:
        summary = train_dqn(args.game, args.seed, args.out, cfg, progress=True, device=args.device)
    except ValueError as e:  # a run folder in use by another process, a checkpoint of another config
        print(f"wmtransfer train-dqn: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0


def _cmd_collect_dataset(args: argparse.Namespace) -> int:
    import torch

    from .config import from_dict
    from .train.collect import DatasetConfig, collect_dataset

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = from_dict(DatasetConfig, load_json_or_file(args.config))
    summary = collect_dataset(args.game, args.out, cfg, args.checkpoints, progress=True)
    print(json.dumps({k: v for k, v in summary.items() if k != "config"}))
    return 0


def _cmd_latent_analysis(args: argparse.Namespace) -> int:
    from .analysis.latent_features import run_latent_analysis

    try:
        return _report_run(args, lambda: run_latent_analysis(
            args.model, args.games, args.out, k=args.k, max_frames=args.max_frames, n_random=args.n_random,
            n_perm=args.n_perm, seed=args.seed, threads=args.threads))
    except ValueError as e:  # an unknown game, a model that does not fit the game
        print(f"wmtransfer {args.command}: {e}", file=sys.stderr)
        return 2


def _cmd_dream_rollouts(args: argparse.Namespace) -> int:
    from .analysis.rollouts import run_rollouts

    try:
        run_rollouts(args.model, args.seen, args.unseen, args.out, context=args.context, horizon=args.horizon,
                     seed=args.seed, threads=args.threads)
    except ValueError as e:  # a bad context, an unknown game (UnknownGameError), a shape mismatch
        print(f"wmtransfer {args.command}: {e}", file=sys.stderr)
        return 2
    return 0


def _cmd_compare_reconstructions(args: argparse.Namespace) -> int:
    from .analysis.rollouts import run_reconstructions

    models = {}
    for spec in args.models:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            print(f"wmtransfer {args.command}: --models takes LABEL=PATH, got {spec!r}", file=sys.stderr)
            return 2
        models[name] = path
    try:
        run_reconstructions(models, args.games, args.out, frames=args.frames, seed=args.seed,
                            threads=args.threads)
    except (ValueError, FileNotFoundError) as e:
        print(f"wmtransfer {args.command}: {e}", file=sys.stderr)
        return 2
    return 0


def _cmd_prediction_quality(args: argparse.Namespace) -> int:
    from .analysis.rollouts import run_prediction_quality

    try:
        run_prediction_quality(args.snapshots, args.seen, args.unseen, args.out, context=args.context,
                               horizon=args.horizon, seed=args.seed, threads=args.threads)
    except (ValueError, FileNotFoundError) as e:
        print(f"wmtransfer {args.command}: {e}", file=sys.stderr)
        return 2
    return 0


def _add_seed_threads(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0, help="seeds the episodes' random policy and the game")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")


def _add_dream_args(p: argparse.ArgumentParser) -> None:
    """Games, context and horizon of the dreamed rollouts (dream-rollouts, prediction-quality)."""
    p.add_argument("--seen", nargs="*", default=[], help="games of the pre-training set")
    p.add_argument("--unseen", nargs="*", default=[], help="games outside the pre-training set")
    p.add_argument("--context", type=int, default=5, help="frames observed before dreaming")
    p.add_argument("--horizon", type=int, default=15, help="frames dreamed open loop")
    _add_seed_threads(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wmtransfer", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("games", help="list game ids, or print the spec of given games")
    p.add_argument("--suite", choices=["minatar", "atari", "mario"])
    p.add_argument("game", nargs="*")
    p.set_defaults(func=_cmd_games)

    p = sub.add_parser("random-baseline", help="returns of a uniform random policy on one game")
    p.add_argument("--game", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many env steps in total")
    p.add_argument("--out", required=True, help="CSV file to write")
    p.add_argument("--game-settings", help="game keyword arguments (JSON or file), e.g. action_set")
    p.set_defaults(func=_cmd_random_baseline)

    # --- subcommands of other stages register below (one block per stage) ---
    # DQN policies and dataset collection (stages 1 and 2).
    p = sub.add_parser("train-dqn", help="train a DQN on one game; keeps policy checkpoints")
    p.add_argument("--game", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="run folder results/dqn/{game}/seed{seed} (resumed if it "
                   "holds ckpt/checkpoint.pt)")
    p.add_argument("--config", help="the study's dqn section (inline JSON or .json/.yaml file)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda, or auto (cuda if visible)")
    p.set_defaults(func=_cmd_train_dqn)

    p = sub.add_parser("collect-dataset",
                       help="collect a game's episodes with random play and DQN checkpoints")
    p.add_argument("--game", required=True)
    p.add_argument("--out", required=True, help="dataset folder results/datasets/{game}")
    p.add_argument("--checkpoints", nargs="*", default=[], help="DQN checkpoints (.pt) or atari-agents "
                   "checkpoints (.gz) that act after the random phase")
    p.add_argument("--config", help="the study's dataset section (inline JSON or .json/.yaml file)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.set_defaults(func=_cmd_collect_dataset)
    # Dreamer training: offline world-model pre-training, online multi-task agents, target agents.
    def dreamer_args(p: argparse.ArgumentParser, config_help: str) -> None:
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--out", required=True, help="run folder (resumed if it holds ckpt/checkpoint.pt)")
        p.add_argument("--config", help=config_help + " (inline JSON or .json/.yaml file)")
        p.add_argument("--dreamer", help="the study's dreamer section: DreamerConfig fields and 'preset' "
                       "(default preset: the games' suite)")
        p.add_argument("--device", default="cpu", help="torch device: cpu, cuda, or auto (cuda if visible)")
        p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")

    p = sub.add_parser("pretrain-world-model", help="train a DreamerV2 world model offline on datasets")
    p.add_argument("--envset", required=True, help="name of the environment set (recorded in the outputs)")
    p.add_argument("--games", nargs="+", required=True, help="game ids of the set")
    p.add_argument("--datasets", nargs="+", help="dataset folders (default: results/datasets/{game})")
    dreamer_args(p, "the study's pretrain section")
    p.set_defaults(func=_cmd_pretrain_world_model)

    p = sub.add_parser("pretrain-agent", help="train a DreamerV2 agent online on a game set (multi-task)")
    p.add_argument("--envset", required=True, help="name of the environment set (recorded in the outputs)")
    p.add_argument("--games", nargs="+", required=True, help="game ids; one is drawn per episode")
    dreamer_args(p, "the study's agent section")
    p.add_argument("--game-settings", help="game keyword arguments (JSON or file), e.g. action_repeat")
    p.set_defaults(func=_cmd_pretrain_agent)

    p = sub.add_parser("train-agent", help="train a DreamerV2 agent online on one game under a condition")
    p.add_argument("--game", required=True)
    p.add_argument("--condition", help="overrides the config's condition",
                   choices=list(conditions.NAMES))
    p.add_argument("--init", help="world_model.pt (finetune, frozen_rssm, frozen_wm) or agent.pt "
                   "(finetune_agent)")
    dreamer_args(p, "the study's agent section")
    p.add_argument("--game-settings", help="game keyword arguments (JSON or file), e.g. action_repeat")
    p.set_defaults(func=_cmd_train_agent)
    # Report stage: one tidy table per study, then figures and tables into results/report/{study}/.
    report_config_help = "the study's report section: StatsConfig fields (inline JSON or .json/.yaml file)"
    p = sub.add_parser("aggregate-curves", help="every run's metrics.csv into one long table (CSV + Parquet)")
    p.add_argument("--study", required=True, help="study name (checked against agents/{study}/... paths)")
    p.add_argument("--runs", nargs="*", default=[], help="metrics.csv files: results/agents/{study}/{target}/"
                   "{condition}/seed{seed}/metrics.csv, or {stage}/{name}/seed{seed}/metrics.csv")
    p.add_argument("--out", required=True, help="table path; writes {stem}.csv and {stem}.parquet")
    p.set_defaults(func=_cmd_aggregate_curves)

    p = sub.add_parser("plot-report", help="figures of one study from its aggregated table")
    p.add_argument("--table", required=True, help="aggregated table (.csv or .parquet)")
    p.add_argument("--pretrain-summaries", nargs="*", default=[], help="pre-training summary.json files, "
                   "as path, LABEL=path or TARGET/LABEL=path (unkeyed: offline ones for finetune/frozen_*, "
                   "online for finetune_agent, matched on the label's -<envset>)")
    p.add_argument("--baselines", nargs="*", default=[], help="DQN metrics.csv and random-policy CSV files")
    p.add_argument("--frames-per-step", nargs="*", default=[], help="LABEL=REPEAT per run label with action "
                   "repeat: its returns are also drawn against frames")
    p.add_argument("--dqn-steps", nargs="*", default=[], help="ENVSET=STEPS: env steps of the DQN runs "
                   "behind a set's datasets, added to its pre-training cost when count_dqn_steps is on")
    p.add_argument("--config", help=report_config_help)
    p.add_argument("--out", required=True, help="report folder, e.g. results/report/{study}")
    p.set_defaults(func=_cmd_plot_report)

    p = sub.add_parser("make-tables", help="final return, AUC, speed-up vs scratch with CIs (CSV, Markdown)")
    p.add_argument("--table", required=True, help="aggregated table (.csv or .parquet)")
    p.add_argument("--config", help=report_config_help)
    p.add_argument("--out", required=True, help="report folder; writes table.csv and table.md")
    p.set_defaults(func=_cmd_make_tables)

    p = sub.add_parser("summarise-findings", help="the study's findings page: each seed claim it can test, "
                       "holds / does not hold / inconclusive with effect sizes and CIs")
    p.add_argument("--study", required=True, help="study name (the page's title)")
    p.add_argument("--table", required=True, help="aggregated table (.csv or .parquet)")
    p.add_argument("--design", help="the study's envsets and targets (inline JSON or file): which targets "
                   "are seen or unseen")
    p.add_argument("--pretrain-summaries", nargs="*", default=[], help="as for plot-report (the "
                   "compute-matched finding's cost)")
    p.add_argument("--figures", help="figure folder of the study (the page links its figures)")
    p.add_argument("--extras", nargs="*", default=[], help="latent.json, rollouts.json, aggregate.json, "
                   "prediction_quality.json files summarised under 'Also in this study'")
    p.add_argument("--config", help=report_config_help)
    p.add_argument("--out", required=True, help="report folder; writes summary.md and summary.json")
    p.set_defaults(func=_cmd_summarise_findings)

    p = sub.add_parser("latent-analysis", help="k-means, CCA and a permutation test of world-model latents "
                       "against the player's position (read from the game's state), per game")
    p.add_argument("--model", required=True, help="saved Dreamer (world_model.pt or agent.pt)")
    p.add_argument("--games", nargs="+", required=True, help="games analysed one at a time (MinAtar; others "
                   "are skipped: their state has no player position)")
    p.add_argument("--k", type=int, default=8, help="k-means clusters")
    p.add_argument("--max-frames", type=int, default=20_000, help="frames per game (seed 001: 100000)")
    p.add_argument("--n-random", type=int, default=5, help="random-feature baselines drawn (in-sample CCA)")
    p.add_argument("--n-perm", type=int, default=200, help="circular shifts of the permutation test")
    p.add_argument("--seed", type=int, default=0, help="seeds the random play, the baselines and the shifts")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    p.add_argument("--out", required=True, help="folder; writes latent.json and latent_{game}.png/.svg")
    p.set_defaults(func=_cmd_latent_analysis)

    p = sub.add_parser("dream-rollouts", help="dreamed rollouts vs real frames, seen and unseen games")
    p.add_argument("--model", required=True, help="saved Dreamer (world_model.pt or agent.pt)")
    _add_dream_args(p)
    p.add_argument("--out", required=True, help="folder; writes {game}.png/.svg/.gif and rollouts.json")
    p.set_defaults(func=_cmd_dream_rollouts)

    p = sub.add_parser("compare-reconstructions", help="the same frames of unseen games reconstructed by "
                       "models trained on one game and on sets of games (seed 003 fig. 8)")
    p.add_argument("--models", nargs="+", required=True,
                   help="LABEL=saved Dreamer (world_model.pt, agent.pt)")
    p.add_argument("--games", nargs="+", required=True, help="games whose frames are reconstructed")
    p.add_argument("--frames", type=int, default=5, help="frames per game (seed 003: five)")
    _add_seed_threads(p)
    p.add_argument("--out", required=True, help="folder; writes {game}.png/.svg and reconstructions.json")
    p.set_defaults(func=_cmd_compare_reconstructions)

    p = sub.add_parser("prediction-quality", help="dreamed-frame error of world-model snapshots against "
                       "pre-training updates (seed 002's 1M/3M/5M panels)")
    p.add_argument("--snapshots", nargs="+", required=True, help="snapshot folders or update<N>.pt files, "
                   "or N=path for other names (the final world_model.pt)")
    _add_dream_args(p)
    p.add_argument("--out", required=True, help="folder; writes prediction_quality.png/.svg/.json")
    p.set_defaults(func=_cmd_prediction_quality)
    # Ha & Schmidhuber's World Models (seed 004): train-vae, train-mdnrnn, train-controller,
    # evaluate-controller, plot-vmc.
    from .vmc.cli import add_parsers as add_vmc_parsers

    add_vmc_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as e:
        print(f"wmtransfer {args.command}: configuration error: {e}", file=sys.stderr)
        return 2
    except UnsafeCheckpoint as e:
        print(f"wmtransfer {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
