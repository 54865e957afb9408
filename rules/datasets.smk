# Stage 2: a dataset per game - random play, then the game's DQN checkpoints switching every K steps.
# The acting checkpoints (policy_checkpoints) are the game's own DQN run at dataset.dqn_seed, or the
# external atari-agents files that dataset.atari_agents names for the game.
from wmtransfer.train.collect import policy_checkpoints


rule collect_dataset:
    input:
        checkpoints=lambda w: policy_checkpoints(config, w.game),
    output:
        manifest="results/datasets/{game}/manifest.csv",
        episodes=directory("results/datasets/{game}/episodes"),
    log:
        "logs/datasets/{game}.log",
    benchmark:
        "logs/benchmarks/datasets/{game}.tsv"
    params:
        out=subpath(output.manifest, parent=True),
        config=cli_config(config["dataset"]),
    threads: 1
    conda:
        "../envs/wmtransfer.yaml"
    shell:
        "wmtransfer collect-dataset --game {wildcards.game} --out {params.out} --threads {threads}"
        " --checkpoints {input.checkpoints} --config {params.config} > {log} 2>&1"
