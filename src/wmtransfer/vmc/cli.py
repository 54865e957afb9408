"""The V-M-C subcommands of ``wmtransfer`` (rules in ``rules/vmc.smk``): ``train-vae``, ``train-mdnrnn``,
``train-controller``, ``evaluate-controller`` and ``plot-vmc``. ``--config`` is the study's ``vmc``
section."""

from __future__ import annotations

import argparse
import json
import sys


def _config(args: argparse.Namespace):
    from ..config import from_dict, load_json_or_file
    from .config import VMCConfig

    cfg = from_dict(VMCConfig, load_json_or_file(args.config))
    cfg.validate()
    return cfg


def _run(args: argparse.Namespace, body) -> int:
    import torch

    from ..data.episodes import EpisodeError
    from ..train.agent import NonFiniteLossError

    torch.set_num_threads(max(1, args.threads))
    try:
        result = body(_config(args))
    except NonFiniteLossError as e:
        print(f"wmtransfer {args.command}: {e}", file=sys.stderr)
        return 3
    except (ValueError, FileNotFoundError, EpisodeError, ImportError) as e:
        print(f"wmtransfer {args.command}: {e}", file=sys.stderr)
        return 2
    if isinstance(result, dict):
        print(json.dumps({k: v for k, v in result.items() if k != "config"}, sort_keys=True, default=str))
    return 0


def _train_vae(args):
    from .train import train_vae

    return _run(args, lambda cfg: train_vae(args.game, args.dataset, args.seed, args.out, cfg))


def _train_mdnrnn(args):
    from .train import train_mdnrnn

    return _run(args, lambda cfg: train_mdnrnn(args.game, args.dataset, args.vae, args.seed, args.out, cfg))


def _train_controller(args):
    from .train import train_controller

    return _run(args, lambda cfg: train_controller(args.game, args.vae, args.mdnrnn, args.seed, args.out, cfg,
                                                   workers=args.threads, dataset=args.dataset))


def _evaluate_controller(args):
    from .train import evaluate_controller

    return _run(args, lambda cfg: evaluate_controller(args.game, args.vae, args.mdnrnn, args.controller,
                                                      args.seed, args.out, cfg))


def _plot_vmc(args):
    from .figures import plot_vmc

    return _run(args, lambda cfg: plot_vmc(args.runs, args.datasets, args.random, args.out, cfg, args.seed))


def add_parsers(sub) -> None:
    """Register the V-M-C subcommands on ``wmtransfer``'s subparsers."""
    def common(p: argparse.ArgumentParser, run_help: str) -> None:
        p.add_argument("--game", required=True)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--config", help="the study's vmc section (inline JSON or .json/.yaml file)")
        p.add_argument("--threads", type=int, default=1, help="torch threads (train-controller: rollout "
                       "processes)")
        p.add_argument("--out", required=True, help=run_help)

    run = "run folder results/vmc/{game}/seed{seed} (the stage resumes from its {stage}/ckpt/)"
    p = sub.add_parser("train-vae", help="V-M-C: train the ConvVAE (V) on a game's dataset")
    common(p, run)
    p.add_argument("--dataset", required=True, help="dataset folder results/datasets/{game}")
    p.set_defaults(func=_train_vae)

    p = sub.add_parser("train-mdnrnn", help="V-M-C: train the MDN-RNN (M) on the V-encoded dataset")
    common(p, run)
    p.add_argument("--dataset", required=True, help="dataset folder results/datasets/{game}")
    p.add_argument("--vae", required=True, help="vae.pt")
    p.set_defaults(func=_train_mdnrnn)

    p = sub.add_parser("train-controller", help="V-M-C: train the linear controller (C) with CMA-ES")
    common(p, run)
    p.add_argument("--vae", required=True, help="vae.pt")
    p.add_argument("--mdnrnn", required=True, help="mdnrnn.pt")
    p.add_argument("--dataset", help="dataset folder (first frames of dreamed rollouts, train_in: dream)")
    p.set_defaults(func=_train_controller)

    p = sub.add_parser("evaluate-controller", help="V-M-C: test episodes of V-M-C in the real game")
    common(p, "evaluation CSV; a JSON summary is written beside it")
    p.add_argument("--vae", required=True, help="vae.pt")
    p.add_argument("--mdnrnn", required=True, help="mdnrnn.pt")
    p.add_argument("--controller", required=True, help="controller.pt")
    p.set_defaults(func=_evaluate_controller)

    p = sub.add_parser("plot-vmc", help="V-M-C figures and table of a study")
    p.add_argument("--runs", nargs="+", required=True, help="run folders results/vmc/{game}/seed{seed}")
    p.add_argument("--datasets", nargs="+", required=True, help="dataset folder of each run's game")
    p.add_argument("--random", nargs="*", default=[], help="random-policy returns.csv files (table)")
    p.add_argument("--seed", type=int, default=0, help="seeds the frames drawn and the bootstrap")
    p.add_argument("--config", help="the study's vmc section (inline JSON or .json/.yaml file)")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--out", required=True, help="folder of figures, table.csv, table.md")
    p.set_defaults(func=_plot_vmc)
