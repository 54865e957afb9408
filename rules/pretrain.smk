# Stage 3: world models pre-trained offline on an environment set's datasets (seed 001 §2.4), and
# full agents pre-trained online on a set of games, one game per episode (seed 003, finetune_agent).


rule pretrain_world_model:
    input:
        manifests=lambda w: expand("results/datasets/{game}/manifest.csv", game=ENVSETS[w.envset]),
    output:
        model="results/pretrain/{envset}/seed{seed}/world_model.pt",
        summary="results/pretrain/{envset}/seed{seed}/summary.json",
        metrics="results/pretrain/{envset}/seed{seed}/metrics.csv",
    log:
        "logs/pretrain/{envset}/seed{seed}.log",
    benchmark:
        "logs/benchmarks/pretrain/{envset}/seed{seed}.tsv"
    params:
        out=subpath(output.model, parent=True),
        games=lambda w: " ".join(ENVSETS[w.envset]),
        datasets=lambda w, input: " ".join(os.path.dirname(m) for m in input.manifests),
        config=cli_config(config["pretrain"]),
        dreamer=cli_config(config["dreamer"]),
    # One torch thread per training job: on this project's 2-core reference machine two 1-thread
    # DreamerV2 runs made 20.8 env steps/s together, one run 13.0 on 1 thread and 13.0 on 2 threads
    # (docs/speed.md). A profile can change it: `set-threads: {train_agent: 4}`.
    threads: 1
    resources:
        gpu=1,
        runtime=pretrain_resource("runtime"),
        mem_mb=pretrain_resource("mem_mb"),
    conda:
        "../envs/wmtransfer.yaml"
    shell:
        "wmtransfer pretrain-world-model --envset {wildcards.envset} --games {params.games}"
        " --datasets {params.datasets} --seed {wildcards.seed} --out {params.out} --device auto"
        " --threads {threads} --config {params.config} --dreamer {params.dreamer} > {log} 2>&1"


rule pretrain_agent:
    output:
        agent="results/pretrain_agent/{envset}/seed{seed}/agent.pt",
        summary="results/pretrain_agent/{envset}/seed{seed}/summary.json",
        metrics="results/pretrain_agent/{envset}/seed{seed}/metrics.csv",
    log:
        "logs/pretrain_agent/{envset}/seed{seed}.log",
    benchmark:
        "logs/benchmarks/pretrain_agent/{envset}/seed{seed}.tsv"
    params:
        out=subpath(output.agent, parent=True),
        games=lambda w: " ".join(ENVSETS[w.envset]),
        config=cli_config(multitask_config()),
        dreamer=cli_config(config["dreamer"]),
    # One torch thread per training job: on this project's 2-core reference machine two 1-thread
    # DreamerV2 runs made 20.8 env steps/s together, one run 13.0 on 1 thread and 13.0 on 2 threads
    # (docs/speed.md). A profile can change it: `set-threads: {train_agent: 4}`.
    threads: 1
    resources:
        gpu=1,
        runtime=pretrain_agent_resource("runtime"),
        mem_mb=pretrain_agent_resource("mem_mb"),
    conda:
        "../envs/wmtransfer.yaml"
    shell:
        "wmtransfer pretrain-agent --envset {wildcards.envset} --games {params.games}"
        " --seed {wildcards.seed} --out {params.out} --device auto --threads {threads}"
        " --config {params.config} --dreamer {params.dreamer} > {log} 2>&1"
