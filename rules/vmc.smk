# Ha & Schmidhuber's World Models (seed 004) on every target game of the study, one run folder per game
# and seed: V (ConvVAE) and M (MDN-RNN) on the game's dataset, C (linear controller) by CMA-ES in the real
# game (or M's dream), then test episodes. Each training rule is a RunFolder in {stage}/ of the run folder
# (staging, resume from {stage}/ckpt/, promotion) and links its finished files to the declared outputs.


rule train_vae:
    input:
        manifest="results/datasets/{game}/manifest.csv",
    output:
        model="results/vmc/{game}/seed{seed}/vae.pt",
        summary="results/vmc/{game}/seed{seed}/vae_summary.json",
    log:
        "logs/vmc/{game}/seed{seed}/train_vae.log",
    benchmark:
        "logs/benchmarks/vmc/{game}/seed{seed}/train_vae.tsv"
    params:
        out=subpath(output.model, parent=True),
        dataset=subpath(input.manifest, parent=True),
        config=cli_config(config["vmc"]),
    threads: 2
    conda:
        "../envs/wmtransfer.yaml"
    shell:
        "wmtransfer train-vae --game {wildcards.game} --seed {wildcards.seed} --dataset {params.dataset}"
        " --out {params.out} --threads {threads} --config {params.config} > {log} 2>&1"


rule train_mdnrnn:
    input:
        manifest="results/datasets/{game}/manifest.csv",
        vae="results/vmc/{game}/seed{seed}/vae.pt",
    output:
        model="results/vmc/{game}/seed{seed}/mdnrnn.pt",
        summary="results/vmc/{game}/seed{seed}/mdnrnn_summary.json",
    log:
        "logs/vmc/{game}/seed{seed}/train_mdnrnn.log",
    benchmark:
        "logs/benchmarks/vmc/{game}/seed{seed}/train_mdnrnn.tsv"
    params:
        out=subpath(output.model, parent=True),
        dataset=subpath(input.manifest, parent=True),
        config=cli_config(config["vmc"]),
    threads: 2
    conda:
        "../envs/wmtransfer.yaml"
    shell:
        "wmtransfer train-mdnrnn --game {wildcards.game} --seed {wildcards.seed} --dataset {params.dataset}"
        " --vae {input.vae} --out {params.out} --threads {threads} --config {params.config} > {log} 2>&1"


rule train_controller:
    input:
        manifest="results/datasets/{game}/manifest.csv",
        vae="results/vmc/{game}/seed{seed}/vae.pt",
        mdnrnn="results/vmc/{game}/seed{seed}/mdnrnn.pt",
    output:
        model="results/vmc/{game}/seed{seed}/controller.pt",
        summary="results/vmc/{game}/seed{seed}/controller_summary.json",
        metrics="results/vmc/{game}/seed{seed}/controller_metrics.csv",
    log:
        "logs/vmc/{game}/seed{seed}/train_controller.log",
    benchmark:
        "logs/benchmarks/vmc/{game}/seed{seed}/train_controller.tsv"
    params:
        out=subpath(output.model, parent=True),
        dataset=subpath(input.manifest, parent=True),
        config=cli_config(config["vmc"]),
    # rollouts of a generation run in this many processes (Snakemake caps it at --cores)
    threads: 16
    conda:
        "../envs/wmtransfer.yaml"
    shell:
        "wmtransfer train-controller --game {wildcards.game} --seed {wildcards.seed} --vae {input.vae}"
        " --mdnrnn {input.mdnrnn} --dataset {params.dataset} --out {params.out} --threads {threads}"
        " --config {params.config} > {log} 2>&1"


rule evaluate_controller:
    input:
        vae="results/vmc/{game}/seed{seed}/vae.pt",
        mdnrnn="results/vmc/{game}/seed{seed}/mdnrnn.pt",
        controller="results/vmc/{game}/seed{seed}/controller.pt",
    output:
        csv="results/vmc/{game}/seed{seed}/evaluation.csv",
        summary="results/vmc/{game}/seed{seed}/evaluation.json",
    log:
        "logs/vmc/{game}/seed{seed}/evaluate_controller.log",
    params:
        config=cli_config(config["vmc"]),
    threads: 1
    conda:
        "../envs/wmtransfer.yaml"
    shell:
        "wmtransfer evaluate-controller --game {wildcards.game} --seed {wildcards.seed} --vae {input.vae}"
        " --mdnrnn {input.mdnrnn} --controller {input.controller} --out {output.csv}"
        " --config {params.config} > {log} 2>&1"


rule plot_vmc:
    input:
        runs=vmc_files("vae.pt", "mdnrnn.pt", "controller_summary.json", "controller_metrics.csv",
                       "evaluation.csv"),
        manifests=[f"results/datasets/{game}/manifest.csv" for game, _ in vmc_runs()],
        random=vmc_random_files(),
    output:
        report(
            directory("results/report/{study}/vmc"),
            patterns=["{name}.png"],
            caption="captions/vmc.rst",
            category="World Models (V-M-C)",
        ),
    log:
        "logs/report/{study}/plot_vmc.log",
    params:
        runs=" ".join(f"results/vmc/{game}/seed{seed}" for game, seed in vmc_runs()),
        datasets=" ".join(f"results/datasets/{game}" for game, _ in vmc_runs()),
        config=cli_config(config["vmc"]),
    threads: 1
    conda:
        "../envs/wmtransfer.yaml"
    shell:
        "wmtransfer plot-vmc --runs {params.runs} --datasets {params.datasets} --random {input.random}"
        " --out {output} --config {params.config} > {log} 2>&1"
