# Baselines that need no training of ours: the uniform random policy.


rule evaluate_random_policy:
    output:
        "results/baselines/random/{game}/returns.csv",
    log:
        "logs/baselines/random/{game}.log",
    params:
        episodes=config["random_baseline"]["episodes"],
        max_steps=config["random_baseline"]["max_steps"],
    threads: 1
    conda:
        "../envs/wmtransfer.yaml"
    shell:
        "wmtransfer random-baseline --game {wildcards.game} --seed 0 --episodes {params.episodes}"
        " --max-steps {params.max_steps} --out {output} > {log} 2>&1"
