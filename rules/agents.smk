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
    threads: 2
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
