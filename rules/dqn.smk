# Stage 1: DQN policies per game and seed; their checkpoints (weak to strong play) collect the datasets.


rule train_dqn:
    output:
        checkpoints=expand(
            "results/dqn/{{game}}/seed{{seed}}/checkpoints/step{step}.pt",
            step=config["dqn"]["checkpoint_steps"],
        ),
        metrics="results/dqn/{game}/seed{seed}/metrics.csv",
        summary="results/dqn/{game}/seed{seed}/summary.json",
    log:
        "logs/dqn/{game}/seed{seed}.log",
    benchmark:
        "logs/benchmarks/dqn/{game}/seed{seed}.tsv"
    params:
        out=subpath(output.summary, parent=True),
        config=cli_config(config["dqn"]),
        device=dqn_device,
    threads: 1
    resources:
        gpu=dqn_gpu,
        runtime=dqn_resource("runtime"),
        mem_mb=dqn_resource("mem_mb"),
    conda:
        "../envs/wmtransfer.yaml"
    shell:
        "wmtransfer train-dqn --game {wildcards.game} --seed {wildcards.seed} --out {params.out}"
        " --threads {threads} --device {params.device} --config {params.config} > {log} 2>&1"
