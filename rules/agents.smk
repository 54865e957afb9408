# Stage 4: DreamerV2 agents on the target games, for every condition (and ablation variant) and seed.


rule train_agent:
    input:
        init=agent_init,
    output:
        metrics="results/agents/{study}/{game}/{label}/seed{seed}/metrics.csv",
        summary="results/agents/{study}/{game}/{label}/seed{seed}/summary.json",
        agent="results/agents/{study}/{game}/{label}/seed{seed}/agent.pt",
    log:
        "logs/agents/{study}/{game}/{label}/seed{seed}.log",
    benchmark:
        "logs/benchmarks/agents/{study}/{game}/{label}/seed{seed}.tsv"
    params:
        out=subpath(output.summary, parent=True),
        condition=lambda w: RUNS[(w.game, w.label)]["condition"],
        init=lambda w, input: f"--init {input.init}" if input.init else "",
        config=lambda w: cli_config(config["agent"]),
        dreamer=lambda w: cli_config(run_dreamer_config(w.game, w.label)),
        game=lambda w: cli_config(run_game_settings(w.game, w.label)),
    # One torch thread per training job: on this project's 2-core reference machine two 1-thread
    # DreamerV2 runs made 20.8 env steps/s together, one run 13.0 on 1 thread and 13.0 on 2 threads
    # (docs/speed.md). A profile can change it: `set-threads: {train_agent: 4}`.
    threads: 1
    resources:
        gpu=1,
        runtime=agent_resource("runtime"),
        mem_mb=agent_resource("mem_mb"),
    conda:
        "../envs/wmtransfer.yaml"
    shell:
        "wmtransfer train-agent --game {wildcards.game} --condition {params.condition} {params.init}"
        " --seed {wildcards.seed} --out {params.out} --device auto --threads {threads}"
        " --config {params.config} --dreamer {params.dreamer} --game-settings {params.game}"
        " > {log} 2>&1"
